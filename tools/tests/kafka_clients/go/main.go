// Command franz-go-client drives a Kafka broker with franz-go (kgo and kadm),
// a pure Go client: it creates a topic with kadm, produces 10,000 keyed
// records with headers through idempotent producers (one per compression
// codec), reads them back in a consumer group of two members that share the
// partitions and commit what they read, compares every record byte for byte,
// and checks what kadm lists and describes: topics, configs, offsets (start,
// end, by time), deleted records, groups, committed offsets and lag.
//
// usage: franz-go-client BOOTSTRAP TOPIC PARTITIONS [PROTOCOL]
//
// With SLUICE_TLS_CA (a CA's PEM file) in the environment it connects over
// TLS, presenting the client certificate of SLUICE_TLS_CERT and
// SLUICE_TLS_KEY if they are given.
//
// BOOTSTRAP is host:port[,host:port...]. PROTOCOL is the group's: classic
// (the default; the client's cooperative-sticky balancer assigns) or
// consumer (KIP-848: the broker assigns with its uniform assignor, and the
// group is described with ConsumerGroupDescribe).
//
// The records are those of records.py and records.js, with the client name
// "franz-go", so that tools/tests/kafka_clients.rs can check the topic
// independently afterwards. Every failure is reported and the run goes on
// where it can; the exit status is 1 if anything differed.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	client = "franz-go"
	// records and keys: the same numbers as records.py.
	records = 10_000
	keys    = 1_000
	// deletedTopicRecords are produced to the topic whose head is deleted.
	deletedTopicRecords = 100
	deleteBefore        = 40
	// timeout bounds one admin call or one wait for the group.
	timeout = 30 * time.Second
	// consumeTimeout bounds reading everything back.
	consumeTimeout = 120 * time.Second
	retentionMs    = "3600000"
	alteredMs      = "7200000"
)

// dialer connects to the brokers in the clear, or over TLS when
// SLUICE_TLS_CA names the PEM file of the CA the broker's certificate
// chains to (with the client certificate of SLUICE_TLS_CERT and
// SLUICE_TLS_KEY, if given). The broker's name is checked against its
// certificate.
func dialer() kgo.Opt {
	plain := &net.Dialer{Timeout: 10 * time.Second}
	ca := os.Getenv("SLUICE_TLS_CA")
	if ca == "" {
		return kgo.Dialer(plain.DialContext)
	}
	pem, err := os.ReadFile(ca)
	if err != nil {
		fail("reading %s: %v", ca, err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		fail("no certificate in %s", ca)
	}
	config := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	if certificate := os.Getenv("SLUICE_TLS_CERT"); certificate != "" {
		pair, err := tls.LoadX509KeyPair(certificate, os.Getenv("SLUICE_TLS_KEY"))
		if err != nil {
			fail("client certificate: %v", err)
		}
		config.Certificates = []tls.Certificate{pair}
	}
	return kgo.Dialer(func(ctx context.Context, network, host string) (net.Conn, error) {
		server, _, err := net.SplitHostPort(host)
		if err != nil {
			return nil, err
		}
		named := config.Clone()
		named.ServerName = server
		return (&tls.Dialer{NetDialer: plain, Config: named}).DialContext(ctx, network, host)
	})
}

// fail stops the program with a message, before any check began.
func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

// codecs: each producer sends a fifth of the records with one of them.
var codecs = []struct {
	name  string
	codec kgo.CompressionCodec
}{
	{"none", kgo.NoCompression()},
	{"gzip", kgo.GzipCompression()},
	{"snappy", kgo.SnappyCompression()},
	{"lz4", kgo.Lz4Compression()},
	{"zstd", kgo.ZstdCompression()},
}

func key(index int) []byte { return []byte(fmt.Sprintf("key-%d", index%keys)) }

func value(index int) []byte {
	out := []byte(fmt.Sprintf("value-%d-%s|", index, client))
	for offset := 0; offset < index%100; offset++ {
		out = append(out, byte((index*31+offset)%256))
	}
	return out
}

func headers(index int) []kgo.RecordHeader {
	return []kgo.RecordHeader{
		{Key: "index", Value: []byte(strconv.Itoa(index))},
		{Key: "client", Value: []byte(client)},
		{Key: "bin", Value: []byte{byte(index % 256), 0, 255}},
	}
}

// check collects what went wrong, so that a run reports every kind of
// difference and not only the first.
type check struct {
	mu       sync.Mutex
	failures int
	started  time.Time
}

func (c *check) step(format string, args ...any) {
	fmt.Printf("[%s %6.2fs] %s\n", client, time.Since(c.started).Seconds(), fmt.Sprintf(format, args...))
}

func (c *check) expect(condition bool, format string, args ...any) bool {
	if condition {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failures++
	if c.failures <= 30 {
		fmt.Printf("FAIL: %s\n", fmt.Sprintf(format, args...))
	}
	return false
}

func (c *check) ok(err error, what string) bool {
	return c.expect(err == nil, "%s: %v", what, err)
}

// must stops the run: what follows depends on it.
func (c *check) must(err error, what string) {
	if err != nil {
		fmt.Printf("FAIL: %s: %v\n", what, err)
		os.Exit(1)
	}
}

type place struct {
	partition int32
	offset    int64
}

// member is one consumer of the group and what its callbacks said.
type member struct {
	name   string
	client *kgo.Client
	mu     sync.Mutex
	owned  map[int32]bool
	events []string
}

func (m *member) ownedSorted() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]int32, 0, len(m.owned))
	for partition := range m.owned {
		out = append(out, partition)
	}
	slices.Sort(out)
	return out
}

func (m *member) owns(partition int32) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.owned[partition]
}

// ledger is what the group read: record index -> where.
type ledger struct {
	mu   sync.Mutex
	seen map[int]place
	last map[int32]int64
	read int
}

func main() {
	if len(os.Args) != 4 && len(os.Args) != 5 {
		fmt.Fprintln(os.Stderr, "usage: franz-go-client BOOTSTRAP TOPIC PARTITIONS [classic|consumer]")
		os.Exit(2)
	}
	protocol := "classic"
	if len(os.Args) == 5 {
		protocol = os.Args[4]
	}
	if protocol != "classic" && protocol != "consumer" {
		fmt.Fprintf(os.Stderr, "PROTOCOL %q: classic or consumer\n", protocol)
		os.Exit(2)
	}
	bootstrap, topic := os.Args[1], os.Args[2]
	partitions, err := strconv.Atoi(os.Args[3])
	if err != nil || partitions < 2 {
		fmt.Fprintf(os.Stderr, "PARTITIONS %q: at least 2\n", os.Args[3])
		os.Exit(2)
	}
	c := &check{started: time.Now()}
	ctx := context.Background()

	adminClient, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(bootstrap, ",")...), dialer(), kgo.ClientID(client+"-admin"))
	c.must(err, "admin client")
	defer adminClient.Close()
	admin := kadm.NewClient(adminClient)
	admin.SetTimeoutMillis(int32(timeout / time.Millisecond))

	createTopic(ctx, c, admin, topic, partitions)
	group := topic + "-group"
	members := startGroup(ctx, c, bootstrap, topic, group, partitions, protocol)
	defer func() {
		for _, m := range members {
			m.client.Close()
		}
	}()
	delivered := produce(ctx, c, bootstrap, topic)
	consume(c, members, topic, delivered)
	checkOffsets(ctx, c, admin, topic, partitions, delivered)
	checkGroup(ctx, c, admin, members, topic, group, partitions, delivered, protocol)
	deleteRecords(ctx, c, admin, bootstrap, topic+"-deleted")

	if c.failures > 0 {
		fmt.Printf("%s: %d failures\n", client, c.failures)
		os.Exit(1)
	}
	c.step("ok")
}

func createTopic(ctx context.Context, c *check, admin *kadm.Client, topic string, partitions int) {
	c.step("create topic %s with %d partitions", topic, partitions)
	retention := retentionMs
	created, err := admin.CreateTopic(ctx, int32(partitions), 1,
		map[string]*string{"retention.ms": &retention}, topic)
	c.must(err, "create topic")
	c.must(created.Err, "create topic "+topic)
	c.expect(created.NumPartitions == int32(partitions) || created.NumPartitions == -1,
		"created with %d partitions", created.NumPartitions)
	// kadm returns a single topic's error as the call's.
	again, err := admin.CreateTopic(ctx, 1, 1, nil, topic)
	if err == nil {
		err = again.Err
	}
	c.expect(errors.Is(err, kerr.TopicAlreadyExists),
		"creating an existing topic: %v, expected TOPIC_ALREADY_EXISTS", err)

	c.step("list and describe the topic, its configs")
	listed, err := admin.ListTopics(ctx)
	if c.ok(err, "list topics") {
		detail, found := listed[topic]
		if c.expect(found, "%s not listed: %v", topic, listed.Names()) {
			c.ok(detail.Err, "listed "+topic)
			c.expect(len(detail.Partitions) == partitions, "listed %d partitions", len(detail.Partitions))
			c.expect(!detail.IsInternal, "%s listed as internal", topic)
			for _, partition := range detail.Partitions.Sorted() {
				c.expect(partition.Err == nil && partition.Leader >= 0,
					"partition %d: leader %d, %v", partition.Partition, partition.Leader, partition.Err)
				c.expect(slices.Contains(partition.Replicas, partition.Leader) && slices.Contains(partition.ISR, partition.Leader),
					"partition %d: leader %d not among replicas %v / in sync %v",
					partition.Partition, partition.Leader, partition.Replicas, partition.ISR)
			}
		}
	}
	metadata, err := admin.BrokerMetadata(ctx)
	if c.ok(err, "broker metadata") {
		c.expect(len(metadata.Brokers) >= 1, "no brokers in %+v", metadata)
	}
	checkConfig(ctx, c, admin, topic, "retention.ms", retentionMs)

	altered := alteredMs
	responses, err := admin.AlterTopicConfigs(ctx,
		[]kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: &altered}}, topic)
	if c.ok(err, "alter topic configs") {
		for _, response := range responses {
			c.ok(response.Err, "alter "+response.Name)
		}
		checkConfig(ctx, c, admin, topic, "retention.ms", alteredMs)
	}
}

// checkConfig checks that the topic's config `name` is `want`, set on the
// topic. A change is applied through the metadata log and may take a moment
// to be seen: until it is, it asks again.
func checkConfig(ctx context.Context, c *check, admin *kadm.Client, topic, name, want string) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		described, err := admin.DescribeTopicConfigs(ctx, topic)
		if err != nil {
			break
		}
		config, err := described.On(topic, nil)
		if err != nil || config.Err != nil {
			break
		}
		if slices.ContainsFunc(config.Configs, func(config kadm.Config) bool {
			return config.Key == name && config.MaybeValue() == want
		}) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	described, err := admin.DescribeTopicConfigs(ctx, topic)
	if !c.ok(err, "describe topic configs") {
		return
	}
	resource, err := described.On(topic, nil)
	if !c.ok(err, "describe configs of "+topic) || !c.ok(resource.Err, "configs of "+topic) {
		return
	}
	found := false
	for _, config := range resource.Configs {
		switch config.Key {
		case name:
			found = true
			c.expect(config.Value != nil && *config.Value == want, "%s = %v, expected %s", name, config.MaybeValue(), want)
			c.expect(config.Source.String() == "DYNAMIC_TOPIC_CONFIG", "%s: source %s", name, config.Source)
		case "cleanup.policy":
			c.expect(config.MaybeValue() == "delete", "cleanup.policy = %q", config.MaybeValue())
		}
	}
	c.expect(found, "%s not among %d configs", name, len(resource.Configs))
}

// startGroup starts two consumers in one group on the topic and waits until
// they share its partitions: each owns some, none is owned twice, all are.
func startGroup(ctx context.Context, c *check, bootstrap, topic, group string, partitions int, protocol string) []*member {
	c.step("group %s (%s protocol): two members join", group, protocol)
	var members []*member
	for _, name := range []string{"a", "b"} {
		m := &member{name: client + "-" + name, owned: map[int32]bool{}}
		balancing := []kgo.Opt{kgo.Balancers(kgo.CooperativeStickyBalancer())}
		if protocol == "consumer" {
			balancing = []kgo.Opt{kgo.Balancers(kgo.StickyBalancer()), kgo.ServerSideBalancer()}
		}
		consumer, err := kgo.NewClient(append(balancing,
			kgo.SeedBrokers(strings.Split(bootstrap, ",")...), dialer(),
			kgo.ClientID(m.name),
			kgo.ConsumerGroup(group),
			kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.DisableAutoCommit(),
			kgo.SessionTimeout(6*time.Second),
			kgo.HeartbeatInterval(time.Second),
			kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
				m.mu.Lock()
				defer m.mu.Unlock()
				m.events = append(m.events, fmt.Sprintf("assigned %v", assigned[topic]))
				for _, partition := range assigned[topic] {
					c.expect(!m.owned[partition], "%s: partition %d assigned while owned", m.name, partition)
					m.owned[partition] = true
				}
			}),
			kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
				// What was read is committed before the partitions go.
				c.ok(cl.CommitUncommittedOffsets(ctx), m.name+": commit on revoke")
				m.mu.Lock()
				defer m.mu.Unlock()
				m.events = append(m.events, fmt.Sprintf("revoked %v", revoked[topic]))
				for _, partition := range revoked[topic] {
					delete(m.owned, partition)
				}
			}),
			kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
				m.mu.Lock()
				defer m.mu.Unlock()
				m.events = append(m.events, fmt.Sprintf("lost %v", lost[topic]))
				for _, partition := range lost[topic] {
					delete(m.owned, partition)
				}
			}),
		)...)
		c.must(err, m.name)
		m.client = consumer
		members = append(members, m)
	}
	// A stable split holds for a second (Kafka delays a new group's first
	// rebalance by 3 s, so the first member may own everything for a while).
	deadline := time.Now().Add(timeout)
	stableSince := time.Time{}
	for time.Now().Before(deadline) {
		a, b := members[0].ownedSorted(), members[1].ownedSorted()
		split := len(a) > 0 && len(b) > 0 && len(a)+len(b) == partitions
		for _, partition := range a {
			split = split && !slices.Contains(b, partition)
		}
		if !split {
			stableSince = time.Time{}
		} else if stableSince.IsZero() {
			stableSince = time.Now()
		} else if time.Since(stableSince) > time.Second {
			c.step("group %s: %s owns %v, %s owns %v", group, members[0].name, a, members[1].name, b)
			return members
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, m := range members {
		fmt.Printf("FAIL: %s owns %v; callbacks %v\n", m.name, m.ownedSorted(), m.events)
	}
	c.must(errors.New("no stable split"), "the group did not share the partitions within "+timeout.String())
	return nil
}

// produce sends every record, a fifth through each codec, each fifth by its
// own idempotent producer, and returns where each was acknowledged.
func produce(ctx context.Context, c *check, bootstrap, topic string) map[int]place {
	delivered := make(map[int]place, records)
	var mu sync.Mutex
	per := records / len(codecs)
	for round, codec := range codecs {
		c.step("produce records %d..%d, %s, idempotent", round*per, (round+1)*per-1, codec.name)
		producer, err := kgo.NewClient(
			kgo.SeedBrokers(strings.Split(bootstrap, ",")...), dialer(),
			kgo.ClientID(client+"-producer-"+codec.name),
			kgo.DefaultProduceTopic(topic),
			kgo.RequiredAcks(kgo.AllISRAcks()),
			kgo.ProducerBatchCompression(codec.codec),
			kgo.ProducerLinger(5*time.Millisecond),
		)
		c.must(err, "producer")
		for index := round * per; index < (round+1)*per; index++ {
			record := &kgo.Record{Key: key(index), Value: value(index), Headers: headers(index)}
			producer.Produce(ctx, record, func(record *kgo.Record, err error) {
				if !c.ok(err, fmt.Sprintf("record %d", index)) {
					return
				}
				mu.Lock()
				defer mu.Unlock()
				delivered[index] = place{record.Partition, record.Offset}
			})
		}
		c.ok(producer.Flush(ctx), "flush")
		id, epoch, err := producer.ProducerID(ctx)
		if c.ok(err, "producer id") {
			c.expect(id >= 0 && epoch >= 0, "%s producer: id %d epoch %d, expected an idempotent producer's", codec.name, id, epoch)
		}
		producer.Close()
	}
	c.expect(len(delivered) == records, "%d records acknowledged of %d", len(delivered), records)
	return delivered
}

// consume reads until the group has read every record, checking each and
// that its member owned its partition, and commits after every poll.
func consume(c *check, members []*member, topic string, delivered map[int]place) {
	c.step("consume in the group")
	read := &ledger{seen: map[int]place{}, last: map[int32]int64{}}
	ctx, cancel := context.WithTimeout(context.Background(), consumeTimeout)
	defer cancel()
	var wait sync.WaitGroup
	for _, m := range members {
		wait.Add(1)
		go func() {
			defer wait.Done()
			for ctx.Err() == nil {
				read.mu.Lock()
				done := read.read >= records
				read.mu.Unlock()
				if done {
					return
				}
				pollCtx, pollCancel := context.WithTimeout(ctx, 500*time.Millisecond)
				fetches := m.client.PollFetches(pollCtx)
				pollCancel()
				fetches.EachError(func(t string, p int32, err error) {
					if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
						c.expect(false, "%s: fetch %s/%d: %v", m.name, t, p, err)
					}
				})
				fetches.EachRecord(func(record *kgo.Record) {
					c.expect(m.owns(record.Partition), "%s read partition %d, not its own", m.name, record.Partition)
					checkRecord(c, read, record, delivered)
				})
				if fetches.NumRecords() > 0 {
					c.ok(m.client.CommitUncommittedOffsets(ctx), m.name+": commit")
				}
			}
		}()
	}
	wait.Wait()
	c.expect(read.read == records, "%d records read of %d", read.read, records)
	missing := 0
	for index := 0; index < records; index++ {
		if _, found := read.seen[index]; !found {
			missing++
		}
	}
	c.expect(missing == 0, "%d records not read", missing)
}

func checkRecord(c *check, read *ledger, record *kgo.Record, delivered map[int]place) {
	index := -1
	for _, header := range record.Headers {
		if header.Key == "index" {
			index, _ = strconv.Atoi(string(header.Value))
		}
	}
	at := fmt.Sprintf("%s %d/%d", record.Topic, record.Partition, record.Offset)
	if !c.expect(index >= 0 && index < records, "%s: no index header: %v", at, record.Headers) {
		return
	}
	read.mu.Lock()
	defer read.mu.Unlock()
	read.read++
	here := place{record.Partition, record.Offset}
	if before, twice := read.seen[index]; twice {
		c.expect(false, "record %d read twice, at %v and %v", index, before, here)
	}
	read.seen[index] = here
	c.expect(delivered[index] == here, "record %d read at %v, acknowledged at %v", index, here, delivered[index])
	if last, found := read.last[record.Partition]; found {
		c.expect(record.Offset > last, "%s after offset %d", at, last)
	}
	read.last[record.Partition] = record.Offset
	c.expect(bytes.Equal(record.Key, key(index)), "record %d: key %q", index, record.Key)
	c.expect(bytes.Equal(record.Value, value(index)), "record %d: value differs (%d bytes)", index, len(record.Value))
	want := headers(index)
	same := len(record.Headers) == len(want)
	for i := 0; same && i < len(want); i++ {
		same = record.Headers[i].Key == want[i].Key && bytes.Equal(record.Headers[i].Value, want[i].Value)
	}
	c.expect(same, "record %d: headers %v", index, record.Headers)
	c.expect(record.ProducerID >= 0, "record %d: producer id %d, produced idempotent", index, record.ProducerID)
	age := time.Since(record.Timestamp)
	c.expect(age > -time.Minute && age < 10*time.Minute, "record %d: timestamp %v", index, record.Timestamp)
}

// checkOffsets compares what kadm lists with where records were acknowledged.
func checkOffsets(ctx context.Context, c *check, admin *kadm.Client, topic string, partitions int, delivered map[int]place) {
	c.step("list offsets: start, end, by time")
	ends := map[int32]int64{}
	for _, at := range delivered {
		ends[at.partition] = max(ends[at.partition], at.offset+1)
	}
	compare := func(what string, listed kadm.ListedOffsets, err error, want func(int32) int64) {
		if !c.ok(err, what) {
			return
		}
		for partition := int32(0); partition < int32(partitions); partition++ {
			offset, found := listed.Lookup(topic, partition)
			if c.expect(found, "%s: partition %d missing", what, partition) && c.ok(offset.Err, what) {
				c.expect(offset.Offset == want(partition), "%s: partition %d at %d, expected %d",
					what, partition, offset.Offset, want(partition))
			}
		}
	}
	starts, err := admin.ListStartOffsets(ctx, topic)
	compare("start offsets", starts, err, func(int32) int64 { return 0 })
	endOffsets, err := admin.ListEndOffsets(ctx, topic)
	compare("end offsets", endOffsets, err, func(partition int32) int64 { return ends[partition] })
	// Every record was written after the run started: its first offset.
	byTime, err := admin.ListOffsetsAfterMilli(ctx, time.Now().Add(-time.Hour).UnixMilli(), topic)
	compare("offsets after an hour ago", byTime, err, func(int32) int64 { return 0 })
	// Nothing after now: the end.
	future, err := admin.ListOffsetsAfterMilli(ctx, time.Now().Add(time.Hour).UnixMilli(), topic)
	compare("offsets after an hour from now", future, err, func(partition int32) int64 { return ends[partition] })
	committed, err := admin.ListCommittedOffsets(ctx, topic)
	compare("committed (last stable) offsets", committed, err, func(partition int32) int64 { return ends[partition] })
}

func checkGroup(ctx context.Context, c *check, admin *kadm.Client, members []*member, topic, group string,
	partitions int, delivered map[int]place, protocol string) {
	c.step("describe and list the group, its offsets and lag")
	ends := map[int32]int64{}
	for _, at := range delivered {
		ends[at.partition] = max(ends[at.partition], at.offset+1)
	}
	// Each member committed after its last poll.
	for _, m := range members {
		c.ok(m.client.CommitUncommittedOffsets(ctx), m.name+": last commit")
	}

	if protocol == "classic" {
		describeClassicGroup(ctx, c, admin, members, topic, group)
	} else {
		describeConsumerGroup(ctx, c, admin, members, topic, group)
	}

	listed, err := admin.ListGroups(ctx)
	if c.ok(err, "list groups") {
		g, found := listed[group]
		if c.expect(found, "group %s not listed among %v", group, listed.Groups()) {
			c.expect(g.ProtocolType == "consumer", "listed protocol type %q", g.ProtocolType)
			c.expect(g.GroupType == "" || g.GroupType == protocol, "listed group type %q", g.GroupType)
			c.expect(g.State == "" || g.State == "Stable", "listed state %q", g.State)
		}
	}
	stable, err := admin.ListGroups(ctx, "Stable")
	if c.ok(err, "list stable groups") {
		_, found := stable[group]
		c.expect(found, "group %s not listed as Stable: %v", group, stable.Groups())
	}
	empty, err := admin.ListGroups(ctx, "Empty")
	if c.ok(err, "list empty groups") {
		_, found := empty[group]
		c.expect(!found, "group %s listed as Empty", group)
	}

	offsets, err := admin.FetchOffsets(ctx, group)
	if c.ok(err, "fetch offsets") {
		for partition := int32(0); partition < int32(partitions); partition++ {
			offset, found := offsets.Lookup(topic, partition)
			if c.expect(found, "no committed offset for partition %d", partition) && c.ok(offset.Err, "committed offset") {
				c.expect(offset.At == ends[partition], "partition %d committed at %d, end %d", partition, offset.At, ends[partition])
			}
		}
	}
	// kadm's lag describes the group with DescribeGroups, which Kafka 4
	// answers GROUP_ID_NOT_FOUND for a group of the consumer protocol.
	if protocol == "classic" {
		checkLag(ctx, c, admin, group)
	}

	// One member leaves: the other takes every partition, from the
	// committed offsets, and reads nothing again.
	c.step("%s leaves the group", members[1].name)
	members[1].client.Close()
	deadline := time.Now().Add(timeout)
	for len(members[0].ownedSorted()) != partitions && time.Now().Before(deadline) {
		pollCtx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		fetches := members[0].client.PollFetches(pollCtx)
		cancel()
		fetches.EachRecord(func(record *kgo.Record) {
			c.expect(false, "%s read %s/%d/%d again after the other left", members[0].name,
				record.Topic, record.Partition, record.Offset)
		})
	}
	c.expect(len(members[0].ownedSorted()) == partitions, "%s owns %v after the other left; callbacks %v",
		members[0].name, members[0].ownedSorted(), members[0].events)
	pollCtx, cancel := context.WithTimeout(ctx, time.Second)
	fetches := members[0].client.PollFetches(pollCtx)
	cancel()
	c.expect(fetches.NumRecords() == 0, "%s read %d records again", members[0].name, fetches.NumRecords())

	state, count := groupState(ctx, c, admin, group, protocol)
	c.expect(state == "Stable" && count == 1, "after one left: state %q, %d members", state, count)
	members[0].client.Close()
	state, count = groupState(ctx, c, admin, group, protocol)
	c.expect(state == "Empty" && count == 0, "after both left: state %q, %d members", state, count)
	offsets, err = admin.FetchOffsets(ctx, group)
	if c.ok(err, "fetch offsets of the empty group") {
		total := 0
		offsets.Each(func(o kadm.OffsetResponse) {
			total++
			c.expect(o.At == ends[o.Partition], "partition %d committed at %d once empty", o.Partition, o.At)
		})
		c.expect(total == partitions, "%d committed offsets once empty", total)
	}
	deleted, err := admin.DeleteGroup(ctx, group)
	if c.ok(err, "delete group") {
		c.ok(deleted.Err, "delete "+group)
	}
	listed, err = admin.ListGroups(ctx)
	if c.ok(err, "list groups") {
		_, found := listed[group]
		c.expect(!found, "group %s still listed after its deletion", group)
	}
}

// checkLag checks that kadm finds the group has read everything.
func checkLag(ctx context.Context, c *check, admin *kadm.Client, group string) {
	lags, err := admin.Lag(ctx, group)
	if c.ok(err, "lag") {
		lag := lags[group]
		if c.ok(lag.Error(), "lag of "+group) {
			c.expect(lag.Lag.Total() == 0, "lag %d after reading everything", lag.Lag.Total())
			for _, l := range lag.Lag.Sorted() {
				c.expect(l.Member != nil, "partition %d has no member in the lag", l.Partition)
			}
		}
	}
}

// groupState describes the group with the API of its protocol: its state
// and how many members it has.
func groupState(ctx context.Context, c *check, admin *kadm.Client, group, protocol string) (string, int) {
	if protocol == "classic" {
		described, err := admin.DescribeGroups(ctx, group)
		if !c.ok(err, "describe groups") {
			return "", -1
		}
		return described[group].State, len(described[group].Members)
	}
	described, err := admin.DescribeConsumerGroups(ctx, group)
	if !c.ok(err, "describe consumer groups") {
		return "", -1
	}
	return described[group].State, len(described[group].Members)
}

// describeClassicGroup checks DescribeGroups against what the members own.
func describeClassicGroup(ctx context.Context, c *check, admin *kadm.Client, members []*member, topic, group string) {
	described, err := admin.DescribeGroups(ctx, group)
	if c.ok(err, "describe groups") {
		d, found := described[group]
		if c.expect(found, "group %s not described", group) && c.ok(d.Err, "describe "+group) {
			c.expect(d.State == "Stable", "group state %q", d.State)
			c.expect(d.ProtocolType == "consumer", "protocol type %q", d.ProtocolType)
			c.expect(d.Protocol == "cooperative-sticky", "protocol %q", d.Protocol)
			c.expect(len(d.Members) == 2, "%d members", len(d.Members))
			for _, described := range d.Members {
				var owner *member
				for _, m := range members {
					if m.name == described.ClientID {
						owner = m
					}
				}
				if !c.expect(owner != nil, "member %s (client id %q) is not one of ours", described.MemberID, described.ClientID) {
					continue
				}
				assignment, ok := described.Assigned.AsConsumer()
				if !c.expect(ok, "%s: assignment not a consumer's", owner.name) {
					continue
				}
				var assigned []int32
				for _, t := range assignment.Topics {
					if c.expect(t.Topic == topic, "%s: assigned topic %s", owner.name, t.Topic) {
						assigned = append(assigned, t.Partitions...)
					}
				}
				slices.Sort(assigned)
				c.expect(slices.Equal(assigned, owner.ownedSorted()), "%s: described as assigned %v, owns %v",
					owner.name, assigned, owner.ownedSorted())
				joined, ok := described.Join.AsConsumer()
				c.expect(ok && slices.Equal(joined.Topics, []string{topic}), "%s: joined for %v", owner.name, joined)
			}
		}
	}
}

// describeConsumerGroup checks ConsumerGroupDescribe (KIP-848) against what
// the members own.
func describeConsumerGroup(ctx context.Context, c *check, admin *kadm.Client, members []*member, topic, group string) {
	described, err := admin.DescribeConsumerGroups(ctx, group)
	if !c.ok(err, "describe consumer groups") {
		return
	}
	d, found := described[group]
	if !c.expect(found, "group %s not described", group) || !c.ok(d.Err, "describe "+group) {
		return
	}
	c.expect(d.State == "Stable", "group state %q", d.State)
	c.expect(d.AssignorName == "uniform", "assignor %q", d.AssignorName)
	c.expect(d.Epoch > 0 && d.AssignmentEpoch == d.Epoch, "group epoch %d, assignment epoch %d", d.Epoch, d.AssignmentEpoch)
	c.expect(len(d.Members) == 2, "%d members", len(d.Members))
	for _, described := range d.Members {
		var owner *member
		for _, m := range members {
			if m.name == described.ClientID {
				owner = m
			}
		}
		if !c.expect(owner != nil, "member %s (client id %q) is not one of ours", described.MemberID, described.ClientID) {
			continue
		}
		c.expect(slices.Equal(described.SubscribedTopics, []string{topic}), "%s: subscribed to %v", owner.name, described.SubscribedTopics)
		c.expect(described.MemberEpoch == d.Epoch, "%s: member epoch %d, group epoch %d", owner.name, described.MemberEpoch, d.Epoch)
		assigned := described.Assignment.Sorted()
		var partitions []int32
		for _, t := range assigned {
			if c.expect(t.Topic == topic, "%s: assigned topic %s", owner.name, t.Topic) {
				partitions = append(partitions, t.Partitions...)
			}
		}
		slices.Sort(partitions)
		c.expect(slices.Equal(partitions, owner.ownedSorted()), "%s: described as assigned %v, owns %v",
			owner.name, partitions, owner.ownedSorted())
		target := described.TargetAssignment.Sorted()
		c.expect(len(target) == len(assigned) && (len(target) == 0 || slices.Equal(target[0].Partitions, assigned[0].Partitions)),
			"%s: target assignment %v, assignment %v", owner.name, target, assigned)
	}
}

// deleteRecords deletes the head of a one-partition topic and checks that
// the start offset and a read from the start move past it.
func deleteRecords(ctx context.Context, c *check, admin *kadm.Client, bootstrap, topic string) {
	c.step("delete records before %d of %s", deleteBefore, topic)
	created, err := admin.CreateTopic(ctx, 1, 1, nil, topic)
	c.must(err, "create "+topic)
	c.must(created.Err, "create "+topic)
	producer, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(bootstrap, ",")...), dialer(), kgo.ClientID(client+"-deleted"),
		kgo.DefaultProduceTopic(topic))
	c.must(err, "producer")
	defer producer.Close()
	batch := make([]*kgo.Record, 0, deletedTopicRecords)
	for index := range deletedTopicRecords {
		batch = append(batch, &kgo.Record{Value: []byte(strconv.Itoa(index))})
	}
	c.must(producer.ProduceSync(ctx, batch...).FirstErr(), "produce to "+topic)

	offsets := kadm.Offsets{}
	offsets.AddOffset(topic, 0, deleteBefore, -1)
	responses, err := admin.DeleteRecords(ctx, offsets)
	if c.ok(err, "delete records") {
		response, found := responses.Lookup(topic, 0)
		if c.expect(found, "no delete records response") && c.ok(response.Err, "delete records") {
			c.expect(response.LowWatermark == deleteBefore, "low watermark %d after deleting before %d",
				response.LowWatermark, deleteBefore)
		}
	}
	starts, err := admin.ListStartOffsets(ctx, topic)
	if c.ok(err, "start offsets") {
		start, _ := starts.Lookup(topic, 0)
		c.expect(start.Err == nil && start.Offset == deleteBefore, "start offset %d (%v) after deleting before %d",
			start.Offset, start.Err, deleteBefore)
	}
	ends, err := admin.ListEndOffsets(ctx, topic)
	if c.ok(err, "end offsets") {
		end, _ := ends.Lookup(topic, 0)
		c.expect(end.Offset == deletedTopicRecords, "end offset %d", end.Offset)
	}

	reader, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(bootstrap, ",")...), dialer(), kgo.ClientID(client+"-deleted-reader"),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	c.must(err, "reader")
	defer reader.Close()
	var got []int64
	deadline := time.Now().Add(timeout)
	for len(got) < deletedTopicRecords-deleteBefore && time.Now().Before(deadline) {
		pollCtx, cancel := context.WithTimeout(ctx, time.Second)
		fetches := reader.PollFetches(pollCtx)
		cancel()
		fetches.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				c.expect(false, "fetch %s/%d: %v", t, p, err)
			}
		})
		fetches.EachRecord(func(record *kgo.Record) {
			c.expect(string(record.Value) == strconv.FormatInt(record.Offset, 10), "offset %d holds %q", record.Offset, record.Value)
			got = append(got, record.Offset)
		})
	}
	sort.Slice(got, func(i, j int) bool { return got[i] < got[j] })
	c.expect(len(got) == deletedTopicRecords-deleteBefore && got[0] == deleteBefore,
		"read %d records from the start of %s, first %v", len(got), topic, got[:min(len(got), 1)])
}
