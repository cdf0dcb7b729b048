//! [`Wire`]: how the engine turns protocol messages and safety state into bytes and back.
//!
//! Everything a node sends or persists is an rkyv 0.8 archive. Received bytes are only
//! read through [`olympus_types::frame::decode`], which bounds the length and runs
//! bytecheck validation before any field is touched.

use olympus_net::Frame;
use olympus_types::frame::{self, FrameError};
use rkyv::api::high::{HighSerializer, HighValidator};
use rkyv::bytecheck::CheckBytes;
use rkyv::de::Pool;
use rkyv::rancor::{self, Strategy};
use rkyv::ser::allocator::ArenaHandle;
use rkyv::util::AlignedVec;
use rkyv::{Archive, Deserialize, Serialize};

/// A value with a validated rkyv encoding. Implemented for every rkyv type.
pub trait Wire: Sized {
    /// The archive (no length prefix).
    fn to_bytes(&self) -> Result<AlignedVec, FrameError>;
    /// A network frame holding the archive: encoded once, shared by `Arc` per peer.
    fn to_frame(&self) -> Result<Frame, FrameError>;
    /// Validates and decodes untrusted bytes.
    fn from_bytes(bytes: &[u8]) -> Result<Self, FrameError>;
}

impl<T> Wire for T
where
    T: Archive + for<'a> Serialize<HighSerializer<AlignedVec, ArenaHandle<'a>, rancor::Error>>,
    T::Archived: for<'a> CheckBytes<HighValidator<'a, rancor::Error>>
        + Deserialize<T, Strategy<Pool, rancor::Error>>,
{
    fn to_bytes(&self) -> Result<AlignedVec, FrameError> {
        frame::encode(self)
    }
    fn to_frame(&self) -> Result<Frame, FrameError> {
        Frame::encode(self)
    }
    fn from_bytes(bytes: &[u8]) -> Result<Self, FrameError> {
        frame::decode(bytes)
    }
}
