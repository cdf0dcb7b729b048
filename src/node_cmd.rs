//! `olympus node`: runs one replica from its configuration file until SIGTERM or SIGINT,
//! then prints its counters as one JSON line on stdout and exits 0. Its metrics go to
//! stderr (readable) and to `--metrics-out` (JSON, default `<data dir>/metrics.json`), and
//! live to `--metrics-addr` (Prometheus text format) when given.

use anyhow::{bail, Context, Result};
use olympus_engine::node::{self, NodeSettings};
use olympus_engine::placement::Placement;
use olympus_protocols::{
    apollo::Apollo, artemis::Artemis, hotstuff::HotStuff, opt_sync::OptSync,
    sync_hotstuff::SyncHotStuff, twochain::TwoChain,
};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// The protocols a node runs today.
pub const NODE_PROTOCOLS: &[&str] = &[
    "hotstuff",
    "twochain",
    "sync-hotstuff",
    "opt-sync",
    "apollo",
    "artemis",
];

/// Whether a node runs `protocol` (a name of [`NODE_PROTOCOLS`], or `optsync`, the
/// reference harness's spelling of `opt-sync`).
pub fn runs_on_node(protocol: &str) -> bool {
    NODE_PROTOCOLS.contains(&protocol) || protocol == "optsync"
}

/// Arguments of `olympus node`.
#[derive(clap::Args, Debug, Clone)]
#[command(after_help = "\
The node checks the kernel (5.8+), io_uring and the locked-memory limit at start and \
says what to change when one falls short. It listens for peers and clients on the \
addresses of its committee entry, keeps its safety state under its data directory \
(restored on restart, so it never votes twice), and stops cleanly on SIGTERM or SIGINT, \
printing its counters as JSON on stdout and its metrics (counters, gauges, histograms) \
readably on stderr and as JSON to --metrics-out.

Exit status: 0 after a clean shutdown, 2 on a configuration or start-up error.")]
pub struct NodeArgs {
    /// The node's configuration file (written by `olympus genconfig`).
    #[arg(long)]
    pub config: PathBuf,
    /// Which shard runs which role: compact (every role on one shard: the right plan
    /// when several nodes share few cores), or verify (signature checks on a second
    /// shard). Plans that put network, mempool, leader and voter apart (spread) are
    /// printed and refused for now.
    #[arg(long, default_value = "compact")]
    pub placement: String,
    /// Pin the node's shard to this CPU (default: let the kernel schedule it).
    #[arg(long)]
    pub cpu: Option<usize>,
    /// Longest a transaction waits for its batch to fill, in milliseconds.
    #[arg(long, default_value_t = 5)]
    pub batch_delay_ms: u64,
    /// Fault injection, for testing the other replicas: mis-sign (sign protocol messages
    /// with a key that is not this node's, while peer links authenticate normally).
    #[arg(long, value_parser = ["mis-sign"])]
    pub fault: Option<String>,
    /// Where to write the metrics (JSON) at exit [default: <data dir>/metrics.json].
    #[arg(long, value_name = "FILE")]
    pub metrics_out: Option<PathBuf>,
    /// Serve the metrics live in the Prometheus text format, e.g. 127.0.0.1:9100
    /// (GET /metrics).
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<SocketAddr>,
}

pub fn run(args: NodeArgs) -> Result<ExitCode> {
    let config = olympus_types::config::load_node(&args.config)?;
    let placement = Placement::parse(&args.placement)?;
    let protocol = config.params.protocol.clone();
    let settings = NodeSettings {
        config,
        placement,
        batch_delay: Duration::from_millis(args.batch_delay_ms),
        cpu: args.cpu,
        fault: match args.fault.as_deref() {
            Some("mis-sign") => Some(node::Fault::MisSign),
            _ => None,
        },
        metrics_out: args.metrics_out.clone(),
        metrics_addr: args.metrics_addr,
    };
    let report = match protocol.as_str() {
        "hotstuff" => node::run::<HotStuff>(settings),
        "twochain" => node::run::<TwoChain>(settings),
        "sync-hotstuff" => node::run::<SyncHotStuff>(settings),
        "opt-sync" | "optsync" => node::run::<OptSync>(settings),
        "apollo" => node::run::<Apollo>(settings),
        "artemis" => node::run::<Artemis>(settings),
        other => bail!(
            "{}: protocol {other:?} cannot run on a node yet; known: {}",
            args.config.display(),
            NODE_PROTOCOLS.join(", ")
        ),
    }
    .with_context(|| format!("node from {}", args.config.display()))?;
    println!("{}", report.to_json());
    Ok(ExitCode::SUCCESS)
}
