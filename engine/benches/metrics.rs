//! What recording a metric costs on the node's hot path: through a handle registered
//! once (what the node does, see `olympus_engine::meters`) and through the `metrics`
//! macros' per-call lookup, with the recorder of `olympus_engine::metrics` installed.
//!
//! Run: `cargo bench -p olympus-engine --bench metrics -- --warm-up-time 1 --measurement-time 2`

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use std::time::Instant;

fn bench(c: &mut Criterion) {
    olympus_engine::metrics::install().expect("the only recorder of this process");
    let mut g = c.benchmark_group("metrics");
    let counter = metrics::counter!("bench_counter_total");
    g.bench_function("counter/handle", |b| {
        b.iter(|| counter.increment(black_box(1)))
    });
    g.bench_function("counter/macro", |b| {
        b.iter(|| metrics::counter!("bench_counter_total").increment(black_box(1)))
    });
    let histogram = metrics::histogram!("bench_us");
    let mut v = 0u64;
    g.bench_function("histogram/handle", |b| {
        b.iter(|| {
            v = v.wrapping_mul(6364136223846793005).wrapping_add(1);
            histogram.record(black_box((v >> 44) as f64));
        })
    });
    g.bench_function("histogram/macro", |b| {
        b.iter(|| metrics::histogram!("bench_us").record(black_box(1234.0)))
    });
    g.bench_function("histogram/elapsed-since-instant", |b| {
        b.iter(|| {
            let t = Instant::now();
            histogram.record(t.elapsed().as_secs_f64() * 1e6);
        })
    });
    let gauge = metrics::gauge!("bench_depth");
    g.bench_function("gauge/set", |b| b.iter(|| gauge.set(black_box(3.0))));
    g.finish();
    let snap = olympus_engine::metrics::snapshot();
    g = c.benchmark_group("metrics-dump");
    g.bench_function("snapshot", |b| b.iter(olympus_engine::metrics::snapshot));
    g.bench_function("to_text", |b| b.iter(|| black_box(snap.to_text())));
    g.bench_function("to_prometheus", |b| {
        b.iter(|| black_box(snap.to_prometheus()))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
