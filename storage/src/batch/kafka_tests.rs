use super::*;

/// A native batch of `records` records with keys, values and headers of
/// varied shapes, from an idempotent producer.
fn native(records: usize) -> Batch {
    let mut builder = BatchBuilder::default().producer(77, 3, 1_000);
    for i in 0..records {
        let key = format!("key-{i}");
        let key = (i % 4 != 0).then_some(key.as_bytes());
        let value = vec![i as u8; i % 200];
        let headers: &[(&[u8], Option<&[u8]>)] = if i % 2 == 0 {
            &[(b"trace", Some(b"abc")), (b"none", None)]
        } else {
            &[]
        };
        // Timestamps out of order: deltas go negative, and the max is not
        // the last.
        builder.push(
            1_700_000_000_000 + (i as i64 % 3) * 1_000,
            key,
            &value,
            headers,
        );
    }
    builder.finish()
}

/// The Kafka bytes a producer would send for `records` records.
fn kafka(records: usize) -> Vec<u8> {
    let mut out = BytesMut::new();
    native(records)
        .write_kafka(&mut out)
        .expect("a built batch");
    out.to_vec()
}

/// `kafka` after `edit`, with its Kafka CRC made right again, so that only
/// the edit is wrong.
fn forge(kafka: &[u8], edit: impl Fn(&mut Vec<u8>)) -> Vec<u8> {
    let mut kafka = kafka.to_vec();
    edit(&mut kafka);
    reseal_kafka(&mut kafka);
    kafka
}

fn reseal_kafka(kafka: &mut [u8]) {
    let crc = crc32c::crc32c(&kafka[21..]);
    kafka[17..21].copy_from_slice(&crc.to_be_bytes());
}

fn set_i32(kafka: &mut [u8], at: usize, value: i32) {
    kafka[at..at + 4].copy_from_slice(&value.to_be_bytes());
}

fn set_i16(kafka: &mut [u8], at: usize, value: i16) {
    kafka[at..at + 2].copy_from_slice(&value.to_be_bytes());
}

fn read_i64_be(bytes: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(bytes[at..at + 8].try_into().unwrap())
}

fn read_i32_be(bytes: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(bytes[at..at + 4].try_into().unwrap())
}

#[test]
fn a_native_batch_written_as_kafka_reads_back_as_a_kafka_batch() {
    let native = native(50).assign(Offset(1_234), 9);
    let mut out = BytesMut::from(&b"before"[..]);
    native.write_kafka(&mut out).unwrap();
    assert_eq!(&out[..6], b"before", "write_kafka appends");
    let kafka = out.split_off(6).freeze();

    let batch = Batch::from_kafka(&kafka).expect("a written kafka batch is accepted");
    let native_header = native.header();
    let header = batch.header();
    assert_eq!(header.payload_format, PayloadFormat::Kafka);
    assert_eq!(header.flags, 0);
    assert_eq!(
        header.batch_bytes as usize,
        BATCH_HEADER_BYTES + kafka.len()
    );
    assert_eq!(header.base_offset, 1_234);
    assert_eq!(header.leader_epoch, 9);
    assert_eq!(header.record_count, 50);
    assert_eq!(header.last_offset_delta, 49);
    assert_eq!(header.first_timestamp, native_header.first_timestamp);
    assert_eq!(header.max_timestamp, 1_700_000_002_000);
    assert_eq!(header.max_timestamp, native_header.max_timestamp);
    assert_eq!(
        (
            header.producer_id,
            header.producer_epoch,
            header.base_sequence
        ),
        (77, 3, 1_000)
    );
    assert_eq!(batch.base_offset(), Offset(1_234));
    assert_eq!(batch.last_offset(), Offset(1_283));

    assert_eq!(batch.kafka_payload(), Some(kafka.clone()));
    assert_eq!(native.kafka_payload(), None);
    let mut again = BytesMut::new();
    batch.write_kafka(&mut again).unwrap();
    assert_eq!(again, kafka, "a kafka batch is written as stored");
    assert!(
        batch.records().is_err(),
        "a kafka batch has no native records"
    );

    let validated = Batch::validate(batch.as_bytes().clone()).expect("validates");
    assert_eq!(validated, batch);
    Batch::validate_stored(batch.as_bytes().clone()).expect("its frame validates");
}

#[test]
fn the_kafka_header_is_written_where_kafka_reads_it() {
    let native = native(3).assign(Offset(5), 2);
    let kafka = kafka_of(&native);
    assert_eq!(read_i64_be(&kafka, 0), 5, "baseOffset");
    assert_eq!(
        read_i32_be(&kafka, 8) as usize,
        kafka.len() - 12,
        "batchLength"
    );
    assert_eq!(read_i32_be(&kafka, 12), 2, "partitionLeaderEpoch");
    assert_eq!(kafka[16], 2, "magic");
    assert_eq!(
        read_i32_be(&kafka, 17) as u32,
        crc32c::crc32c(&kafka[21..]),
        "crc"
    );
    assert_eq!(&kafka[21..23], &[0, 0], "attributes");
    assert_eq!(read_i32_be(&kafka, 23), 2, "lastOffsetDelta");
    assert_eq!(read_i64_be(&kafka, 27), 1_700_000_000_000, "baseTimestamp");
    assert_eq!(read_i64_be(&kafka, 35), 1_700_000_002_000, "maxTimestamp");
    assert_eq!(read_i64_be(&kafka, 43), 77, "producerId");
    assert_eq!(&kafka[51..53], &3_i16.to_be_bytes(), "producerEpoch");
    assert_eq!(read_i32_be(&kafka, 53), 1_000, "baseSequence");
    assert_eq!(read_i32_be(&kafka, 57), 3, "recordCount");
}

fn kafka_of(batch: &Batch) -> Vec<u8> {
    let mut out = BytesMut::new();
    batch.write_kafka(&mut out).unwrap();
    out.to_vec()
}

#[test]
fn records_are_written_as_kafka_records() {
    let mut builder = BatchBuilder::default();
    builder.push(1_000, Some(b"k"), b"v", &[]);
    builder.push(999, None, b"", &[(b"h", Some(b"x")), (b"n", None)]);
    let kafka = kafka_of(&builder.finish());
    #[rustfmt::skip]
    let expected: &[u8] = &[
        // length 8, attributes, timestamp delta 0, offset delta 0,
        // key "k", value "v", no headers
        0x10, 0x00, 0x00, 0x00, 0x02, b'k', 0x02, b'v', 0x00,
        // length 13, attributes, timestamp delta -1, offset delta 1, no key,
        // empty value, 2 headers: "h" = "x", "n" = null
        0x1a, 0x00, 0x01, 0x02, 0x01, 0x00, 0x04,
        0x02, b'h', 0x02, b'x', 0x02, b'n', 0x01,
    ];
    assert_eq!(&kafka[KAFKA_BATCH_HEADER_BYTES..], expected);
}

#[test]
fn varints_are_zigzag_encoded() {
    let cases: &[(i64, &[u8])] = &[
        (0, &[0x00]),
        (-1, &[0x01]),
        (1, &[0x02]),
        (63, &[0x7e]),
        (-64, &[0x7f]),
        (64, &[0x80, 0x01]),
        (300, &[0xd8, 0x04]),
        (i32::MAX as i64, &[0xfe, 0xff, 0xff, 0xff, 0x0f]),
        (i32::MIN as i64, &[0xff, 0xff, 0xff, 0xff, 0x0f]),
        (
            i64::MIN,
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
        ),
    ];
    for (value, bytes) in cases {
        let mut out = [0_u8; 10];
        let written = kafka::put_varint(&mut out, *value);
        assert_eq!(&out[..written], *bytes, "varint of {value}");
        assert_eq!(kafka::varint_bytes(*value), bytes.len(), "size of {value}");
    }
}

#[test]
fn the_crc_covers_what_the_module_doc_says() {
    let batch = Batch::from_kafka(&kafka(10)).unwrap().assign(Offset(99), 4);
    let bytes = batch.as_bytes();
    let payload = &bytes[BATCH_HEADER_BYTES..];
    let mut covered = Vec::new();
    covered.extend_from_slice(&payload[21..]);
    covered.extend_from_slice(&bytes[20..64]);
    covered.extend_from_slice(&payload[8..12]);
    covered.extend_from_slice(&payload[16..21]);
    assert_eq!(batch.header().crc, crc32c::crc32c(&covered));

    // Native batches keep their CRC over everything after the CRC field.
    let native = native(10);
    assert_eq!(
        native.header().crc,
        crc32c::crc32c(&native.as_bytes()[CRC_FIELD_END..])
    );
}

#[test]
fn assign_sets_both_headers_and_keeps_both_crcs() {
    let kafka = kafka(4);
    let batch = Batch::from_kafka(&kafka).unwrap();
    let assigned = batch.assign(Offset(1 << 40), 0xfffe);
    let stored = Batch::validate_stored(assigned.as_bytes().clone()).expect("frame and CRC hold");
    assert_eq!(stored.base_offset(), Offset(1 << 40));
    assert_eq!(stored.header().leader_epoch, 0xfffe);
    let payload = stored.kafka_payload().unwrap();
    assert_eq!(read_i64_be(&payload, 0), 1 << 40);
    assert_eq!(read_i32_be(&payload, 12), 0xfffe);
    assert_eq!(&payload[16..], &kafka[16..], "the rest is as produced");
    assert_eq!(&payload[8..12], &kafka[8..12]);
    assert_eq!(
        read_i32_be(&payload, 17) as u32,
        crc32c::crc32c(&payload[21..]),
        "the Kafka CRC still holds"
    );
    Batch::validate(assigned.into_bytes()).expect("header and payload still agree");
}

#[test]
fn every_flipped_byte_is_caught() {
    let batch = Batch::from_kafka(&kafka(6)).unwrap().assign(Offset(7), 1);
    let bytes = batch.as_bytes().to_vec();
    let payload_at = |at: usize| BATCH_HEADER_BYTES + at;
    // Set in place, so not covered by the CRC: the base offset and leader
    // epoch, in both headers.
    let set_in_place = |at: usize| {
        (0..8).contains(&at)
            || (12..16).contains(&at)
            || (payload_at(0)..payload_at(8)).contains(&at)
            || (payload_at(12)..payload_at(16)).contains(&at)
    };
    for at in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[at] ^= 0x10;
        let bad = Bytes::from(bad);
        // What the CRC leaves out, the agreement of the two headers catches.
        assert!(
            Batch::validate(bad.clone()).is_err(),
            "a flipped byte at {at} went unnoticed by validate"
        );
        let stored = Batch::validate_stored(bad);
        if set_in_place(at) {
            assert!(stored.is_ok(), "byte {at} is not covered by the CRC");
        } else {
            assert!(
                stored.is_err(),
                "a flipped byte at {at} went unnoticed by validate_stored"
            );
        }
    }
}

#[test]
fn a_bad_kafka_crc_behind_a_good_sluice_crc_is_caught_by_validate() {
    let batch = Batch::from_kafka(&kafka(3)).unwrap();
    let mut bytes = batch.as_bytes().to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    header::seal_crc(&mut bytes);
    let bytes = Bytes::from(bytes);
    assert!(matches!(
        Batch::validate(bytes.clone()).unwrap_err(),
        BatchError::KafkaCrcMismatch { .. }
    ));
    // The Sluice CRC holds: bytes read back from disk are not checked
    // deeper than that.
    Batch::validate_stored(bytes).expect("the Sluice CRC holds");
}

#[test]
fn a_header_that_disagrees_with_its_payload_is_refused() {
    let batch = Batch::from_kafka(&kafka(3)).unwrap();
    let bytes = batch.as_bytes().to_vec();
    let forge_header = |edit: &dyn Fn(&mut BatchHeader)| {
        let mut bytes = bytes.clone();
        let mut header = BatchHeader::parse(&bytes).unwrap();
        edit(&mut header);
        header.write(&mut bytes);
        header::seal_crc(&mut bytes);
        Batch::validate(Bytes::from(bytes)).unwrap_err()
    };
    assert_eq!(
        forge_header(&|h| h.max_timestamp += 1),
        BatchError::KafkaHeaderMismatch {
            field: "max_timestamp",
            header: 1_700_000_002_001,
            payload: 1_700_000_002_000
        }
    );
    assert!(matches!(
        forge_header(&|h| h.flags = 2),
        BatchError::KafkaHeaderMismatch { field: "flags", .. }
    ));
    assert!(matches!(
        forge_header(&|h| h.producer_id = -1),
        BatchError::KafkaHeaderMismatch {
            field: "producer_id",
            ..
        }
    ));
    assert!(matches!(
        forge_header(&|h| h.base_offset = 1),
        BatchError::KafkaHeaderMismatch {
            field: "base_offset",
            ..
        }
    ));
    assert!(matches!(
        forge_header(&|h| {
            h.record_count = 2;
            h.last_offset_delta = 1
        }),
        BatchError::KafkaHeaderMismatch {
            field: "record_count",
            ..
        }
    ));
}

#[test]
fn a_sluice_frame_too_short_for_a_kafka_header_is_refused() {
    let mut bytes = Batch::from_kafka(&kafka(1)).unwrap().as_bytes().to_vec();
    bytes.truncate(BATCH_HEADER_BYTES + 60);
    let batch_bytes = bytes.len() as u32;
    header::write_u32(&mut bytes, header::BATCH_BYTES_AT, batch_bytes);
    let bytes = Bytes::from(bytes);
    assert_eq!(
        Batch::validate(bytes.clone()).unwrap_err(),
        BatchError::KafkaTooShort { bytes: 60 }
    );
    assert_eq!(
        Batch::validate_stored(bytes).unwrap_err(),
        BatchError::KafkaTooShort { bytes: 60 }
    );
}

#[test]
fn from_kafka_refuses_bad_kafka_batches_with_typed_errors() {
    let good = kafka(5);
    let refused = |kafka: &[u8]| Batch::from_kafka(kafka).unwrap_err();

    let mut bad_crc = good.clone();
    bad_crc[70] ^= 1;
    assert_eq!(
        refused(&bad_crc),
        BatchError::KafkaCrcMismatch {
            stored: crc32c::crc32c(&good[21..]),
            computed: crc32c::crc32c(&bad_crc[21..])
        }
    );
    let mut bad_stored_crc = good.clone();
    bad_stored_crc[18] ^= 1;
    assert!(matches!(
        refused(&bad_stored_crc),
        BatchError::KafkaCrcMismatch { .. }
    ));

    assert_eq!(
        refused(&good[..60]),
        BatchError::KafkaTooShort { bytes: 60 }
    );
    assert_eq!(refused(&[]), BatchError::KafkaTooShort { bytes: 0 });
    assert_eq!(
        refused(&good[..good.len() - 1]),
        BatchError::KafkaLengthMismatch {
            batch_length: good.len() as i32 - 12,
            available: good.len() - 1
        }
    );
    let mut long = good.clone();
    long.push(0);
    assert!(matches!(
        refused(&long),
        BatchError::KafkaLengthMismatch { .. }
    ));
    assert!(matches!(
        refused(&forge(&good, |k| set_i32(k, 8, -1))),
        BatchError::KafkaLengthMismatch {
            batch_length: -1,
            ..
        }
    ));

    assert_eq!(
        refused(&forge(&good, |k| k[16] = 1)),
        BatchError::KafkaUnknownMagic { magic: 1 }
    );
    assert_eq!(
        refused(&forge(&good, |k| {
            set_i16(k, 21, 0b1_0000);
            k[43..51].copy_from_slice(&(-1_i64).to_be_bytes());
        })),
        BatchError::KafkaTransactional { producer_id: -1 }
    );
    assert_eq!(
        refused(&forge(&good, |k| {
            set_i16(k, 21, 0b1_0000);
            set_i32(k, 53, -1);
        })),
        BatchError::KafkaTransactional { producer_id: 77 }
    );
    assert_eq!(
        refused(&forge(&good, |k| set_i16(k, 21, 0b11_0000))),
        BatchError::KafkaControl {
            attributes: 0b11_0000
        }
    );
    assert_eq!(
        refused(&forge(&good, |k| set_i16(k, 21, 5))),
        BatchError::KafkaUnknownCompression { codec: 5 }
    );
    assert_eq!(
        refused(&forge(&good, |k| set_i32(k, 57, 0))),
        BatchError::Empty
    );
    assert_eq!(
        refused(&forge(&good, |k| set_i32(k, 23, 5))),
        BatchError::BadOffsetDelta {
            last_offset_delta: 5,
            record_count: 5
        }
    );
    assert_eq!(
        refused(&forge(&good, |k| set_i32(k, 23, 3))),
        BatchError::BadOffsetDelta {
            last_offset_delta: 3,
            record_count: 5
        }
    );
    assert_eq!(
        refused(&forge(&good, |k| set_i32(k, 23, -1))),
        BatchError::BadOffsetDelta {
            last_offset_delta: u32::MAX,
            record_count: 5
        }
    );
    let over = BATCH_RECORDS_MAX as i32 + 1;
    assert_eq!(
        refused(&forge(&good, |k| {
            set_i32(k, 57, over);
            set_i32(k, 23, over - 1)
        })),
        BatchError::TooManyRecords {
            count: over as u32,
            max: BATCH_RECORDS_MAX
        }
    );
    assert_eq!(
        refused(&forge(&good, |k| set_i32(k, 57, -1))),
        BatchError::TooManyRecords {
            count: u32::MAX,
            max: BATCH_RECORDS_MAX
        }
    );
    // 5 real records are far more than 7 bytes each; 1000 claimed ones
    // cannot fit.
    assert!(matches!(
        refused(&forge(&good, |k| {
            set_i32(k, 57, 1_000);
            set_i32(k, 23, 999)
        })),
        BatchError::KafkaRecordsTooShort {
            record_count: 1_000,
            ..
        }
    ));
    assert_eq!(
        refused(&forge(&good, |k| k[0..8].copy_from_slice(&(-1_i64).to_be_bytes()))),
        BatchError::OffsetOverflow {
            base_offset: u64::MAX,
            last_offset_delta: 4
        }
    );
}

#[test]
fn compressed_batches_are_accepted_as_they_are() {
    // Compressed records are not decompressed on produce: a batch whose
    // attributes name a codec is stored with the codec in `flags`.
    let good = kafka(5);
    for codec in 1..=4_i16 {
        let kafka = forge(&good, |k| set_i16(k, 21, codec | 0b1000));
        let batch = Batch::from_kafka(&kafka).expect("a known codec");
        assert_eq!(batch.header().flags, codec as u16);
        Batch::validate(batch.as_bytes().clone()).expect("validates");
        assert_eq!(batch.kafka_payload().unwrap(), kafka);
    }
}

#[test]
fn a_kafka_batch_over_the_byte_cap_is_refused_before_it_is_read() {
    let kafka_bytes = BATCH_BYTES_MAX - BATCH_HEADER_BYTES + 1;
    let mut kafka = vec![0_u8; kafka_bytes];
    set_i32(&mut kafka, 8, kafka_bytes as i32 - 12);
    assert_eq!(
        Batch::from_kafka(&kafka).unwrap_err(),
        BatchError::TooLarge {
            bytes: BATCH_BYTES_MAX + 1,
            max: BATCH_BYTES_MAX
        }
    );
    // One byte less passes the cap and is refused for what it holds.
    let kafka = &kafka[..kafka_bytes - 1];
    assert!(matches!(
        Batch::from_kafka(kafka).unwrap_err(),
        BatchError::KafkaLengthMismatch { .. }
    ));
}

#[test]
fn write_kafka_reports_a_native_archive_that_does_not_validate() {
    let mut bytes = native(2).into_bytes().to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    header::seal_crc(&mut bytes);
    let stored = Batch::validate_stored(Bytes::from(bytes)).expect("the frame holds");
    let mut out = BytesMut::new();
    assert!(matches!(
        stored.write_kafka(&mut out).unwrap_err(),
        BatchError::InvalidPayload { .. }
    ));
}

#[test]
fn a_batch_stamped_with_log_append_time_says_so_in_both_headers_and_still_validates() {
    let batch = Batch::from_kafka(&kafka(3)).unwrap();
    let original = batch.kafka_payload().unwrap();
    let stamped = batch.stamp_log_append_time(1_800_000_000_000);
    assert_eq!(stamped.max_timestamp(), 1_800_000_000_000);
    let payload = stamped.kafka_payload().unwrap();
    assert_eq!(read_i64_be(&payload, 35), 1_800_000_000_000, "maxTimestamp");
    let attributes = i16::from_be_bytes([payload[21], payload[22]]);
    assert_eq!(
        attributes & (1 << 3),
        1 << 3,
        "the timestamp type is LogAppendTime"
    );
    // The records are untouched; both CRCs hold.
    assert_eq!(
        payload[KAFKA_BATCH_HEADER_BYTES..],
        original[KAFKA_BATCH_HEADER_BYTES..]
    );
    assert_eq!(read_i32_be(&payload, 17) as u32, kafka::kafka_crc(&payload));
    Batch::validate(stamped.into_bytes()).unwrap();
    Batch::from_kafka(&payload).unwrap();
    // A native batch has no timestamp type: left as it is.
    let native = native(2);
    assert_eq!(native.clone().stamp_log_append_time(1), native);
}

#[test]
fn a_transactional_producers_batch_is_taken_and_marked_in_the_header() {
    let kafka = forge(&kafka(3), |k| set_i16(k, 21, 0b1_0000));
    let batch = Batch::from_kafka(&kafka).expect("a transactional batch of an idempotent producer");
    let header = batch.header();
    assert!(header.is_transactional());
    assert_eq!(header.marker(), None);
    assert_eq!(header.flags & FLAGS_COMPRESSION_MASK, 0);
    // A record batch is not a marker, and its flags agree with its payload
    // when read back.
    Batch::validate(batch.as_bytes().clone()).expect("it validates as it was made");
    assert!(!Batch::from_kafka(&self::kafka(3))
        .unwrap()
        .header()
        .is_transactional());
}

#[test]
fn a_marker_is_a_kafka_control_batch_of_one_control_record() {
    for (marker, control_type) in [(Marker::Commit, 1_i16), (Marker::Abort, 0)] {
        let batch = Batch::marker(41, 7, marker, 12, 1_700_000_000_000).unwrap();
        assert_eq!(batch.len(), MARKER_BATCH_BYTES);
        let header = batch.header();
        assert_eq!(header.marker(), Some(marker));
        assert!(header.is_transactional());
        assert_eq!(
            (
                header.producer_id,
                header.producer_epoch,
                header.base_sequence
            ),
            (41, 7, -1)
        );
        assert_eq!((header.record_count, header.last_offset_delta), (1, 0));
        let kafka = batch.kafka_payload().expect("a kafka payload");
        // Kafka's attributes: transactional and control, uncompressed.
        assert_eq!(&kafka[21..23], &[0, 0b11_0000]);
        let mut records = Vec::new();
        filter::for_each_record(&batch, |record| {
            records.push((
                record.key.map(<[u8]>::to_vec),
                record.value.map(<[u8]>::to_vec),
            ));
        })
        .unwrap();
        let mut key = 0_i16.to_be_bytes().to_vec();
        key.extend_from_slice(&control_type.to_be_bytes());
        let mut value = 0_i16.to_be_bytes().to_vec();
        value.extend_from_slice(&12_i32.to_be_bytes());
        assert_eq!(records, vec![(Some(key), Some(value))]);

        // A log takes it, assigned; a producer may not send it, in either
        // format.
        let assigned = batch.clone().assign(Offset(90), 4);
        let run = Batch::validate_run(assigned.as_bytes().clone(), Offset(90)).unwrap();
        assert_eq!(run[0].header().marker(), Some(marker));
        assert_eq!(
            Batch::from_kafka(&kafka).unwrap_err(),
            BatchError::KafkaControl {
                attributes: 0b11_0000
            }
        );
        assert!(matches!(
            Batch::validate(batch.as_bytes().clone()).unwrap_err(),
            BatchError::KafkaControl { .. }
        ));
    }
}

#[test]
fn a_control_batch_that_is_not_a_marker_is_refused_from_a_log() {
    let good = Batch::marker(41, 7, Marker::Commit, 12, 1_000)
        .unwrap()
        .kafka_payload()
        .unwrap()
        .to_vec();
    let check = |kafka: &[u8]| {
        let header = kafka::KafkaHeader::parse(kafka).unwrap();
        header.check(kafka.len(), false, kafka::Origin::Log)
    };
    check(&good).expect("a marker");
    let bad = |edit: &dyn Fn(&mut Vec<u8>)| match check(&forge(&good, edit)) {
        Err(BatchError::KafkaBadControl { reason }) => reason,
        other => panic!("not refused as a bad marker: {other:?}"),
    };
    assert_eq!(bad(&|k| set_i16(k, 21, 0b10_0000)), "not transactional");
    assert_eq!(bad(&|k| set_i16(k, 21, 0b11_0001)), "compressed");
    assert_eq!(
        bad(&|k| k[43..51].copy_from_slice(&(-1_i64).to_be_bytes())),
        "no producer id or epoch"
    );
    // The control type (the key's second i16) 2, and key version 1.
    let key_at = 61 + 5;
    assert_eq!(
        bad(&|k| set_i16(k, key_at + 2, 2)),
        "its record is not a commit or abort marker"
    );
    assert_eq!(
        bad(&|k| set_i16(k, key_at, 1)),
        "its record is not a commit or abort marker"
    );
    // Cut inside the key: the batch length no longer fits, or the record
    // does not read.
    for cut in 61..good.len() {
        let mut short = good[..cut].to_vec();
        let length = short.len() as i32 - 12;
        set_i32(&mut short, 8, length);
        reseal_kafka(&mut short);
        assert!(check(&short).is_err(), "cut at {cut}");
    }
}

#[test]
fn a_brokers_transactional_batch_carries_no_sequence_and_is_taken_from_a_log_only() {
    let records: [filter::KeyValue<'_>; 2] = [(Some(b"k1"), Some(b"v1")), (Some(b"k2"), None)];
    let batch = filter::transactional_kafka_batch(&records, 0, 1_000, 41, 7).unwrap();
    let header = batch.header();
    assert!(header.is_transactional());
    assert_eq!(header.marker(), None);
    assert_eq!(
        (
            header.producer_id,
            header.producer_epoch,
            header.base_sequence
        ),
        (41, 7, -1)
    );
    let kafka = batch.kafka_payload().expect("a kafka payload");
    assert_eq!(&kafka[21..23], &[0, 0b1_0000]);
    let mut read = Vec::new();
    filter::for_each_record(&batch, |record| {
        read.push((record.key.map(<[u8]>::to_vec), record.value.is_some()));
    })
    .unwrap();
    assert_eq!(
        read,
        vec![(Some(b"k1".to_vec()), true), (Some(b"k2".to_vec()), false)]
    );
    // A replica takes it from its leader's log; a producer may not send it.
    let assigned = batch.clone().assign(Offset(90), 4);
    let run = Batch::validate_run(assigned.as_bytes().clone(), Offset(90)).unwrap();
    assert_eq!(run[0].header(), assigned.header());
    assert_eq!(
        Batch::from_kafka(&kafka).unwrap_err(),
        BatchError::KafkaTransactional { producer_id: 41 }
    );
    // Without a producer id it is refused from a log too.
    let check = |kafka: &[u8]| {
        let header = kafka::KafkaHeader::parse(kafka).unwrap();
        header.check(kafka.len(), true, kafka::Origin::Log)
    };
    check(&kafka).expect("the broker's own");
    assert_eq!(
        check(&forge(&kafka, |k| k[43..51]
            .copy_from_slice(&(-1_i64).to_be_bytes())))
        .unwrap_err(),
        BatchError::KafkaTransactional { producer_id: -1 }
    );
}
