//! `olympus`: the command-line tool of the olympus BFT framework.
//!
//! Each subcommand lives in its own module: `bench` (the loopback cluster benchmark, the
//! main job), `node` (one replica), `client` (load generator), `genconfig` (keys and
//! configuration files) and `sim` (the deterministic simulator).

mod bench;
mod client_cmd;
mod genconfig;
mod node_cmd;
mod png;
mod sim_cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// olympus: Byzantine fault tolerant state machine replication — one engine, many
/// protocols, one harness to run, simulate, benchmark and profile them.
#[derive(Parser, Debug)]
#[command(name = "olympus", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Benchmark a protocol on a loopback cluster of node processes driven by a client;
    /// prints a table and writes summary.csv, manifest.json and plots under runs/.
    Bench(bench::BenchArgs),
    /// Run one replica from its configuration file (made by `olympus genconfig`).
    Node(node_cmd::NodeArgs),
    /// Submit transactions to a committee and measure commit throughput and latency.
    Client(client_cmd::ClientArgs),
    /// Generate keys and configuration files for a committee of n nodes.
    Genconfig(genconfig::GenconfigArgs),
    /// Simulate a protocol over many seeds with network faults, crashes and Byzantine
    /// replicas, and check its invariants (deterministic: a seed always gives the same run).
    Sim(sim_cmd::SimArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        // Help and version exit 0; usage errors exit 2.
        Err(e) => e.exit(),
    };
    let result = match cli.command {
        Command::Bench(args) => bench::run(args),
        Command::Node(args) => node_cmd::run(args),
        Command::Client(args) => client_cmd::run(args),
        Command::Genconfig(args) => genconfig::run(args).map(|()| ExitCode::SUCCESS),
        Command::Sim(args) => sim_cmd::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
