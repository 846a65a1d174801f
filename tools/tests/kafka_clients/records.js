'use strict'
// The records every Node client script produces and reads back: the same
// formula as records.py and tools/tests/kafka_clients.rs.

const RECORDS = 10000
const KEYS = 1000

function key (index) {
  return Buffer.from(`key-${index % KEYS}`)
}

function value (index, client) {
  const tail = Buffer.alloc(index % 100)
  for (let offset = 0; offset < tail.length; offset++) tail[offset] = (index * 31 + offset) % 256
  return Buffer.concat([Buffer.from(`value-${index}-${client}|`), tail])
}

// [name, value] pairs, in order.
function headers (index, client) {
  return [
    ['index', Buffer.from(String(index))],
    ['client', Buffer.from(client)],
    ['bin', Buffer.from([index % 256, 0, 255])]
  ]
}

class Check {
  constructor (client) {
    this.client = client
    this.failures = []
    this.started = process.hrtime.bigint()
  }

  step (text) {
    const seconds = Number(process.hrtime.bigint() - this.started) / 1e9
    console.log(`[${this.client} ${seconds.toFixed(2).padStart(6)}s] ${text}`)
  }

  expect (condition, text) {
    if (!condition) {
      this.failures.push(text)
      if (this.failures.length <= 20) console.log(`FAIL: ${text}`)
    }
  }

  // records: {partition, offset (number), key, value, headers: [[name string, value Buffer]]}
  // delivered: Map index -> [partition, offset], when the client reports it.
  compare (records, delivered) {
    const seen = new Map()
    const lastIndex = new Map()
    const lastOffset = new Map()
    for (const record of records) {
      const indexHeader = record.headers.find(([name]) => name === 'index')
      if (!indexHeader) {
        this.expect(false, `a record without an index header at ${record.partition}/${record.offset}`)
        continue
      }
      const index = Number(indexHeader[1].toString())
      this.expect(!seen.has(index), `record ${index} read twice`)
      seen.set(index, [record.partition, record.offset])
      this.expect(record.key !== null && key(index).equals(record.key), `record ${index}: key ${record.key}`)
      this.expect(record.value !== null && value(index, this.client).equals(record.value),
        `record ${index}: value differs (${record.value ? record.value.length : null} bytes)`)
      const expected = headers(index, this.client)
      this.expect(record.headers.length === expected.length &&
        record.headers.every(([name, header], at) => name === expected[at][0] && header !== null && expected[at][1].equals(header)),
      `record ${index}: headers ${JSON.stringify(record.headers.map(([n, v]) => [n, v && v.toString('hex')]))}`)
      this.expect((lastIndex.get(record.partition) ?? -1) < index,
        `partition ${record.partition}: record ${index} after ${lastIndex.get(record.partition)}`)
      this.expect((lastOffset.get(record.partition) ?? -1) < record.offset,
        `partition ${record.partition}: offset ${record.offset} after ${lastOffset.get(record.partition)}`)
      lastIndex.set(record.partition, index)
      lastOffset.set(record.partition, record.offset)
    }
    const missing = []
    for (let index = 0; index < RECORDS; index++) if (!seen.has(index)) missing.push(index)
    this.expect(missing.length === 0, `${missing.length} records not read, first ${missing.slice(0, 5)}`)
    this.expect(records.length === RECORDS, `${records.length} records read, ${RECORDS} produced`)
    if (delivered) {
      const moved = [...delivered].filter(([index, place]) =>
        seen.has(index) && (seen.get(index)[0] !== place[0] || seen.get(index)[1] !== place[1]))
      this.expect(moved.length === 0, `${moved.length} records not where they were acknowledged, first ` +
        moved.slice(0, 3).map(([index, place]) => `${index}: ${place} vs ${seen.get(index)}`).join(', '))
    }
  }

  finish () {
    if (this.failures.length > 0) {
      console.log(`${this.client}: ${this.failures.length} failures`)
      process.exit(1)
    }
    this.step('ok')
  }
}

module.exports = { RECORDS, key, value, headers, Check }
