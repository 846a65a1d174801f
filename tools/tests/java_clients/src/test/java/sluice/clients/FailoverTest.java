package sluice.clients;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.junit.jupiter.api.Test;

/**
 * The idempotent producer across the loss of a broker of three: the test
 * of tools/tests/java_clients.rs kills one node while this produces, and
 * starts it again. Every record acknowledged is stored once, in the order
 * sent within its partition, and nothing is lost. The two sides meet in
 * files of the directory sluice.signals: this writes "producing" once
 * records flow, the Rust side writes "restarted" once the node is back.
 */
class FailoverTest {
    private static final int PARTITIONS = 6;
    /** Records sent before saying "producing", and again after "restarted". */
    private static final int RECORDS_AROUND = 2_000;
    /** How long the Rust side may take to kill and restart the node. */
    private static final long RESTART_MS_MAX = 120_000;

    @Test
    void idempotentProducerLosesAndRepeatsNothingWhenABrokerIsKilled() throws Exception {
        Path signals = Path.of(System.getProperty("sluice.signals", ""));
        assertTrue(Files.isDirectory(signals), "the system property sluice.signals names a directory: " + signals);
        String topic = Sluice.unique("failover");
        try (Admin admin = Sluice.admin()) {
            Sluice.createTopic(admin, topic, PARTITIONS, (short) 3);
        }

        List<Future<RecordMetadata>> sent = new ArrayList<>();
        try (KafkaProducer<byte[], byte[]> producer = Sluice.producer(Map.of(
                ProducerConfig.LINGER_MS_CONFIG, 2,
                ProducerConfig.COMPRESSION_TYPE_CONFIG, "zstd",
                ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 120_000,
                ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 10_000))) {
            int index = 0;
            for (; index < RECORDS_AROUND; index++) {
                sent.add(send(producer, topic, index));
            }
            producer.flush();
            Files.writeString(signals.resolve("producing"), "producing");
            long deadline = System.currentTimeMillis() + RESTART_MS_MAX;
            // Paced while the node is down and comes back.
            while (!Files.exists(signals.resolve("restarted"))) {
                assertTrue(System.currentTimeMillis() < deadline, "the node restarted in time");
                for (int burst = 0; burst < 20; burst++, index++) {
                    sent.add(send(producer, topic, index));
                }
                Thread.sleep(5);
            }
            for (int more = 0; more < RECORDS_AROUND; more++, index++) {
                sent.add(send(producer, topic, index));
            }
            producer.flush();
        }

        // Every record acknowledged, each at an offset of its own.
        Map<String, Integer> indexAt = new HashMap<>();
        for (int index = 0; index < sent.size(); index++) {
            RecordMetadata metadata = sent.get(index).get(Sluice.WAIT.toMillis(), TimeUnit.MILLISECONDS);
            Integer before = indexAt.put(metadata.partition() + "/" + metadata.offset(), index);
            assertEquals(null, before, "records " + before + " and " + index + " at the same offset");
        }

        try (KafkaConsumer<byte[], byte[]> consumer = Sluice.consumer()) {
            consumer.assign(Sluice.partitions(topic, PARTITIONS));
            consumer.seekToBeginning(consumer.assignment());
            List<ConsumerRecord<byte[], byte[]>> records = Sluice.poll(consumer, sent.size());
            assertEquals(sent.size(), records.size(), "records stored: each once");
            Map<Integer, Integer> last = new HashMap<>();
            for (ConsumerRecord<byte[], byte[]> record : records) {
                String place = record.partition() + "/" + record.offset();
                int index = Integer.parseInt(new String(record.value(), StandardCharsets.UTF_8));
                assertEquals(indexAt.get(place), index, place + ": the record acknowledged there");
                Integer before = last.put(record.partition(), index);
                assertTrue(before == null || before < index, place + ": in the order sent");
            }
        }
    }

    private static Future<RecordMetadata> send(KafkaProducer<byte[], byte[]> producer, String topic, int index) {
        return producer.send(new ProducerRecord<>(topic, index % PARTITIONS,
                ("key-" + index).getBytes(StandardCharsets.UTF_8),
                Integer.toString(index).getBytes(StandardCharsets.UTF_8)));
    }
}
