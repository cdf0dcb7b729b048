//! The cost of a HotStuff proposal on the wire: encoding it into a frame, validating and
//! decoding a received frame (bytecheck, then deserialize), and checking its signatures.
//!
//! The proposal is a real one: four drivers run chained HotStuff (BLS keys) until a
//! leader proposes a block holding the benchmark's batch of `txs` transactions of
//! `payload` bytes each.
//!
//! Run: `cargo bench -p olympus-engine --bench frame -- --warm-up-time 1 --measurement-time 3`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use olympus_crypto::{generate_committee, Committee, Scheme};
use olympus_engine::driver::{Driver, Env};
use olympus_engine::wire::Wire;
use olympus_protocols::hotstuff::{HotStuff, HsMsg, Safety};
use olympus_protocols::{BatchRef, Commit, Protocol, ReplicaConfig};
use olympus_types::{Batch, NodeId, Transaction};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

const N: usize = 4;

/// Keeps what a driver sends.
#[derive(Default)]
struct Outbox(Vec<(Option<NodeId>, HsMsg)>);

impl Env<HotStuff> for Outbox {
    fn send(&mut self, to: NodeId, msg: &HsMsg) {
        self.0.push((Some(to), msg.clone()));
    }
    fn broadcast(&mut self, msg: &HsMsg) {
        self.0.push((None, msg.clone()));
    }
    fn persist(&mut self, _: &Safety) -> Result<(), String> {
        Ok(())
    }
    fn commit(&mut self, _: Commit) {}
}

/// A proposal carrying `txs` transactions of `payload` bytes, who sent it, and the
/// committee that verifies it.
fn proposal(txs: usize, payload: usize) -> (HsMsg, NodeId, Arc<Committee>) {
    let (committee, keys) = generate_committee(Scheme::Bls, &[9; 32], N).expect("committee");
    let committee = Arc::new(committee);
    let mut drivers: Vec<Driver<HotStuff>> = keys
        .into_iter()
        .enumerate()
        .map(|(i, k)| {
            let mut cfg = ReplicaConfig::new(NodeId(i as u16), N);
            cfg.max_block_txs = txs.max(1);
            let (l, v) = HotStuff::create(&cfg, Arc::new(k), committee.clone(), None);
            Driver::new(NodeId(i as u16), l, v)
        })
        .collect();
    let mut outs: Vec<Outbox> = (0..N).map(|_| Outbox::default()).collect();
    let now = Duration::ZERO;
    let batch = Batch::new(
        (0..txs as u64)
            .map(|nonce| Transaction {
                client: 1,
                nonce,
                payload: vec![0xAB; payload],
            })
            .collect(),
    );
    for (d, o) in drivers.iter_mut().zip(outs.iter_mut()) {
        d.on_batch(BatchRef::new(batch.clone()), now, o)
            .expect("batch");
        d.start(now, o).expect("start");
    }
    for _round in 0..100 {
        let mut inflight = Vec::new();
        for (i, o) in outs.iter_mut().enumerate() {
            for (to, m) in o.0.drain(..) {
                let from = NodeId(i as u16);
                if let HsMsg::Propose(p) = &m {
                    if p.block.payload.inline_txs() == txs {
                        return (m, from, committee);
                    }
                }
                match to {
                    Some(t) => inflight.push((from, t, m)),
                    None => (0..N)
                        .filter(|j| *j != i)
                        .for_each(|j| inflight.push((from, NodeId(j as u16), m.clone()))),
                }
            }
        }
        for (from, to, m) in inflight {
            let v = HotStuff::verify(m, from, &committee).expect("honest messages verify");
            drivers[to.index()]
                .on_message(from, v, now, &mut outs[to.index()])
                .expect("deliver");
        }
    }
    panic!("no proposal with {txs} transactions within 100 rounds");
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("proposal");
    for (txs, payload) in [(1, 0), (400, 0), (400, 128)] {
        let (msg, from, committee) = proposal(txs, payload);
        let frame = msg.to_frame().expect("encode");
        let label = format!("{txs}tx-{payload}B");
        g.throughput(Throughput::Bytes(frame.wire_len() as u64));
        g.bench_with_input(BenchmarkId::new("encode", &label), &msg, |b, m| {
            b.iter(|| black_box(m.to_frame().expect("encode")))
        });
        g.bench_with_input(BenchmarkId::new("validate", &label), &frame, |b, f| {
            b.iter(|| black_box(HsMsg::from_bytes(black_box(f.body())).expect("valid")))
        });
        g.bench_with_input(
            BenchmarkId::new("validate+verify", &label),
            &frame,
            |b, f| {
                b.iter(|| {
                    let m = HsMsg::from_bytes(black_box(f.body())).expect("valid");
                    black_box(HotStuff::verify(m, from, &committee).expect("verifies"))
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
