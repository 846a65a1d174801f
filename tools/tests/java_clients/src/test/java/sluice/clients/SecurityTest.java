package sluice.clients;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.IOException;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.AuthenticationException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.Test;

/**
 * A broker's Kafka listener with a security protocol (SSL, mutual TLS,
 * SASL_PLAINTEXT, SASL_SSL) serves the clients whose credentials it takes
 * and refuses the others with Kafka's error. tools/tests/java_security.rs
 * starts the broker and writes each client's settings as a properties
 * file (as Kafka's tools take them, bootstrap.servers left out), named by
 * system properties:
 *
 * <ul>
 * <li>sluice.client.served: a client the broker serves;</li>
 * <li>sluice.client.refused: clients it refuses, comma-separated;</li>
 * <li>sluice.client.refusal: the exception that each of their producers,
 * consumers and admin clients gets (a class name).</li>
 * </ul>
 */
class SecurityTest {
    private static final int PARTITIONS = 2;
    /** Records of each round trip: before the refusals and after them. */
    private static final int RECORDS = 200;

    private static Properties settings(String property) throws IOException {
        String path = System.getProperty(property, "");
        if (path.isEmpty()) {
            throw new IllegalStateException("the system property " + property + " is not set");
        }
        return load(path);
    }

    private static Properties load(String path) throws IOException {
        Properties properties = new Properties();
        try (Reader reader = Files.newBufferedReader(Path.of(path), StandardCharsets.UTF_8)) {
            properties.load(reader);
        }
        assertFalse(properties.isEmpty(), path + " holds a client's settings");
        properties.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, Sluice.bootstrap());
        return properties;
    }

    private static Admin admin(Properties settings) {
        Properties properties = new Properties();
        properties.putAll(settings);
        properties.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, (int) Sluice.WAIT.toMillis());
        return Admin.create(properties);
    }

    private static KafkaProducer<byte[], byte[]> producer(Properties settings) {
        Properties properties = new Properties();
        properties.putAll(settings);
        properties.put(ProducerConfig.ACKS_CONFIG, "all");
        properties.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
        properties.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, (int) Sluice.WAIT.toMillis());
        properties.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class);
        properties.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class);
        return new KafkaProducer<>(properties);
    }

    private static KafkaConsumer<byte[], byte[]> consumer(Properties settings) {
        Properties properties = new Properties();
        properties.putAll(settings);
        properties.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        properties.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, (int) Sluice.WAIT.toMillis());
        properties.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class);
        properties.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class);
        return new KafkaConsumer<>(properties);
    }

    /** Record `index` goes to partition index % PARTITIONS, at offset index / PARTITIONS. */
    private static byte[] key(int index) {
        return ("key-" + index).getBytes(StandardCharsets.UTF_8);
    }

    private static byte[] value(String topic, int index) {
        return (topic + " record " + index).getBytes(StandardCharsets.UTF_8);
    }

    /**
     * Produces records `from` to `to` (exclusive) and reads back every
     * record of `topic` from its beginning: records 0 to `to`, each at
     * the offset its index gives.
     */
    private static void roundTrip(Properties settings, String topic, int from, int to) throws Exception {
        List<Future<RecordMetadata>> sent = new ArrayList<>();
        try (KafkaProducer<byte[], byte[]> producer = producer(settings)) {
            for (int index = from; index < to; index++) {
                sent.add(producer.send(new ProducerRecord<>(topic, index % PARTITIONS, key(index), value(topic, index))));
            }
            producer.flush();
        }
        for (int index = from; index < to; index++) {
            RecordMetadata metadata = sent.get(index - from).get(Sluice.WAIT.toMillis(), TimeUnit.MILLISECONDS);
            assertEquals(index % PARTITIONS, metadata.partition(), "record " + index + "'s partition");
            assertEquals(index / PARTITIONS, metadata.offset(), "record " + index + "'s offset");
        }
        try (KafkaConsumer<byte[], byte[]> consumer = consumer(settings)) {
            consumer.assign(Sluice.partitions(topic, PARTITIONS));
            consumer.seekToBeginning(consumer.assignment());
            List<ConsumerRecord<byte[], byte[]>> records = Sluice.poll(consumer, to);
            assertEquals(to, records.size(), "records read back from " + topic);
            boolean[] seen = new boolean[to];
            for (ConsumerRecord<byte[], byte[]> record : records) {
                int index = (int) record.offset() * PARTITIONS + record.partition();
                String place = topic + " " + record.partition() + "/" + record.offset();
                assertFalse(index >= to || seen[index], place + ": a record produced, read once");
                seen[index] = true;
                assertEquals(new String(key(index), StandardCharsets.UTF_8),
                        new String(record.key(), StandardCharsets.UTF_8), place + ": key");
                assertEquals(new String(value(topic, index), StandardCharsets.UTF_8),
                        new String(record.value(), StandardCharsets.UTF_8), place + ": value");
            }
            Map<TopicPartition, Long> ends = consumer.endOffsets(consumer.assignment());
            for (TopicPartition partition : consumer.assignment()) {
                long expected = (to - partition.partition() + PARTITIONS - 1) / PARTITIONS;
                assertEquals(expected, ends.get(partition), partition + ": the end offset");
            }
        }
    }

    /** Asserts that `thrown` is `refusal` itself (not a subclass, not wrapped). */
    private static void assertRefusal(Class<?> refusal, Throwable thrown, String what) {
        System.out.println(what + " refused: " + thrown);
        assertEquals(refusal, thrown.getClass(), what + ": " + thrown);
    }

    /** The producer, the consumer and the admin client of `settings` are each refused with `refusal`. */
    private static void refused(Properties settings, Class<?> refusal, String topic, String what) {
        try (KafkaProducer<byte[], byte[]> producer = producer(settings)) {
            ExecutionException failed = assertThrows(ExecutionException.class,
                    () -> producer.send(new ProducerRecord<>(topic, 0, key(-1), value(topic, -1)))
                            .get(Sluice.WAIT.toMillis(), TimeUnit.MILLISECONDS),
                    what + ": a record sent");
            assertRefusal(refusal, failed.getCause(), what + "'s producer");
        }
        try (KafkaConsumer<byte[], byte[]> consumer = consumer(settings)) {
            consumer.assign(Sluice.partitions(topic, PARTITIONS));
            consumer.seekToBeginning(consumer.assignment());
            AuthenticationException failed = assertThrows(AuthenticationException.class,
                    () -> consumer.poll(Sluice.WAIT), what + ": a poll");
            assertRefusal(refusal, failed, what + "'s consumer");
        }
        try (Admin admin = admin(settings)) {
            ExecutionException failed = assertThrows(ExecutionException.class,
                    () -> admin.listTopics().names().get(Sluice.WAIT.toMillis(), TimeUnit.MILLISECONDS),
                    what + ": topics listed");
            assertRefusal(refusal, failed.getCause(), what + "'s admin client");
        }
    }

    @Test
    void servesItsClientsAndRefusesTheOthers() throws Exception {
        Properties served = settings("sluice.client.served");
        String refusedPaths = System.getProperty("sluice.client.refused", "");
        assertFalse(refusedPaths.isEmpty(), "the system property sluice.client.refused is set");
        Class<?> refusal = Class.forName(System.getProperty("sluice.client.refusal", ""));

        String topic = Sluice.unique("secured");
        try (Admin admin = admin(served)) {
            Sluice.createTopic(admin, topic, PARTITIONS, (short) 1);
        }
        roundTrip(served, topic, 0, RECORDS);
        for (String path : refusedPaths.split(",")) {
            refused(load(path), refusal, topic, Path.of(path).getFileName().toString());
        }
        // The broker serves on, and stored nothing of the refused clients.
        roundTrip(served, topic, RECORDS, 2 * RECORDS);
    }
}
