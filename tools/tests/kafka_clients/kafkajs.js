'use strict'
// KafkaJS against a Sluice broker: create a topic with the admin API,
// produce 10,000 keyed records with headers, list and describe the topic.
// With --group, also read everything back in a consumer group (KafkaJS
// reads no other way) and compare byte for byte.
//
// usage: node kafkajs.js BOOTSTRAP TOPIC PARTITIONS [--group]
//
// With SLUICE_TLS_CA (a CA's PEM file) in the environment it connects over
// TLS, presenting the client certificate of SLUICE_TLS_CERT and
// SLUICE_TLS_KEY if they are given.

const fs = require('fs')
const { Kafka, CompressionTypes, ConfigResourceTypes, Partitioners, logLevel } = require('kafkajs')
const records = require('./records.js')

// Node's TLS, when the environment names a CA; the broker's name is
// checked against its certificate.
function ssl () {
  const ca = process.env.SLUICE_TLS_CA
  if (!ca) return undefined
  const options = { ca: [fs.readFileSync(ca, 'utf-8')] }
  if (process.env.SLUICE_TLS_CERT) {
    options.cert = fs.readFileSync(process.env.SLUICE_TLS_CERT, 'utf-8')
    options.key = fs.readFileSync(process.env.SLUICE_TLS_KEY, 'utf-8')
  }
  return options
}

const CLIENT = 'kafkajs'
const BATCH = 500

async function main () {
  const [bootstrap, topic, partitionsText, mode] = process.argv.slice(2)
  const partitions = Number(partitionsText)
  const check = new records.Check(CLIENT)
  const kafka = new Kafka({
    clientId: CLIENT,
    brokers: [bootstrap],
    ssl: ssl(),
    logLevel: logLevel.WARN,
    retry: { retries: 5 }
  })

  const admin = kafka.admin()
  await admin.connect()
  check.step(`create topic ${topic} with ${partitions} partitions`)
  const created = await admin.createTopics({
    topics: [{ topic, numPartitions: partitions, replicationFactor: 1, configEntries: [{ name: 'retention.ms', value: '3600000' }] }],
    waitForLeaders: true
  })
  check.expect(created === true, `createTopics answered ${created}`)
  const again = await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] })
  check.expect(again === false, 'creating an existing topic created it')

  check.step('produce')
  const producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    createPartitioner: Partitioners.DefaultPartitioner
  })
  await producer.connect()
  for (let first = 0; first < records.RECORDS; first += BATCH) {
    const messages = []
    for (let index = first; index < Math.min(first + BATCH, records.RECORDS); index++) {
      messages.push({
        key: records.key(index),
        value: records.value(index, CLIENT),
        headers: Object.fromEntries(records.headers(index, CLIENT))
      })
    }
    const answers = await producer.send({ topic, compression: CompressionTypes.GZIP, messages })
    for (const answer of answers) check.expect(answer.errorCode === 0, `produce answer ${JSON.stringify(answer)}`)
  }
  await producer.disconnect()

  check.step('list and describe')
  const listed = await admin.listTopics()
  check.expect(listed.includes(topic), `${topic} not listed: ${listed}`)
  const metadata = await admin.fetchTopicMetadata({ topics: [topic] })
  check.expect(metadata.topics.length === 1 && metadata.topics[0].partitions.length === partitions,
    `metadata ${JSON.stringify(metadata)}`)
  const offsets = await admin.fetchTopicOffsets(topic)
  const total = offsets.reduce((sum, partition) => sum + Number(partition.high) - Number(partition.low), 0)
  check.expect(total === records.RECORDS, `offsets ${JSON.stringify(offsets)}`)
  const configs = await admin.describeConfigs({
    resources: [{ type: ConfigResourceTypes.TOPIC, name: topic }],
    includeSynonyms: false
  })
  const retention = configs.resources[0].configEntries.find(entry => entry.configName === 'retention.ms')
  check.expect(retention && retention.configValue === '3600000', `retention.ms ${JSON.stringify(retention)}`)
  const cluster = await admin.describeCluster()
  check.expect(cluster.brokers.length === 1 && cluster.controller === cluster.brokers[0].nodeId,
    `cluster ${JSON.stringify(cluster)}`)
  await admin.disconnect()

  if (mode === '--group') {
    check.step('consume in a group')
    const consumer = kafka.consumer({ groupId: `${topic}-readers` })
    await consumer.connect()
    await consumer.subscribe({ topic, fromBeginning: true })
    const consumed = []
    let done
    const finished = new Promise(resolve => { done = resolve })
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        consumed.push({
          partition,
          offset: Number(message.offset),
          key: message.key,
          value: message.value,
          headers: Object.entries(message.headers || {})
        })
        if (consumed.length >= records.RECORDS) done()
      }
    })
    const timeout = setTimeout(done, 120000)
    await finished
    clearTimeout(timeout)
    await consumer.disconnect()
    consumed.sort((a, b) => a.partition - b.partition || a.offset - b.offset)
    check.compare(consumed)
  }
  check.finish()
}

main().catch(error => {
  console.log(`kafkajs: ${error.stack || error}`)
  process.exit(1)
})
