//! Peer frames and the dissemination of batches by digest.
//!
//! ## Peer frames
//!
//! Every frame between nodes starts with a 16-byte header — a kind byte and 15 zero
//! bytes — followed by an rkyv archive. The header keeps the archive 16-byte aligned
//! where the body buffer is, so it is validated in place. Kinds: a protocol message
//! ([`Kind::Protocol`]), a batch ([`Kind::Batch`]: the sealed batch's archive, the very
//! bytes the batcher encoded), and a request for batches by digest ([`Kind::Fetch`]).
//! [`split`] refuses unknown kinds and non-zero padding.
//!
//! ## Dissemination modes
//!
//! - **inline** (default): the leader puts its batches in its proposals.
//! - **digests**: a node broadcasts every batch it seals *before* offering it to its
//!   leader half, whose proposals then carry only digests. A batch is encoded once and
//!   hashed once by the batcher; the frame holding it is built once and shared by `Arc`
//!   across peers. Receivers validate it (bytecheck, limits), hash it (they must check
//!   what they are given), and keep it in the [`BatchStore`]. A committed block whose
//!   batches are not all here waits — blocks execute strictly in order — while the
//!   missing ones are fetched ([`Fetcher`]): first from the block's proposer, then from
//!   the other members in turn, every [`FETCH_RETRY`], with at most
//!   [`MAX_FETCH_DIGESTS`] digests per request. A fetched batch is accepted only under
//!   the digest it hashes to.

use crate::wire::Wire;
use olympus_mempool::{BatchLog, LogConfig, SealedBatch};
use olympus_net::Frame;
use olympus_types::frame::{FrameError, LEN_PREFIX};
use olympus_types::{Batch, Digest, NodeId};
use rkyv::{Archive, Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Bytes of the peer frame header.
pub const HEADER: usize = 16;
/// Most digests in one fetch request.
pub const MAX_FETCH_DIGESTS: usize = 64;
/// How long a fetch waits before it is asked of the next member.
pub const FETCH_RETRY: Duration = Duration::from_millis(200);
/// Most batches kept decoded in memory; older ones are read back from the log.
pub const MAX_CACHED_BATCHES: usize = 4096;
/// Most committed blocks waiting for their batches; beyond it the node stops.
pub const MAX_WAITING_BLOCKS: usize = 4096;

/// What a peer frame holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Protocol = 0,
    Batch = 1,
    Fetch = 2,
}

/// A request for batches.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct FetchBatches {
    pub digests: Vec<Digest>,
}

/// A frame of `kind` around an archive: one allocation, one copy.
pub fn frame(kind: Kind, archive: &[u8]) -> Result<Frame, FrameError> {
    let body = HEADER + archive.len();
    let mut wire = Vec::with_capacity(LEN_PREFIX + body);
    wire.extend_from_slice(&(body as u32).to_le_bytes());
    wire.push(kind as u8);
    wire.extend_from_slice(&[0; HEADER - 1]);
    wire.extend_from_slice(archive);
    Frame::from_wire(wire)
}

/// A protocol message as a peer frame.
pub fn protocol_frame<M: Wire>(msg: &M) -> Result<Frame, FrameError> {
    frame(Kind::Protocol, &msg.to_bytes()?)
}

/// The kind and archive of a received peer frame body; `None` if the header is bad.
pub fn split(body: &[u8]) -> Option<(Kind, &[u8])> {
    if body.len() < HEADER || body[1..HEADER].iter().any(|&b| b != 0) {
        return None;
    }
    let kind = match body[0] {
        0 => Kind::Protocol,
        1 => Kind::Batch,
        2 => Kind::Fetch,
        _ => return None,
    };
    Some((kind, &body[HEADER..]))
}

/// Batches by digest: decoded in memory (bounded) and in a batch log on disk.
pub struct BatchStore {
    cache: HashMap<Digest, Arc<Batch>>,
    order: VecDeque<Digest>,
    log: BatchLog,
}

impl BatchStore {
    /// Opens (recovering) the batch log in `dir`.
    pub fn open(dir: &Path) -> Result<BatchStore, String> {
        let (log, recovery) =
            BatchLog::open(LogConfig::new(dir)).map_err(|e| format!("{}: {e}", dir.display()))?;
        if let Some(cut) = recovery.truncated {
            eprintln!("batch log {}: cut a torn tail: {cut:?}", dir.display());
        }
        Ok(BatchStore {
            cache: HashMap::new(),
            order: VecDeque::new(),
            log,
        })
    }

    /// Stores a sealed batch (its archive goes to the log as it is).
    pub fn insert(&mut self, sealed: &SealedBatch, batch: Arc<Batch>) -> Result<(), String> {
        if !self.log.contains(&sealed.digest) {
            self.log
                .append(sealed.digest, sealed.as_bytes())
                .map_err(|e| e.to_string())?;
        }
        self.remember(sealed.digest, batch);
        Ok(())
    }

    fn remember(&mut self, digest: Digest, batch: Arc<Batch>) {
        if self.cache.insert(digest, batch).is_none() {
            self.order.push_back(digest);
            while self.order.len() > MAX_CACHED_BATCHES {
                if let Some(old) = self.order.pop_front() {
                    self.cache.remove(&old);
                }
            }
        }
    }

    pub fn contains(&self, digest: &Digest) -> bool {
        self.cache.contains_key(digest) || self.log.contains(digest)
    }

    /// The batch, from memory or the log.
    pub fn get(&mut self, digest: &Digest) -> Option<Arc<Batch>> {
        if let Some(b) = self.cache.get(digest) {
            return Some(b.clone());
        }
        let bytes = self.log.get(digest)?;
        let batch = Arc::new(Batch::from_bytes(&bytes).ok()?);
        self.remember(*digest, batch.clone());
        Some(batch)
    }

    /// The archive of a stored batch, as a frame to send to a peer.
    pub fn frame_of(&self, digest: &Digest) -> Option<Frame> {
        let bytes = self.log.get(digest)?;
        frame(Kind::Batch, &bytes).ok()
    }
}

/// Missing batches and whom to ask next.
#[derive(Default)]
pub struct Fetcher {
    /// digest → (when last asked, how many times, who first).
    missing: BTreeMap<Digest, (Duration, usize, NodeId)>,
}

impl Fetcher {
    /// Notes that `digest` is needed; `first` (the block's proposer) is asked first.
    pub fn want(&mut self, digest: Digest, first: NodeId) {
        self.missing
            .entry(digest)
            .or_insert((Duration::ZERO, 0, first));
    }

    pub fn got(&mut self, digest: &Digest) {
        self.missing.remove(digest);
    }

    pub fn is_empty(&self) -> bool {
        self.missing.is_empty()
    }

    /// The requests due at `now`: per member, the digests to ask it for.
    pub fn due(&mut self, now: Duration, me: NodeId, n: usize) -> Vec<(NodeId, Vec<Digest>)> {
        let mut out: BTreeMap<NodeId, Vec<Digest>> = BTreeMap::new();
        for (d, (asked, tries, first)) in self.missing.iter_mut() {
            if *tries > 0 && now < *asked + FETCH_RETRY {
                continue;
            }
            // The proposer, then every other member in turn, skipping this node.
            let mut who = NodeId(((first.index() + *tries) % n) as u16);
            if who == me && n > 1 {
                who = NodeId(((who.index() + 1) % n) as u16);
            }
            *asked = now;
            *tries += 1;
            let list = out.entry(who).or_default();
            if list.len() < MAX_FETCH_DIGESTS {
                list.push(*d);
            }
        }
        out.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use olympus_types::Transaction;

    #[test]
    fn frames_split_back_and_bad_headers_are_refused() {
        let f = frame(Kind::Batch, b"archive").unwrap();
        let (k, a) = split(f.body()).unwrap();
        assert_eq!((k, a), (Kind::Batch, &b"archive"[..]));
        let mut bad = f.body().to_vec();
        bad[0] = 9;
        assert!(split(&bad).is_none(), "unknown kind");
        let mut bad = f.body().to_vec();
        bad[5] = 1;
        assert!(split(&bad).is_none(), "padding must be zero");
        assert!(split(&[0; 15]).is_none(), "shorter than the header");
        let req = FetchBatches {
            digests: vec![Digest::of(b"a")],
        };
        let f = frame(Kind::Fetch, &req.to_bytes().unwrap()).unwrap();
        let (_, a) = split(f.body()).unwrap();
        assert_eq!(FetchBatches::from_bytes(a).unwrap(), req);
    }

    #[test]
    fn the_store_keeps_batches_across_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let batch = Batch::new(vec![Transaction {
            client: 1,
            nonce: 2,
            payload: vec![3],
        }]);
        let sealed = SealedBatch::seal(&batch).unwrap();
        {
            let mut s = BatchStore::open(dir.path()).unwrap();
            s.insert(&sealed, Arc::new(batch.clone())).unwrap();
            assert!(s.contains(&sealed.digest));
            let f = s.frame_of(&sealed.digest).unwrap();
            let (_, a) = split(f.body()).unwrap();
            assert_eq!(
                a,
                sealed.as_bytes(),
                "the batcher's bytes go out as they are"
            );
        }
        let mut s = BatchStore::open(dir.path()).unwrap();
        assert_eq!(s.get(&sealed.digest).as_deref(), Some(&batch));
        assert!(s.get(&Digest::of(b"nope")).is_none());
    }

    #[test]
    fn fetches_go_to_the_proposer_first_then_round_the_committee() {
        let mut f = Fetcher::default();
        let d = Digest::of(b"d");
        f.want(d, NodeId(2));
        let me = NodeId(3);
        let t0 = Duration::from_secs(1);
        assert_eq!(f.due(t0, me, 4), vec![(NodeId(2), vec![d])]);
        assert!(f.due(t0 + FETCH_RETRY / 2, me, 4).is_empty(), "not yet");
        // Next: 3 is this node, so 0.
        assert_eq!(f.due(t0 + FETCH_RETRY, me, 4), vec![(NodeId(0), vec![d])]);
        f.got(&d);
        assert!(f.is_empty());
    }
}
