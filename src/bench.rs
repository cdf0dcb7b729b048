//! `olympus bench`: the canonical benchmark. It runs a protocol on a cluster of real node
//! processes on the loopback interface, drives it with a client process, and reports
//! commit throughput and latency.
//!
//! # What one run does
//!
//! 1. `olympus genconfig` writes keys and configuration for `n` nodes on 127.0.0.1 into
//!    the run's `config/` directory (deterministic keys: `--seed bench`). Node i listens
//!    for peers on `P + 2i` and for clients on `P + 2i + 1`, where `P` is a block of ports
//!    no earlier run of this bench used and that is free right now.
//! 2. `n` separate `olympus node` processes start, each with its output in
//!    `node-<i>.log`. A node is ready when its client port accepts a TCP connection; a node
//!    that is not ready within 20 s, or that exits before the bench stops it, fails the
//!    run with its exit status and the last lines of its log.
//! 3. One `olympus client` process drives load for `--warmup` + `--duration` seconds and
//!    writes its measurements (`client.json`); its per-second `progress` lines drive the
//!    progress bar. Throughput and latency are measured over the `--duration` window
//!    only, after the warmup.
//! 4. The nodes get SIGTERM (SIGKILL after 5 s). Their data directories are deleted
//!    unless `--keep`; logs and configuration are always kept.
//!
//! Every node and client process is owned by a guard that stops it on every exit path
//! (errors, panics unwinding, Ctrl-C or SIGTERM to the bench). Children run in their own
//! process groups (a wrapper script and what it starts are signalled together) and get
//! SIGTERM from the kernel if the bench itself dies (`PR_SET_PDEATHSIG`). A second Ctrl-C
//! exits at once.
//!
//! # Load models
//!
//! - **Closed loop** (`--window K`, the default, K = 10000): the client keeps K
//!   transactions outstanding and submits a new one when one commits, so the offered load
//!   adapts to the system: throughput is the system's capacity at that concurrency and
//!   latency includes queueing inside the system only.
//! - **Open loop** (`--rate R`): the client submits R transactions per second whatever
//!   happens to earlier ones, as independent users would. Past the capacity, latency grows
//!   without bound: this is the model that shows saturation honestly.
//!
//! # Sweeps
//!
//! `--protocol`, `-n` and `--block-size` take comma-separated lists; every (protocol, n,
//! block size) cell runs `--runs` times in a row, each run on fresh ports. A failed run
//! does not stop the sweep: it is reported, and the exit status says so. `--sweep` alone
//! runs a small default matrix ([`SWEEP_PROTOCOLS`] × n = 4 × [`SWEEP_BLOCK_SIZES`] ×
//! [`SWEEP_RUNS`] runs of [`SWEEP_DURATION`] s after [`SWEEP_WARMUP`] s of warmup); each
//! of those flags given explicitly replaces its part ([`resolve`]).
//!
//! # Cost breakdown
//!
//! For each node of a successful run, the CPU time it spent per committed block, split so
//! that the bottleneck shows at a glance:
//!
//! - **total**: utime + stime of the node process, read from `/proc/<pid>/stat` just
//!   before its SIGTERM (clock ticks converted with `sysconf(_SC_CLK_TCK)`), over the
//!   node's whole life (start-up and warmup included, like its block count);
//! - **crypto**: the sum of the node's `olympus_verify_us` histogram (and
//!   `olympus_sign_us`, should the node measure signing) from its metrics file, capped at
//!   the user time: the histograms time the checks on the wall clock, which on
//!   oversubscribed cores includes preemption (the table then says so);
//! - **network**: the kernel time (stime), as an approximation of socket work (it also
//!   holds other syscalls: fdatasync, io_uring submission);
//! - **rest** (protocol and engine): user time minus crypto;
//!
//! each divided by the blocks the node committed (`committed_blocks` of the JSON line it
//! prints at SIGTERM, else its `olympus_commits_total` counter). A table with one row per
//! node (one per run, with node means, past [`MAX_COST_ROWS`] rows) follows the results
//! table; runs.csv has each run's node means and summary.csv each cell's median of them;
//! manifest.json has every node's inputs and split. What is missing (no metrics file, no
//! `/proc`, nothing committed) shows as `n/a` / empty and never fails the run.
//!
//! # Output
//!
//! Everything goes to `<--out>/<UTC yyyymmdd-hhmmss>/`:
//!
//! - `summary.csv`: one row per cell (protocol, n, block size, payload, load) with the
//!   number of runs and min/median/max of throughput and of p50, p99 and mean latency,
//!   and the median CPU µs per block (total, crypto, network, rest);
//! - `runs.csv`: one row per run, with its status, its measurements and its cost per
//!   block (means over its nodes);
//! - `manifest.json`: every parameter, the command line, the git commit, host name, CPU
//!   count, kernel, start time, and each run's paths, status, result and the counters
//!   each node printed at shutdown (rewritten after every run, so an interrupted sweep
//!   still leaves one);
//! - `throughput.svg`, `latency.svg`: throughput and p50/p99 latency for each second of
//!   the measured window, from the client's per-second series, one line per run (each
//!   run directory has its own pair); `throughput.png`, `latency.png`: the same as PNG
//!   (drawn by [`crate::png`], no dependency);
//! - with several block sizes, `throughput_vs_block_size.{svg,png}` and
//!   `latency_vs_block_size.{svg,png}`: each cell's median throughput, p50 and p99
//!   against block size, one line per (protocol, n);
//! - `NN-<protocol>-n<N>-r<k>/` (`NN-<protocol>-n<N>-b<B>-r<k>/` with several block
//!   sizes): one directory per run with `config/`, `node-<i>.log`
//!   (ending with the node's metrics dump: counters, gauges, histograms),
//!   `node-<i>.metrics.json` (the same metrics as JSON), `client.log`, `client.json` (and
//!   `data/` with `--keep`).
//!
//! The table on stdout has one row per cell; with `--runs` > 1 it shows medians and the
//! min–max range of throughput. The cost table follows it.
//!
//! Exit status: 0 when every run succeeded, 1 when a run failed (a node died or was never
//! ready, the client failed, nothing committed), 130 when interrupted, 2 on bad usage.

use crate::png;
use anyhow::{anyhow, bail, Context, Result};
use indicatif::{ProgressBar, ProgressFinish, ProgressStyle};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a node may take to open its client port.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a stopped process may take to exit after SIGTERM before it gets SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// How long past warmup + duration the client may run before it is killed.
const CLIENT_GRACE: Duration = Duration::from_secs(30);
/// How often the bench polls its children and the progress of the client.
const POLL: Duration = Duration::from_millis(100);
/// Lines of a log shown when a process fails.
const TAIL_LINES: usize = 20;
/// Bytes read from the end of a log to find those lines.
const TAIL_BYTES: u64 = 16 * 1024;
/// Lines drawn (and listed in the legend) per plot; more runs are left out of the plot.
const MAX_PLOT_RUNS: usize = 24;

/// Protocols the bench knows, with the fault model that gives f.
const PROTOCOLS: &[(&str, Family)] = &[
    ("hotstuff", Family::PartialSync),
    ("twochain", Family::PartialSync),
    ("pbft", Family::PartialSync),
    ("streamlet", Family::PartialSync),
    ("smp-hs", Family::PartialSync),
    ("s-hs", Family::PartialSync),
    ("s-hs-g", Family::PartialSync),
    ("s-sl", Family::PartialSync),
    ("sync-hotstuff", Family::Sync),
    ("optsync", Family::Sync),
    ("opt-sync", Family::Sync),
    ("apollo", Family::Sync),
    ("artemis", Family::Sync),
    ("unreplicated", Family::Unreplicated),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    /// n = 3f + 1.
    PartialSync,
    /// n = 2f + 1.
    Sync,
    /// One server, no faults tolerated.
    Unreplicated,
}

/// The number of faults a protocol tolerates with n replicas; None for an unknown
/// protocol.
fn fault_tolerance(protocol: &str, n: usize) -> Option<usize> {
    let (_, family) = PROTOCOLS.iter().find(|(name, _)| *name == protocol)?;
    let n1 = n.saturating_sub(1);
    Some(match family {
        Family::PartialSync => n1 / 3,
        Family::Sync => n1 / 2,
        Family::Unreplicated => 0,
    })
}

/// Arguments of `olympus bench` as given; [`resolve`] fills in the defaults.
#[derive(clap::Args, Debug, Clone, Serialize)]
#[command(after_help = "\
Each run: `olympus genconfig` writes a committee of n nodes on 127.0.0.1 (node i: peers on \
P+2i, clients on P+2i+1, fresh ports per run), n `olympus node` processes start (ready when \
their client port accepts a connection, 20 s at most), one `olympus client` process drives \
load for warmup + duration seconds, and the nodes get SIGTERM. Throughput and latency are \
measured after the warmup only.

Load: closed loop by default (--window K transactions outstanding, a new one submitted \
when one commits); open loop with --rate R (R transactions per second whatever happens).

Sweeps: --protocol, -n and --block-size take comma-separated lists; every combination runs \
--runs times. --sweep alone runs the default matrix: protocols hotstuff,twochain, n=4, \
block sizes 100,400,1000, 3 runs each, 5 s measured after 1 s warmup (18 runs, about \
3 minutes); any of those flags given explicitly overrides its part of the matrix.

Cost breakdown: for each node, CPU time per committed block (utime+stime from \
/proc/<pid>/stat just before SIGTERM, divided by the node's committed blocks), split into \
crypto (the node's olympus_verify_us histogram sum, and signing time if the node measures \
it), network (kernel time, as an approximation of socket work) and the rest (protocol and \
engine). Printed after the results table, averaged per run in runs.csv and summary.csv, \
per node in manifest.json; n/a where a metrics file or /proc is missing.

Output in <out>/<UTC yyyymmdd-hhmmss>/: summary.csv (one row per protocol/n/block-size \
cell: min, median, max of throughput and of p50, p99, mean latency; median cost per \
block), runs.csv (one row per run), manifest.json (parameters, command line, git commit, \
host, per-run paths and per-node costs), throughput.svg/.png and latency.svg/.png \
(per-second series), with several block sizes also throughput_vs_block_size.svg/.png and \
latency_vs_block_size.svg/.png, and one directory per run with its configuration, \
node-<i>.log, client.log and client.json.

Exit status: 0 if every run succeeded; 1 if a run failed (a node died or was not ready, \
the client failed, or nothing committed); 130 if interrupted; 2 on bad usage.")]
pub struct BenchArgs {
    /// Protocol to run: hotstuff, twochain (n = 3f+1), sync-hotstuff, opt-sync (or
    /// optsync), apollo, artemis (n = 2f+1, timers from --delta-ms); a comma-separated
    /// list runs each in turn [default: hotstuff; with --sweep: hotstuff,twochain].
    #[arg(long, value_delimiter = ',', value_name = "NAME[,NAME..]")]
    pub protocol: Option<Vec<String>>,
    /// Number of nodes; a comma-separated list runs each size in turn [default: 4].
    #[arg(short = 'n', value_delimiter = ',', value_name = "N[,N..]")]
    pub n: Option<Vec<usize>>,
    /// Transactions per block; a comma-separated list runs each size in turn [default:
    /// 400; with --sweep: 100,400,1000].
    #[arg(long, value_delimiter = ',', value_name = "TXS[,TXS..]")]
    pub block_size: Option<Vec<usize>>,
    /// Payload bytes per transaction.
    #[arg(long, default_value_t = 0, value_name = "BYTES")]
    pub payload: usize,
    /// Seconds of measured load (after the warmup) [default: 10; with --sweep: 5].
    #[arg(long, value_name = "SECS")]
    pub duration: Option<u64>,
    /// Seconds of load before measuring starts [default: 2; with --sweep: 1].
    #[arg(long, value_name = "SECS")]
    pub warmup: Option<u64>,
    /// Closed loop: transactions the client keeps outstanding (used unless --rate is
    /// given).
    #[arg(
        long,
        default_value_t = 10000,
        value_name = "K",
        conflicts_with = "rate"
    )]
    pub window: usize,
    /// Open loop: transactions per second the client submits, whatever happens to earlier
    /// ones. Replaces the closed-loop window.
    #[arg(long, value_name = "TX/S")]
    pub rate: Option<u64>,
    /// How each node places its roles on cores (passed to `olympus node --placement`).
    #[arg(long, default_value = "compact", value_parser = ["compact", "verify"])]
    pub placement: String,
    /// Repetitions of each (protocol, n, block size) cell; the table and summary.csv then
    /// give min/median/max [default: 1; with --sweep: 3].
    #[arg(long, value_name = "RUNS")]
    pub runs: Option<usize>,
    /// Run a matrix of protocols × n × block sizes × runs; alone it is the default
    /// matrix (hotstuff,twochain × 4 × 100,400,1000 × 3 runs, 5 s each); explicit flags
    /// override its parts.
    #[arg(long)]
    pub sweep: bool,
    /// First port; each run takes 2n fresh ports from here on (ports in use are skipped).
    #[arg(long, default_value_t = 17000, value_name = "PORT")]
    pub base_port: u16,
    /// Directory under which each bench writes its own timestamped directory.
    #[arg(long, default_value = "runs", value_name = "DIR")]
    pub out: PathBuf,
    /// Δ in milliseconds (synchronous protocols).
    #[arg(long, visible_alias = "delta", default_value_t = 50, value_name = "MS")]
    pub delta_ms: u64,
    /// Base view timeout in milliseconds.
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    pub view_timeout_ms: u64,
    /// How batches reach the replicas: inline (in proposals) or digests (broadcast
    /// first; proposals carry digests).
    #[arg(long, default_value = "inline", value_parser = ["inline", "digests"])]
    pub dissemination: String,
    /// Keep the nodes' data directories (logs and configuration are always kept).
    #[arg(long)]
    pub keep: bool,
    /// The olympus executable to run genconfig, node and client with [default: this
    /// executable].
    #[arg(long, value_name = "PATH")]
    pub bin: Option<PathBuf>,
}

/// The bench's parameters with every default filled in (what the manifest records).
#[derive(Debug, Clone, Serialize)]
pub struct Params {
    pub protocol: Vec<String>,
    pub n: Vec<usize>,
    pub block_size: Vec<usize>,
    pub payload: usize,
    pub duration: u64,
    pub warmup: u64,
    pub window: usize,
    pub rate: Option<u64>,
    pub placement: String,
    pub runs: usize,
    pub sweep: bool,
    pub base_port: u16,
    pub out: PathBuf,
    pub delta_ms: u64,
    pub view_timeout_ms: u64,
    pub dissemination: String,
    pub keep: bool,
    pub bin: Option<PathBuf>,
}

/// The default matrix of `--sweep`.
const SWEEP_PROTOCOLS: &[&str] = &["hotstuff", "twochain"];
const SWEEP_BLOCK_SIZES: &[usize] = &[100, 400, 1000];
const SWEEP_RUNS: usize = 3;
const SWEEP_DURATION: u64 = 5;
const SWEEP_WARMUP: u64 = 1;

/// Fills in the defaults: those of a single run, or with `--sweep` those of the default
/// matrix; flags given explicitly win either way.
fn resolve(a: BenchArgs) -> Params {
    let sweep = a.sweep;
    Params {
        protocol: a.protocol.unwrap_or_else(|| {
            if sweep {
                SWEEP_PROTOCOLS.iter().map(|s| s.to_string()).collect()
            } else {
                vec!["hotstuff".into()]
            }
        }),
        n: a.n.unwrap_or_else(|| vec![4]),
        block_size: a.block_size.unwrap_or_else(|| {
            if sweep {
                SWEEP_BLOCK_SIZES.to_vec()
            } else {
                vec![400]
            }
        }),
        payload: a.payload,
        duration: a
            .duration
            .unwrap_or(if sweep { SWEEP_DURATION } else { 10 }),
        warmup: a.warmup.unwrap_or(if sweep { SWEEP_WARMUP } else { 2 }),
        window: a.window,
        rate: a.rate,
        placement: a.placement,
        runs: a.runs.unwrap_or(if sweep { SWEEP_RUNS } else { 1 }),
        sweep,
        base_port: a.base_port,
        out: a.out,
        delta_ms: a.delta_ms,
        view_timeout_ms: a.view_timeout_ms,
        dissemination: a.dissemination,
        keep: a.keep,
        bin: a.bin,
    }
}

/// The offered load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Load {
    Window(usize),
    Rate(u64),
}

impl Load {
    fn of(args: &Params) -> Load {
        match args.rate {
            Some(r) => Load::Rate(r),
            None => Load::Window(args.window),
        }
    }

    /// As the table shows it.
    fn label(&self) -> String {
        match self {
            Load::Window(k) => format!("window {k}"),
            Load::Rate(r) => format!("rate {r}/s"),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Load::Window(_) => "window",
            Load::Rate(_) => "rate",
        }
    }

    fn client_args(&self) -> [String; 2] {
        match self {
            Load::Window(k) => ["--window".into(), k.to_string()],
            Load::Rate(r) => ["--rate".into(), r.to_string()],
        }
    }
}

/// One planned run.
#[derive(Clone, Debug)]
struct RunSpec {
    /// 1-based position in the sweep.
    index: usize,
    protocol: String,
    n: usize,
    f: usize,
    block_size: usize,
    /// Whether the sweep has several block sizes (names then say which).
    name_block: bool,
    /// 1-based repetition within its cell.
    repetition: usize,
}

impl RunSpec {
    fn dir_name(&self) -> String {
        if self.name_block {
            format!(
                "{:02}-{}-n{}-b{}-r{}",
                self.index, self.protocol, self.n, self.block_size, self.repetition
            )
        } else {
            format!(
                "{:02}-{}-n{}-r{}",
                self.index, self.protocol, self.n, self.repetition
            )
        }
    }

    fn title(&self) -> String {
        run_title(
            &self.protocol,
            self.n,
            self.block_size,
            self.name_block,
            self.repetition,
        )
    }
}

/// How the progress lines, the cost table and the plots name a run.
fn run_title(protocol: &str, n: usize, block_size: usize, name_block: bool, rep: usize) -> String {
    if name_block {
        format!("{protocol} n={n} b={block_size} r{rep}")
    } else {
        format!("{protocol} n={n} r{rep}")
    }
}

/// Checks the arguments and lists the runs.
fn plan(args: &Params) -> Result<Vec<RunSpec>> {
    if args.protocol.is_empty() {
        bail!("--protocol: give at least one protocol");
    }
    if args.n.is_empty() {
        bail!("-n: give at least one cluster size");
    }
    for p in &args.protocol {
        if fault_tolerance(p, 1).is_none() {
            let known: Vec<&str> = PROTOCOLS.iter().map(|(name, _)| *name).collect();
            bail!(
                "--protocol: unknown protocol {p:?} (known: {})",
                known.join(", ")
            );
        }
        if !crate::node_cmd::runs_on_node(p) {
            bail!(
                "--protocol: {p:?} does not run on a node yet (runs today: {})",
                crate::node_cmd::NODE_PROTOCOLS.join(", ")
            );
        }
    }
    if let Some(&n) = args.n.iter().find(|&&n| n < 1) {
        bail!("-n {n}: a cluster needs at least 1 node");
    }
    if args.duration < 1 {
        bail!("--duration must be at least 1 second");
    }
    if args.runs < 1 {
        bail!("--runs must be at least 1");
    }
    if args.block_size.is_empty() {
        bail!("--block-size: give at least one block size");
    }
    if args.block_size.iter().any(|&b| b < 1) {
        bail!("--block-size must be at least 1 transaction");
    }
    if args.rate == Some(0) {
        bail!("--rate must be at least 1 transaction per second");
    }
    if args.rate.is_none() && args.window < 1 {
        bail!("--window must be at least 1 transaction");
    }
    if args.view_timeout_ms < 1 {
        bail!("--view-timeout-ms must be at least 1");
    }
    let name_block = args.block_size.len() > 1;
    let mut runs = Vec::new();
    for p in &args.protocol {
        for &n in &args.n {
            let f = fault_tolerance(p, n).ok_or_else(|| anyhow!("unknown protocol {p:?}"))?;
            for &block_size in &args.block_size {
                for repetition in 1..=args.runs {
                    runs.push(RunSpec {
                        index: runs.len() + 1,
                        protocol: p.clone(),
                        n,
                        f,
                        block_size,
                        name_block,
                        repetition,
                    });
                }
            }
        }
    }
    let ports: usize = runs.iter().map(|r| 2 * r.n).sum();
    if args.base_port as usize + ports > 65536 {
        bail!(
            "--base-port {}: the {} runs need {} ports, which does not fit below 65536; \
             choose a lower --base-port",
            args.base_port,
            runs.len(),
            ports
        );
    }
    Ok(runs)
}

// ---------------------------------------------------------------------------------------
// Signals: Ctrl-C or SIGTERM ask the bench to stop its children and write what it has.

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_sig: libc::c_int) {
    // A second signal means "now": exit at once; the children get SIGTERM from the
    // kernel (PR_SET_PDEATHSIG). Both calls are async-signal-safe.
    if INTERRUPTED.swap(true, Ordering::SeqCst) {
        // SAFETY: _exit is async-signal-safe and takes no pointers.
        unsafe { libc::_exit(130) };
    }
}

fn install_signal_handlers() {
    let handler = on_signal as extern "C" fn(libc::c_int);
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only touches an atomic and calls _exit.
        unsafe { libc::signal(sig, handler as libc::sighandler_t) };
    }
}

fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// The error a run returns when the bench was interrupted.
#[derive(Debug)]
struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted")
    }
}

impl std::error::Error for Interrupted {}

fn check_interrupt() -> Result<()> {
    if interrupted() {
        return Err(Interrupted.into());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Child processes.

/// A command for a child: its own process group (so a terminal's Ctrl-C reaches the
/// bench, which stops children in order, and a wrapper script is signalled with what it
/// started) and SIGTERM when the bench dies.
fn child_command(bin: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.stdin(Stdio::null());
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setpgid(0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGTERM as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

/// Sends a signal to a child's process group, unless the child has been reaped (its pid
/// may then belong to someone else).
fn signal_child(child: &mut Child, sig: libc::c_int) {
    if let Ok(None) = child.try_wait() {
        if let Ok(pid) = libc::pid_t::try_from(child.id()) {
            // SAFETY: plain syscall; the group is ours (setpgid in child_command).
            unsafe { libc::kill(-pid, sig) };
        }
    }
}

/// How a stopped process ended.
#[derive(Clone, Debug, PartialEq, Eq)]
enum StopOutcome {
    /// It had exited before it was asked to stop.
    ExitedEarly(String),
    /// It exited after SIGTERM.
    Terminated(String, bool),
    /// It ignored SIGTERM for the grace period and was killed.
    Killed,
}

fn describe_status(status: &ExitStatus) -> String {
    if let Some(code) = status.code() {
        format!("exit code {code}")
    } else if let Some(sig) = status.signal() {
        format!(
            "killed by signal {sig}{}",
            signal_name(sig)
                .map(|n| format!(" ({n})"))
                .unwrap_or_default()
        )
    } else {
        status.to_string()
    }
}

fn signal_name(sig: i32) -> Option<&'static str> {
    Some(match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGTERM => "SIGTERM",
        _ => return None,
    })
}

/// SIGTERM to every process, then up to [`STOP_GRACE`] for all of them together, then
/// SIGKILL to the rest. Never fails; returns how each ended.
fn stop_all(children: &mut [&mut Child]) -> Vec<StopOutcome> {
    let mut outcomes: Vec<Option<StopOutcome>> = vec![None; children.len()];
    for (c, o) in children.iter_mut().zip(outcomes.iter_mut()) {
        match c.try_wait() {
            Ok(Some(status)) => *o = Some(StopOutcome::ExitedEarly(describe_status(&status))),
            _ => signal_child(c, libc::SIGTERM),
        }
    }
    let deadline = Instant::now() + STOP_GRACE;
    loop {
        for (c, o) in children.iter_mut().zip(outcomes.iter_mut()) {
            if o.is_none() {
                match c.try_wait() {
                    Ok(Some(status)) => {
                        *o = Some(StopOutcome::Terminated(
                            describe_status(&status),
                            status.success(),
                        ))
                    }
                    Ok(None) => {}
                    Err(e) => {
                        *o = Some(StopOutcome::Terminated(
                            format!("unknown status ({e})"),
                            false,
                        ))
                    }
                }
            }
        }
        if outcomes.iter().all(Option::is_some) || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    children
        .iter_mut()
        .zip(outcomes)
        .map(|(c, o)| match o {
            Some(o) => o,
            None => {
                signal_child(c, libc::SIGKILL);
                let _ = c.kill();
                let _ = c.wait();
                StopOutcome::Killed
            }
        })
        .collect()
}

/// A running node.
struct NodeProc {
    id: usize,
    child: Child,
    log: PathBuf,
    client_port: u16,
}

/// The nodes of one run. Dropping it stops them and deletes their data directory (unless
/// kept), on every exit path.
struct Cluster {
    nodes: Vec<NodeProc>,
    data_dir: PathBuf,
    keep_data: bool,
    stopped: bool,
}

impl Cluster {
    /// Fails if a node has exited: nodes run until the bench stops them.
    fn check_alive(&mut self) -> Result<()> {
        for node in &mut self.nodes {
            match node.child.try_wait() {
                Ok(None) => {}
                Ok(Some(status)) => bail!(
                    "node {} exited early ({}); last lines of {}:\n{}",
                    node.id,
                    describe_status(&status),
                    node.log.display(),
                    tail_lines(&node.log, TAIL_LINES)
                ),
                Err(e) => bail!("cannot check on node {}: {e}", node.id),
            }
        }
        Ok(())
    }

    /// Stops every node; returns how each ended. Idempotent.
    fn stop(&mut self) -> Vec<StopOutcome> {
        if self.stopped {
            return Vec::new();
        }
        self.stopped = true;
        let mut children: Vec<&mut Child> = self.nodes.iter_mut().map(|n| &mut n.child).collect();
        let outcomes = stop_all(&mut children);
        if !self.keep_data {
            if let Err(e) = fs::remove_dir_all(&self.data_dir) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    eprintln!("warning: cannot delete {}: {e}", self.data_dir.display());
                }
            }
        }
        outcomes
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A running client; dropping it stops it.
struct ClientProc {
    child: Child,
}

impl Drop for ClientProc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            stop_all(&mut [&mut self.child]);
        }
    }
}

/// The last `lines` lines of a log, indented, for an error message.
fn tail_lines(path: &Path, lines: usize) -> String {
    let read = || -> std::io::Result<String> {
        let mut f = File::open(path)?;
        let len = f.metadata()?.len();
        let start = len.saturating_sub(TAIL_BYTES);
        f.seek(SeekFrom::Start(start))?;
        let mut buf = Vec::new();
        f.take(TAIL_BYTES).read_to_end(&mut buf)?;
        let text = String::from_utf8_lossy(&buf).into_owned();
        // A partial first line is dropped when the read started mid-file.
        let text = if start > 0 {
            text.split_once('\n')
                .map(|(_, rest)| rest.to_string())
                .unwrap_or_default()
        } else {
            text
        };
        Ok(text)
    };
    match read() {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            if all.is_empty() {
                return "  | (empty)".to_string();
            }
            all[all.len().saturating_sub(lines)..]
                .iter()
                .map(|l| format!("  | {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        }
        Err(e) => format!("  | (cannot read: {e})"),
    }
}

/// The last line of a log that is a JSON object: a node prints its counters so when it
/// stops.
fn last_json_line(path: &Path) -> Option<serde_json::Value> {
    const MAX: u64 = 1 << 20;
    let mut f = File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(MAX))).ok()?;
    let mut buf = Vec::new();
    f.take(MAX).read_to_end(&mut buf).ok()?;
    String::from_utf8_lossy(&buf)
        .lines()
        .rev()
        .map(str::trim)
        .filter(|l| l.starts_with('{'))
        .find_map(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .ok()
                .filter(|v| v.is_object())
        })
}

/// Finds 2n consecutive ports from `from` on that can be bound on 127.0.0.1 right now.
fn free_port_block(from: usize, n: usize) -> Result<u16> {
    let bindable = |port: usize| {
        u16::try_from(port).is_ok_and(|p| TcpListener::bind((Ipv4Addr::LOCALHOST, p)).is_ok())
    };
    let mut base = from;
    while base + 2 * n <= 65536 {
        match (base..base + 2 * n).find(|&p| !bindable(p)) {
            // Restart past the port in use.
            Some(taken) => base = taken + 1,
            None => return u16::try_from(base).map_err(|_| anyhow!("port {base} out of range")),
        }
    }
    bail!(
        "no block of {} free ports on 127.0.0.1 from port {from} on",
        2 * n
    )
}

// ---------------------------------------------------------------------------------------
// The client's report.

/// What `olympus client --json` writes (fields the bench does not use are ignored).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
struct ClientReport {
    #[serde(default)]
    submitted: Option<u64>,
    /// Committed since the client started, warmup included.
    committed: u64,
    /// Committed in the measured window (after the warmup), when the client says.
    #[serde(default)]
    measured: Option<u64>,
    /// Transactions that f + 1 replicas each reported in two different blocks.
    #[serde(default)]
    conflicts: Option<u64>,
    throughput_tx_s: f64,
    #[serde(default)]
    latency_ms: Option<LatencyReport>,
    #[serde(default)]
    series: Vec<SeriesPoint>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
struct LatencyReport {
    mean: Option<f64>,
    p50: Option<f64>,
    p90: Option<f64>,
    p99: Option<f64>,
    max: Option<f64>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
struct SeriesPoint {
    t: f64,
    committed: Option<u64>,
    tps: Option<f64>,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
}

impl ClientReport {
    fn measured_commits(&self) -> u64 {
        self.measured.unwrap_or(self.committed)
    }

    fn latency(&self, pick: fn(&LatencyReport) -> Option<f64>) -> Option<f64> {
        self.latency_ms.as_ref().and_then(pick)
    }
}

/// A `progress t=<secs> committed=<n> tps=<x>` line of the client.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Progress {
    t: f64,
    committed: u64,
    tps: f64,
}

fn parse_progress(line: &str) -> Option<Progress> {
    let rest = line.trim().strip_prefix("progress ")?;
    let mut p = Progress::default();
    let mut seen_t = false;
    for field in rest.split_whitespace() {
        let (k, v) = field.split_once('=')?;
        match k {
            "t" => {
                p.t = v.trim_end_matches('s').parse().ok()?;
                seen_t = true;
            }
            "committed" => p.committed = v.parse().ok()?,
            "tps" => p.tps = v.parse().ok()?,
            _ => {}
        }
    }
    (seen_t && p.t.is_finite()).then_some(p)
}

// ---------------------------------------------------------------------------------------
// One run.

/// What the bench knows about a run, finished or not.
#[derive(Clone, Debug, Serialize)]
struct RunRecord {
    index: usize,
    protocol: String,
    n: usize,
    f: usize,
    block_size: usize,
    /// Whether names of runs say their block size (the sweep has several).
    #[serde(skip)]
    name_block: bool,
    repetition: usize,
    /// ok | failed | interrupted
    status: String,
    error: Option<String>,
    warnings: Vec<String>,
    base_port: Option<u16>,
    /// Relative to the bench directory.
    dir: String,
    config_dir: String,
    node_logs: Vec<String>,
    /// Each node's metrics (JSON), written when it stops.
    node_metrics: Vec<String>,
    client_log: String,
    client_json: String,
    data_dir: Option<String>,
    started_at: String,
    wall_s: f64,
    result: Option<ClientReport>,
    /// What each node printed as its last JSON line (its counters at shutdown), if any.
    node_counters: Vec<Option<serde_json::Value>>,
    /// Each node's CPU time per committed block and its split (see [`NodeCost`]).
    node_costs: Vec<NodeCost>,
    /// The mean of the nodes' costs per block.
    cost: Option<CostSplit>,
}

impl RunRecord {
    fn title(&self) -> String {
        run_title(
            &self.protocol,
            self.n,
            self.block_size,
            self.name_block,
            self.repetition,
        )
    }

    fn ok(&self) -> Option<&ClientReport> {
        if self.status == "ok" {
            self.result.as_ref()
        } else {
            None
        }
    }
}

/// Everything a run needs that does not change between runs.
struct Ctx<'a> {
    args: &'a Params,
    bin: &'a Path,
    root: &'a Path,
    load: Load,
    total_runs: usize,
}

/// Runs one (protocol, n, repetition): genconfig, nodes, client, stop. Fills `rec`.
fn run_one(
    ctx: &Ctx<'_>,
    spec: &RunSpec,
    port_cursor: &mut usize,
    rec: &mut RunRecord,
) -> Result<()> {
    let args = ctx.args;
    let dir = ctx.root.join(spec.dir_name());
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let config_dir = dir.join("config");
    let data_dir = dir.join("data");

    let base_port = free_port_block(*port_cursor, spec.n)?;
    *port_cursor = base_port as usize + 2 * spec.n;
    rec.base_port = Some(base_port);

    let pb = ProgressBar::new_spinner().with_finish(ProgressFinish::AndClear);
    pb.set_style(
        ProgressStyle::with_template("{spinner} {prefix} {msg}")
            .map_err(|e| anyhow!("progress template: {e}"))?,
    );
    pb.set_prefix(format!(
        "[{}/{}] {}",
        spec.index,
        ctx.total_runs,
        spec.title()
    ));
    pb.enable_steady_tick(Duration::from_millis(120));
    pb.set_message("generating configuration");

    // 1. Configuration.
    let genconfig_log = dir.join("genconfig.log");
    let mut cmd = child_command(ctx.bin);
    cmd.arg("genconfig")
        .arg("-n")
        .arg(spec.n.to_string())
        .arg("--out")
        .arg(&config_dir)
        .arg("--base-port")
        .arg(base_port.to_string())
        .args(["--seed", "bench", "--protocol", &spec.protocol])
        .arg("--block-size")
        .arg(spec.block_size.to_string())
        .arg("--view-timeout-ms")
        .arg(args.view_timeout_ms.to_string())
        .arg("--delta-ms")
        .arg(args.delta_ms.to_string())
        .arg("--dissemination")
        .arg(&args.dissemination)
        .arg("--data-dir")
        .arg(&data_dir);
    let log = File::create(&genconfig_log)
        .with_context(|| format!("cannot create {}", genconfig_log.display()))?;
    cmd.stdout(log.try_clone()?).stderr(log);
    let mut genconfig = cmd
        .spawn()
        .with_context(|| format!("cannot run {} genconfig", ctx.bin.display()))?;
    let status = loop {
        if interrupted() {
            stop_all(&mut [&mut genconfig]);
            return Err(Interrupted.into());
        }
        if let Some(status) = genconfig.try_wait()? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if !status.success() {
        bail!(
            "genconfig failed ({}); last lines of {}:\n{}",
            describe_status(&status),
            genconfig_log.display(),
            tail_lines(&genconfig_log, TAIL_LINES)
        );
    }

    // 2. Nodes.
    pb.set_message(format!(
        "starting {} nodes on ports {}-{}",
        spec.n,
        base_port,
        base_port as usize + 2 * spec.n - 1
    ));
    let mut cluster = Cluster {
        nodes: Vec::new(),
        data_dir: data_dir.clone(),
        keep_data: args.keep,
        stopped: false,
    };
    for i in 0..spec.n {
        let log_path = dir.join(format!("node-{i}.log"));
        let log = File::create(&log_path)
            .with_context(|| format!("cannot create {}", log_path.display()))?;
        let mut cmd = child_command(ctx.bin);
        cmd.arg("node")
            .arg("--config")
            .arg(config_dir.join(format!("node-{i}.toml")))
            .arg("--placement")
            .arg(&args.placement)
            .arg("--metrics-out")
            .arg(dir.join(format!("node-{i}.metrics.json")))
            .stdout(log.try_clone()?)
            .stderr(log);
        if std::env::var_os("RUST_BACKTRACE").is_none() {
            cmd.env("RUST_BACKTRACE", "1");
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start node {i} ({} node)", ctx.bin.display()))?;
        let client_port = u16::try_from(base_port as usize + 2 * i + 1)
            .map_err(|_| anyhow!("client port of node {i} out of range"))?;
        cluster.nodes.push(NodeProc {
            id: i,
            child,
            log: log_path,
            client_port,
        });
    }
    wait_ready(&mut cluster, &pb)?;
    pb.finish_and_clear();

    // 3. Client.
    let report = run_client(ctx, spec, &dir, &mut cluster)?;
    cluster.check_alive()?;

    // 4. Stop, with each node's CPU time read just before its SIGTERM.
    let cpu: Vec<Option<CpuTime>> = cluster
        .nodes
        .iter()
        .map(|n| cpu_time(n.child.id()))
        .collect();
    let outcomes = cluster.stop();
    rec.node_counters = cluster
        .nodes
        .iter()
        .map(|n| last_json_line(&n.log))
        .collect();
    rec.node_costs = cluster
        .nodes
        .iter()
        .zip(&cpu)
        .map(|(n, cpu)| {
            let metrics = fs::read_to_string(dir.join(format!("node-{}.metrics.json", n.id)))
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
            NodeCost::of(
                n.id,
                *cpu,
                rec.node_counters.get(n.id).and_then(Option::as_ref),
                metrics.as_ref(),
            )
        })
        .collect();
    rec.cost = CostSplit::mean(rec.node_costs.iter().filter_map(|c| c.per_block.as_ref()));
    for (node, outcome) in outcomes.into_iter().enumerate() {
        match outcome {
            StopOutcome::Terminated(_, true) => {}
            StopOutcome::Terminated(how, false) => rec
                .warnings
                .push(format!("node {node} ended with {how} after SIGTERM")),
            StopOutcome::Killed => rec.warnings.push(format!(
                "node {node} did not exit within {} s of SIGTERM and was killed",
                STOP_GRACE.as_secs()
            )),
            StopOutcome::ExitedEarly(how) => bail!("node {node} exited early ({how})"),
        }
    }
    rec.result = Some(report);
    Ok(())
}

/// Waits until every node accepts connections on its client port.
fn wait_ready(cluster: &mut Cluster, pb: &ProgressBar) -> Result<()> {
    let start = Instant::now();
    let mut ready = vec![false; cluster.nodes.len()];
    loop {
        check_interrupt()?;
        cluster.check_alive()?;
        for (node, r) in cluster.nodes.iter().zip(ready.iter_mut()) {
            if !*r {
                let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, node.client_port));
                *r = TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok();
            }
        }
        let count = ready.iter().filter(|r| **r).count();
        if count == ready.len() {
            return Ok(());
        }
        pb.set_message(format!("waiting for nodes: {count}/{} ready", ready.len()));
        if start.elapsed() >= READY_TIMEOUT {
            let i = ready.iter().position(|r| !*r).unwrap_or(0);
            let node = &cluster.nodes[i];
            bail!(
                "node {} did not accept connections on its client port 127.0.0.1:{} within {} s; \
                 last lines of {}:\n{}",
                node.id,
                node.client_port,
                READY_TIMEOUT.as_secs(),
                node.log.display(),
                tail_lines(&node.log, TAIL_LINES)
            );
        }
        std::thread::sleep(POLL);
    }
}

/// Runs the client to completion with a progress bar; returns its report.
fn run_client(
    ctx: &Ctx<'_>,
    spec: &RunSpec,
    dir: &Path,
    cluster: &mut Cluster,
) -> Result<ClientReport> {
    let args = ctx.args;
    let client_log = dir.join("client.log");
    let client_json = dir.join("client.json");
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&client_log)
        .with_context(|| format!("cannot create {}", client_log.display()))?;
    let mut cmd = child_command(ctx.bin);
    cmd.arg("client")
        .arg("--config")
        .arg(dir.join("config").join("clients.toml"))
        .arg("--duration")
        .arg(args.duration.to_string())
        .arg("--warmup")
        .arg(args.warmup.to_string())
        .args(ctx.load.client_args())
        .arg("--payload")
        .arg(args.payload.to_string())
        .arg("--json")
        .arg(&client_json)
        .stdout(log.try_clone()?)
        .stderr(Stdio::piped());
    let mut client = ClientProc {
        child: cmd
            .spawn()
            .with_context(|| format!("cannot start the client ({} client)", ctx.bin.display()))?,
    };
    let stderr = client
        .child
        .stderr
        .take()
        .ok_or_else(|| anyhow!("client stderr is not piped"))?;

    // Copies the client's stderr to its log and passes progress lines on.
    let (tx, rx) = mpsc::channel::<Progress>();
    let mut log_w = log;
    let reader = std::thread::spawn(move || {
        let mut r = BufReader::new(stderr);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let _ = log_w.write_all(&buf);
                    if let Some(p) = parse_progress(&String::from_utf8_lossy(&buf)) {
                        let _ = tx.send(p);
                    }
                }
            }
        }
    });

    let total = args.warmup + args.duration;
    let pb = ProgressBar::new(total).with_finish(ProgressFinish::AndClear);
    pb.set_style(
        ProgressStyle::with_template("{prefix} [{wide_bar}] {pos:>3}/{len}s {msg}")
            .map_err(|e| anyhow!("progress template: {e}"))?
            .progress_chars("=> "),
    );
    pb.set_prefix(format!(
        "[{}/{}] {}",
        spec.index,
        ctx.total_runs,
        spec.title()
    ));
    pb.set_message(if args.warmup > 0 {
        "warming up"
    } else {
        "measuring"
    });
    let start = Instant::now();
    let limit = Duration::from_secs(total) + CLIENT_GRACE;
    let mut last: Option<Progress> = None;
    let status = loop {
        if interrupted() {
            pb.finish_and_clear();
            return Err(Interrupted.into());
        }
        if let Err(e) = cluster.check_alive() {
            pb.finish_and_clear();
            return Err(e);
        }
        if let Some(status) = client.child.try_wait()? {
            break status;
        }
        while let Ok(p) = rx.try_recv() {
            last = Some(p);
        }
        let elapsed = start.elapsed();
        let pos = match last {
            Some(p) => p.t,
            None => elapsed.as_secs_f64(),
        };
        pb.set_position((pos.max(0.0) as u64).min(total));
        if let Some(p) = last {
            let phase = if p.t <= args.warmup as f64 {
                " (warmup)"
            } else {
                ""
            };
            pb.set_message(format!(
                "{} committed, {:.0} tx/s{phase}",
                p.committed, p.tps
            ));
        }
        if elapsed >= limit {
            pb.finish_and_clear();
            bail!(
                "the client did not finish within {} s of starting (warmup {} s + duration {} s + {} s); \
                 last lines of {}:\n{}",
                limit.as_secs(),
                args.warmup,
                args.duration,
                CLIENT_GRACE.as_secs(),
                client_log.display(),
                tail_lines(&client_log, TAIL_LINES)
            );
        }
        std::thread::sleep(POLL);
    };
    pb.finish_and_clear();
    // The pipe closes when the client exits, which ends the reader.
    let _ = reader.join();
    // A node that died explains a failing client better than the client does.
    cluster.check_alive()?;
    let report = fs::read_to_string(&client_json)
        .map_err(anyhow::Error::from)
        .and_then(|text| serde_json::from_str::<ClientReport>(&text).map_err(anyhow::Error::from))
        .with_context(|| {
            format!(
                "the client's report {} is missing or not valid",
                client_json.display()
            )
        });
    if let Ok(r) = &report {
        if r.conflicts.is_some_and(|c| c > 0) {
            bail!(
                "SAFETY VIOLATION: the client saw {} transactions reported committed in two \
                 different blocks by f + 1 replicas each; see {} and the node logs in {}",
                r.conflicts.unwrap_or(0),
                client_log.display(),
                dir.display()
            );
        }
        if r.measured_commits() == 0 {
            bail!(
                "nothing committed in the measured window ({} submitted, {} committed in all; \
                 the client ended with {}); see the node logs in {}",
                opt_or_unknown(r.submitted),
                r.committed,
                describe_status(&status),
                dir.display()
            );
        }
    }
    if !status.success() {
        bail!(
            "the client failed ({}); last lines of {}:\n{}",
            describe_status(&status),
            client_log.display(),
            tail_lines(&client_log, TAIL_LINES)
        );
    }
    let report = report?;
    if !report.throughput_tx_s.is_finite() {
        bail!(
            "the client's report {} has no finite throughput",
            client_json.display()
        );
    }
    Ok(report)
}

fn opt_or_unknown(v: Option<u64>) -> String {
    v.map(|x| x.to_string()).unwrap_or_else(|| "?".into())
}

// ---------------------------------------------------------------------------------------
// Cost breakdown: CPU time per committed block, split into crypto, network and the rest.

/// Histograms whose sums count as crypto time (µs): signature and certificate checks, and
/// signing when a node measures it.
const CRYPTO_HISTOGRAMS: &[&str] = &["olympus_verify_us", "olympus_sign_us"];

/// How the cost split is computed, for the manifest.
const COST_METHOD: &str = "per node: total = utime + stime of the node process from \
/proc/<pid>/stat just before SIGTERM; crypto = sum of the olympus_verify_us (and \
olympus_sign_us, if present) histograms, capped at utime; network = stime (kernel time, \
an approximation of socket work); rest (protocol + engine) = utime - crypto; each divided \
by the node's committed blocks (its committed_blocks at shutdown); run values are the \
mean over nodes";

/// CPU time a process has used, in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
struct CpuTime {
    user_s: f64,
    system_s: f64,
}

/// The user and system time of a process from `/proc/<pid>/stat`, if readable.
fn cpu_time(pid: u32) -> Option<CpuTime> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    parse_stat(&stat, ticks)
}

/// utime and stime (fields 14 and 15) of a `/proc/<pid>/stat` line. The command name
/// (field 2) is in parentheses and may hold spaces and parentheses: fields are counted
/// from the last ')'.
fn parse_stat(stat: &str, ticks_per_s: libc::c_long) -> Option<CpuTime> {
    if ticks_per_s <= 0 {
        return None;
    }
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state).
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let hz = ticks_per_s as f64;
    Some(CpuTime {
        user_s: utime as f64 / hz,
        system_s: stime as f64 / hz,
    })
}

/// The summed `sum` (µs) of every histogram named `name` (any labels) in a node's metrics
/// JSON; None if there is none.
fn histogram_sum(metrics: &serde_json::Value, name: &str) -> Option<f64> {
    let hs = metrics.get("histograms")?.as_object()?;
    let mut found = None;
    for (id, h) in hs {
        let base = id.split('{').next().unwrap_or(id);
        if base == name {
            if let Some(s) = h.get("sum").and_then(serde_json::Value::as_f64) {
                *found.get_or_insert(0.0) += s;
            }
        }
    }
    found
}

/// CPU microseconds per committed block, split; None where an input is missing.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
struct CostSplit {
    total_us: Option<f64>,
    crypto_us: Option<f64>,
    network_us: Option<f64>,
    rest_us: Option<f64>,
}

impl CostSplit {
    fn pct(&self, part: Option<f64>) -> Option<f64> {
        let t = self.total_us?;
        let part = part?;
        (t > 0.0).then(|| 100.0 * part / t)
    }

    /// The field-by-field mean, each over the nodes that have it; None without any node.
    fn mean<'a>(costs: impl Iterator<Item = &'a CostSplit>) -> Option<CostSplit> {
        let costs: Vec<&CostSplit> = costs.collect();
        if costs.is_empty() {
            return None;
        }
        let avg = |pick: fn(&CostSplit) -> Option<f64>| {
            let v: Vec<f64> = costs.iter().filter_map(|c| pick(c)).collect();
            (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
        };
        Some(CostSplit {
            total_us: avg(|c| c.total_us),
            crypto_us: avg(|c| c.crypto_us),
            network_us: avg(|c| c.network_us),
            rest_us: avg(|c| c.rest_us),
        })
    }
}

/// One node's CPU use over its life and its cost per committed block.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
struct NodeCost {
    node: usize,
    /// From /proc just before SIGTERM.
    cpu: Option<CpuTime>,
    committed_blocks: Option<u64>,
    /// Summed crypto histograms, µs (wall time of the checks).
    crypto_hist_us: Option<f64>,
    /// The crypto histograms exceed the user CPU time (they measure wall time, which
    /// includes preemption on a busy machine), so crypto was capped at user time.
    crypto_capped: bool,
    /// None when CPU time or committed blocks are unknown, or nothing committed.
    per_block: Option<CostSplit>,
}

impl NodeCost {
    /// Combines what is known about a node: its CPU time, the counters it printed at
    /// shutdown and its metrics file.
    fn of(
        node: usize,
        cpu: Option<CpuTime>,
        counters: Option<&serde_json::Value>,
        metrics: Option<&serde_json::Value>,
    ) -> NodeCost {
        let committed_blocks = counters
            .and_then(|c| c.get("committed_blocks"))
            .and_then(serde_json::Value::as_u64)
            .or_else(|| {
                metrics
                    .and_then(|m| m.get("counters"))
                    .and_then(|c| c.get("olympus_commits_total"))
                    .and_then(serde_json::Value::as_u64)
            });
        let crypto_hist_us = metrics.and_then(|m| {
            CRYPTO_HISTOGRAMS
                .iter()
                .filter_map(|h| histogram_sum(m, h))
                .reduce(|a, b| a + b)
        });
        let crypto_capped =
            matches!((crypto_hist_us, cpu), (Some(c), Some(cpu)) if c > cpu.user_s * 1e6);
        let per_block = match (committed_blocks, cpu) {
            (Some(blocks), Some(cpu)) if blocks > 0 => {
                let b = blocks as f64;
                let user_us = cpu.user_s * 1e6;
                let crypto = crypto_hist_us.map(|c| c.min(user_us));
                Some(CostSplit {
                    total_us: Some((user_us + cpu.system_s * 1e6) / b),
                    crypto_us: crypto.map(|c| c / b),
                    network_us: Some(cpu.system_s * 1e6 / b),
                    rest_us: crypto.map(|c| (user_us - c) / b),
                })
            }
            _ => None,
        };
        NodeCost {
            node,
            cpu,
            committed_blocks,
            crypto_hist_us,
            crypto_capped,
            per_block,
        }
    }
}

fn fmt_us(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.0}")).unwrap_or_else(|| "n/a".into())
}

fn fmt_part(c: &CostSplit, part: Option<f64>) -> String {
    match (part, c.pct(part)) {
        (Some(v), Some(p)) => format!("{v:.0} ({p:.0}%)"),
        (Some(v), None) => format!("{v:.0}"),
        _ => "n/a".into(),
    }
}

/// Most rows of the per-node cost table; beyond, it shows one row per run (node means).
const MAX_COST_ROWS: usize = 16;

/// The cost table: CPU µs per committed block by node (or by run, for large sweeps).
fn cost_table(records: &[RunRecord]) -> String {
    let ran: Vec<&RunRecord> = records.iter().filter(|r| r.ok().is_some()).collect();
    let per_node = ran.iter().map(|r| r.node_costs.len()).sum::<usize>() <= MAX_COST_ROWS;
    let headers = [
        "run",
        "node",
        "blocks",
        "total µs",
        "crypto µs",
        "network µs",
        "rest µs",
    ];
    let right = [false, true, true, true, true, true, true];
    let row = |title: String, node: String, blocks: String, c: Option<&CostSplit>| {
        let d = CostSplit::default();
        let c = c.unwrap_or(&d);
        vec![
            title,
            node,
            blocks,
            fmt_us(c.total_us),
            fmt_part(c, c.crypto_us),
            fmt_part(c, c.network_us),
            fmt_part(c, c.rest_us),
        ]
    };
    let mut rows = Vec::new();
    let mut capped = false;
    for r in &ran {
        capped |= r.node_costs.iter().any(|c| c.crypto_capped);
        if per_node {
            for nc in &r.node_costs {
                rows.push(row(
                    r.title(),
                    nc.node.to_string(),
                    nc.committed_blocks
                        .map(|b| b.to_string())
                        .unwrap_or_else(|| "n/a".into()),
                    nc.per_block.as_ref(),
                ));
            }
        } else {
            let blocks: Vec<u64> = r
                .node_costs
                .iter()
                .filter_map(|c| c.committed_blocks)
                .collect();
            let mean_blocks = if blocks.is_empty() {
                "n/a".to_string()
            } else {
                format!(
                    "{:.0}",
                    blocks.iter().sum::<u64>() as f64 / blocks.len() as f64
                )
            };
            rows.push(row(r.title(), "mean".into(), mean_blocks, r.cost.as_ref()));
        }
    }
    let mut out = render_table(&headers, &right, &rows);
    if capped {
        out.push_str(
            "note: on some nodes the verify-time histogram (wall time) exceeded the user CPU \
             time; crypto was capped at it (the cores are oversubscribed)\n",
        );
    }
    out
}

// ---------------------------------------------------------------------------------------
// Statistics, table, CSV.

/// Min, median and max of some values.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Stats {
    min: f64,
    median: f64,
    max: f64,
}

/// None when there are no finite values; the median of an even count is the mean of the
/// two middle values.
fn stats(values: &[f64]) -> Option<Stats> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    let median = if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    };
    Some(Stats {
        min: v[0],
        median,
        max: v[v.len() - 1],
    })
}

/// One (protocol, n, block size) cell of the sweep: payload and load are the same for all.
struct Cell<'a> {
    protocol: &'a str,
    n: usize,
    f: usize,
    block_size: usize,
    runs: Vec<&'a RunRecord>,
}

impl Cell<'_> {
    fn ok(&self) -> Vec<&ClientReport> {
        self.runs.iter().filter_map(|r| r.ok()).collect()
    }

    fn throughput(&self) -> Option<Stats> {
        stats(
            &self
                .ok()
                .iter()
                .map(|r| r.throughput_tx_s)
                .collect::<Vec<_>>(),
        )
    }

    fn latency(&self, pick: fn(&LatencyReport) -> Option<f64>) -> Option<Stats> {
        stats(
            &self
                .ok()
                .iter()
                .filter_map(|r| r.latency(pick))
                .collect::<Vec<_>>(),
        )
    }

    /// Min/median/max over the successful runs of one field of their mean cost.
    fn cost(&self, pick: fn(&CostSplit) -> Option<f64>) -> Option<Stats> {
        stats(
            &self
                .runs
                .iter()
                .filter(|r| r.ok().is_some())
                .filter_map(|r| r.cost.as_ref().and_then(pick))
                .collect::<Vec<_>>(),
        )
    }
}

/// Groups runs into cells, in the order the cells first ran.
fn cells(records: &[RunRecord]) -> Vec<Cell<'_>> {
    let mut out: Vec<Cell<'_>> = Vec::new();
    for r in records {
        match out
            .iter_mut()
            .find(|c| c.protocol == r.protocol && c.n == r.n && c.block_size == r.block_size)
        {
            Some(c) => c.runs.push(r),
            None => out.push(Cell {
                protocol: &r.protocol,
                n: r.n,
                f: r.f,
                block_size: r.block_size,
                runs: vec![r],
            }),
        }
    }
    out
}

/// Renders rows under headers, columns padded to their widest cell; `right` says which
/// columns are right-aligned (numbers).
fn render_table(headers: &[&str], right: &[bool], rows: &[Vec<String>]) -> String {
    let width = |s: &str| s.chars().count();
    let mut widths: Vec<usize> = headers.iter().map(|h| width(h)).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(width(cell));
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, &w))| {
                let pad = " ".repeat(w.saturating_sub(width(c)));
                if right.get(i).copied().unwrap_or(false) {
                    format!("{pad}{c}")
                } else {
                    format!("{c}{pad}")
                }
            })
            .collect();
        let mut l = parts.join("  ").trim_end().to_string();
        l.push('\n');
        l
    };
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    let mut out = line(headers.to_vec());
    out.push_str(&line(rule.iter().map(String::as_str).collect()));
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

fn fmt_ms(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.1}")).unwrap_or_else(|| "-".into())
}

/// The results table: one row per cell. With several runs per cell: medians, and the
/// min–max range of throughput.
fn results_table(args: &Params, load: Load, records: &[RunRecord]) -> String {
    let cells = cells(records);
    let show_runs = args.runs > 1 || records.iter().any(|r| r.ok().is_none());
    let mut headers = vec![
        "protocol", "n", "f", "block", "payload", "load", "tx/s", "p50 ms", "p99 ms",
    ];
    let mut right = vec![false, true, true, true, true, false, true, true, true];
    if show_runs {
        headers.push("runs ok");
        right.push(true);
    }
    let rows: Vec<Vec<String>> = cells
        .iter()
        .map(|c| {
            let tput = match c.throughput() {
                None if c.runs.iter().all(|r| r.status == "interrupted") => {
                    "interrupted".to_string()
                }
                None => "failed".to_string(),
                Some(s) if c.ok().len() > 1 => {
                    format!("{:.0} ({:.0}–{:.0})", s.median, s.min, s.max)
                }
                Some(s) => format!("{:.0}", s.median),
            };
            let mut row = vec![
                c.protocol.to_string(),
                c.n.to_string(),
                c.f.to_string(),
                c.block_size.to_string(),
                args.payload.to_string(),
                load.label(),
                tput,
                fmt_ms(c.latency(|l| l.p50).map(|s| s.median)),
                fmt_ms(c.latency(|l| l.p99).map(|s| s.median)),
            ];
            if show_runs {
                row.push(format!("{}/{}", c.ok().len(), c.runs.len()));
            }
            row
        })
        .collect();
    render_table(&headers, &right, &rows)
}

/// A CSV field, quoted when it must be.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn csv_line(fields: &[String]) -> String {
    let mut s = fields
        .iter()
        .map(|f| csv_field(f))
        .collect::<Vec<_>>()
        .join(",");
    s.push('\n');
    s
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

fn load_fields(load: Load) -> [String; 3] {
    match load {
        Load::Window(k) => [load.kind().into(), k.to_string(), String::new()],
        Load::Rate(r) => [load.kind().into(), String::new(), r.to_string()],
    }
}

const SUMMARY_HEADER: &[&str] = &[
    "protocol",
    "n",
    "f",
    "block_size",
    "payload_bytes",
    "load",
    "window",
    "rate_tx_s",
    "runs",
    "runs_ok",
    "throughput_tx_s_min",
    "throughput_tx_s_median",
    "throughput_tx_s_max",
    "p50_ms_min",
    "p50_ms_median",
    "p50_ms_max",
    "p99_ms_min",
    "p99_ms_median",
    "p99_ms_max",
    "mean_ms_min",
    "mean_ms_median",
    "mean_ms_max",
    "cpu_us_per_block_median",
    "crypto_us_per_block_median",
    "network_us_per_block_median",
    "rest_us_per_block_median",
];

/// The cost columns: a run's mean over its nodes of CPU µs per committed block.
const COST_FIELDS: [fn(&CostSplit) -> Option<f64>; 4] = [
    |c| c.total_us,
    |c| c.crypto_us,
    |c| c.network_us,
    |c| c.rest_us,
];

fn fmt_cost_csv(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.1}")).unwrap_or_default()
}

/// summary.csv: one row per cell.
fn summary_csv(args: &Params, load: Load, records: &[RunRecord]) -> String {
    let mut out = csv_line(
        &SUMMARY_HEADER
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>(),
    );
    for c in cells(records) {
        let mut row = vec![
            c.protocol.to_string(),
            c.n.to_string(),
            c.f.to_string(),
            c.block_size.to_string(),
            args.payload.to_string(),
        ];
        row.extend(load_fields(load));
        row.push(c.runs.len().to_string());
        row.push(c.ok().len().to_string());
        for s in [
            c.throughput(),
            c.latency(|l| l.p50),
            c.latency(|l| l.p99),
            c.latency(|l| l.mean),
        ] {
            row.push(opt(s.map(|s| s.min)));
            row.push(opt(s.map(|s| s.median)));
            row.push(opt(s.map(|s| s.max)));
        }
        for pick in COST_FIELDS {
            row.push(fmt_cost_csv(c.cost(pick).map(|s| s.median)));
        }
        out.push_str(&csv_line(&row));
    }
    out
}

const RUNS_HEADER: &[&str] = &[
    "run",
    "protocol",
    "n",
    "f",
    "repetition",
    "block_size",
    "payload_bytes",
    "load",
    "window",
    "rate_tx_s",
    "base_port",
    "status",
    "submitted",
    "committed",
    "measured",
    "throughput_tx_s",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "mean_ms",
    "max_ms",
    "cpu_us_per_block",
    "crypto_us_per_block",
    "network_us_per_block",
    "rest_us_per_block",
    "wall_s",
    "dir",
    "error",
];

/// runs.csv: one row per run.
fn runs_csv(args: &Params, load: Load, records: &[RunRecord]) -> String {
    let mut out = csv_line(
        &RUNS_HEADER
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>(),
    );
    for r in records {
        let res = r.result.as_ref();
        let lat = |pick: fn(&LatencyReport) -> Option<f64>| opt(res.and_then(|x| x.latency(pick)));
        let mut row = vec![
            r.index.to_string(),
            r.protocol.clone(),
            r.n.to_string(),
            r.f.to_string(),
            r.repetition.to_string(),
            r.block_size.to_string(),
            args.payload.to_string(),
        ];
        row.extend(load_fields(load));
        row.extend([
            opt(r.base_port),
            r.status.clone(),
            opt(res.and_then(|x| x.submitted)),
            opt(res.map(|x| x.committed)),
            opt(res.and_then(|x| x.measured)),
            opt(res.map(|x| x.throughput_tx_s)),
            lat(|l| l.p50),
            lat(|l| l.p90),
            lat(|l| l.p99),
            lat(|l| l.mean),
            lat(|l| l.max),
        ]);
        for pick in COST_FIELDS {
            row.push(fmt_cost_csv(r.cost.as_ref().and_then(pick)));
        }
        row.extend([
            format!("{:.3}", r.wall_s),
            r.dir.clone(),
            r.error.clone().unwrap_or_default(),
        ]);
        out.push_str(&csv_line(&row));
    }
    out
}

// ---------------------------------------------------------------------------------------
// Plots: hand-written SVG line charts.

/// One line of a chart.
#[derive(Clone, Debug)]
struct Line {
    label: String,
    color: &'static str,
    dashed: bool,
    points: Vec<(f64, f64)>,
}

const PALETTE: &[&str] = &[
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
];

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// A "nice" tick step (1, 2 or 5 times a power of ten) giving about `target` ticks over
/// `range`.
fn nice_step(range: f64, target: usize) -> f64 {
    let raw = range / target.max(1) as f64;
    if raw <= 0.0 || !raw.is_finite() {
        return 1.0;
    }
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    // The tolerance keeps 0.2 / 0.1 = 2.0000000000000004 a 2.
    let nice = if norm <= 1.0 + 1e-9 {
        1.0
    } else if norm <= 2.0 + 1e-9 {
        2.0
    } else if norm <= 5.0 + 1e-9 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// The axis from 0 (or below, for negative data) to a nice bound above the data, with its
/// tick step.
fn axis(lo: f64, hi: f64) -> (f64, f64, f64) {
    let lo = lo.min(0.0);
    let hi = if hi > lo { hi } else { lo + 1.0 };
    let step = nice_step(hi - lo, 5);
    let lo = (lo / step).floor() * step;
    let hi = (hi / step).ceil() * step;
    (lo, hi, step)
}

fn tick_label(v: f64, step: f64) -> String {
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10() - 1e-9).ceil() as usize
    };
    let s = format!("{v:.decimals$}");
    if s.starts_with("-0") && s.trim_start_matches(['-', '0', '.']).is_empty() {
        s[1..].to_string()
    } else {
        s
    }
}

/// An SVG line chart of `lines`, with axes, ticks, labels and a legend.
fn svg_chart(title: &str, x_label: &str, y_label: &str, lines: &[Line]) -> String {
    const W: f64 = 900.0;
    const H: f64 = 480.0;
    const LEFT: f64 = 80.0;
    const RIGHT: f64 = 220.0;
    const TOP: f64 = 40.0;
    const BOTTOM: f64 = 55.0;
    let pw = W - LEFT - RIGHT;
    let ph = H - TOP - BOTTOM;

    let pts = lines
        .iter()
        .flat_map(|l| l.points.iter())
        .filter(|(x, y)| x.is_finite() && y.is_finite());
    let (mut x0, mut x1, mut y0, mut y1) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for &(x, y) in pts {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    let empty = !x0.is_finite();
    if empty {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    let (xa, xb, xs) = axis(x0, x1);
    // Headroom, so that a peak does not touch the frame.
    let (ya, yb, ys) = axis(y0, y1 + 0.04 * (y1 - y0.min(0.0)));
    let sx = |x: f64| LEFT + (x - xa) / (xb - xa) * pw;
    let sy = |y: f64| TOP + ph - (y - ya) / (yb - ya) * ph;

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>"#,
        LEFT + pw / 2.0,
        xml_escape(title)
    );
    // Grid and ticks.
    for i in 0..=((xb - xa) / xs).round() as usize {
        let x = xa + i as f64 * xs;
        let px = sx(x);
        let _ = writeln!(
            s,
            r##"<line x1="{px:.1}" y1="{TOP}" x2="{px:.1}" y2="{:.1}" stroke="#e5e5e5"/><text x="{px:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            TOP + ph,
            TOP + ph + 16.0,
            tick_label(x, xs)
        );
    }
    for i in 0..=((yb - ya) / ys).round() as usize {
        let y = ya + i as f64 * ys;
        let py = sy(y);
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{py:.1}" x2="{:.1}" y2="{py:.1}" stroke="#e5e5e5"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            LEFT + pw,
            LEFT - 6.0,
            py + 4.0,
            tick_label(y, ys)
        );
    }
    let _ = writeln!(
        s,
        r##"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>"##
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        LEFT + pw / 2.0,
        H - 14.0,
        xml_escape(x_label)
    );
    let _ = writeln!(
        s,
        r#"<text x="18" y="{:.1}" text-anchor="middle" transform="rotate(-90 18 {:.1})">{}</text>"#,
        TOP + ph / 2.0,
        TOP + ph / 2.0,
        xml_escape(y_label)
    );
    if empty {
        let _ = writeln!(
            s,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#888">no data</text>"##,
            LEFT + pw / 2.0,
            TOP + ph / 2.0
        );
    }
    // Lines and legend.
    for (i, l) in lines.iter().enumerate() {
        let points: Vec<String> = l
            .points
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
            .collect();
        let dash = if l.dashed {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        if !points.is_empty() {
            let _ = writeln!(
                s,
                r#"<polyline fill="none" stroke="{}" stroke-width="1.8"{dash} points="{}"/>"#,
                l.color,
                points.join(" ")
            );
        }
        let ly = TOP + 10.0 + 18.0 * i as f64;
        let lx = LEFT + pw + 14.0;
        let _ = writeln!(
            s,
            r#"<line x1="{lx:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{}" stroke-width="2"{dash}/><text x="{:.1}" y="{:.1}">{}</text>"#,
            lx + 24.0,
            l.color,
            lx + 30.0,
            ly + 4.0,
            xml_escape(&l.label)
        );
    }
    s.push_str("</svg>\n");
    s
}

/// Throughput and latency charts of some runs' per-second series.
fn plots(records: &[&RunRecord]) -> (String, String) {
    let (tput, lat) = plot_lines(records);
    (
        svg_chart(TPUT_TITLE, TIME_AXIS, "tx/s", &tput),
        svg_chart(LAT_TITLE, TIME_AXIS, "latency (ms)", &lat),
    )
}

/// The lines of the throughput and latency charts over time: one per run (two for
/// latency: p50 and p99).
fn plot_lines(records: &[&RunRecord]) -> (Vec<Line>, Vec<Line>) {
    let mut tput = Vec::new();
    let mut lat = Vec::new();
    for (i, r) in records.iter().take(MAX_PLOT_RUNS).enumerate() {
        let Some(res) = r.ok() else { continue };
        let color = PALETTE[i % PALETTE.len()];
        let label = r.title();
        tput.push(Line {
            label: label.clone(),
            color,
            dashed: false,
            points: res
                .series
                .iter()
                .filter_map(|p| Some((p.t, p.tps?)))
                .collect(),
        });
        lat.push(Line {
            label: format!("{label} p50"),
            color,
            dashed: false,
            points: res
                .series
                .iter()
                // A second without commits has no latency (the client writes 0).
                .filter(|p| p.committed != Some(0))
                .filter_map(|p| Some((p.t, p.p50_ms?)))
                .collect(),
        });
        lat.push(Line {
            label: format!("{label} p99"),
            color,
            dashed: true,
            points: res
                .series
                .iter()
                // A second without commits has no latency (the client writes 0).
                .filter(|p| p.committed != Some(0))
                .filter_map(|p| Some((p.t, p.p99_ms?)))
                .collect(),
        });
    }
    (tput, lat)
}

/// Throughput and latency against block size, one line per (protocol, n): the median
/// over each cell's successful runs.
fn block_size_lines(records: &[RunRecord]) -> (Vec<Line>, Vec<Line>) {
    let mut groups: Vec<(String, usize, Vec<&Cell<'_>>)> = Vec::new();
    let cells = cells(records);
    for c in &cells {
        match groups
            .iter_mut()
            .find(|(p, n, _)| p == c.protocol && *n == c.n)
        {
            Some(g) => g.2.push(c),
            None => groups.push((c.protocol.to_string(), c.n, vec![c])),
        }
    }
    let mut tput = Vec::new();
    let mut lat = Vec::new();
    for (i, (protocol, n, cs)) in groups.iter().take(MAX_PLOT_RUNS).enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let label = format!("{protocol} n={n}");
        let pts = |f: &dyn Fn(&Cell<'_>) -> Option<Stats>| -> Vec<(f64, f64)> {
            let mut v: Vec<(f64, f64)> = cs
                .iter()
                .filter_map(|c| Some((c.block_size as f64, f(c)?.median)))
                .collect();
            v.sort_by(|a, b| a.0.total_cmp(&b.0));
            v
        };
        tput.push(Line {
            label: label.clone(),
            color,
            dashed: false,
            points: pts(&|c| c.throughput()),
        });
        lat.push(Line {
            label: format!("{label} p50"),
            color,
            dashed: false,
            points: pts(&|c| c.latency(|l| l.p50)),
        });
        lat.push(Line {
            label: format!("{label} p99"),
            color,
            dashed: true,
            points: pts(&|c| c.latency(|l| l.p99)),
        });
    }
    (tput, lat)
}

/// "#rrggbb" as RGB (grey if malformed).
fn hex_rgb(c: &str) -> png::Rgb {
    let h = c.trim_start_matches('#');
    let byte = |i: usize| h.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok());
    match (h.len(), byte(0), byte(2), byte(4)) {
        (6, Some(r), Some(g), Some(b)) => [r, g, b],
        _ => [128, 128, 128],
    }
}

/// The same line chart as [`svg_chart`], rasterized to a PNG file.
fn png_chart(title: &str, x_label: &str, y_label: &str, lines: &[Line]) -> Vec<u8> {
    const W: i64 = 900;
    const H: i64 = 480;
    const LEFT: i64 = 80;
    const RIGHT: i64 = 230;
    const TOP: i64 = 40;
    const BOTTOM: i64 = 55;
    const GRID: png::Rgb = [229, 229, 229];
    const FRAME: png::Rgb = [51, 51, 51];
    let pw = W - LEFT - RIGHT;
    let ph = H - TOP - BOTTOM;

    let (mut x0, mut x1, mut y0, mut y1) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for &(x, y) in lines
        .iter()
        .flat_map(|l| l.points.iter())
        .filter(|(x, y)| x.is_finite() && y.is_finite())
    {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    let empty = !x0.is_finite();
    if empty {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    let (xa, xb, xs) = axis(x0, x1);
    let (ya, yb, ys) = axis(y0, y1 + 0.04 * (y1 - y0.min(0.0)));
    let sx = |x: f64| LEFT + ((x - xa) / (xb - xa) * pw as f64).round() as i64;
    let sy = |y: f64| TOP + ph - ((y - ya) / (yb - ya) * ph as f64).round() as i64;

    let mut c = png::Canvas::new(W as usize, H as usize, png::WHITE);
    let tw = png::text_width(title, 2);
    c.text(LEFT + (pw - tw) / 2, 10, title, png::BLACK, 2);
    for i in 0..=((xb - xa) / xs).round() as i64 {
        let x = xa + i as f64 * xs;
        let px = sx(x);
        c.line(px, TOP, px, TOP + ph, GRID, 1, None);
        let l = tick_label(x, xs);
        c.text(
            px - png::text_width(&l, 1) / 2,
            TOP + ph + 8,
            &l,
            png::BLACK,
            1,
        );
    }
    for i in 0..=((yb - ya) / ys).round() as i64 {
        let y = ya + i as f64 * ys;
        let py = sy(y);
        c.line(LEFT, py, LEFT + pw, py, GRID, 1, None);
        let l = tick_label(y, ys);
        c.text(LEFT - 6 - png::text_width(&l, 1), py - 3, &l, png::BLACK, 1);
    }
    c.rect(LEFT, TOP, pw + 1, ph + 1, FRAME);
    let xw = png::text_width(x_label, 1);
    c.text(LEFT + (pw - xw) / 2, H - 22, x_label, png::BLACK, 1);
    let yw = png::text_width(y_label, 1);
    c.text_up(14, TOP + (ph + yw) / 2, y_label, png::BLACK, 1);
    if empty {
        let w = png::text_width("no data", 2);
        c.text(
            LEFT + (pw - w) / 2,
            TOP + ph / 2 - 7,
            "no data",
            [136, 136, 136],
            2,
        );
    }
    for (i, l) in lines.iter().enumerate() {
        let color = hex_rgb(l.color);
        let dash = l.dashed.then_some((6, 4));
        let pts: Vec<(i64, i64)> = l
            .points
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .map(|&(x, y)| (sx(x), sy(y)))
            .collect();
        for w in pts.windows(2) {
            c.line(w[0].0, w[0].1, w[1].0, w[1].1, color, 2, dash);
        }
        // Points, so that a one-point line still shows.
        for &(x, y) in &pts {
            c.fill_rect(x - 2, y - 2, 5, 5, color);
        }
        let ly = TOP + 10 + 18 * i as i64;
        let lx = LEFT + pw + 14;
        c.line(lx, ly, lx + 24, ly, color, 2, dash);
        c.text(lx + 30, ly - 3, &l.label, png::BLACK, 1);
    }
    c.to_png()
}

/// Writes a binary file (write then rename, like [`write_file`]).
fn write_bytes(path: &Path, contents: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, contents).with_context(|| format!("cannot write {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

const TPUT_TITLE: &str = "Committed throughput per second";
const LAT_TITLE: &str = "Commit latency per second (p50 solid, p99 dashed)";
const TIME_AXIS: &str = "seconds into the measured window";

/// Writes every plot of the bench into its directory: throughput and latency over time
/// (SVG and PNG), and with several block sizes the same against block size. Returns the
/// file names written.
fn write_plots(root: &Path, records: &[RunRecord]) -> Result<Vec<String>> {
    let all: Vec<&RunRecord> = records.iter().collect();
    let (t, l) = plots(&all);
    write_file(&root.join("throughput.svg"), &t)?;
    write_file(&root.join("latency.svg"), &l)?;
    let (tl, ll) = plot_lines(&all);
    write_bytes(
        &root.join("throughput.png"),
        &png_chart(TPUT_TITLE, TIME_AXIS, "tx/s", &tl),
    )?;
    write_bytes(
        &root.join("latency.png"),
        &png_chart(LAT_TITLE, TIME_AXIS, "latency (ms)", &ll),
    )?;
    let mut files: Vec<String> = [
        "throughput.svg",
        "latency.svg",
        "throughput.png",
        "latency.png",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut sizes: Vec<usize> = records.iter().map(|r| r.block_size).collect();
    sizes.sort_unstable();
    sizes.dedup();
    if sizes.len() > 1 {
        let (tb, lb) = block_size_lines(records);
        let tt = "Throughput vs block size (median of runs)";
        let lt = "Latency vs block size (p50 solid, p99 dashed; median of runs)";
        let xl = "block size (transactions)";
        write_file(
            &root.join("throughput_vs_block_size.svg"),
            &svg_chart(tt, xl, "tx/s", &tb),
        )?;
        write_file(
            &root.join("latency_vs_block_size.svg"),
            &svg_chart(lt, xl, "latency (ms)", &lb),
        )?;
        write_bytes(
            &root.join("throughput_vs_block_size.png"),
            &png_chart(tt, xl, "tx/s", &tb),
        )?;
        write_bytes(
            &root.join("latency_vs_block_size.png"),
            &png_chart(lt, xl, "latency (ms)", &lb),
        )?;
        files.extend(
            [
                "throughput_vs_block_size.svg",
                "latency_vs_block_size.svg",
                "throughput_vs_block_size.png",
                "latency_vs_block_size.png",
            ]
            .iter()
            .map(|s| s.to_string()),
        );
    }
    Ok(files)
}

// ---------------------------------------------------------------------------------------
// Time, host, manifest.

/// (year, month, day, hour, minute, second) in UTC of a Unix time.
fn civil(secs: u64) -> (i64, u32, u32, u32, u32, u32) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m,
        d,
        (rem / 3600) as u32,
        (rem % 3600 / 60) as u32,
        (rem % 60) as u32,
    )
}

/// `yyyymmdd-hhmmss`, UTC.
fn timestamp(secs: u64) -> String {
    let (y, mo, d, h, mi, s) = civil(secs);
    format!("{y:04}{mo:02}{d:02}-{h:02}{mi:02}{s:02}")
}

/// RFC 3339, UTC.
fn rfc3339(secs: u64) -> String {
    let (y, mo, d, h, mi, s) = civil(secs);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Creates `<out>/<stamp>` (or `<stamp>-2`, ... if it exists).
fn create_root(out: &Path, stamp: &str) -> Result<PathBuf> {
    fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    for k in 1..100 {
        let name = if k == 1 {
            stamp.to_string()
        } else {
            format!("{stamp}-{k}")
        };
        let dir = out.join(name);
        match fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot create {}", dir.display())),
        }
    }
    bail!(
        "cannot find a free directory name for {stamp} under {}",
        out.display()
    )
}

/// The trimmed stdout of a command, if it ran and succeeded.
fn command_output(program: &str, args: &[&str], dir: Option<&Path>) -> Option<String> {
    let mut cmd = Command::new(program);
    cmd.args(args).stdin(Stdio::null()).stderr(Stdio::null());
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    let out = cmd.output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn read_trimmed(path: &str) -> Option<String> {
    let s = fs::read_to_string(path).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

/// Where and on what the bench ran.
#[derive(Clone, Debug, Serialize)]
struct HostInfo {
    hostname: Option<String>,
    nproc: Option<usize>,
    kernel: Option<String>,
    os: &'static str,
    arch: &'static str,
}

impl HostInfo {
    fn collect() -> HostInfo {
        HostInfo {
            hostname: read_trimmed("/proc/sys/kernel/hostname")
                .or_else(|| command_output("hostname", &[], None)),
            nproc: std::thread::available_parallelism().ok().map(|n| n.get()),
            kernel: read_trimmed("/proc/sys/kernel/osrelease")
                .or_else(|| command_output("uname", &["-r"], None)),
            os: std::env::consts::OS,
            arch: std::env::consts::ARCH,
        }
    }
}

/// The git commit of the code that runs: that of the executable's directory (a cargo
/// target directory inside the checkout), or failing that of the working directory; and
/// whether tracked files have uncommitted changes.
fn git_info(bin: &Path) -> (Option<String>, Option<bool>) {
    let dirs = [
        bin.parent().map(Path::to_path_buf),
        std::env::current_dir().ok(),
    ];
    for dir in dirs.iter().flatten() {
        if let Some(commit) = command_output("git", &["rev-parse", "HEAD"], Some(dir)) {
            let dirty = Command::new("git")
                .args(["status", "--porcelain", "--untracked-files=no"])
                .current_dir(dir)
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| !o.stdout.is_empty());
            return (Some(commit), dirty);
        }
    }
    (None, None)
}

#[derive(Serialize)]
struct Manifest<'a> {
    tool: &'static str,
    olympus_version: &'static str,
    /// running | complete | failed | interrupted
    status: &'a str,
    command_line: Vec<String>,
    started_at: String,
    started_unix_s: u64,
    finished_at: Option<String>,
    git_commit: Option<String>,
    git_dirty: Option<bool>,
    host: &'a HostInfo,
    bin: String,
    parameters: &'a Params,
    load: serde_json::Value,
    cost_method: &'static str,
    files: serde_json::Value,
    runs: &'a [RunRecord],
}

fn write_file(path: &Path, contents: &str) -> Result<()> {
    // Write then rename, so a reader (or an interrupted bench) never sees half a file.
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, contents).with_context(|| format!("cannot write {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

fn rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).unwrap_or(p).display().to_string()
}

// ---------------------------------------------------------------------------------------
// The command.

/// Runs `olympus bench`.
pub fn run(args: BenchArgs) -> Result<ExitCode> {
    let args = resolve(args);
    let specs = plan(&args)?;
    let load = Load::of(&args);
    let bin = match &args.bin {
        Some(b) => b.clone(),
        None => std::env::current_exe().context("cannot find this executable (give --bin)")?,
    };
    if !bin.is_file() {
        bail!("--bin {}: no such file", bin.display());
    }
    let bin =
        fs::canonicalize(&bin).with_context(|| format!("cannot resolve {}", bin.display()))?;
    install_signal_handlers();

    let started = SystemTime::now();
    let started_s = unix_secs(started);
    let root = create_root(&args.out, &timestamp(started_s))?;
    let root =
        fs::canonicalize(&root).with_context(|| format!("cannot resolve {}", root.display()))?;
    let host = HostInfo::collect();
    let (git_commit, git_dirty) = git_info(&bin);
    let command_line: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();

    let per_run = args.warmup + args.duration;
    if args.sweep {
        eprintln!(
            "olympus bench --sweep: protocols {} × n {} × block sizes {} × {} run{}",
            args.protocol.join(","),
            args.n
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(","),
            args.block_size
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(","),
            args.runs,
            if args.runs == 1 { "" } else { "s" }
        );
    }
    eprintln!(
        "olympus bench: {} run{} of {} s ({} s warmup + {} s measured), {} load ({}), into {}",
        specs.len(),
        if specs.len() == 1 { "" } else { "s" },
        per_run,
        args.warmup,
        args.duration,
        match load {
            Load::Window(_) => "closed-loop",
            Load::Rate(_) => "open-loop",
        },
        load.label(),
        root.display()
    );
    if let (Some(cpus), Some(max_n)) = (host.nproc, args.n.iter().max()) {
        if max_n + 1 > cpus {
            eprintln!(
                "note: up to {} node processes and a client share {cpus} CPUs; they compete for cores",
                max_n
            );
        }
    }

    let ctx = Ctx {
        args: &args,
        bin: &bin,
        root: &root,
        load,
        total_runs: specs.len(),
    };
    let multi_block = args.block_size.len() > 1;
    let mut files = serde_json::json!({
        "summary_csv": "summary.csv",
        "runs_csv": "runs.csv",
        "throughput_svg": "throughput.svg",
        "latency_svg": "latency.svg",
        "throughput_png": "throughput.png",
        "latency_png": "latency.png",
    });
    if multi_block {
        for (k, v) in [
            (
                "throughput_vs_block_size_svg",
                "throughput_vs_block_size.svg",
            ),
            ("latency_vs_block_size_svg", "latency_vs_block_size.svg"),
            (
                "throughput_vs_block_size_png",
                "throughput_vs_block_size.png",
            ),
            ("latency_vs_block_size_png", "latency_vs_block_size.png"),
        ] {
            files[k] = serde_json::Value::from(v);
        }
    }
    let load_json = match load {
        Load::Window(k) => {
            serde_json::json!({"kind": "window", "model": "closed-loop", "window": k})
        }
        Load::Rate(r) => serde_json::json!({"kind": "rate", "model": "open-loop", "rate_tx_s": r}),
    };
    let write_manifest =
        |records: &[RunRecord], status: &str, finished: Option<SystemTime>| -> Result<()> {
            let m = Manifest {
                tool: "olympus bench",
                olympus_version: env!("CARGO_PKG_VERSION"),
                status,
                command_line: command_line.clone(),
                started_at: rfc3339(started_s),
                started_unix_s: started_s,
                finished_at: finished.map(|t| rfc3339(unix_secs(t))),
                git_commit: git_commit.clone(),
                git_dirty,
                host: &host,
                bin: bin.display().to_string(),
                parameters: &args,
                load: load_json.clone(),
                cost_method: COST_METHOD,
                files: files.clone(),
                runs: records,
            };
            let text = serde_json::to_string_pretty(&m).context("cannot encode the manifest")?;
            write_file(&root.join("manifest.json"), &(text + "\n"))
        };
    write_manifest(&[], "running", None)?;

    let mut records: Vec<RunRecord> = Vec::new();
    let mut port_cursor = args.base_port as usize;
    let mut was_interrupted = false;
    for spec in &specs {
        if interrupted() {
            was_interrupted = true;
            break;
        }
        let dir = root.join(spec.dir_name());
        let run_started = Instant::now();
        let mut rec = RunRecord {
            index: spec.index,
            protocol: spec.protocol.clone(),
            n: spec.n,
            f: spec.f,
            block_size: spec.block_size,
            name_block: spec.name_block,
            repetition: spec.repetition,
            status: "running".into(),
            error: None,
            warnings: Vec::new(),
            base_port: None,
            dir: rel(&root, &dir),
            config_dir: rel(&root, &dir.join("config")),
            node_logs: (0..spec.n)
                .map(|i| rel(&root, &dir.join(format!("node-{i}.log"))))
                .collect(),
            node_metrics: (0..spec.n)
                .map(|i| rel(&root, &dir.join(format!("node-{i}.metrics.json"))))
                .collect(),
            client_log: rel(&root, &dir.join("client.log")),
            client_json: rel(&root, &dir.join("client.json")),
            data_dir: args.keep.then(|| rel(&root, &dir.join("data"))),
            started_at: rfc3339(unix_secs(SystemTime::now())),
            wall_s: 0.0,
            result: None,
            node_counters: Vec::new(),
            node_costs: Vec::new(),
            cost: None,
        };
        let outcome = run_one(&ctx, spec, &mut port_cursor, &mut rec);
        rec.wall_s = run_started.elapsed().as_secs_f64();
        let prefix = format!("[{}/{}] {}", spec.index, specs.len(), spec.title());
        match outcome {
            Ok(()) => {
                rec.status = "ok".into();
                if let Some(r) = &rec.result {
                    let cpu = rec.cost.as_ref().and_then(|c| c.total_us);
                    eprintln!(
                        "{prefix}: {:.0} tx/s, p50 {} ms, p99 {} ms ({} committed; {} CPU µs per block)",
                        r.throughput_tx_s,
                        fmt_ms(r.latency(|l| l.p50)),
                        fmt_ms(r.latency(|l| l.p99)),
                        r.committed,
                        fmt_us(cpu)
                    );
                }
                for w in &rec.warnings {
                    eprintln!("{prefix}: warning: {w}");
                }
            }
            Err(e) if e.is::<Interrupted>() => {
                rec.status = "interrupted".into();
                rec.error = Some("interrupted".into());
                eprintln!("{prefix}: interrupted; nodes stopped");
                was_interrupted = true;
            }
            Err(e) => {
                rec.status = "failed".into();
                rec.error = Some(format!("{e:#}"));
                eprintln!("{prefix}: FAILED: {e:#}");
            }
        }
        // Plots of this run beside its logs.
        if rec.ok().is_some() {
            let (t, l) = plots(&[&rec]);
            write_file(&dir.join("throughput.svg"), &t)?;
            write_file(&dir.join("latency.svg"), &l)?;
        }
        records.push(rec);
        write_manifest(&records, "running", None)?;
        if was_interrupted {
            break;
        }
    }

    let failed = records.iter().filter(|r| r.status == "failed").count();
    write_file(
        &root.join("summary.csv"),
        &summary_csv(&args, load, &records),
    )?;
    write_file(&root.join("runs.csv"), &runs_csv(&args, load, &records))?;
    let plot_files = write_plots(&root, &records)?;
    let status = if was_interrupted {
        "interrupted"
    } else if failed > 0 {
        "failed"
    } else {
        "complete"
    };
    write_manifest(&records, status, Some(SystemTime::now()))?;

    println!();
    print!("{}", results_table(&args, load, &records));
    println!();
    println!(
        "load: {} ({}); throughput and latency over the {} s after a {} s warmup",
        load.label(),
        match load {
            Load::Window(_) => "closed loop",
            Load::Rate(_) => "open loop",
        },
        args.duration,
        args.warmup
    );
    if records.iter().any(|r| r.ok().is_some()) {
        println!();
        println!("CPU time per committed block (µs; crypto = signature checks, network = kernel time, rest = protocol and engine):");
        print!("{}", cost_table(&records));
    }
    println!();
    println!("results: {}", root.display());
    println!(
        "  summary.csv  runs.csv  manifest.json  {}",
        plot_files.join("  ")
    );

    if was_interrupted {
        eprintln!(
            "interrupted after {} of {} runs",
            records.len(),
            specs.len()
        );
        return Ok(ExitCode::from(130));
    }
    if failed > 0 {
        eprintln!(
            "{failed} of {} runs failed (see the messages above and runs.csv)",
            records.len()
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Wrap {
        #[command(flatten)]
        args: BenchArgs,
    }

    fn parse(argv: &[&str]) -> Result<Params, clap::Error> {
        let mut v = vec!["bench"];
        v.extend_from_slice(argv);
        Wrap::try_parse_from(v).map(|w| resolve(w.args))
    }

    fn defaults() -> Params {
        parse(&[]).expect("defaults parse")
    }

    fn record(index: usize, protocol: &str, n: usize, rep: usize, tput: Option<f64>) -> RunRecord {
        RunRecord {
            index,
            protocol: protocol.into(),
            n,
            f: fault_tolerance(protocol, n).unwrap_or(0),
            block_size: 400,
            name_block: false,
            repetition: rep,
            status: if tput.is_some() { "ok" } else { "failed" }.into(),
            error: tput
                .is_none()
                .then(|| "node 1 exited early (exit code 3)".into()),
            warnings: Vec::new(),
            base_port: Some(17000),
            dir: format!("{index:02}-{protocol}-n{n}-r{rep}"),
            config_dir: String::new(),
            node_logs: Vec::new(),
            node_metrics: Vec::new(),
            client_log: String::new(),
            client_json: String::new(),
            data_dir: None,
            started_at: String::new(),
            wall_s: 12.5,
            node_counters: Vec::new(),
            node_costs: Vec::new(),
            cost: tput.map(|t| CostSplit {
                total_us: Some(t / 10.0),
                crypto_us: Some(t / 40.0),
                network_us: None,
                rest_us: Some(t / 20.0),
            }),
            result: tput.map(|t| ClientReport {
                submitted: Some(1000),
                committed: 900,
                measured: Some(800),
                conflicts: Some(0),
                throughput_tx_s: t,
                latency_ms: Some(LatencyReport {
                    mean: Some(t / 1000.0),
                    p50: Some(t / 1000.0 - 1.0),
                    p90: None,
                    p99: Some(t / 100.0),
                    max: Some(99.0),
                }),
                series: vec![
                    SeriesPoint {
                        t: 1.0,
                        committed: Some(100),
                        tps: Some(t),
                        p50_ms: Some(1.0),
                        p99_ms: Some(2.0),
                    },
                    SeriesPoint {
                        t: 2.0,
                        committed: Some(200),
                        tps: Some(t * 1.1),
                        p50_ms: Some(1.5),
                        p99_ms: None,
                    },
                ],
            }),
        }
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let a = defaults();
        assert_eq!(a.protocol, vec!["hotstuff"]);
        assert_eq!(a.n, vec![4]);
        assert_eq!(
            (a.block_size.clone(), a.payload, a.duration, a.warmup),
            (vec![400], 0, 10, 2)
        );
        assert!(!a.sweep);
        assert_eq!((a.window, a.rate), (10000, None));
        assert_eq!(a.placement, "compact");
        assert_eq!((a.runs, a.base_port), (1, 17000));
        assert_eq!(a.out, PathBuf::from("runs"));
        assert_eq!(
            (a.delta_ms, a.view_timeout_ms, a.keep, a.bin.clone()),
            (50, 1000, false, None)
        );
        assert_eq!(Load::of(&a), Load::Window(10000));
        let specs = plan(&a).expect("defaults are valid");
        assert_eq!(specs.len(), 1);
        assert_eq!(
            (specs[0].protocol.as_str(), specs[0].n, specs[0].f),
            ("hotstuff", 4, 1)
        );
    }

    #[test]
    fn lists_and_runs_make_a_sweep_in_order() {
        let a = parse(&[
            "--protocol",
            "hotstuff,sync-hotstuff",
            "-n",
            "4,7",
            "--runs",
            "2",
        ])
        .expect("parses");
        let specs = plan(&a).expect("valid");
        let got: Vec<(String, usize, usize, usize)> = specs
            .iter()
            .map(|s| (s.protocol.clone(), s.n, s.f, s.repetition))
            .collect();
        assert_eq!(got.len(), 8);
        assert_eq!(got[0], ("hotstuff".into(), 4, 1, 1));
        assert_eq!(got[1], ("hotstuff".into(), 4, 1, 2));
        assert_eq!(got[2], ("hotstuff".into(), 7, 2, 1));
        assert_eq!(got[4], ("sync-hotstuff".into(), 4, 1, 1));
        assert_eq!(got[6], ("sync-hotstuff".into(), 7, 3, 1));
        assert_eq!(
            specs.iter().map(|s| s.index).collect::<Vec<_>>(),
            (1..=8).collect::<Vec<_>>()
        );
        assert_eq!(specs[7].dir_name(), "08-sync-hotstuff-n7-r2");
    }

    #[test]
    fn window_and_rate_together_is_a_clear_error() {
        let e = parse(&["--window", "5", "--rate", "100"]).expect_err("conflict");
        assert_eq!(e.kind(), clap::error::ErrorKind::ArgumentConflict);
        let msg = e.to_string();
        assert!(msg.contains("--window") && msg.contains("--rate"), "{msg}");
        // --rate alone replaces the default window.
        let a = parse(&["--rate", "80000"]).expect("rate alone");
        assert_eq!(Load::of(&a), Load::Rate(80000));
        assert_eq!(Load::of(&a).label(), "rate 80000/s");
        assert_eq!(Load::Window(10000).label(), "window 10000");
        assert_eq!(
            Load::of(&a).client_args(),
            ["--rate".to_string(), "80000".to_string()]
        );
    }

    #[test]
    fn bad_arguments_are_refused_with_a_reason() {
        let err = |argv: &[&str]| -> String {
            match parse(argv) {
                Err(e) => e.to_string(),
                Ok(a) => format!("{:#}", plan(&a).expect_err("must be refused")),
            }
        };
        assert!(err(&["-n", "0"]).contains("at least 1 node"));
        assert!(err(&["-n", "4,0"]).contains("at least 1 node"));
        assert!(err(&["--protocol", "hotstuf"]).contains("unknown protocol \"hotstuf\""));
        assert!(err(&["--duration", "0"]).contains("--duration"));
        assert!(err(&["--rate", "0"]).contains("--rate"));
        assert!(err(&["--window", "0"]).contains("--window"));
        assert!(err(&["--runs", "0"]).contains("--runs"));
        assert!(err(&["--block-size", "0"]).contains("--block-size"));
        assert!(err(&["--placement", "everywhere"]).contains("everywhere"));
        assert!(err(&["-n", "x"]).contains("invalid value"));
        assert!(err(&["--base-port", "65530", "-n", "4"]).contains("--base-port"));
        assert!(plan(&parse(&["--base-port", "65528", "-n", "4"]).expect("parses")).is_ok());
    }

    #[test]
    fn f_follows_the_protocol_family() {
        assert_eq!(fault_tolerance("hotstuff", 4), Some(1));
        assert_eq!(fault_tolerance("hotstuff", 3), Some(0));
        assert_eq!(fault_tolerance("pbft", 7), Some(2));
        assert_eq!(fault_tolerance("twochain", 10), Some(3));
        assert_eq!(fault_tolerance("streamlet", 1), Some(0));
        assert_eq!(fault_tolerance("sync-hotstuff", 3), Some(1));
        assert_eq!(fault_tolerance("optsync", 5), Some(2));
        assert_eq!(fault_tolerance("apollo", 4), Some(1));
        assert_eq!(fault_tolerance("artemis", 7), Some(3));
        assert_eq!(fault_tolerance("unreplicated", 1), Some(0));
        assert_eq!(fault_tolerance("paxos", 3), None);
    }

    #[test]
    fn stats_give_min_median_max() {
        assert_eq!(stats(&[]), None);
        assert_eq!(stats(&[f64::NAN]), None);
        assert_eq!(
            stats(&[3.0]),
            Some(Stats {
                min: 3.0,
                median: 3.0,
                max: 3.0
            })
        );
        assert_eq!(
            stats(&[5.0, 1.0, 3.0]),
            Some(Stats {
                min: 1.0,
                median: 3.0,
                max: 5.0
            })
        );
        assert_eq!(
            stats(&[4.0, 1.0, 2.0, 10.0]),
            Some(Stats {
                min: 1.0,
                median: 3.0,
                max: 10.0
            })
        );
        assert_eq!(
            stats(&[2.0, f64::NAN, 1.0]),
            Some(Stats {
                min: 1.0,
                median: 1.5,
                max: 2.0
            })
        );
    }

    #[test]
    fn timestamps_are_utc() {
        assert_eq!(timestamp(0), "19700101-000000");
        assert_eq!(timestamp(951_782_400), "20000229-000000");
        assert_eq!(timestamp(951_868_799), "20000229-235959");
        assert_eq!(timestamp(1_700_000_000), "20231114-221320");
        assert_eq!(timestamp(4_107_542_400), "21000301-000000");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(1_709_164_800), "2024-02-29T00:00:00Z");
    }

    #[test]
    fn progress_lines_parse() {
        assert_eq!(
            parse_progress("progress t=3 committed=1200 tps=400.5\n"),
            Some(Progress {
                t: 3.0,
                committed: 1200,
                tps: 400.5
            })
        );
        assert_eq!(
            parse_progress("  progress t=1.5s committed=0 tps=0 extra=yes"),
            Some(Progress {
                t: 1.5,
                committed: 0,
                tps: 0.0
            })
        );
        assert_eq!(parse_progress("progress committed=5"), None);
        assert_eq!(parse_progress("progress t=x"), None);
        assert_eq!(parse_progress("connected to 4 nodes"), None);
    }

    #[test]
    fn client_report_parses_with_and_without_optional_fields() {
        let full = r#"{"load":"window","window":10000,"rate":null,"payload":0,"warmup_s":2.0,"duration_s":10.0,
            "submitted":123456,"committed":120000,"throughput_tx_s":12000.0,
            "latency_ms":{"mean":20.1,"p50":18.0,"p90":30.2,"p99":45.0,"max":80.0},
            "series":[{"t":1.0,"committed":11800,"tps":11800.0,"p50_ms":17.0,"p99_ms":40.0}],
            "new_field":[1,2,3]}"#;
        let r: ClientReport = serde_json::from_str(full).expect("full report");
        assert_eq!(
            (r.submitted, r.committed, r.throughput_tx_s),
            (Some(123456), 120000, 12000.0)
        );
        assert_eq!(r.latency(|l| l.p99), Some(45.0));
        assert_eq!(r.series.len(), 1);
        let minimal = r#"{"committed":0,"throughput_tx_s":0.0,"latency_ms":{"p50":null}}"#;
        let r: ClientReport = serde_json::from_str(minimal).expect("minimal report");
        assert_eq!(r.latency(|l| l.p50), None);
        assert!(r.series.is_empty());
        assert!(serde_json::from_str::<ClientReport>(r#"{"throughput_tx_s":1.0}"#).is_err());
    }

    #[test]
    fn table_has_one_row_per_cell_with_ranges_for_several_runs() {
        let a = defaults();
        let one = results_table(
            &a,
            Load::Window(10000),
            &[record(1, "hotstuff", 4, 1, Some(12000.0))],
        );
        let lines: Vec<&str> = one.lines().collect();
        assert_eq!(lines.len(), 3, "{one}");
        for h in [
            "protocol", "n", "f", "block", "payload", "load", "tx/s", "p50 ms", "p99 ms",
        ] {
            assert!(lines[0].contains(h), "{one}");
        }
        assert!(!lines[0].contains("runs"), "{one}");
        assert!(lines[1].starts_with("--------"), "{one}");
        assert!(
            lines[2].contains("hotstuff") && lines[2].contains("window 10000"),
            "{one}"
        );
        assert!(
            lines[2].contains("12000") && lines[2].contains("11.0") && lines[2].contains("120.0"),
            "{one}"
        );

        let mut a3 = defaults();
        a3.runs = 3;
        let recs = vec![
            record(1, "hotstuff", 4, 1, Some(10000.0)),
            record(2, "hotstuff", 4, 2, Some(14000.0)),
            record(3, "hotstuff", 4, 3, Some(12000.0)),
            record(4, "hotstuff", 7, 1, None),
            record(5, "hotstuff", 7, 2, None),
            record(6, "hotstuff", 7, 3, None),
        ];
        let t = results_table(&a3, Load::Rate(80000), &recs);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4, "{t}");
        assert!(lines[0].ends_with("runs ok"), "{t}");
        assert!(
            lines[2].contains("12000 (10000–14000)") && lines[2].contains("rate 80000/s"),
            "{t}"
        );
        assert!(lines[2].ends_with("3/3"), "{t}");
        assert!(
            lines[3].contains("failed") && lines[3].ends_with("0/3"),
            "{t}"
        );
        // Columns line up although "–" is several bytes.
        let col = |l: &str| l.chars().count();
        assert_eq!(col(lines[0]), col(lines[2]), "{t}");
    }

    #[test]
    fn render_table_pads_and_aligns() {
        let t = render_table(
            &["a", "num"],
            &[false, true],
            &[
                vec!["long-name".into(), "1".into()],
                vec!["x".into(), "12345".into()],
            ],
        );
        assert_eq!(
            t,
            "a            num\n---------  -----\nlong-name      1\nx          12345\n"
        );
    }

    #[test]
    fn csv_rows_have_one_field_per_header() {
        let mut a = defaults();
        a.runs = 2;
        let recs = vec![
            record(1, "hotstuff", 4, 1, Some(10000.0)),
            record(2, "hotstuff", 4, 2, Some(20000.0)),
            record(3, "pbft", 4, 1, None),
        ];
        let s = summary_csv(&a, Load::Window(10000), &recs);
        let rows: Vec<&str> = s.lines().collect();
        assert_eq!(rows.len(), 3, "{s}");
        assert_eq!(rows[0], SUMMARY_HEADER.join(","));
        assert_eq!(
            rows[1],
            "hotstuff,4,1,400,0,window,10000,,2,2,10000,15000,20000,9,14,19,100,150,200,10,15,20,\
             1500.0,375.0,,750.0"
        );
        assert_eq!(rows[2], "pbft,4,1,400,0,window,10000,,1,0,,,,,,,,,,,,,,,,");
        for r in &rows {
            assert_eq!(r.split(',').count(), SUMMARY_HEADER.len(), "{r}");
        }

        let s = runs_csv(&a, Load::Rate(500), &recs);
        let rows: Vec<&str> = s.lines().collect();
        assert_eq!(rows.len(), 4, "{s}");
        assert_eq!(rows[0], RUNS_HEADER.join(","));
        assert_eq!(
            rows[1],
            "1,hotstuff,4,1,1,400,0,rate,,500,17000,ok,1000,900,800,10000,9,,100,10,99,\
             1000.0,250.0,,500.0,12.500,01-hotstuff-n4-r1,"
        );
        assert!(rows[3].starts_with(
            "3,pbft,4,1,1,400,0,rate,,500,17000,failed,,,,,,,,,,,,,,12.500,03-pbft-n4-r1,"
        ));
        assert!(rows[3].ends_with("node 1 exited early (exit code 3)"));
        for r in &rows {
            assert_eq!(r.split(',').count(), RUNS_HEADER.len(), "{r}");
        }
    }

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
    }

    #[test]
    fn svg_chart_draws_every_point() {
        let lines = vec![
            Line {
                label: "a<b & c".into(),
                color: "#123456",
                dashed: false,
                points: vec![(1.0, 10.0), (2.0, 30.0), (3.0, 20.0)],
            },
            Line {
                label: "p99".into(),
                color: "#654321",
                dashed: true,
                points: vec![(1.0, 5.0), (f64::NAN, 1.0)],
            },
        ];
        let s = svg_chart("T & t", "time (s)", "tx/s", &lines);
        assert!(
            s.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""),
            "{s}"
        );
        assert!(s.trim_end().ends_with("</svg>"));
        assert_eq!(s.matches("<polyline").count(), 2);
        let first = s
            .split("<polyline")
            .nth(1)
            .and_then(|p| p.split("points=\"").nth(1))
            .expect("points");
        let pts: Vec<&str> = first
            .split('"')
            .next()
            .expect("points end")
            .split(' ')
            .collect();
        assert_eq!(pts.len(), 3, "{first}");
        let coords: Vec<(f64, f64)> = pts
            .iter()
            .map(|p| {
                let (x, y) = p.split_once(',').expect("x,y");
                (x.parse().expect("x"), y.parse().expect("y"))
            })
            .collect();
        // x increases left to right; the highest value is drawn highest (smallest y).
        assert!(coords[0].0 < coords[1].0 && coords[1].0 < coords[2].0);
        assert!(coords[1].1 < coords[2].1 && coords[2].1 < coords[0].1);
        assert!(s.contains("a&lt;b &amp; c") && s.contains("T &amp; t"));
        assert!(s.contains("stroke-dasharray"));
        assert!(!s.contains("NaN") && !s.contains("inf"));
        // Balanced elements.
        assert_eq!(s.matches("<text").count(), s.matches("</text>").count());
        // No data still makes a valid chart.
        let e = svg_chart("empty", "x", "y", &[]);
        assert!(e.contains("no data") && e.trim_end().ends_with("</svg>") && !e.contains("NaN"));
    }

    #[test]
    fn plots_take_the_series_of_successful_runs() {
        let mut ok = record(1, "hotstuff", 4, 1, Some(1000.0));
        let bad = record(2, "hotstuff", 4, 2, None);
        // A second without commits: its throughput is drawn, its latency (0) is not.
        if let Some(r) = ok.result.as_mut() {
            r.series.push(SeriesPoint {
                t: 3.0,
                committed: Some(0),
                tps: Some(0.0),
                p50_ms: Some(0.0),
                p99_ms: Some(0.0),
            });
        }
        let (t, l) = plots(&[&ok, &bad]);
        assert!(
            t.contains(" 680.0,425.0\""),
            "(3 s, 0 tx/s) ends the line: {t}"
        );
        assert_eq!(t.matches("<polyline").count(), 1);
        // p50 has two points, p99 one.
        assert_eq!(l.matches("<polyline").count(), 2);
        assert!(t.contains("hotstuff n=4 r1") && !t.contains("r2"));
    }

    #[test]
    fn axes_are_nice() {
        assert_eq!(nice_step(10.0, 5), 2.0);
        assert_eq!(nice_step(12000.0, 5), 5000.0);
        assert!((nice_step(0.3, 5) - 0.1).abs() < 1e-12);
        assert_eq!(axis(1.0, 10.0), (0.0, 10.0, 2.0));
        assert_eq!(axis(0.0, 0.0), (0.0, 1.0, 0.2));
        assert_eq!(tick_label(0.30000000000000004, 0.1), "0.3");
        assert_eq!(tick_label(12000.0, 5000.0), "12000");
    }

    #[test]
    fn log_tail_shows_the_last_lines() {
        let dir = std::env::temp_dir().join(format!("olympus-bench-tail-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("temp dir");
        let p = dir.join("x.log");
        let text: String = (1..=100).map(|i| format!("line {i}\n")).collect();
        fs::write(&p, text).expect("write");
        let t = tail_lines(&p, 3);
        assert_eq!(t, "  | line 98\n  | line 99\n  | line 100");
        fs::write(&p, "").expect("write");
        assert_eq!(tail_lines(&p, 3), "  | (empty)");
        assert!(tail_lines(&dir.join("missing.log"), 3).contains("cannot read"));
        fs::write(
            &p,
            "starting\n{\"commits\":5}\nstopping on SIGTERM\n{broken\n",
        )
        .expect("write");
        assert_eq!(last_json_line(&p), Some(serde_json::json!({"commits": 5})));
        assert_eq!(last_json_line(&dir.join("missing.log")), None);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn free_ports_skip_ports_in_use() {
        let held = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        let port = held.local_addr().expect("addr").port() as usize;
        if port < 2 {
            return;
        }
        // A block of 4 ports that would include the held one starts after it.
        let base = free_port_block(port - 1, 2).expect("free block");
        assert!(base as usize > port, "{base} {port}");
    }

    #[test]
    fn root_directory_names_do_not_collide() {
        let out = std::env::temp_dir().join(format!("olympus-bench-root-{}", std::process::id()));
        let a = create_root(&out, "20250101-000000").expect("first");
        let b = create_root(&out, "20250101-000000").expect("second");
        assert_ne!(a, b);
        assert!(b.ends_with("20250101-000000-2"));
        let _ = fs::remove_dir_all(&out);
    }

    #[test]
    fn sweep_has_a_small_default_matrix_that_flags_override() {
        let a = parse(&["--sweep"]).expect("parses");
        assert_eq!(a.protocol, vec!["hotstuff", "twochain"]);
        assert_eq!(
            (a.n.clone(), a.block_size.clone()),
            (vec![4], vec![100, 400, 1000])
        );
        assert_eq!((a.runs, a.duration, a.warmup), (3, 5, 1));
        let specs = plan(&a).expect("valid");
        assert_eq!(specs.len(), 2 * 3 * 3);
        assert_eq!(specs[0].dir_name(), "01-hotstuff-n4-b100-r1");
        assert_eq!(specs[3].dir_name(), "04-hotstuff-n4-b400-r1");
        assert_eq!(specs[17].dir_name(), "18-twochain-n4-b1000-r3");
        assert_eq!(specs[17].title(), "twochain n=4 b=1000 r3");

        let a = parse(&[
            "--sweep",
            "--protocol",
            "twochain",
            "--block-size",
            "100,400",
            "--runs",
            "1",
            "--duration",
            "2",
        ])
        .expect("parses");
        assert_eq!(
            (a.protocol.clone(), a.block_size.clone()),
            (vec!["twochain".to_string()], vec![100, 400])
        );
        assert_eq!((a.runs, a.duration, a.warmup), (1, 2, 1));
        assert_eq!(plan(&a).expect("valid").len(), 2);
        // A protocol the bench knows but no node runs yet is refused up front.
        let a = parse(&["--protocol", "pbft"]).expect("parses");
        let e = plan(&a).expect_err("pbft has no node yet").to_string();
        assert!(e.contains("does not run on a node yet"), "{e}");

        // A block-size list works without --sweep too; one size keeps the old names.
        let a = parse(&["--block-size", "50,60"]).expect("parses");
        assert_eq!(
            plan(&a).expect("valid")[1].dir_name(),
            "02-hotstuff-n4-b60-r1"
        );
        let a = parse(&["--block-size", "50"]).expect("parses");
        assert_eq!(plan(&a).expect("valid")[0].dir_name(), "01-hotstuff-n4-r1");
        assert!(plan(&parse(&["--block-size", "10,0"]).expect("parses")).is_err());
    }

    #[test]
    fn proc_stat_gives_user_and_system_time() {
        let line = "1234 (olympus (node) x) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 75 0 0 20 0 9 0 100 0 0";
        assert_eq!(
            parse_stat(line, 100),
            Some(CpuTime {
                user_s: 2.5,
                system_s: 0.75
            })
        );
        assert_eq!(parse_stat("1234 (x) S 1 2", 100), None);
        assert_eq!(parse_stat(line, 0), None);
        // This process can read its own.
        let me = cpu_time(std::process::id()).expect("/proc/self/stat");
        assert!(me.user_s >= 0.0 && me.system_s >= 0.0);
    }

    #[test]
    fn node_cost_splits_cpu_per_block() {
        let counters = serde_json::json!({"committed_blocks": 100});
        let metrics = serde_json::json!({"histograms": {
            "olympus_verify_us": {"count": 10, "sum": 200000},
            "olympus_persist_us": {"count": 10, "sum": 999}
        }});
        let cpu = Some(CpuTime {
            user_s: 1.0,
            system_s: 0.5,
        });
        let c = NodeCost::of(2, cpu, Some(&counters), Some(&metrics));
        assert_eq!(
            (c.node, c.committed_blocks, c.crypto_hist_us),
            (2, Some(100), Some(200000.0))
        );
        let pb = c.per_block.clone().expect("split");
        assert_eq!(pb.total_us, Some(15000.0));
        assert_eq!(pb.crypto_us, Some(2000.0));
        assert_eq!(pb.network_us, Some(5000.0));
        assert_eq!(pb.rest_us, Some(8000.0));
        assert_eq!(fmt_part(&pb, pb.crypto_us), "2000 (13%)");

        // No metrics file: crypto and rest are n/a, the rest is known.
        let c = NodeCost::of(0, cpu, Some(&counters), None);
        let pb = c.per_block.clone().expect("split");
        assert_eq!((pb.crypto_us, pb.rest_us), (None, None));
        assert_eq!(fmt_part(&pb, pb.crypto_us), "n/a");
        // Blocks from the metrics counter when the node printed none; crypto capped at
        // user time.
        let m2 = serde_json::json!({"counters": {"olympus_commits_total": 10},
            "histograms": {"olympus_verify_us{kind=\"vote\"}": {"sum": 5000000}}});
        let c = NodeCost::of(1, cpu, None, Some(&m2));
        let pb = c.per_block.clone().expect("split");
        assert_eq!((pb.crypto_us, pb.rest_us), (Some(100000.0), Some(0.0)));
        assert!(c.crypto_capped);
        let mut r = record(1, "hotstuff", 4, 1, Some(1000.0));
        r.node_costs = vec![c];
        assert!(cost_table(&[r]).contains("capped"));
        // No /proc, or nothing committed: no split.
        assert_eq!(
            NodeCost::of(0, None, Some(&counters), Some(&metrics)).per_block,
            None
        );
        let zero = serde_json::json!({"committed_blocks": 0});
        assert_eq!(NodeCost::of(0, cpu, Some(&zero), None).per_block, None);

        let mean = CostSplit::mean(
            [
                CostSplit {
                    total_us: Some(10.0),
                    crypto_us: None,
                    network_us: Some(2.0),
                    rest_us: None,
                },
                CostSplit {
                    total_us: Some(20.0),
                    crypto_us: Some(4.0),
                    network_us: Some(4.0),
                    rest_us: Some(12.0),
                },
            ]
            .iter(),
        )
        .expect("mean");
        assert_eq!(mean.total_us, Some(15.0));
        assert_eq!(mean.crypto_us, Some(4.0));
        assert_eq!(mean.rest_us, Some(12.0));
        assert_eq!(CostSplit::mean(std::iter::empty()), None);
    }

    #[test]
    fn cost_table_shows_nodes_or_run_means() {
        let mut r = record(1, "hotstuff", 4, 1, Some(1000.0));
        let counters = serde_json::json!({"committed_blocks": 50});
        let cpu = Some(CpuTime {
            user_s: 0.1,
            system_s: 0.05,
        });
        r.node_costs = vec![
            NodeCost::of(0, cpu, Some(&counters), None),
            NodeCost::of(1, None, None, None),
        ];
        let t = cost_table(std::slice::from_ref(&r));
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4, "{t}");
        assert!(
            lines[0].contains("crypto µs") && lines[0].contains("network µs"),
            "{t}"
        );
        assert!(
            lines[2].contains("3000")
                && lines[2].contains("1000 (33%)")
                && lines[2].contains("n/a"),
            "{t}"
        );
        assert!(lines[3].matches("n/a").count() == 5, "{t}");
        // Many runs: one row per run with the means.
        let many: Vec<RunRecord> = (1..=5)
            .map(|i| {
                let mut x = r.clone();
                x.node_costs = vec![x.node_costs[0].clone(); 4];
                x.index = i;
                x
            })
            .collect();
        let t = cost_table(&many);
        assert_eq!(t.lines().count(), 2 + 5, "{t}");
        assert!(t.contains("mean") && t.contains("25 (25%)"), "{t}");
    }

    #[test]
    fn png_charts_are_pngs_of_the_chart_size() {
        let lines = vec![Line {
            label: "hotstuff n=4".into(),
            color: "#1f77b4",
            dashed: false,
            points: vec![(100.0, 5000.0), (400.0, 12000.0), (1000.0, 15000.0)],
        }];
        let p = png_chart("Throughput vs block size", "block size", "tx/s", &lines);
        assert_eq!(&p[..8], &png::SIGNATURE);
        assert_eq!(&p[12..16], b"IHDR");
        assert_eq!(u32::from_be_bytes([p[16], p[17], p[18], p[19]]), 900);
        assert_eq!(u32::from_be_bytes([p[20], p[21], p[22], p[23]]), 480);
        let e = png_chart("empty", "x", "y", &[]);
        assert_eq!(&e[..8], &png::SIGNATURE);
        assert_eq!(hex_rgb("#1f77b4"), [0x1f, 0x77, 0xb4]);
        assert_eq!(hex_rgb("bad"), [128, 128, 128]);
        // Sweep records make one line per (protocol, n), points sorted by block size.
        let recs: Vec<RunRecord> = [(1000, 3000.0), (100, 1000.0), (400, 2000.0)]
            .iter()
            .enumerate()
            .map(|(i, &(b, t))| {
                let mut r = record(i + 1, "hotstuff", 4, 1, Some(t));
                r.block_size = b;
                r
            })
            .collect();
        let (t, l) = block_size_lines(&recs);
        assert_eq!(t.len(), 1);
        assert_eq!(
            t[0].points,
            vec![(100.0, 1000.0), (400.0, 2000.0), (1000.0, 3000.0)]
        );
        assert_eq!(l.len(), 2);
        let dir = std::env::temp_dir().join(format!("olympus-bench-png-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("dir");
        let files = write_plots(&dir, &recs).expect("plots");
        assert_eq!(files.len(), 8, "{files:?}");
        for f in &files {
            assert!(dir.join(f).is_file(), "{f}");
        }
        let _ = fs::remove_dir_all(&dir);
    }
}
