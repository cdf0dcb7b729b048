//! Hostile bytes against HotStuff's messages: decoding then verifying random, truncated
//! or bit-flipped frames gives errors, never a panic, and never a verified forgery.

use olympus_crypto::{Committee, Keypair, Scheme};
use olympus_protocols::hotstuff::{proposal_statement, HotStuff, HsMsg, Proposal};
use olympus_protocols::Protocol;
use olympus_types::frame::{decode, encode};
use olympus_types::{Batch, Block, NodeId, Payload, QuorumCert, Transaction};
use proptest::prelude::*;

fn committee() -> (Vec<Keypair>, Committee) {
    let keys: Vec<_> = (0..4)
        .map(|i| Keypair::generate(Scheme::Bls, &[3; 32], NodeId(i)))
        .collect();
    let pks: Vec<_> = keys.iter().map(|k| k.public()).collect();
    let c = Committee::new(Scheme::Bls, &pks).unwrap();
    (keys, c)
}

fn proposal(keys: &[Keypair], payload: Vec<u8>) -> HsMsg {
    let block = Block {
        parent: Block::genesis_digest(),
        view: 1,
        height: 1,
        proposer: NodeId(1),
        justify: QuorumCert::genesis(),
        payload: Payload::Inline(vec![Batch::new(vec![Transaction {
            client: 9,
            nonce: 1,
            payload,
        }])]),
    };
    let signature = keys[1].sign(&proposal_statement(&block.digest()));
    HsMsg::Propose(Box::new(Proposal {
        block,
        tc: None,
        signature,
    }))
}

/// Whether `m`, received from a relay, rests on someone else's signature: a proposal,
/// a timeout or a timeout certificate. A flipped bit can also turn the frame into a
/// message of another kind that carries no one else's signed statement — a `Fetch`, a
/// `Blocks` reply (blocks are vouched for by the certificates that link them), or a
/// vote in the relay's own name (its signature is checked when a quorum is summed) —
/// which the relay could have sent anyway: that is no forgery.
fn vouches_for_another(m: &HsMsg) -> bool {
    matches!(m, HsMsg::Propose(_) | HsMsg::Timeout(_) | HsMsg::Tc(_))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn corrupted_proposals_never_verify_as_something_else(payload in proptest::collection::vec(any::<u8>(), 0..32), flip in any::<prop::sample::Index>(), bit in 0u8..8) {
        let (keys, c) = committee();
        let msg = proposal(&keys, payload);
        let bytes = encode(&msg).unwrap();
        prop_assert!(HotStuff::verify(decode::<HsMsg>(&bytes).unwrap(), NodeId(1), &c).is_ok());
        let mut bad = bytes.to_vec();
        let i = flip.index(bad.len());
        bad[i] ^= 1 << bit;
        // Relayed by node 2 the proposer's signature is what vouches for it (from the
        // proposer itself the authenticated link does): a changed proposal must not
        // verify.
        let relay = NodeId(2);
        prop_assert!(HotStuff::verify(decode::<HsMsg>(&bytes).unwrap(), relay, &c).is_ok());
        if let Ok(m) = decode::<HsMsg>(&bad) {
            if m != msg && vouches_for_another(&m) {
                prop_assert!(HotStuff::verify(m, relay, &c).is_err(), "a changed proposal must not verify");
            }
        }
        for cut in [0, 1, bytes.len() / 2, bytes.len() - 1] {
            if let Ok(m) = decode::<HsMsg>(&bytes[..cut]) {
                prop_assert!(m == msg || !vouches_for_another(&m) || HotStuff::verify(m, relay, &c).is_err());
            }
        }
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let (_, c) = committee();
        if let Ok(m) = decode::<HsMsg>(&bytes) {
            let _ = HotStuff::verify(m, NodeId(0), &c);
        }
    }
}
