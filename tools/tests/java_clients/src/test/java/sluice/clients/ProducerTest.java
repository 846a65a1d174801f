package sluice.clients;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
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
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The idempotent producer (acks=all) with each compression codec: keyed
 * records with headers and timestamps, to chosen partitions, read back
 * with a consumer and compared field by field, at the offsets that the
 * producer was told.
 */
class ProducerTest {
    private static final int PARTITIONS = 3;
    private static final int RECORDS = 3_000;
    private static final long TIMESTAMP_BASE = 1_700_000_000_000L;

    private static byte[] key(int index) {
        return index % 10 == 9 ? null : ("key-" + (index % 250)).getBytes(StandardCharsets.UTF_8);
    }

    /** Values of varied length and bytes; every hundredth one null. */
    private static byte[] value(int index) {
        if (index % 100 == 42) {
            return null;
        }
        byte[] value = new byte[index % 300];
        for (int at = 0; at < value.length; at++) {
            value[at] = (byte) (index * 31 + at);
        }
        return value;
    }

    private static List<Header> headers(int index) {
        List<Header> headers = new ArrayList<>();
        headers.add(new RecordHeader("index", Integer.toString(index).getBytes(StandardCharsets.UTF_8)));
        headers.add(new RecordHeader("bin", new byte[] {(byte) index, 0, (byte) 255}));
        if (index % 3 == 0) {
            headers.add(new RecordHeader("null-value", null));
        }
        if (index % 5 == 0) {
            // The same name twice: both kept, in order.
            headers.add(new RecordHeader("index", "again".getBytes(StandardCharsets.UTF_8)));
        }
        return headers;
    }

    /** Producers that are not idempotent, with acks=0 and acks=1, to a topic they create. */
    @ParameterizedTest
    @ValueSource(strings = {"0", "1"})
    void producersWithFewerAcksCreateTheTopicAndAreRead(String acks) throws Exception {
        String topic = Sluice.unique("acks-" + acks);
        int records = 500;
        try (KafkaProducer<byte[], byte[]> producer = Sluice.producer(Map.of(
                ProducerConfig.ACKS_CONFIG, acks,
                ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, false,
                ProducerConfig.COMPRESSION_TYPE_CONFIG, "gzip"))) {
            // Unknown to the broker: created on the first metadata request,
            // with the broker's partition count for topics created that way.
            assertEquals(4, producer.partitionsFor(topic).size(), "partitions of the topic created");
            List<Future<RecordMetadata>> sent = new ArrayList<>();
            for (int index = 0; index < records; index++) {
                sent.add(producer.send(new ProducerRecord<>(topic, index % 4, key(index), value(index))));
            }
            producer.flush();
            for (Future<RecordMetadata> future : sent) {
                RecordMetadata metadata = future.get(Sluice.WAIT.toMillis(), TimeUnit.MILLISECONDS);
                if (acks.equals("0")) {
                    assertEquals(-1, metadata.offset(), "acks=0: no offset is told");
                }
            }
        }
        try (KafkaConsumer<byte[], byte[]> consumer = Sluice.consumer()) {
            consumer.assign(Sluice.partitions(topic, 4));
            consumer.seekToBeginning(consumer.assignment());
            List<ConsumerRecord<byte[], byte[]>> read = Sluice.poll(consumer, records);
            assertEquals(records, read.size(), "records read back");
            for (ConsumerRecord<byte[], byte[]> record : read) {
                int index = (int) record.offset() * 4 + record.partition();
                assertArrayEquals(value(index), record.value(), record.partition() + "/" + record.offset());
            }
        }
    }

    /** A record of 900 KB, under the client's and Kafka's default limits of 1 MB. */
    @Test
    void largeRecordRoundTrips() throws Exception {
        String topic = Sluice.unique("large");
        byte[] large = new byte[900 * 1024];
        for (int at = 0; at < large.length; at++) {
            large[at] = (byte) (at * 7 + at / 1024);
        }
        try (Admin admin = Sluice.admin()) {
            Sluice.createTopic(admin, topic, 1, (short) 1);
        }
        try (KafkaProducer<byte[], byte[]> producer = Sluice.producer(Map.of(
                ProducerConfig.COMPRESSION_TYPE_CONFIG, "none"))) {
            RecordMetadata first = producer.send(new ProducerRecord<>(topic, 0, null, large))
                    .get(Sluice.WAIT.toMillis(), TimeUnit.MILLISECONDS);
            assertEquals(0, first.offset());
            assertEquals(1, producer.send(new ProducerRecord<>(topic, 0, null, "small".getBytes(StandardCharsets.UTF_8)))
                    .get(Sluice.WAIT.toMillis(), TimeUnit.MILLISECONDS).offset());
        }
        try (KafkaConsumer<byte[], byte[]> consumer = Sluice.consumer()) {
            TopicPartition partition = new TopicPartition(topic, 0);
            consumer.assign(List.of(partition));
            consumer.seekToBeginning(List.of(partition));
            List<ConsumerRecord<byte[], byte[]>> read = Sluice.poll(consumer, 2);
            assertEquals(2, read.size());
            assertArrayEquals(large, read.get(0).value(), "the large record");
            assertArrayEquals("small".getBytes(StandardCharsets.UTF_8), read.get(1).value());
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"none", "gzip", "snappy", "lz4", "zstd"})
    void idempotentProducerRoundTripsEveryField(String compression) throws Exception {
        String topic = Sluice.unique("producer-" + compression);
        try (Admin admin = Sluice.admin()) {
            Sluice.createTopic(admin, topic, PARTITIONS, (short) 1);
        }

        Map<String, Object> config = new HashMap<>();
        config.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, compression);
        config.put(ProducerConfig.LINGER_MS_CONFIG, 5);
        config.put(ProducerConfig.BATCH_SIZE_CONFIG, 16_384);
        config.put(ProducerConfig.MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION, 5);
        List<Future<RecordMetadata>> sent = new ArrayList<>();
        try (KafkaProducer<byte[], byte[]> producer = Sluice.producer(config)) {
            for (int index = 0; index < RECORDS; index++) {
                sent.add(producer.send(new ProducerRecord<>(topic, index % PARTITIONS,
                        TIMESTAMP_BASE + index, key(index), value(index), headers(index))));
            }
            producer.flush();
        }

        // Each partition's records got offsets 0, 1, 2, ... in the order
        // sent: nothing twice, nothing lost.
        Map<TopicPartition, Long> offsets = new HashMap<>();
        Map<String, Integer> indexAt = new HashMap<>();
        for (int index = 0; index < RECORDS; index++) {
            RecordMetadata metadata = sent.get(index).get(Sluice.WAIT.toMillis(), TimeUnit.MILLISECONDS);
            TopicPartition partition = new TopicPartition(topic, index % PARTITIONS);
            assertEquals(partition.partition(), metadata.partition(), "record " + index);
            long expected = offsets.getOrDefault(partition, 0L);
            assertEquals(expected, metadata.offset(), "record " + index + "'s offset");
            offsets.put(partition, expected + 1);
            assertEquals(TIMESTAMP_BASE + index, metadata.timestamp(), "record " + index + "'s timestamp");
            indexAt.put(metadata.partition() + "/" + metadata.offset(), index);
        }

        try (KafkaConsumer<byte[], byte[]> consumer = Sluice.consumer()) {
            consumer.assign(Sluice.partitions(topic, PARTITIONS));
            consumer.seekToBeginning(consumer.assignment());
            List<ConsumerRecord<byte[], byte[]>> records = Sluice.poll(consumer, RECORDS);
            assertEquals(RECORDS, records.size(), "records read back");
            Map<Integer, Long> next = new HashMap<>();
            for (ConsumerRecord<byte[], byte[]> record : records) {
                String place = topic + " " + record.partition() + "/" + record.offset();
                long expectedOffset = next.getOrDefault(record.partition(), 0L);
                assertEquals(expectedOffset, record.offset(), place + ": offsets in order");
                next.put(record.partition(), expectedOffset + 1);
                Integer index = indexAt.get(record.partition() + "/" + record.offset());
                assertTrue(index != null, place + ": an offset the producer was given");
                assertArrayEquals(key(index), record.key(), place + ": key");
                assertArrayEquals(value(index), record.value(), place + ": value");
                assertEquals(TIMESTAMP_BASE + index, record.timestamp(), place + ": timestamp");
                List<Header> read = new ArrayList<>();
                record.headers().forEach(read::add);
                List<Header> expected = headers(index);
                assertEquals(expected.size(), read.size(), place + ": header count");
                for (int at = 0; at < expected.size(); at++) {
                    assertEquals(expected.get(at).key(), read.get(at).key(), place + ": header name");
                    if (expected.get(at).value() == null) {
                        assertNull(read.get(at).value(), place + ": a null header value");
                    } else {
                        assertArrayEquals(expected.get(at).value(), read.get(at).value(),
                                place + ": header value");
                    }
                }
            }
            for (TopicPartition partition : consumer.assignment()) {
                assertEquals(offsets.get(partition), consumer.position(partition),
                        partition + ": the position after the last record");
            }
            assertEquals(offsets, consumer.endOffsets(consumer.assignment()), "end offsets");
        }
    }
}
