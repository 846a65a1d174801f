//! Bounds-checked little-endian primitives for the native protocol.
//!
//! Every length read from the wire is checked against the bytes that remain
//! and against a cap before anything is allocated or sliced.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// A string on the wire is at most this long: topic names are at most 249
/// bytes (Kafka's limit), config values and messages stay small.
pub const STRING_BYTES_MAX: usize = 32 * 1024;

/// A list on the wire has at most this many entries: more partitions than a
/// broker holds, more topics than one request names.
pub const LIST_ENTRIES_MAX: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("message truncated: {field} needs {needed} bytes, {available} remain")]
    Truncated {
        field: &'static str,
        needed: usize,
        available: usize,
    },
    #[error("{field} declares {declared}, over the cap of {max}")]
    OverCap {
        field: &'static str,
        declared: usize,
        max: usize,
    },
    #[error("{field} is not UTF-8")]
    NotUtf8 { field: &'static str },
    #[error("{field} has invalid value {value}")]
    InvalidValue { field: &'static str, value: i64 },
    #[error("{remaining} bytes left over after the message")]
    TrailingBytes { remaining: usize },
}

/// Reads fields from a message body, zero-copy for byte payloads.
pub struct Reader {
    bytes: Bytes,
}

impl Reader {
    pub fn new(bytes: Bytes) -> Reader {
        Reader { bytes }
    }

    fn need(&self, field: &'static str, needed: usize) -> Result<(), DecodeError> {
        if self.bytes.len() < needed {
            return Err(DecodeError::Truncated {
                field,
                needed,
                available: self.bytes.len(),
            });
        }
        Ok(())
    }

    pub fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        self.need(field, 1)?;
        Ok(self.bytes.get_u8())
    }

    pub fn i8(&mut self, field: &'static str) -> Result<i8, DecodeError> {
        self.need(field, 1)?;
        Ok(self.bytes.get_i8())
    }

    pub fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        self.need(field, 2)?;
        Ok(self.bytes.get_u16_le())
    }

    pub fn i16(&mut self, field: &'static str) -> Result<i16, DecodeError> {
        self.need(field, 2)?;
        Ok(self.bytes.get_i16_le())
    }

    pub fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        self.need(field, 4)?;
        Ok(self.bytes.get_u32_le())
    }

    pub fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        self.need(field, 8)?;
        Ok(self.bytes.get_u64_le())
    }

    pub fn i64(&mut self, field: &'static str) -> Result<i64, DecodeError> {
        self.need(field, 8)?;
        Ok(self.bytes.get_i64_le())
    }

    pub fn u128(&mut self, field: &'static str) -> Result<u128, DecodeError> {
        self.need(field, 16)?;
        Ok(self.bytes.get_u128_le())
    }

    pub fn bool(&mut self, field: &'static str) -> Result<bool, DecodeError> {
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            value => Err(DecodeError::InvalidValue {
                field,
                value: i64::from(value),
            }),
        }
    }

    /// A length-prefixed (u32) run of bytes, sliced out without a copy.
    pub fn bytes(&mut self, field: &'static str, max: usize) -> Result<Bytes, DecodeError> {
        let declared = self.u32(field)? as usize;
        if declared > max {
            return Err(DecodeError::OverCap {
                field,
                declared,
                max,
            });
        }
        self.need(field, declared)?;
        Ok(self.bytes.split_to(declared))
    }

    pub fn string(&mut self, field: &'static str) -> Result<String, DecodeError> {
        let bytes = self.bytes(field, STRING_BYTES_MAX)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::NotUtf8 { field })
    }

    /// A list's entry count (u32), checked against the cap and against the
    /// bytes left (each entry takes at least `entry_bytes_min`).
    pub fn count(
        &mut self,
        field: &'static str,
        entry_bytes_min: usize,
    ) -> Result<usize, DecodeError> {
        let declared = self.u32(field)? as usize;
        if declared > LIST_ENTRIES_MAX {
            return Err(DecodeError::OverCap {
                field,
                declared,
                max: LIST_ENTRIES_MAX,
            });
        }
        self.need(field, declared.saturating_mul(entry_bytes_min.max(1)))?;
        Ok(declared)
    }

    pub fn list<T>(
        &mut self,
        field: &'static str,
        entry_bytes_min: usize,
        mut entry: impl FnMut(&mut Reader) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        let count = self.count(field, entry_bytes_min)?;
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            out.push(entry(self)?);
        }
        Ok(out)
    }

    /// Fails unless every byte was read.
    pub fn finish(self) -> Result<(), DecodeError> {
        match self.bytes.len() {
            0 => Ok(()),
            remaining => Err(DecodeError::TrailingBytes { remaining }),
        }
    }
}

/// Writes fields into a message body.
pub struct Writer<'a> {
    out: &'a mut BytesMut,
}

impl<'a> Writer<'a> {
    pub fn new(out: &'a mut BytesMut) -> Writer<'a> {
        Writer { out }
    }

    pub fn u8(&mut self, value: u8) {
        self.out.put_u8(value);
    }

    pub fn i8(&mut self, value: i8) {
        self.out.put_i8(value);
    }

    pub fn u16(&mut self, value: u16) {
        self.out.put_u16_le(value);
    }

    pub fn i16(&mut self, value: i16) {
        self.out.put_i16_le(value);
    }

    pub fn u32(&mut self, value: u32) {
        self.out.put_u32_le(value);
    }

    pub fn u64(&mut self, value: u64) {
        self.out.put_u64_le(value);
    }

    pub fn i64(&mut self, value: i64) {
        self.out.put_i64_le(value);
    }

    pub fn u128(&mut self, value: u128) {
        self.out.put_u128_le(value);
    }

    pub fn bool(&mut self, value: bool) {
        self.out.put_u8(u8::from(value));
    }

    pub fn bytes(&mut self, value: &[u8]) {
        self.u32(u32::try_from(value.len()).expect("bytes fit u32"));
        self.out.put_slice(value);
    }

    /// Bytes as they are, with no length: for a run whose length was
    /// written before it.
    pub fn raw(&mut self, value: &[u8]) {
        self.out.put_slice(value);
    }

    pub fn string(&mut self, value: &str) {
        self.bytes(value.as_bytes());
    }

    pub fn count(&mut self, count: usize) {
        self.u32(u32::try_from(count).expect("count fits u32"));
    }

    pub fn list<T>(&mut self, items: &[T], mut entry: impl FnMut(&mut Writer<'_>, &T)) {
        self.count(items.len());
        for item in items {
            entry(self, item);
        }
    }
}
