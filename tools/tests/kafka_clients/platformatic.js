'use strict'
// @platformatic/kafka against a Sluice broker: create a topic with the
// admin API, produce 10,000 keyed records with headers, read them back
// with Fetch by topic id (no consumer group) and compare byte for byte;
// list and describe the topic.
//
// usage: node platformatic.js BOOTSTRAP TOPIC PARTITIONS

const { Admin, Consumer, Producer, ConfigResourceTypes } = require('@platformatic/kafka')
const records = require('./records.js')

const CLIENT = 'platformatic'
const BATCH = 500

async function main () {
  const [bootstrap, topic, partitionsText] = process.argv.slice(2)
  const partitions = Number(partitionsText)
  const check = new records.Check(CLIENT)
  const base = { clientId: CLIENT, bootstrapBrokers: [bootstrap], retries: 3 }

  const admin = new Admin(base)
  check.step(`create topic ${topic} with ${partitions} partitions`)
  const created = await admin.createTopics({
    topics: [topic],
    partitions,
    replicas: 1,
    configs: [{ name: 'retention.ms', value: '3600000' }]
  })
  check.expect(created.length === 1 && created[0].name === topic && created[0].partitions === partitions,
    `createTopics answered ${JSON.stringify(created)}`)

  check.step('produce')
  const producer = new Producer({ ...base, idempotent: true, compression: 'snappy', autocreateTopics: false })
  for (let first = 0; first < records.RECORDS; first += BATCH) {
    const messages = []
    for (let index = first; index < Math.min(first + BATCH, records.RECORDS); index++) {
      messages.push({
        topic,
        key: records.key(index),
        value: records.value(index, CLIENT),
        headers: new Map(records.headers(index, CLIENT).map(([name, value]) => [Buffer.from(name), value]))
      })
    }
    await producer.send({ messages })
  }
  await producer.close()

  check.step('list and describe')
  const listed = await admin.listTopics()
  check.expect(listed.includes(topic), `${topic} not listed: ${listed}`)
  const metadata = await admin.metadata({ topics: [topic], forceUpdate: true })
  const described = metadata.topics.get(topic)
  check.expect(described && described.partitionsCount === partitions, `metadata of ${topic}: ${described && described.partitionsCount}`)
  check.expect(metadata.brokers.size === 1, `brokers ${[...metadata.brokers.keys()]}`)
  const configs = await admin.describeConfigs({
    resources: [{ resourceType: ConfigResourceTypes.TOPIC, resourceName: topic }]
  })
  const retention = configs[0].configs.find(entry => entry.name === 'retention.ms')
  check.expect(retention && retention.value === '3600000', `retention.ms ${JSON.stringify(retention)}`)
  await admin.close()

  check.step('consume with Fetch')
  const consumer = new Consumer({ ...base, groupId: `${topic}-unused` })
  const ends = (await consumer.listOffsets({ topics: [topic] })).get(topic)
  check.expect(ends.reduce((sum, end) => sum + Number(end), 0) === records.RECORDS, `end offsets ${ends}`)
  const consumed = []
  for (let partition = 0; partition < partitions; partition++) {
    const leader = described.partitions[partition].leader
    let offset = 0n
    while (offset < ends[partition]) {
      const answer = await consumer.fetch({
        node: leader,
        maxWaitTime: 100,
        minBytes: 1,
        maxBytes: 4 << 20,
        topics: [{
          topicId: described.id,
          partitions: [{ partition, fetchOffset: offset, partitionMaxBytes: 1 << 20, currentLeaderEpoch: -1, lastFetchedEpoch: -1 }]
        }]
      })
      const fetched = answer.responses[0].partitions[0]
      check.expect(fetched.errorCode === 0, `fetch of ${partition} at ${offset}: error ${fetched.errorCode}`)
      if (fetched.errorCode !== 0) break
      let progressed = false
      for (const batch of fetched.records || []) {
        for (const record of batch.records) {
          const at = batch.firstOffset + BigInt(record.offsetDelta)
          if (at < offset) continue
          consumed.push({
            partition,
            offset: Number(at),
            key: record.key,
            value: record.value,
            headers: record.headers.map(([name, value]) => [name.toString(), value])
          })
          offset = at + 1n
          progressed = true
        }
      }
      check.expect(progressed, `fetch of ${partition} at ${offset} returned nothing below ${ends[partition]}`)
      if (!progressed) break
    }
  }
  await consumer.close()
  check.compare(consumed)
  check.finish()
}

main().catch(error => {
  console.log(`platformatic: ${error.stack || error}`)
  if (error.errors) console.log(JSON.stringify(error.errors, null, 2))
  process.exit(1)
})
