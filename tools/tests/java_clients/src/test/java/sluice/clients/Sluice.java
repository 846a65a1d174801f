package sluice.clients;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * What the tests share: the broker's address (the system property
 * sluice.bootstrap, set by tools/tests/java_clients.rs), clients configured
 * for it, and waiting for a condition with a deadline.
 */
final class Sluice {
    /** How long a step may take before the test fails. */
    static final Duration WAIT = Duration.ofSeconds(30);

    private Sluice() {}

    static String bootstrap() {
        String bootstrap = System.getProperty("sluice.bootstrap");
        if (bootstrap == null || bootstrap.isEmpty()) {
            throw new IllegalStateException("the system property sluice.bootstrap is not set");
        }
        return bootstrap;
    }

    /** The kafka-clients version the tests were built with (pom.xml sets it). */
    static String clientVersion() {
        return System.getProperty("kafka.clients.version", "");
    }

    /** Whether the client is of Kafka's 3.x line. */
    static boolean clientIs3x() {
        return clientVersion().startsWith("3.");
    }

    /** A topic or group name no other test uses. */
    static String unique(String prefix) {
        return prefix + "-" + UUID.randomUUID().toString().substring(0, 8);
    }

    /**
     * What every client of the tests takes when the broker's Kafka listener
     * is SSL://, SASL_PLAINTEXT:// or SASL_SSL://: system property
     * sluice.ssl.ca names the PEM file of the authority its certificate
     * chains to, sluice.ssl.keystore a PEM file of a client certificate and
     * its key (mutual TLS), and sluice.sasl.plain a user and password
     * (USER:PASSWORD). Nothing without them.
     */
    static Properties security() {
        Properties properties = new Properties();
        // SASL PLAIN as USER:PASSWORD (system property sluice.sasl.plain).
        String plain = System.getProperty("sluice.sasl.plain", "");
        String ca = System.getProperty("sluice.ssl.ca", "");
        if (!plain.isEmpty()) {
            String[] userPassword = plain.split(":", 2);
            // The mechanism (system property sluice.sasl.mechanism):
            // PLAIN unless given, or SCRAM-SHA-256 or SCRAM-SHA-512.
            String mechanism = System.getProperty("sluice.sasl.mechanism", "PLAIN");
            String module = mechanism.equals("PLAIN")
                    ? "org.apache.kafka.common.security.plain.PlainLoginModule"
                    : "org.apache.kafka.common.security.scram.ScramLoginModule";
            properties.put("security.protocol", ca.isEmpty() ? "SASL_PLAINTEXT" : "SASL_SSL");
            properties.put("sasl.mechanism", mechanism);
            properties.put("sasl.jaas.config", module + " required"
                    + " username=\"" + userPassword[0] + "\" password=\"" + userPassword[1] + "\";");
        }
        if (ca.isEmpty()) {
            return properties;
        }
        properties.putIfAbsent("security.protocol", "SSL");
        properties.put("ssl.truststore.type", "PEM");
        properties.put("ssl.truststore.location", ca);
        String keystore = System.getProperty("sluice.ssl.keystore", "");
        if (!keystore.isEmpty()) {
            properties.put("ssl.keystore.type", "PEM");
            properties.put("ssl.keystore.location", keystore);
        }
        return properties;
    }

    static Admin admin() {
        Properties properties = security();
        properties.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap());
        properties.put(AdminClientConfig.CLIENT_ID_CONFIG, "sluice-java-admin");
        properties.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, (int) WAIT.toMillis());
        return Admin.create(properties);
    }

    static KafkaProducer<byte[], byte[]> producer(Map<String, Object> extra) {
        Properties properties = security();
        properties.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap());
        properties.put(ProducerConfig.CLIENT_ID_CONFIG, "sluice-java-producer");
        properties.put(ProducerConfig.ACKS_CONFIG, "all");
        properties.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
        properties.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class);
        properties.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class);
        properties.putAll(extra);
        return new KafkaProducer<>(properties);
    }

    /** A consumer without a group: assign and seek only. */
    static KafkaConsumer<byte[], byte[]> consumer() {
        return consumer(null, Map.of());
    }

    /** A consumer in `group` (none if null), committing only when told. */
    static KafkaConsumer<byte[], byte[]> consumer(String group, Map<String, Object> extra) {
        Properties properties = security();
        properties.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap());
        properties.put(ConsumerConfig.CLIENT_ID_CONFIG, "sluice-java-consumer");
        if (group != null) {
            properties.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        }
        properties.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        properties.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        properties.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, (int) WAIT.toMillis());
        properties.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class);
        properties.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class);
        properties.putAll(extra);
        return new KafkaConsumer<>(properties);
    }

    /** Creates `topic` and waits until the client's metadata has it. */
    static void createTopic(Admin admin, String topic, int partitions, short replicas)
            throws Exception {
        admin.createTopics(List.of(new NewTopic(topic, partitions, replicas)))
                .all()
                .get(WAIT.toMillis(), TimeUnit.MILLISECONDS);
        waitFor(() -> {
            try {
                return admin.describeTopics(List.of(topic))
                        .allTopicNames()
                        .get(WAIT.toMillis(), TimeUnit.MILLISECONDS)
                        .get(topic)
                        .partitions()
                        .stream()
                        .allMatch(partition -> partition.leader() != null);
            } catch (Exception notYet) {
                return false;
            }
        }, "topic " + topic + " has a leader for each partition");
    }

    static void waitFor(BooleanSupplier done, String what) throws InterruptedException {
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (!done.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("not within " + WAIT + ": " + what);
            }
            Thread.sleep(50);
        }
    }

    /** Polls `consumer` until it returned `count` records or the wait ends. */
    static List<ConsumerRecord<byte[], byte[]>> poll(KafkaConsumer<byte[], byte[]> consumer, int count) {
        List<ConsumerRecord<byte[], byte[]>> records = new ArrayList<>();
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (records.size() < count && System.nanoTime() < deadline) {
            consumer.poll(Duration.ofMillis(100)).forEach(records::add);
        }
        return records;
    }

    static Set<TopicPartition> partitions(String topic, int count) {
        Set<TopicPartition> partitions = new java.util.TreeSet<>(
                java.util.Comparator.comparing(TopicPartition::topic)
                        .thenComparing(TopicPartition::partition));
        for (int partition = 0; partition < count; partition++) {
            partitions.add(new TopicPartition(topic, partition));
        }
        return partitions;
    }

    static <T> T get(org.apache.kafka.common.KafkaFuture<T> future) throws Exception {
        return future.get(WAIT.toMillis(), TimeUnit.MILLISECONDS);
    }

    static Collection<TopicPartition> list(TopicPartition... partitions) {
        return List.of(partitions);
    }
}
