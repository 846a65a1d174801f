use super::*;

fn sample(records: usize) -> Batch {
    let mut builder = BatchBuilder::default();
    for i in 0..records {
        let key = format!("key-{i}");
        let value = vec![i as u8; i % 300];
        let headers: &[(&[u8], Option<&[u8]>)] = if i % 3 == 0 {
            &[(b"trace", Some(b"abc")), (b"empty", None)]
        } else {
            &[]
        };
        let key = if i % 5 == 0 {
            None
        } else {
            Some(key.as_bytes())
        };
        builder.push(1_000 + i as i64, key, &value, headers);
    }
    builder.finish()
}

#[test]
fn built_batch_reads_back_in_place() {
    let batch = sample(100);
    let header = batch.header();
    assert_eq!(header.record_count, 100);
    assert_eq!(header.last_offset_delta, 99);
    assert_eq!(header.first_timestamp, 1_000);
    assert_eq!(header.max_timestamp, 1_099);
    assert_eq!(header.batch_bytes as usize, batch.len());
    let batch = Batch::validate(batch.into_bytes()).expect("valid");
    let records = batch.records().expect("native");
    assert_eq!(records.len(), 100);
    for (i, record) in records.iter().enumerate() {
        assert_eq!(record.timestamp_delta(), i as i64);
        if i % 5 == 0 {
            assert_eq!(record.key(), None);
        } else {
            assert_eq!(record.key(), Some(format!("key-{i}").as_bytes()));
        }
        assert_eq!(record.value(), &vec![i as u8; i % 300][..]);
        let headers: Vec<_> = record.headers().collect();
        if i % 3 == 0 {
            assert_eq!(
                headers,
                vec![
                    HeaderView {
                        name: b"trace",
                        value: Some(b"abc")
                    },
                    HeaderView {
                        name: b"empty",
                        value: None
                    }
                ]
            );
        } else {
            assert!(headers.is_empty());
        }
    }
}

#[test]
fn assign_sets_offset_and_epoch_without_breaking_crc() {
    let batch = sample(3).assign(Offset(42), 7);
    assert_eq!(batch.base_offset(), Offset(42));
    assert_eq!(batch.last_offset(), Offset(44));
    assert_eq!(batch.header().leader_epoch, 7);
    Batch::validate(batch.into_bytes()).expect("still valid");
}

#[test]
fn every_flipped_bit_after_the_crc_is_caught() {
    let batch = sample(4);
    let bytes = batch.as_bytes().to_vec();
    for at in CRC_FIELD_END..bytes.len() {
        let mut bad = bytes.clone();
        bad[at] ^= 0x10;
        assert!(
            Batch::validate(Bytes::from(bad)).is_err(),
            "a flipped bit at {at} went unnoticed"
        );
    }
}

#[test]
fn wrong_lengths_are_refused() {
    let bytes = sample(2).into_bytes();
    assert_eq!(
        Batch::validate(bytes.slice(..10)).unwrap_err(),
        BatchError::TooShort { bytes: 10 }
    );
    let short = bytes.slice(..bytes.len() - 1);
    assert!(matches!(
        Batch::validate(short).unwrap_err(),
        BatchError::LengthMismatch { .. }
    ));
    let mut long = bytes.to_vec();
    long.push(0);
    assert!(matches!(
        Batch::validate(Bytes::from(long)).unwrap_err(),
        BatchError::LengthMismatch { .. }
    ));
}

#[test]
fn counts_over_caps_and_lying_headers_are_refused() {
    let bytes = sample(2).into_bytes().to_vec();
    let forge = |edit: &dyn Fn(&mut BatchHeader)| {
        let mut bytes = bytes.clone();
        let mut header = BatchHeader::parse(&bytes).unwrap();
        edit(&mut header);
        header.write(&mut bytes);
        header::seal_crc(&mut bytes);
        Batch::validate(Bytes::from(bytes)).unwrap_err()
    };
    assert_eq!(
        forge(&|h| h.record_count = BATCH_RECORDS_MAX + 1),
        BatchError::TooManyRecords {
            count: BATCH_RECORDS_MAX + 1,
            max: BATCH_RECORDS_MAX
        }
    );
    assert_eq!(
        forge(&|h| {
            h.record_count = 3;
            h.last_offset_delta = 2
        }),
        BatchError::RecordCountMismatch {
            archived: 2,
            declared: 3
        }
    );
    assert_eq!(forge(&|h| h.record_count = 0), BatchError::Empty);
    assert!(matches!(
        forge(&|h| h.batch_bytes = u32::MAX),
        BatchError::TooLarge { .. }
    ));
    assert!(matches!(
        forge(&|h| h.flags = 1),
        BatchError::CompressedNative { .. }
    ));
}

#[test]
fn a_payload_that_is_not_an_archive_is_refused_with_a_reason() {
    let mut bytes = vec![0u8; BATCH_HEADER_BYTES + 16];
    let header = BatchHeader {
        base_offset: 0,
        batch_bytes: bytes.len() as u32,
        leader_epoch: 0,
        crc: 0,
        payload_format: PayloadFormat::Native,
        flags: 0,
        record_count: 1,
        last_offset_delta: 0,
        first_timestamp: 0,
        max_timestamp: 0,
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
    };
    bytes[BATCH_HEADER_BYTES..].fill(0xff);
    header.write(&mut bytes);
    header::seal_crc(&mut bytes);
    assert!(matches!(
        Batch::validate(Bytes::from(bytes)).unwrap_err(),
        BatchError::InvalidPayload { .. }
    ));
}

#[test]
fn a_stored_batch_validates_its_archive_on_first_read() {
    let batch = sample(5);
    let stored = Batch::validate_stored(batch.into_bytes()).unwrap();
    assert_eq!(stored.records().unwrap().len(), 5);
}

#[test]
fn a_base_offset_whose_last_offset_overflows_is_refused() {
    let bytes = sample(2).assign(Offset(u64::MAX), 0).into_bytes();
    assert_eq!(
        Batch::validate(bytes).unwrap_err(),
        BatchError::OffsetOverflow {
            base_offset: u64::MAX,
            last_offset_delta: 1
        }
    );
    let bytes = sample(2).assign(Offset(OFFSET_MAX - 1), 0).into_bytes();
    assert!(Batch::validate(bytes).is_ok());
}
