//! `olympus sim`: runs the deterministic simulator over a range of seeds (or one seed in
//! full) and says whether any invariant was violated.
//!
//! Each seed is an independent, single-threaded, deterministic run
//! ([`olympus_sim::run`]); a sweep spreads seeds over worker threads and gathers the
//! reports, so the result does not depend on the number of threads. Exit code: 0 when no
//! invariant was violated, 1 when one was (or a run panicked), 2 on bad usage.

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use olympus_protocols::Protocol;
use olympus_sim::{ByzantineChoice, RunReport, SimConfig, SweepSummary};
use std::panic::{self, AssertUnwindSafe};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The protocols `--protocol` accepts.
pub const PROTOCOLS: &[&str] = &[
    "hotstuff",
    "twochain",
    "sync-hotstuff",
    "opt-sync",
    "apollo",
    "artemis",
];

/// Failing seeds printed in full after a sweep; the rest are counted.
const MAX_FAILURES_SHOWN: usize = 20;

/// Arguments of `olympus sim`.
#[derive(clap::Args, Debug, Clone)]
#[command(after_help = "\
Each run starts n replicas and 4 clients in virtual time. During a fault window \
(200 ms to --duration-ms) messages are delayed (1-10 ms, 2% up to 250 ms), lost (2%) and \
duplicated (2%); the network partitions and heals; honest replicas crash and restart \
from their persisted safety state (never more than f faulty at once, Byzantine ones \
included); Twins equivocate in split worlds. After the window the network is reliable \
and every honest replica must commit again within 10 s. For the synchronous protocols \
(sync-hotstuff, opt-sync, apollo, artemis) f = (n-1)/2 and the faults stay within synchrony: delays \
below Δ, no loss and no partitions.

Checked on every run: honest committed logs agree at every height; every executed \
transaction was submitted and none appears more often than it was submitted; no honest \
replica signs two different votes in one view; liveness after the faults (only with at \
most f Byzantine replicas).

Exit status: 0 if no invariant was violated, 1 if one was (each failing seed prints the \
one-line command that reproduces it), 2 on bad usage.")]
pub struct SimArgs {
    /// Protocol to simulate: hotstuff or twochain (n = 3f+1), sync-hotstuff, opt-sync,
    /// apollo or artemis (synchronous: n = 2f+1, every message within Δ).
    #[arg(long)]
    pub protocol: String,
    /// Number of replicas.
    #[arg(short, default_value_t = 4)]
    pub n: usize,
    /// Number of Byzantine replicas, chosen at random per seed. More than f = (n-1)/3 is
    /// a positive control: the checkers should then find a safety violation.
    #[arg(long, default_value_t = 0)]
    pub byzantine: usize,
    /// How Byzantine replicas behave: silent (send nothing), twins (two instances
    /// sharing one key, in split worlds), or mixed (each one drawn per seed). Default:
    /// mixed up to f, twins beyond f.
    #[arg(long, value_parser = ["mixed", "silent", "twins"])]
    pub byzantine_kind: Option<String>,
    /// Number of seeds to sweep.
    #[arg(long, default_value_t = 100)]
    pub seeds: u64,
    /// First seed of the sweep.
    #[arg(long, default_value_t = 0)]
    pub first_seed: u64,
    /// Run exactly this one seed and print its full report.
    #[arg(long, conflicts_with_all = ["seeds", "first_seed"])]
    pub seed: Option<u64>,
    /// Where the fault window ends, in virtual milliseconds (faults are injected from
    /// 200 ms on, about one partition, crash and twins split per 1.4 s). The run then
    /// continues fault-free until every honest replica has committed again.
    #[arg(long, default_value_t = 3000)]
    pub duration_ms: u64,
    /// With --seed: also print every event of the run (messages, timers, faults, commits).
    #[arg(long, requires = "seed")]
    pub trace: bool,
    /// Worker threads for a sweep (default: the number of CPUs).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// Runs `olympus sim`.
pub fn run(args: SimArgs) -> Result<ExitCode> {
    match args.protocol.as_str() {
        "hotstuff" => run_protocol::<olympus_protocols::hotstuff::HotStuff>(&args),
        "twochain" => run_protocol::<olympus_protocols::twochain::TwoChain>(&args),
        "sync-hotstuff" => run_protocol::<olympus_protocols::sync_hotstuff::SyncHotStuff>(&args),
        "opt-sync" => run_protocol::<olympus_protocols::opt_sync::OptSync>(&args),
        "apollo" => run_protocol::<olympus_protocols::apollo::Apollo>(&args),
        "artemis" => run_protocol::<olympus_protocols::artemis::Artemis>(&args),
        other => {
            eprintln!(
                "error: unknown protocol `{other}`; known protocols: {}",
                PROTOCOLS.join(", ")
            );
            Ok(ExitCode::from(2))
        }
    }
}

fn config(args: &SimArgs) -> Result<SimConfig, String> {
    let mut cfg = SimConfig::standard(args.n, args.byzantine);
    if let Some(kind) = &args.byzantine_kind {
        cfg.byzantine_choice = ByzantineChoice::from_name(kind)
            .ok_or_else(|| format!("unknown --byzantine-kind `{kind}`"))?;
    }
    cfg.set_fault_end(Duration::from_millis(args.duration_ms));
    if Duration::from_millis(args.duration_ms) < cfg.fault_start {
        return Err(format!(
            "--duration-ms must be at least {} (where the fault window starts)",
            cfg.fault_start.as_millis()
        ));
    }
    cfg.validate().map_err(|e| e.to_string())?;
    Ok(cfg)
}

fn run_protocol<P: Protocol>(args: &SimArgs) -> Result<ExitCode> {
    let cfg = match config(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    match args.seed {
        Some(seed) => Ok(run_one::<P>(&cfg, seed, args.trace)),
        None => Ok(run_sweep::<P>(args, &cfg)),
    }
}

fn run_one<P: Protocol>(cfg: &SimConfig, seed: u64, trace: bool) -> ExitCode {
    let report = if trace {
        olympus_sim::run_logged::<P>(cfg, seed, &mut |t, line| {
            println!("{:>10.6} {line}", t.as_secs_f64());
        })
    } else {
        olympus_sim::run::<P>(cfg, seed)
    };
    print!("{report}");
    if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// What a worker sends back for one seed.
enum Outcome {
    Done(Box<RunReport>),
    Panicked { seed: u64, message: String },
}

fn run_sweep<P: Protocol>(args: &SimArgs, cfg: &SimConfig) -> ExitCode {
    let first = args.first_seed;
    let count = args.seeds;
    let end = first.saturating_add(count);
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, 256)
        .min(count.max(1) as usize);
    println!(
        "olympus sim: {}, n = {}, byzantine {} ({}), seeds {first}..{end}, fault window {}..{} ms, {threads} thread(s)",
        P::NAME,
        cfg.n,
        cfg.byzantine,
        cfg.byzantine_choice.name(),
        cfg.fault_start.as_millis(),
        cfg.fault_end.as_millis(),
    );
    let bar = ProgressBar::new(count);
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} seeds ({per_sec}, eta {eta}) {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let started = Instant::now();
    let next = AtomicU64::new(first);
    let mut summary = SweepSummary::default();
    let mut panicked: Vec<(u64, String)> = Vec::new();
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel::<Outcome>();
        for _ in 0..threads {
            let tx = tx.clone();
            let next = &next;
            scope.spawn(move || loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= end {
                    break;
                }
                let outcome = match panic::catch_unwind(AssertUnwindSafe(|| {
                    olympus_sim::run::<P>(cfg, seed)
                })) {
                    Ok(r) => Outcome::Done(Box::new(r)),
                    Err(e) => Outcome::Panicked {
                        seed,
                        message: panic_message(&*e),
                    },
                };
                if tx.send(outcome).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        for outcome in rx {
            match outcome {
                Outcome::Done(r) => summary.add(&r),
                Outcome::Panicked { seed, message } => panicked.push((seed, message)),
            }
            let failing = summary.failing.len() + panicked.len();
            if failing > 0 {
                bar.set_message(format!("{failing} failing"));
            }
            bar.inc(1);
        }
    });
    bar.finish_and_clear();
    panicked.sort();
    let elapsed = started.elapsed();
    print_summary(P::NAME, cfg, &summary, &panicked, elapsed);
    if summary.ok() && panicked.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn panic_message(e: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = e.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = e.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic payload)".to_string()
    }
}

fn print_summary(
    protocol: &str,
    cfg: &SimConfig,
    s: &SweepSummary,
    panicked: &[(u64, String)],
    elapsed: Duration,
) {
    let secs = elapsed.as_secs_f64().max(1e-9);
    println!(
        "seeds run: {} in {:.2}s ({:.0} seeds/s, {:.0}s of virtual time)",
        s.seeds + panicked.len() as u64,
        secs,
        (s.seeds + panicked.len() as u64) as f64 / secs,
        s.virtual_time.as_secs_f64()
    );
    println!(
        "commits: {} in total (highest honest height, summed over seeds), lowest honest height in any seed {}",
        s.commits_total,
        s.commits_min.unwrap_or(0)
    );
    println!(
        "transactions: submitted {}, executed {}, duplicates suppressed {}",
        s.txs_submitted, s.txs_executed, s.duplicates_suppressed
    );
    let faults: Vec<String> = s.faults.iter().map(|(k, v)| format!("{k} {v}")).collect();
    println!(
        "faults injected: {}",
        if faults.is_empty() {
            "none".into()
        } else {
            faults.join(", ")
        }
    );
    println!(
        "violations: {} in {} seed(s){}",
        s.violations,
        s.failing.len(),
        if panicked.is_empty() {
            String::new()
        } else {
            format!(", {} seed(s) panicked", panicked.len())
        }
    );
    for r in s.failing.iter().take(MAX_FAILURES_SHOWN) {
        println!();
        println!("seed {} failed:", r.seed);
        for v in &r.violations {
            println!("  {v}");
        }
        if r.violations_dropped > 0 {
            println!("  ... and {} more", r.violations_dropped);
        }
        println!("  repro: {}", r.repro());
    }
    if s.failing.len() > MAX_FAILURES_SHOWN {
        println!();
        println!(
            "... and {} more failing seeds",
            s.failing.len() - MAX_FAILURES_SHOWN
        );
    }
    for (seed, message) in panicked {
        println!();
        println!("seed {seed} panicked: {message}");
        println!(
            "  repro: olympus sim --protocol {protocol} {} --seed {seed}",
            cfg.cli_flags()
        );
    }
}
