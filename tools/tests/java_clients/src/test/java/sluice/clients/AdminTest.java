package sluice.clients;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.reflect.Method;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.stream.Collectors;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.ConsumerGroupListing;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.DescribeConfigsResult;
import org.apache.kafka.clients.admin.ListOffsetsResult;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.GroupNotEmptyException;
import org.apache.kafka.common.errors.InvalidConfigurationException;
import org.apache.kafka.common.errors.InvalidPartitionsException;
import org.apache.kafka.common.errors.InvalidRequestException;
import org.apache.kafka.common.errors.OffsetOutOfRangeException;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.apache.kafka.clients.admin.CreateTopicsResult;
import org.apache.kafka.clients.admin.ListConsumerGroupsOptions;
import org.apache.kafka.clients.admin.ListOffsetsOptions;
import org.apache.kafka.clients.admin.MemberDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.common.ConsumerGroupState;
import org.apache.kafka.common.GroupType;
import org.apache.kafka.common.IsolationLevel;
import org.apache.kafka.common.TopicCollection;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.errors.GroupSubscribedToTopicException;
import org.apache.kafka.common.errors.UnknownTopicIdException;
import org.junit.jupiter.api.Test;

/**
 * The AdminClient: topics (create, delete, list, describe, more
 * partitions), a topic's configs (describe, alter, incremental alter),
 * offsets (earliest, latest, by time, max timestamp), deleting records,
 * the cluster, and consumer groups (list, describe, delete, their offsets
 * listed, altered and deleted).
 */
@SuppressWarnings("removal")
class AdminTest {
    private static final long TIMESTAMP_BASE = 1_700_000_000_000L;

    private static void produce(String topic, int partition, long[] timestamps) throws Exception {
        try (KafkaProducer<byte[], byte[]> producer = Sluice.producer(Map.of())) {
            for (int index = 0; index < timestamps.length; index++) {
                producer.send(new ProducerRecord<>(topic, partition, timestamps[index], null,
                        ("value-" + index).getBytes(StandardCharsets.UTF_8)));
            }
            producer.flush();
        }
    }

    private static Throwable cause(Executable call) {
        ExecutionException error = assertThrows(ExecutionException.class, call::run);
        return error.getCause();
    }

    @FunctionalInterface
    private interface Executable {
        void run() throws Exception;
    }

    @Test
    void topicsAreFoundByIdAndDeletedById() throws Exception {
        String topic = Sluice.unique("admin-ids");
        try (Admin admin = Sluice.admin()) {
            CreateTopicsResult created = admin.createTopics(List.of(new NewTopic(topic, 2, (short) 1)
                    .configs(Map.of("retention.ms", "600000"))));
            Sluice.get(created.all());
            assertEquals(2, Sluice.get(created.numPartitions(topic)), "partitions in the result");
            assertEquals(1, Sluice.get(created.replicationFactor(topic)), "replicas in the result");
            Uuid id = Sluice.get(created.topicId(topic));
            assertNotNull(id);
            assertFalse(Uuid.ZERO_UUID.equals(id), "a topic id in the result");
            Config config = Sluice.get(created.config(topic));
            assertEquals("600000", config.get("retention.ms").value(), "the topic's configs in the result");

            Sluice.waitFor(() -> {
                try {
                    return Sluice.get(admin.describeTopics(List.of(topic)).allTopicNames())
                            .get(topic).partitions().stream().allMatch(partition -> partition.leader() != null);
                } catch (Exception notYet) {
                    return false;
                }
            }, "leaders");
            TopicDescription byName = Sluice.get(admin.describeTopics(List.of(topic)).allTopicNames()).get(topic);
            assertEquals(id, byName.topicId(), "the id described by name");
            TopicDescription byId = Sluice.get(admin.describeTopics(TopicCollection.ofTopicIds(List.of(id)))
                    .allTopicIds()).get(id);
            assertEquals(topic, byId.name(), "the topic described by id");
            assertEquals(2, byId.partitions().size());

            // Unknown names and ids.
            assertInstanceOf(UnknownTopicOrPartitionException.class,
                    cause(() -> Sluice.get(admin.describeTopics(List.of(Sluice.unique("no-such-topic")))
                            .allTopicNames())), "an unknown topic described");
            assertInstanceOf(UnknownTopicIdException.class,
                    cause(() -> Sluice.get(admin.describeTopics(TopicCollection.ofTopicIds(List.of(Uuid.randomUuid())))
                            .allTopicIds())), "an unknown topic id described");

            Sluice.get(admin.deleteTopics(TopicCollection.ofTopicIds(List.of(id))).all());
            Sluice.waitFor(() -> {
                try {
                    return !Sluice.get(admin.listTopics().names()).contains(topic);
                } catch (Exception notYet) {
                    return false;
                }
            }, "the topic deleted by id is no longer listed");
        }
    }

    @Test
    void topicsAreCreatedListedDescribedGrownAndDeleted() throws Exception {
        String topic = Sluice.unique("admin-topics");
        try (Admin admin = Sluice.admin()) {
            Sluice.createTopic(admin, topic, 3, (short) 1);

            assertTrue(Sluice.get(admin.listTopics().names()).contains(topic), "listed");
            TopicDescription description = Sluice.get(admin.describeTopics(List.of(topic)).allTopicNames()).get(topic);
            assertEquals(topic, description.name());
            assertFalse(description.isInternal());
            assertNotNull(description.topicId(), "a topic id");
            assertEquals(3, description.partitions().size(), "partitions");
            for (int partition = 0; partition < 3; partition++) {
                assertEquals(partition, description.partitions().get(partition).partition());
                assertNotNull(description.partitions().get(partition).leader(), "a leader");
                assertEquals(1, description.partitions().get(partition).replicas().size(), "replicas");
                assertEquals(1, description.partitions().get(partition).isr().size(), "in sync");
            }

            // Created again: the error, and the topic as it was.
            assertInstanceOf(TopicExistsException.class,
                    cause(() -> Sluice.get(admin.createTopics(List.of(new NewTopic(topic, 5, (short) 1))).all())));
            // A topic validated only.
            String validated = Sluice.unique("admin-validate-only");
            Sluice.get(admin.createTopics(List.of(new NewTopic(validated, 2, (short) 1)),
                    new org.apache.kafka.clients.admin.CreateTopicsOptions().validateOnly(true)).all());
            assertFalse(Sluice.get(admin.listTopics().names()).contains(validated), "validateOnly creates nothing");

            Sluice.get(admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(5))).all());
            Sluice.waitFor(() -> {
                try {
                    return Sluice.get(admin.describeTopics(List.of(topic)).allTopicNames())
                            .get(topic).partitions().size() == 5;
                } catch (Exception notYet) {
                    return false;
                }
            }, "5 partitions described");
            assertInstanceOf(InvalidPartitionsException.class,
                    cause(() -> Sluice.get(admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(4))).all())),
                    "fewer partitions");

            Sluice.get(admin.deleteTopics(List.of(topic)).all());
            Sluice.waitFor(() -> {
                try {
                    return !Sluice.get(admin.listTopics().names()).contains(topic);
                } catch (Exception notYet) {
                    return false;
                }
            }, "the deleted topic is no longer listed");
            assertInstanceOf(UnknownTopicOrPartitionException.class,
                    cause(() -> Sluice.get(admin.deleteTopics(List.of(topic)).all())), "deleted twice");
            assertInstanceOf(UnknownTopicOrPartitionException.class,
                    cause(() -> Sluice.get(admin.describeTopics(List.of(topic)).allTopicNames())),
                    "a deleted topic described");
        }
    }

    private static Config describe(Admin admin, ConfigResource resource) throws Exception {
        DescribeConfigsResult result = admin.describeConfigs(List.of(resource));
        return Sluice.get(result.all()).get(resource);
    }

    @Test
    void topicConfigsAreDescribedAndAltered() throws Exception {
        String topic = Sluice.unique("admin-configs");
        ConfigResource resource = new ConfigResource(ConfigResource.Type.TOPIC, topic);
        try (Admin admin = Sluice.admin()) {
            Sluice.get(admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1)
                    .configs(Map.of("retention.ms", "3600000")))).all());

            Config config = describe(admin, resource);
            ConfigEntry retention = config.get("retention.ms");
            assertNotNull(retention, "retention.ms described: " + config);
            assertEquals("3600000", retention.value());
            assertEquals(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, retention.source());
            ConfigEntry segment = config.get("segment.bytes");
            assertNotNull(segment, "segment.bytes described: " + config);
            assertEquals(ConfigEntry.ConfigSource.DEFAULT_CONFIG, segment.source(), "segment.bytes not set");

            Sluice.get(admin.incrementalAlterConfigs(Map.of(resource, List.of(
                    new AlterConfigOp(new ConfigEntry("segment.bytes", "2097152"), AlterConfigOp.OpType.SET),
                    new AlterConfigOp(new ConfigEntry("min.insync.replicas", "1"), AlterConfigOp.OpType.SET),
                    new AlterConfigOp(new ConfigEntry("retention.ms", null), AlterConfigOp.OpType.DELETE))))
                    .all());
            config = describe(admin, resource);
            assertEquals("2097152", config.get("segment.bytes").value());
            assertEquals(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, config.get("segment.bytes").source());
            assertEquals("1", config.get("min.insync.replicas").value());
            assertEquals(ConfigEntry.ConfigSource.DEFAULT_CONFIG, config.get("retention.ms").source(),
                    "retention.ms deleted: back to the default");

            // validateOnly changes nothing.
            Sluice.get(admin.incrementalAlterConfigs(Map.of(resource, List.of(
                    new AlterConfigOp(new ConfigEntry("segment.bytes", "4194304"), AlterConfigOp.OpType.SET))),
                    new org.apache.kafka.clients.admin.AlterConfigsOptions().validateOnly(true)).all());
            assertEquals("2097152", describe(admin, resource).get("segment.bytes").value());

            // A value that is not one.
            Throwable invalid = cause(() -> Sluice.get(admin.incrementalAlterConfigs(Map.of(resource, List.of(
                    new AlterConfigOp(new ConfigEntry("retention.ms", "soon"), AlterConfigOp.OpType.SET)))).all()));
            assertTrue(invalid instanceof InvalidConfigurationException || invalid instanceof InvalidRequestException,
                    "an invalid value: " + invalid);

            // Only the names asked for.
            Map<ConfigResource, Config> some = Sluice.get(admin.describeConfigs(List.of(resource)).all());
            assertTrue(some.get(resource).entries().size() >= 3, "every config of the topic");

            if (Sluice.clientIs3x()) {
                // AlterConfigs (gone from Admin in 4.0) replaces every
                // dynamic config of the topic with those given.
                Method alterConfigs = Admin.class.getMethod("alterConfigs", Map.class);
                Object result = alterConfigs.invoke(admin, Map.of(resource,
                        new Config(List.of(new ConfigEntry("retention.ms", "7200000")))));
                KafkaFuture<?> all = (KafkaFuture<?>) result.getClass().getMethod("all").invoke(result);
                Sluice.get(all);
                config = describe(admin, resource);
                assertEquals("7200000", config.get("retention.ms").value());
                assertEquals(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, config.get("retention.ms").source());
                assertEquals(ConfigEntry.ConfigSource.DEFAULT_CONFIG, config.get("segment.bytes").source(),
                        "segment.bytes, not given, back to the default");
            }
        }
    }

    @Test
    void offsetsAreListedAndRecordsDeleted() throws Exception {
        String topic = Sluice.unique("admin-offsets");
        TopicPartition partition = new TopicPartition(topic, 0);
        // The greatest timestamp is that of record 6, not the last.
        long[] timestamps = new long[10];
        for (int index = 0; index < timestamps.length; index++) {
            timestamps[index] = TIMESTAMP_BASE + 1000L * index;
        }
        timestamps[6] = TIMESTAMP_BASE + 60_000;
        try (Admin admin = Sluice.admin()) {
            Sluice.createTopic(admin, topic, 1, (short) 1);
            produce(topic, 0, timestamps);

            Map<TopicPartition, ListOffsetsResult.ListOffsetsResultInfo> earliest =
                    Sluice.get(admin.listOffsets(Map.of(partition, OffsetSpec.earliest())).all());
            assertEquals(0, earliest.get(partition).offset(), "earliest");
            assertEquals(10, Sluice.get(admin.listOffsets(Map.of(partition, OffsetSpec.latest())).all())
                    .get(partition).offset(), "latest");
            ListOffsetsResult.ListOffsetsResultInfo byTime = Sluice.get(admin.listOffsets(
                    Map.of(partition, OffsetSpec.forTimestamp(TIMESTAMP_BASE + 2_500))).all()).get(partition);
            assertEquals(3, byTime.offset(), "the first record at or after a time");
            assertEquals(TIMESTAMP_BASE + 3_000, byTime.timestamp());
            ListOffsetsResult.ListOffsetsResultInfo max = Sluice.get(admin.listOffsets(
                    Map.of(partition, OffsetSpec.maxTimestamp())).all()).get(partition);
            assertEquals(6, max.offset(), "the record of the greatest timestamp");
            assertEquals(TIMESTAMP_BASE + 60_000, max.timestamp());
            assertEquals(10, Sluice.get(admin.listOffsets(Map.of(partition, OffsetSpec.latest()),
                    new ListOffsetsOptions(IsolationLevel.READ_COMMITTED)).all())
                    .get(partition).offset(), "latest read committed: no transaction open");
            assertInstanceOf(UnknownTopicOrPartitionException.class,
                    cause(() -> Sluice.get(admin.listOffsets(Map.of(
                            new TopicPartition(Sluice.unique("no-such-topic"), 0), OffsetSpec.latest())).all())),
                    "a topic that does not exist");
            assertEquals(0, Sluice.get(admin.listOffsets(Map.of(partition, OffsetSpec.earliestLocal())).all())
                    .get(partition).offset(), "earliest local: all is local");
            // Nothing is tiered: Kafka's answer without remote storage.
            assertEquals(-1, Sluice.get(admin.listOffsets(Map.of(partition, OffsetSpec.latestTiered())).all())
                    .get(partition).offset(), "latest tiered");
            assertEquals(-1, Sluice.get(admin.listOffsets(
                    Map.of(partition, OffsetSpec.forTimestamp(TIMESTAMP_BASE + 120_000))).all())
                    .get(partition).offset(), "no record at or after a later time");

            long low = Sluice.get(admin.deleteRecords(Map.of(partition, RecordsToDelete.beforeOffset(4)))
                    .lowWatermarks().get(partition)).lowWatermark();
            assertEquals(4, low, "the low watermark after deleting records");
            assertEquals(4, Sluice.get(admin.listOffsets(Map.of(partition, OffsetSpec.earliest())).all())
                    .get(partition).offset(), "earliest after deleting records");
            try (KafkaConsumer<byte[], byte[]> consumer = Sluice.consumer()) {
                consumer.assign(List.of(partition));
                consumer.seekToBeginning(List.of(partition));
                List<ConsumerRecord<byte[], byte[]>> records = Sluice.poll(consumer, 6);
                assertEquals(6, records.size());
                assertEquals(4, records.get(0).offset(), "the first record left");
                assertEquals("value-4", new String(records.get(0).value(), StandardCharsets.UTF_8));
            }
            // Past the end: an error.
            assertInstanceOf(OffsetOutOfRangeException.class, cause(() -> Sluice.get(admin.deleteRecords(
                    Map.of(partition, RecordsToDelete.beforeOffset(11))).all())), "deleting past the end");
        }
    }

    @Test
    void theClusterIsDescribed() throws Exception {
        try (Admin admin = Sluice.admin()) {
            DescribeClusterResult cluster = admin.describeCluster();
            Collection<Node> nodes = Sluice.get(cluster.nodes());
            assertFalse(nodes.isEmpty(), "brokers");
            Node controller = Sluice.get(cluster.controller());
            assertNotNull(controller, "a controller");
            String clusterId = Sluice.get(cluster.clusterId());
            assertNotNull(clusterId, "a cluster id");
            assertFalse(clusterId.isEmpty(), "a cluster id");
            String bootstrapPort = Sluice.bootstrap().substring(Sluice.bootstrap().lastIndexOf(':') + 1);
            assertTrue(nodes.stream().anyMatch(node -> Integer.toString(node.port()).equals(bootstrapPort)),
                    "the broker asked is among the nodes: " + nodes);
        }
    }

    /**
     * The groups that Admin lists: by listConsumerGroups (marked for removal
     * in 4.x, and still what most applications call) and, on 4.x, by
     * listGroups as well, which must agree.
     */
    @SuppressWarnings("removal")
    private static Set<String> consumerGroups(Admin admin) throws Exception {
        Set<String> groups = Sluice.get(admin.listConsumerGroups().all()).stream()
                .map(ConsumerGroupListing::groupId).collect(Collectors.toSet());
        if (!Sluice.clientIs3x()) {
            Object result = Admin.class.getMethod("listGroups").invoke(admin);
            Collection<?> listings = (Collection<?>) Sluice.get(
                    (KafkaFuture<?>) result.getClass().getMethod("all").invoke(result));
            Set<String> listed = new java.util.HashSet<>();
            for (Object listing : listings) {
                listed.add((String) listing.getClass().getMethod("groupId").invoke(listing));
            }
            assertTrue(listed.containsAll(groups), "listGroups " + listed + " has every consumer group " + groups);
        }
        return groups;
    }

    @Test
    void consumerProtocolGroupsAreDescribed() throws Exception {
        String topic = Sluice.unique("admin-848");
        String group = Sluice.unique("admin-848-group");
        try (Admin admin = Sluice.admin()) {
            Sluice.createTopic(admin, topic, 3, (short) 1);
            try (KafkaConsumer<byte[], byte[]> consumer = Sluice.consumer(group,
                    Map.of(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "consumer"))) {
                consumer.subscribe(List.of(topic));
                Sluice.waitFor(() -> {
                    consumer.poll(Duration.ofMillis(100));
                    return consumer.assignment().size() == 3;
                }, "the consumer is assigned every partition");
                consumer.commitSync(Map.of(new TopicPartition(topic, 0), new OffsetAndMetadata(0)));

                assertTrue(consumerGroups(admin).contains(group), "listed");
                ConsumerGroupDescription description = Sluice.get(
                        admin.describeConsumerGroups(List.of(group)).all()).get(group);
                assertEquals(GroupType.CONSUMER, description.type(), "type: " + description);
                assertEquals(ConsumerGroupState.STABLE, description.state(), "state: " + description);
                assertEquals(1, description.members().size(), "members: " + description);
                MemberDescription member = description.members().iterator().next();
                assertEquals(Sluice.partitions(topic, 3), member.assignment().topicPartitions(),
                        "the member's assignment: " + description);
                assertEquals("sluice-java-consumer", member.clientId());
                assertNotNull(description.coordinator(), "a coordinator");
            }
            assertEquals(0, Sluice.get(admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata())
                    .get(new TopicPartition(topic, 0)).offset());
            Sluice.get(admin.deleteConsumerGroups(List.of(group)).all());
        }
    }

    @Test
    void consumerGroupsAreListedDescribedAlteredAndDeleted() throws Exception {
        String topic = Sluice.unique("admin-groups");
        String group = Sluice.unique("admin-group");
        TopicPartition p0 = new TopicPartition(topic, 0);
        TopicPartition p1 = new TopicPartition(topic, 1);
        try (Admin admin = Sluice.admin()) {
            Sluice.createTopic(admin, topic, 2, (short) 1);
            produce(topic, 0, new long[] {TIMESTAMP_BASE, TIMESTAMP_BASE, TIMESTAMP_BASE});
            produce(topic, 1, new long[] {TIMESTAMP_BASE, TIMESTAMP_BASE, TIMESTAMP_BASE});

            try (KafkaConsumer<byte[], byte[]> consumer = Sluice.consumer(group, Map.of())) {
                consumer.subscribe(List.of(topic));
                assertEquals(6, Sluice.poll(consumer, 6).size());
                consumer.commitSync();

                Set<String> listed = consumerGroups(admin);
                assertTrue(listed.contains(group), "listed: " + listed);

                ConsumerGroupDescription description = Sluice.get(
                        admin.describeConsumerGroups(List.of(group)).all()).get(group);
                assertEquals(group, description.groupId());
                assertEquals(ConsumerGroupState.STABLE, description.state(), "state: " + description);
                assertEquals(GroupType.CLASSIC, description.type(), "type: " + description);
                assertEquals("range", description.partitionAssignor(), "the assignor chosen: " + description);
                assertFalse(description.isSimpleConsumerGroup());
                assertEquals(1, description.members().size(), "members: " + description);
                MemberDescription member = description.members().iterator().next();
                assertEquals(Set.of(p0, p1), member.assignment().topicPartitions());
                assertEquals("sluice-java-consumer", member.clientId(), "the member's client id");
                assertFalse(member.host().isEmpty(), "the member's host");
                assertFalse(member.consumerId().isEmpty(), "the member's id");
                assertNotNull(description.coordinator(), "a coordinator");

                Set<String> stable = Sluice.get(admin.listConsumerGroups(new ListConsumerGroupsOptions()
                        .inStates(Set.of(ConsumerGroupState.STABLE))).all()).stream()
                        .map(ConsumerGroupListing::groupId).collect(Collectors.toSet());
                assertTrue(stable.contains(group), "listed among the stable groups: " + stable);
                Set<String> empty = Sluice.get(admin.listConsumerGroups(new ListConsumerGroupsOptions()
                        .inStates(Set.of(ConsumerGroupState.EMPTY))).all()).stream()
                        .map(ConsumerGroupListing::groupId).collect(Collectors.toSet());
                assertFalse(empty.contains(group), "not listed among the empty groups: " + empty);

                assertInstanceOf(GroupSubscribedToTopicException.class,
                        cause(() -> Sluice.get(admin.deleteConsumerGroupOffsets(group, Set.of(p0)).all())),
                        "deleting the offsets of a topic the group reads");

                // Offsets of a group with members cannot be changed.
                assertInstanceOf(org.apache.kafka.common.errors.UnknownMemberIdException.class,
                        cause(() -> Sluice.get(admin.alterConsumerGroupOffsets(group,
                                Map.of(p0, new OffsetAndMetadata(1))).all())),
                        "altering the offsets of an active group");
                assertInstanceOf(GroupNotEmptyException.class,
                        cause(() -> Sluice.get(admin.deleteConsumerGroups(List.of(group)).all())),
                        "deleting an active group");
            }

            ConsumerGroupDescription left = Sluice.get(
                    admin.describeConsumerGroups(List.of(group)).all()).get(group);
            assertEquals(ConsumerGroupState.EMPTY, left.state(), "state once the member left: " + left);
            assertTrue(left.members().isEmpty(), "members once the member left: " + left);

            Map<TopicPartition, OffsetAndMetadata> offsets = Sluice.get(
                    admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata());
            assertEquals(3, offsets.get(p0).offset());
            assertEquals(3, offsets.get(p1).offset());

            Sluice.get(admin.alterConsumerGroupOffsets(group, Map.of(
                    p0, new OffsetAndMetadata(1, "altered"))).all());
            offsets = Sluice.get(admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata());
            assertEquals(1, offsets.get(p0).offset());
            assertEquals("altered", offsets.get(p0).metadata());
            assertEquals(3, offsets.get(p1).offset());

            Sluice.get(admin.deleteConsumerGroupOffsets(group, Set.of(p1)).all());
            Map<TopicPartition, OffsetAndMetadata> kept = Sluice.get(
                    admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata());
            assertEquals(Set.of(p0), kept.keySet().stream()
                    .filter(partition -> kept.get(partition) != null).collect(Collectors.toSet()),
                    "offsets left after deleting p1's: " + kept);

            // A consumer of the group starts at the altered offset.
            try (KafkaConsumer<byte[], byte[]> consumer = Sluice.consumer(group, Map.of())) {
                consumer.assign(List.of(p0));
                List<ConsumerRecord<byte[], byte[]>> records = Sluice.poll(consumer, 2);
                assertEquals(2, records.size());
                assertEquals(1, records.get(0).offset(), "the first offset read after the alteration");
                assertTrue(consumer.poll(Duration.ofMillis(200)).isEmpty());
            }

            Sluice.get(admin.deleteConsumerGroups(List.of(group)).all());
            Sluice.waitFor(() -> {
                try {
                    return !consumerGroups(admin).contains(group);
                } catch (Exception notYet) {
                    return false;
                }
            }, "the deleted group is no longer listed");
            assertTrue(Sluice.get(admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata())
                    .isEmpty(), "a deleted group's offsets");
        }
    }
}
