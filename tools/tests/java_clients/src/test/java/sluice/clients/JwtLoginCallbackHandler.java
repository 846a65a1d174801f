package sluice.clients;

import java.io.IOException;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.PrivateKey;
import java.util.List;
import java.util.Map;
import java.util.Set;

import javax.security.auth.callback.Callback;
import javax.security.auth.callback.UnsupportedCallbackException;
import javax.security.auth.login.AppConfigurationEntry;

import org.apache.kafka.common.security.auth.AuthenticateCallbackHandler;
import org.apache.kafka.common.security.auth.SaslExtensionsCallback;
import org.apache.kafka.common.security.oauthbearer.OAuthBearerToken;
import org.apache.kafka.common.security.oauthbearer.OAuthBearerTokenCallback;

/**
 * The OAUTHBEARER login of the tests' clients (sasl.login.callback.handler.class):
 * a JWT that {@link JwtIssuer} signs RS256, where Kafka's default login
 * makes an unsigned one. Its options are those of the JAAS entry:
 *
 * <pre>
 * org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required
 *     keyFile="DIR/rs256.pem" kid="rs-1" subject="alice"
 *     issuer="https://idp.test" audience="sluice" lifetimeSeconds="600";
 * </pre>
 *
 * A negative lifetimeSeconds makes a token that expired that long ago.
 */
public final class JwtLoginCallbackHandler implements AuthenticateCallbackHandler {
    /** What the client is told of a token: its own claims. */
    private record Token(String value, long lifetimeMs, String principalName, Long startTimeMs)
            implements OAuthBearerToken {
        @Override
        public Set<String> scope() {
            return Set.of();
        }
    }

    private PrivateKey key;
    private String kid;
    private String subject;
    private String issuer;
    private String audience;
    private long lifetimeSeconds;

    public JwtLoginCallbackHandler() {}

    @Override
    public void configure(Map<String, ?> configs, String mechanism, List<AppConfigurationEntry> jaasConfigEntries) {
        if (!mechanism.equals("OAUTHBEARER") || jaasConfigEntries.size() != 1) {
            throw new IllegalArgumentException("one JAAS entry of OAUTHBEARER: " + mechanism + " " + jaasConfigEntries);
        }
        Map<String, ?> options = jaasConfigEntries.get(0).getOptions();
        try {
            key = JwtIssuer.readKey(Path.of(option(options, "keyFile")));
        } catch (IOException | GeneralSecurityException error) {
            throw new IllegalArgumentException("keyFile: " + error, error);
        }
        kid = option(options, "kid");
        subject = option(options, "subject");
        issuer = option(options, "issuer");
        audience = option(options, "audience");
        lifetimeSeconds = Long.parseLong(option(options, "lifetimeSeconds"));
    }

    private static String option(Map<String, ?> options, String name) {
        Object value = options.get(name);
        if (value == null) {
            throw new IllegalArgumentException("the JAAS option " + name + " is not set");
        }
        return value.toString();
    }

    @Override
    public void handle(Callback[] callbacks) throws IOException, UnsupportedCallbackException {
        for (Callback callback : callbacks) {
            if (callback instanceof OAuthBearerTokenCallback tokenCallback) {
                long nowSeconds = System.currentTimeMillis() / 1000;
                long expiresSeconds = nowSeconds + lifetimeSeconds;
                try {
                    String value = JwtIssuer.token(key, kid, subject, issuer, audience, nowSeconds, expiresSeconds);
                    tokenCallback.token(new Token(value, expiresSeconds * 1000, subject, nowSeconds * 1000));
                } catch (GeneralSecurityException error) {
                    throw new IOException("signing a token: " + error, error);
                }
            } else if (callback instanceof SaslExtensionsCallback) {
                // No SASL extensions: the callback's default.
                continue;
            } else {
                throw new UnsupportedCallbackException(callback);
            }
        }
    }

    @Override
    public void close() {}
}
