package sluice.clients;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerGroupMetadata;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.NoOffsetForPartitionException;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Consumers in a group, with the classic group protocol and with the
 * consumer group protocol (KIP-848, group.protocol=consumer): subscribe,
 * commit (sync and async) and resume from the commits, seek, seek to the
 * beginning and the end, find offsets by time, and two consumers sharing
 * a topic's partitions and taking over each other's.
 */
class ConsumerTest {
    private static final long TIMESTAMP_BASE = 1_700_000_000_000L;

    private static KafkaConsumer<byte[], byte[]> consumer(String protocol, String group) {
        return Sluice.consumer(group, Map.of(ConsumerConfig.GROUP_PROTOCOL_CONFIG, protocol));
    }

    /** Produces `count` records to each partition; record i of a partition has timestamp base + 1000 i. */
    private static void produce(String topic, int partitions, int from, int count) throws Exception {
        try (KafkaProducer<byte[], byte[]> producer = Sluice.producer(Map.of())) {
            for (int index = from; index < from + count; index++) {
                for (int partition = 0; partition < partitions; partition++) {
                    producer.send(new ProducerRecord<>(topic, partition, TIMESTAMP_BASE + 1000L * index,
                            ("key-" + index).getBytes(StandardCharsets.UTF_8),
                            ("value-" + partition + "-" + index).getBytes(StandardCharsets.UTF_8)));
                }
            }
            producer.flush();
        }
    }

    private static String topic(String protocol, String what, int partitions) throws Exception {
        String topic = Sluice.unique(what + "-" + protocol);
        try (Admin admin = Sluice.admin()) {
            Sluice.createTopic(admin, topic, partitions, (short) 1);
        }
        return topic;
    }

    /** Polls until the consumer owns `partitions`. */
    private static void pollUntilAssigned(KafkaConsumer<byte[], byte[]> consumer, Set<TopicPartition> partitions)
            throws InterruptedException {
        Sluice.waitFor(() -> {
            consumer.poll(Duration.ofMillis(100));
            return consumer.assignment().equals(partitions);
        }, "the consumer is assigned " + partitions + " (has " + consumer.assignment() + ")");
    }

    @ParameterizedTest
    @ValueSource(strings = {"classic", "consumer"})
    void commitsSyncAndAsyncAndResumesFromThem(String protocol) throws Exception {
        String topic = topic(protocol, "commits", 4);
        String group = Sluice.unique("commits-" + protocol);
        produce(topic, 4, 0, 100);
        TopicPartition p0 = new TopicPartition(topic, 0);
        TopicPartition p1 = new TopicPartition(topic, 1);
        TopicPartition p2 = new TopicPartition(topic, 2);
        TopicPartition p3 = new TopicPartition(topic, 3);
        Set<TopicPartition> all = Sluice.partitions(topic, 4);

        try (KafkaConsumer<byte[], byte[]> consumer = consumer(protocol, group)) {
            consumer.subscribe(List.of(topic));
            List<ConsumerRecord<byte[], byte[]>> records = Sluice.poll(consumer, 400);
            assertEquals(400, records.size(), "records read in the group");
            assertEquals(all, consumer.assignment(), "one consumer owns every partition");

            // commitSync() commits the positions: the end of each partition.
            consumer.commitSync();
            Map<TopicPartition, OffsetAndMetadata> committed = consumer.committed(all);
            for (TopicPartition partition : all) {
                assertEquals(100, committed.get(partition).offset(), partition + " committed");
            }

            consumer.commitSync(Map.of(
                    p0, new OffsetAndMetadata(60, "sync metadata"),
                    p1, new OffsetAndMetadata(61)));
            CompletableFuture<Map<TopicPartition, OffsetAndMetadata>> done = new CompletableFuture<>();
            consumer.commitAsync(Map.of(
                    p2, new OffsetAndMetadata(70, "async metadata"),
                    p3, new OffsetAndMetadata(71)), (offsets, error) -> {
                        if (error != null) {
                            done.completeExceptionally(error);
                        } else {
                            done.complete(offsets);
                        }
                    });
            // The callback runs in a call to the consumer.
            Sluice.waitFor(() -> {
                consumer.poll(Duration.ofMillis(50));
                return done.isDone();
            }, "commitAsync's callback");
            assertEquals(Set.of(p2, p3), done.get().keySet(), "offsets committed asynchronously");

            committed = consumer.committed(all);
            assertEquals(60, committed.get(p0).offset());
            assertEquals("sync metadata", committed.get(p0).metadata());
            assertEquals(61, committed.get(p1).offset());
            assertEquals(70, committed.get(p2).offset());
            assertEquals("async metadata", committed.get(p2).metadata());
            assertEquals(71, committed.get(p3).offset());
        }

        // A new member of the group starts at the commits.
        try (KafkaConsumer<byte[], byte[]> consumer = consumer(protocol, group)) {
            consumer.subscribe(List.of(topic));
            int expected = 40 + 39 + 30 + 29;
            List<ConsumerRecord<byte[], byte[]>> records = Sluice.poll(consumer, expected);
            assertEquals(expected, records.size(), "records after the commits");
            Map<Integer, Long> first = new HashMap<>();
            for (ConsumerRecord<byte[], byte[]> record : records) {
                first.putIfAbsent(record.partition(), record.offset());
            }
            assertEquals(Map.of(0, 60L, 1, 61L, 2, 70L, 3, 71L), first, "each partition's first offset read");
            assertTrue(consumer.poll(Duration.ofMillis(500)).isEmpty(), "nothing more");
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"classic", "consumer"})
    void readCommittedAutoCommitPauseAndGroupMetadata(String protocol) throws Exception {
        String topic = topic(protocol, "details", 2);
        String group = Sluice.unique("details-" + protocol);
        TopicPartition p0 = new TopicPartition(topic, 0);
        TopicPartition p1 = new TopicPartition(topic, 1);
        produce(topic, 2, 0, 20);

        // Nothing committed and auto.offset.reset=none: the consumer says so.
        try (KafkaConsumer<byte[], byte[]> consumer = Sluice.consumer(group, Map.of(
                ConsumerConfig.GROUP_PROTOCOL_CONFIG, protocol,
                ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "none"))) {
            consumer.assign(List.of(p0));
            assertNull(consumer.committed(Set.of(p0)).get(p0), "nothing committed yet");
            assertThrows(NoOffsetForPartitionException.class, () -> consumer.poll(Duration.ofSeconds(5)));
        }

        // read_committed (no transactions: everything), auto commit on close.
        try (KafkaConsumer<byte[], byte[]> consumer = Sluice.consumer(group, Map.of(
                ConsumerConfig.GROUP_PROTOCOL_CONFIG, protocol,
                ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed",
                ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, true,
                ConsumerConfig.AUTO_COMMIT_INTERVAL_MS_CONFIG, 60_000))) {
            assertTrue(consumer.listTopics().containsKey(topic), "listTopics");
            assertEquals(2, consumer.partitionsFor(topic).size(), "partitionsFor");
            consumer.subscribe(List.of(topic));
            pollUntilAssigned(consumer, Set.of(p0, p1));
            ConsumerGroupMetadata metadata = consumer.groupMetadata();
            assertEquals(group, metadata.groupId());
            assertTrue(metadata.generationId() > 0, "a generation: " + metadata);
            assertFalse(metadata.memberId().isEmpty(), "a member id: " + metadata);

            // Paused, p0 gives nothing; resumed, it does. (The polls
            // until assigned may have read some already.)
            consumer.seekToBeginning(List.of(p0, p1));
            consumer.pause(List.of(p0));
            List<ConsumerRecord<byte[], byte[]>> records = Sluice.poll(consumer, 20);
            assertEquals(20, records.size(), "p1's records while p0 is paused");
            assertTrue(records.stream().allMatch(record -> record.partition() == 1), "only p1's");
            consumer.resume(List.of(p0));
            records = Sluice.poll(consumer, 20);
            assertEquals(20, records.size(), "p0's records once resumed");
            assertTrue(records.stream().allMatch(record -> record.partition() == 0), "only p0's");
            assertEquals(0, consumer.currentLag(p0).orElse(-1), "no lag left on p0");
        }
        try (Admin admin = Sluice.admin()) {
            Map<TopicPartition, OffsetAndMetadata> committed = Sluice.get(
                    admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata());
            assertEquals(20, committed.get(p0).offset(), "auto commit on close: " + committed);
            assertEquals(20, committed.get(p1).offset(), "auto commit on close: " + committed);
        }

        // auto.offset.reset=latest in a new group: only what comes next.
        try (KafkaConsumer<byte[], byte[]> consumer = Sluice.consumer(Sluice.unique("latest"), Map.of(
                ConsumerConfig.GROUP_PROTOCOL_CONFIG, protocol,
                ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "latest"))) {
            consumer.subscribe(List.of(topic));
            pollUntilAssigned(consumer, Set.of(p0, p1));
            assertEquals(20, consumer.position(p0), "latest");
            produce(topic, 2, 20, 1);
            List<ConsumerRecord<byte[], byte[]>> records = Sluice.poll(consumer, 2);
            assertEquals(2, records.size());
            assertTrue(records.stream().allMatch(record -> record.offset() == 20), "only the new records");
        }
    }

    /** A static member (group.instance.id) that comes back gets its partitions back. */
    @ParameterizedTest
    @ValueSource(strings = {"classic", "consumer"})
    void staticMembersKeepTheirPartitions(String protocol) throws Exception {
        String topic = topic(protocol, "static", 4);
        String group = Sluice.unique("static-" + protocol);
        Set<TopicPartition> ofA;
        Map<String, Object> configA = Map.of(ConsumerConfig.GROUP_PROTOCOL_CONFIG, protocol,
                ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, "instance-a");
        Map<String, Object> configB = Map.of(ConsumerConfig.GROUP_PROTOCOL_CONFIG, protocol,
                ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, "instance-b");
        try (KafkaConsumer<byte[], byte[]> b = Sluice.consumer(group, configB)) {
            b.subscribe(List.of(topic));
            try (KafkaConsumer<byte[], byte[]> a = Sluice.consumer(group, configA)) {
                a.subscribe(List.of(topic));
                Sluice.waitFor(() -> {
                    a.poll(Duration.ofMillis(100));
                    b.poll(Duration.ofMillis(100));
                    return a.assignment().size() == 2 && b.assignment().size() == 2;
                }, "two static members share four partitions");
                ofA = new HashSet<>(a.assignment());
            }
            try (KafkaConsumer<byte[], byte[]> a = Sluice.consumer(group, configA)) {
                a.subscribe(List.of(topic));
                Sluice.waitFor(() -> {
                    a.poll(Duration.ofMillis(100));
                    b.poll(Duration.ofMillis(100));
                    return a.assignment().equals(ofA) && b.assignment().size() == 2;
                }, "instance-a back with " + ofA);
            }
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"classic", "consumer"})
    void seeksAndFindsOffsetsByTime(String protocol) throws Exception {
        String topic = topic(protocol, "seeks", 2);
        String group = Sluice.unique("seeks-" + protocol);
        produce(topic, 2, 0, 50);
        TopicPartition p0 = new TopicPartition(topic, 0);
        TopicPartition p1 = new TopicPartition(topic, 1);

        try (KafkaConsumer<byte[], byte[]> consumer = consumer(protocol, group)) {
            consumer.subscribe(List.of(topic));
            pollUntilAssigned(consumer, Set.of(p0, p1));

            consumer.seek(p0, 10);
            consumer.seek(p1, 45);
            assertEquals(10, consumer.position(p0));
            List<ConsumerRecord<byte[], byte[]>> records = Sluice.poll(consumer, 40 + 5);
            assertEquals(45, records.size(), "records after the seeks");
            assertEquals(10, records.stream().filter(r -> r.partition() == 0).findFirst().get().offset());
            assertEquals(45, records.stream().filter(r -> r.partition() == 1).findFirst().get().offset());
            assertEquals("value-0-10", new String(
                    records.stream().filter(r -> r.partition() == 0).findFirst().get().value(),
                    StandardCharsets.UTF_8));

            consumer.seekToBeginning(List.of(p0));
            assertEquals(0, consumer.position(p0), "the position after seekToBeginning");
            consumer.seekToEnd(List.of(p0, p1));
            assertEquals(50, consumer.position(p0), "the position after seekToEnd");
            assertEquals(50, consumer.position(p1), "the position after seekToEnd");

            assertEquals(Map.of(p0, 0L, p1, 0L), consumer.beginningOffsets(List.of(p0, p1)));
            assertEquals(Map.of(p0, 50L, p1, 50L), consumer.endOffsets(List.of(p0, p1)));

            Map<TopicPartition, OffsetAndTimestamp> found = consumer.offsetsForTimes(Map.of(
                    p0, TIMESTAMP_BASE + 5_500,
                    p1, TIMESTAMP_BASE - 1));
            assertEquals(6, found.get(p0).offset(), "the first record at or after the time");
            assertEquals(TIMESTAMP_BASE + 6_000, found.get(p0).timestamp());
            assertEquals(0, found.get(p1).offset(), "a time before every record: the first");
            if (!(Sluice.clientIs3x() && protocol.equals("consumer"))) {
                // 3.x's consumer of the consumer protocol throws a
                // NullPointerException here, whatever the broker answers
                // (KAFKA-17686, fixed in 4.0).
                found = consumer.offsetsForTimes(Map.of(p0, TIMESTAMP_BASE + 1_000_000));
                assertTrue(found.containsKey(p0), "asked of p0");
                assertNull(found.get(p0), "a time after every record: none");
            }

            // From the end, only what comes next.
            produce(topic, 2, 50, 5);
            records = Sluice.poll(consumer, 10);
            assertEquals(10, records.size(), "records produced after seekToEnd");
            for (ConsumerRecord<byte[], byte[]> record : records) {
                assertTrue(record.offset() >= 50, "read " + record.offset() + " after seekToEnd");
            }
            assertTrue(consumer.poll(Duration.ofMillis(300)).isEmpty(), "nothing more");
        }
    }

    /**
     * `assignor` is the classic protocol's partition.assignment.strategy
     * (the client's default if empty), or the consumer protocol's
     * group.remote.assignor (the broker's default if empty).
     */
    @ParameterizedTest
    @CsvSource({"classic,", "classic,org.apache.kafka.clients.consumer.CooperativeStickyAssignor",
        "consumer,", "consumer,range"})
    void twoConsumersSharePartitionsAndTakeOverOnLeave(String protocol, String assignor) throws Exception {
        int partitions = 6;
        String topic = topic(protocol, "shared", partitions);
        String group = Sluice.unique("shared-" + protocol);
        Set<TopicPartition> all = Sluice.partitions(topic, partitions);
        produce(topic, partitions, 0, 60);
        Map<String, Object> config = new HashMap<>();
        config.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, protocol);
        if (assignor != null && protocol.equals("classic")) {
            config.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, assignor);
        } else if (assignor != null) {
            config.put(ConsumerConfig.GROUP_REMOTE_ASSIGNOR_CONFIG, assignor);
        }

        try (KafkaConsumer<byte[], byte[]> a = Sluice.consumer(group, config);
                KafkaConsumer<byte[], byte[]> b = Sluice.consumer(group, config)) {
            a.subscribe(List.of(topic));
            b.subscribe(List.of(topic));
            Map<TopicPartition, List<Long>> read = new HashMap<>();
            List<String> misread = new ArrayList<>();
            // Each consumer reads only what it owns, and together they
            // come to own every partition, none twice.
            Sluice.waitFor(() -> {
                for (KafkaConsumer<byte[], byte[]> consumer : List.of(a, b)) {
                    for (ConsumerRecord<byte[], byte[]> record : consumer.poll(Duration.ofMillis(100))) {
                        TopicPartition partition = new TopicPartition(record.topic(), record.partition());
                        if (!consumer.assignment().contains(partition)) {
                            misread.add(partition + "/" + record.offset());
                        }
                        read.computeIfAbsent(partition, p -> new ArrayList<>()).add(record.offset());
                    }
                }
                Set<TopicPartition> union = new HashSet<>(a.assignment());
                union.addAll(b.assignment());
                boolean disjoint = a.assignment().stream().noneMatch(b.assignment()::contains);
                int total = read.values().stream().mapToInt(List::size).sum();
                return !a.assignment().isEmpty() && !b.assignment().isEmpty() && disjoint
                        && union.equals(all) && total >= 60 * partitions;
            }, "two consumers share the partitions and read every record");
            assertTrue(misread.isEmpty(), "records read from partitions not owned: " + misread);
            a.commitSync();
            b.commitSync();
            Set<TopicPartition> ofB = new HashSet<>(b.assignment());
            // A record read twice is allowed only from a partition that
            // moved between them before a commit; every offset is there.
            for (TopicPartition partition : all) {
                assertEquals(60, new HashSet<>(read.get(partition)).size(), partition + ": offsets read");
            }

            b.close();
            pollUntilAssigned(a, all);
            produce(topic, partitions, 60, 10);
            List<ConsumerRecord<byte[], byte[]>> records = Sluice.poll(a, 10 * partitions);
            assertEquals(10 * partitions, records.size(), "records after the take-over");
            for (ConsumerRecord<byte[], byte[]> record : records) {
                assertTrue(record.offset() >= 60,
                        record.partition() + "/" + record.offset() + " read again after b committed it"
                                + (ofB.contains(new TopicPartition(topic, record.partition())) ? " (b's)" : ""));
            }
            assertFalse(a.assignment().isEmpty());
        }
    }
}
