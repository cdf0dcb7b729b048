//! The BLS12-381 primitives olympus needs, on top of `blst` (min_sig: signatures in G1,
//! public keys in G2).
//!
//! Everything that can see bytes from a peer goes through [`decode_sig`] /
//! [`decode_sig_on_curve`] / [`decode_pk`], which never panic and reject bad encodings,
//! points off the curve and (where asked) points outside the prime-order subgroup and
//! the point at infinity.
//!
//! Verification does not use `blst`'s `Signature::verify` family: with the `std`
//! feature those hand every check to a global thread pool, even a single pairing. In a
//! thread-per-core engine the verifying shard should do its own work, so [`pairing_check`]
//! runs one multi-Miller loop and one final exponentiation on the calling thread. This
//! file holds the crate's only `unsafe` code: FFI calls into `blst` on values we own.

use blst::min_sig::{
    AggregatePublicKey, AggregateSignature as BlstAggregateSignature, PublicKey, SecretKey,
    Signature as BlstSignature,
};
use blst::{blst_p1, blst_p1_affine, blst_p2, blst_p2_affine, Pairing};
use olympus_types::{PublicKeyBytes, Signature};
use std::sync::OnceLock;

/// Domain separation tag for signatures: the IETF BLS proof-of-possession ciphersuite
/// with signatures in G1 (`draft-irtf-cfrg-bls-signature`, section 4.2.3).
pub const DST_SIG: &[u8] = b"BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_POP_";
/// Domain separation tag for proofs of possession in the same ciphersuite.
pub const DST_POP: &[u8] = b"BLS_POP_BLS12381G1_XMD:SHA-256_SSWU_RO_POP_";

/// A message hashed to G1 (affine), ready for a pairing.
#[derive(Clone, Copy)]
pub(crate) struct HashedMsg(blst_p1_affine);

/// Hashes `msg` to G1 with `dst` (hash_to_curve, `XMD:SHA-256_SSWU_RO`), exactly as
/// `SecretKey::sign` does before multiplying by the secret.
pub(crate) fn hash(msg: &[u8], dst: &[u8]) -> HashedMsg {
    let mut p = blst_p1::default();
    let mut a = blst_p1_affine::default();
    let aug: &[u8] = &[];
    // SAFETY: `p` and `a` are valid, exclusively borrowed outputs; blst reads exactly
    // `msg.len()`, `dst.len()` and `aug.len()` bytes from the three input slices.
    unsafe {
        blst::blst_hash_to_g1(
            &mut p,
            msg.as_ptr(),
            msg.len(),
            dst.as_ptr(),
            dst.len(),
            aug.as_ptr(),
            aug.len(),
        );
        blst::blst_p1_to_affine(&mut a, &p);
    }
    HashedMsg(a)
}

/// The negated generator of G2, so that `e(H, pk) == e(sig, g2)` becomes one product of
/// two Miller loops: `e(H, pk) * e(sig, -g2) == 1`.
fn neg_g2() -> &'static blst_p2_affine {
    static NEG_G2: OnceLock<blst_p2_affine> = OnceLock::new();
    NEG_G2.get_or_init(|| {
        let mut p = blst_p2::default();
        let mut a = blst_p2_affine::default();
        // SAFETY: `blst_p2_affine_generator` returns a pointer to a static constant;
        // `p` and `a` are valid, exclusively borrowed locals.
        unsafe {
            blst::blst_p2_from_affine(&mut p, blst::blst_p2_affine_generator());
            blst::blst_p2_cneg(&mut p, true);
            blst::blst_p2_to_affine(&mut a, &p);
        }
        a
    })
}

fn pk_is_infinity(pk: &PublicKey) -> bool {
    let a: &blst_p2_affine = pk.into();
    // SAFETY: `a` is a valid reference for the duration of the call; blst only reads it.
    unsafe { blst::blst_p2_affine_is_inf(a) }
}

fn sig_is_infinity(sig: &BlstSignature) -> bool {
    let a: &blst_p1_affine = sig.into();
    // SAFETY: as above.
    unsafe { blst::blst_p1_affine_is_inf(a) }
}

/// Checks `prod_i e(H(m_i), pk_i) == e(sig, g2)` with one multi-Miller loop and one final
/// exponentiation, on the calling thread.
///
/// The caller must have checked that `sig` is in G1 (see [`decode_sig`]) and that every
/// public key that went into the `pk_i` was validated (done once, in
/// [`crate::Committee::new`]). An infinite `pk_i` or `sig` is rejected here: a sum of
/// keys can cancel out, and `e(H, O) == e(O, g2)` would otherwise "verify".
pub(crate) fn pairing_check(terms: &[(HashedMsg, PublicKey)], sig: &BlstSignature) -> bool {
    if terms.is_empty() || sig_is_infinity(sig) {
        return false;
    }
    if terms.iter().any(|(_, pk)| pk_is_infinity(pk)) {
        return false;
    }
    // The DST is unused by `raw_aggregate` (messages are hashed already).
    let mut ctx = Pairing::new(true, DST_SIG);
    for (h, pk) in terms {
        ctx.raw_aggregate(pk.into(), &h.0);
    }
    ctx.raw_aggregate(neg_g2(), sig.into());
    ctx.commit();
    ctx.finalverify(None)
}

/// One signature of a batch: the hashed message, the decoded (group-checked) signature,
/// and its 128-bit coefficient (little-endian, non-zero).
pub(crate) struct BatchItem {
    pub msg: HashedMsg,
    pub sig: BlstSignature,
    pub coefficient: [u8; 16],
}

/// `r·P` for a G1 point `P` and a 128-bit little-endian scalar `r`, added into `acc`.
fn add_multiple(acc: &mut blst_p1, point: &blst_p1_affine, r: &[u8; 16]) {
    let mut p = blst_p1::default();
    let mut rp = blst_p1::default();
    let mut sum = blst_p1::default();
    // SAFETY: every pointer is to a valid, exclusively borrowed local or a shared
    // reference blst only reads; `blst_p1_mult` reads exactly 128 bits of `r`.
    unsafe {
        blst::blst_p1_from_affine(&mut p, point);
        blst::blst_p1_mult(&mut rp, &p, r.as_ptr(), 128);
        blst::blst_p1_add_or_double(&mut sum, acc, &rp);
    }
    *acc = sum;
}

fn to_affine(p: &blst_p1) -> blst_p1_affine {
    let mut a = blst_p1_affine::default();
    // SAFETY: `a` is a valid, exclusively borrowed local; blst only reads `p`.
    unsafe { blst::blst_p1_to_affine(&mut a, p) };
    a
}

/// Checks many single signatures at once (small-exponent batch verification): with the
/// coefficients `r_i`,
/// `prod_s e(sum_{i of s} r_i·H(m_i), pk_s) == e(sum_i r_i·sig_i, g2)` — one Miller loop
/// per signer plus one, and one final exponentiation, instead of two and one per
/// signature. A batch with a bad signature passes with probability about 2^-128 when the
/// coefficients are unpredictable to whoever chose the signatures (the caller derives
/// them by hashing the whole batch). Every signature must be in G1 (see [`decode_sig`]).
pub(crate) fn batch_check(groups: &[(PublicKey, Vec<BatchItem>)]) -> bool {
    let mut sig_sum = blst_p1::default(); // the point at infinity
    let mut terms = Vec::with_capacity(groups.len());
    for (pk, items) in groups {
        let mut msg_sum = blst_p1::default();
        for it in items {
            add_multiple(&mut msg_sum, &it.msg.0, &it.coefficient);
            add_multiple(&mut sig_sum, (&it.sig).into(), &it.coefficient);
        }
        terms.push((HashedMsg(to_affine(&msg_sum)), *pk));
    }
    pairing_check(&terms, &BlstSignature::from(to_affine(&sig_sum)))
}

/// Decodes and validates a public key (on the curve, in G2, not infinity).
pub(crate) fn decode_pk(pk: &PublicKeyBytes) -> Option<PublicKey> {
    PublicKey::key_validate(&pk.0).ok()
}

/// Decodes a signature received from anyone: on the curve, in G1, not infinity.
pub(crate) fn decode_sig(sig: &Signature) -> Option<BlstSignature> {
    let s = decode_sig_on_curve(sig)?;
    (s.subgroup_check() && !sig_is_infinity(&s)).then_some(s)
}

/// Decodes a signature checking only that it is a point on the curve. For signatures
/// that are summed first and group-checked as a sum (aggregate-then-verify), or that the
/// caller verified already.
pub(crate) fn decode_sig_on_curve(sig: &Signature) -> Option<BlstSignature> {
    BlstSignature::from_bytes(&sig.0).ok()
}

/// Whether `sig` is in G1 and not the point at infinity.
pub(crate) fn sig_is_valid_point(sig: &BlstSignature) -> bool {
    sig.subgroup_check() && !sig_is_infinity(sig)
}

/// Sums signatures (no group checks). `None` for an empty input.
pub(crate) fn sum_sigs<'a>(
    mut sigs: impl Iterator<Item = &'a BlstSignature>,
) -> Option<BlstSignature> {
    let mut acc = BlstAggregateSignature::from_signature(sigs.next()?);
    for s in sigs {
        // Without a group check `add_signature` cannot fail.
        acc.add_signature(s, false).ok()?;
    }
    Some(acc.to_signature())
}

/// Sums public keys that were validated already. `None` for an empty input.
pub(crate) fn sum_pks<'a>(mut pks: impl Iterator<Item = &'a PublicKey>) -> Option<PublicKey> {
    let mut acc = AggregatePublicKey::from_public_key(pks.next()?);
    for pk in pks {
        // Without validation `add_public_key` cannot fail.
        acc.add_public_key(pk, false).ok()?;
    }
    Some(acc.to_public_key())
}

/// Signs `msg` under `dst`.
pub(crate) fn sign(sk: &SecretKey, msg: &[u8], dst: &[u8]) -> Signature {
    Signature(sk.sign(msg, dst, &[]).compress())
}

/// The uncompressed encoding (x || y, big-endian) of a hashed message, for checking
/// hash-to-curve against published vectors.
#[cfg(test)]
pub(crate) fn uncompressed(h: &HashedMsg) -> [u8; 96] {
    BlstSignature::from(h.0).serialize()
}

/// Whether the G1 point `g1_key` and our G2 public key are `s·g1` and `s·g2` for one
/// scalar `s`: `e(g1_key, g2) == e(g1, pk)`.
#[cfg(test)]
pub(crate) fn same_secret(g1_key: &blst::min_pk::PublicKey, pk: &PublicKeyBytes) -> bool {
    let Some(pk) = decode_pk(pk) else {
        return false;
    };
    let as_sig = BlstSignature::from(blst_p1_affine::from(*g1_key));
    // SAFETY: `blst_p1_affine_generator` returns a pointer to a static constant.
    let g1 = HashedMsg(unsafe { *blst::blst_p1_affine_generator() });
    pairing_check(&[(g1, pk)], &as_sig)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairing_check_agrees_with_blst_verify() {
        let sk = SecretKey::key_gen(&[7u8; 32], &[]).unwrap();
        let pk = sk.sk_to_pk();
        let msg = [3u8; 32];
        let sig = sk.sign(&msg, DST_SIG, &[]);
        // blst's own (thread-pooled) verification accepts it: same ciphersuite.
        assert_eq!(
            sig.verify(true, &msg, DST_SIG, &[], &pk, true),
            blst::BLST_ERROR::BLST_SUCCESS
        );
        assert!(pairing_check(&[(hash(&msg, DST_SIG), pk)], &sig));
        // Another DST or message does not verify.
        assert!(!pairing_check(&[(hash(&msg, DST_POP), pk)], &sig));
        assert!(!pairing_check(&[(hash(&[4u8; 32], DST_SIG), pk)], &sig));
        assert!(!pairing_check(&[], &sig));
    }

    #[test]
    fn infinity_is_rejected() {
        // Compressed infinity: flags 0b110, all else zero.
        let mut inf = [0u8; olympus_types::SIGNATURE_LEN];
        inf[0] = 0xc0;
        assert!(decode_sig_on_curve(&Signature(inf)).is_some());
        assert!(decode_sig(&Signature(inf)).is_none());
        let mut inf_pk = [0u8; olympus_types::PUBLIC_KEY_LEN];
        inf_pk[0] = 0xc0;
        assert!(decode_pk(&PublicKeyBytes(inf_pk)).is_none());
        // e(H, O) == e(O, g2) must not pass.
        let o_sig = decode_sig_on_curve(&Signature(inf)).unwrap();
        let o_pk = PublicKey::default();
        assert!(!pairing_check(&[(hash(b"m", DST_SIG), o_pk)], &o_sig));
    }
}
