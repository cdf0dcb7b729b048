//! The simulator's **insecure, forgeable** signature scheme.
//!
//! # Warning
//!
//! A "signature" here is a hash of the signer's *public* key and the message, so anyone
//! who knows the public key — that is, everyone — can compute any node's signature on
//! anything. It exists only so that the deterministic simulator can run thousands of
//! seeds quickly with the same code paths as real BLS (sign, verify, aggregate,
//! certificates). It must never be selected for a real deployment; the engine and its
//! tests always use [`Scheme::Bls`](crate::Scheme::Bls).
//!
//! - secret: 32 bytes;
//! - public key: 96 bytes of BLAKE3-XOF(ctx_pk; secret), as many as a BLS key;
//! - signature: 48 bytes of BLAKE3-XOF(ctx_sig; public || message);
//! - proof of possession: 48 bytes of BLAKE3-XOF(ctx_pop; public);
//! - aggregate: XOR of the signatures (a set of distinct signers, so nothing cancels);
//!   an aggregate verifies if it equals the XOR of the signers' expected signatures.

use olympus_types::{PublicKeyBytes, Signature, PUBLIC_KEY_LEN, SIGNATURE_LEN};

const CTX_PUBLIC: &str = "olympus 2025 insecure-sim-scheme v1 public key";
const CTX_SIGN: &str = "olympus 2025 insecure-sim-scheme v1 signature";
const CTX_POP: &str = "olympus 2025 insecure-sim-scheme v1 proof of possession";

pub(crate) fn public(secret: &[u8; 32]) -> PublicKeyBytes {
    let mut h = blake3::Hasher::new_derive_key(CTX_PUBLIC);
    h.update(secret);
    let mut out = [0u8; PUBLIC_KEY_LEN];
    h.finalize_xof().fill(&mut out);
    PublicKeyBytes(out)
}

/// The (forgeable) signature of the holder of `public` on `msg`.
pub(crate) fn sign(public: &PublicKeyBytes, msg: &[u8; 32]) -> Signature {
    let mut h = blake3::Hasher::new_derive_key(CTX_SIGN);
    h.update(&public.0);
    h.update(msg);
    let mut out = [0u8; SIGNATURE_LEN];
    h.finalize_xof().fill(&mut out);
    Signature(out)
}

pub(crate) fn proof_of_possession(public: &PublicKeyBytes) -> Signature {
    let mut h = blake3::Hasher::new_derive_key(CTX_POP);
    h.update(&public.0);
    let mut out = [0u8; SIGNATURE_LEN];
    h.finalize_xof().fill(&mut out);
    Signature(out)
}

/// XOR-accumulates `sig` into `acc`.
pub(crate) fn xor_into(acc: &mut Signature, sig: &Signature) {
    for (a, b) in acc.0.iter_mut().zip(sig.0.iter()) {
        *a ^= b;
    }
}
