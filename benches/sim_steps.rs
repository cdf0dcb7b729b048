//! How fast the simulator runs a protocol: simulation steps (events processed: message
//! deliveries, timers, client submissions) and protocol messages delivered per second of
//! host time, for chained HotStuff on a short calm configuration (n = 4, no faults,
//! ending once every replica has committed after the would-be fault window).
//!
//! Run: `cargo bench --bench sim_steps -- --warm-up-time 1 --measurement-time 3`
//!
//! It lives in the root package, not in `sim/`: the simulator itself reads no clock.
//!
//! Criterion reports the time per run and, with the throughput set to the run's step
//! count, steps per second ("elem/s"); the `messages` group does the same with messages
//! delivered. Each iteration simulates the same seed, so every iteration does the same
//! work.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use olympus_protocols::hotstuff::HotStuff;
use olympus_sim::{RunReport, SimConfig};
use std::hint::black_box;

const SEED: u64 = 1;

fn config() -> SimConfig {
    let cfg = SimConfig::calm(4);
    cfg.validate().expect("a valid configuration");
    cfg
}

fn delivered(r: &RunReport) -> u64 {
    r.messages.values().map(|m| m.delivered).sum()
}

fn bench(c: &mut Criterion) {
    let cfg = config();
    let probe = olympus_sim::run::<HotStuff>(&cfg, SEED);
    assert!(probe.ok(), "the calm run must pass its checks: {probe:?}");
    let steps = probe.events_processed;
    let messages = delivered(&probe);

    eprintln!(
        "hotstuff n=4 calm, seed {SEED}: {steps} steps, {messages} messages delivered, \
         {:.0} virtual ms per run",
        probe.virtual_time.as_secs_f64() * 1e3,
    );

    let mut g = c.benchmark_group("sim-hotstuff-n4-calm");
    g.sample_size(10);
    g.throughput(Throughput::Elements(steps));
    g.bench_function("steps", |b| {
        b.iter(|| olympus_sim::run::<HotStuff>(black_box(&cfg), SEED))
    });
    g.throughput(Throughput::Elements(messages));
    g.bench_function("messages", |b| {
        b.iter(|| olympus_sim::run::<HotStuff>(black_box(&cfg), SEED))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
