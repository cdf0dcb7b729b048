//! Blocks and their payloads.

use crate::cert::QuorumCert;
use crate::digest::Digest;
use crate::ids::{Height, NodeId, View};
use crate::limits::MAX_BATCHES_PER_BLOCK;
use crate::tx::{Batch, BatchError};
use rkyv::{Archive, Deserialize, Serialize};

/// What a block orders: its batches inline, or only their digests (the batches travel
/// separately and are fetched when missing).
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub enum Payload {
    Inline(Vec<Batch>),
    Digests(Vec<Digest>),
}

impl Payload {
    pub fn empty() -> Self {
        Payload::Inline(Vec::new())
    }

    /// The digests of the batches, in order.
    pub fn batch_digests(&self) -> Vec<Digest> {
        match self {
            Payload::Inline(b) => b.iter().map(Batch::digest).collect(),
            Payload::Digests(d) => d.clone(),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Payload::Inline(b) => b.len(),
            Payload::Digests(d) => d.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of transactions carried inline.
    pub fn inline_txs(&self) -> usize {
        match self {
            Payload::Inline(b) => b.iter().map(|b| b.txs.len()).sum(),
            Payload::Digests(_) => 0,
        }
    }
}

/// A block. Its identity is [`Block::digest`], which covers every field (the payload by
/// its batch digests, so inline and by-digest forms of the same content do not collide
/// with different blocks: the form is hashed too).
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct Block {
    pub parent: Digest,
    pub view: View,
    pub height: Height,
    pub proposer: NodeId,
    /// The certificate this block is justified by (usually on its parent).
    pub justify: QuorumCert,
    pub payload: Payload,
}

/// Why a block is malformed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BlockError {
    #[error("block carries {0} batches, more than the limit {MAX_BATCHES_PER_BLOCK}")]
    TooManyBatches(usize),
    #[error(transparent)]
    Batch(#[from] BatchError),
}

impl Block {
    /// The digest of the genesis block, the common root of every chain.
    pub fn genesis_digest() -> Digest {
        crate::digest::Statement::new("genesis").finish()
    }

    /// The genesis block. Its digest is [`Block::genesis_digest`] by definition.
    pub fn genesis() -> Block {
        Block {
            parent: Digest::ZERO,
            view: 0,
            height: 0,
            proposer: NodeId(0),
            justify: QuorumCert::genesis(),
            payload: Payload::empty(),
        }
    }

    pub fn is_genesis(&self) -> bool {
        self.height == 0 && self.view == 0 && self.parent == Digest::ZERO
    }

    /// The block's identity.
    pub fn digest(&self) -> Digest {
        if self.is_genesis() {
            return Self::genesis_digest();
        }
        let mut s = crate::digest::Statement::new("block")
            .digest(&self.parent)
            .u64(self.view)
            .u64(self.height)
            .u64(self.proposer.0 as u64)
            .u64(self.justify.view)
            .u64(self.justify.height)
            .digest(&self.justify.block);
        s = match &self.payload {
            Payload::Inline(_) => s.u64(0),
            Payload::Digests(_) => s.u64(1),
        };
        for d in self.payload.batch_digests() {
            s = s.digest(&d);
        }
        s.finish()
    }

    /// Checks the limits of [`crate::limits`] on the payload.
    pub fn validate(&self) -> Result<(), BlockError> {
        if self.payload.len() > MAX_BATCHES_PER_BLOCK {
            return Err(BlockError::TooManyBatches(self.payload.len()));
        }
        if let Payload::Inline(batches) = &self.payload {
            for b in batches {
                b.validate()?;
            }
        }
        Ok(())
    }

    /// All transactions carried inline, in order.
    pub fn inline_txs(&self) -> impl Iterator<Item = &crate::tx::Transaction> {
        let batches: &[Batch] = match &self.payload {
            Payload::Inline(b) => b,
            Payload::Digests(_) => &[],
        };
        batches.iter().flat_map(|b| b.txs.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tx::Transaction;

    fn block(view: View) -> Block {
        Block {
            parent: Block::genesis_digest(),
            view,
            height: 1,
            proposer: NodeId(1),
            justify: QuorumCert::genesis(),
            payload: Payload::Inline(vec![Batch::new(vec![Transaction {
                client: 1,
                nonce: 1,
                payload: vec![1, 2],
            }])]),
        }
    }

    #[test]
    fn digest_covers_fields() {
        let a = block(1);
        let mut b = block(1);
        assert_eq!(a.digest(), b.digest());
        b.view = 2;
        assert_ne!(a.digest(), b.digest());
        let mut c = block(1);
        c.payload = Payload::Digests(a.payload.batch_digests());
        assert_ne!(
            a.digest(),
            c.digest(),
            "payload form is part of the identity"
        );
        assert_eq!(Block::genesis().digest(), Block::genesis_digest());
        assert_ne!(a.digest(), Block::genesis_digest());
    }
}
