package sluice.clients;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.Future;
import java.util.stream.Collectors;
import java.util.stream.IntStream;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ListTransactionsOptions;
import org.apache.kafka.clients.admin.ProducerState;
import org.apache.kafka.clients.admin.TransactionDescription;
import org.apache.kafka.clients.admin.TransactionListing;
import org.apache.kafka.clients.admin.TransactionState;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.IsolationLevel;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.InvalidProducerEpochException;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Transactions through the Java producer: a committed transaction is read
 * by read_committed consumers, an aborted one by read_uncommitted ones
 * only (and its producer goes on), a consumer group's offsets sent with a
 * transaction are committed with it only, a producer fenced by a newer
 * instance of its transactional.id fails and is never read committed, a
 * transaction left open past its timeout is aborted by the coordinator,
 * and the AdminClient lists and describes an ongoing transaction and its
 * producer.
 *
 * <p>Every topic has the replicas of the system property sluice.replicas
 * (1 unless given: a cluster's run gives 3).
 */
class TransactionTest {
    /** A transaction's timeout where the test does not wait for it. */
    private static final int TIMEOUT_MS = 60_000;
    /** The timeout the coordinator is to enforce, and how long the test waits past it. */
    private static final int SHORT_TIMEOUT_MS = 3_000;
    /** Past the timeout: the coordinator checks its clock twice a second. */
    private static final Duration PAST_SHORT_TIMEOUT = Duration.ofMillis(SHORT_TIMEOUT_MS + 2_500);

    private static short replicas() {
        return Short.parseShort(System.getProperty("sluice.replicas", "1"));
    }

    /**
     * The transaction protocol the client is expected to use (system
     * property sluice.transactionVersion): 2 is KIP-890 part 2, which a
     * 4.x client takes when the broker finalizes the feature; 1 the classic
     * protocol of a 3.x client.
     */
    private static int transactionVersion() {
        return Integer.parseInt(System.getProperty("sluice.transactionVersion", "1"));
    }

    private static String topic(String what, int partitions) throws Exception {
        String topic = Sluice.unique("txn-" + what);
        try (Admin admin = Sluice.admin()) {
            Sluice.createTopic(admin, topic, partitions, replicas());
        }
        return topic;
    }

    private static KafkaProducer<byte[], byte[]> transactional(String transactionalId, int timeoutMs) {
        return Sluice.producer(Map.of(
                ProducerConfig.TRANSACTIONAL_ID_CONFIG, transactionalId,
                ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, timeoutMs,
                ProducerConfig.MAX_BLOCK_MS_CONFIG, (int) Sluice.WAIT.toMillis()));
    }

    private static ProducerRecord<byte[], byte[]> record(String topic, int partition, String value) {
        return new ProducerRecord<>(topic, partition, null, value.getBytes(StandardCharsets.UTF_8));
    }

    /** Sends `count` values `prefix-N` over the partitions in turn; they are written once this returns. */
    private static List<String> send(KafkaProducer<byte[], byte[]> producer, String topic, int partitions,
            String prefix, int count) throws Exception {
        List<String> values = new ArrayList<>();
        List<Future<RecordMetadata>> sent = new ArrayList<>();
        for (int index = 0; index < count; index++) {
            String value = prefix + "-" + index;
            values.add(value);
            sent.add(producer.send(record(topic, index % partitions, value)));
        }
        producer.flush();
        for (Future<RecordMetadata> future : sent) {
            future.get();
        }
        return values;
    }

    /**
     * The values of `topic` that a consumer of `isolation` reads from the
     * start of each partition to its end as the consumer lists it (for
     * read_committed, the last stable offset).
     */
    private static List<String> read(String topic, int partitions, IsolationLevel isolation)
            throws InterruptedException {
        Map<String, Object> config = Map.of(ConsumerConfig.ISOLATION_LEVEL_CONFIG,
                isolation.toString().toLowerCase(java.util.Locale.ROOT));
        try (KafkaConsumer<byte[], byte[]> consumer = Sluice.consumer(null, config)) {
            Set<TopicPartition> assigned = Sluice.partitions(topic, partitions);
            consumer.assign(assigned);
            consumer.seekToBeginning(assigned);
            Map<TopicPartition, Long> end = consumer.endOffsets(assigned);
            List<String> values = new ArrayList<>();
            long deadline = System.nanoTime() + Sluice.WAIT.toNanos();
            while (end.entrySet().stream().anyMatch(e -> consumer.position(e.getKey()) < e.getValue())) {
                if (System.nanoTime() > deadline) {
                    Map<TopicPartition, Long> positions = new HashMap<>();
                    assigned.forEach(partition -> positions.put(partition, consumer.position(partition)));
                    throw new AssertionError(isolation + " reader of " + topic + " not at the end "
                            + end + " within " + Sluice.WAIT + ": at " + positions + " with " + values);
                }
                for (ConsumerRecord<byte[], byte[]> record : consumer.poll(Duration.ofMillis(100))) {
                    values.add(new String(record.value(), StandardCharsets.UTF_8));
                }
            }
            return values;
        }
    }

    /**
     * Fails unless a reader of `isolation` reads `expected` (in any order)
     * within the wait. A transaction's commit or abort returns once the
     * coordinator decided it; its markers, which move the last stable
     * offset, are written after: a read_committed reader may need a moment
     * more.
     */
    private static void assertReads(List<String> expected, String topic, int partitions,
            IsolationLevel isolation, String what) throws InterruptedException {
        long deadline = System.nanoTime() + Sluice.WAIT.toNanos();
        List<String> read = sorted(read(topic, partitions, isolation));
        while (!read.equals(sorted(expected)) && System.nanoTime() < deadline) {
            Thread.sleep(100);
            read = sorted(read(topic, partitions, isolation));
        }
        assertEquals(sorted(expected), read, what);
    }

    private static List<String> sorted(Collection<String> values) {
        return values.stream().sorted().collect(Collectors.toList());
    }

    private static String trace(Throwable error) {
        StringWriter text = new StringWriter();
        error.printStackTrace(new PrintWriter(text));
        return text.toString();
    }

    /** Whether `error` or a cause of it says that its producer was fenced. */
    private static boolean fenced(Throwable error) {
        for (Throwable cause = error; cause != null; cause = cause.getCause()) {
            if (cause instanceof ProducerFencedException || cause instanceof InvalidProducerEpochException) {
                return true;
            }
        }
        return false;
    }

    @FunctionalInterface
    private interface Step {
        void run() throws Exception;
    }

    /** The error `step` fails with; the test fails if it succeeds. */
    private static Throwable failure(Step step, String what) {
        try {
            step.run();
        } catch (Throwable error) {
            return error;
        }
        return fail(what + " succeeded");
    }

    @Test
    void committedTransactionsAreReadCommitted() throws Exception {
        String topic = topic("commit", 3);
        String transactionalId = Sluice.unique("commit");
        try (Admin admin = Sluice.admin();
                KafkaProducer<byte[], byte[]> producer = transactional(transactionalId, TIMEOUT_MS)) {
            producer.initTransactions();
            producer.beginTransaction();
            List<String> first = send(producer, topic, 3, "first", 300);
            // Open: written, but no read_committed reader gets past its start.
            assertEquals(List.of(), read(topic, 3, IsolationLevel.READ_COMMITTED),
                    "read_committed while the transaction is open");
            assertReads(first, topic, 3, IsolationLevel.READ_UNCOMMITTED,
                    "read_uncommitted while the transaction is open");
            producer.commitTransaction();
            assertReads(first, topic, 3, IsolationLevel.READ_COMMITTED,
                    "read_committed once committed");
            int firstEpoch = describe(admin, transactionalId).producerEpoch();

            producer.beginTransaction();
            List<String> second = send(producer, topic, 3, "second", 300);
            producer.commitTransaction();
            int secondEpoch = describe(admin, transactionalId).producerEpoch();
            if (transactionVersion() >= 2) {
                // KIP-890 part 2: each end bumps the epoch, so a late write
                // of the transaction before is fenced by its partition.
                assertEquals(firstEpoch + 1, secondEpoch, "the epoch after a second commit (transaction.version 2)");
            } else {
                assertEquals(firstEpoch, secondEpoch, "the epoch after a second commit (classic protocol)");
            }
            List<String> both = new ArrayList<>(first);
            both.addAll(second);
            assertReads(both, topic, 3, IsolationLevel.READ_COMMITTED,
                    "read_committed after a second transaction");
            assertReads(both, topic, 3, IsolationLevel.READ_UNCOMMITTED,
                    "read_uncommitted after a second transaction");
        }
    }

    @Test
    void abortedTransactionsAreReadUncommittedOnlyAndTheProducerGoesOn() throws Exception {
        String topic = topic("abort", 2);
        try (KafkaProducer<byte[], byte[]> producer = transactional(Sluice.unique("abort"), TIMEOUT_MS)) {
            producer.initTransactions();
            producer.beginTransaction();
            List<String> aborted = send(producer, topic, 2, "aborted", 100);
            producer.abortTransaction();
            assertEquals(List.of(), read(topic, 2, IsolationLevel.READ_COMMITTED),
                    "read_committed after the abort");
            assertReads(aborted, topic, 2, IsolationLevel.READ_UNCOMMITTED,
                    "read_uncommitted after the abort");

            // The same producer again: its next transaction commits.
            producer.beginTransaction();
            List<String> retried = send(producer, topic, 2, "retried", 100);
            producer.commitTransaction();
            assertReads(retried, topic, 2, IsolationLevel.READ_COMMITTED,
                    "read_committed after the retry: the committed ones only");
            List<String> all = new ArrayList<>(aborted);
            all.addAll(retried);
            assertReads(all, topic, 2, IsolationLevel.READ_UNCOMMITTED,
                    "read_uncommitted after the retry: both");

            // Aborted again, between committed ones: the reader skips it.
            producer.beginTransaction();
            List<String> abortedAgain = send(producer, topic, 2, "aborted-again", 50);
            producer.abortTransaction();
            producer.beginTransaction();
            List<String> last = send(producer, topic, 2, "last", 50);
            producer.commitTransaction();
            List<String> committed = new ArrayList<>(retried);
            committed.addAll(last);
            assertReads(committed, topic, 2, IsolationLevel.READ_COMMITTED,
                    "read_committed: the aborted transactions skipped");
            all.addAll(abortedAgain);
            all.addAll(last);
            assertReads(all, topic, 2, IsolationLevel.READ_UNCOMMITTED,
                    "read_uncommitted: everything");
        }
    }

    /**
     * Consume, transform, produce: the group's offsets are sent with the
     * transaction (sendOffsetsToTransaction with the consumer's group
     * metadata) and move only when it commits.
     */
    @ParameterizedTest
    @ValueSource(strings = {"classic", "consumer"})
    void offsetsSentWithATransactionAreCommittedWithItOnly(String protocol) throws Exception {
        String input = topic("offsets-in-" + protocol, 2);
        String output = topic("offsets-out-" + protocol, 2);
        String group = Sluice.unique("txn-offsets-" + protocol);
        TopicPartition p0 = new TopicPartition(input, 0);
        TopicPartition p1 = new TopicPartition(input, 1);
        List<String> inputs;
        try (KafkaProducer<byte[], byte[]> producer = Sluice.producer(Map.of())) {
            inputs = send(producer, input, 2, "input", 20);
        }
        List<String> copies = inputs.stream().map(value -> "copy-" + value).collect(Collectors.toList());

        try (Admin admin = Sluice.admin();
                KafkaConsumer<byte[], byte[]> consumer = Sluice.consumer(group, Map.of(
                        ConsumerConfig.GROUP_PROTOCOL_CONFIG, protocol,
                        ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed"));
                KafkaProducer<byte[], byte[]> producer = transactional(Sluice.unique("offsets"), TIMEOUT_MS)) {
            producer.initTransactions();
            consumer.subscribe(List.of(input));

            // The first attempt aborts: no offsets committed.
            List<ConsumerRecord<byte[], byte[]>> records = Sluice.poll(consumer, inputs.size());
            assertEquals(inputs.size(), records.size(), "the input read");
            assertEquals(Set.of(p0, p1), consumer.assignment(), "the consumer has both partitions");
            assertTrue(consumer.groupMetadata().generationId() > 0, "in a generation: " + consumer.groupMetadata());
            copy(producer, consumer, output, records);
            producer.abortTransaction();
            assertEquals(Map.of(), committed(admin, group), "offsets after the abort");

            // Again from the start, committed.
            consumer.seekToBeginning(List.of(p0, p1));
            records = Sluice.poll(consumer, inputs.size());
            assertEquals(inputs.size(), records.size(), "the input read again");
            copy(producer, consumer, output, records);
            assertEquals(Map.of(), committed(admin, group), "offsets sent, the transaction still open");
            producer.commitTransaction();

            // The commit returns once it is decided; the offsets are the
            // group's once the marker is written to its partition. A
            // read_committed consumer asks for stable offsets only
            // (require_stable), and is told to ask again until then.
            Map<TopicPartition, OffsetAndMetadata> stable = consumer.committed(Set.of(p0, p1));
            assertNotNull(stable.get(p0), "a stable offset of " + p0 + ": " + stable);
            assertNotNull(stable.get(p1), "a stable offset of " + p1 + ": " + stable);
            assertEquals(10L, stable.get(p0).offset(), "the consumer's committed offset of " + p0);
            assertEquals(10L, stable.get(p1).offset(), "the consumer's committed offset of " + p1);
            assertEquals(Map.of(p0, 10L, p1, 10L), committed(admin, group), "offsets after the commit");
        }
        assertReads(copies, output, 2, IsolationLevel.READ_COMMITTED,
                "the output read committed: the committed copies, once");
        List<String> twice = new ArrayList<>(copies);
        twice.addAll(copies);
        assertReads(twice, output, 2, IsolationLevel.READ_UNCOMMITTED,
                "the output read uncommitted: the aborted copies too");
    }

    /** Copies `records` to `output` in a transaction with the consumer's offsets; left open, its copies written. */
    private static void copy(KafkaProducer<byte[], byte[]> producer, KafkaConsumer<byte[], byte[]> consumer,
            String output, List<ConsumerRecord<byte[], byte[]>> records) {
        producer.beginTransaction();
        Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
        for (ConsumerRecord<byte[], byte[]> record : records) {
            String value = "copy-" + new String(record.value(), StandardCharsets.UTF_8);
            producer.send(record(output, record.partition(), value));
            offsets.merge(new TopicPartition(record.topic(), record.partition()),
                    new OffsetAndMetadata(record.offset() + 1),
                    (a, b) -> a.offset() >= b.offset() ? a : b);
        }
        // Written before the transaction ends: an abort drops what is not.
        producer.flush();
        producer.sendOffsetsToTransaction(offsets, consumer.groupMetadata());
    }

    /** The group's committed offsets, as the AdminClient lists them. */
    private static Map<TopicPartition, Long> committed(Admin admin, String group) throws Exception {
        Map<TopicPartition, Long> offsets = new TreeMap<>(
                java.util.Comparator.comparing(TopicPartition::topic).thenComparing(TopicPartition::partition));
        Sluice.get(admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata()).forEach(
                (partition, offset) -> {
                    if (offset != null) {
                        offsets.put(partition, offset.offset());
                    }
                });
        return offsets;
    }

    /**
     * A producer whose transactional.id a newer instance took over (a
     * zombie) is fenced: its send and commit fail, and what it wrote is
     * never read committed.
     */
    @Test
    void aZombieIsFencedByANewInstance() throws Exception {
        String topic = topic("zombie", 2);
        String transactionalId = Sluice.unique("zombie");
        KafkaProducer<byte[], byte[]> zombie = transactional(transactionalId, TIMEOUT_MS);
        try {
            zombie.initTransactions();
            zombie.beginTransaction();
            List<String> zombies = send(zombie, topic, 2, "zombie", 20);

            List<String> successors;
            try (KafkaProducer<byte[], byte[]> successor = transactional(transactionalId, TIMEOUT_MS)) {
                // Aborts the zombie's open transaction and fences it.
                successor.initTransactions();
                successor.beginTransaction();
                successors = send(successor, topic, 2, "successor", 20);
                successor.commitTransaction();
            }

            Throwable sent = failure(() -> zombie.send(record(topic, 0, "zombie-late")).get(),
                    "the zombie's send after it was fenced");
            assertTrue(fenced(sent), "the zombie's send fails as fenced:\n" + trace(sent));
            Throwable commit = failure(zombie::commitTransaction, "the zombie's commit");
            assertTrue(fenced(commit), "the zombie's commit fails as fenced:\n" + trace(commit));

            assertReads(successors, topic, 2, IsolationLevel.READ_COMMITTED,
                    "read_committed: the successor's records, none of the zombie's");
            List<String> uncommitted = read(topic, 2, IsolationLevel.READ_UNCOMMITTED);
            assertTrue(uncommitted.containsAll(zombies), "the zombie's first records were written: " + uncommitted);
            assertFalse(uncommitted.contains("zombie-late"), "the fenced send was not written");
        } finally {
            zombie.close(Duration.ofSeconds(5));
        }
    }

    /**
     * A transaction left open past its transaction.timeout.ms is aborted by
     * the coordinator: the last stable offset moves past it (another
     * producer's later records are read committed), its records are never
     * read committed, and its producer's commit fails.
     */
    @Test
    void theCoordinatorAbortsATransactionPastItsTimeout() throws Exception {
        String topic = topic("timeout", 1);
        KafkaProducer<byte[], byte[]> slow = transactional(Sluice.unique("slow"), SHORT_TIMEOUT_MS);
        try {
            slow.initTransactions();
            slow.beginTransaction();
            List<String> stale = send(slow, topic, 1, "slow", 10);
            Thread.sleep(PAST_SHORT_TIMEOUT.toMillis());

            List<String> later;
            try (KafkaProducer<byte[], byte[]> other = transactional(Sluice.unique("other"), TIMEOUT_MS)) {
                other.initTransactions();
                other.beginTransaction();
                later = send(other, topic, 1, "later", 10);
                other.commitTransaction();
            }
            assertReads(later, topic, 1, IsolationLevel.READ_COMMITTED,
                    "read_committed: the later records, past the timed out transaction");
            List<String> both = new ArrayList<>(stale);
            both.addAll(later);
            assertReads(both, topic, 1, IsolationLevel.READ_UNCOMMITTED, "read_uncommitted: both");

            Throwable commit = failure(slow::commitTransaction, "the commit of a timed out transaction");
            assertTrue(fenced(commit), "the timed out producer's commit fails as fenced:\n" + trace(commit));
            assertReads(later, topic, 1, IsolationLevel.READ_COMMITTED,
                    "read_committed after the failed commit: still the later records only");
        } finally {
            slow.close(Duration.ofSeconds(5));
        }
    }

    /**
     * listTransactions and describeTransactions show an open transaction,
     * and then its end; describeProducers, the producer on each partition
     * with where its transaction starts.
     */
    @Test
    void adminListsAndDescribesAnOngoingTransaction() throws Exception {
        String topic = topic("admin", 3);
        String transactionalId = Sluice.unique("described");
        try (Admin admin = Sluice.admin();
                KafkaProducer<byte[], byte[]> producer = transactional(transactionalId, TIMEOUT_MS)) {
            producer.initTransactions();
            long before = System.currentTimeMillis();
            producer.beginTransaction();
            // Two partitions of three in the transaction, after a record
            // of another producer on the first.
            try (KafkaProducer<byte[], byte[]> plain = Sluice.producer(Map.of())) {
                plain.send(record(topic, 0, "plain")).get();
            }
            RecordMetadata a = producer.send(record(topic, 0, "a")).get();
            producer.send(record(topic, 2, "b")).get();
            assertEquals(1, a.offset(), "the transaction's first offset on partition 0");

            Map<String, TransactionListing> listed = listed(admin, new ListTransactionsOptions());
            assertTrue(listed.containsKey(transactionalId), "listTransactions has " + transactionalId + ": "
                    + listed.keySet());
            TransactionListing listing = listed.get(transactionalId);
            assertEquals(TransactionState.ONGOING, listing.state(), "listed: " + listing);
            assertTrue(listed(admin, new ListTransactionsOptions().filterStates(List.of(TransactionState.ONGOING)))
                    .containsKey(transactionalId), "listed among the ongoing ones");
            assertFalse(listed(admin, new ListTransactionsOptions().filterStates(
                    List.of(TransactionState.COMPLETE_COMMIT))).containsKey(transactionalId),
                    "not listed among the committed ones");

            TransactionDescription ongoing = describe(admin, transactionalId);
            assertEquals(TransactionState.ONGOING, ongoing.state(), "described: " + ongoing);
            assertEquals(Set.of(new TopicPartition(topic, 0), new TopicPartition(topic, 2)),
                    ongoing.topicPartitions(), "its partitions: " + ongoing);
            assertEquals(listing.producerId(), ongoing.producerId(), "the producer id listed and described");
            assertTrue(ongoing.producerId() >= 0, "a producer id: " + ongoing);
            assertTrue(ongoing.producerEpoch() >= 0, "a producer epoch: " + ongoing);
            assertEquals(TIMEOUT_MS, ongoing.transactionTimeoutMs(), "its timeout: " + ongoing);
            assertTrue(ongoing.coordinatorId() >= 0, "a coordinator: " + ongoing);
            assertTrue(ongoing.transactionStartTimeMs().isPresent(), "a start time: " + ongoing);
            long started = ongoing.transactionStartTimeMs().getAsLong();
            assertTrue(started >= before - 1_000 && started <= System.currentTimeMillis() + 1_000,
                    "started when it did (" + before + "): " + ongoing);

            // Each partition's leader knows the producer, and where its
            // open transaction starts (DescribeProducers).
            TopicPartition p0 = new TopicPartition(topic, 0);
            TopicPartition p1 = new TopicPartition(topic, 1);
            TopicPartition p2 = new TopicPartition(topic, 2);
            ProducerState onP0 = producer(admin, p0, ongoing.producerId());
            assertEquals(ongoing.producerEpoch(), onP0.producerEpoch(), "its epoch on " + p0 + ": " + onP0);
            assertEquals(OptionalLong.of(1), onP0.currentTransactionStartOffset(),
                    "its transaction starts at 1 on " + p0 + ": " + onP0);
            // The time of its last batch there (a tool finding hanging
            // transactions compares it with their timeout).
            assertTrue(onP0.lastTimestamp() >= before - 1_000
                    && onP0.lastTimestamp() <= System.currentTimeMillis() + 1_000,
                    "its last batch's time on " + p0 + " (" + before + "): " + onP0);
            assertEquals(OptionalLong.of(0), producer(admin, p2, ongoing.producerId()).currentTransactionStartOffset(),
                    "its transaction starts at 0 on " + p2);
            assertEquals(List.of(), Sluice.get(admin.describeProducers(List.of(p1)).partitionResult(p1))
                    .activeProducers(), "no producer on " + p1);

            producer.commitTransaction();
            // The commit returns once it is decided (PrepareCommit); the
            // markers are written after.
            Sluice.waitFor(() -> {
                try {
                    return describe(admin, transactionalId).state() == TransactionState.COMPLETE_COMMIT;
                } catch (Exception notYet) {
                    return false;
                }
            }, transactionalId + " described as CompleteCommit");
            TransactionDescription ended = describe(admin, transactionalId);
            assertEquals(Set.of(), ended.topicPartitions(), "no partitions once committed: " + ended);
            assertFalse(listed(admin, new ListTransactionsOptions().filterStates(List.of(TransactionState.ONGOING)))
                    .containsKey(transactionalId), "no longer among the ongoing ones");
            assertEquals(TransactionState.COMPLETE_COMMIT,
                    listed(admin, new ListTransactionsOptions()).get(transactionalId).state(),
                    "listed once committed");
            assertEquals(OptionalLong.empty(),
                    producer(admin, new TopicPartition(topic, 0), ended.producerId()).currentTransactionStartOffset(),
                    "no transaction open on partition 0 once committed");
        }
    }

    /** The producer `producerId` as the leader of `partition` describes it. */
    private static ProducerState producer(Admin admin, TopicPartition partition, long producerId) throws Exception {
        List<ProducerState> producers =
                Sluice.get(admin.describeProducers(List.of(partition)).partitionResult(partition)).activeProducers();
        return producers.stream()
                .filter(state -> state.producerId() == producerId)
                .findFirst()
                .orElseThrow(() -> new AssertionError("producer " + producerId + " not among those of " + partition
                        + ": " + producers));
    }

    private static Map<String, TransactionListing> listed(Admin admin, ListTransactionsOptions options)
            throws Exception {
        return Sluice.get(admin.listTransactions(options).all()).stream()
                .collect(Collectors.toMap(TransactionListing::transactionalId, listing -> listing));
    }

    private static TransactionDescription describe(Admin admin, String transactionalId) throws Exception {
        TransactionDescription description =
                Sluice.get(admin.describeTransactions(List.of(transactionalId)).description(transactionalId));
        assertNotNull(description);
        return description;
    }

    /** Several producers' transactions over the same partitions, each read committed whole or not at all. */
    @Test
    void interleavedTransactionsOfSeveralProducers() throws Exception {
        String topic = topic("interleaved", 2);
        List<KafkaProducer<byte[], byte[]>> producers = IntStream.range(0, 3)
                .mapToObj(index -> transactional(Sluice.unique("interleaved-" + index), TIMEOUT_MS))
                .collect(Collectors.toList());
        try {
            List<String> committed = new ArrayList<>();
            for (KafkaProducer<byte[], byte[]> producer : producers) {
                producer.initTransactions();
            }
            for (int round = 0; round < 3; round++) {
                for (KafkaProducer<byte[], byte[]> producer : producers) {
                    producer.beginTransaction();
                }
                List<List<String>> sent = new ArrayList<>();
                for (int index = 0; index < producers.size(); index++) {
                    sent.add(send(producers.get(index), topic, 2, "round-" + round + "-producer-" + index, 10));
                }
                // Producer 1 aborts in every round; the others commit.
                for (int index = 0; index < producers.size(); index++) {
                    if (index == 1) {
                        producers.get(index).abortTransaction();
                    } else {
                        producers.get(index).commitTransaction();
                        committed.addAll(sent.get(index));
                    }
                }
            }
            assertReads(committed, topic, 2, IsolationLevel.READ_COMMITTED,
                    "read_committed: the committed transactions only");
        } finally {
            for (KafkaProducer<byte[], byte[]> producer : producers) {
                producer.close(Duration.ofSeconds(5));
            }
        }
    }
}
