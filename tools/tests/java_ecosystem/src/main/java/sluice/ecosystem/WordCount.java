package sluice.ecosystem;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.Random;
import java.util.TreeMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicReference;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.LongDeserializer;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.ThreadMetadata;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.processor.StateRestoreListener;

/**
 * Kafka Streams' word count, and what the test around it needs: a producer
 * of sentences and a checker of the counts. tools/tests/kafka_streams.rs
 * runs each as its own JVM process:
 *
 * <ul>
 *   <li>{@code instance BOOTSTRAP STATE_DIR INPUT OUTPUT REPLICAS [GUARANTEE]}: one
 *       instance of the application (KStream, flatMapValues into words,
 *       groupBy the word through a repartition topic, count in a persistent
 *       store with a changelog topic, the counts to OUTPUT), the topics it
 *       creates of REPLICAS replicas, with the processing guarantee
 *       GUARANTEE ({@code at_least_once} unless given, or
 *       {@code exactly_once_v2}: each task's output, changelog and input
 *       offsets committed in one transaction). It prints
 *       {@code state S} on each change of state, {@code tasks [..]} with
 *       the tasks it runs each time it is RUNNING, and {@code restored}
 *       with the number of records each time it has restored a store from
 *       its changelog; it runs until it is killed.
 *   <li>{@code produce BOOTSTRAP INPUT SENTENCES PER_SECOND}: sentences of
 *       random words to INPUT at that rate, printing {@code produced N}
 *       as it goes and {@code done N} once all are acknowledged.
 *   <li>{@code verify BOOTSTRAP INPUT OUTPUT SECONDS TWICE_PERCENT_MAX}:
 *       counts the words of INPUT, reads OUTPUT (the latest count of each
 *       word, read_committed: what transactions aborted is not read, and
 *       records written outside a transaction are read all the same)
 *       until it has every word counted at least that often and stays
 *       still, and prints the comparison: exit 0 when no word is missing a
 *       count (the at-least-once promise) and at most TWICE_PERCENT_MAX
 *       percent of the words are counted twice (those processed again
 *       after a kill, since the last commit; 0: none, the exactly-once
 *       promise), 1 otherwise or after SECONDS.
 * </ul>
 */
public final class WordCount {
    /** The application id: its group, and the prefix of its topics. */
    static final String APPLICATION_ID = "sluice-word-count";

    /** The words of the sentences. */
    static final String[] WORDS = {
        "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
        "juliett", "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo",
        "sierra", "tango", "uniform", "victor", "whiskey", "xray", "yankee", "zulu",
    };

    public static void main(String[] args) throws Exception {
        switch (args[0]) {
            case "instance" -> instance(args[1], args[2], args[3], args[4], Integer.parseInt(args[5]),
                    args.length > 6 ? args[6] : StreamsConfig.AT_LEAST_ONCE);
            case "produce" -> produce(
                    args[1], args[2], Integer.parseInt(args[3]), Integer.parseInt(args[4]));
            case "verify" -> System.exit(verify(
                    args[1], args[2], args[3], Integer.parseInt(args[4]), Integer.parseInt(args[5])));
            default -> throw new IllegalArgumentException("unknown command " + args[0]);
        }
    }

    static void instance(
            String bootstrap, String stateDir, String input, String output, int replicationFactor,
            String guarantee) throws InterruptedException {
        if (!guarantee.equals(StreamsConfig.AT_LEAST_ONCE) && !guarantee.equals(StreamsConfig.EXACTLY_ONCE_V2)) {
            throw new IllegalArgumentException("unknown processing guarantee " + guarantee);
        }
        StreamsBuilder builder = new StreamsBuilder();
        builder.stream(input, Consumed.with(Serdes.String(), Serdes.String()))
                .flatMapValues(line -> Arrays.asList(line.toLowerCase(Locale.ROOT).split("\\W+")))
                .filter((key, word) -> !word.isEmpty())
                .groupBy((key, word) -> word, Grouped.with("words", Serdes.String(), Serdes.String()))
                .count(Materialized.as("counts"))
                .toStream()
                .to(output, Produced.with(Serdes.String(), Serdes.Long()));

        Properties props = new Properties();
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, APPLICATION_ID);
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(StreamsConfig.STATE_DIR_CONFIG, stateDir);
        props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, guarantee);
        props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 200);
        props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 1);
        // The replicas of the topics Streams creates (-1: the broker's default).
        props.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, replicationFactor);
        // A member killed with SIGKILL leaves the group when its session
        // times out: the shortest a broker allows by default.
        props.put(StreamsConfig.consumerPrefix(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG), 6000);
        props.put(StreamsConfig.consumerPrefix(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG), 1000);
        props.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");

        KafkaStreams streams = new KafkaStreams(builder.build(), props);
        AtomicReference<Throwable> failure = new AtomicReference<>();
        CountDownLatch stopped = new CountDownLatch(1);
        streams.setStateListener((now, before) -> {
            say("state " + now);
            if (now == KafkaStreams.State.RUNNING) {
                List<String> tasks = new ArrayList<>();
                for (ThreadMetadata thread : streams.metadataForLocalThreads()) {
                    thread.activeTasks().forEach(task -> tasks.add(task.taskId().toString()));
                }
                tasks.sort(null);
                say("tasks " + tasks);
            }
            if (now == KafkaStreams.State.ERROR || now == KafkaStreams.State.NOT_RUNNING) {
                stopped.countDown();
            }
        });
        streams.setGlobalStateRestoreListener(new StateRestoreListener() {
            @Override
            public void onRestoreStart(TopicPartition partition, String store, long start, long end) {
                say("restoring " + store + " from " + partition + " offsets " + start + ".." + end);
            }

            @Override
            public void onBatchRestored(TopicPartition partition, String store, long end, long records) {}

            @Override
            public void onRestoreEnd(TopicPartition partition, String store, long records) {
                say("restored " + store + " from " + partition + ": " + records + " records");
            }
        });
        streams.setUncaughtExceptionHandler(exception -> {
            failure.set(exception);
            exception.printStackTrace();
            return org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler
                    .StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        Runtime.getRuntime().addShutdownHook(new Thread(streams::close));
        streams.start();
        stopped.await();
        say("stopped: " + failure.get());
        System.exit(1);
    }

    static void produce(String bootstrap, String input, int sentences, int perSecond)
            throws Exception {
        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ProducerConfig.ACKS_CONFIG, "all");
        props.put(ProducerConfig.LINGER_MS_CONFIG, 5);
        Random random = new Random(42);
        long start = System.nanoTime();
        try (KafkaProducer<String, String> producer =
                new KafkaProducer<>(props, new StringSerializer(), new StringSerializer())) {
            for (int n = 1; n <= sentences; n++) {
                StringBuilder sentence = new StringBuilder();
                int words = 1 + random.nextInt(8);
                for (int w = 0; w < words; w++) {
                    sentence.append(w == 0 ? "" : " ").append(WORDS[random.nextInt(WORDS.length)]);
                }
                // Acknowledged or the run fails: the check counts what INPUT has.
                producer.send(new ProducerRecord<>(input, "sentence-" + n, sentence.toString()),
                        (metadata, error) -> {
                            if (error != null) {
                                error.printStackTrace();
                                System.exit(2);
                            }
                        });
                if (n % 500 == 0) {
                    say("produced " + n);
                }
                long due = start + (long) n * 1_000_000_000L / perSecond;
                long wait = due - System.nanoTime();
                if (wait > 0) {
                    Thread.sleep(wait / 1_000_000, (int) (wait % 1_000_000));
                }
            }
            producer.flush();
        }
        say("done " + sentences);
    }

    static int verify(String bootstrap, String input, String output, int seconds, int twicePercentMax) {
        long deadline = System.nanoTime() + seconds * 1_000_000_000L;
        Map<String, Long> expected = new TreeMap<>();
        long sentences = 0;
        try (KafkaConsumer<String, String> consumer = reader(bootstrap, new StringDeserializer())) {
            for (ConsumerRecord<String, String> record : readAll(consumer, input)) {
                sentences++;
                for (String word : record.value().toLowerCase(Locale.ROOT).split("\\W+")) {
                    if (!word.isEmpty()) {
                        expected.merge(word, 1L, Long::sum);
                    }
                }
            }
        }
        long words = expected.values().stream().mapToLong(Long::longValue).sum();
        say("input: " + sentences + " sentences, " + words + " words, " + expected.size() + " distinct");

        Map<String, Long> latest = new TreeMap<>();
        long records = 0;
        try (KafkaConsumer<String, Long> consumer = reader(bootstrap, new LongDeserializer())) {
            List<TopicPartition> partitions = partitions(consumer, output);
            consumer.assign(partitions);
            consumer.seekToBeginning(partitions);
            long stillSince = System.nanoTime();
            while (true) {
                var batch = consumer.poll(Duration.ofMillis(200));
                for (ConsumerRecord<String, Long> record : batch) {
                    latest.put(record.key(), record.value());
                    records++;
                }
                if (!batch.isEmpty()) {
                    stillSince = System.nanoTime();
                }
                boolean complete = expected.entrySet().stream()
                        .allMatch(e -> latest.getOrDefault(e.getKey(), 0L) >= e.getValue());
                boolean atEnd = consumer.endOffsets(partitions).entrySet().stream()
                        .allMatch(e -> consumer.position(e.getKey()) >= e.getValue());
                // Still for three commit intervals and more: nothing is left
                // in Streams' caches.
                if (complete && atEnd && System.nanoTime() - stillSince > 3_000_000_000L) {
                    break;
                }
                if (System.nanoTime() > deadline) {
                    say("timed out after " + seconds + " s");
                    break;
                }
            }
        }
        long missing = 0;
        long extra = 0;
        for (var entry : expected.entrySet()) {
            long count = latest.getOrDefault(entry.getKey(), 0L);
            if (count < entry.getValue()) {
                say("MISSING " + entry.getKey() + ": counted " + count + " of " + entry.getValue());
                missing += entry.getValue() - count;
            } else {
                extra += count - entry.getValue();
            }
        }
        for (String word : latest.keySet()) {
            if (!expected.containsKey(word)) {
                say("UNEXPECTED word " + word + " counted " + latest.get(word));
                missing++;
            }
        }
        say("output: " + records + " records, " + latest.size() + " words; missing " + missing
                + ", counted twice " + extra);
        if (twicePercentMax == 0 && extra > 0) {
            say("COUNTED TWICE: " + extra + " words, where each is to be counted exactly once");
            return 1;
        }
        if (extra * 100 > words * twicePercentMax) {
            say("MORE than " + twicePercentMax + "% of the words counted twice: not resumed from"
                    + " the committed offsets");
            return 1;
        }
        return missing == 0 ? 0 : 1;
    }

    static <V> KafkaConsumer<String, V> reader(
            String bootstrap, org.apache.kafka.common.serialization.Deserializer<V> values) {
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        props.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        return new KafkaConsumer<>(props, new StringDeserializer(), values);
    }

    static List<TopicPartition> partitions(KafkaConsumer<?, ?> consumer, String topic) {
        List<TopicPartition> partitions = new ArrayList<>();
        for (PartitionInfo info : consumer.partitionsFor(topic, Duration.ofSeconds(30))) {
            partitions.add(new TopicPartition(topic, info.partition()));
        }
        return partitions;
    }

    /** Every record of TOPIC, from its start to its end as of now. */
    static List<ConsumerRecord<String, String>> readAll(
            KafkaConsumer<String, String> consumer, String topic) {
        List<TopicPartition> partitions = partitions(consumer, topic);
        consumer.assign(partitions);
        consumer.seekToBeginning(partitions);
        Map<TopicPartition, Long> end = new HashMap<>(consumer.endOffsets(partitions));
        List<ConsumerRecord<String, String>> records = new ArrayList<>();
        while (end.entrySet().stream().anyMatch(e -> consumer.position(e.getKey()) < e.getValue())) {
            consumer.poll(Duration.ofMillis(200)).forEach(records::add);
        }
        return records;
    }

    static void say(String line) {
        System.out.println(line);
        System.out.flush();
    }
}
