//! TEMPORARY sweep harness (to be deleted): HS_N, HS_BYZ, HS_KIND, HS_SEEDS, HS_FIRST, HS_THREADS, HS_SEED_TRACE.
use olympus_protocols::hotstuff::HotStuff;
use olympus_sim::{run, run_logged, ByzantineChoice, SimConfig};
use std::time::Instant;

fn env(k: &str, d: u64) -> u64 {
    std::env::var(k)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(d)
}

#[test]
#[ignore]
fn sweep_tmp() {
    let n = env("HS_N", 4) as usize;
    let b = env("HS_BYZ", 0) as usize;
    let mut c = SimConfig::standard(n, b);
    if let Ok(k) = std::env::var("HS_KIND") {
        c.byzantine_choice = ByzantineChoice::from_name(&k).unwrap();
    }
    if let Ok(s) = std::env::var("HS_SEED_TRACE") {
        let seed: u64 = s.parse().unwrap();
        let r = run_logged::<HotStuff>(&c, seed, &mut |t, line| {
            println!("{:>10.3} {line}", t.as_secs_f64() * 1e3)
        });
        println!("{r}");
        return;
    }
    let seeds = env("HS_SEEDS", 100);
    let first = env("HS_FIRST", 0);
    let threads = env("HS_THREADS", 1);
    let t0 = Instant::now();
    let next = std::sync::atomic::AtomicU64::new(first);
    let fails = std::sync::Mutex::new(Vec::new());
    let maxrec = std::sync::Mutex::new(std::time::Duration::ZERO);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let seed = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if seed >= first + seeds {
                    break;
                }
                let r = run::<HotStuff>(&c, seed);
                if let Some(rec) = r.commits.max_recovery {
                    let mut m = maxrec.lock().unwrap();
                    if rec > *m {
                        *m = rec;
                    }
                }
                if !r.ok() {
                    fails.lock().unwrap().push((seed, format!("{r}")));
                }
            });
        }
    });
    let mut fails = fails.into_inner().unwrap();
    fails.sort_by_key(|f| f.0);
    for (_, r) in fails.iter().take(3) {
        println!("{r}");
    }
    println!(
        "n={n} byz={b} kind={} seeds={first}..{} failures={} {:?} time={:.1}s max_recovery={:?}",
        c.byzantine_choice.name(),
        first + seeds,
        fails.len(),
        fails.iter().map(|f| f.0).take(30).collect::<Vec<_>>(),
        t0.elapsed().as_secs_f64(),
        maxrec.into_inner().unwrap()
    );
}
