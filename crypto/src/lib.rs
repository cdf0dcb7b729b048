//! Signatures, aggregation and certificate verification for olympus.
//!
//! The wire types of `olympus-types` ([`Signature`](olympus_types::Signature),
//! [`PublicKeyBytes`](olympus_types::PublicKeyBytes),
//! [`AggregateSignature`](olympus_types::AggregateSignature) = signer bitmap + one
//! signature) are plain bytes; this crate gives them meaning. What is signed is always a
//! 32-byte [`Digest`](olympus_types::Digest) of a domain-separated statement built with
//! [`olympus_types::Statement`], so a signature for one kind of message can never be
//! replayed as another.
//!
//! - [`Keypair`]: a replica's own key; signs digests and proves possession of its key.
//! - [`Committee`]: every member's public key, parsed and validated once; verifies single
//!   signatures, certificates over one message ([`Committee::verify_aggregate`]) and over
//!   one message per signer ([`Committee::verify_aggregate_multi`]), and builds
//!   certificates from votes, aggregate-then-verify ([`Committee::aggregate`]).
//! - [`CertCache`]: remembers certificates that verified, so one seen many times costs one
//!   pairing check.
//!
//! # Ciphersuite
//!
//! BLS12-381 through `blst`, **min_sig**: signatures are G1 points (48 bytes compressed),
//! public keys G2 points (96 bytes compressed). Every replica signs a vote and checks a
//! certificate on every block, and in this variant the signing side is the cheap group:
//! signing (hash to G1, one G1 multiplication) costs about a third of min_pk's, a
//! signature travels in half the bytes, and a check saves the G2 hash and group check.
//! The costlier G2 arithmetic falls on public keys, which are validated once per
//! committee and summed once per signer set (a small cache). The IETF
//! **proof-of-possession** ciphersuite (`draft-irtf-cfrg-bls-signature`): signatures under
//! [`DST_SIG`] (`BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_POP_`) and proofs of possession
//! under [`DST_POP`]. Aggregating signatures on the same message is safe from rogue-key
//! attacks only because each member's proof of possession was checked: build committees
//! from configuration with [`Committee::with_proofs`].
//!
//! Public keys are validated (on the curve, in G2, not infinity) once, when the committee
//! is built, and never again. Every signature from the network is decoded and checked to
//! be in G1 (for a certificate: the aggregate; for [`Committee::aggregate`]: the sum of
//! the votes, then — only if the sum fails — sums of halves and single votes while
//! bisecting for the bad ones). Nothing here panics on any input
//! bytes: bad encodings, points off the curve or outside the subgroup, the point at
//! infinity and out-of-range signer ids are all errors.
//!
//! Verification runs on the calling thread (one multi-Miller loop and one final
//! exponentiation per check), never on `blst`'s internal thread pool, so a verifying
//! shard of the engine does its own work.
//!
//! Rough costs on one core of the development machine (`cargo bench -p olympus-crypto`
//! prints them): signing about 160 µs (min_pk: about 400 µs); a pairing check about
//! 1.05 ms whatever the number of signers (min_pk: about 1.3 ms), so
//! [`Committee::verify`] ≈ [`Committee::verify_aggregate`]; decompressing one signature
//! about 15 µs; a cache hit about 0.5 µs; the insecure scheme about 0.3 µs per signature.
//!
//! # The insecure scheme
//!
//! [`Scheme::Insecure`] is a **forgeable, insecure** stand-in for the deterministic
//! simulator only: a "signature" is a BLAKE3 hash of the signer's *public* key and the
//! message, so anyone can produce anyone's signature. It runs through exactly the same
//! API (runtime dispatch on [`Scheme`], no generics), so the simulator exercises the same
//! certificate logic thousands of times faster. **Never use it outside the simulator**;
//! the engine and its tests use [`Scheme::Bls`].
//!
//! # The certificate cache
//!
//! [`Committee::verify_aggregate_cached`] consults a [`CertCache`] owned by the caller
//! (one per shard, or shared behind an `Arc`). Its invariants: an entry is added only
//! after a certificate fully verified; an entry's key binds the committee fingerprint,
//! the message(s), the signer set and the signature bytes; a hit skips only the pairing —
//! membership and the threshold are checked on every call; the cache holds at most its
//! capacity ([`DEFAULT_CERT_CACHE_CAPACITY`] by default) and evicts the oldest entry
//! first. The committee also keeps a small cache of aggregate public keys per signer set
//! ([`APK_CACHE_CAPACITY`]), since the same quorum tends to repeat.

#![deny(clippy::undocumented_unsafe_blocks)]

mod bls;
mod cache;
mod committee;
mod insecure;
mod keys;
#[cfg(test)]
mod tests;

pub use bls::{DST_POP, DST_SIG};
pub use cache::{CertCache, DEFAULT_CERT_CACHE_CAPACITY};
pub use committee::{generate_committee, Claim, Committee, APK_CACHE_CAPACITY};
pub use keys::Keypair;

use olympus_types::NodeId;

/// The signature scheme of a committee and its keys, chosen at run time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// BLS12-381, min_sig, proof-of-possession ciphersuite. The only scheme for real use.
    Bls,
    /// **Insecure and forgeable**: for the deterministic simulator only (see the crate
    /// documentation).
    Insecure,
}

impl Scheme {
    /// `"bls"` or `"insecure"`.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Bls => "bls",
            Scheme::Insecure => "insecure",
        }
    }

    /// The scheme called `name` (as printed by [`Scheme::name`]).
    pub fn from_name(name: &str) -> Option<Scheme> {
        match name {
            "bls" => Some(Scheme::Bls),
            "insecure" => Some(Scheme::Insecure),
            _ => None,
        }
    }
}

impl std::fmt::Display for Scheme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a key, signature or certificate was refused.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum CryptoError {
    /// A committee member's public key is not a valid G2 point (bad encoding, not on
    /// the curve, not in the subgroup, or infinity).
    #[error("invalid public key for {0}")]
    InvalidPublicKey(NodeId),
    /// The signature does not decode, is not in G2, is infinity or does not verify.
    #[error("invalid signature")]
    InvalidSignature,
    /// A signer id outside the committee.
    #[error("{0} is not a committee member")]
    UnknownSigner(NodeId),
    /// Fewer distinct signers than required (a certificate always needs at least one).
    #[error("not enough signers: have {have}, need {need}")]
    NotEnoughSigners { have: usize, need: usize },
    /// The same signer listed twice.
    #[error("{0} is listed twice")]
    DuplicateSigner(NodeId),
    /// A member's proof of possession does not verify.
    #[error("bad proof of possession for {0}")]
    BadProofOfPossession(NodeId),
    /// Secret key bytes that are not a valid secret (for BLS: zero or not below the
    /// group order).
    #[error("invalid secret key bytes")]
    BadSecret,
    /// A member has the same public key as an earlier one.
    #[error("{0} has the same public key as an earlier member")]
    DuplicatePublicKey(NodeId),
    /// A committee must have between 1 and `max` members.
    #[error("committee of {size} members: must have 1 to {max}")]
    BadCommitteeSize { size: usize, max: usize },
    /// `Committee::with_proofs` got a different number of keys and proofs.
    #[error("{keys} public keys but {proofs} proofs of possession")]
    ProofCountMismatch { keys: usize, proofs: usize },
    /// The signers listed with their messages differ from the certificate's signer set.
    #[error("the certificate's signer set does not match the signed messages")]
    SignerMismatch,
}
