//! `Seq`: a tiny fixed-sequencer protocol that exercises the simulator before (and
//! besides) the real protocols, with deliberately broken variants that each checker must
//! catch.
//!
//! Node 0 is the primary. Its leader half cuts a block (height + 1, with the batches it
//! holds) every [`TICK`] and hands it to its own voter half, which appends it to the
//! chain it persists and only then broadcasts it. Every voter commits blocks in height
//! order, persists its committed height and digest, and acknowledges each block to the
//! primary with a signed "ack" vote (view = height). Voters ask the primary for missing
//! blocks every [`NEED_EVERY`]; non-primary leader halves forward client batches to the
//! primary. It tolerates crashes and any message loss of non-primary nodes, but no
//! Byzantine primary (its fault tolerance is zero at the primary): tests pin Byzantine
//! replicas elsewhere.
//!
//! `Seq<BUGS>` switches on broken behaviours (see [`bugs`]).

#![allow(dead_code)]

use olympus_crypto::{Committee, Keypair};
use olympus_protocols::{
    BatchRef, Commit, Context, Dest, Half, Message, Protocol, ReplicaConfig, SignedVote, TimerId,
    Verified, VerifyError,
};
use olympus_types::{Batch, Block, Digest, NodeId, Payload, QuorumCert, Transaction};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub const PRIMARY: NodeId = NodeId(0);
pub const TICK: Duration = Duration::from_millis(20);
pub const NEED_EVERY: Duration = Duration::from_millis(100);
const MAX_BUFFER: usize = 256;
const MAX_ANSWER: usize = 16;

/// Bit flags of broken behaviours.
pub mod bugs {
    /// Correct.
    pub const NONE: u8 = 0;
    /// Voters never persist their committed height: after a restart they commit from
    /// height 1 again (commit-order checker, once that is more than
    /// `COMMIT_PERSIST_EVERY` blocks back).
    pub const NO_PERSIST: u8 = 1;
    /// The primary sends different blocks to odd and even nodes (agreement checker).
    pub const FORK: u8 = 2;
    /// A voter that sees a block again acks a different digest for its height
    /// (double-vote checker).
    pub const DOUBLE_VOTE: u8 = 4;
    /// The primary adds a transaction no client sent (validity checker).
    pub const PHANTOM_TX: u8 = 8;
    /// The primary puts every batch into two consecutive blocks (at-most-once checker).
    pub const REPEAT_TX: u8 = 16;
    /// The primary stops proposing after 1 s (liveness checker).
    pub const STALL: u8 = 32;
    /// Voters' acks claim another voter's identity (rejected by verify; no violation).
    pub const SPOOF: u8 = 64;
}

#[derive(Clone, Debug)]
pub enum SeqMsg {
    /// Primary leader → primary voter.
    Propose(Arc<Block>),
    /// Primary voter → everyone.
    Block(Arc<Block>),
    /// A voter's signed acknowledgement of the block at `height`.
    Ack {
        height: u64,
        digest: Digest,
        voter: NodeId,
    },
    /// "Send me blocks from this height on."
    Need { from: u64 },
    /// A non-primary leader forwards a client batch to the primary.
    Forward(Arc<Batch>),
}

impl Message for SeqMsg {
    fn dest(&self) -> Dest {
        match self {
            SeqMsg::Forward(_) => Dest::Leader,
            _ => Dest::Voter,
        }
    }
    fn kind(&self) -> &'static str {
        match self {
            SeqMsg::Propose(_) => "propose",
            SeqMsg::Block(_) => "block",
            SeqMsg::Ack { .. } => "ack",
            SeqMsg::Need { .. } => "need",
            SeqMsg::Forward(_) => "forward",
        }
    }
    fn signed_vote(&self) -> Option<SignedVote> {
        match self {
            SeqMsg::Ack {
                height,
                digest,
                voter,
            } => Some(SignedVote {
                signer: *voter,
                view: *height,
                block: *digest,
            }),
            _ => None,
        }
    }
}

/// An immutable linked list of the primary's relayed blocks: cheap to clone into every
/// persisted state.
#[derive(Clone, Debug, Default)]
pub struct Chain {
    len: u64,
    head: Option<Arc<Link>>,
}

#[derive(Debug)]
struct Link {
    block: Arc<Block>,
    digest: Digest,
    prev: Option<Arc<Link>>,
}

impl Chain {
    fn push(&mut self, block: Arc<Block>, digest: Digest) {
        let prev = self.head.take();
        self.head = Some(Arc::new(Link {
            block,
            digest,
            prev,
        }));
        self.len += 1;
    }
    fn head_digest(&self) -> Digest {
        self.head
            .as_ref()
            .map_or_else(Block::genesis_digest, |l| l.digest)
    }
    /// Blocks of heights `from..from + max`, in order.
    fn range(&self, from: u64, max: usize) -> Vec<Arc<Block>> {
        let mut out = Vec::new();
        let mut cur = self.head.as_ref();
        while let Some(l) = cur {
            let h = l.block.height;
            if h < from {
                break;
            }
            if h < from + max as u64 {
                out.push(l.block.clone());
            }
            cur = l.prev.as_ref();
        }
        out.reverse();
        out
    }
}

#[derive(Clone, Debug, Default)]
pub struct SeqSafety {
    pub committed: u64,
    pub committed_digest: Option<Digest>,
    /// The primary's relayed chain (empty elsewhere).
    pub chain: Chain,
}

pub struct Seq<const BUGS: u8>;

impl<const BUGS: u8> Protocol for Seq<BUGS> {
    type Msg = SeqMsg;
    type Safety = SeqSafety;
    type Leader = SeqLeader<BUGS>;
    type Voter = SeqVoter<BUGS>;
    const NAME: &'static str = "seq";

    fn verify(
        msg: SeqMsg,
        from: NodeId,
        committee: &Committee,
    ) -> Result<Verified<SeqMsg>, VerifyError> {
        match &msg {
            SeqMsg::Ack { voter, .. } if *voter != from => {
                return Err(VerifyError::WrongSender {
                    sender: from,
                    signer: *voter,
                })
            }
            SeqMsg::Propose(b) | SeqMsg::Block(b)
                if from != PRIMARY || b.proposer != PRIMARY || b.height == 0 =>
            {
                return Err(VerifyError::Malformed("block not from the primary".into()));
            }
            _ => {}
        }
        if from.index() >= committee.size() {
            return Err(VerifyError::Malformed("unknown sender".into()));
        }
        Ok(Verified::assume_verified(msg))
    }

    fn create(
        cfg: &ReplicaConfig,
        _key: Arc<Keypair>,
        _committee: Arc<Committee>,
        restored: Option<SeqSafety>,
    ) -> (SeqLeader<BUGS>, SeqVoter<BUGS>) {
        let s = restored.unwrap_or_default();
        let leader = SeqLeader {
            id: cfg.id,
            next: s.chain.len + 1,
            parent: s.chain.head_digest(),
            pending: Vec::new(),
            seen: Default::default(),
            last: Vec::new(),
        };
        let voter = SeqVoter {
            id: cfg.id,
            n: cfg.n,
            committed: s.committed,
            committed_digest: s.committed_digest,
            chain: s.chain,
            buffer: BTreeMap::new(),
        };
        (leader, voter)
    }
}

type Cx = Context<SeqMsg, SeqSafety>;

pub struct SeqLeader<const BUGS: u8> {
    id: NodeId,
    next: u64,
    parent: Digest,
    pending: Vec<Batch>,
    /// Digests of the batches taken, so a duplicated `Forward` is not ordered twice.
    seen: std::collections::HashSet<Digest>,
    /// REPEAT_TX: the previous block's batches.
    last: Vec<Batch>,
}

const TICK_TIMER: TimerId = TimerId(1);
const NEED_TIMER: TimerId = TimerId(2);

impl<const BUGS: u8> Half<SeqMsg, SeqSafety> for SeqLeader<BUGS> {
    fn on_start(&mut self, cx: &mut Cx) {
        if self.id == PRIMARY {
            cx.set_timer(TICK_TIMER, TICK);
        }
    }

    fn on_message(&mut self, _from: NodeId, msg: Verified<SeqMsg>, _cx: &mut Cx) {
        if let SeqMsg::Forward(b) = msg.into_inner() {
            if self.id == PRIMARY && self.seen.insert(b.digest()) {
                self.pending.push((*b).clone());
            }
        }
    }

    fn on_timer(&mut self, _id: TimerId, cx: &mut Cx) {
        if BUGS & bugs::STALL != 0 && cx.now > Duration::from_secs(1) {
            return;
        }
        let mut batches = std::mem::take(&mut self.pending);
        if BUGS & bugs::REPEAT_TX != 0 {
            let fresh = batches.clone();
            batches.extend(std::mem::replace(&mut self.last, fresh));
        }
        if BUGS & bugs::PHANTOM_TX != 0 {
            batches.push(Batch::new(vec![Transaction {
                client: 1_000_000,
                nonce: self.next,
                payload: vec![0xEE],
            }]));
        }
        let block = Block {
            parent: self.parent,
            view: self.next,
            height: self.next,
            proposer: PRIMARY,
            justify: QuorumCert::genesis(),
            payload: Payload::Inline(batches),
        };
        self.parent = block.digest();
        self.next += 1;
        cx.send(PRIMARY, SeqMsg::Propose(Arc::new(block)));
        cx.set_timer(TICK_TIMER, TICK);
    }

    fn on_batch(&mut self, batch: BatchRef, cx: &mut Cx) -> bool {
        if self.id == PRIMARY {
            if self.seen.insert(batch.digest) {
                self.pending.push((*batch.batch).clone());
            }
        } else {
            cx.send(PRIMARY, SeqMsg::Forward(batch.batch));
        }
        true
    }
}

pub struct SeqVoter<const BUGS: u8> {
    id: NodeId,
    n: usize,
    committed: u64,
    committed_digest: Option<Digest>,
    chain: Chain,
    buffer: BTreeMap<u64, Arc<Block>>,
}

impl<const BUGS: u8> SeqVoter<BUGS> {
    fn safety(&self) -> SeqSafety {
        SeqSafety {
            committed: if BUGS & bugs::NO_PERSIST != 0 {
                0
            } else {
                self.committed
            },
            committed_digest: if BUGS & bugs::NO_PERSIST != 0 {
                None
            } else {
                self.committed_digest
            },
            chain: self.chain.clone(),
        }
    }

    fn on_block(&mut self, b: Arc<Block>, cx: &mut Cx) {
        if b.height <= self.committed {
            if BUGS & bugs::DOUBLE_VOTE != 0 {
                let voter = self.id;
                cx.send(
                    PRIMARY,
                    SeqMsg::Ack {
                        height: b.height,
                        digest: b.parent,
                        voter,
                    },
                );
            }
            return;
        }
        if b.height > self.committed + 1 {
            if self.buffer.len() < MAX_BUFFER {
                self.buffer.insert(b.height, b);
            }
            return;
        }
        let expected_parent = self.committed_digest.unwrap_or_else(Block::genesis_digest);
        if b.parent != expected_parent {
            return;
        }
        let digest = b.digest();
        self.committed += 1;
        self.committed_digest = Some(digest);
        cx.persist(self.safety());
        cx.commit(Commit {
            digest,
            block: b.clone(),
            proof: None,
        });
        let voter = if BUGS & bugs::SPOOF != 0 {
            NodeId(((self.id.index() + 1) % self.n) as u16)
        } else {
            self.id
        };
        cx.send(
            PRIMARY,
            SeqMsg::Ack {
                height: b.height,
                digest,
                voter,
            },
        );
        if let Some(next) = self.buffer.remove(&(self.committed + 1)) {
            self.on_block(next, cx);
        }
        while self
            .buffer
            .first_key_value()
            .is_some_and(|(h, _)| *h <= self.committed)
        {
            self.buffer.pop_first();
        }
    }
}

impl<const BUGS: u8> Half<SeqMsg, SeqSafety> for SeqVoter<BUGS> {
    fn on_start(&mut self, cx: &mut Cx) {
        cx.set_timer(NEED_TIMER, NEED_EVERY);
    }

    fn on_message(&mut self, from: NodeId, msg: Verified<SeqMsg>, cx: &mut Cx) {
        match msg.into_inner() {
            SeqMsg::Propose(b) => {
                if self.id != PRIMARY || b.height != self.chain.len + 1 {
                    return;
                }
                let digest = b.digest();
                self.chain.push(b.clone(), digest);
                cx.persist(self.safety());
                if BUGS & bugs::FORK != 0 {
                    let mut other = (*b).clone();
                    other.payload = Payload::Inline(Vec::new());
                    let other = Arc::new(other);
                    for i in 0..self.n {
                        let m = if i % 2 == 0 { b.clone() } else { other.clone() };
                        cx.send(NodeId(i as u16), SeqMsg::Block(m));
                    }
                } else {
                    cx.broadcast(SeqMsg::Block(b));
                }
            }
            SeqMsg::Block(b) => self.on_block(b, cx),
            SeqMsg::Need { from: h } => {
                if self.id == PRIMARY {
                    for b in self.chain.range(h, MAX_ANSWER) {
                        cx.send(from, SeqMsg::Block(b));
                    }
                }
            }
            SeqMsg::Ack { .. } | SeqMsg::Forward(_) => {}
        }
    }

    fn on_timer(&mut self, _id: TimerId, cx: &mut Cx) {
        cx.send(
            PRIMARY,
            SeqMsg::Need {
                from: self.committed + 1,
            },
        );
        cx.set_timer(NEED_TIMER, NEED_EVERY);
    }
}
