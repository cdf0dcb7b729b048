//! The batcher: cuts client transactions into sealed batches. Sans-IO.
//!
//! The batcher reads no clock and does no IO: time comes in as a [`Duration`] since an
//! arbitrary start, and sealed batches go out through [`Batcher::pop`]. The driver calls
//! [`Batcher::tick`] at [`Batcher::deadline`].
//!
//! # Cutting
//!
//! The open batch is sealed when
//! * adding the next transaction would take it past `max_batch_bytes` (then the
//!   transaction starts the next batch), or it reaches `max_batch_bytes` exactly;
//! * it reaches `max_batch_txs` transactions;
//! * `max_batch_delay` has passed since its first transaction was added (checked in
//!   [`Batcher::tick`] and on every [`Batcher::submit`]);
//! * the driver asks ([`Batcher::flush`]).
//!
//! Bytes are counted as the batch's canonical encoding ([`Batch::encoded_len`]), the
//! measure the protocol limits ([`MAX_BATCH_BYTES`]) are stated in.
//!
//! # Sealing: encode once, hash once
//!
//! A sealed batch ([`SealedBatch`]) is encoded with rkyv exactly once and hashed exactly
//! once; from then on it is an `Arc` of immutable, 16-byte-aligned bytes and the cached
//! digest. Cloning it to send it to every peer, to the log and to the protocol copies a
//! pointer. [`BatcherStats::encodes`] counts encodings so that tests can check this.
//!
//! # Duplicates
//!
//! Each client's nonces are tracked with a sliding window ([`DEDUP_WINDOW`] nonces wide),
//! like IPsec's anti-replay window: per client, every nonce below `base` counts as seen,
//! and a bitmap records which nonces in `[base, base + DEDUP_WINDOW)` were seen. `base`
//! advances past the contiguous run of seen nonces, and jumps forward when a nonce at or
//! beyond `base + DEDUP_WINDOW` arrives, so that nonce is the highest in the window. A
//! nonce that was seen is dropped as [`Admission::Duplicate`]. A nonce below `base` is
//! dropped too, as a `Duplicate` when it is within `DEDUP_WINDOW` of `base` (most likely
//! a resubmission) and as [`Admission::Stale`] further down (the window slid past it). A client that keeps at most `DEDUP_WINDOW`
//! transactions in flight and numbers them upwards never sees a fresh one dropped.
//!
//! Memory is bounded: at most `max_clients` clients are tracked (about 200 bytes each);
//! beyond that the least recently active client's window is forgotten. A forgotten
//! client's old nonces could then be batched again: this filter saves batch space, it
//! is not what makes execution exactly-once (replicas skip an executed `(client, nonce)`
//! when they execute).
//!
//! A transaction is marked seen only when it is admitted: one refused with
//! [`SubmitError::PoolFull`] may be resubmitted.
//!
//! # Bounds
//!
//! The pool (transactions in the open batch plus sealed batches not yet popped) holds at
//! most `max_pool_txs` transactions and `max_pool_bytes` bytes; beyond that
//! [`Batcher::submit`] refuses with [`SubmitError::PoolFull`], which the driver turns
//! into backpressure on the client.

use olympus_types::frame::{self, FrameError};
use olympus_types::limits::{MAX_BATCH_BYTES, MAX_BATCH_TXS, MAX_TX_PAYLOAD};
use olympus_types::tx::BatchError;
use olympus_types::{Batch, Digest, Transaction};
use rkyv::util::AlignedVec;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

/// Width of each client's duplicate-detection window, in nonces.
pub const DEDUP_WINDOW: u64 = 1024;
const WINDOW_WORDS: usize = (DEDUP_WINDOW / 64) as usize;

/// Bytes a batch with no transactions takes in the canonical encoding.
const EMPTY_BATCH_BYTES: usize = 8;

/// A batch encoded once and hashed once, shared by `Arc` from then on.
#[derive(Clone, Debug)]
pub struct SealedBatch {
    /// [`Batch::digest`] of the batch.
    pub digest: Digest,
    /// The rkyv archive of the batch ([`frame::encode`]), 16-byte aligned.
    pub bytes: Arc<AlignedVec>,
    /// Transactions in the batch.
    pub txs: usize,
}

/// Why a batch could not be sealed or a received one accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error(transparent)]
    Batch(#[from] BatchError),
}

impl PartialEq for SealedBatch {
    fn eq(&self, other: &Self) -> bool {
        self.digest == other.digest && self.txs == other.txs && self.as_bytes() == other.as_bytes()
    }
}

impl Eq for SealedBatch {}

impl SealedBatch {
    /// Encodes and hashes `batch`: the one place a batch is encoded.
    pub fn seal(batch: &Batch) -> Result<SealedBatch, SealError> {
        batch.validate()?;
        let bytes = frame::encode(batch)?;
        Ok(SealedBatch {
            digest: batch.digest(),
            bytes: Arc::new(bytes),
            txs: batch.txs.len(),
        })
    }

    /// Accepts an archive received from a peer or read from the log: validates it
    /// (bytecheck and the batch limits) and computes its digest. The bytes are copied
    /// once into an aligned buffer.
    pub fn from_archive(bytes: &[u8]) -> Result<SealedBatch, SealError> {
        let batch: Batch = frame::decode(bytes)?;
        batch.validate()?;
        let mut owned = AlignedVec::with_capacity(bytes.len());
        owned.extend_from_slice(bytes);
        Ok(SealedBatch {
            digest: batch.digest(),
            bytes: Arc::new(owned),
            txs: batch.txs.len(),
        })
    }

    /// Decodes the batch (validated).
    pub fn decode(&self) -> Result<Batch, FrameError> {
        frame::decode(&self.bytes)
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Bytes of the encoding.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// How to cut batches and how much to hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatcherConfig {
    /// Most canonical bytes in a batch; at most [`MAX_BATCH_BYTES`]. Default 512 KiB.
    pub max_batch_bytes: usize,
    /// Most transactions in a batch; at most [`MAX_BATCH_TXS`]. Default 4096.
    pub max_batch_txs: usize,
    /// Longest a transaction waits in the open batch. Default 10 ms.
    pub max_batch_delay: Duration,
    /// Most transactions in the pool (open batch and unpopped sealed batches).
    /// Default 100 000.
    pub max_pool_txs: usize,
    /// Most canonical bytes in the pool. Default 64 MiB.
    pub max_pool_bytes: usize,
    /// Most clients whose nonce windows are remembered. Default 100 000.
    pub max_clients: usize,
}

impl Default for BatcherConfig {
    fn default() -> Self {
        BatcherConfig {
            max_batch_bytes: 512 * 1024,
            max_batch_txs: 4096,
            max_batch_delay: Duration::from_millis(10),
            max_pool_txs: 100_000,
            max_pool_bytes: 64 * 1024 * 1024,
            max_clients: 100_000,
        }
    }
}

/// An invalid [`BatcherConfig`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid batcher config: {0}")]
pub struct ConfigError(pub String);

impl BatcherConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let smallest_tx = EMPTY_BATCH_BYTES + Transaction::encoded_len(&tx_stub());
        if !(smallest_tx..=MAX_BATCH_BYTES).contains(&self.max_batch_bytes) {
            return Err(ConfigError(format!(
                "max_batch_bytes {} not in {smallest_tx}..={MAX_BATCH_BYTES}",
                self.max_batch_bytes
            )));
        }
        if !(1..=MAX_BATCH_TXS).contains(&self.max_batch_txs) {
            return Err(ConfigError(format!(
                "max_batch_txs {} not in 1..={MAX_BATCH_TXS}",
                self.max_batch_txs
            )));
        }
        if self.max_pool_txs < self.max_batch_txs || self.max_pool_bytes < self.max_batch_bytes {
            return Err(ConfigError(
                "the pool must hold at least one full batch".into(),
            ));
        }
        if self.max_clients == 0 {
            return Err(ConfigError("max_clients must be at least 1".into()));
        }
        Ok(())
    }
}

fn tx_stub() -> Transaction {
    Transaction {
        client: 0,
        nonce: 0,
        payload: Vec::new(),
    }
}

/// What happened to a submitted transaction that was not refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// In the pool; it will be in a sealed batch.
    Accepted,
    /// This `(client, nonce)` was already admitted: dropped.
    Duplicate,
    /// The nonce is below the client's window: dropped (see the module docs).
    Stale,
}

/// Why a transaction was refused. The driver maps `PoolFull` to backpressure.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SubmitError {
    #[error("the pool is full ({txs} transactions, {bytes} bytes)")]
    PoolFull { txs: usize, bytes: usize },
    #[error("payload of {len} bytes exceeds the limit of {max} bytes")]
    PayloadTooLarge { len: usize, max: usize },
    #[error("transaction of {len} encoded bytes can never fit a batch (room {max})")]
    TxTooLarge { len: usize, max: usize },
    #[error("sealing a batch failed: {0}")]
    Seal(#[from] SealError),
}

/// Why the open batch was sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SealReason {
    Bytes,
    Count,
    Time,
    Flush,
}

/// Counters, for metrics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BatcherStats {
    pub accepted: u64,
    pub duplicates: u64,
    pub stale: u64,
    pub refused_full: u64,
    pub refused_too_large: u64,
    pub sealed_by_bytes: u64,
    pub sealed_by_count: u64,
    pub sealed_by_time: u64,
    pub sealed_by_flush: u64,
    /// Batches encoded: exactly one per sealed batch.
    pub encodes: u64,
    /// Clients whose dedup window was forgotten to stay within `max_clients`.
    pub clients_evicted: u64,
}

/// The batcher. See the module docs.
#[derive(Debug)]
pub struct Batcher {
    cfg: BatcherConfig,
    open: Vec<Transaction>,
    /// Canonical bytes of the open batch, header included.
    open_bytes: usize,
    /// When the first transaction of the open batch arrived.
    opened_at: Option<Duration>,
    /// Sealed batches and their canonical bytes, oldest first.
    sealed: VecDeque<(SealedBatch, usize)>,
    pool_txs: usize,
    pool_bytes: usize,
    dedup: Dedup,
    stats: BatcherStats,
}

impl Batcher {
    pub fn new(cfg: BatcherConfig) -> Result<Batcher, ConfigError> {
        cfg.validate()?;
        Ok(Batcher {
            dedup: Dedup::new(cfg.max_clients),
            cfg,
            open: Vec::new(),
            open_bytes: EMPTY_BATCH_BYTES,
            opened_at: None,
            sealed: VecDeque::new(),
            pool_txs: 0,
            pool_bytes: 0,
            stats: BatcherStats::default(),
        })
    }

    /// Offers a client transaction at time `now`. See the module docs for what is
    /// dropped, what is refused, and when batches are sealed.
    pub fn submit(&mut self, tx: Transaction, now: Duration) -> Result<Admission, SubmitError> {
        if tx.payload.len() > MAX_TX_PAYLOAD {
            self.stats.refused_too_large += 1;
            return Err(SubmitError::PayloadTooLarge {
                len: tx.payload.len(),
                max: MAX_TX_PAYLOAD,
            });
        }
        let len = tx.encoded_len();
        let max = self.cfg.max_batch_bytes - EMPTY_BATCH_BYTES;
        if len > max {
            self.stats.refused_too_large += 1;
            return Err(SubmitError::TxTooLarge { len, max });
        }
        match self.dedup.check(tx.client, tx.nonce) {
            Seen::Fresh => {}
            Seen::Duplicate => {
                self.stats.duplicates += 1;
                return Ok(Admission::Duplicate);
            }
            Seen::Stale => {
                self.stats.stale += 1;
                return Ok(Admission::Stale);
            }
        }
        if self.pool_txs + 1 > self.cfg.max_pool_txs
            || self.pool_bytes + len > self.cfg.max_pool_bytes
        {
            self.stats.refused_full += 1;
            return Err(SubmitError::PoolFull {
                txs: self.pool_txs,
                bytes: self.pool_bytes,
            });
        }
        // Seal what must go before this transaction joins; if that fails, the
        // transaction is not admitted (nor marked seen) and may be resubmitted.
        if self.is_due(now) {
            self.seal(SealReason::Time)?;
        }
        if self.open_bytes + len > self.cfg.max_batch_bytes {
            self.seal(SealReason::Bytes)?;
        }
        if self.dedup.mark(tx.client, tx.nonce) {
            self.stats.clients_evicted += 1;
        }
        self.stats.accepted += 1;
        self.pool_txs += 1;
        self.pool_bytes += len;
        if self.open.is_empty() {
            self.opened_at = Some(now);
        }
        self.open.push(tx);
        self.open_bytes += len;
        if self.open.len() >= self.cfg.max_batch_txs {
            self.seal(SealReason::Count)?;
        } else if self.open_bytes >= self.cfg.max_batch_bytes {
            self.seal(SealReason::Bytes)?;
        }
        Ok(Admission::Accepted)
    }

    /// Seals the open batch if its time is up. Returns whether it sealed one.
    pub fn tick(&mut self, now: Duration) -> Result<bool, SubmitError> {
        if self.is_due(now) {
            self.seal(SealReason::Time)?;
            return Ok(true);
        }
        Ok(false)
    }

    /// When the open batch must be sealed: call [`Batcher::tick`] then. `None` when no
    /// batch is open.
    pub fn deadline(&self) -> Option<Duration> {
        self.opened_at
            .map(|t| t.saturating_add(self.cfg.max_batch_delay))
    }

    /// Seals the open batch now, if it holds anything. Returns whether it sealed one.
    pub fn flush(&mut self) -> Result<bool, SubmitError> {
        if self.open.is_empty() {
            return Ok(false);
        }
        self.seal(SealReason::Flush)?;
        Ok(true)
    }

    /// Takes the oldest sealed batch, freeing its room in the pool.
    pub fn pop(&mut self) -> Option<SealedBatch> {
        let (batch, bytes) = self.sealed.pop_front()?;
        self.pool_txs -= batch.txs;
        self.pool_bytes -= bytes;
        Some(batch)
    }

    /// Sealed batches waiting to be popped.
    pub fn sealed_len(&self) -> usize {
        self.sealed.len()
    }

    /// Transactions in the open batch.
    pub fn open_len(&self) -> usize {
        self.open.len()
    }

    /// Transactions in the pool (open batch and sealed batches not popped).
    pub fn pool_txs(&self) -> usize {
        self.pool_txs
    }

    /// Canonical bytes in the pool.
    pub fn pool_bytes(&self) -> usize {
        self.pool_bytes
    }

    pub fn stats(&self) -> BatcherStats {
        self.stats
    }

    pub fn config(&self) -> &BatcherConfig {
        &self.cfg
    }

    fn is_due(&self, now: Duration) -> bool {
        self.deadline().is_some_and(|d| now >= d)
    }

    fn seal(&mut self, reason: SealReason) -> Result<(), SealError> {
        if self.open.is_empty() {
            return Ok(());
        }
        let batch = Batch::new(std::mem::take(&mut self.open));
        let bytes = std::mem::replace(&mut self.open_bytes, EMPTY_BATCH_BYTES);
        self.opened_at = None;
        debug_assert_eq!(bytes, batch.encoded_len());
        self.stats.encodes += 1;
        let sealed = match SealedBatch::seal(&batch) {
            Ok(s) => s,
            Err(e) => {
                // Unreachable within the configured limits; the transactions are lost.
                self.pool_txs -= batch.txs.len();
                self.pool_bytes -= bytes - EMPTY_BATCH_BYTES;
                return Err(e);
            }
        };
        match reason {
            SealReason::Bytes => self.stats.sealed_by_bytes += 1,
            SealReason::Count => self.stats.sealed_by_count += 1,
            SealReason::Time => self.stats.sealed_by_time += 1,
            SealReason::Flush => self.stats.sealed_by_flush += 1,
        }
        self.sealed.push_back((sealed, bytes - EMPTY_BATCH_BYTES));
        Ok(())
    }
}

enum Seen {
    Fresh,
    Duplicate,
    Stale,
}

/// One client's sliding nonce window.
#[derive(Debug, Clone)]
struct Window {
    /// Every nonce below this counts as seen.
    base: u64,
    /// Bit `n % DEDUP_WINDOW` says whether nonce `n` in `[base, base + DEDUP_WINDOW)`
    /// was seen.
    bits: [u64; WINDOW_WORDS],
    /// Its key in `Dedup::lru`.
    last_used: u64,
}

impl Window {
    fn bit(n: u64) -> (usize, u64) {
        let i = n % DEDUP_WINDOW;
        ((i / 64) as usize, 1u64 << (i % 64))
    }

    fn get(&self, n: u64) -> bool {
        let (w, m) = Self::bit(n);
        self.bits[w] & m != 0
    }

    fn clear(&mut self, n: u64) {
        let (w, m) = Self::bit(n);
        self.bits[w] &= !m;
    }

    fn check(&self, n: u64) -> Seen {
        if n < self.base {
            // Below the window: seen, or given up on when the window slid.
            if self.base - n > DEDUP_WINDOW {
                return Seen::Stale;
            }
            return Seen::Duplicate;
        }
        if n - self.base < DEDUP_WINDOW && self.get(n) {
            return Seen::Duplicate;
        }
        Seen::Fresh
    }

    fn mark(&mut self, n: u64) {
        debug_assert!(n >= self.base);
        if n - self.base >= DEDUP_WINDOW {
            // Slide so that n is the top of the window; slots of nonces leaving are reused.
            let new_base = n - DEDUP_WINDOW + 1;
            if new_base - self.base >= DEDUP_WINDOW {
                self.bits = [0; WINDOW_WORDS];
            } else {
                for m in self.base..new_base {
                    self.clear(m);
                }
            }
            self.base = new_base;
        }
        let (w, m) = Self::bit(n);
        self.bits[w] |= m;
        while self.get(self.base) {
            self.clear(self.base);
            self.base += 1;
        }
    }
}

/// Per-client windows, at most `max_clients`, least recently used evicted first.
#[derive(Debug)]
struct Dedup {
    clients: HashMap<u64, Window>,
    /// `last_used` → client, to find the least recently used.
    lru: BTreeMap<u64, u64>,
    clock: u64,
    max_clients: usize,
}

impl Dedup {
    fn new(max_clients: usize) -> Self {
        Dedup {
            clients: HashMap::new(),
            lru: BTreeMap::new(),
            clock: 0,
            max_clients,
        }
    }

    fn check(&self, client: u64, nonce: u64) -> Seen {
        self.clients
            .get(&client)
            .map_or(Seen::Fresh, |w| w.check(nonce))
    }

    /// Marks `(client, nonce)` seen; it must be fresh. Returns whether a client was evicted.
    fn mark(&mut self, client: u64, nonce: u64) -> bool {
        self.clock += 1;
        let now = self.clock;
        let mut evicted = false;
        if let Some(w) = self.clients.get_mut(&client) {
            self.lru.remove(&w.last_used);
            w.last_used = now;
            w.mark(nonce);
        } else {
            if self.clients.len() >= self.max_clients {
                if let Some((_, old)) = self.lru.pop_first() {
                    self.clients.remove(&old);
                    evicted = true;
                }
            }
            let mut w = Window {
                base: 0,
                bits: [0; WINDOW_WORDS],
                last_used: now,
            };
            w.mark(nonce);
            self.clients.insert(client, w);
        }
        self.lru.insert(now, client);
        debug_assert_eq!(self.lru.len(), self.clients.len());
        evicted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tx(client: u64, nonce: u64, len: usize) -> Transaction {
        Transaction {
            client,
            nonce,
            payload: vec![(nonce % 251) as u8; len],
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn batcher(f: impl FnOnce(&mut BatcherConfig)) -> Batcher {
        let mut cfg = BatcherConfig::default();
        f(&mut cfg);
        Batcher::new(cfg).unwrap()
    }

    fn drain(b: &mut Batcher) -> Vec<Batch> {
        std::iter::from_fn(|| b.pop())
            .map(|s| s.decode().unwrap())
            .collect()
    }

    #[test]
    fn cuts_by_count() {
        let mut b = batcher(|c| c.max_batch_txs = 3);
        for n in 0..7 {
            assert_eq!(b.submit(tx(1, n, 10), ms(0)).unwrap(), Admission::Accepted);
        }
        let got = drain(&mut b);
        assert_eq!(got.iter().map(|b| b.txs.len()).collect::<Vec<_>>(), [3, 3]);
        assert_eq!(b.open_len(), 1);
        assert_eq!(b.stats().sealed_by_count, 2);
        let nonces: Vec<u64> = got
            .iter()
            .flat_map(|b| b.txs.iter().map(|t| t.nonce))
            .collect();
        assert_eq!(nonces, [0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn cuts_by_bytes_without_exceeding_the_limit() {
        // Each tx is 20 + 100 canonical bytes; 8 + 3 * 120 = 368 <= 400 < 488.
        let mut b = batcher(|c| c.max_batch_bytes = 400);
        for n in 0..10 {
            b.submit(tx(1, n, 100), ms(0)).unwrap();
        }
        let got = drain(&mut b);
        assert_eq!(got.len(), 3);
        for batch in &got {
            assert_eq!(batch.txs.len(), 3);
            assert!(batch.encoded_len() <= 400);
        }
        assert_eq!(b.stats().sealed_by_bytes, 3);
        // Exactly full: 8 + 2 * 196 = 400 seals at once.
        let mut b = batcher(|c| c.max_batch_bytes = 400);
        b.submit(tx(1, 0, 176), ms(0)).unwrap();
        assert_eq!(b.sealed_len(), 0);
        b.submit(tx(1, 1, 176), ms(0)).unwrap();
        assert_eq!(b.sealed_len(), 1);
        assert_eq!(b.open_len(), 0);
    }

    #[test]
    fn cuts_by_time() {
        let mut b = batcher(|c| c.max_batch_delay = ms(5));
        assert_eq!(b.deadline(), None);
        b.submit(tx(1, 0, 1), ms(10)).unwrap();
        b.submit(tx(1, 1, 1), ms(12)).unwrap();
        assert_eq!(b.deadline(), Some(ms(15)));
        assert!(!b.tick(ms(14)).unwrap());
        assert_eq!(b.sealed_len(), 0);
        assert!(b.tick(ms(15)).unwrap());
        assert_eq!(b.deadline(), None);
        assert_eq!(drain(&mut b)[0].txs.len(), 2);
        // A submit after the deadline seals the old batch first, and opens a new one.
        b.submit(tx(1, 2, 1), ms(20)).unwrap();
        b.submit(tx(1, 3, 1), ms(30)).unwrap();
        assert_eq!(b.sealed_len(), 1);
        assert_eq!(b.deadline(), Some(ms(35)));
        assert_eq!(b.stats().sealed_by_time, 2);
        assert!(b.flush().unwrap());
        assert!(!b.flush().unwrap());
        assert_eq!(drain(&mut b).len(), 2);
    }

    #[test]
    fn duplicates_are_dropped() {
        let mut b = batcher(|_| {});
        assert_eq!(b.submit(tx(1, 5, 1), ms(0)).unwrap(), Admission::Accepted);
        assert_eq!(b.submit(tx(1, 5, 1), ms(0)).unwrap(), Admission::Duplicate);
        assert_eq!(b.submit(tx(2, 5, 1), ms(0)).unwrap(), Admission::Accepted);
        b.flush().unwrap();
        // Still a duplicate after its batch was sealed and taken.
        drain(&mut b);
        assert_eq!(b.submit(tx(1, 5, 1), ms(1)).unwrap(), Admission::Duplicate);
        assert_eq!(b.submit(tx(1, 4, 1), ms(1)).unwrap(), Admission::Accepted);
        assert_eq!(b.stats().duplicates, 2);
    }

    #[test]
    fn the_window_slides_and_forgets_only_what_is_far_behind() {
        let mut w = Window {
            base: 0,
            bits: [0; WINDOW_WORDS],
            last_used: 0,
        };
        for n in [0, 1, 2, 4] {
            assert!(matches!(w.check(n), Seen::Fresh));
            w.mark(n);
        }
        assert_eq!(w.base, 3);
        assert!(matches!(w.check(3), Seen::Fresh));
        assert!(matches!(w.check(4), Seen::Duplicate));
        // Jump far ahead: nonce 3 falls out of the window and is no longer accepted.
        w.mark(10_000);
        assert_eq!(w.base, 10_000 - DEDUP_WINDOW + 1);
        assert!(matches!(w.check(3), Seen::Stale));
        assert!(matches!(w.check(10_000), Seen::Duplicate));
        assert!(matches!(w.check(9_999), Seen::Fresh));
        w.mark(9_999);
        assert!(matches!(w.check(9_999), Seen::Duplicate));
        // Slots reused after a partial slide start clear.
        w.mark(10_000 + 10);
        for n in 10_001..10_010 {
            assert!(matches!(w.check(n), Seen::Fresh), "{n}");
        }
    }

    #[test]
    fn dedup_memory_is_bounded_by_evicting_the_least_recent_client() {
        let mut b = batcher(|c| c.max_clients = 2);
        b.submit(tx(1, 0, 1), ms(0)).unwrap();
        b.submit(tx(2, 0, 1), ms(0)).unwrap();
        b.submit(tx(1, 1, 1), ms(0)).unwrap(); // client 1 is now the most recent
        b.submit(tx(3, 0, 1), ms(0)).unwrap(); // evicts client 2
        assert_eq!(b.stats().clients_evicted, 1);
        assert_eq!(b.dedup.clients.len(), 2);
        assert_eq!(b.submit(tx(1, 1, 1), ms(0)).unwrap(), Admission::Duplicate);
        assert_eq!(b.submit(tx(2, 0, 1), ms(0)).unwrap(), Admission::Accepted);
    }

    #[test]
    fn a_full_pool_refuses_and_recovers_after_pop() {
        let mut b = batcher(|c| {
            c.max_batch_txs = 2;
            c.max_pool_txs = 4;
        });
        for n in 0..4 {
            b.submit(tx(1, n, 1), ms(0)).unwrap();
        }
        let err = b.submit(tx(1, 4, 1), ms(0)).unwrap_err();
        assert_eq!(
            err,
            SubmitError::PoolFull {
                txs: 4,
                bytes: 4 * 21
            }
        );
        assert_eq!(b.stats().refused_full, 1);
        // Refused is not seen: the same transaction is accepted once there is room.
        assert!(b.pop().is_some());
        assert_eq!(b.submit(tx(1, 4, 1), ms(0)).unwrap(), Admission::Accepted);
        // The byte bound refuses too.
        let mut b = batcher(|c| {
            c.max_batch_bytes = 1000;
            c.max_pool_bytes = 1000;
        });
        b.submit(tx(1, 0, 480), ms(0)).unwrap();
        b.submit(tx(1, 1, 480), ms(0)).unwrap();
        assert!(matches!(
            b.submit(tx(1, 2, 480), ms(0)),
            Err(SubmitError::PoolFull { .. })
        ));
    }

    #[test]
    fn oversized_transactions_are_refused() {
        let mut b = batcher(|c| c.max_batch_bytes = 1000);
        assert!(matches!(
            b.submit(tx(1, 0, 973), ms(0)),
            Err(SubmitError::TxTooLarge { .. })
        ));
        assert_eq!(b.submit(tx(1, 0, 972), ms(0)).unwrap(), Admission::Accepted);
        let mut b = batcher(|_| {});
        let huge = tx(1, 0, MAX_TX_PAYLOAD + 1);
        assert!(matches!(
            b.submit(huge, ms(0)),
            Err(SubmitError::PayloadTooLarge { .. })
        ));
    }

    #[test]
    fn sealed_batches_decode_to_the_batch_and_carry_its_digest() {
        let mut b = batcher(|c| c.max_batch_txs = 50);
        let mut sent = Vec::new();
        for n in 0..50 {
            let t = tx(n % 7, n, (n as usize * 13) % 300);
            sent.push(t.clone());
            b.submit(t, ms(0)).unwrap();
        }
        let sealed = b.pop().unwrap();
        let batch = Batch::new(sent);
        assert_eq!(sealed.txs, 50);
        assert_eq!(sealed.digest, batch.digest());
        assert_eq!(sealed.decode().unwrap(), batch);
        assert_eq!(sealed.bytes.as_ptr() as usize % 16, 0);
        let again = SealedBatch::from_archive(&sealed.bytes).unwrap();
        assert_eq!(again, sealed);
        assert!(SealedBatch::from_archive(&sealed.bytes[..sealed.len() - 1]).is_err());
    }

    #[test]
    fn sending_to_many_peers_does_not_re_encode() {
        let mut b = batcher(|c| c.max_batch_txs = 10);
        for n in 0..10 {
            b.submit(tx(1, n, 64), ms(0)).unwrap();
        }
        assert_eq!(b.stats().encodes, 1);
        let sealed = b.pop().unwrap();
        // "Send" it to the log and to 6 peers.
        let copies: Vec<SealedBatch> = (0..7).map(|_| sealed.clone()).collect();
        for c in &copies {
            assert!(Arc::ptr_eq(&c.bytes, &sealed.bytes));
            assert_eq!(c.digest, sealed.digest);
        }
        assert_eq!(Arc::strong_count(&sealed.bytes), 8);
        assert_eq!(b.stats().encodes, 1);
    }

    #[test]
    fn config_is_validated() {
        let bad = [
            BatcherConfig {
                max_batch_bytes: MAX_BATCH_BYTES + 1,
                ..Default::default()
            },
            BatcherConfig {
                max_batch_txs: 0,
                ..Default::default()
            },
            BatcherConfig {
                max_batch_txs: MAX_BATCH_TXS + 1,
                ..Default::default()
            },
            BatcherConfig {
                max_pool_txs: 1,
                ..Default::default()
            },
            BatcherConfig {
                max_clients: 0,
                ..Default::default()
            },
        ];
        for cfg in bad {
            assert!(Batcher::new(cfg.clone()).is_err(), "{cfg:?}");
        }
    }
}
