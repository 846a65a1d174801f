//! The native payload: an rkyv archive of records, read in place.
//!
//! The archived root is a vector of [`ArchivedRecord`]s. Each record's key,
//! value and headers are archived byte vectors that point into the same
//! buffer, so a reader hands out `&[u8]` slices of the batch itself: no copy
//! and no allocation per record.
//!
//! The `*Shape` types below exist only to describe the archived layout to
//! rkyv: the [`super::BatchBuilder`] writes the out-of-line bytes itself as
//! records arrive and then resolves these shapes over the positions it kept.

use rkyv::{
    rancor::{self, Panic},
    ser::WriterExt,
    vec::{ArchivedVec, VecResolver},
    Archive, Place,
};

use super::BatchError;

/// `len` bytes already written to the output at a position.
pub(super) struct BytesShape {
    pub len: usize,
}

impl Archive for BytesShape {
    type Archived = ArchivedVec<u8>;
    type Resolver = VecResolver;

    fn resolve(&self, resolver: VecResolver, out: Place<ArchivedVec<u8>>) {
        ArchivedVec::resolve_from_len(self.len, resolver, out);
    }
}

/// `len` archived headers already written to the output at a position.
pub(super) struct HeadersShape {
    pub len: usize,
}

impl Archive for HeadersShape {
    type Archived = ArchivedVec<ArchivedHeader>;
    type Resolver = VecResolver;

    fn resolve(&self, resolver: VecResolver, out: Place<Self::Archived>) {
        ArchivedVec::resolve_from_len(self.len, resolver, out);
    }
}

/// `len` archived records already written to the output at a position: the
/// archive's root.
pub(super) struct RecordsShape {
    pub len: usize,
}

impl Archive for RecordsShape {
    type Archived = ArchivedVec<ArchivedRecord>;
    type Resolver = VecResolver;

    fn resolve(&self, resolver: VecResolver, out: Place<Self::Archived>) {
        ArchivedVec::resolve_from_len(self.len, resolver, out);
    }
}

#[derive(Archive)]
#[rkyv(archived = ArchivedHeader)]
pub(super) struct HeaderShape {
    pub name: BytesShape,
    pub value: Option<BytesShape>,
}

#[derive(Archive)]
#[rkyv(archived = ArchivedRecord)]
pub(super) struct RecordShape {
    pub timestamp_delta: i64,
    pub key: Option<BytesShape>,
    pub value: BytesShape,
    pub headers: HeadersShape,
}

type ArchivedRecords = ArchivedVec<ArchivedRecord>;

/// A span of bytes already written to the builder's buffer: (position, length).
pub(super) type Span = (usize, usize);

/// Appends one archived header whose name and value bytes are at the spans.
pub(super) fn write_header(buffer: &mut Vec<u8>, name: Span, value: Option<Span>) {
    let shape = HeaderShape {
        name: BytesShape { len: name.1 },
        value: value.map(|(_, len)| BytesShape { len }),
    };
    let resolver = HeaderShapeResolver {
        name: VecResolver::from_pos(name.0),
        value: value.map(|(at, _)| VecResolver::from_pos(at)),
    };
    // SAFETY: the resolver's positions are where the builder wrote the bytes,
    // and the archive is unaligned (alignment 1), so any position is aligned.
    unsafe { WriterExt::<Panic>::resolve_aligned(buffer, &shape, resolver) }
        .expect("writing to a Vec cannot fail");
}

/// Appends one archived record whose parts are at the spans; `headers` is
/// the span of its archived headers (position, count).
pub(super) fn write_record(
    buffer: &mut Vec<u8>,
    timestamp_delta: i64,
    key: Option<Span>,
    value: Span,
    headers: Span,
) {
    let shape = RecordShape {
        timestamp_delta,
        key: key.map(|(_, len)| BytesShape { len }),
        value: BytesShape { len: value.1 },
        headers: HeadersShape { len: headers.1 },
    };
    let resolver = RecordShapeResolver {
        timestamp_delta: (),
        key: key.map(|(at, _)| VecResolver::from_pos(at)),
        value: VecResolver::from_pos(value.0),
        headers: VecResolver::from_pos(headers.0),
    };
    // SAFETY: as in `write_header`.
    unsafe { WriterExt::<Panic>::resolve_aligned(buffer, &shape, resolver) }
        .expect("writing to a Vec cannot fail");
}

/// Appends the archive's root: the vector of `records.1` archived records
/// written contiguously from `records.0`. The root must come last.
pub(super) fn write_root(buffer: &mut Vec<u8>, records: Span) {
    let shape = RecordsShape { len: records.1 };
    // SAFETY: as in `write_header`.
    unsafe {
        WriterExt::<Panic>::resolve_aligned(buffer, &shape, VecResolver::from_pos(records.0))
    }
    .expect("writing to a Vec cannot fail");
}

/// Validates a native payload once (bytecheck): every pointer in bounds, every
/// length consistent. Afterwards the records are read without checks.
pub(super) fn validate(payload: &[u8]) -> Result<&ArchivedRecords, BatchError> {
    rkyv::access::<ArchivedRecords, rancor::Error>(payload).map_err(|error| {
        BatchError::InvalidPayload {
            reason: error.to_string(),
        }
    })
}

/// The records of a payload that [`validate`] accepted before.
pub(super) fn records_unchecked(payload: &[u8]) -> Records<'_> {
    // SAFETY: callers pass only payloads that `validate` accepted (a `Batch`
    // records whether its archive was checked), and a `Batch`'s bytes never
    // change.
    let records = unsafe { rkyv::access_unchecked::<ArchivedRecords>(payload) };
    Records { records }
}

/// The records of a native batch, in place.
#[derive(Clone, Copy)]
pub struct Records<'a> {
    records: &'a ArchivedRecords,
}

impl<'a> Records<'a> {
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub fn get(&self, index: usize) -> Option<RecordView<'a>> {
        self.records.get(index).map(|record| RecordView { record })
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = RecordView<'a>> + 'a {
        self.records.iter().map(|record| RecordView { record })
    }
}

/// One record of a native batch, borrowed from the batch's bytes.
#[derive(Clone, Copy)]
pub struct RecordView<'a> {
    record: &'a ArchivedRecord,
}

impl<'a> RecordView<'a> {
    /// Milliseconds from the batch's first timestamp.
    pub fn timestamp_delta(&self) -> i64 {
        self.record.timestamp_delta.to_native()
    }

    pub fn key(&self) -> Option<&'a [u8]> {
        self.record.key.as_ref().map(|key| key.as_slice())
    }

    pub fn value(&self) -> &'a [u8] {
        self.record.value.as_slice()
    }

    pub fn header_count(&self) -> usize {
        self.record.headers.len()
    }

    pub fn headers(&self) -> impl ExactSizeIterator<Item = HeaderView<'a>> + 'a {
        self.record.headers.iter().map(|header| HeaderView {
            name: header.name.as_slice(),
            value: header.value.as_ref().map(|value| value.as_slice()),
        })
    }
}

/// One record header: a name and an optional value, borrowed from the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderView<'a> {
    pub name: &'a [u8],
    pub value: Option<&'a [u8]>,
}
