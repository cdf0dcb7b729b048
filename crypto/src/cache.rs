//! A bounded cache of certificates whose signatures were verified.

use olympus_types::{AggregateSignature, Digest, NodeId};
use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

/// Default number of certificates a [`CertCache`] remembers (32-byte keys; about 0.2 MiB
/// at this size). Enough for every certificate of several hundred views, each seen many
/// times (in proposals, timeouts, sync replies).
pub const DEFAULT_CERT_CACHE_CAPACITY: usize = 4096;

/// Remembers certificates whose aggregate signature verified, so that a certificate
/// seen many times costs one pairing check.
///
/// Used through [`Committee::verify_aggregate_cached`](crate::Committee::verify_aggregate_cached)
/// and [`Committee::verify_aggregate_multi_cached`](crate::Committee::verify_aggregate_multi_cached);
/// it is a separate object (not inside the committee) so that each engine shard can own
/// one without sharing a lock, or share one behind an `Arc`, as the placement plan
/// prefers.
///
/// Invariants:
/// - a key is inserted only after the full cryptographic check of that certificate
///   succeeded; a failed or never-verified certificate is never a hit;
/// - a key is a BLAKE3 digest binding the committee (its fingerprint: scheme and every
///   public key), the signed message(s), the signer set and the signature bytes, so a
///   hit means "exactly these bytes verified against exactly this committee";
/// - a hit skips only the pairing: membership of the signers and the threshold are
///   checked on every call, so a certificate verified with one threshold is not accepted
///   for a higher one without enough signers;
/// - at most `capacity` keys are kept; the oldest inserted is evicted first (FIFO).
pub struct CertCache {
    capacity: usize,
    inner: Mutex<Inner>,
    hits: AtomicU64,
    misses: AtomicU64,
}

#[derive(Default)]
struct Inner {
    keys: HashSet<[u8; 32]>,
    order: VecDeque<[u8; 32]>,
}

/// The key of one verified certificate.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct CacheKey([u8; 32]);

const CTX_KEY: &str = "olympus 2025 certificate cache key v1";

impl CacheKey {
    /// Key of a certificate over one message.
    pub(crate) fn single(committee: &Digest, msg: &Digest, agg: &AggregateSignature) -> Self {
        let mut h = blake3::Hasher::new_derive_key(CTX_KEY);
        h.update(&committee.0);
        h.update(&[0]);
        h.update(&msg.0);
        Self::finish(h, agg)
    }

    /// Key of one member's signature on one message.
    pub(crate) fn signature(
        committee: &Digest,
        signer: NodeId,
        msg: &Digest,
        sig: &olympus_types::Signature,
    ) -> Self {
        let mut h = blake3::Hasher::new_derive_key(CTX_KEY);
        h.update(&committee.0);
        h.update(&[2]);
        h.update(&signer.0.to_le_bytes());
        h.update(&msg.0);
        h.update(&sig.0);
        CacheKey(*h.finalize().as_bytes())
    }

    /// Key of a certificate over one message per signer; `msgs` must be sorted by id
    /// (the caller checked that the ids are distinct and equal `agg.signers`).
    pub(crate) fn multi(
        committee: &Digest,
        msgs: &[(NodeId, Digest)],
        agg: &AggregateSignature,
    ) -> Self {
        debug_assert!(msgs.windows(2).all(|w| w[0].0 < w[1].0));
        let mut h = blake3::Hasher::new_derive_key(CTX_KEY);
        h.update(&committee.0);
        h.update(&[1]);
        h.update(&(msgs.len() as u64).to_le_bytes());
        for (id, msg) in msgs {
            h.update(&id.0.to_le_bytes());
            h.update(&msg.0);
        }
        Self::finish(h, agg)
    }

    fn finish(mut h: blake3::Hasher, agg: &AggregateSignature) -> Self {
        for w in agg.signers.0 {
            h.update(&w.to_le_bytes());
        }
        h.update(&agg.signature.0);
        CacheKey(*h.finalize().as_bytes())
    }
}

impl CertCache {
    /// A cache of [`DEFAULT_CERT_CACHE_CAPACITY`] certificates.
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_CERT_CACHE_CAPACITY)
    }

    /// A cache of `capacity` certificates; 0 disables caching.
    pub fn with_capacity(capacity: usize) -> Self {
        CertCache {
            capacity,
            inner: Mutex::new(Inner::default()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The critical sections cannot leave `Inner` inconsistent, so a poisoned lock
        // (a panic elsewhere while holding it) is safe to keep using.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Looks `key` up, counting a hit or a miss.
    pub(crate) fn lookup(&self, key: &CacheKey) -> bool {
        let hit = self.lock().keys.contains(&key.0);
        let counter = if hit { &self.hits } else { &self.misses };
        counter.fetch_add(1, Ordering::Relaxed);
        hit
    }

    /// Records a certificate that just passed full verification.
    pub(crate) fn insert(&self, key: CacheKey) {
        if self.capacity == 0 {
            return;
        }
        let mut inner = self.lock();
        if !inner.keys.insert(key.0) {
            return; // verified concurrently by someone else
        }
        inner.order.push_back(key.0);
        while inner.order.len() > self.capacity {
            if let Some(old) = inner.order.pop_front() {
                inner.keys.remove(&old);
            }
        }
        debug_assert_eq!(inner.keys.len(), inner.order.len());
    }

    /// Certificates accepted from the cache (without a pairing check).
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Lookups that found nothing (each followed by a full verification).
    pub fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }

    /// Certificates remembered now.
    pub fn len(&self) -> usize {
        self.lock().order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Forgets every certificate (the counters are kept).
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.keys.clear();
        inner.order.clear();
    }
}

impl Default for CertCache {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for CertCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertCache")
            .field("capacity", &self.capacity)
            .field("len", &self.len())
            .field("hits", &self.hits())
            .field("misses", &self.misses())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use olympus_types::SIGNATURE_LEN;

    fn key(i: u8) -> CacheKey {
        CacheKey([i; 32])
    }

    #[test]
    fn fifo_eviction_keeps_capacity() {
        let c = CertCache::with_capacity(2);
        c.insert(key(1));
        c.insert(key(2));
        c.insert(key(2)); // duplicate: no double entry
        assert_eq!(c.len(), 2);
        c.insert(key(3));
        assert_eq!(c.len(), 2);
        assert!(!c.lookup(&key(1)), "oldest is evicted");
        assert!(c.lookup(&key(2)) && c.lookup(&key(3)));
        assert_eq!((c.hits(), c.misses()), (2, 1));
        c.clear();
        assert!(c.is_empty() && !c.lookup(&key(3)));
    }

    #[test]
    fn zero_capacity_caches_nothing() {
        let c = CertCache::with_capacity(0);
        c.insert(key(1));
        assert!(c.is_empty());
        assert!(!c.lookup(&key(1)));
    }

    #[test]
    fn keys_bind_every_field() {
        let fp = Digest([1; 32]);
        let msg = Digest([2; 32]);
        let mut agg = AggregateSignature::EMPTY;
        agg.signers.insert(NodeId(0));
        let base = CacheKey::single(&fp, &msg, &agg);
        assert_ne!(base, CacheKey::single(&Digest([9; 32]), &msg, &agg));
        assert_ne!(base, CacheKey::single(&fp, &Digest([9; 32]), &agg));
        let mut other = agg;
        other.signers.insert(NodeId(1));
        assert_ne!(base, CacheKey::single(&fp, &msg, &other));
        let mut other = agg;
        other.signature.0[SIGNATURE_LEN - 1] ^= 1;
        assert_ne!(base, CacheKey::single(&fp, &msg, &other));
        assert_ne!(base, CacheKey::multi(&fp, &[(NodeId(0), msg)], &agg));
    }
}
