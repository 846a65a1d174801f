'use strict'
// KafkaJS against a secured Kafka listener: TLS (Node's tls module), mutual
// TLS, SASL PLAIN, SCRAM-SHA-512 over TLS and OAUTHBEARER with JSON Web
// Tokens signed here (Node's crypto, RS256).
//
// usage: node kafkajs_secured.js keygen DIR
//          writes DIR/rs256.pem (a private key) and DIR/jwks.json (its
//          public half, kid rs-1), for the broker to check tokens against
//        node kafkajs_secured.js SECURITY BOOTSTRAP DIR TOPIC
//
// DIR holds ca.pem (the broker certificate's authority), other-ca.pem
// (another), client.pem and client.key (a client certificate of ca.pem),
// other-client.pem and other-client.key (one of other-ca.pem) and, for
// oauthbearer, rs256.pem. The broker's users include alice:alice-secret.
//
// For each SECURITY it makes a round trip with good settings (create the
// topic TOPIC-1, produce RECORDS records to its partition 0, read them back
// in a consumer group and compare them one by one), checks that a client
// with bad settings is refused with the error that names the reason (a TLS
// error's code, or the broker's SASL_AUTHENTICATION_FAILED and its text),
// and makes a second round trip (TOPIC-2), so that the broker is seen
// serving after the refusal. The records: key `key-INDEX`, value
// `TOPIC-N INDEX`.
//
// - ssl: trusting ca.pem; refused: trusting other-ca.pem (the client does
//   not verify the broker's certificate);
// - mutual-tls: presenting client.pem; refused: presenting nothing (the
//   broker's alert "certificate required"), and presenting
//   other-client.pem (its alert "unknown ca");
// - sasl-plain: SASL_PLAINTEXT, PLAIN as alice; refused: a wrong password;
// - sasl-ssl-scram: SASL_SSL trusting ca.pem, SCRAM-SHA-512 as alice;
//   refused: a wrong password;
// - oauthbearer: SASL_PLAINTEXT, a token for alice (issuer
//   https://idp.test, audience sluice) that lasts 10 minutes; refused: a
//   token that expired 2 minutes ago.

const crypto = require('crypto')
const fs = require('fs')
const path = require('path')
const { Kafka, Partitioners, logLevel } = require('kafkajs')

const RECORDS = 200
const ISSUER = 'https://idp.test'
const AUDIENCE = 'sluice'
const KEY_ID = 'rs-1'
// Bounds reading the records back (the group's first rebalance included).
const CONSUME_MS = 60000
const STARTED = process.hrtime.bigint()

function say (text) {
  const seconds = Number(process.hrtime.bigint() - STARTED) / 1e9
  console.log(`[kafkajs ${seconds.toFixed(2).padStart(6)}s] ${text}`)
}

function keygen (dir) {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 })
  fs.writeFileSync(path.join(dir, 'rs256.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }))
  const jwk = publicKey.export({ format: 'jwk' })
  const keys = [{ kty: 'RSA', kid: KEY_ID, use: 'sig', alg: 'RS256', n: jwk.n, e: jwk.e }]
  fs.writeFileSync(path.join(dir, 'jwks.json'), JSON.stringify({ keys }))
}

// A JWT for alice, signed with `key` (RS256), that expires `lifetimeS`
// from now (in the past if negative).
function token (key, lifetimeS) {
  const now = Math.floor(Date.now() / 1000)
  const part = object => Buffer.from(JSON.stringify(object)).toString('base64url')
  const signed = `${part({ alg: 'RS256', kid: KEY_ID, typ: 'JWT' })}.` +
    part({ sub: 'alice', iss: ISSUER, aud: AUDIENCE, iat: now, exp: now + lifetimeS })
  const signature = crypto.sign('sha256', Buffer.from(signed), key).toString('base64url')
  return `${signed}.${signature}`
}

// The client settings of `security`: the good ones, and the refused ones
// with the error each must fail with.
function settings (security, dir) {
  const read = name => fs.readFileSync(path.join(dir, name), 'utf-8')
  const trusting = ca => ({ ca: [read(ca)] })
  const presenting = (ca, name) => ({ ...trusting(ca), cert: read(`${name}.pem`), key: read(`${name}.key`) })
  const plain = password => ({ mechanism: 'plain', username: 'alice', password })
  const scram = password => ({ mechanism: 'scram-sha-512', username: 'alice', password })
  // Node's code for a certificate that chains to no authority trusted.
  const untrusted = connectionError('UNABLE_TO_VERIFY_LEAF_SIGNATURE')
  switch (security) {
    case 'ssl':
      return {
        good: { ssl: trusting('ca.pem') },
        refused: [['trusting another CA', { ssl: trusting('other-ca.pem') }, untrusted]]
      }
    case 'mutual-tls':
      return {
        good: { ssl: presenting('ca.pem', 'client') },
        refused: [
          ['without a client certificate', { ssl: trusting('ca.pem') },
            connectionError('ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED')],
          ['with a client certificate of another CA', { ssl: presenting('ca.pem', 'other-client') },
            connectionError('ERR_SSL_TLSV1_ALERT_UNKNOWN_CA')]
        ]
      }
    case 'sasl-plain':
      return {
        good: { sasl: plain('alice-secret') },
        refused: [['a wrong password', { sasl: plain('wrong') }, saslError('Invalid username or password')]]
      }
    case 'sasl-ssl-scram':
      return {
        good: { ssl: trusting('ca.pem'), sasl: scram('alice-secret') },
        refused: [['a wrong password', { ssl: trusting('ca.pem'), sasl: scram('wrong') },
          saslError('invalid credentials')]]
      }
    case 'oauthbearer': {
      const key = crypto.createPrivateKey(read('rs256.pem'))
      const oauth = lifetimeS => ({
        mechanism: 'oauthbearer',
        oauthBearerProvider: async () => ({ value: token(key, lifetimeS) })
      })
      return {
        good: { sasl: oauth(600) },
        refused: [['an expired token', { sasl: oauth(-120) }, saslError('the token has expired')]]
      }
    }
    default:
      throw new Error(`unknown security ${security}`)
  }
}

// The errors of a refusal, outermost first (KafkaJS wraps the one that
// stopped it in those of its retries).
function chain (error) {
  const errors = []
  for (let at = error; at && errors.length < 10; at = at.cause) errors.push(at)
  return errors
}

function describe (error) {
  return chain(error).map(at => `${at.name}${at.code ? ` [${at.code}]` : ''}: ${at.message}`).join(' <- ')
}

// A refusal by TLS: the connection's error, with Node's `code`.
function connectionError (code) {
  return {
    text: `KafkaJSConnectionError [${code}]`,
    matches: error => chain(error).some(at => at.name === 'KafkaJSConnectionError' && at.code === code)
  }
}

// A refusal by SASL: KafkaJS's authentication error, carrying the text
// of the broker's SASL_AUTHENTICATION_FAILED, which gives `reason`.
function saslError (reason) {
  return {
    text: `KafkaJSSASLAuthenticationError (${reason})`,
    matches: error => chain(error).some(at =>
      at.name === 'KafkaJSSASLAuthenticationError' && at.message.includes(reason))
  }
}

function kafka (bootstrap, clientSettings, retries) {
  return new Kafka({
    clientId: 'kafkajs-secured',
    brokers: [bootstrap],
    ...clientSettings,
    connectionTimeout: 10000,
    logLevel: logLevel.NOTHING,
    retry: { retries }
  })
}

async function roundTrip (bootstrap, clientSettings, topic, label) {
  const client = kafka(bootstrap, clientSettings, 5)
  const admin = client.admin()
  await admin.connect()
  const created = await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true })
  await admin.disconnect()
  if (created !== true) throw new Error(`${topic}: createTopics answered ${created}`)

  const producer = client.producer({ createPartitioner: Partitioners.DefaultPartitioner })
  await producer.connect()
  const sent = []
  for (let index = 0; index < RECORDS; index++) {
    sent.push({ partition: 0, key: Buffer.from(`key-${index}`), value: Buffer.from(`${topic} ${index}`) })
  }
  for (let first = 0; first < RECORDS; first += 50) {
    const answers = await producer.send({ topic, acks: -1, messages: sent.slice(first, first + 50) })
    for (const answer of answers) {
      if (answer.errorCode !== 0) throw new Error(`${topic}: produce answered ${JSON.stringify(answer)}`)
    }
  }
  await producer.disconnect()

  const consumer = client.consumer({ groupId: `${topic}-readers` })
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  const read = []
  let done
  const finished = new Promise(resolve => { done = resolve })
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      read.push({ partition, offset: Number(message.offset), key: message.key, value: message.value })
      if (read.length >= RECORDS) done()
    }
  })
  const timeout = setTimeout(done, CONSUME_MS)
  await finished
  clearTimeout(timeout)
  await consumer.disconnect()

  const wrong = []
  for (let index = 0; index < Math.max(RECORDS, read.length); index++) {
    const record = read[index]
    const expected = sent[index]
    if (!record || !expected || record.partition !== 0 || record.offset !== index ||
        !expected.key.equals(record.key) || !expected.value.equals(record.value)) {
      wrong.push(`${index}: ${record ? `${record.partition}/${record.offset} ${record.key} ${record.value}` : 'not read'}`)
    }
  }
  if (wrong.length > 0) {
    throw new Error(`${topic}: ${read.length} of ${RECORDS} records read; ${wrong.length} wrong, first ${wrong.slice(0, 3)}`)
  }
  say(`${RECORDS} records produced and read back, ${label}`)
}

// Fails unless a client of `clientSettings` is refused metadata with
// `expected` (no retries: the first refusal is the answer).
async function refused (bootstrap, clientSettings, label, expected) {
  const admin = kafka(bootstrap, clientSettings, 0).admin()
  let failure = null
  try {
    await admin.connect()
    await admin.listTopics()
  } catch (error) {
    failure = error
  }
  await admin.disconnect().catch(() => {})
  if (failure === null) throw new Error(`${label}: got metadata`)
  if (!expected.matches(failure)) {
    throw new Error(`${label}: refused, but not with ${expected.text}: ${describe(failure)}`)
  }
  say(`${label}: refused (${describe(failure)})`)
}

async function main () {
  if (process.argv[2] === 'keygen') {
    keygen(process.argv[3])
    return
  }
  const [security, bootstrap, dir, topic] = process.argv.slice(2)
  const { good, refused: bad } = settings(security, dir)
  await roundTrip(bootstrap, good, `${topic}-1`, security)
  for (const [label, clientSettings, expected] of bad) {
    await refused(bootstrap, clientSettings, `${security}, ${label}`, expected)
  }
  await roundTrip(bootstrap, good, `${topic}-2`, `${security}, after the refusals`)
}

main().catch(error => {
  console.log(`kafkajs: ${error.stack || error}`)
  process.exit(1)
})
