//! Apollo in the simulator: the synchronous fault mix (delays within Δ, duplication,
//! crashes and restarts, silent and Twins Byzantine replicas up to f = (n − 1) / 2 — a
//! Twins pair is an equivocating round leader and view-change leader) at n = 3, 5 and 7,
//! and the positive controls: f + 1 Twins (generic), and messages delayed beyond Δ — a
//! scripted schedule (see [`scripted`]). The generic "beyond Δ" mix of the suite has no
//! Byzantine replica and found no violation in 40 seeds, as expected: without a
//! Byzantine replica the proposers of a committed window hold it and lock on it
//! themselves, and two root certificates of one view need a replica that votes twice.

mod sync_suite;

use olympus_protocols::apollo::Apollo;
use olympus_sim::{ByzantineChoice, ByzantineKind, SimConfig};
use sync_suite::*;

type P = Apollo;

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

/// Silent replicas 1 and 3 of n = 5: no view ever has f + 1 = 3 consecutive honest round
/// leaders, so the Apollo commit never fires; the 2Δ root commit of the view change must
/// carry the chain.
#[test]
fn silent_replicas_between_every_honest_pair_are_tolerated() {
    let mut c = SimConfig::synchronous(5, 2);
    c.byzantine_nodes = Some(vec![olympus_types::NodeId(1), olympus_types::NodeId(3)]);
    c.byzantine_choice = ByzantineChoice::All(ByzantineKind::Silent);
    assert_all_ok::<P>(&c, 4);
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

// ---------------------------------------------------------------------------------------
// A scripted schedule: the Δ assumption broken on one link.
// ---------------------------------------------------------------------------------------

/// Why a scripted positive control: inside a view Apollo's commit needs no timing (one of
/// the f + 1 round leaders of the committed window is honest and signs one block per
/// position), and with no Byzantine replica the window's own proposers lock on it at the
/// next view change, so the generic "delays beyond Δ" mix (no Byzantine replica) finds
/// no violation. What Δ protects is the view change: every honest replica must hold a
/// committed window — forwarded by the committer — before it locks. The schedule below
/// breaks exactly that, with one Byzantine replica (within f) and one slow honest link;
/// the same schedule with the link within Δ stays safe.
mod scripted {
    use olympus_crypto::{Committee, Keypair, Scheme};
    use olympus_protocols::apollo::{
        blame_statement, proposal_statement, vote_statement, Apollo, ApolloMsg, Blame, Proposal,
        Vote,
    };
    use olympus_protocols::{
        Action, Context, Dest, Event, Half, Message, Protocol, ReplicaConfig, TimerId,
    };
    use olympus_types::{Batch, Block, Digest, NodeId, Payload, QuorumCert, Transaction};
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::time::Duration;

    type Leader = <Apollo as Protocol>::Leader;
    type Voter = <Apollo as Protocol>::Voter;
    type Safety = <Apollo as Protocol>::Safety;
    type Cx = Context<ApolloMsg, Safety>;

    const N: usize = 3;
    /// Replica 2 is Byzantine: the round leader of position 1 in view 1 and the
    /// view-change leader of view 2. Replica 0 leads position 2 of view 1.
    const BYZ: u16 = 2;
    const HONEST: [u16; 2] = [0, 1];
    const HOP: Duration = Duration::from_millis(3);

    enum Ev {
        Msg {
            from: NodeId,
            to: NodeId,
            msg: Box<ApolloMsg>,
        },
        Timer {
            node: u16,
            leader: bool,
            id: TimerId,
            gen: u64,
        },
    }

    struct Node {
        leader: Leader,
        voter: Voter,
        commits: Vec<Digest>,
        timers: BTreeMap<(bool, TimerId), u64>,
    }

    /// Two honest replicas driven by hand; the Byzantine one is scripted by the test.
    struct World {
        now: Duration,
        seq: u64,
        queue: BTreeMap<(Duration, u64), Ev>,
        nodes: BTreeMap<u16, Node>,
        keys: Vec<Arc<Keypair>>,
        committee: Arc<Committee>,
        conflicts: usize,
        /// Delay of every message from replica 0 to replica 1.
        slow_link: Duration,
    }

    impl World {
        fn new(slow_link: Duration) -> World {
            let keys: Vec<_> = (0..N)
                .map(|i| {
                    Arc::new(Keypair::generate(
                        Scheme::Insecure,
                        &[7; 32],
                        NodeId(i as u16),
                    ))
                })
                .collect();
            let pks: Vec<_> = keys.iter().map(|k| k.public()).collect();
            let committee = Arc::new(Committee::new(Scheme::Insecure, &pks).unwrap());
            let mut nodes = BTreeMap::new();
            for i in HONEST {
                let mut c = ReplicaConfig::new(NodeId(i), N);
                c.delta = Duration::from_millis(20);
                let (leader, voter) =
                    Apollo::create(&c, keys[i as usize].clone(), committee.clone(), None);
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
                slow_link,
            }
        }

        fn push(&mut self, at: Duration, ev: Ev) {
            self.seq += 1;
            self.queue.insert((at, self.seq), ev);
        }

        fn inject(&mut self, from: u16, to: u16, msg: ApolloMsg, after: Duration) {
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

        fn route(&mut self, from: u16, to: u16, msg: ApolloMsg) {
            if to == BYZ {
                return; // the scripted replica reads nothing
            }
            let after = if from == to {
                Duration::from_micros(10)
            } else if (from, to) == (0, 1) {
                self.slow_link
            } else {
                HOP
            };
            self.inject(from, to, msg, after);
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
                        self.seq += 1;
                        let gen = self.seq;
                        let node = self.nodes.get_mut(&me).unwrap();
                        node.timers.insert((leader, id), gen);
                        let at = self.now + after;
                        self.push(
                            at,
                            Ev::Timer {
                                node: me,
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
                        let node = self.nodes.get_mut(&me).unwrap();
                        assert_eq!(c.block.height as usize, node.commits.len() + 1);
                        node.commits.push(c.digest);
                    }
                    Action::Event(Event::ConflictingCommit { .. }) => self.conflicts += 1,
                    _ => {}
                }
            }
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
                        let v = Apollo::verify(*msg, from, &self.committee)
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
                        let n = self.nodes.get_mut(&node).unwrap();
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
                        self.apply(node, leader, cx);
                    }
                }
            }
            self.now = until;
        }

        fn byz_sign(&self, view: u64, root: bool, block: Block) -> ApolloMsg {
            let signature =
                self.keys[BYZ as usize].sign(&proposal_statement(view, root, &block.digest()));
            ApolloMsg::Propose(Box::new(Proposal {
                view,
                block,
                root,
                rank_qc: None,
                signature,
            }))
        }
    }

    /// Position 1 of view 1, by the Byzantine replica 2, on genesis.
    fn first_block(tag: u64) -> Block {
        Block {
            parent: Block::genesis_digest(),
            view: 1,
            height: 1,
            proposer: NodeId(BYZ),
            justify: QuorumCert::genesis(),
            payload: Payload::Inline(vec![Batch::new(vec![Transaction {
                client: 9,
                nonce: tag,
                payload: vec![tag as u8],
            }])]),
        }
    }

    /// Replica 2 signs `B1` for replica 0 and `B1'` for replica 1 at position 1 of view 1.
    /// Replica 0 delivers `B1`, proposes position 2 on it and commits `B1` (window of
    /// f + 1 = 2 positions with distinct leaders). Its forwards to replica 1 take
    /// `slow_link`. Replica 1 delivered `B1'`, times out waiting for position 2, and with
    /// replica 2's blame quits view 1; in view 2 replica 2 (its view-change leader)
    /// re-proposes `B1'` and votes for it. Returns the commits of replicas 0 and 1.
    fn schedule(slow_link: Duration) -> (World, Digest, Digest) {
        let mut w = World::new(slow_link);
        let (b1, b1x) = (first_block(1), first_block(2));
        let (d1, d1x) = (b1.digest(), b1x.digest());
        let m1 = w.byz_sign(1, false, b1);
        let m1x = w.byz_sign(1, false, b1x.clone());
        w.inject(BYZ, 0, m1, Duration::from_millis(1));
        w.inject(BYZ, 1, m1x, Duration::from_millis(1));
        w.start();
        w.run_until(Duration::from_millis(60));
        // Replica 2 blames view 1 towards replica 1 only.
        let blame = ApolloMsg::Blame(Blame {
            view: 1,
            sender: NodeId(BYZ),
            signature: w.keys[BYZ as usize].sign(&blame_statement(1)),
            proof: None,
        });
        w.inject(BYZ, 1, blame, Duration::from_millis(30));
        w.run_until(Duration::from_millis(200));
        // View 2: its leader re-proposes B1' and votes for it, towards replica 1.
        let nv = w.byz_sign(2, true, b1x);
        w.inject(BYZ, 1, nv, Duration::from_millis(1));
        let vote = ApolloMsg::Vote(Vote {
            view: 2,
            height: 1,
            block: d1x,
            voter: NodeId(BYZ),
            signature: w.keys[BYZ as usize].sign(&vote_statement(2, 1, &d1x)),
        });
        w.inject(BYZ, 1, vote, Duration::from_millis(2));
        w.run_until(Duration::from_millis(450));
        (w, d1, d1x)
    }

    #[test]
    fn positive_control_a_link_slower_than_delta_breaks_safety() {
        let (w, d1, d1x) = schedule(Duration::from_secs(1));
        let (c0, c1) = (&w.nodes[&0].commits, &w.nodes[&1].commits);
        println!("replica 0 commits {c0:?}\nreplica 1 commits {c1:?}");
        assert_eq!(c0.first(), Some(&d1), "replica 0 commits B1 by the window");
        assert_eq!(
            c1.first(),
            Some(&d1x),
            "replica 1 commits B1' by the root rule"
        );
        assert_ne!(c0[0], c1[0], "conflicting commits at height 1");
    }

    #[test]
    fn the_same_schedule_within_delta_is_safe() {
        let (w, d1, _) = schedule(HOP);
        let (c0, c1) = (&w.nodes[&0].commits, &w.nodes[&1].commits);
        assert_eq!(c0.first(), Some(&d1));
        let k = c0.len().min(c1.len());
        assert_eq!(c0[..k], c1[..k], "logs agree");
        assert_eq!(w.conflicts, 0);
        // Replica 1 received B1 and B2 in time: locked above B1', it refused the
        // re-proposal, so view 2 got no root certificate.
        assert!(c1.is_empty() || c1[0] == d1);
    }
}
