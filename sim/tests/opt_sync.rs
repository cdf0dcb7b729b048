//! Opt Sync in the simulator: the synchronous fault mix (delays within Δ,
//! duplication, crashes and restarts, silent and Twins Byzantine replicas up to
//! f = (n − 1) / 2) at n = 3, 5 and 7, and the positive controls: f + 1 Twins, and
//! messages delayed beyond Δ.

mod sync_suite;

use olympus_protocols::opt_sync::OptSync;
use olympus_sim::{ByzantineChoice, ByzantineKind, SimConfig};
use sync_suite::*;

type P = OptSync;

#[test]
fn n5_without_byzantine_replicas_is_safe_and_live() {
    assert_all_ok::<P>(&SimConfig::synchronous(5, 0), 12);
}

#[test]
fn n3_with_one_byzantine_replica_is_safe_and_live() {
    assert_all_ok::<P>(&SimConfig::synchronous(3, 1), 12);
}

#[test]
fn n5_with_two_byzantine_replicas_is_safe_and_live() {
    assert_all_ok::<P>(&SimConfig::synchronous(5, 2), 12);
}

#[test]
fn n5_with_two_twins_is_safe_and_live() {
    let mut c = SimConfig::synchronous(5, 2);
    c.byzantine_choice = ByzantineChoice::All(ByzantineKind::Twins);
    assert_all_ok::<P>(&c, 10);
}

#[test]
fn n7_with_three_byzantine_replicas_is_safe_and_live() {
    assert_all_ok::<P>(&SimConfig::synchronous(7, 3), 5);
}

#[test]
fn silent_first_leaders_are_replaced() {
    assert_silent_first_leader_is_replaced::<P>(4);
}

#[test]
fn runs_are_deterministic_and_the_cli_config_is_adapted() {
    assert_deterministic::<P>(5, 2);
    assert_cli_config_is_adapted::<P>();
}

#[test]
fn positive_control_f_plus_one_twins_break_safety() {
    let r = positive_control_f_plus_one::<P>(5, 40);
    println!("positive control fired: {}\n{r}", r.violations[0]);
}

#[test]
fn positive_control_delays_beyond_delta_break_safety() {
    let r = positive_control_beyond_delta::<P>(5, 40);
    println!("positive control fired: {}\n{r}", r.violations[0]);
}

// ---------------------------------------------------------------------------------------
// A scripted schedule: an optimistic commit just before a view change.
// ---------------------------------------------------------------------------------------

mod scripted {
    use olympus_crypto::{Committee, Keypair, Scheme};
    use olympus_protocols::opt_sync::OptSync;
    use olympus_protocols::sync_common::{
        cc_quorum, proposal_statement, vote_statement, Proposal, Status, SyncMsg, Vote,
    };
    use olympus_protocols::{
        Action, Context, Dest, Event, Half, Message, Protocol, ReplicaConfig, TimerId,
    };
    use olympus_types::{Batch, Block, Digest, NodeId, Payload, QuorumCert, Transaction};
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::time::Duration;

    type Leader = <OptSync as Protocol>::Leader;
    type Voter = <OptSync as Protocol>::Voter;
    type Safety = <OptSync as Protocol>::Safety;
    type Cx = Context<SyncMsg, Safety>;

    const N: usize = 5;
    const BYZ: [u16; 2] = [1, 3];
    const HONEST: [u16; 3] = [0, 2, 4];
    /// Honest-to-honest delay: well within Δ.
    const HOP: Duration = Duration::from_millis(3);

    enum Ev {
        Msg {
            from: NodeId,
            to: NodeId,
            msg: Box<SyncMsg>,
        },
        Timer {
            node: NodeId,
            leader: bool,
            id: TimerId,
            gen: u64,
        },
    }

    struct Node {
        leader: Leader,
        voter: Voter,
        commits: Vec<(Duration, Digest, bool)>,
        timers: BTreeMap<(bool, TimerId), u64>,
    }

    /// Three honest replicas driven by hand, two Byzantine ones scripted by the test.
    struct World {
        now: Duration,
        seq: u64,
        queue: BTreeMap<(Duration, u64), Ev>,
        nodes: BTreeMap<u16, Node>,
        keys: Vec<Arc<Keypair>>,
        committee: Arc<Committee>,
        conflicts: usize,
        views: BTreeMap<u16, Vec<(Duration, u64)>>,
        delta: Duration,
    }

    impl World {
        fn new() -> World {
            let keys: Vec<_> = (0..N)
                .map(|i| {
                    Arc::new(Keypair::generate(
                        Scheme::Insecure,
                        &[9; 32],
                        NodeId(i as u16),
                    ))
                })
                .collect();
            let pks: Vec<_> = keys.iter().map(|k| k.public()).collect();
            let committee = Arc::new(Committee::new(Scheme::Insecure, &pks).unwrap());
            let mut cfg = ReplicaConfig::new(NodeId(0), N);
            cfg.delta = Duration::from_millis(20);
            let delta = cfg.delta;
            let mut nodes = BTreeMap::new();
            for i in HONEST {
                let mut c = cfg.clone();
                c.id = NodeId(i);
                let (leader, voter) =
                    OptSync::create(&c, keys[i as usize].clone(), committee.clone(), None);
                nodes.insert(
                    i,
                    Node {
                        leader,
                        voter,
                        commits: Vec::new(),
                        timers: BTreeMap::new(),
                    },
                );
            }
            World {
                now: Duration::ZERO,
                seq: 0,
                queue: BTreeMap::new(),
                nodes,
                keys,
                committee,
                conflicts: 0,
                views: BTreeMap::new(),
                delta,
            }
        }

        fn push(&mut self, at: Duration, ev: Ev) {
            self.seq += 1;
            self.queue.insert((at, self.seq), ev);
        }

        /// A Byzantine (or any) replica's message, arriving at `to` after `after`.
        fn inject(&mut self, from: u16, to: u16, msg: SyncMsg, after: Duration) {
            let at = self.now + after;
            self.push(
                at,
                Ev::Msg {
                    from: NodeId(from),
                    to: NodeId(to),
                    msg: Box::new(msg),
                },
            );
        }

        fn apply(&mut self, me: u16, leader: bool, mut cx: Cx) {
            for a in cx.drain() {
                match a {
                    Action::Send { to, msg } => self.route(me, to.0, msg),
                    Action::Broadcast { msg } => {
                        for to in 0..N as u16 {
                            self.route(me, to, msg.clone());
                        }
                    }
                    Action::SetTimer { id, after } => {
                        let node = self.nodes.get_mut(&me).unwrap();
                        let gen = self.seq + 1;
                        node.timers.insert((leader, id), gen);
                        let at = self.now + after;
                        self.push(
                            at,
                            Ev::Timer {
                                node: NodeId(me),
                                leader,
                                id,
                                gen,
                            },
                        );
                    }
                    Action::CancelTimer { id } => {
                        self.nodes
                            .get_mut(&me)
                            .unwrap()
                            .timers
                            .remove(&(leader, id));
                    }
                    Action::Commit(c) => {
                        let now = self.now;
                        let node = self.nodes.get_mut(&me).unwrap();
                        assert_eq!(c.block.height as usize, node.commits.len() + 1);
                        node.commits.push((now, c.digest, c.proof.is_some()));
                    }
                    Action::Event(Event::ConflictingCommit { .. }) => self.conflicts += 1,
                    Action::Event(Event::ViewChanged { to, .. }) => {
                        let now = self.now;
                        self.views.entry(me).or_default().push((now, to));
                    }
                    _ => {}
                }
            }
        }

        fn route(&mut self, from: u16, to: u16, msg: SyncMsg) {
            if !HONEST.contains(&to) {
                return; // The scripted Byzantine replicas read nothing.
            }
            let after = if from == to {
                Duration::from_micros(10)
            } else {
                HOP
            };
            self.inject(from, to, msg, after);
        }

        fn start(&mut self) {
            for i in HONEST {
                let mut cx = Cx::new(self.now);
                self.nodes.get_mut(&i).unwrap().voter.on_start(&mut cx);
                self.apply(i, false, cx);
                let mut cx = Cx::new(self.now);
                self.nodes.get_mut(&i).unwrap().leader.on_start(&mut cx);
                self.apply(i, true, cx);
            }
        }

        /// Runs every event up to `until`.
        fn run_until(&mut self, until: Duration) {
            while let Some((&(at, seq), _)) = self.queue.iter().next() {
                if at > until {
                    break;
                }
                let ev = self.queue.remove(&(at, seq)).unwrap();
                self.now = at;
                match ev {
                    Ev::Msg { from, to, msg } => {
                        let dest = msg.dest();
                        let v = OptSync::verify(*msg, from, &self.committee)
                            .expect("scripted messages verify");
                        let node = self.nodes.get_mut(&to.0).unwrap();
                        let mut cxl = Cx::new(at);
                        let mut cxv = Cx::new(at);
                        if matches!(dest, Dest::Leader | Dest::Both) {
                            node.leader.on_message(from, v.clone(), &mut cxl);
                        }
                        if matches!(dest, Dest::Voter | Dest::Both) {
                            node.voter.on_message(from, v, &mut cxv);
                        }
                        self.apply(to.0, true, cxl);
                        self.apply(to.0, false, cxv);
                    }
                    Ev::Timer {
                        node,
                        leader,
                        id,
                        gen,
                    } => {
                        let n = self.nodes.get_mut(&node.0).unwrap();
                        if n.timers.get(&(leader, id)) != Some(&gen) {
                            continue;
                        }
                        n.timers.remove(&(leader, id));
                        let mut cx = Cx::new(at);
                        if leader {
                            n.leader.on_timer(id, &mut cx);
                        } else {
                            n.voter.on_timer(id, &mut cx);
                        }
                        self.apply(node.0, leader, cx);
                    }
                }
            }
            self.now = until;
        }

        fn key(&self, i: u16) -> &Keypair {
            &self.keys[i as usize]
        }

        fn proposal(&self, view: u64, block: Block, reproposal: Option<QuorumCert>) -> SyncMsg {
            let d = block.digest();
            let signature = self.key(1).sign(&proposal_statement(view, &d));
            SyncMsg::Propose(Box::new(Proposal {
                view,
                block,
                reproposal,
                cc: None,
                signature,
            }))
        }

        fn vote(&self, voter: u16, view: u64, height: u64, block: Digest) -> SyncMsg {
            SyncMsg::Vote(Vote {
                view,
                height,
                block,
                voter: NodeId(voter),
                signature: self.key(voter).sign(&vote_statement(view, height, &block)),
            })
        }

        fn qc(&self, view: u64, height: u64, block: Digest, signers: &[u16]) -> QuorumCert {
            let sigs: Vec<_> = signers
                .iter()
                .map(|&i| {
                    (
                        NodeId(i),
                        self.key(i).sign(&vote_statement(view, height, &block)),
                    )
                })
                .collect();
            QuorumCert {
                view,
                height,
                block,
                sig: self.committee.aggregate_unchecked(&sigs),
            }
        }
    }

    fn block(parent_qc: QuorumCert, tag: u64) -> Block {
        Block {
            parent: parent_qc.block,
            view: 1,
            height: parent_qc.height + 1,
            proposer: NodeId(1),
            justify: parent_qc,
            payload: Payload::Inline(vec![Batch::new(vec![Transaction {
                client: 9,
                nonce: tag,
                payload: vec![tag as u8],
            }])]),
        }
    }

    /// View 1's leader (replica 1) and replica 3 are Byzantine. The leader proposes `B1` to
    /// replicas 0 and 2 and an equivocating `B1'` to replica 4. The Byzantine pair votes
    /// for `B1` towards replica 0 only — which then holds ⌊3n/4⌋+1 = 4 votes and commits
    /// `B1` optimistically at once — and for `B1'` towards 2 and 4, so that `B1'` is
    /// certified too (f + 1 = 3 votes) at the same rank as `B1`. The forwarded proposals
    /// expose the equivocation, everybody blames, and the view changes right after the
    /// optimistic commit; replica 3 then tempts the new leader (replica 2) with a status
    /// locked on `B1'`. The view change must keep `B1`: every honest replica ends up with
    /// `B1` at height 1 and the chain grows on it.
    #[test]
    fn an_optimistic_commit_just_before_a_view_change_survives_it() {
        assert_eq!(cc_quorum(N), 4);
        let mut w = World::new();
        // The Byzantine leader of view 1 starts the view with genesis, like an honest one.
        let g = QuorumCert::genesis();
        let nv = w.proposal(1, Block::genesis(), Some(g));
        for to in HONEST {
            w.inject(1, to, nv.clone(), HOP);
        }
        w.start();
        let d0 = Block::genesis_digest();
        for to in HONEST {
            for byz in BYZ {
                let v = w.vote(byz, 1, 0, d0);
                w.inject(byz, to, v, HOP);
            }
        }
        w.run_until(Duration::from_millis(10));
        let c1 = w.qc(1, 0, d0, &[0, 2, 4]);
        let b1 = block(c1, 1);
        let b1x = block(c1, 2);
        let (d1, d1x) = (b1.digest(), b1x.digest());
        assert_ne!(d1, d1x);
        let p1 = w.proposal(1, b1.clone(), None);
        let p1x = w.proposal(1, b1x.clone(), None);
        w.inject(1, 0, p1.clone(), Duration::from_millis(1));
        w.inject(1, 2, p1, Duration::from_millis(1));
        w.inject(1, 4, p1x, Duration::from_millis(1));
        for byz in BYZ {
            let v = w.vote(byz, 1, 1, d1);
            w.inject(byz, 0, v, Duration::from_millis(2));
            let vx = w.vote(byz, 1, 1, d1x);
            w.inject(byz, 2, vx.clone(), Duration::from_millis(2));
            w.inject(byz, 4, vx, Duration::from_millis(2));
        }
        // Replica 3 offers the leader of view 2 the conflicting certificate of equal rank.
        let bad = w.qc(1, 1, d1x, &[1, 3, 4]);
        w.inject(
            3,
            2,
            SyncMsg::Status(Status {
                view: 2,
                lock: bad,
                cc: None,
            }),
            Duration::from_millis(100),
        );
        let t_commit = w.now;
        w.run_until(Duration::from_millis(30));
        // Replica 0 committed B1 optimistically, in view 1, before anyone quit it.
        let c0 = w.nodes[&0].commits.clone();
        assert_eq!(c0.len(), 1, "replica 0 committed B1 responsively");
        assert_eq!(c0[0].1, d1);
        assert!(c0[0].2, "by a commit certificate");
        assert!(c0[0].0 < t_commit + w.delta);
        assert!(w.views.values().all(|v| v.is_empty()), "still in view 1");
        // Then the view changes, and the chain goes on above B1.
        w.run_until(Duration::from_millis(1000));
        for i in HONEST {
            let v = &w.views[&i];
            assert!(
                v.iter().any(|(_, to)| *to == 2),
                "replica {i} entered view 2"
            );
            assert!(v[0].0 > c0[0].0, "view change after the optimistic commit");
            let c = &w.nodes[&i].commits;
            assert!(c.len() >= 2, "replica {i} commits above B1: {}", c.len());
            assert_eq!(c[0].1, d1, "replica {i} keeps B1");
        }
        let longest = HONEST
            .iter()
            .map(|i| w.nodes[i].commits.len())
            .max()
            .unwrap();
        for i in HONEST {
            let c = &w.nodes[&i].commits;
            let first = &w.nodes[&HONEST[0]].commits;
            let k = c.len().min(first.len());
            assert!(c[..k].iter().zip(&first[..k]).all(|(a, b)| a.1 == b.1));
            assert!(c.len() + 5 >= longest);
        }
        assert_eq!(w.conflicts, 0);
        for i in HONEST {
            let c = &w.nodes[&i].commits;
            println!(
                "replica {i}: views {:?}; first commits {:?}",
                w.views[&i],
                c.iter()
                    .take(3)
                    .map(|(t, d, cc)| (*t, *d, *cc))
                    .collect::<Vec<_>>()
            );
        }
    }
}
