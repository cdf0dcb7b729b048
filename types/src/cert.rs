//! Signatures, signer sets and certificates as they travel on the wire.
//!
//! These are plain byte containers; `olympus-crypto` gives them meaning (signing,
//! aggregation, verification against a committee).

use crate::digest::Digest;
use crate::ids::{Height, NodeId, View};
use crate::limits::MAX_NODES;
use rkyv::{Archive, Deserialize, Serialize};

const WORDS: usize = MAX_NODES / 64;

/// A set of node ids as a fixed bitmap of [`MAX_NODES`] bits.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[rkyv(derive(Debug))]
pub struct SignerSet(pub [u64; WORDS]);

impl SignerSet {
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds `id`; returns false if it was already present or out of range.
    pub fn insert(&mut self, id: NodeId) -> bool {
        let i = id.index();
        if i >= MAX_NODES {
            return false;
        }
        let (w, b) = (i / 64, i % 64);
        let had = self.0[w] & (1 << b) != 0;
        self.0[w] |= 1 << b;
        !had
    }
    pub fn contains(&self, id: NodeId) -> bool {
        let i = id.index();
        i < MAX_NODES && self.0[i / 64] & (1 << (i % 64)) != 0
    }
    pub fn len(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }
    /// Members in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = NodeId> + '_ {
        (0..MAX_NODES)
            .filter(move |i| self.0[i / 64] & (1 << (i % 64)) != 0)
            .map(|i| NodeId(i as u16))
    }
    /// The largest member index + 1 (0 when empty).
    pub fn bound(&self) -> usize {
        for w in (0..WORDS).rev() {
            if self.0[w] != 0 {
                return w * 64 + 64 - self.0[w].leading_zeros() as usize;
            }
        }
        0
    }
}

impl std::fmt::Debug for SignerSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.iter().map(|n| n.0)).finish()
    }
}

/// Bytes of a [`Signature`]: a compressed BLS12-381 G1 point.
pub const SIGNATURE_LEN: usize = 48;
/// Bytes of a [`PublicKeyBytes`]: a compressed BLS12-381 G2 point.
pub const PUBLIC_KEY_LEN: usize = 96;

/// A signature: a compressed BLS12-381 G1 point (min_sig: signatures are the small,
/// cheap-to-make points, signed and checked on every vote), or the same number of bytes
/// from the simulator's insecure scheme.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Hash)]
#[rkyv(derive(Debug))]
pub struct Signature(pub [u8; SIGNATURE_LEN]);

impl Signature {
    pub const EMPTY: Signature = Signature([0; SIGNATURE_LEN]);
}

impl std::fmt::Debug for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "sig:{:02x}{:02x}{:02x}{:02x}",
            self.0[0], self.0[1], self.0[2], self.0[3]
        )
    }
}

/// A public key: a compressed BLS12-381 G2 point (min_sig).
#[derive(Archive, Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Hash)]
#[rkyv(derive(Debug))]
pub struct PublicKeyBytes(pub [u8; PUBLIC_KEY_LEN]);

impl std::fmt::Debug for PublicKeyBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pk:{:02x}{:02x}{:02x}{:02x}",
            self.0[0], self.0[1], self.0[2], self.0[3]
        )
    }
}

/// One aggregate signature by the members of `signers` over one statement.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[rkyv(derive(Debug))]
pub struct AggregateSignature {
    pub signers: SignerSet,
    pub signature: Signature,
}

impl AggregateSignature {
    pub const EMPTY: AggregateSignature = AggregateSignature {
        signers: SignerSet([0; WORDS]),
        signature: Signature::EMPTY,
    };
}

/// A quorum certificate: a quorum of signatures on the vote statement for `block`
/// at `view` and `height`. What the vote statement is (its domain tag) belongs to the
/// protocol; the genesis certificate carries no signatures and is accepted by rule.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[rkyv(derive(Debug))]
pub struct QuorumCert {
    pub view: View,
    pub height: Height,
    pub block: Digest,
    pub sig: AggregateSignature,
}

impl QuorumCert {
    /// The certificate of the genesis block, which every replica holds from the start.
    pub fn genesis() -> Self {
        QuorumCert {
            view: 0,
            height: 0,
            block: crate::block::Block::genesis_digest(),
            sig: AggregateSignature::EMPTY,
        }
    }
    pub fn is_genesis(&self) -> bool {
        *self == Self::genesis()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signer_set_basics() {
        let mut s = SignerSet::new();
        assert!(s.is_empty());
        assert!(s.insert(NodeId(3)));
        assert!(!s.insert(NodeId(3)));
        assert!(s.insert(NodeId(200)));
        assert!(!s.insert(NodeId(MAX_NODES as u16)));
        assert_eq!(s.len(), 2);
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![NodeId(3), NodeId(200)]);
        assert_eq!(s.bound(), 201);
        assert!(s.contains(NodeId(200)) && !s.contains(NodeId(4)));
    }
}
