//! The committee's public keys and every verification against them.

use crate::cache::{CacheKey, CertCache};
use crate::{bls, insecure, CryptoError, Keypair, Scheme};
use blst::min_sig::{PublicKey, Signature as BlstSignature};
use olympus_types::limits::MAX_NODES;
use olympus_types::{AggregateSignature, Digest, NodeId, PublicKeyBytes, Signature, SignerSet};
use std::collections::{HashSet, VecDeque};
use std::sync::{Mutex, PoisonError};

/// How many aggregate public keys (one per signer set) a [`Committee`] remembers. The
/// same quorum of fastest replicas tends to form certificate after certificate, so a
/// handful of entries saves the key summation (one point addition per signer and one
/// inversion) on most verifications.
pub const APK_CACHE_CAPACITY: usize = 16;

/// In [`Committee::aggregate`]'s search for bad votes, a failing set of fewer votes than
/// this is checked one vote at a time instead of being split further.
const BISECT_BELOW: usize = 4;

/// The committee's public keys, parsed and validated once (on the curve, in G2, not the
/// point at infinity, no two members with the same key), and every check of a signature
/// or certificate against them.
///
/// `Send + Sync`, immutable apart from two small internal caches behind `Mutex`es (of
/// aggregate public keys, and of BLS signatures and certificates that verified); share
/// it behind an `Arc`.
///
/// The verified cache makes a message that reaches a node several times — a proposal
/// every replica forwards, a certificate carried by many messages, a quorum both halves
/// of a replica aggregate — cost one pairing check. Its invariants are
/// [`CertCache`]'s: a key binds this committee, the message, the signer(s) and the
/// signature bytes, and enters only after the full check succeeded.
pub struct Committee {
    scheme: Scheme,
    keys: Vec<PublicKeyBytes>,
    /// Parsed keys (BLS only; empty for the insecure scheme), indexed by node id.
    points: Vec<PublicKey>,
    fingerprint: Digest,
    apk_cache: Mutex<VecDeque<(SignerSet, PublicKey)>>,
    verified: CertCache,
}

/// A signature a driver wants checked in a batch ([`Committee::prime`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// A member's signature on a message.
    Single(NodeId, Digest, Signature),
    /// A certificate: its signers' aggregate signature on one message. Only the
    /// signature is checked here; how many signers it needs is for the certificate's own
    /// check, which then finds the signature verified.
    Certificate(Digest, AggregateSignature),
}

/// Whose key a batch group is checked against.
#[derive(Clone, Copy)]
enum Signers {
    One(usize),
    Set(SignerSet),
}

/// Signatures and certificates a [`Committee`] remembers as verified.
pub const VERIFIED_CACHE_CAPACITY: usize = 8192;

const CTX_FINGERPRINT: &str = "olympus 2025 committee fingerprint v1";
const CTX_BATCH: &str = "olympus 2026 batch verification coefficients v1";

impl Committee {
    /// Builds a committee from its members' public keys, `keys[i]` being node `i`'s.
    ///
    /// Errors: [`CryptoError::BadCommitteeSize`] unless `1 <= keys.len() <= MAX_NODES`,
    /// [`CryptoError::InvalidPublicKey`] for a BLS key that does not decode to a point
    /// of G2 other than infinity, [`CryptoError::DuplicatePublicKey`] for a key already
    /// held by an earlier member (it would count one signature twice).
    ///
    /// This does not check proofs of possession: use [`Committee::with_proofs`] for keys
    /// from a configuration or from other operators, or aggregation is open to rogue-key
    /// attacks.
    pub fn new(scheme: Scheme, keys: &[PublicKeyBytes]) -> Result<Committee, CryptoError> {
        if keys.is_empty() || keys.len() > MAX_NODES {
            return Err(CryptoError::BadCommitteeSize {
                size: keys.len(),
                max: MAX_NODES,
            });
        }
        let mut seen = HashSet::with_capacity(keys.len());
        let mut canonical = Vec::with_capacity(keys.len());
        let mut points = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            let id = NodeId(i as u16);
            let key = match scheme {
                Scheme::Bls => {
                    let pk = bls::decode_pk(key).ok_or(CryptoError::InvalidPublicKey(id))?;
                    points.push(pk);
                    // Re-encoded, so that equal points compare (and hash) equal.
                    PublicKeyBytes(pk.compress())
                }
                Scheme::Insecure => *key,
            };
            if !seen.insert(key) {
                return Err(CryptoError::DuplicatePublicKey(id));
            }
            canonical.push(key);
        }
        let mut h = blake3::Hasher::new_derive_key(CTX_FINGERPRINT);
        h.update(&[scheme as u8]);
        h.update(&(canonical.len() as u64).to_le_bytes());
        for k in &canonical {
            h.update(&k.0);
        }
        Ok(Committee {
            scheme,
            keys: canonical,
            points,
            fingerprint: Digest(*h.finalize().as_bytes()),
            apk_cache: Mutex::new(VecDeque::with_capacity(APK_CACHE_CAPACITY)),
            verified: CertCache::with_capacity(VERIFIED_CACHE_CAPACITY),
        })
    }

    /// [`Committee::new`], and also checks every member's proof of possession
    /// (`pops[i]` for `keys[i]`, see [`Keypair::proof_of_possession`]): the rogue-key
    /// defence that makes same-message aggregation safe. Use this when loading a
    /// configuration.
    ///
    /// Errors: those of [`Committee::new`], [`CryptoError::ProofCountMismatch`],
    /// [`CryptoError::BadProofOfPossession`] naming the first member whose proof fails.
    pub fn with_proofs(
        scheme: Scheme,
        keys: &[PublicKeyBytes],
        pops: &[Signature],
    ) -> Result<Committee, CryptoError> {
        if keys.len() != pops.len() {
            return Err(CryptoError::ProofCountMismatch {
                keys: keys.len(),
                proofs: pops.len(),
            });
        }
        let committee = Committee::new(scheme, keys)?;
        for (i, pop) in pops.iter().enumerate() {
            let id = NodeId(i as u16);
            if !committee.check_proof_of_possession(id, pop) {
                return Err(CryptoError::BadProofOfPossession(id));
            }
        }
        Ok(committee)
    }

    fn check_proof_of_possession(&self, id: NodeId, pop: &Signature) -> bool {
        let i = id.index();
        match self.scheme {
            Scheme::Insecure => insecure::proof_of_possession(&self.keys[i]) == *pop,
            Scheme::Bls => {
                let Some(sig) = bls::decode_sig(pop) else {
                    return false;
                };
                let h = bls::hash(&self.keys[i].0, bls::DST_POP);
                bls::pairing_check(&[(h, self.points[i])], &sig)
            }
        }
    }

    pub fn size(&self) -> usize {
        self.keys.len()
    }

    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// Node `id`'s public key, if `id` is a member.
    pub fn public(&self, id: NodeId) -> Option<PublicKeyBytes> {
        self.keys.get(id.index()).copied()
    }

    /// A digest of the scheme and every public key in order: equal fingerprints mean the
    /// same committee. Binds [`CertCache`] entries to the committee that checked them.
    pub fn fingerprint(&self) -> Digest {
        self.fingerprint
    }

    /// Checks several signatures and certificates in one batch and, if all of them hold,
    /// remembers each as verified, so that the check of each that follows
    /// ([`Committee::verify`], [`Committee::verify_aggregate`]) is a cache hit. Returns
    /// how many were newly verified this way — `Some(0)` when fewer than two were not
    /// remembered already (nothing to gain) — or `None` when the batch held an
    /// undecodable signature or an unknown signer, or failed: then nothing is remembered
    /// and each message's own check finds the bad ones.
    ///
    /// For a driver that holds several received messages at once (a burst of proposals
    /// from one leader, say, or a proposal and the certificate it carries): k signatures
    /// and certificates cost about one pairing check plus k hashes to the curve, 2k small
    /// scalar multiplications and one Miller loop per signer or certificate, instead of k
    /// pairing checks. The 128-bit coefficients are derived by hashing the whole batch, so
    /// whoever chose the signatures cannot predict them; a batch with a bad signature
    /// passes with probability about 2^-128. A no-op for the insecure scheme (its checks cost
    /// nothing).
    pub fn prime(&self, claims: &[Claim]) -> Option<usize> {
        if self.scheme != Scheme::Bls {
            return Some(0);
        }
        // (the group's key: a member, or a certificate's signers; message; signature)
        let mut fresh: Vec<(Signers, &Digest, &Signature, CacheKey)> = Vec::new();
        let mut seen = HashSet::new();
        for claim in claims {
            let (signers, msg, sig, key) = match claim {
                Claim::Single(signer, msg, sig) => {
                    if signer.index() >= self.size() {
                        return None;
                    }
                    let key = CacheKey::signature(&self.fingerprint, *signer, msg, sig);
                    (Signers::One(signer.index()), msg, sig, key)
                }
                Claim::Certificate(msg, agg) => {
                    if self.check_signers(&agg.signers, 1).is_err() {
                        return None;
                    }
                    let key = CacheKey::single(&self.fingerprint, msg, agg);
                    (Signers::Set(agg.signers), msg, &agg.signature, key)
                }
            };
            if !seen.insert(key) || self.verified.lookup(&key) {
                continue;
            }
            fresh.push((signers, msg, sig, key));
        }
        if fresh.len() < 2 {
            return Some(0);
        }
        let mut seed = blake3::Hasher::new_derive_key(CTX_BATCH);
        seed.update(&self.fingerprint.0);
        for (signers, msg, sig, _) in &fresh {
            match signers {
                Signers::One(i) => {
                    seed.update(&[0]);
                    seed.update(&(*i as u16).to_le_bytes());
                }
                Signers::Set(set) => {
                    seed.update(&[1]);
                    for id in set.iter() {
                        seed.update(&id.0.to_le_bytes());
                    }
                }
            }
            seed.update(&msg.0);
            seed.update(&sig.0);
        }
        let mut coefficients = seed.finalize_xof();
        let mut groups: Vec<(Signers, Vec<bls::BatchItem>)> = Vec::new();
        for (signers, msg, sig, _) in &fresh {
            let decoded = bls::decode_sig(sig)?;
            let mut coefficient = [0u8; 16];
            coefficients.fill(&mut coefficient);
            coefficient[0] |= 1; // never zero
            let item = bls::BatchItem {
                msg: bls::hash(&msg.0, bls::DST_SIG),
                sig: decoded,
                coefficient,
            };
            // One Miller loop per member (its messages summed first) and one per
            // certificate.
            match groups
                .iter_mut()
                .find(|(s, _)| matches!((s, signers), (Signers::One(a), Signers::One(b)) if a == b))
            {
                Some((_, items)) => items.push(item),
                None => groups.push((*signers, vec![item])),
            }
        }
        let mut keyed = Vec::with_capacity(groups.len());
        for (signers, items) in groups {
            let pk = match signers {
                Signers::One(i) => self.points[i],
                Signers::Set(set) => self.aggregate_key(&set)?,
            };
            keyed.push((pk, items));
        }
        if !bls::batch_check(&keyed) {
            return None;
        }
        let n = fresh.len();
        for (_, _, _, key) in fresh {
            self.verified.insert(key);
        }
        Some(n)
    }

    /// Empties the cache of verified signatures and certificates, so that the next check
    /// of each does the full work again. For benchmarks: nothing else needs it, since
    /// the cache holds only what verified against this very committee.
    pub fn forget_verified(&self) {
        self.verified.clear();
    }

    /// Checks `signer`'s signature on `msg`. The signature is decoded and group-checked
    /// (it comes from the network); the key was validated at construction.
    pub fn verify(&self, signer: NodeId, msg: &Digest, sig: &Signature) -> Result<(), CryptoError> {
        let i = signer.index();
        if i >= self.size() {
            return Err(CryptoError::UnknownSigner(signer));
        }
        let ok = match self.scheme {
            Scheme::Insecure => insecure::sign(&self.keys[i], &msg.0) == *sig,
            Scheme::Bls => {
                let key = CacheKey::signature(&self.fingerprint, signer, msg, sig);
                if self.verified.lookup(&key) {
                    return Ok(());
                }
                let ok = match bls::decode_sig(sig) {
                    Some(s) => {
                        bls::pairing_check(&[(bls::hash(&msg.0, bls::DST_SIG), self.points[i])], &s)
                    }
                    None => false,
                };
                if ok {
                    self.verified.insert(key);
                }
                ok
            }
        };
        if ok {
            Ok(())
        } else {
            Err(CryptoError::InvalidSignature)
        }
    }

    /// The structural checks of a certificate: every signer is a member
    /// ([`CryptoError::UnknownSigner`] naming the lowest outsider) and there are at least
    /// `max(threshold, 1)` of them ([`CryptoError::NotEnoughSigners`]): a certificate
    /// always needs one signer, whatever the threshold.
    pub fn check_signers(&self, signers: &SignerSet, threshold: usize) -> Result<(), CryptoError> {
        if signers.bound() > self.size() {
            if let Some(id) = signers.iter().find(|id| id.index() >= self.size()) {
                return Err(CryptoError::UnknownSigner(id));
            }
        }
        let have = signers.len();
        let need = threshold.max(1);
        if have < need {
            return Err(CryptoError::NotEnoughSigners { have, need });
        }
        Ok(())
    }

    /// Checks a certificate: every signer is a committee member, there are at least
    /// `threshold` (and at least one) distinct signers, and the aggregate signature
    /// verifies against the aggregate of their public keys — for BLS, one group check of
    /// the signature, a sum of the signers' keys (cached per signer set) and one pairing
    /// check.
    pub fn verify_aggregate(
        &self,
        msg: &Digest,
        agg: &AggregateSignature,
        threshold: usize,
    ) -> Result<(), CryptoError> {
        self.check_signers(&agg.signers, threshold)?;
        self.verify_aggregate_signature(msg, agg)
    }

    /// [`Committee::verify_aggregate`] through `cache`: a certificate whose exact bytes
    /// already verified against this committee skips the signature check (the signer
    /// checks and the threshold are always applied). See [`CertCache`] for the
    /// invariants.
    pub fn verify_aggregate_cached(
        &self,
        cache: &CertCache,
        msg: &Digest,
        agg: &AggregateSignature,
        threshold: usize,
    ) -> Result<(), CryptoError> {
        self.check_signers(&agg.signers, threshold)?;
        let key = CacheKey::single(&self.fingerprint, msg, agg);
        if cache.lookup(&key) {
            return Ok(());
        }
        self.verify_aggregate_signature(msg, agg)?;
        cache.insert(key);
        Ok(())
    }

    /// The cryptographic half of `verify_aggregate`; signers checked by the caller.
    fn verify_aggregate_signature(
        &self,
        msg: &Digest,
        agg: &AggregateSignature,
    ) -> Result<(), CryptoError> {
        let ok = match self.scheme {
            Scheme::Insecure => {
                let mut expect = Signature::EMPTY;
                for id in agg.signers.iter() {
                    insecure::xor_into(
                        &mut expect,
                        &insecure::sign(&self.keys[id.index()], &msg.0),
                    );
                }
                expect == agg.signature
            }
            Scheme::Bls => {
                let key = CacheKey::single(&self.fingerprint, msg, agg);
                if self.verified.lookup(&key) {
                    return Ok(());
                }
                let Some(sig) = bls::decode_sig(&agg.signature) else {
                    return Err(CryptoError::InvalidSignature);
                };
                let h = bls::hash(&msg.0, bls::DST_SIG);
                let ok = self.check_with_aggregate_key(&agg.signers, &h, &sig);
                if ok {
                    self.verified.insert(key);
                }
                ok
            }
        };
        if ok {
            Ok(())
        } else {
            Err(CryptoError::InvalidSignature)
        }
    }

    /// The cached sum of the signers' BLS keys, if a signature verified against it lately.
    fn cached_aggregate_key(&self, signers: &SignerSet) -> Option<PublicKey> {
        self.apk_cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|(s, _)| s == signers)
            .map(|(_, apk)| *apk)
    }

    /// The sum of the signers' BLS keys (members), from the cache when it is there.
    fn aggregate_key(&self, signers: &SignerSet) -> Option<PublicKey> {
        self.cached_aggregate_key(signers)
            .or_else(|| self.sum_keys(signers))
    }

    fn sum_keys(&self, signers: &SignerSet) -> Option<PublicKey> {
        bls::sum_pks(signers.iter().map(|id| &self.points[id.index()]))
    }

    /// Checks `sig` on `h` against the sum of the signers' BLS keys (the signers must be
    /// members), taking the sum from the per-signer-set cache when it is there. A sum
    /// enters the cache only once a signature verified against it, so certificates with
    /// bad signatures cannot flush it.
    fn check_with_aggregate_key(
        &self,
        signers: &SignerSet,
        h: &bls::HashedMsg,
        sig: &BlstSignature,
    ) -> bool {
        let cached = self.cached_aggregate_key(signers);
        let Some(apk) = cached.or_else(|| self.sum_keys(signers)) else {
            return false;
        };
        if !bls::pairing_check(&[(*h, apk)], sig) {
            return false;
        }
        if cached.is_some() {
            return true;
        }
        let mut cache = self
            .apk_cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if !cache.iter().any(|(s, _)| s == signers) {
            if cache.len() >= APK_CACHE_CAPACITY {
                cache.pop_front();
            }
            cache.push_back((*signers, apk));
        }
        true
    }

    /// Aggregate-then-verify: collects the votes (first vote of each signer wins; votes
    /// from non-members are rejected), sums them and verifies the sum once. Only if that
    /// fails are the bad votes searched for — by bisection for BLS (for one bad vote
    /// among 67, about 10 pairing checks instead of 67; never more than about `n + 6`),
    /// one by one for the insecure scheme; the bad ones are dropped and the good ones
    /// summed again.
    ///
    /// Returns the certificate of the valid votes — which may have fewer signers than a
    /// quorum, the caller decides; [`AggregateSignature::EMPTY`] if none was valid — and
    /// the ids whose votes were invalid (non-members, undecodable or wrong signatures),
    /// sorted and without repeats.
    pub fn aggregate(
        &self,
        msg: &Digest,
        votes: &[(NodeId, Signature)],
    ) -> (AggregateSignature, Vec<NodeId>) {
        let mut bad = Vec::new();
        let votes = self.first_vote_of_each_member(votes.iter().copied(), &mut bad);
        let agg = match self.scheme {
            Scheme::Insecure => {
                let all = insecure_aggregate(votes.iter().copied());
                if self.verify_aggregate_signature(msg, &all).is_ok() {
                    all
                } else {
                    let good = votes.into_iter().filter(|(id, sig)| {
                        let ok = insecure::sign(&self.keys[id.index()], &msg.0) == *sig;
                        if !ok {
                            bad.push(*id);
                        }
                        ok
                    });
                    insecure_aggregate(good)
                }
            }
            Scheme::Bls => {
                let mut decoded = Vec::with_capacity(votes.len());
                for (id, sig) in votes {
                    match bls::decode_sig_on_curve(&sig) {
                        Some(s) => decoded.push((id, s)),
                        None => bad.push(id),
                    }
                }
                self.bls_aggregate_verified(msg, decoded, &mut bad)
            }
        };
        bad.sort_unstable();
        bad.dedup();
        (agg, bad)
    }

    fn bls_aggregate_verified(
        &self,
        msg: &Digest,
        decoded: Vec<(NodeId, BlstSignature)>,
        bad: &mut Vec<NodeId>,
    ) -> AggregateSignature {
        let h = bls::hash(&msg.0, bls::DST_SIG);
        if let Some(sum) = bls::sum_sigs(decoded.iter().map(|(_, s)| s)) {
            let mut signers = SignerSet::new();
            for (id, _) in &decoded {
                signers.insert(*id);
            }
            let agg = AggregateSignature {
                signers,
                signature: Signature(sum.compress()),
            };
            let key = CacheKey::single(&self.fingerprint, msg, &agg);
            if self.verified.lookup(&key) {
                return agg;
            }
            // The group check on the sum, not on each vote: the certificate is the sum.
            if bls::sig_is_valid_point(&sum)
                && self.check_with_aggregate_key(&agg.signers, &h, &sum)
            {
                self.verified.insert(key);
                return agg;
            }
        }
        // Slow path: someone sent a bad vote. Find the bad ones by halving, hashing the
        // message once.
        let first_bad = bad.len();
        self.find_bad_votes(&h, &decoded, false, bad);
        let found = &bad[first_bad..];
        let good: Vec<_> = decoded
            .into_iter()
            .filter(|(id, _)| !found.contains(id))
            .collect();
        bls_aggregate(&good)
    }

    /// Finds the invalid votes among `votes`, whose sum is known to fail, and appends
    /// their ids to `bad`. Bisection: split in two and check the left half; if it
    /// passes, the right half must fail (the check of a sum is the product of the checks
    /// of its parts), so descend into it without checking it; otherwise check the right
    /// half too and descend into whichever fails. When both halves fail, descend into
    /// both the first time (`dense == false`); if it happens again below, bad votes are
    /// dense, so check every vote of both halves one by one. Sets smaller than
    /// [`BISECT_BELOW`] are checked one vote at a time.
    ///
    /// Cost in pairing checks, at n = 67 votes: one bad vote at most 12 (about 10 on
    /// average) instead of 67, so a single Byzantine voter cannot make every certificate
    /// cost a leader tens of milliseconds; two bad about 17, five about 53; however many
    /// are bad, never more than about n + 6. Every vote not reported bad lies in a set
    /// whose sum passed, so the sum of all of them — the certificate — verifies.
    fn find_bad_votes(
        &self,
        h: &bls::HashedMsg,
        votes: &[(NodeId, BlstSignature)],
        dense: bool,
        bad: &mut Vec<NodeId>,
    ) {
        let one_by_one = |votes: &[(NodeId, BlstSignature)], bad: &mut Vec<NodeId>| {
            for v in votes {
                if !self.check_votes(h, std::slice::from_ref(v)) {
                    bad.push(v.0);
                }
            }
        };
        if let [(id, _)] = votes {
            bad.push(*id);
            return;
        }
        if votes.len() < BISECT_BELOW {
            one_by_one(votes, bad);
            return;
        }
        let (left, right) = votes.split_at(votes.len() / 2);
        if self.check_votes(h, left) {
            self.find_bad_votes(h, right, dense, bad);
        } else if self.check_votes(h, right) {
            self.find_bad_votes(h, left, dense, bad);
        } else if dense {
            one_by_one(votes, bad);
        } else {
            self.find_bad_votes(h, left, true, bad);
            self.find_bad_votes(h, right, true, bad);
        }
    }

    /// Whether the sum of `votes` (distinct members) is a valid signature on `h`.
    fn check_votes(&self, h: &bls::HashedMsg, votes: &[(NodeId, BlstSignature)]) -> bool {
        let (Some(sig), Some(apk)) = (
            bls::sum_sigs(votes.iter().map(|(_, s)| s)),
            bls::sum_pks(votes.iter().map(|(id, _)| &self.points[id.index()])),
        ) else {
            return false;
        };
        bls::sig_is_valid_point(&sig) && bls::pairing_check(&[(*h, apk)], &sig)
    }

    /// Aggregates votes without verifying them, for callers that verified each vote on
    /// arrival. Non-members, repeated signers (after the first) and BLS signatures that
    /// do not decode to a curve point are left out: the result's `signers` says which
    /// votes went in. [`AggregateSignature::EMPTY`] when none did.
    pub fn aggregate_unchecked(&self, votes: &[(NodeId, Signature)]) -> AggregateSignature {
        self.aggregate_unchecked_iter(votes.iter().copied())
    }

    /// Aggregates votes on different messages (one per signer, e.g. timeouts that carry
    /// each signer's highest certified view) into one signature, without verifying them;
    /// verify with [`Committee::verify_aggregate_multi`] given the same `(signer,
    /// message)` pairs. Votes are left out as in [`Committee::aggregate_unchecked`]; the
    /// result's `signers` says which went in.
    pub fn aggregate_multi_unchecked(
        &self,
        votes: &[(NodeId, Digest, Signature)],
    ) -> AggregateSignature {
        self.aggregate_unchecked_iter(votes.iter().map(|(id, _, sig)| (*id, *sig)))
    }

    fn aggregate_unchecked_iter(
        &self,
        votes: impl Iterator<Item = (NodeId, Signature)>,
    ) -> AggregateSignature {
        let votes = self.first_vote_of_each_member(votes, &mut Vec::new());
        match self.scheme {
            Scheme::Insecure => insecure_aggregate(votes.into_iter()),
            Scheme::Bls => {
                let decoded: Vec<_> = votes
                    .into_iter()
                    .filter_map(|(id, sig)| Some((id, bls::decode_sig_on_curve(&sig)?)))
                    .collect();
                bls_aggregate(&decoded)
            }
        }
    }

    /// Keeps the first vote of each member, in order; non-members go to `bad`.
    fn first_vote_of_each_member(
        &self,
        votes: impl Iterator<Item = (NodeId, Signature)>,
        bad: &mut Vec<NodeId>,
    ) -> Vec<(NodeId, Signature)> {
        let mut seen = SignerSet::new();
        let mut out = Vec::new();
        for (id, sig) in votes {
            if id.index() >= self.size() {
                bad.push(id);
            } else if seen.insert(id) {
                out.push((id, sig));
            }
        }
        out
    }

    /// Checks an aggregate signature over one message per signer: `msgs` lists each
    /// signer with the message it signed. Checks that every listed signer is a member
    /// ([`CryptoError::UnknownSigner`]), listed once ([`CryptoError::DuplicateSigner`]),
    /// that the listed signers are exactly `agg.signers` ([`CryptoError::SignerMismatch`]),
    /// that there are at least `max(threshold, 1)` of them, and that the signature
    /// verifies. For BLS, signers that signed the same message have their keys summed
    /// first, so the cost is one Miller loop per *distinct* message plus one.
    pub fn verify_aggregate_multi(
        &self,
        msgs: &[(NodeId, Digest)],
        agg: &AggregateSignature,
        threshold: usize,
    ) -> Result<(), CryptoError> {
        self.check_multi(msgs, agg, threshold)?;
        self.verify_multi_signature(msgs, agg)
    }

    /// [`Committee::verify_aggregate_multi`] through `cache` (see
    /// [`Committee::verify_aggregate_cached`]).
    pub fn verify_aggregate_multi_cached(
        &self,
        cache: &CertCache,
        msgs: &[(NodeId, Digest)],
        agg: &AggregateSignature,
        threshold: usize,
    ) -> Result<(), CryptoError> {
        self.check_multi(msgs, agg, threshold)?;
        let mut sorted = msgs.to_vec();
        sorted.sort_unstable_by_key(|(id, _)| *id);
        let key = CacheKey::multi(&self.fingerprint, &sorted, agg);
        if cache.lookup(&key) {
            return Ok(());
        }
        self.verify_multi_signature(msgs, agg)?;
        cache.insert(key);
        Ok(())
    }

    fn check_multi(
        &self,
        msgs: &[(NodeId, Digest)],
        agg: &AggregateSignature,
        threshold: usize,
    ) -> Result<(), CryptoError> {
        self.check_signers(&agg.signers, threshold)?;
        let mut listed = SignerSet::new();
        for (id, _) in msgs {
            if id.index() >= self.size() {
                return Err(CryptoError::UnknownSigner(*id));
            }
            if !listed.insert(*id) {
                return Err(CryptoError::DuplicateSigner(*id));
            }
        }
        if listed != agg.signers {
            return Err(CryptoError::SignerMismatch);
        }
        Ok(())
    }

    /// The cryptographic half of `verify_aggregate_multi`; `msgs` checked by the caller.
    fn verify_multi_signature(
        &self,
        msgs: &[(NodeId, Digest)],
        agg: &AggregateSignature,
    ) -> Result<(), CryptoError> {
        let ok = match self.scheme {
            Scheme::Insecure => {
                let mut expect = Signature::EMPTY;
                for (id, msg) in msgs {
                    insecure::xor_into(
                        &mut expect,
                        &insecure::sign(&self.keys[id.index()], &msg.0),
                    );
                }
                expect == agg.signature
            }
            Scheme::Bls => match bls::decode_sig(&agg.signature) {
                Some(sig) => {
                    let mut by_msg: Vec<(Digest, NodeId)> =
                        msgs.iter().map(|(id, m)| (*m, *id)).collect();
                    by_msg.sort_unstable();
                    let mut terms = Vec::new();
                    for group in by_msg.chunk_by(|a, b| a.0 == b.0) {
                        let pks = group.iter().map(|(_, id)| &self.points[id.index()]);
                        match bls::sum_pks(pks) {
                            Some(apk) => terms.push((bls::hash(&group[0].0 .0, bls::DST_SIG), apk)),
                            None => return Err(CryptoError::InvalidSignature),
                        }
                    }
                    bls::pairing_check(&terms, &sig)
                }
                None => false,
            },
        };
        if ok {
            Ok(())
        } else {
            Err(CryptoError::InvalidSignature)
        }
    }
}

fn insecure_aggregate(votes: impl Iterator<Item = (NodeId, Signature)>) -> AggregateSignature {
    let mut agg = AggregateSignature {
        signers: SignerSet::new(),
        signature: Signature::EMPTY,
    };
    for (id, sig) in votes {
        if agg.signers.insert(id) {
            insecure::xor_into(&mut agg.signature, &sig);
        }
    }
    agg // AggregateSignature::EMPTY when no vote went in
}

/// Sums decoded BLS votes (distinct signers) into a certificate.
fn bls_aggregate(votes: &[(NodeId, BlstSignature)]) -> AggregateSignature {
    let Some(sum) = bls::sum_sigs(votes.iter().map(|(_, s)| s)) else {
        return AggregateSignature::EMPTY;
    };
    let mut signers = SignerSet::new();
    for (id, _) in votes {
        signers.insert(*id);
    }
    AggregateSignature {
        signers,
        signature: Signature(sum.compress()),
    }
}

/// Generates the keys of nodes `0..n` with [`Keypair::generate`] and their committee
/// (for tests, the simulator and local clusters).
pub fn generate_committee(
    scheme: Scheme,
    seed: &[u8; 32],
    n: usize,
) -> Result<(Committee, Vec<Keypair>), CryptoError> {
    if n == 0 || n > MAX_NODES {
        return Err(CryptoError::BadCommitteeSize {
            size: n,
            max: MAX_NODES,
        });
    }
    let keypairs: Vec<Keypair> = (0..n)
        .map(|i| Keypair::generate(scheme, seed, NodeId(i as u16)))
        .collect();
    let keys: Vec<PublicKeyBytes> = keypairs.iter().map(Keypair::public).collect();
    Ok((Committee::new(scheme, &keys)?, keypairs))
}

impl std::fmt::Debug for Committee {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Committee")
            .field("scheme", &self.scheme)
            .field("size", &self.size())
            .field("fingerprint", &self.fingerprint)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A signature or certificate that verified is a cache hit the next time; one that
    /// failed is checked (and fails) every time; a hit needs the exact same bytes.
    #[test]
    fn verified_cache_remembers_only_what_verified() {
        let (c, keys) = generate_committee(Scheme::Bls, &[6; 32], 4).unwrap();
        let msg = Digest([3; 32]);
        let good = keys[1].sign(&msg);
        let forged = keys[2].sign(&msg);
        assert!(c.verify(NodeId(1), &msg, &good).is_ok());
        let hits = c.verified.hits();
        assert!(c.verify(NodeId(1), &msg, &good).is_ok());
        assert_eq!(c.verified.hits(), hits + 1);
        for _ in 0..2 {
            assert!(c.verify(NodeId(1), &msg, &forged).is_err());
        }
        assert!(c.verify(NodeId(2), &msg, &good).is_err());
        assert!(c.verify(NodeId(1), &Digest([4; 32]), &good).is_err());
        assert_eq!(c.verified.hits(), hits + 1);
        // Aggregates: a quorum summed by `aggregate` is then a hit for
        // `verify_aggregate`; a quorum with a bad vote is caught every time.
        let votes: Vec<_> = (0..3u16)
            .map(|i| (NodeId(i), keys[i as usize].sign(&msg)))
            .collect();
        let (agg, bad) = c.aggregate(&msg, &votes);
        assert!(bad.is_empty());
        let hits = c.verified.hits();
        assert!(c.verify_aggregate(&msg, &agg, 3).is_ok());
        assert_eq!(c.verified.hits(), hits + 1);
        assert!(c.verify_aggregate(&msg, &agg, 4).is_err());
        let mut with_bad = votes.clone();
        with_bad[2].1 = keys[3].sign(&msg);
        for _ in 0..2 {
            let (agg, bad) = c.aggregate(&msg, &with_bad);
            assert_eq!(bad, vec![NodeId(2)]);
            assert_eq!(agg.signers.len(), 2);
        }
    }

    /// A batch of good signatures from several signers is remembered whole: each later
    /// `verify` is a hit. A batch with one bad signature (or an unknown signer, or one
    /// claim) remembers nothing, and each message's own check still sorts good from bad.
    #[test]
    fn prime_checks_a_batch_and_remembers_it_only_if_all_hold() {
        let (c, keys) = generate_committee(Scheme::Bls, &[8; 32], 4).unwrap();
        let claim = |signer: u16, tag: u8| {
            let m = Digest([tag; 32]);
            (NodeId(signer), m, keys[signer as usize].sign(&m))
        };
        let claims = |v: &[(NodeId, Digest, Signature)]| -> Vec<Claim> {
            v.iter()
                .map(|(s, m, sig)| Claim::Single(*s, *m, *sig))
                .collect()
        };
        let good = vec![
            claim(1, 1),
            claim(1, 2),
            claim(1, 3),
            claim(2, 4),
            claim(3, 5),
        ];
        // A duplicate claim counts once.
        let mut with_dup = good.clone();
        with_dup.push(good[0]);
        assert_eq!(c.prime(&claims(&with_dup)), Some(5));
        let hits = c.verified.hits();
        for (s, m, sig) in &good {
            assert!(c.verify(*s, m, sig).is_ok());
        }
        assert_eq!(c.verified.hits(), hits + 5);
        // Already remembered: nothing new to check.
        assert_eq!(c.prime(&claims(&good)), Some(0));

        c.forget_verified();
        let mut bad = good.clone();
        bad[3].2 = keys[0].sign(&bad[3].1); // node 0's signature claimed as node 2's
        assert_eq!(c.prime(&claims(&bad)), None);
        let hits = c.verified.hits();
        for (i, (s, m, sig)) in bad.iter().enumerate() {
            assert_eq!(c.verify(*s, m, sig).is_ok(), i != 3);
        }
        assert_eq!(
            c.verified.hits(),
            hits,
            "nothing of a failed batch was remembered"
        );

        c.forget_verified();
        assert_eq!(
            c.prime(&claims(&good[..1])),
            Some(0),
            "one claim: nothing to gain"
        );
        let mut stranger = good.clone();
        stranger[0].0 = NodeId(9);
        assert_eq!(c.prime(&claims(&stranger)), None);
        let mut garbage = good.clone();
        garbage[1].2 = Signature([0xff; olympus_types::SIGNATURE_LEN]);
        assert_eq!(c.prime(&claims(&garbage)), None);
        // The insecure scheme has nothing to gain.
        let (ci, ki) = generate_committee(Scheme::Insecure, &[8; 32], 2).unwrap();
        let m = Digest([1; 32]);
        let m2 = Digest([2; 32]);
        assert_eq!(
            ci.prime(&[
                Claim::Single(NodeId(0), m, ki[0].sign(&m)),
                Claim::Single(NodeId(1), m2, ki[1].sign(&m2))
            ]),
            Some(0)
        );
    }

    /// A proposal's signature and the certificate it carries, checked in one batch: the
    /// certificate's own check then costs nothing, and a forged certificate fails the
    /// batch without being remembered.
    #[test]
    fn prime_checks_certificates_with_single_signatures() {
        let (c, keys) = generate_committee(Scheme::Bls, &[3; 32], 4).unwrap();
        let m = Digest([1; 32]);
        let votes: Vec<_> = [0u16, 2, 3]
            .iter()
            .map(|&i| (NodeId(i), keys[i as usize].sign(&m)))
            .collect();
        let cert = c.aggregate_unchecked(&votes);
        let p = Digest([2; 32]);
        let proposal = Claim::Single(NodeId(1), p, keys[1].sign(&p));
        assert_eq!(c.prime(&[proposal, Claim::Certificate(m, cert)]), Some(2));
        let hits = c.verified.hits();
        assert!(c.verify_aggregate(&m, &cert, 3).is_ok());
        assert_eq!(
            c.verified.hits(),
            hits + 1,
            "the certificate was remembered"
        );
        assert!(
            c.verify_aggregate(&m, &cert, 4).is_err(),
            "the threshold is still the certificate's own check"
        );

        c.forget_verified();
        let mut forged = cert;
        forged.signers.insert(NodeId(1)); // claims a signer whose vote is not in the sum
        assert_eq!(c.prime(&[proposal, Claim::Certificate(m, forged)]), None);
        assert!(c.verify_aggregate(&m, &forged, 3).is_err());
        let mut outsider = cert;
        outsider.signers.insert(NodeId(7));
        assert_eq!(c.prime(&[proposal, Claim::Certificate(m, outsider)]), None);
        assert_eq!(
            c.prime(&[proposal, Claim::Certificate(m, AggregateSignature::EMPTY)]),
            None
        );
    }

    #[test]
    fn aggregate_key_cache_is_bounded_and_correct() {
        let (c, keys) = generate_committee(Scheme::Bls, &[5; 32], 6).unwrap();
        let msg = Digest([9; 32]);
        // Every non-empty subset of 6 members: 63 signer sets, more than the capacity.
        for mask in 1u32..64 {
            let votes: Vec<_> = (0..6u16)
                .filter(|i| mask & (1 << i) != 0)
                .map(|i| (NodeId(i), keys[i as usize].sign(&msg)))
                .collect();
            let agg = c.aggregate_unchecked(&votes);
            assert_eq!(c.verify_aggregate(&msg, &agg, votes.len()), Ok(()));
            let len = c.apk_cache.lock().unwrap().len();
            assert!(len <= APK_CACHE_CAPACITY);
            // A cached aggregate key must be the one of its own signer set.
            let cached: Vec<_> = c.apk_cache.lock().unwrap().iter().copied().collect();
            for (set, apk) in cached {
                let fresh = bls::sum_pks(set.iter().map(|id| &c.points[id.index()])).unwrap();
                assert_eq!(apk, fresh);
            }
        }
        assert_eq!(c.apk_cache.lock().unwrap().len(), APK_CACHE_CAPACITY);
        // A certificate that fails does not enter its signer set.
        let (c, keys) = generate_committee(Scheme::Bls, &[5; 32], 4).unwrap();
        let mut forged = c.aggregate_unchecked(&[(NodeId(0), keys[0].sign(&msg))]);
        forged.signers.insert(NodeId(1));
        assert!(c.verify_aggregate(&msg, &forged, 1).is_err());
        assert!(c.apk_cache.lock().unwrap().is_empty());
    }
}
