//! The driver: carries out a protocol's actions for one node.
//!
//! It owns the two halves of a replica, routes a node's messages to itself locally (a
//! voter's vote to its own leader half never touches a socket), keeps the timer table,
//! and hands everything else to an [`Env`] — the network, the durable store, the
//! commit sink. It reads no clock: the runtime passes `now` in and asks
//! [`Driver::next_deadline`] when to call [`Driver::fire_timers`]. That keeps it
//! runtime-independent and testable without sockets.
//!
//! Invariant: actions are carried out in the order the protocol pushed them, and a
//! [`Action::Persist`] returns only once the state is durable — so no vote queued after
//! it reaches [`Env::send`] before the state that makes it safe is on disk. If
//! persisting fails the driver stops carrying out actions and reports the error: the
//! node must halt rather than vote unsafely. Several `Persist`s in a row with no message
//! between them are carried out as one (the last): it holds the whole state, so the rule
//! holds with one `fdatasync` instead of several.

use olympus_protocols::{
    Action, BatchRef, Commit, Context, Dest, Event, Half, Message, Protocol, TimerId, Verified,
};
use olympus_types::NodeId;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

/// Most local messages processed for one input (a guard against a protocol bug that
/// loops messages to itself forever).
pub const MAX_LOCAL_STEPS: usize = 100_000;

/// What the driver needs from the node around it.
pub trait Env<P: Protocol> {
    /// Sends to another node.
    fn send(&mut self, to: NodeId, msg: &P::Msg);
    /// Sends to every other node (the driver delivers this node's copy locally).
    fn broadcast(&mut self, msg: &P::Msg);
    /// Makes `state` durable; returns only when it is.
    fn persist(&mut self, state: &P::Safety) -> Result<(), String>;
    /// A block is committed.
    fn commit(&mut self, commit: Commit);
    /// An observer event.
    fn event(&mut self, _event: &Event) {}
}

/// Why the driver stopped.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("could not persist safety state: {0}; halting before any unsafe vote leaves")]
    Persist(String),
    #[error("more than {MAX_LOCAL_STEPS} local messages for one input: protocol loop")]
    LocalLoop,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Which {
    Leader,
    Voter,
}

/// Counters the node reports.
#[derive(Clone, Debug, Default)]
pub struct DriverStats {
    pub local_messages: u64,
    pub sent: u64,
    pub broadcasts: u64,
    pub persists: u64,
    /// Persists skipped because a later one in the same input superseded them before
    /// any message left.
    pub persists_coalesced: u64,
    pub commits: u64,
    pub timers_fired: u64,
}

/// One node's protocol instance and its timers.
pub struct Driver<P: Protocol> {
    me: NodeId,
    leader: P::Leader,
    voter: P::Voter,
    deadlines: BTreeMap<(Duration, u64), (Which, TimerId)>,
    armed: HashMap<(Which, TimerId), (Duration, u64)>,
    seq: u64,
    local: VecDeque<P::Msg>,
    /// Leave this node's messages to itself for [`Driver::run_local`] (see
    /// [`Driver::defer_local`]).
    defer_local: bool,
    pub stats: DriverStats,
}

impl<P: Protocol> Driver<P> {
    pub fn new(me: NodeId, leader: P::Leader, voter: P::Voter) -> Self {
        Driver {
            me,
            leader,
            voter,
            deadlines: BTreeMap::new(),
            armed: HashMap::new(),
            seq: 0,
            local: VecDeque::new(),
            defer_local: false,
            stats: DriverStats::default(),
        }
    }

    pub fn leader(&self) -> &P::Leader {
        &self.leader
    }

    pub fn voter(&self) -> &P::Voter {
        &self.voter
    }

    /// With `on`, an input's messages from this node to itself (a leader's proposal to
    /// its own voter, a vote to its own leader) are not handled within the call but
    /// left for [`Driver::run_local`]: a node then lets what the input sent leave
    /// before it, say, persists and signs its own vote on its own proposal. The
    /// runtime must call `run_local` before its next input (the simulator keeps the
    /// default, handling them at once).
    pub fn defer_local(&mut self, on: bool) {
        self.defer_local = on;
    }

    /// Whether messages to this node itself wait for [`Driver::run_local`].
    pub fn has_local(&self) -> bool {
        !self.local.is_empty()
    }

    /// Handles the messages this node sent itself (and what they lead to).
    pub fn run_local(&mut self, now: Duration, env: &mut impl Env<P>) -> Result<(), DriverError> {
        self.drain_local(now, env)
    }

    /// Handles the local messages now unless they are deferred.
    fn settle_local(&mut self, now: Duration, env: &mut impl Env<P>) -> Result<(), DriverError> {
        if self.defer_local {
            Ok(())
        } else {
            self.drain_local(now, env)
        }
    }

    /// Starts both halves.
    pub fn start(&mut self, now: Duration, env: &mut impl Env<P>) -> Result<(), DriverError> {
        let mut cx = Context::new(now);
        self.voter.on_start(&mut cx);
        self.apply(Which::Voter, &mut cx, env)?;
        let mut cx = Context::new(now);
        self.leader.on_start(&mut cx);
        self.apply(Which::Leader, &mut cx, env)?;
        self.settle_local(now, env)
    }

    /// A verified message from another node.
    pub fn on_message(
        &mut self,
        from: NodeId,
        msg: Verified<P::Msg>,
        now: Duration,
        env: &mut impl Env<P>,
    ) -> Result<(), DriverError> {
        self.deliver(from, msg, now, env)?;
        self.settle_local(now, env)
    }

    /// A message from another node, before its signatures are checked: the leader half
    /// may act on it speculatively ([`Half::on_unverified`], for a protocol with
    /// [`Protocol::PEEKS`]). The verified message follows through [`Driver::on_message`].
    pub fn peek(
        &mut self,
        from: NodeId,
        msg: &P::Msg,
        now: Duration,
        env: &mut impl Env<P>,
    ) -> Result<(), DriverError> {
        if !P::PEEKS || from == self.me {
            return Ok(());
        }
        let mut cx = Context::new(now);
        self.leader.on_unverified(from, msg, &mut cx);
        self.apply(Which::Leader, &mut cx, env)?;
        self.settle_local(now, env)
    }

    /// Offers a batch to the leader half; false if it refused (full).
    pub fn on_batch(
        &mut self,
        batch: BatchRef,
        now: Duration,
        env: &mut impl Env<P>,
    ) -> Result<bool, DriverError> {
        let mut cx = Context::new(now);
        let ok = self.leader.on_batch(batch, &mut cx);
        self.apply(Which::Leader, &mut cx, env)?;
        self.settle_local(now, env)?;
        Ok(ok)
    }

    /// When the earliest armed timer is due.
    pub fn next_deadline(&self) -> Option<Duration> {
        self.deadlines.keys().next().map(|(d, _)| *d)
    }

    /// Fires every timer due at `now`.
    pub fn fire_timers(&mut self, now: Duration, env: &mut impl Env<P>) -> Result<(), DriverError> {
        while let Some((&(at, seq), &(which, id))) = self.deadlines.iter().next() {
            if at > now {
                break;
            }
            self.deadlines.remove(&(at, seq));
            self.armed.remove(&(which, id));
            self.stats.timers_fired += 1;
            let mut cx = Context::new(now);
            match which {
                Which::Leader => self.leader.on_timer(id, &mut cx),
                Which::Voter => self.voter.on_timer(id, &mut cx),
            }
            self.apply(which, &mut cx, env)?;
            self.settle_local(now, env)?;
        }
        Ok(())
    }

    fn deliver(
        &mut self,
        from: NodeId,
        msg: Verified<P::Msg>,
        now: Duration,
        env: &mut impl Env<P>,
    ) -> Result<(), DriverError> {
        let (to_leader, to_voter) = match msg.dest() {
            Dest::Leader => (Some(msg), None),
            Dest::Voter => (None, Some(msg)),
            Dest::Both => (Some(msg.clone()), Some(msg)),
        };
        if let Some(m) = to_leader {
            let mut cx = Context::new(now);
            self.leader.on_message(from, m, &mut cx);
            self.apply(Which::Leader, &mut cx, env)?;
        }
        if let Some(m) = to_voter {
            let mut cx = Context::new(now);
            self.voter.on_message(from, m, &mut cx);
            self.apply(Which::Voter, &mut cx, env)?;
        }
        Ok(())
    }

    fn drain_local(&mut self, now: Duration, env: &mut impl Env<P>) -> Result<(), DriverError> {
        let mut steps = 0;
        while let Some(msg) = self.local.pop_front() {
            steps += 1;
            if steps > MAX_LOCAL_STEPS {
                return Err(DriverError::LocalLoop);
            }
            self.stats.local_messages += 1;
            // Our own messages need no signature check.
            self.deliver(self.me, Verified::assume_verified(msg), now, env)?;
        }
        Ok(())
    }

    fn apply(
        &mut self,
        which: Which,
        cx: &mut Context<P::Msg, P::Safety>,
        env: &mut impl Env<P>,
    ) -> Result<(), DriverError> {
        let now = cx.now;
        let actions: Vec<_> = cx.drain().collect();
        // A Persist followed by another Persist before anything leaves the node is
        // superseded: each carries the whole state, and only the state in force when a
        // message leaves must be durable. One store instead of several per input.
        let mut superseded = vec![false; actions.len()];
        let mut later_persist = false;
        for (i, a) in actions.iter().enumerate().rev() {
            match a {
                Action::Persist(_) => {
                    superseded[i] = later_persist;
                    later_persist = true;
                }
                Action::Send { .. } | Action::Broadcast { .. } => later_persist = false,
                _ => {}
            }
        }
        for (action, superseded) in actions.into_iter().zip(superseded) {
            match action {
                Action::Send { to, msg } => {
                    if to == self.me {
                        self.local.push_back(msg);
                    } else {
                        self.stats.sent += 1;
                        env.send(to, &msg);
                    }
                }
                Action::Broadcast { msg } => {
                    self.stats.broadcasts += 1;
                    env.broadcast(&msg);
                    self.local.push_back(msg);
                }
                Action::SetTimer { id, after } => {
                    if let Some(old) = self.armed.remove(&(which, id)) {
                        self.deadlines.remove(&old);
                    }
                    self.seq += 1;
                    let key = (now + after, self.seq);
                    self.deadlines.insert(key, (which, id));
                    self.armed.insert((which, id), key);
                }
                Action::CancelTimer { id } => {
                    if let Some(old) = self.armed.remove(&(which, id)) {
                        self.deadlines.remove(&old);
                    }
                }
                Action::Persist(_) if superseded => self.stats.persists_coalesced += 1,
                Action::Persist(state) => {
                    env.persist(&state).map_err(DriverError::Persist)?;
                    self.stats.persists += 1;
                }
                Action::Commit(c) => {
                    self.stats.commits += 1;
                    env.commit(c);
                }
                Action::FetchBatch { .. } => {}
                Action::Event(e) => env.event(&e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use olympus_crypto::{generate_committee, Committee, Scheme};
    use olympus_protocols::hotstuff::{HotStuff, HsMsg, Safety};
    use olympus_protocols::ReplicaConfig;
    use olympus_types::{Batch, Digest, Transaction};
    use std::sync::Arc;

    /// Records outgoing messages, with how many persists preceded each vote.
    #[derive(Default)]
    struct Recorder {
        out: Vec<(Option<NodeId>, HsMsg)>,
        persisted: Option<Safety>,
        commits: Vec<Digest>,
        fail_persist: bool,
    }

    impl Env<HotStuff> for Recorder {
        fn send(&mut self, to: NodeId, msg: &HsMsg) {
            if let Some(v) = msg.signed_vote() {
                assert!(
                    self.persisted.is_some_and(|s| s.last_voted >= v.view),
                    "vote before persist"
                );
            }
            self.out.push((Some(to), msg.clone()));
        }
        fn broadcast(&mut self, msg: &HsMsg) {
            self.out.push((None, msg.clone()));
        }
        fn persist(&mut self, state: &Safety) -> Result<(), String> {
            if self.fail_persist {
                return Err("disk full".into());
            }
            self.persisted = Some(*state);
            Ok(())
        }
        fn commit(&mut self, c: Commit) {
            self.commits.push(c.digest);
        }
    }

    fn cluster(n: usize) -> (Arc<Committee>, Vec<Driver<HotStuff>>) {
        let (committee, keys) = generate_committee(Scheme::Insecure, &[5; 32], n).unwrap();
        let committee = Arc::new(committee);
        let drivers = keys
            .into_iter()
            .enumerate()
            .map(|(i, k)| {
                let cfg = ReplicaConfig::new(NodeId(i as u16), n);
                let (l, v) = HotStuff::create(&cfg, Arc::new(k), committee.clone(), None);
                Driver::new(NodeId(i as u16), l, v)
            })
            .collect();
        (committee, drivers)
    }

    #[test]
    fn four_drivers_commit_through_a_fifo_network() {
        run_four(false);
    }

    /// With local messages deferred (as the node runs them), an input's own messages
    /// wait for `run_local` (none is handled within the call), and the cluster commits
    /// the same.
    #[test]
    fn deferred_local_messages_wait_for_run_local() {
        run_four(true);
    }

    fn run_four(defer: bool) {
        let (committee, mut drivers) = cluster(4);
        let mut deferred = 0;
        let mut settle = |d: &mut Driver<HotStuff>, e: &mut Recorder, now| {
            if d.has_local() {
                deferred += 1;
                d.run_local(now, e).unwrap();
            }
        };
        for d in &mut drivers {
            d.defer_local(defer);
        }
        let mut envs: Vec<Recorder> = (0..4).map(|_| Recorder::default()).collect();
        let mut now = Duration::ZERO;
        let txs = (0..5)
            .map(|nonce| Transaction {
                client: 1,
                nonce,
                payload: vec![],
            })
            .collect();
        assert!(drivers[1]
            .on_batch(BatchRef::new(Batch::new(txs)), now, &mut envs[1])
            .unwrap());
        settle(&mut drivers[1], &mut envs[1], now);
        for (d, e) in drivers.iter_mut().zip(envs.iter_mut()) {
            d.start(now, e).unwrap();
            settle(d, e, now);
        }
        for _round in 0..200 {
            // Time passes (idle leaders propose on their timers) but no view times out.
            now += Duration::from_millis(20);
            for (d, e) in drivers.iter_mut().zip(envs.iter_mut()) {
                d.fire_timers(now, e).unwrap();
                settle(d, e, now);
            }
            let mut inflight = Vec::new();
            for (i, e) in envs.iter_mut().enumerate() {
                for (to, m) in e.out.drain(..) {
                    match to {
                        Some(t) => inflight.push((NodeId(i as u16), t, m)),
                        None => (0..4).filter(|j| *j != i).for_each(|j| {
                            inflight.push((NodeId(i as u16), NodeId(j as u16), m.clone()))
                        }),
                    }
                }
            }
            for (from, to, m) in inflight {
                let v = HotStuff::verify(m, from, &committee).unwrap();
                let (d, e) = (&mut drivers[to.index()], &mut envs[to.index()]);
                let locals = d.stats.local_messages;
                d.on_message(from, v, now, e).unwrap();
                if defer {
                    // The input's own messages wait for `run_local`.
                    assert_eq!(d.stats.local_messages, locals);
                }
                settle(d, e, now);
            }
        }
        assert_eq!(
            deferred > 0,
            defer,
            "local messages deferred only when asked"
        );
        assert!(envs[0].commits.len() > 10);
        for e in &envs[1..] {
            let k = e.commits.len().min(envs[0].commits.len());
            assert_eq!(e.commits[..k], envs[0].commits[..k]);
        }
        assert!(
            drivers[0].stats.local_messages > 0,
            "votes to self stay local"
        );
    }

    #[test]
    fn consecutive_persists_are_coalesced_but_never_skipped_before_a_send() {
        let (_, mut drivers) = cluster(4);
        let d = &mut drivers[1];
        let mut env = Recorder::default();
        // A real state to vary: the one a view timeout persists.
        d.start(Duration::ZERO, &mut env).unwrap();
        let first = d.next_deadline().expect("view timer armed");
        d.fire_timers(first, &mut env).unwrap();
        let template = env.persisted.expect("a timeout persists");
        let before = d.stats.persists;
        let s = |v| Safety {
            last_voted: v,
            ..template
        };
        let mut cx = Context::new(Duration::ZERO);
        cx.persist(s(1));
        cx.persist(s(2));
        cx.broadcast(HsMsg::Fetch(Digest::ZERO));
        cx.persist(s(3));
        cx.persist(s(4));
        d.apply(Which::Voter, &mut cx, &mut env).unwrap();
        assert_eq!(
            d.stats.persists - before,
            2,
            "one store before the broadcast, one after"
        );
        assert_eq!(d.stats.persists_coalesced, 2);
        assert_eq!(env.persisted.map(|p| p.last_voted), Some(4));
    }

    #[test]
    fn timers_fire_in_order_and_a_failed_persist_halts() {
        let (_, mut drivers) = cluster(4);
        let mut env = Recorder::default();
        let d = &mut drivers[2];
        d.start(Duration::ZERO, &mut env).unwrap();
        let first = d.next_deadline().expect("view timer armed");
        d.fire_timers(first - Duration::from_millis(1), &mut env)
            .unwrap();
        assert_eq!(d.stats.timers_fired, 0);
        env.fail_persist = true;
        let err = d.fire_timers(first, &mut env).unwrap_err();
        assert!(matches!(err, DriverError::Persist(_)));
        assert!(
            !env.out.iter().any(|(_, m)| matches!(m, HsMsg::Timeout(_))),
            "the timeout must not leave when its state could not be persisted"
        );
    }
}
