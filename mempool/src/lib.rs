//! The mempool of olympus: batching, `Arc`-shared batches and the batch log.
//!
//! * [`batcher`] cuts client transactions into batches by bytes, count and time, drops
//!   repeated `(client, nonce)` pairs, bounds what it holds, and seals each batch once:
//!   encoded once (rkyv), hashed once (BLAKE3), shared by `Arc` from then on
//!   ([`SealedBatch`]). Sans-IO: time is an argument.
//! * [`log`] is the batch log that replaces rocksdb: append-only memory-mapped segment
//!   files with checksummed records, recovery that cuts a torn tail, an in-memory digest
//!   index, zero-copy reads, and pruning of whole segments below a watermark.
//! * [`safety`] holds [`DurableCell`], the crash-safe cell the engine persists protocol
//!   safety state through before a vote leaves the node.
//!
//! Dissemination (inline batches, digest-carrying proposals with fetch, Stratus proofs of
//! availability) comes with the networked parts of the engine.

pub mod batcher;
pub mod log;
pub mod safety;

pub use batcher::{Admission, Batcher, BatcherConfig, SealedBatch, SubmitError};
pub use log::{
    BatchLog, FsyncPolicy, Location, LogBytes, LogConfig, LogError, Recovery, Seq, SyncJob,
};
pub use safety::{CellError, DurableCell};
