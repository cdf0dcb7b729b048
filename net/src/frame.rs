//! Outgoing frames: encoded once, shared by reference count, never copied per peer.
//!
//! A [`Frame`] holds the complete wire bytes of one frame — the 4-byte little-endian
//! length prefix of [`olympus_types::frame`] followed by the body — in one `Arc`'d
//! allocation. Cloning a frame clones the `Arc`; a broadcast to n peers queues n
//! handles to the same bytes, and the writer hands those very bytes to the kernel with a
//! vectored `sendmsg` (see [`crate::rt`]), so the body is never copied in user space
//! after it was encoded. [`Frame::handles`] exposes the reference count so tests can see
//! this.

use crate::queue::Weighted;
use olympus_types::frame::{encode_frame, FrameError, LEN_PREFIX};
use olympus_types::limits::MAX_FRAME_BYTES;
use rkyv::api::high::HighSerializer;
use rkyv::rancor;
use rkyv::ser::allocator::ArenaHandle;
use rkyv::util::AlignedVec;
use std::sync::Arc;

/// One frame ready for the wire: `[len u32 LE][body]`, immutable and cheaply cloned.
#[derive(Clone)]
pub struct Frame(Arc<Vec<u8>>);

impl Frame {
    /// Serializes `value` (rkyv) into a frame: one encoding, one allocation.
    pub fn encode<T>(value: &T) -> Result<Frame, FrameError>
    where
        T: for<'a> rkyv::Serialize<HighSerializer<AlignedVec, ArenaHandle<'a>, rancor::Error>>,
    {
        Ok(Frame(Arc::new(encode_frame(value)?)))
    }

    /// A frame around an already encoded body (copied once, here).
    pub fn from_body(body: &[u8]) -> Result<Frame, FrameError> {
        if body.len() > MAX_FRAME_BYTES {
            return Err(FrameError::TooLarge(body.len()));
        }
        let mut wire = Vec::with_capacity(LEN_PREFIX + body.len());
        wire.extend_from_slice(&(body.len() as u32).to_le_bytes());
        wire.extend_from_slice(body);
        Ok(Frame(Arc::new(wire)))
    }

    /// A frame around complete wire bytes (prefix included), as made by
    /// [`olympus_types::frame::encode_frame`]; not copied. The prefix must match.
    pub fn from_wire(wire: Vec<u8>) -> Result<Frame, FrameError> {
        let Some(prefix) = wire.first_chunk::<LEN_PREFIX>() else {
            return Err(FrameError::Invalid(
                "frame shorter than its length prefix".into(),
            ));
        };
        let len = u32::from_le_bytes(*prefix) as usize;
        if len > MAX_FRAME_BYTES {
            return Err(FrameError::TooLarge(len));
        }
        if len != wire.len() - LEN_PREFIX {
            return Err(FrameError::Invalid(format!(
                "length prefix says {len} bytes, body has {}",
                wire.len() - LEN_PREFIX
            )));
        }
        Ok(Frame(Arc::new(wire)))
    }

    /// The bytes that go on the wire (prefix and body).
    pub fn wire(&self) -> &[u8] {
        &self.0
    }

    /// The body (what the receiver gets).
    pub fn body(&self) -> &[u8] {
        &self.0[LEN_PREFIX..]
    }

    /// Bytes on the wire.
    pub fn wire_len(&self) -> usize {
        self.0.len()
    }

    /// How many handles share these bytes (this one included): after a broadcast to n
    /// peers and before the writers ran, `n + 1`.
    pub fn handles(&self) -> usize {
        Arc::strong_count(&self.0)
    }

    /// Whether two frames share the same bytes.
    pub fn same_bytes(&self, other: &Frame) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Weighted for Frame {
    fn weight(&self) -> usize {
        self.wire_len()
    }
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Frame({} bytes)", self.body().len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_their_prefix() {
        let f = Frame::from_body(b"hello").unwrap();
        assert_eq!(f.wire(), b"\x05\x00\x00\x00hello");
        assert_eq!(f.body(), b"hello");
        let g = Frame::from_wire(f.wire().to_vec()).unwrap();
        assert_eq!(g.body(), b"hello");
        assert!(!g.same_bytes(&f));
        let h = f.clone();
        assert!(h.same_bytes(&f));
        assert_eq!(f.handles(), 2);
        assert!(Frame::from_wire(vec![9, 0, 0, 0, 1]).is_err());
        assert!(Frame::from_wire(vec![1, 0]).is_err());
        let batch = olympus_types::Batch::new(vec![]);
        let e = Frame::encode(&batch).unwrap();
        assert_eq!(
            olympus_types::frame::decode::<olympus_types::Batch>(e.body()).unwrap(),
            batch
        );
    }
}
