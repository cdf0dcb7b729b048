//! `olympus genconfig`: keys and a committee for n nodes on given hosts and ports, one
//! TOML file per node and one for clients.

use anyhow::{bail, Context, Result};
use olympus_crypto::{Keypair, Scheme};
use olympus_types::config::{
    to_toml, ClientConfig, CommitteeConfig, MemberConfig, NodeConfig, ProtocolParams,
};
use olympus_types::NodeId;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

/// Arguments of `olympus genconfig`.
#[derive(clap::Args, Debug, Clone)]
pub struct GenconfigArgs {
    /// Number of nodes.
    #[arg(short, long, default_value_t = 4)]
    pub n: usize,
    /// Directory to write node-<i>.toml and clients.toml into (created if missing).
    #[arg(long, default_value = "config")]
    pub out: PathBuf,
    /// Host address of every node (one address for all, e.g. 127.0.0.1), or a
    /// comma-separated list with one address per node.
    #[arg(long, default_value = "127.0.0.1")]
    pub hosts: String,
    /// First peer port; node i listens for peers on base_port + 2i and for clients on
    /// base_port + 2i + 1.
    #[arg(long, default_value_t = 7000)]
    pub base_port: u16,
    /// Seed for deterministic keys (hex or any string; it is hashed). Without it keys
    /// come from the operating system's randomness.
    #[arg(long)]
    pub seed: Option<String>,
    /// Protocol the committee runs.
    #[arg(long, default_value = "hotstuff")]
    pub protocol: String,
    /// Transactions per block.
    #[arg(long, default_value_t = 400)]
    pub block_size: usize,
    /// Base view timeout in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub view_timeout_ms: u64,
    /// Δ in milliseconds (synchronous protocols).
    #[arg(long, default_value_t = 50)]
    pub delta_ms: u64,
    /// How batches reach the replicas: inline (in proposals) or digests (broadcast
    /// first by the replica that made them; proposals carry digests; missing batches
    /// are fetched).
    #[arg(long, default_value = "inline", value_parser = ["inline", "digests"])]
    pub dissemination: String,
    /// Data directory root; node i keeps its state in <data-dir>/node-<i>.
    #[arg(long, default_value = "data")]
    pub data_dir: PathBuf,
}

fn seed_bytes(seed: &Option<String>) -> Result<[u8; 32]> {
    Ok(match seed {
        Some(s) => *blake3::hash(s.as_bytes()).as_bytes(),
        None => {
            let mut b = [0u8; 32];
            getrandom::fill(&mut b).map_err(|e| anyhow::anyhow!("no OS randomness: {e}"))?;
            b
        }
    })
}

/// Builds every file's contents without writing anything.
pub fn generate(args: &GenconfigArgs) -> Result<(Vec<NodeConfig>, ClientConfig)> {
    if args.n == 0 || args.n > olympus_types::limits::MAX_NODES {
        bail!(
            "-n must be between 1 and {}",
            olympus_types::limits::MAX_NODES
        );
    }
    let hosts: Vec<IpAddr> = args
        .hosts
        .split(',')
        .map(|h| {
            h.trim()
                .parse()
                .with_context(|| format!("--hosts: {h:?} is not an IP address"))
        })
        .collect::<Result<_>>()?;
    if !crate::node_cmd::runs_on_node(&args.protocol) {
        bail!(
            "--protocol {:?}: not a protocol a node runs (known: {})",
            args.protocol,
            crate::node_cmd::NODE_PROTOCOLS.join(", ")
        );
    }
    if hosts.len() != 1 && hosts.len() != args.n {
        bail!(
            "--hosts lists {} addresses; give one for all nodes or exactly {}",
            hosts.len(),
            args.n
        );
    }
    let last = args.base_port as usize + 2 * args.n;
    if last > u16::MAX as usize {
        bail!(
            "--base-port {} leaves no room for {} nodes (two ports each)",
            args.base_port,
            args.n
        );
    }
    let seed = seed_bytes(&args.seed)?;
    let keys: Vec<Keypair> = (0..args.n)
        .map(|i| Keypair::generate(Scheme::Bls, &seed, NodeId(i as u16)))
        .collect();
    let members: Vec<MemberConfig> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let host = hosts[if hosts.len() == 1 { 0 } else { i }];
            let port = args.base_port + 2 * i as u16;
            MemberConfig {
                id: i as u16,
                peer_addr: SocketAddr::new(host, port),
                client_addr: SocketAddr::new(host, port + 1),
                public_key: hex::encode(k.public().0),
                proof_of_possession: hex::encode(k.proof_of_possession().0),
            }
        })
        .collect();
    let committee = CommitteeConfig { members };
    let params = ProtocolParams {
        protocol: args.protocol.clone(),
        view_timeout_ms: args.view_timeout_ms,
        delta_ms: args.delta_ms,
        block_size: args.block_size,
        dissemination: args.dissemination.clone(),
    };
    let nodes = keys
        .iter()
        .enumerate()
        .map(|(i, k)| NodeConfig {
            id: i as u16,
            secret_key: hex::encode(k.secret_bytes()),
            data_dir: args.data_dir.join(format!("node-{i}")),
            params: params.clone(),
            committee: committee.clone(),
        })
        .collect();
    Ok((nodes, ClientConfig { params, committee }))
}

/// Writes the files; returns their paths.
pub fn write(args: &GenconfigArgs, out: &Path) -> Result<Vec<PathBuf>> {
    let (nodes, client) = generate(args)?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut paths = Vec::new();
    for node in &nodes {
        let p = out.join(format!("node-{}.toml", node.id));
        write_private(&p, &to_toml(node)?)?;
        paths.push(p);
    }
    let p = out.join("clients.toml");
    std::fs::write(&p, to_toml(&client)?)
        .with_context(|| format!("cannot write {}", p.display()))?;
    paths.push(p);
    Ok(paths)
}

/// Node files hold secret keys: readable by the owner only.
fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

pub fn run(args: GenconfigArgs) -> Result<()> {
    let paths = write(&args, &args.out)?;
    for p in &paths {
        println!("wrote {}", p.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: GenconfigArgs,
    }

    fn args(extra: &[&str]) -> GenconfigArgs {
        let mut v = vec!["t"];
        v.extend_from_slice(extra);
        T::parse_from(v).a
    }

    #[test]
    fn generated_committee_validates_with_proofs_and_matching_keys() {
        let (nodes, client) = generate(&args(&["-n", "4", "--seed", "x"])).unwrap();
        client.committee.validate().unwrap();
        let pks: Vec<_> = client
            .committee
            .members
            .iter()
            .map(|m| olympus_types::PublicKeyBytes(m.public_key_bytes().unwrap()))
            .collect();
        let pops: Vec<_> = client
            .committee
            .members
            .iter()
            .map(|m| olympus_types::Signature(m.pop_bytes().unwrap()))
            .collect();
        olympus_crypto::Committee::with_proofs(Scheme::Bls, &pks, &pops).unwrap();
        for n in &nodes {
            n.validate().unwrap();
            let k =
                Keypair::from_secret_bytes(Scheme::Bls, NodeId(n.id), &n.secret_bytes().unwrap())
                    .unwrap();
            assert_eq!(k.public(), pks[n.id as usize]);
        }
        let (again, _) = generate(&args(&["-n", "4", "--seed", "x"])).unwrap();
        assert_eq!(again, nodes, "a seed makes keys deterministic");
    }

    #[test]
    fn bad_arguments_are_clear_errors() {
        let e = generate(&args(&["-n", "3", "--hosts", "10.0.0.1,10.0.0.2"])).unwrap_err();
        assert!(e.to_string().contains("exactly 3"));
        let e = generate(&args(&["--hosts", "nope"])).unwrap_err();
        assert!(e.to_string().contains("not an IP address"));
        let e = generate(&args(&["-n", "4", "--base-port", "65530"])).unwrap_err();
        assert!(e.to_string().contains("no room"));
    }
}
