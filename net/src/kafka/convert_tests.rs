use bytes::{Bytes, BytesMut};
use kafka_protocol::{
    indexmap::IndexMap,
    protocol::StrBytes,
    records::{
        Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
        TimestampType,
    },
};
use sluice_storage::{batch::PayloadFormat, Offset};

use super::*;

const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

/// Records of varied shapes, as a Kafka producer would batch them: dense
/// offsets from 0, one idempotent producer, timestamps out of order.
fn kafka_records(count: usize) -> Vec<Record> {
    (0..count)
        .map(|i| {
            let mut headers = IndexMap::new();
            if i % 3 == 0 {
                headers.insert(
                    StrBytes::from_static_str("trace"),
                    Some(Bytes::from(format!("t-{i}"))),
                );
                headers.insert(StrBytes::from_static_str("null"), None);
            }
            Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: 4_242,
                producer_epoch: 2,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                sequence: 100 + i as i32,
                timestamp: 1_700_000_000_000 + ((i * 7) % 5) as i64,
                key: (i % 4 != 0).then(|| Bytes::from(format!("key-{i}"))),
                value: Some(Bytes::from(vec![i as u8; (i * 13) % 300])),
                headers,
            }
        })
        .collect()
}

fn encode(records: &[Record], compression: Compression) -> BytesMut {
    let mut out = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut out,
        records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .expect("encodes");
    out
}

fn assert_same_records(kafka: &[Record], native: &Batch) {
    let header = native.header();
    let records = native.records().expect("a native batch");
    assert_eq!(records.len(), kafka.len());
    for (index, (kafka, native)) in kafka.iter().zip(records.iter()).enumerate() {
        assert_eq!(
            header.first_timestamp + native.timestamp_delta(),
            kafka.timestamp,
            "record {index}: timestamp"
        );
        assert_eq!(native.key(), kafka.key.as_deref(), "record {index}: key");
        assert_eq!(
            native.value(),
            kafka.value.as_deref().unwrap_or_default(),
            "record {index}: value"
        );
        let native_headers: Vec<(&[u8], Option<&[u8]>)> = native
            .headers()
            .map(|header| (header.name, header.value))
            .collect();
        let kafka_headers: Vec<(&[u8], Option<&[u8]>)> = kafka
            .headers
            .iter()
            .map(|(name, value)| (name.as_bytes(), value.as_deref()))
            .collect();
        assert_eq!(native_headers, kafka_headers, "record {index}: headers");
    }
}

#[test]
fn kafka_batches_of_every_codec_convert_to_the_same_records() {
    let records = kafka_records(40);
    for compression in CODECS {
        let kafka = encode(&records, compression);
        let stored = Batch::from_kafka(&kafka)
            .unwrap_or_else(|error| panic!("{compression:?}: {error}"))
            .assign(Offset(5_000), 6);
        assert_eq!(stored.header().flags, compression as u16);

        let native =
            kafka_to_native(&stored).unwrap_or_else(|error| panic!("{compression:?}: {error}"));
        let header = native.header();
        assert_eq!(header.payload_format, PayloadFormat::Native);
        assert_eq!(native.base_offset(), Offset(5_000));
        assert_eq!(native.last_offset(), Offset(5_039));
        assert_eq!(header.leader_epoch, 6);
        assert_eq!(header.max_timestamp, stored.max_timestamp());
        assert_eq!(
            (
                header.producer_id,
                header.producer_epoch,
                header.base_sequence
            ),
            (4_242, 2, 100)
        );
        assert_same_records(&records, &native);
        Batch::validate(native.into_bytes()).expect("the converted batch validates");
    }
}

#[test]
fn native_batches_written_as_kafka_decode_to_the_same_records() {
    let mut builder = BatchBuilder::default().producer(9, 1, 50);
    let mut pushed = Vec::new();
    for i in 0..60_usize {
        let key = format!("k{i}");
        let value = vec![(i * 3) as u8; (i * 17) % 500];
        let trace = format!("{i}");
        let headers: Vec<(&[u8], Option<&[u8]>)> = match i % 3 {
            0 => vec![],
            1 => vec![(b"trace", Some(trace.as_bytes()))],
            _ => vec![(b"a", Some(b"")), (b"b", None)],
        };
        let timestamp = 1_000_000 - (i as i64 % 4) * 10;
        let key = (i % 5 != 0).then_some(key.as_bytes());
        builder.push(timestamp, key, &value, &headers);
        pushed.push((timestamp, key.map(<[u8]>::to_vec), value.clone()));
    }
    let native = builder.finish().assign(Offset(77), 12);
    let mut out = BytesMut::new();
    native.write_kafka(&mut out).unwrap();
    let kafka_bytes = out.freeze();
    let mut kafka = kafka_bytes.clone();

    let record_set = RecordBatchDecoder::decode(&mut kafka).expect("decodes");
    assert!(kafka.is_empty(), "one batch, nothing after it");
    assert_eq!(record_set.version, 2);
    assert_eq!(record_set.compression, Compression::None);
    assert_eq!(record_set.records.len(), 60);
    for (index, record) in record_set.records.iter().enumerate() {
        assert_eq!(record.offset, 77 + index as i64);
        assert_eq!(record.partition_leader_epoch, 12);
        assert_eq!((record.producer_id, record.producer_epoch), (9, 1));
        assert_eq!(record.sequence, 50 + index as i32);
        assert!(!record.transactional && !record.control);
        assert_eq!(record.timestamp_type, TimestampType::Creation);
        let (timestamp, key, value) = &pushed[index];
        assert_eq!(record.timestamp, *timestamp, "record {index}");
        assert_eq!(record.key.as_deref(), key.as_deref(), "record {index}");
        assert_eq!(record.value.as_deref(), Some(&value[..]), "record {index}");
    }
    assert_same_records(&record_set.records, &native);

    // And back: the Kafka batch converts to the records pushed.
    let stored = Batch::from_kafka(&kafka_bytes).unwrap();
    let back = kafka_to_native(&stored).expect("converts back");
    assert_same_records(&record_set.records, &back);
}

#[test]
fn a_tombstone_becomes_an_empty_value() {
    let mut records = kafka_records(2);
    records[1].value = None;
    let stored = Batch::from_kafka(&encode(&records, Compression::None)).unwrap();
    let native = kafka_to_native(&stored).unwrap();
    let converted = native.records().unwrap();
    assert_eq!(converted.get(1).unwrap().value(), b"");
}

#[test]
fn log_append_time_gives_every_record_the_max_timestamp() {
    let records = kafka_records(5);
    let mut kafka = encode(&records, Compression::Lz4).to_vec();
    kafka[22] |= 0b1000;
    reseal(&mut kafka);
    let stored = Batch::from_kafka(&kafka).unwrap();
    let native = kafka_to_native(&stored).unwrap();
    let header = native.header();
    for record in native.records().unwrap().iter() {
        assert_eq!(
            header.first_timestamp + record.timestamp_delta(),
            stored.max_timestamp()
        );
    }
}

/// The Kafka CRC: CRC-32C (Castagnoli), a byte at a time.
fn crc32c(bytes: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        std::array::from_fn(|byte| {
            (0..8).fold(byte as u32, |crc, _| {
                if crc & 1 == 1 {
                    (crc >> 1) ^ 0x82f6_3b78
                } else {
                    crc >> 1
                }
            })
        })
    });
    !bytes.iter().fold(!0_u32, |crc, byte| {
        table[((crc ^ u32::from(*byte)) & 0xff) as usize] ^ (crc >> 8)
    })
}

/// `kafka` with its Kafka CRC made right again after an edit.
fn reseal(kafka: &mut [u8]) {
    let crc = crc32c(&kafka[21..]);
    kafka[17..21].copy_from_slice(&crc.to_be_bytes());
}

#[test]
fn records_that_do_not_decompress_are_refused() {
    let mut kafka = encode(&kafka_records(20), Compression::Gzip).to_vec();
    let middle = 61 + (kafka.len() - 61) / 2;
    for byte in &mut kafka[middle..middle + 8] {
        *byte ^= 0x5a;
    }
    reseal(&mut kafka);
    // Produce does not decompress: the batch is accepted as it is.
    let stored = Batch::from_kafka(&kafka).expect("a whole kafka batch");
    assert!(matches!(
        kafka_to_native(&stored).unwrap_err(),
        ConvertError::Decode { .. }
    ));
}

#[test]
fn records_whose_offsets_are_not_dense_are_refused() {
    let mut records = kafka_records(2);
    // Offsets 1 then 0: the batch's header is dense (base 0, last
    // delta 1) but its records are not in order.
    records[0].offset = 1;
    records[0].sequence = 1;
    records[1].offset = 0;
    records[1].sequence = 0;
    let stored = Batch::from_kafka(&encode(&records, Compression::None)).unwrap();
    assert_eq!(
        kafka_to_native(&stored).unwrap_err(),
        ConvertError::OffsetGap {
            index: 0,
            offset_delta: 1
        }
    );
}

#[test]
fn records_over_the_decompression_cap_are_refused() {
    // 17 MiB of zeros compresses to a small kafka batch.
    let records: Vec<Record> = kafka_records(17)
        .into_iter()
        .map(|mut record| {
            record.value = Some(Bytes::from(vec![0_u8; 1 << 20]));
            record
        })
        .collect();
    let kafka = encode(&records, Compression::Zstd);
    assert!(kafka.len() < 1 << 20);
    let stored = Batch::from_kafka(&kafka).unwrap();
    assert_eq!(
        kafka_to_native(&stored).unwrap_err(),
        ConvertError::DecompressedTooLarge {
            codec: "zstd",
            max: RECORDS_BYTES_MAX
        }
    );
}

#[test]
fn a_native_batch_is_not_converted() {
    let mut builder = BatchBuilder::default();
    builder.push(0, None, b"v", &[]);
    assert_eq!(
        kafka_to_native(&builder.finish()).unwrap_err(),
        ConvertError::NotKafka
    );
}

// Kafka batches made by hand: what kafka-protocol's encoder cannot make
// (repeated header names, raw snappy, forged fields, bombs).

type Headers<'a> = &'a [(&'a [u8], Option<&'a [u8]>)];

fn put_varlong(out: &mut Vec<u8>, value: i64) {
    let mut raw = ((value << 1) ^ (value >> 63)) as u64;
    while raw >= 0x80 {
        out.push(raw as u8 | 0x80);
        raw >>= 7;
    }
    out.push(raw as u8);
}

fn put_bytes(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        None => put_varlong(out, -1),
        Some(bytes) => {
            put_varlong(out, bytes.len() as i64);
            out.extend_from_slice(bytes);
        }
    }
}

/// Appends one Kafka record, its fields as given.
fn put_record(
    out: &mut Vec<u8>,
    offset_delta: i64,
    timestamp_delta: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: Headers,
) {
    let mut body = vec![0_u8];
    put_varlong(&mut body, timestamp_delta);
    put_varlong(&mut body, offset_delta);
    put_bytes(&mut body, key);
    put_bytes(&mut body, value);
    put_varlong(&mut body, headers.len() as i64);
    for (name, value) in headers {
        put_bytes(&mut body, Some(name));
        put_bytes(&mut body, *value);
    }
    put_varlong(out, body.len() as i64);
    out.extend_from_slice(&body);
}

const BASE_TIMESTAMP: i64 = 1_700_000_000_000;

/// A Kafka RecordBatch v2 of `record_count` records whose (already
/// compressed) records section is `section`, sealed.
fn kafka_batch(codec: u16, section: &[u8], record_count: i32) -> Vec<u8> {
    let mut kafka = Vec::with_capacity(KAFKA_BATCH_HEADER_BYTES + section.len());
    kafka.extend_from_slice(&0_i64.to_be_bytes());
    kafka.extend_from_slice(&((49 + section.len()) as i32).to_be_bytes());
    kafka.extend_from_slice(&(-1_i32).to_be_bytes());
    kafka.push(2);
    kafka.extend_from_slice(&[0; 4]);
    kafka.extend_from_slice(&(codec as i16).to_be_bytes());
    kafka.extend_from_slice(&(record_count - 1).to_be_bytes());
    kafka.extend_from_slice(&BASE_TIMESTAMP.to_be_bytes());
    kafka.extend_from_slice(&(BASE_TIMESTAMP + 1_000).to_be_bytes());
    kafka.extend_from_slice(&4_242_i64.to_be_bytes());
    kafka.extend_from_slice(&2_i16.to_be_bytes());
    kafka.extend_from_slice(&100_i32.to_be_bytes());
    kafka.extend_from_slice(&record_count.to_be_bytes());
    assert_eq!(kafka.len(), KAFKA_BATCH_HEADER_BYTES);
    kafka.extend_from_slice(section);
    reseal(&mut kafka);
    kafka
}

/// The xerial framing the Java client writes: its header, then blocks
/// of at most 32 KiB, each a length and a raw snappy block.
fn xerial_snappy(bytes: &[u8]) -> Vec<u8> {
    let mut out = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01".to_vec();
    for chunk in bytes.chunks(32 * 1024) {
        let block = snap::raw::Encoder::new().compress_vec(chunk).unwrap();
        out.extend_from_slice(&(block.len() as u32).to_be_bytes());
        out.extend_from_slice(&block);
    }
    out
}

/// `bytes` compressed with codec `codec` as a Kafka producer would;
/// snappy is xerial-framed (codec 2) or raw (`RAW_SNAPPY`).
fn compress(codec: u16, bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    match codec {
        0 => bytes.to_vec(),
        1 => {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(bytes).unwrap();
            encoder.finish().unwrap()
        }
        2 => xerial_snappy(bytes),
        RAW_SNAPPY => snap::raw::Encoder::new().compress_vec(bytes).unwrap(),
        3 => {
            let mut encoder = lz4::EncoderBuilder::new().build(Vec::new()).unwrap();
            encoder.write_all(bytes).unwrap();
            let (out, result) = encoder.finish();
            result.unwrap();
            out
        }
        4 => zstd::encode_all(bytes, 3).unwrap(),
        _ => unreachable!("codec {codec}"),
    }
}

/// Not a Kafka codec: snappy without the xerial framing, as librdkafka
/// may send it (attributes say 2).
const RAW_SNAPPY: u16 = 100;
const HAND_CODECS: [u16; 6] = [0, 1, 2, RAW_SNAPPY, 3, 4];

fn stored(codec: u16, section: &[u8], record_count: i32) -> Batch {
    let attributes_codec = if codec == RAW_SNAPPY { 2 } else { codec };
    let kafka = kafka_batch(attributes_codec, &compress(codec, section), record_count);
    Batch::from_kafka(&kafka)
        .unwrap_or_else(|error| panic!("codec {codec}: {error}"))
        .assign(Offset(1_000), 3)
}

fn native_headers(
    record: sluice_storage::batch::RecordView<'_>,
) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    record
        .headers()
        .map(|header| (header.name.to_vec(), header.value.map(<[u8]>::to_vec)))
        .collect()
}

#[test]
fn repeated_header_names_survive_in_order_with_every_codec() {
    let binary: &[u8] = &[0, 0xff, 0xfe, b'\n'];
    let repeated: Headers = &[
        (b"codec", Some(b"none")),
        (b"null", None),
        (b"bin", Some(binary)),
        (b"codec", Some(b"repeated")),
        (b"\xff not utf-8", Some(b"")),
    ];
    let mut section = Vec::new();
    put_record(&mut section, 0, 0, Some(b"k0"), Some(b"v0"), repeated);
    put_record(&mut section, 1, 7, None, None, &[]);
    put_record(&mut section, 2, -3, Some(b""), Some(b"v2"), &repeated[..2]);
    for codec in HAND_CODECS {
        let native = kafka_to_native(&stored(codec, &section, 3))
            .unwrap_or_else(|error| panic!("codec {codec}: {error}"));
        assert_eq!(native.base_offset(), Offset(1_000));
        assert_eq!(native.header().leader_epoch, 3);
        let records = native.records().unwrap();
        assert_eq!(records.len(), 3);
        let want: Vec<(Vec<u8>, Option<Vec<u8>>)> = repeated
            .iter()
            .map(|(name, value)| (name.to_vec(), value.map(<[u8]>::to_vec)))
            .collect();
        let first = records.get(0).unwrap();
        assert_eq!(native_headers(first), want, "codec {codec}");
        assert_eq!(native_headers(records.get(1).unwrap()), vec![]);
        assert_eq!(native_headers(records.get(2).unwrap()), want[..2].to_vec());
        let timestamps: Vec<i64> = records
            .iter()
            .map(|record| native.header().first_timestamp + record.timestamp_delta())
            .collect();
        assert_eq!(
            timestamps,
            [BASE_TIMESTAMP, BASE_TIMESTAMP + 7, BASE_TIMESTAMP - 3]
        );
        assert_eq!(
            records
                .iter()
                .map(|record| record.key())
                .collect::<Vec<_>>(),
            [Some(&b"k0"[..]), None, Some(&b""[..])]
        );
        assert_eq!(
            records
                .iter()
                .map(|record| record.value())
                .collect::<Vec<_>>(),
            [&b"v0"[..], b"", b"v2"]
        );
    }
}

#[test]
fn raw_and_xerial_snappy_convert_alike() {
    let records = kafka_records(50);
    let kafka = encode(&records, Compression::None);
    let section = &kafka[KAFKA_BATCH_HEADER_BYTES..];
    let xerial = kafka_to_native(&stored(2, section, 50)).unwrap();
    let raw = kafka_to_native(&stored(RAW_SNAPPY, section, 50)).unwrap();
    assert_same_records(&records, &xerial);
    assert_same_records(&records, &raw);
    // Concatenated xerial streams (each with its header) read as one.
    let half = section.len() / 2;
    let mut twice = xerial_snappy(&section[..half]);
    twice.extend_from_slice(&xerial_snappy(&section[half..]));
    let concatenated = Batch::from_kafka(&kafka_batch(2, &twice, 50)).unwrap();
    assert_same_records(&records, &kafka_to_native(&concatenated).unwrap());
}

/// Counts the bytes the global allocator hands this thread, to check
/// that a bomb is refused without a large allocation. (The zstd and lz4
/// decoders are C and allocate with malloc: bounded by the window and
/// block limits instead, not seen here.)
mod allocations {
    use std::{
        alloc::{GlobalAlloc, Layout, System},
        cell::Cell,
    };

    struct Counting;

    thread_local! {
        static LIVE: Cell<usize> = const { Cell::new(0) };
        static PEAK: Cell<usize> = const { Cell::new(0) };
    }

    fn grew(bytes: usize) {
        let _ = LIVE.try_with(|live| {
            live.set(live.get() + bytes);
            let _ = PEAK.try_with(|peak| peak.set(peak.get().max(live.get())));
        });
    }

    fn shrank(bytes: usize) {
        let _ = LIVE.try_with(|live| live.set(live.get().saturating_sub(bytes)));
    }

    // SAFETY: every call is passed to `System` as it is; the counters
    // are const-initialised thread locals without destructors, which
    // neither allocate nor recurse.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            grew(layout.size());
            System.alloc(layout)
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            grew(layout.size());
            System.alloc_zeroed(layout)
        }

        unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
            shrank(layout.size());
            System.dealloc(pointer, layout)
        }

        unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, size: usize) -> *mut u8 {
            // Old and new both live during the move.
            grew(size);
            shrank(layout.size());
            System.realloc(pointer, layout, size)
        }
    }

    #[global_allocator]
    static COUNTING: Counting = Counting;

    /// Runs `f`, and the most bytes this thread held at once during it
    /// beyond what it held before.
    pub fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
        let before = LIVE.with(Cell::get);
        PEAK.with(|peak| peak.set(before));
        let result = f();
        (result, PEAK.with(Cell::get) - before)
    }
}

/// A zstd frame of `blocks` RLE blocks of 128 KiB zeros each, made
/// directly: 4 bytes a block, no compressor run over the output.
fn zstd_zeros(blocks: usize) -> Vec<u8> {
    const BLOCK_BYTES: u32 = 128 * 1024;
    // Magic; a descriptor without content size, checksum or
    // dictionary; a 1 MiB window (exponent 10).
    let mut frame = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, 10 << 3];
    for block in 0..blocks {
        let last = u32::from(block + 1 == blocks);
        let header = (BLOCK_BYTES << 3) | (1 << 1) | last;
        frame.extend_from_slice(&header.to_le_bytes()[..3]);
        frame.push(0);
    }
    frame
}

/// A gzip stream of `members` concatenated members of 1 MiB of zeros
/// each (about 1 KiB compressed), as a gzip reader reads it: one stream.
fn gzip_zeros(members: usize) -> Vec<u8> {
    let member = compress(1, &vec![0_u8; 1 << 20]);
    member.repeat(members)
}

/// `bytes` zeros as an lz4 frame, compressed a chunk at a time.
fn lz4_zeros(bytes: usize) -> Vec<u8> {
    use std::io::Write;
    let chunk = vec![0_u8; 1 << 20];
    let mut encoder = lz4::EncoderBuilder::new().build(Vec::new()).unwrap();
    for _ in 0..bytes / chunk.len() {
        encoder.write_all(&chunk).unwrap();
    }
    let (out, result) = encoder.finish();
    result.unwrap();
    out
}

#[test]
fn the_bomb_builders_make_what_they_say() {
    use std::io::Read;
    let zstd = zstd::decode_all(&zstd_zeros(3)[..]).unwrap();
    assert_eq!(zstd, vec![0; 3 * 128 * 1024]);
    let mut gzip = Vec::new();
    flate2::read::MultiGzDecoder::new(&gzip_zeros(2)[..])
        .read_to_end(&mut gzip)
        .unwrap();
    assert_eq!(gzip, vec![0; 2 << 20]);
    let mut lz4 = Vec::new();
    lz4::Decoder::new(&lz4_zeros(2 << 20)[..])
        .unwrap()
        .read_to_end(&mut lz4)
        .unwrap();
    assert_eq!(lz4, vec![0; 2 << 20]);
}

#[test]
fn decompression_bombs_are_refused_without_a_large_allocation() {
    const GIB: usize = 1 << 30;
    // A raw snappy block that declares 1 GiB and holds nothing.
    let mut snappy_raw = vec![0x80, 0x80, 0x80, 0x80, 0x04];
    snappy_raw.extend_from_slice(&[0; 16]);
    // Xerial blocks of 32 KiB zeros, 20 MiB of them.
    let snappy_xerial = xerial_snappy(&vec![0; 20 << 20]);
    let bombs: [(&str, u16, Vec<u8>, usize); 5] = [
        ("gzip", 1, gzip_zeros(1024), GIB),
        ("zstd", 4, zstd_zeros(GIB / (128 * 1024)), GIB),
        ("snappy", 2, snappy_raw, GIB),
        ("snappy", 2, snappy_xerial, 20 << 20),
        ("lz4", 3, lz4_zeros(64 << 20), 64 << 20),
    ];
    for (codec_name, codec, compressed, bytes) in bombs {
        assert!(
            compressed.len() * 8 < bytes,
            "{codec_name}: {} bytes for {bytes}",
            compressed.len()
        );
        let stored = Batch::from_kafka(&kafka_batch(codec, &compressed, 1)).unwrap();
        let started = std::time::Instant::now();
        let (result, peak_bytes) = allocations::peak_during(|| kafka_to_native(&stored));
        assert_eq!(
            result.unwrap_err(),
            ConvertError::DecompressedTooLarge {
                codec: codec_name,
                max: RECORDS_BYTES_MAX
            }
        );
        // The output buffer, at most the cap, and the decoders' state.
        // Its last regrow (from half the cap to the cap) holds both
        // while the bytes move, if the allocator cannot grow in place.
        assert!(
            peak_bytes <= RECORDS_BYTES_MAX + RECORDS_BYTES_MAX / 2 + (1 << 20),
            "{codec_name}: {peak_bytes} bytes allocated to refuse a bomb of {bytes}"
        );
        eprintln!(
            "{codec_name} bomb of {bytes} bytes in {}: refused in {:?}, {peak_bytes} bytes at most",
            compressed.len(),
            started.elapsed()
        );
    }
}

#[test]
fn records_over_the_native_cap_are_refused() {
    // Empty records: about 5 bytes each in Kafka, tens once native.
    let count = 600_000;
    let mut section = Vec::new();
    for index in 0..count {
        put_record(&mut section, index, 0, None, Some(b""), &[]);
    }
    assert!(section.len() < RECORDS_BYTES_MAX / 2);
    let stored = Batch::from_kafka(&kafka_batch(0, &section, count as i32)).unwrap();
    assert_eq!(
        kafka_to_native(&stored).unwrap_err(),
        ConvertError::TooLarge {
            max: BATCH_BYTES_MAX
        }
    );
}

#[test]
fn records_not_as_many_as_the_header_says_are_refused() {
    let mut section = Vec::new();
    put_record(&mut section, 0, 0, None, Some(b"one"), &[]);
    put_record(&mut section, 1, 0, None, Some(b"two"), &[]);
    // Uncompressed, the header check refuses 3 records in 20 bytes; a
    // record's worth of zeros gets past it, and reads as a record of
    // length 0, cut short at once.
    let mut padded = section.clone();
    padded.extend_from_slice(&[0; 10]);
    let short = Batch::from_kafka(&kafka_batch(0, &padded, 4)).unwrap();
    assert_eq!(
        kafka_to_native(&short).unwrap_err(),
        ConvertError::RecordTruncated {
            index: 2,
            field: "attributes"
        }
    );
    for codec in HAND_CODECS {
        if codec != 0 {
            assert_eq!(
                kafka_to_native(&stored(codec, &section, 3)).unwrap_err(),
                ConvertError::RecordCountMismatch {
                    decoded: 2,
                    declared: 3
                },
                "codec {codec}"
            );
        }
        assert_eq!(
            kafka_to_native(&stored(codec, &section, 1)).unwrap_err(),
            ConvertError::TrailingBytes {
                bytes: section.len() / 2,
                record_count: 1
            },
            "codec {codec}"
        );
    }
}

#[test]
fn forged_fields_are_refused_with_errors() {
    let headers: Headers = &[(b"h", Some(b"v"))];
    let mut good = Vec::new();
    put_record(&mut good, 0, 5, Some(b"key"), Some(b"value"), headers);
    // Offsets of fields in the one record: length, attributes,
    // timestamp delta, offset delta, key length.
    let body = |bytes: &[u8]| {
        let mut record = Vec::new();
        put_varlong(&mut record, bytes.len() as i64);
        record.extend_from_slice(bytes);
        record
    };
    let mut body_bytes = good[1..].to_vec();
    let cases: Vec<(Vec<u8>, ConvertError)> = vec![
        (
            vec![0xff; 7],
            ConvertError::VarintTooLong {
                index: 0,
                field: "length",
            },
        ),
        (
            // Length i32::MAX.
            vec![0xfe, 0xff, 0xff, 0xff, 0x0f, 0, 0],
            ConvertError::BadLength {
                index: 0,
                field: "length",
                length: i32::MAX.into(),
                remaining: 2,
            },
        ),
        (
            // Length -2.
            vec![0x03, 0, 0, 0, 0, 0, 0],
            ConvertError::BadLength {
                index: 0,
                field: "length",
                length: -2,
                remaining: 6,
            },
        ),
        (
            // A timestamp delta of 11 bytes.
            body(&[[0].as_slice(), &[0xff; 11]].concat()),
            ConvertError::VarintTooLong {
                index: 0,
                field: "timestamp delta",
            },
        ),
        (
            // Key length -2.
            body(&[0, 0, 0, 0x03, 0, 0]),
            ConvertError::BadLength {
                index: 0,
                field: "key length",
                length: -2,
                remaining: 2,
            },
        ),
        (
            // A value longer than the record.
            body(&[0, 0, 0, 1, 0x14, 1, 2]),
            ConvertError::BadLength {
                index: 0,
                field: "value length",
                length: 10,
                remaining: 2,
            },
        ),
        (
            // A header count of a billion.
            body(&[0, 0, 0, 1, 1, 0x80, 0xa8, 0xd6, 0xb9, 0x07]),
            ConvertError::BadLength {
                index: 0,
                field: "header count",
                length: 1_000_000_000,
                remaining: 0,
            },
        ),
        (
            // A null header name.
            body(&[0, 0, 0, 1, 1, 2, 1, 1]),
            ConvertError::BadLength {
                index: 0,
                field: "header name length",
                length: -1,
                remaining: 1,
            },
        ),
        (
            // Two bytes after the last field, inside the record.
            {
                body_bytes.extend_from_slice(&[0, 0]);
                body(&body_bytes)
            },
            ConvertError::RecordLengthMismatch {
                index: 0,
                declared: good.len() + 1,
                read: good.len() - 1,
            },
        ),
        (
            // The offset delta of a second record.
            {
                let mut record = Vec::new();
                put_record(&mut record, 1, 5, None, None, &[]);
                record.extend_from_slice(&[0; 8]);
                record
            },
            ConvertError::OffsetGap {
                index: 0,
                offset_delta: 1,
            },
        ),
    ];
    for (section, want) in cases {
        let stored = Batch::from_kafka(&kafka_batch(0, &section, 1)).unwrap();
        assert_eq!(kafka_to_native(&stored).unwrap_err(), want);
    }
    let stored = Batch::from_kafka(&kafka_batch(0, &good, 1)).unwrap();
    kafka_to_native(&stored).expect("the unforged record converts");
}

/// A deterministic generator for the byte flips (xorshift64*).
struct Flips(u64);

impl Flips {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[test]
fn truncated_and_flipped_records_give_errors_not_panics() {
    let records = kafka_records(12);
    let kafka = encode(&records, Compression::None);
    let section = &kafka[KAFKA_BATCH_HEADER_BYTES..];
    for codec in HAND_CODECS {
        let compressed = compress(codec, section);
        let attributes_codec = if codec == RAW_SNAPPY { 2 } else { codec };
        // Every truncation: refused by the header check or by the
        // conversion, never converted.
        for length in 0..compressed.len() {
            if let Ok(stored) =
                Batch::from_kafka(&kafka_batch(attributes_codec, &compressed[..length], 12))
            {
                assert!(
                    kafka_to_native(&stored).is_err(),
                    "codec {codec}: {length} of {} bytes converted",
                    compressed.len()
                );
            }
        }
        // Random flips of one to four bytes: an error or records.
        let mut flips = Flips(0x5eed ^ u64::from(codec));
        for _ in 0..500 {
            let mut forged = compressed.clone();
            for _ in 0..=flips.next() % 4 {
                let at = (flips.next() % forged.len() as u64) as usize;
                forged[at] ^= (flips.next() % 255 + 1) as u8;
            }
            if let Ok(stored) = Batch::from_kafka(&kafka_batch(attributes_codec, &forged, 12)) {
                if let Ok(native) = kafka_to_native(&stored) {
                    Batch::validate(native.into_bytes()).expect("a converted batch validates");
                }
            }
        }
    }
}

proptest::proptest! {
    #[test]
    fn any_records_section_gives_a_batch_or_an_error(
        codec in 0_u16..5,
        record_count in 1_i32..64,
        section in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
    ) {
        if let Ok(stored) = Batch::from_kafka(&kafka_batch(codec, &section, record_count)) {
            if let Ok(native) = kafka_to_native(&stored) {
                proptest::prop_assert_eq!(
                    native.records().unwrap().len(),
                    record_count as usize
                );
            }
        }
    }
}

#[test]
fn a_compacted_batch_converts_to_one_native_batch_per_run_of_offsets() {
    use sluice_storage::batch::filter::{filter, Filtered};
    let stored = Batch::from_kafka(&encode(&kafka_records(6), Compression::Gzip))
        .unwrap()
        .assign(Offset(100), 2);
    let Filtered::Rewritten(compacted) = filter(&stored, |record| {
        ![101, 102, 104].contains(&record.offset.0)
    })
    .unwrap() else {
        panic!("three records of six kept is a rewrite");
    };
    let runs = kafka_to_native_runs(&compacted[0]).unwrap();
    let shape: Vec<(u64, u32, u32)> = runs
        .iter()
        .map(|run| {
            (
                run.base_offset().0,
                run.header().record_count,
                run.leader_epoch(),
            )
        })
        .collect();
    assert_eq!(shape, [(100, 1, 2), (103, 1, 2), (105, 1, 2)]);
    let dense = kafka_to_native(&stored).unwrap();
    let values: Vec<Vec<u8>> = runs
        .iter()
        .flat_map(|run| {
            run.records()
                .unwrap()
                .iter()
                .map(|record| record.value().to_vec())
                .collect::<Vec<_>>()
        })
        .collect();
    let all: Vec<Vec<u8>> = dense
        .records()
        .unwrap()
        .iter()
        .map(|record| record.value().to_vec())
        .collect();
    assert_eq!(values, [all[0].clone(), all[3].clone(), all[5].clone()]);
    assert!(matches!(
        kafka_to_native(&compacted[0]),
        Err(ConvertError::OffsetGap { .. })
    ));
}
