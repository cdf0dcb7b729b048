//! Wire types of olympus: ids, digests, transactions, batches, blocks, signatures,
//! certificates, the named limits on all of them, and the frame codec that validates
//! received bytes before anything reads them.
//!
//! Everything that crosses the network is an rkyv 0.8 type. Received bytes are only
//! ever read through [`frame::decode`], which bounds the length and runs bytecheck
//! validation first; `access_unchecked` is never used on bytes from a peer.
//!
//! Digests that are signed or compared across nodes are BLAKE3-256 ([`Digest`]).

pub mod block;
pub mod cert;
pub mod client;
pub mod config;
pub mod digest;
pub mod frame;
pub mod ids;
pub mod limits;
pub mod tx;

pub use block::{Block, Payload};
pub use cert::{
    AggregateSignature, PublicKeyBytes, QuorumCert, Signature, SignerSet, PUBLIC_KEY_LEN,
    SIGNATURE_LEN,
};
pub use digest::{Digest, Statement};
pub use ids::{Height, NodeId, View};
pub use tx::{Batch, Transaction};
