package sluice.clients;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.junit.jupiter.api.Test;

/**
 * A cluster of three brokers (sluice.bootstrap names them all): three
 * replicas of each partition, leaders spread over the brokers, the
 * idempotent producer writing to every leader with acks=all, and a group
 * reading it all back.
 */
class ClusterTest {
    private static final int BROKERS = 3;
    private static final int PARTITIONS = 6;
    private static final int RECORDS = 3_000;

    @Test
    void replicatedTopicIsWrittenAndReadThroughEveryLeader() throws Exception {
        String topic = Sluice.unique("cluster");
        String group = Sluice.unique("cluster-group");
        try (Admin admin = Sluice.admin()) {
            Sluice.waitFor(() -> {
                try {
                    return Sluice.get(admin.describeCluster().nodes()).size() == BROKERS;
                } catch (Exception notYet) {
                    return false;
                }
            }, BROKERS + " brokers described");
            Set<Integer> ids = new HashSet<>();
            for (Node node : Sluice.get(admin.describeCluster().nodes())) {
                ids.add(node.id());
            }
            assertEquals(BROKERS, ids.size(), "broker ids");

            Sluice.createTopic(admin, topic, PARTITIONS, (short) BROKERS);
            Sluice.waitFor(() -> {
                try {
                    TopicDescription description = Sluice.get(
                            admin.describeTopics(List.of(topic)).allTopicNames()).get(topic);
                    return description.partitions().stream().allMatch(
                            partition -> partition.replicas().size() == BROKERS
                                    && partition.isr().size() == BROKERS);
                } catch (Exception notYet) {
                    return false;
                }
            }, "every partition has " + BROKERS + " replicas in sync");
            Set<Integer> leaders = new HashSet<>();
            for (TopicPartitionInfo partition : Sluice.get(
                    admin.describeTopics(List.of(topic)).allTopicNames()).get(topic).partitions()) {
                leaders.add(partition.leader().id());
            }
            assertEquals(BROKERS, leaders.size(), "leaders on every broker");
        }

        List<Future<RecordMetadata>> sent = new ArrayList<>();
        try (KafkaProducer<byte[], byte[]> producer = Sluice.producer(Map.of(
                ProducerConfig.COMPRESSION_TYPE_CONFIG, "lz4", ProducerConfig.LINGER_MS_CONFIG, 5))) {
            for (int index = 0; index < RECORDS; index++) {
                sent.add(producer.send(new ProducerRecord<>(topic,
                        ("key-" + index).getBytes(StandardCharsets.UTF_8),
                        ("value-" + index).getBytes(StandardCharsets.UTF_8))));
            }
            producer.flush();
        }
        Map<String, Integer> indexAt = new HashMap<>();
        for (int index = 0; index < RECORDS; index++) {
            RecordMetadata metadata = sent.get(index).get(Sluice.WAIT.toMillis(), TimeUnit.MILLISECONDS);
            indexAt.put(metadata.partition() + "/" + metadata.offset(), index);
        }
        assertEquals(RECORDS, indexAt.size(), "distinct offsets acknowledged");

        try (KafkaConsumer<byte[], byte[]> consumer = Sluice.consumer(group, Map.of())) {
            consumer.subscribe(List.of(topic));
            List<ConsumerRecord<byte[], byte[]>> records = Sluice.poll(consumer, RECORDS);
            assertEquals(RECORDS, records.size(), "records read in the group");
            for (ConsumerRecord<byte[], byte[]> record : records) {
                Integer index = indexAt.get(record.partition() + "/" + record.offset());
                assertEquals("value-" + index, new String(record.value(), StandardCharsets.UTF_8),
                        record.partition() + "/" + record.offset());
                assertEquals("key-" + index, new String(record.key(), StandardCharsets.UTF_8));
            }
            consumer.commitSync();
            Map<TopicPartition, OffsetAndMetadata> committed = consumer.committed(Sluice.partitions(topic, PARTITIONS));
            Map<TopicPartition, Long> ends = consumer.endOffsets(Sluice.partitions(topic, PARTITIONS));
            for (TopicPartition partition : ends.keySet()) {
                assertEquals(ends.get(partition), committed.get(partition).offset(), partition + " committed");
            }
        }
    }
}
