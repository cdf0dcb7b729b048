//! The frame codec: length-prefixed rkyv messages, validated before use.
//!
//! A frame is `[len: u32 little-endian][len bytes of rkyv archive]`. The reader refuses a
//! length above [`MAX_FRAME_BYTES`] before buffering it, and [`decode`] runs bytecheck
//! validation over the archive before any field is read. Both return errors, never panic,
//! whatever the bytes.

use crate::limits::MAX_FRAME_BYTES;
use rkyv::api::high::{HighSerializer, HighValidator};
use rkyv::bytecheck::CheckBytes;
use rkyv::de::Pool;
use rkyv::rancor::{self, Strategy};
use rkyv::ser::allocator::ArenaHandle;
use rkyv::util::AlignedVec;
use rkyv::{Archive, Deserialize, Serialize};

/// Bytes of the length prefix.
pub const LEN_PREFIX: usize = 4;

/// Why a frame was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum FrameError {
    #[error("frame of {0} bytes exceeds the limit of {MAX_FRAME_BYTES} bytes")]
    TooLarge(usize),
    #[error("frame failed validation: {0}")]
    Invalid(String),
    #[error("could not encode: {0}")]
    Encode(String),
}

/// Serializes `value` into an rkyv archive (no length prefix).
pub fn encode<T>(value: &T) -> Result<AlignedVec, FrameError>
where
    T: for<'a> Serialize<HighSerializer<AlignedVec, ArenaHandle<'a>, rancor::Error>>,
{
    let bytes =
        rkyv::to_bytes::<rancor::Error>(value).map_err(|e| FrameError::Encode(e.to_string()))?;
    if bytes.len() > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge(bytes.len()));
    }
    Ok(bytes)
}

/// Serializes `value` into a complete frame: length prefix then archive.
pub fn encode_frame<T>(value: &T) -> Result<Vec<u8>, FrameError>
where
    T: for<'a> Serialize<HighSerializer<AlignedVec, ArenaHandle<'a>, rancor::Error>>,
{
    let body = encode(value)?;
    let mut out = Vec::with_capacity(LEN_PREFIX + body.len());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Validates and deserializes an archive (the frame body, without its prefix).
///
/// The bytes are copied into an aligned buffer when they are not suitably aligned, since
/// rkyv reads fields in place.
pub fn decode<T>(body: &[u8]) -> Result<T, FrameError>
where
    T: Archive,
    T::Archived: for<'a> CheckBytes<HighValidator<'a, rancor::Error>>
        + Deserialize<T, Strategy<Pool, rancor::Error>>,
{
    if body.len() > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge(body.len()));
    }
    let aligned;
    let bytes = if (body.as_ptr() as usize).is_multiple_of(16) {
        body
    } else {
        let mut v = AlignedVec::<16>::with_capacity(body.len());
        v.extend_from_slice(body);
        aligned = v;
        aligned.as_slice()
    };
    rkyv::from_bytes::<T, rancor::Error>(bytes).map_err(|e| FrameError::Invalid(e.to_string()))
}

/// Splits a byte stream into frame bodies. Feed it what the socket gave, then take frames
/// until it returns `Ok(None)`. After an error the stream is unusable: close the link.
#[derive(Default)]
pub struct FrameReader {
    buf: Vec<u8>,
    start: usize,
}

impl FrameReader {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends received bytes.
    pub fn extend(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received and not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next complete frame body, if one is buffered.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        let avail = &self.buf[self.start..];
        if avail.len() < LEN_PREFIX {
            return Ok(None);
        }
        let len = u32::from_le_bytes([avail[0], avail[1], avail[2], avail[3]]) as usize;
        if len > MAX_FRAME_BYTES {
            return Err(FrameError::TooLarge(len));
        }
        if avail.len() < LEN_PREFIX + len {
            return Ok(None);
        }
        let body = avail[LEN_PREFIX..LEN_PREFIX + len].to_vec();
        self.start += LEN_PREFIX + len;
        if self.start > 64 * 1024 && self.start * 2 > self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        Ok(Some(body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Batch, Transaction};

    #[test]
    fn frames_round_trip_through_the_reader_in_pieces() {
        let batches: Vec<Batch> = (0..5)
            .map(|i| {
                Batch::new(vec![Transaction {
                    client: i,
                    nonce: i,
                    payload: vec![i as u8; 7],
                }])
            })
            .collect();
        let mut stream = Vec::new();
        for b in &batches {
            stream.extend(encode_frame(b).unwrap());
        }
        let mut r = FrameReader::new();
        let mut out = Vec::new();
        for chunk in stream.chunks(3) {
            r.extend(chunk);
            while let Some(f) = r.next_frame().unwrap() {
                out.push(decode::<Batch>(&f).unwrap());
            }
        }
        assert_eq!(out, batches);
        assert_eq!(r.buffered(), 0);
    }

    #[test]
    fn oversized_length_is_refused_before_buffering() {
        let mut r = FrameReader::new();
        r.extend(&((MAX_FRAME_BYTES as u32) + 1).to_le_bytes());
        assert_eq!(
            r.next_frame(),
            Err(FrameError::TooLarge(MAX_FRAME_BYTES + 1))
        );
    }

    #[test]
    fn decode_rejects_garbage_and_unaligned_input_is_handled() {
        let b = Batch::new(vec![Transaction {
            client: 1,
            nonce: 2,
            payload: vec![3; 5],
        }]);
        let bytes = encode(&b).unwrap();
        let mut shifted = vec![0u8];
        shifted.extend_from_slice(&bytes);
        assert_eq!(decode::<Batch>(&shifted[1..]).unwrap(), b);
        assert!(decode::<Batch>(&[0xff; 3]).is_err());
    }
}
