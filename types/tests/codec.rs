//! Property tests of the wire types and the frame codec: every type round-trips, and
//! random, truncated or corrupted bytes give an error, never a panic.

use olympus_types::frame::{decode, encode, encode_frame, FrameReader};
use olympus_types::{
    AggregateSignature, Batch, Block, Digest, NodeId, Payload, QuorumCert, Signature, SignerSet,
    Transaction, SIGNATURE_LEN,
};
use proptest::prelude::*;

fn digest() -> impl Strategy<Value = Digest> {
    any::<[u8; 32]>().prop_map(Digest)
}

fn tx() -> impl Strategy<Value = Transaction> {
    (
        any::<u64>(),
        any::<u64>(),
        proptest::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(client, nonce, payload)| Transaction {
            client,
            nonce,
            payload,
        })
}

fn batch() -> impl Strategy<Value = Batch> {
    proptest::collection::vec(tx(), 0..8).prop_map(Batch::new)
}

fn signature() -> impl Strategy<Value = Signature> {
    proptest::collection::vec(any::<u8>(), SIGNATURE_LEN).prop_map(|v| {
        let mut s = [0u8; SIGNATURE_LEN];
        s.copy_from_slice(&v);
        Signature(s)
    })
}

fn qc() -> impl Strategy<Value = QuorumCert> {
    (
        any::<u64>(),
        any::<u64>(),
        digest(),
        any::<[u64; 4]>(),
        signature(),
    )
        .prop_map(|(view, height, block, words, signature)| QuorumCert {
            view,
            height,
            block,
            sig: AggregateSignature {
                signers: SignerSet(words),
                signature,
            },
        })
}

fn payload() -> impl Strategy<Value = Payload> {
    prop_oneof![
        proptest::collection::vec(batch(), 0..4).prop_map(Payload::Inline),
        proptest::collection::vec(digest(), 0..4).prop_map(Payload::Digests),
    ]
}

fn block() -> impl Strategy<Value = Block> {
    (
        digest(),
        any::<u64>(),
        any::<u64>(),
        any::<u16>(),
        qc(),
        payload(),
    )
        .prop_map(|(parent, view, height, p, justify, payload)| Block {
            parent,
            view,
            height,
            proposer: NodeId(p),
            justify,
            payload,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn transactions_round_trip(t in tx()) {
        prop_assert_eq!(decode::<Transaction>(&encode(&t).unwrap()).unwrap(), t);
    }

    #[test]
    fn batches_round_trip(b in batch()) {
        let back = decode::<Batch>(&encode(&b).unwrap()).unwrap();
        prop_assert_eq!(back.digest(), b.digest());
        prop_assert_eq!(back, b);
    }

    #[test]
    fn certificates_round_trip(q in qc()) {
        prop_assert_eq!(decode::<QuorumCert>(&encode(&q).unwrap()).unwrap(), q);
    }

    #[test]
    fn blocks_round_trip(b in block()) {
        let back = decode::<Block>(&encode(&b).unwrap()).unwrap();
        prop_assert_eq!(back.digest(), b.digest());
        prop_assert_eq!(back, b);
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode::<Block>(&bytes);
        let _ = decode::<Batch>(&bytes);
        let _ = decode::<QuorumCert>(&bytes);
        let mut r = FrameReader::new();
        r.extend(&bytes);
        while let Ok(Some(f)) = r.next_frame() {
            let _ = decode::<Block>(&f);
        }
    }

    #[test]
    fn truncated_and_corrupted_blocks_are_errors_or_equal(b in block(), cut in any::<prop::sample::Index>(), flip in any::<prop::sample::Index>(), bit in 0u8..8) {
        let bytes = encode(&b).unwrap();
        let n = cut.index(bytes.len());
        // A strict prefix never decodes to the same block.
        if let Ok(d) = decode::<Block>(&bytes[..n]) {
            prop_assert_ne!(d, b.clone());
        }
        let mut corrupt = bytes.to_vec();
        let i = flip.index(corrupt.len());
        corrupt[i] ^= 1 << bit;
        let _ = decode::<Block>(&corrupt); // error or some other valid block: never a panic
    }

    #[test]
    fn frame_reader_splits_any_chunking(bs in proptest::collection::vec(batch(), 1..6), chunk in 1usize..64) {
        let mut stream = Vec::new();
        for b in &bs {
            stream.extend(encode_frame(b).unwrap());
        }
        let mut r = FrameReader::new();
        let mut out = Vec::new();
        for c in stream.chunks(chunk) {
            r.extend(c);
            while let Some(f) = r.next_frame().unwrap() {
                out.push(decode::<Batch>(&f).unwrap());
            }
        }
        prop_assert_eq!(out, bs);
    }
}
