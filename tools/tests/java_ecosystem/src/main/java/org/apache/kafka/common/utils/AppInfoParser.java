package org.apache.kafka.common.utils;

/**
 * What the file connectors of 4.3.1 call to tell their version, at the
 * place it had before kafka-clients 4.4.0 moved it to
 * {@code org.apache.kafka.common.utils.internals}: without it, the 4.4.0
 * worker cannot load them (NoClassDefFoundError), and the file connectors
 * of 4.4.0 are not published where the tests resolve from.
 */
public final class AppInfoParser {
    private AppInfoParser() {}

    public static String getVersion() {
        return org.apache.kafka.common.utils.internals.AppInfoParser.getVersion();
    }
}
