//! Tests of the public API, run for both schemes where they apply.

use crate::*;
use olympus_types::{
    AggregateSignature, Digest, NodeId, PublicKeyBytes, Signature, SignerSet, PUBLIC_KEY_LEN,
    SIGNATURE_LEN,
};
use proptest::prelude::*;

const SEED: [u8; 32] = [42; 32];
const SCHEMES: [Scheme; 2] = [Scheme::Bls, Scheme::Insecure];

fn msg(tag: &str) -> Digest {
    olympus_types::Statement::new("crypto-test")
        .bytes(tag.as_bytes())
        .finish()
}

fn committee(scheme: Scheme, n: usize) -> (Committee, Vec<Keypair>) {
    generate_committee(scheme, &SEED, n).unwrap()
}

fn votes(keys: &[Keypair], ids: &[u16], m: &Digest) -> Vec<(NodeId, Signature)> {
    ids.iter()
        .map(|&i| (NodeId(i), keys[i as usize].sign(m)))
        .collect()
}

fn set(ids: &[u16]) -> SignerSet {
    let mut s = SignerSet::new();
    for &i in ids {
        s.insert(NodeId(i));
    }
    s
}

fn hex<const N: usize>(s: &str) -> [u8; N] {
    let mut out = [0u8; N];
    assert_eq!(s.len(), 2 * N);
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

/// Signature bytes that decode to a point on the G1 curve outside the prime-order
/// subgroup (found deterministically).
fn non_subgroup_signature() -> Signature {
    for i in 0u32.. {
        let mut b = [0u8; SIGNATURE_LEN];
        let mut h = blake3::Hasher::new();
        h.update(&i.to_le_bytes());
        h.finalize_xof().fill(&mut b);
        b[0] = 0x80 | (b[0] & 0x0f); // compressed, not infinity, x well below p
        if let Ok(p) = blst::min_sig::Signature::from_bytes(&b) {
            if !p.subgroup_check() {
                return Signature(b);
            }
        }
    }
    unreachable!()
}

#[test]
fn committee_and_keypair_are_send_sync() {
    fn check<T: Send + Sync>() {}
    check::<Committee>();
    check::<Keypair>();
    check::<CertCache>();
}

#[test]
fn scheme_names_round_trip() {
    for s in SCHEMES {
        assert_eq!(Scheme::from_name(s.name()), Some(s));
        assert_eq!(s.to_string(), s.name());
    }
    assert_eq!(Scheme::from_name("rsa"), None);
}

#[test]
fn sign_verify_round_trip_and_rejections() {
    for scheme in SCHEMES {
        let (c, keys) = committee(scheme, 4);
        let m = msg("block");
        let sig = keys[1].sign(&m);
        assert_eq!(c.verify(NodeId(1), &m, &sig), Ok(()), "{scheme}");
        // Deterministic signatures.
        assert_eq!(sig, keys[1].sign(&m));
        // Wrong message.
        assert_eq!(
            c.verify(NodeId(1), &msg("other"), &sig),
            Err(CryptoError::InvalidSignature)
        );
        // Wrong key: node 2 did not make this signature.
        assert_eq!(
            c.verify(NodeId(2), &m, &sig),
            Err(CryptoError::InvalidSignature)
        );
        // Tampered bytes, anywhere.
        for pos in [0, 1, 23, 24, SIGNATURE_LEN - 1] {
            let mut bad = sig;
            bad.0[pos] ^= 0x01;
            assert!(
                c.verify(NodeId(1), &m, &bad).is_err(),
                "{scheme} byte {pos}"
            );
        }
        // Not a member.
        assert_eq!(
            c.verify(NodeId(4), &m, &sig),
            Err(CryptoError::UnknownSigner(NodeId(4)))
        );
        assert_eq!(
            c.verify(NodeId(u16::MAX), &m, &sig),
            Err(CryptoError::UnknownSigner(NodeId(u16::MAX)))
        );
        assert_eq!(c.size(), 4);
        assert_eq!(c.scheme(), scheme);
        assert_eq!(c.public(NodeId(3)), Some(keys[3].public()));
        assert_eq!(c.public(NodeId(4)), None);
    }
}

#[test]
fn generate_is_deterministic() {
    for scheme in SCHEMES {
        let a = Keypair::generate(scheme, &SEED, NodeId(3));
        let b = Keypair::generate(scheme, &SEED, NodeId(3));
        assert_eq!(a.public(), b.public());
        assert_eq!(a.secret_bytes(), b.secret_bytes());
        assert_eq!(a.sign(&msg("x")), b.sign(&msg("x")));
        let other_id = Keypair::generate(scheme, &SEED, NodeId(4));
        assert_ne!(a.public(), other_id.public());
        assert_ne!(a.secret_bytes(), other_id.secret_bytes());
        let other_seed = Keypair::generate(scheme, &[43; 32], NodeId(3));
        assert_ne!(a.public(), other_seed.public());
        assert_eq!((a.id(), a.scheme()), (NodeId(3), scheme));
        assert!(!format!("{a:?}").contains(&format!("{:?}", a.secret_bytes())));
    }
    // The two schemes give different keys for the same seed and id.
    assert_ne!(
        Keypair::generate(Scheme::Bls, &SEED, NodeId(0)).public(),
        Keypair::generate(Scheme::Insecure, &SEED, NodeId(0)).public()
    );
}

#[test]
fn secret_bytes_round_trip() {
    for scheme in SCHEMES {
        let k = Keypair::generate(scheme, &SEED, NodeId(7));
        let r = Keypair::from_secret_bytes(scheme, NodeId(7), &k.secret_bytes()).unwrap();
        assert_eq!(r.public(), k.public());
        assert_eq!(r.sign(&msg("m")), k.sign(&msg("m")));
        assert_eq!(r.proof_of_possession(), k.proof_of_possession());
    }
    // BLS secrets must be in [1, r).
    for bad in [[0u8; 32], [0xff; 32]] {
        assert_eq!(
            Keypair::from_secret_bytes(Scheme::Bls, NodeId(0), &bad).map(|k| k.public()),
            Err(CryptoError::BadSecret)
        );
    }
}

/// Known answers. RFC 9380 (appendix J.9.1) pins hash-to-G1 — the curve, the SSWU map
/// and the XMD:SHA-256 expander `DST_SIG` runs through. The Ethereum consensus vector's
/// secret pins how secret bytes are read: `blst` derives the vector's (G1) public key
/// from them, and `bls::same_secret` ties our G2 public key to that very scalar by a
/// pairing equation. The signature then verifies under the key and no other message.
#[test]
fn bls_known_answer() {
    let h = crate::bls::hash(b"", b"QUUX-V01-CS02-with-BLS12381G1_XMD:SHA-256_SSWU_RO_");
    assert_eq!(
        crate::bls::uncompressed(&h),
        hex::<96>(concat!(
            "052926add2207b76ca4fa57a8734416c8dc95e24501772c814278700eed6d1e4e8cf62d9c09db0fac349612b759e79a1",
            "08ba738453bfed09cb546dbb0783dbb3a5f1f566ed67bb6be0e8c67e2e81a4cc68ee29813bb7994998f3eae0c9c6a265"
        ))
    );
    let sk = hex::<32>("263dbd792f5b1be47ed85f8938c0f29586af0d3ac7b977f21c278fe1462040e3");
    let g1_key = blst::min_pk::SecretKey::from_bytes(&sk).unwrap().sk_to_pk();
    assert_eq!(
        g1_key.compress(),
        hex::<48>("a491d1b0ecd9bb917989f0e74f0dea0422eac4a873e5e2644f368dffb9a6e20fd6e10c1b77654d067c0618f6e5a7f79a")
    );
    let k = Keypair::from_secret_bytes(Scheme::Bls, NodeId(0), &sk).unwrap();
    assert!(crate::bls::same_secret(&g1_key, &k.public()));
    let other = Keypair::generate(Scheme::Bls, &SEED, NodeId(1));
    assert!(!crate::bls::same_secret(&g1_key, &other.public()));
    let sig = k.sign(&Digest::ZERO);
    let c = Committee::new(Scheme::Bls, &[k.public()]).unwrap();
    assert_eq!(c.verify(NodeId(0), &Digest::ZERO, &sig), Ok(()));
    assert!(c.verify(NodeId(0), &Digest([1; 32]), &sig).is_err());
}

#[test]
fn proofs_of_possession() {
    for scheme in SCHEMES {
        let (_, keys) = committee(scheme, 4);
        let pks: Vec<_> = keys.iter().map(|k| k.public()).collect();
        let pops: Vec<_> = keys.iter().map(|k| k.proof_of_possession()).collect();
        let c = Committee::with_proofs(scheme, &pks, &pops).unwrap();
        assert_eq!(c.size(), 4);
        // Proofs swapped between two members.
        let mut swapped = pops.clone();
        swapped.swap(1, 2);
        assert_eq!(
            Committee::with_proofs(scheme, &pks, &swapped).map(|c| c.size()),
            Err(CryptoError::BadProofOfPossession(NodeId(1)))
        );
        // An ordinary signature is not a proof of possession (different DST / domain),
        // even on the key bytes' digest.
        let mut wrong = pops.clone();
        wrong[3] = keys[3].sign(&Digest::of(&pks[3].0));
        assert_eq!(
            Committee::with_proofs(scheme, &pks, &wrong).map(|c| c.size()),
            Err(CryptoError::BadProofOfPossession(NodeId(3)))
        );
        // Garbage proof.
        let mut garbage = pops.clone();
        garbage[0] = Signature([0xff; SIGNATURE_LEN]);
        assert_eq!(
            Committee::with_proofs(scheme, &pks, &garbage).map(|c| c.size()),
            Err(CryptoError::BadProofOfPossession(NodeId(0)))
        );
        assert_eq!(
            Committee::with_proofs(scheme, &pks, &pops[..3]).map(|c| c.size()),
            Err(CryptoError::ProofCountMismatch { keys: 4, proofs: 3 })
        );
    }
}

#[test]
fn committee_construction_errors() {
    for scheme in SCHEMES {
        let (_, keys) = committee(scheme, 3);
        let mut pks: Vec<_> = keys.iter().map(|k| k.public()).collect();
        assert_eq!(
            Committee::new(scheme, &[]).map(|c| c.size()),
            Err(CryptoError::BadCommitteeSize { size: 0, max: 256 })
        );
        pks.push(pks[1]);
        assert_eq!(
            Committee::new(scheme, &pks).map(|c| c.size()),
            Err(CryptoError::DuplicatePublicKey(NodeId(3)))
        );
        assert!(generate_committee(scheme, &SEED, 257).is_err());
        assert!(generate_committee(scheme, &SEED, 0).is_err());
    }
    let (_, keys) = committee(Scheme::Bls, 2);
    let good = keys[0].public();
    let mut inf = [0u8; PUBLIC_KEY_LEN];
    inf[0] = 0xc0;
    for bad in [[0u8; PUBLIC_KEY_LEN], [0xff; PUBLIC_KEY_LEN], inf] {
        assert_eq!(
            Committee::new(Scheme::Bls, &[good, PublicKeyBytes(bad)]).map(|c| c.size()),
            Err(CryptoError::InvalidPublicKey(NodeId(1)))
        );
    }
    // Fingerprints tell committees apart.
    let a = Committee::new(Scheme::Bls, &[keys[0].public(), keys[1].public()]).unwrap();
    let b = Committee::new(Scheme::Bls, &[keys[1].public(), keys[0].public()]).unwrap();
    assert_ne!(a.fingerprint(), b.fingerprint());
}

#[test]
fn aggregate_three_of_four() {
    for scheme in SCHEMES {
        let (c, keys) = committee(scheme, 4);
        let m = msg("vote");
        let agg = c.aggregate_unchecked(&votes(&keys, &[0, 1, 2], &m));
        assert_eq!(agg.signers, set(&[0, 1, 2]));
        assert_eq!(c.verify_aggregate(&m, &agg, 3), Ok(()), "{scheme}");
        assert_eq!(c.verify_aggregate(&m, &agg, 0), Ok(()));
        assert_eq!(
            c.verify_aggregate(&m, &agg, 4),
            Err(CryptoError::NotEnoughSigners { have: 3, need: 4 })
        );
        assert_eq!(
            c.verify_aggregate(&msg("other"), &agg, 3),
            Err(CryptoError::InvalidSignature)
        );
        // Claiming an extra member that did not sign.
        let mut extra = agg;
        extra.signers.insert(NodeId(3));
        assert_eq!(
            c.verify_aggregate(&m, &extra, 3),
            Err(CryptoError::InvalidSignature)
        );
        // Dropping one that did.
        let mut fewer = agg;
        fewer.signers = set(&[0, 1]);
        assert_eq!(
            c.verify_aggregate(&m, &fewer, 2),
            Err(CryptoError::InvalidSignature)
        );
        // Claiming a non-member, even with threshold 0.
        for outsider in [4u16, 63, 64, 255] {
            let mut out = agg;
            out.signers.insert(NodeId(outsider));
            assert_eq!(
                c.verify_aggregate(&m, &out, 0),
                Err(CryptoError::UnknownSigner(NodeId(outsider)))
            );
        }
        // No signers at all is never a certificate.
        let empty = AggregateSignature {
            signers: SignerSet::new(),
            signature: agg.signature,
        };
        assert_eq!(
            c.verify_aggregate(&m, &empty, 0),
            Err(CryptoError::NotEnoughSigners { have: 0, need: 1 })
        );
        assert!(c
            .verify_aggregate(&m, &AggregateSignature::EMPTY, 0)
            .is_err());
        // Tampered aggregate.
        let mut t = agg;
        t.signature.0[30] ^= 4;
        assert!(c.verify_aggregate(&m, &t, 3).is_err());
        // Same signer set again (aggregate-key cache) still checks the signature.
        assert_eq!(c.verify_aggregate(&m, &agg, 3), Ok(()));
        assert_eq!(
            c.verify_aggregate(&msg("other"), &agg, 3),
            Err(CryptoError::InvalidSignature)
        );
        // Unchecked aggregation skips non-members and repeats.
        let mut vs = votes(&keys, &[0, 1, 2], &m);
        vs.push((NodeId(9), keys[3].sign(&m)));
        vs.push((NodeId(0), keys[0].sign(&msg("other"))));
        assert_eq!(c.aggregate_unchecked(&vs), agg);
        assert_eq!(c.aggregate_unchecked(&[]), AggregateSignature::EMPTY);
    }
}

#[test]
fn garbage_signatures_are_errors() {
    let mut inf = [0u8; SIGNATURE_LEN];
    inf[0] = 0xc0;
    let mut rnd = [0u8; SIGNATURE_LEN];
    blake3::Hasher::new()
        .update(b"rnd")
        .finalize_xof()
        .fill(&mut rnd);
    let garbage = [
        [0xff; SIGNATURE_LEN],
        [0u8; SIGNATURE_LEN],
        inf,
        rnd,
        non_subgroup_signature().0,
    ];
    for scheme in SCHEMES {
        let (c, keys) = committee(scheme, 4);
        let m = msg("vote");
        for g in garbage {
            let g = Signature(g);
            assert_eq!(
                c.verify(NodeId(0), &m, &g),
                Err(CryptoError::InvalidSignature)
            );
            let agg = AggregateSignature {
                signers: set(&[0, 1, 2]),
                signature: g,
            };
            assert_eq!(
                c.verify_aggregate(&m, &agg, 3),
                Err(CryptoError::InvalidSignature)
            );
            let msgs: Vec<_> = (0..3).map(|i| (NodeId(i), m)).collect();
            assert_eq!(
                c.verify_aggregate_multi(&msgs, &agg, 3),
                Err(CryptoError::InvalidSignature)
            );
            // One garbage vote among good ones.
            let mut vs = votes(&keys, &[0, 1, 3], &m);
            vs.insert(1, (NodeId(2), g));
            let (cert, bad) = c.aggregate(&m, &vs);
            assert_eq!(bad, vec![NodeId(2)], "{scheme}");
            assert_eq!(cert.signers, set(&[0, 1, 3]));
            assert_eq!(c.verify_aggregate(&m, &cert, 3), Ok(()));
            // Only garbage.
            let (cert, bad) = c.aggregate(&m, &[(NodeId(1), g)]);
            assert_eq!((cert, bad), (AggregateSignature::EMPTY, vec![NodeId(1)]));
        }
    }
}

/// Keys that cancel out (pk and -pk, which only a committee built without proofs of
/// possession can hold) sum to infinity; the infinite "signature" must not verify.
#[test]
fn cancelling_keys_do_not_verify_infinity() {
    let k = Keypair::generate(Scheme::Bls, &SEED, NodeId(0));
    let mut neg = k.public();
    neg.0[0] ^= 0x20; // the sign flag of a compressed point: -pk
    let c = Committee::new(Scheme::Bls, &[k.public(), neg]).unwrap();
    let mut inf = [0u8; SIGNATURE_LEN];
    inf[0] = 0xc0;
    let agg = AggregateSignature {
        signers: set(&[0, 1]),
        signature: Signature(inf),
    };
    assert_eq!(
        c.verify_aggregate(&msg("m"), &agg, 2),
        Err(CryptoError::InvalidSignature)
    );
    let msgs = [(NodeId(0), msg("m")), (NodeId(1), msg("m"))];
    assert_eq!(
        c.verify_aggregate_multi(&msgs, &agg, 2),
        Err(CryptoError::InvalidSignature)
    );
    // And the proof of possession stops such a key from entering a committee.
    let pops = [k.proof_of_possession(), k.proof_of_possession()];
    assert_eq!(
        Committee::with_proofs(Scheme::Bls, &[k.public(), neg], &pops).map(|c| c.size()),
        Err(CryptoError::BadProofOfPossession(NodeId(1)))
    );
}

#[test]
fn aggregate_drops_bad_votes() {
    for scheme in SCHEMES {
        let (c, keys) = committee(scheme, 5);
        let m = msg("vote");
        // All good: the fast path, nothing reported.
        let (cert, bad) = c.aggregate(&m, &votes(&keys, &[4, 0, 2], &m));
        assert!(bad.is_empty());
        assert_eq!(cert.signers, set(&[0, 2, 4]));
        assert_eq!(c.verify_aggregate(&m, &cert, 3), Ok(()));
        assert_eq!(cert, c.aggregate_unchecked(&votes(&keys, &[0, 2, 4], &m)));
        // Node 3 signs another message, node 1 signs with node 2's key, node 7 is not a
        // member; node 0 votes twice (the second, bad, vote is ignored).
        let mut vs = votes(&keys, &[0, 2, 4], &m);
        vs.push((NodeId(3), keys[3].sign(&msg("other"))));
        vs.push((NodeId(1), keys[2].sign(&m)));
        vs.push((NodeId(7), keys[4].sign(&m)));
        vs.push((NodeId(0), keys[0].sign(&msg("other"))));
        let (cert, bad) = c.aggregate(&m, &vs);
        assert_eq!(bad, vec![NodeId(1), NodeId(3), NodeId(7)], "{scheme}");
        assert_eq!(cert.signers, set(&[0, 2, 4]));
        assert_eq!(c.verify_aggregate(&m, &cert, 3), Ok(()));
        // Fewer good votes than a quorum: still returned, the caller decides.
        let mut vs = votes(&keys, &[1], &m);
        vs.push((NodeId(2), keys[2].sign(&msg("other"))));
        let (cert, bad) = c.aggregate(&m, &vs);
        assert_eq!((cert.signers, bad), (set(&[1]), vec![NodeId(2)]));
        assert_eq!(c.verify_aggregate(&m, &cert, 1), Ok(()));
        assert!(c.verify_aggregate(&m, &cert, 3).is_err());
        assert_eq!(c.aggregate(&m, &[]), (AggregateSignature::EMPTY, vec![]));
    }
}

/// The search for bad votes (bisection for BLS) finds exactly the bad ones wherever they
/// sit, and the certificate of the rest verifies.
#[test]
fn aggregate_finds_every_bad_vote() {
    let n = 13;
    for scheme in SCHEMES {
        let (c, keys) = committee(scheme, n);
        let m = msg("vote");
        let wrong = msg("wrong");
        let all: Vec<u16> = (0..n as u16).collect();
        let patterns: [&[u16]; 9] = [
            &[],
            &[0],
            &[12],
            &[6],
            &[5, 6],
            &[0, 12],
            &[1, 3, 5, 7, 9, 11],
            &all[1..],
            &all,
        ];
        for bad_ids in patterns {
            let vs: Vec<_> = all
                .iter()
                .map(|&i| {
                    let on = if bad_ids.contains(&i) { &wrong } else { &m };
                    (NodeId(i), keys[i as usize].sign(on))
                })
                .collect();
            let (cert, bad) = c.aggregate(&m, &vs);
            let expect_bad: Vec<_> = bad_ids.iter().map(|&i| NodeId(i)).collect();
            assert_eq!(bad, expect_bad, "{scheme} {bad_ids:?}");
            let good: Vec<u16> = all
                .iter()
                .copied()
                .filter(|i| !bad_ids.contains(i))
                .collect();
            assert_eq!(cert.signers, set(&good));
            if good.is_empty() {
                assert_eq!(cert, AggregateSignature::EMPTY);
            } else {
                assert_eq!(c.verify_aggregate(&m, &cert, good.len()), Ok(()));
            }
        }
    }
}

/// Two colluding voters whose bad signatures cancel out (sig0 + X, sig1 - X) are not
/// detectable and need not be: their sum is valid, and so is the certificate.
#[test]
fn aggregate_with_cancelling_bad_votes_still_verifies() {
    use blst::min_sig::{AggregateSignature as Agg, Signature as S};
    let (c, keys) = committee(Scheme::Bls, 8);
    let m = msg("vote");
    let x = keys[7].sign(&msg("noise"));
    let mut neg_x = x;
    neg_x.0[0] ^= 0x20; // -X
    let add = |a: &Signature, b: &Signature| {
        let (a, b) = (S::from_bytes(&a.0).unwrap(), S::from_bytes(&b.0).unwrap());
        Signature(
            Agg::aggregate(&[&a, &b], true)
                .unwrap()
                .to_signature()
                .compress(),
        )
    };
    let mut vs = votes(&keys, &[0, 1, 2, 3, 4, 5], &m);
    vs[0].1 = add(&vs[0].1, &x);
    vs[1].1 = add(&vs[1].1, &neg_x);
    vs[4].1 = keys[4].sign(&msg("wrong"));
    assert!(c.verify(NodeId(0), &m, &vs[0].1).is_err());
    let (cert, bad) = c.aggregate(&m, &vs);
    assert!(bad.contains(&NodeId(4)));
    assert_eq!(c.verify_aggregate(&m, &cert, cert.signers.len()), Ok(()));
}

#[test]
fn multi_message_aggregate() {
    for scheme in SCHEMES {
        let (c, keys) = committee(scheme, 5);
        // Nodes 0 and 2 sign the same message; 1 and 3 each their own.
        let ms = [msg("v7"), msg("v8"), msg("v7"), msg("v9")];
        let signed: Vec<_> = (0..4)
            .map(|i| (NodeId(i as u16), ms[i], keys[i].sign(&ms[i])))
            .collect();
        let agg = c.aggregate_multi_unchecked(&signed);
        assert_eq!(agg.signers, set(&[0, 1, 2, 3]));
        let msgs: Vec<_> = signed.iter().map(|(id, m, _)| (*id, *m)).collect();
        assert_eq!(c.verify_aggregate_multi(&msgs, &agg, 4), Ok(()), "{scheme}");
        // Order of the list does not matter.
        let rev: Vec<_> = msgs.iter().rev().copied().collect();
        assert_eq!(c.verify_aggregate_multi(&rev, &agg, 4), Ok(()));
        assert_eq!(
            c.verify_aggregate_multi(&msgs, &agg, 5),
            Err(CryptoError::NotEnoughSigners { have: 4, need: 5 })
        );
        // One signer's message differs.
        for i in 0..4 {
            let mut wrong = msgs.clone();
            wrong[i].1 = msg("v10");
            assert_eq!(
                c.verify_aggregate_multi(&wrong, &agg, 4),
                Err(CryptoError::InvalidSignature)
            );
        }
        // Two signers' messages swapped.
        let mut swapped = msgs.clone();
        swapped[0].1 = ms[1];
        swapped[1].1 = ms[0];
        assert_eq!(
            c.verify_aggregate_multi(&swapped, &agg, 4),
            Err(CryptoError::InvalidSignature)
        );
        // The listed signers must be exactly the certificate's.
        assert_eq!(
            c.verify_aggregate_multi(&msgs[..3], &agg, 3),
            Err(CryptoError::SignerMismatch)
        );
        let mut dup = msgs.clone();
        dup.push(msgs[0]);
        assert_eq!(
            c.verify_aggregate_multi(&dup, &agg, 4),
            Err(CryptoError::DuplicateSigner(NodeId(0)))
        );
        let mut outsider = msgs.clone();
        outsider.push((NodeId(5), ms[0]));
        assert_eq!(
            c.verify_aggregate_multi(&outsider, &agg, 4),
            Err(CryptoError::UnknownSigner(NodeId(5)))
        );
        let mut claims = agg;
        claims.signers.insert(NodeId(4));
        let mut with4 = msgs.clone();
        with4.push((NodeId(4), ms[0]));
        assert_eq!(
            c.verify_aggregate_multi(&with4, &claims, 4),
            Err(CryptoError::InvalidSignature)
        );
        // A multi-message certificate is not a single-message one.
        assert!(c.verify_aggregate(&ms[0], &agg, 4).is_err());
        // When all messages are equal it is an ordinary certificate.
        let same: Vec<_> = (0..3)
            .map(|i| (NodeId(i as u16), ms[0], keys[i].sign(&ms[0])))
            .collect();
        let agg_same = c.aggregate_multi_unchecked(&same);
        assert_eq!(c.verify_aggregate(&ms[0], &agg_same, 3), Ok(()));
        let same_msgs: Vec<_> = same.iter().map(|(id, m, _)| (*id, *m)).collect();
        assert_eq!(c.verify_aggregate_multi(&same_msgs, &agg_same, 3), Ok(()));
    }
}

#[test]
fn cert_cache_hits_only_verified_certificates() {
    for scheme in SCHEMES {
        let (c, keys) = committee(scheme, 4);
        let cache = CertCache::with_capacity(8);
        let m = msg("vote");
        let agg = c.aggregate_unchecked(&votes(&keys, &[0, 1, 2], &m));
        assert_eq!(c.verify_aggregate_cached(&cache, &m, &agg, 3), Ok(()));
        assert_eq!((cache.hits(), cache.misses(), cache.len()), (0, 1, 1));
        assert_eq!(c.verify_aggregate_cached(&cache, &m, &agg, 3), Ok(()));
        assert_eq!(c.verify_aggregate_cached(&cache, &m, &agg, 2), Ok(()));
        assert_eq!(cache.hits(), 2, "{scheme}");
        // The threshold is still applied on a hit.
        assert_eq!(
            c.verify_aggregate_cached(&cache, &m, &agg, 4),
            Err(CryptoError::NotEnoughSigners { have: 3, need: 4 })
        );
        // A forged certificate is never cached: it fails every time.
        let mut forged = agg;
        forged.signers.insert(NodeId(3));
        for _ in 0..2 {
            assert_eq!(
                c.verify_aggregate_cached(&cache, &m, &forged, 3),
                Err(CryptoError::InvalidSignature)
            );
        }
        // Nor is the good certificate on another message.
        for _ in 0..2 {
            assert!(c
                .verify_aggregate_cached(&cache, &msg("x"), &agg, 3)
                .is_err());
        }
        assert_eq!((cache.hits(), cache.len()), (2, 1));
        // Another committee with the same cache: no hit, and it fails on its keys.
        let (other, _) = generate_committee(scheme, &[1; 32], 4).unwrap();
        assert_eq!(
            other.verify_aggregate_cached(&cache, &m, &agg, 3),
            Err(CryptoError::InvalidSignature)
        );
        assert_eq!(cache.hits(), 2);
        // Multi-message certificates.
        let ms = [msg("a"), msg("b"), msg("a")];
        let signed: Vec<_> = (0..3)
            .map(|i| (NodeId(i as u16), ms[i], keys[i].sign(&ms[i])))
            .collect();
        let multi = c.aggregate_multi_unchecked(&signed);
        let msgs: Vec<_> = signed.iter().map(|(id, m, _)| (*id, *m)).collect();
        let mut wrong = msgs.clone();
        wrong[1].1 = msg("c");
        assert!(c
            .verify_aggregate_multi_cached(&cache, &wrong, &multi, 3)
            .is_err());
        assert_eq!(
            c.verify_aggregate_multi_cached(&cache, &msgs, &multi, 3),
            Ok(())
        );
        let rev: Vec<_> = msgs.iter().rev().copied().collect();
        assert_eq!(
            c.verify_aggregate_multi_cached(&cache, &rev, &multi, 3),
            Ok(())
        );
        assert_eq!(cache.hits(), 3);
        assert!(c
            .verify_aggregate_multi_cached(&cache, &wrong, &multi, 3)
            .is_err());
        assert_eq!(cache.hits(), 3);
        // The single-message entry does not stand in for a multi one or vice versa.
        assert!(c
            .verify_aggregate_cached(&cache, &ms[0], &multi, 3)
            .is_err());
        assert_eq!(cache.hits(), 3);
    }
}

#[test]
fn cert_cache_is_bounded() {
    let (c, keys) = committee(Scheme::Insecure, 4);
    let cache = CertCache::with_capacity(3);
    assert_eq!(CertCache::new().capacity(), DEFAULT_CERT_CACHE_CAPACITY);
    let certs: Vec<_> = (0..5)
        .map(|i| {
            let m = msg(&format!("m{i}"));
            (m, c.aggregate_unchecked(&votes(&keys, &[0, 1, 2], &m)))
        })
        .collect();
    for (m, agg) in &certs {
        c.verify_aggregate_cached(&cache, m, agg, 3).unwrap();
    }
    assert_eq!(cache.len(), 3);
    assert_eq!(cache.hits(), 0);
    // The newest are hits, the oldest were evicted (and verify again, as misses).
    c.verify_aggregate_cached(&cache, &certs[4].0, &certs[4].1, 3)
        .unwrap();
    assert_eq!(cache.hits(), 1);
    c.verify_aggregate_cached(&cache, &certs[0].0, &certs[0].1, 3)
        .unwrap();
    assert_eq!((cache.hits(), cache.misses()), (1, 6));
}

fn bytes<const N: usize>() -> impl Strategy<Value = [u8; N]> {
    prop::collection::vec(any::<u8>(), N).prop_map(|v| {
        let mut a = [0u8; N];
        a.copy_from_slice(&v);
        a
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random bytes (with the compression flag set half the time, so that many decode
    /// to curve points) never panic anything, and never verify.
    #[test]
    fn random_bytes_never_panic(
        keys in prop::collection::vec(bytes::<PUBLIC_KEY_LEN>(), 1..5),
        sig in bytes::<SIGNATURE_LEN>(),
        flag in any::<bool>(),
        signer in 0u16..300,
        words in any::<[u64; 4]>(),
        threshold in 0usize..6,
    ) {
        let mut keys: Vec<PublicKeyBytes> = keys.into_iter().map(PublicKeyBytes).collect();
        let mut sig = Signature(sig);
        if flag {
            sig.0[0] |= 0x80;
            for k in &mut keys {
                k.0[0] |= 0x80;
            }
        }
        let m = msg("p");
        for scheme in SCHEMES {
            let _ = Committee::new(scheme, &keys);
            let (c, _) = committee(scheme, 4);
            prop_assert!(c.verify(NodeId(signer), &m, &sig).is_err());
            let agg = AggregateSignature { signers: SignerSet(words), signature: sig };
            prop_assert!(c.verify_aggregate(&m, &agg, threshold).is_err());
            let msgs: Vec<_> = agg.signers.iter().map(|id| (id, m)).collect();
            prop_assert!(c.verify_aggregate_multi(&msgs, &agg, threshold).is_err());
            let (cert, bad) = c.aggregate(&m, &[(NodeId(signer), sig)]);
            prop_assert_eq!(cert, AggregateSignature::EMPTY);
            prop_assert_eq!(bad, vec![NodeId(signer)]);
            let _ = c.aggregate_unchecked(&[(NodeId(signer), sig), (NodeId(1), sig)]);
        }
    }
}
