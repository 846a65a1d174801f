//! How a value of the native protocol is written and read: one definition
//! per type, from which both directions and the least number of bytes it
//! can take all follow.
//!
//! [`Wire`] is implemented once for the primitives, `String`, [`ErrorCode`],
//! `Vec<T>`, `Option<T>` and tuples; a struct made of such fields gets its
//! implementation from `wire_struct!`, which is given the field list once
//! and writes the fields in order, reads them back in the same order, and
//! sums their sizes into [`Wire::MIN_BYTES`]. That sum is what a list's
//! decoder checks its declared count against (`count × MIN_BYTES` must
//! remain) before it allocates, so no size is counted by hand.
//!
//! A field written other than as its type's own way names the way after
//! `as`: [`Capped`] for a byte run with a cap of its own, [`Joined`] for
//! byte runs sent back to back under one length, [`IfPresent`] for an
//! option whose value is left out when absent. Enums with tags implement
//! [`Wire`] by hand, once.
//!
//! The encoding: integers little-endian; a bool one byte (0 or 1, anything
//! else refused); strings and byte runs a u32 length then the bytes; lists
//! a u32 count then the entries; `Option<T>` a bool then a `T` always (the
//! default value when absent), so that its size does not depend on it.

use bytes::Bytes;

use super::{
    codec::{DecodeError, Reader, Writer},
    ErrorCode,
};

/// A value with one encoding on the native wire.
pub trait Wire: Sized {
    /// The fewest bytes any value of the type encodes to. A list of `n`
    /// entries is refused unless `n × MIN_BYTES` bytes remain.
    const MIN_BYTES: usize;

    fn encode(&self, out: &mut Writer<'_>);

    /// Reads a value; `field` names it in an error.
    fn decode(input: &mut Reader, field: &'static str) -> Result<Self, DecodeError>;
}

/// A way to write a `T` other than its own [`Wire`] encoding: named after
/// `as` on a field of `wire_struct!`.
pub trait WireAs<T> {
    const MIN_BYTES: usize;
    fn encode(value: &T, out: &mut Writer<'_>);
    fn decode(input: &mut Reader, field: &'static str) -> Result<T, DecodeError>;
}

/// A field written as its type's own [`Wire`] encoding: what a field of
/// `wire_struct!` without `as` uses.
pub enum Plain {}

impl<T: Wire> WireAs<T> for Plain {
    const MIN_BYTES: usize = T::MIN_BYTES;
    fn encode(value: &T, out: &mut Writer<'_>) {
        value.encode(out);
    }
    fn decode(input: &mut Reader, field: &'static str) -> Result<T, DecodeError> {
        T::decode(input, field)
    }
}

/// A run of bytes (u32 length, then the bytes) of at most `MAX` bytes,
/// sliced out of the frame without a copy. A declared length over `MAX`,
/// or over the bytes left, is refused from the prefix.
///
/// `Bytes` has no [`Wire`] encoding of its own, so that every byte run on
/// the wire says what caps it.
pub enum Capped<const MAX: usize> {}

impl<const MAX: usize> WireAs<Bytes> for Capped<MAX> {
    const MIN_BYTES: usize = 4;
    fn encode(value: &Bytes, out: &mut Writer<'_>) {
        out.bytes(value);
    }
    fn decode(input: &mut Reader, field: &'static str) -> Result<Bytes, DecodeError> {
        input.bytes(field, MAX)
    }
}

/// Runs of bytes written back to back under one u32 length (their sum), at
/// most `MAX` bytes in all. The reader cannot tell where one ended: it gets
/// one run, sliced out without a copy.
pub enum Joined<const MAX: usize> {}

impl<const MAX: usize> WireAs<Vec<Bytes>> for Joined<MAX> {
    const MIN_BYTES: usize = 4;
    fn encode(value: &Vec<Bytes>, out: &mut Writer<'_>) {
        out.count(value.iter().map(Bytes::len).sum());
        for run in value {
            out.raw(run);
        }
    }
    fn decode(input: &mut Reader, field: &'static str) -> Result<Vec<Bytes>, DecodeError> {
        Ok(vec![input.bytes(field, MAX)?])
    }
}

/// An option as a bool, then the value only when it is there (where the
/// plain `Option<T>` writes a default in its place).
pub enum IfPresent {}

impl<T: Wire> WireAs<Option<T>> for IfPresent {
    const MIN_BYTES: usize = 1;
    fn encode(value: &Option<T>, out: &mut Writer<'_>) {
        out.bool(value.is_some());
        if let Some(value) = value {
            value.encode(out);
        }
    }
    fn decode(input: &mut Reader, field: &'static str) -> Result<Option<T>, DecodeError> {
        match input.bool(field)? {
            true => Ok(Some(T::decode(input, field)?)),
            false => Ok(None),
        }
    }
}

macro_rules! wire_primitive {
    ($($ty:ident $bytes:literal),* $(,)?) => {$(
        impl Wire for $ty {
            const MIN_BYTES: usize = $bytes;
            fn encode(&self, out: &mut Writer<'_>) {
                out.$ty(*self);
            }
            fn decode(input: &mut Reader, field: &'static str) -> Result<Self, DecodeError> {
                input.$ty(field)
            }
        }
    )*};
}

wire_primitive!(u8 1, i8 1, u16 2, i16 2, u32 4, u64 8, i64 8, u128 16, bool 1);

/// The bits of the i32 as a u32.
impl Wire for i32 {
    const MIN_BYTES: usize = 4;
    fn encode(&self, out: &mut Writer<'_>) {
        out.u32(*self as u32);
    }
    fn decode(input: &mut Reader, field: &'static str) -> Result<Self, DecodeError> {
        Ok(input.u32(field)? as i32)
    }
}

/// UTF-8, at most [`STRING_BYTES_MAX`](super::codec::STRING_BYTES_MAX)
/// bytes.
impl Wire for String {
    const MIN_BYTES: usize = 4;
    fn encode(&self, out: &mut Writer<'_>) {
        out.string(self);
    }
    fn decode(input: &mut Reader, field: &'static str) -> Result<Self, DecodeError> {
        input.string(field)
    }
}

/// As its u16; a code this build does not know reads as `Internal`.
impl Wire for ErrorCode {
    const MIN_BYTES: usize = 2;
    fn encode(&self, out: &mut Writer<'_>) {
        out.u16(*self as u16);
    }
    fn decode(input: &mut Reader, field: &'static str) -> Result<Self, DecodeError> {
        Ok(ErrorCode::from_u16(input.u16(field)?))
    }
}

/// A u32 count, then the entries; the count is checked against
/// [`LIST_ENTRIES_MAX`](super::codec::LIST_ENTRIES_MAX) and against the
/// bytes left before the vector is allocated.
impl<T: Wire> Wire for Vec<T> {
    const MIN_BYTES: usize = 4;
    fn encode(&self, out: &mut Writer<'_>) {
        out.list(self, |out, entry| entry.encode(out));
    }
    fn decode(input: &mut Reader, field: &'static str) -> Result<Self, DecodeError> {
        input.list(field, T::MIN_BYTES, |input| T::decode(input, field))
    }
}

/// A bool, then a `T` whether or not it is there (`T::default()` when not),
/// so the option's size does not depend on its presence. A value after a
/// false bool is read and dropped.
impl<T: Wire + Default> Wire for Option<T> {
    const MIN_BYTES: usize = 1 + T::MIN_BYTES;
    fn encode(&self, out: &mut Writer<'_>) {
        out.bool(self.is_some());
        match self {
            Some(value) => value.encode(out),
            None => T::default().encode(out),
        }
    }
    fn decode(input: &mut Reader, field: &'static str) -> Result<Self, DecodeError> {
        let present = input.bool(field)?;
        let value = T::decode(input, field)?;
        Ok(present.then_some(value))
    }
}

impl<A: Wire, B: Wire> Wire for (A, B) {
    const MIN_BYTES: usize = A::MIN_BYTES + B::MIN_BYTES;
    fn encode(&self, out: &mut Writer<'_>) {
        self.0.encode(out);
        self.1.encode(out);
    }
    fn decode(input: &mut Reader, field: &'static str) -> Result<Self, DecodeError> {
        Ok((A::decode(input, field)?, B::decode(input, field)?))
    }
}

impl<A: Wire, B: Wire, C: Wire> Wire for (A, B, C) {
    const MIN_BYTES: usize = A::MIN_BYTES + B::MIN_BYTES + C::MIN_BYTES;
    fn encode(&self, out: &mut Writer<'_>) {
        self.0.encode(out);
        self.1.encode(out);
        self.2.encode(out);
    }
    fn decode(input: &mut Reader, field: &'static str) -> Result<Self, DecodeError> {
        Ok((
            A::decode(input, field)?,
            B::decode(input, field)?,
            C::decode(input, field)?,
        ))
    }
}

/// The codec of a field: [`Plain`] unless one is named after `as`.
macro_rules! wire_field_codec {
    () => {
        $crate::native::wire::Plain
    };
    ($codec:ty) => {
        $codec
    };
}

/// Defines a struct and its [`Wire`] implementation from one field list.
///
/// The fields are written in the order given and read back in that order;
/// a field's error names it. `MIN_BYTES` is the sum of the fields'. A field
/// with another encoding than its type's names a [`WireAs`] after `as`:
///
/// ```text
/// wire_struct! {
///     #[derive(Debug, Clone, PartialEq, Eq)]
///     pub struct ProducePartition {
///         pub partition: u32,
///         pub batch: Bytes as Capped<BATCH_BYTES_MAX>,
///     }
/// }
/// ```
macro_rules! wire_struct {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $(
                $(#[$field_meta:meta])*
                $field_vis:vis $field:ident : $ty:ty $(as $codec:ty)?
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis struct $name {
            $(
                $(#[$field_meta])*
                $field_vis $field: $ty,
            )*
        }

        impl $crate::native::wire::Wire for $name {
            const MIN_BYTES: usize = 0 $(
                + <$crate::native::wire::wire_field_codec!($($codec)?)
                    as $crate::native::wire::WireAs<$ty>>::MIN_BYTES
            )*;

            #[allow(unused_variables)]
            fn encode(&self, out: &mut $crate::native::codec::Writer<'_>) {
                $(
                    <$crate::native::wire::wire_field_codec!($($codec)?)
                        as $crate::native::wire::WireAs<$ty>>::encode(&self.$field, out);
                )*
            }

            #[allow(unused_variables)]
            fn decode(
                input: &mut $crate::native::codec::Reader,
                field: &'static str,
            ) -> Result<Self, $crate::native::codec::DecodeError> {
                // A struct expression evaluates its fields in the order
                // written: the order they were encoded in.
                Ok($name {
                    $(
                        $field: <$crate::native::wire::wire_field_codec!($($codec)?)
                            as $crate::native::wire::WireAs<$ty>>::decode(
                                input,
                                stringify!($field),
                            )?,
                    )*
                })
            }
        }
    };
}

pub(crate) use wire_field_codec;
pub(crate) use wire_struct;

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;

    wire_struct! {
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        struct Sample {
            id: u32,
            name: String,
            tags: Vec<(String, u16)>,
            maybe: Option<u64>,
            listed: Option<Vec<u8>> as IfPresent,
            payload: Bytes as Capped<8>,
            runs: Vec<Bytes> as Joined<16>,
        }
    }

    fn encode<T: Wire>(value: &T) -> Bytes {
        let mut out = BytesMut::new();
        value.encode(&mut Writer::new(&mut out));
        out.freeze()
    }

    fn decode<T: Wire>(bytes: Bytes) -> Result<T, DecodeError> {
        let mut input = Reader::new(bytes);
        let value = T::decode(&mut input, "value")?;
        input.finish()?;
        Ok(value)
    }

    #[test]
    fn a_struct_takes_at_least_the_sum_of_its_fields_least_sizes() {
        // 4 + 4 + 4 + (1 + 8) + 1 + 4 + 4
        assert_eq!(Sample::MIN_BYTES, 30);
        assert_eq!(encode(&Sample::default()).len(), Sample::MIN_BYTES);
        assert_eq!(<(String, u16)>::MIN_BYTES, 6);
        assert_eq!(<(u16, u16, u16)>::MIN_BYTES, 6);
        assert_eq!(<Option<String>>::MIN_BYTES, 5);
    }

    #[test]
    fn a_struct_reads_back_what_it_wrote_and_no_cut_of_it() {
        let sample = Sample {
            id: 7,
            name: "seven".to_string(),
            tags: vec![("a".to_string(), 1), ("b".to_string(), 2)],
            maybe: Some(9),
            listed: Some(vec![1, 2, 3]),
            payload: Bytes::from_static(b"12345678"),
            runs: vec![Bytes::from_static(b"ab"), Bytes::from_static(b"c")],
        };
        let bytes = encode(&sample);
        let back: Sample = decode(bytes.clone()).unwrap();
        assert_eq!(
            back,
            Sample {
                runs: vec![Bytes::from_static(b"abc")],
                ..sample.clone()
            }
        );
        for cut in 0..bytes.len() {
            assert!(
                decode::<Sample>(bytes.slice(..cut)).is_err(),
                "cut at {cut}"
            );
        }
        let absent = Sample {
            listed: None,
            maybe: None,
            ..Sample::default()
        };
        let bytes = encode(&absent);
        assert_eq!(bytes.len(), Sample::MIN_BYTES);
        assert_eq!(decode::<Sample>(bytes).unwrap().maybe, None);
    }

    #[test]
    fn a_capped_run_over_its_cap_is_refused_and_names_its_field() {
        let mut out = BytesMut::new();
        let mut writer = Writer::new(&mut out);
        Sample::default().id.encode(&mut writer);
        String::new().encode(&mut writer);
        Vec::<(String, u16)>::new().encode(&mut writer);
        None::<u64>.encode(&mut writer);
        writer.bool(false);
        writer.bytes(b"123456789");
        writer.count(0);
        assert_eq!(
            decode::<Sample>(out.freeze()),
            Err(DecodeError::OverCap {
                field: "payload",
                declared: 9,
                max: 8
            })
        );
    }

    #[test]
    fn a_list_longer_than_the_bytes_left_is_refused_before_allocating() {
        let mut out = BytesMut::new();
        let mut writer = Writer::new(&mut out);
        writer.count(3);
        writer.raw(&[0; 17]);
        assert_eq!(
            decode::<Vec<(String, u16)>>(out.freeze()),
            Err(DecodeError::Truncated {
                field: "value",
                needed: 18,
                available: 17
            })
        );
    }

    #[test]
    fn a_bool_other_than_zero_or_one_is_refused() {
        assert_eq!(
            decode::<Option<u64>>(Bytes::from_static(&[2, 0, 0, 0, 0, 0, 0, 0, 0])),
            Err(DecodeError::InvalidValue {
                field: "value",
                value: 2
            })
        );
    }
}
