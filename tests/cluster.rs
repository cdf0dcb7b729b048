//! Real processes on loopback: `olympus genconfig`, four `olympus node` processes and
//! `olympus client`, as a user runs them.
//!
//! - a cluster commits, and every client transaction is acknowledged exactly once by
//!   f + 1 authenticated replicas in one block (the client exits 0 only if all of
//!   `--txs` committed and no transaction was reported in two blocks);
//! - garbage on the client port, a peer that cannot prove a committee key, and an
//!   oversized frame are refused and counted while the cluster keeps committing;
//! - a node stopped with SIGTERM reports its counters and exits 0;
//! - a node killed with SIGKILL under load restarts from its data directory (safety
//!   state and chain log), catches up, and no transaction is lost or executed twice on
//!   any node.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_olympus");

/// A base port with 2n free ports above it.
fn free_base(n: u16) -> u16 {
    // Tests of one process run in parallel: each takes its own range.
    static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let pid = std::process::id() as u16;
    loop {
        let attempt = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        assert!(attempt < 200, "no free ports");
        let base = 20_000 + (pid.wrapping_mul(7).wrapping_add(attempt * 61)) % 30_000;
        let all_free = (0..2 * n).all(|i| TcpListener::bind(("127.0.0.1", base + i)).is_ok());
        if all_free {
            return base;
        }
    }
}

struct Cluster {
    dir: tempfile::TempDir,
    nodes: Vec<Option<Child>>,
    base: u16,
}

impl Cluster {
    fn start(n: usize) -> Cluster {
        Self::start_with(n, &[], &[])
    }

    /// Starts `n` nodes; `faulty` lists nodes to start with `--fault mis-sign`.
    fn start_with(n: usize, faulty: &[usize], genconfig: &[&str]) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let base = free_base(n as u16);
        let out = Command::new(BIN)
            .args(["genconfig", "-n", &n.to_string(), "--seed", "cluster-test"])
            .args(["--base-port", &base.to_string(), "--block-size", "100"])
            .arg("--out")
            .arg(dir.path().join("cfg"))
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(genconfig)
            .output()
            .unwrap();
        assert!(out.status.success(), "genconfig: {out:?}");
        let mut c = Cluster {
            dir,
            nodes: Vec::new(),
            base,
        };
        for i in 0..n {
            // Faulty nodes mis-sign; honest node 0 checks signatures on a shard of its
            // own (the verify placement), the others on their only shard.
            let child = if faulty.contains(&i) {
                c.spawn_node_with(i, &["--fault", "mis-sign"])
            } else if i == 0 && !faulty.is_empty() {
                c.spawn_node_with(i, &["--placement", "verify"])
            } else {
                c.spawn_node(i)
            };
            c.nodes.push(Some(child));
        }
        c
    }

    fn spawn_node(&self, i: usize) -> Child {
        self.spawn_node_with(i, &[])
    }

    fn spawn_node_with(&self, i: usize, extra: &[&str]) -> Child {
        let log = std::fs::File::create(self.path(&format!("node-{i}.log"))).unwrap();
        Command::new(BIN)
            .arg("node")
            .arg("--config")
            .arg(self.path(&format!("cfg/node-{i}.toml")))
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap()
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn client(&self, extra: &[&str]) -> (std::process::Output, serde_json::Value) {
        let json = self.path("client.json");
        let out = Command::new(BIN)
            .arg("client")
            .arg("--config")
            .arg(self.path("cfg/clients.toml"))
            .arg("--json")
            .arg(&json)
            .args(extra)
            .output()
            .unwrap();
        let v = std::fs::read_to_string(&json)
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or(serde_json::Value::Null);
        (out, v)
    }

    /// SIGTERMs node `i`, waits, and returns its exit success and JSON report.
    fn stop(&mut self, i: usize) -> (bool, serde_json::Value) {
        let mut child = self.nodes[i].take().expect("running");
        unsafe_kill(child.id(), libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "node {i} ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let line = text.lines().last().unwrap_or("").to_string();
        (
            out.status.success(),
            serde_json::from_str(&line).unwrap_or(serde_json::Value::Null),
        )
    }

    fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.path(&format!("node-{i}.log"))).unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for c in self.nodes.iter_mut().flatten() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn unsafe_kill(pid: u32, sig: i32) {
    // SAFETY: kill(2) on a child we spawned and have not reaped.
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

fn check_client(out: &std::process::Output, v: &serde_json::Value, txs: u64, dir: &Path) {
    assert!(
        out.status.success(),
        "client failed: {}\n{}\nlogs in {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        dir.display()
    );
    assert_eq!(v["committed"], txs, "{v}");
    assert_eq!(v["conflicts"], 0, "{v}");
    assert_eq!(v["outstanding"], 0, "{v}");
}

#[test]
fn a_four_node_cluster_commits_every_transaction_once_and_refuses_hostile_input() {
    let mut c = Cluster::start(4);
    let (out, v) = c.client(&["--txs", "3000", "--window", "500", "--duration", "20"]);
    check_client(&out, &v, 3000, c.dir.path());

    // Hostile input while the cluster runs.
    let client_port = c.base + 1;
    // 1. Garbage on the client port after a valid hello: refused, counted.
    let mut s = TcpStream::connect(("127.0.0.1", client_port)).unwrap();
    let mut hello = vec![16, 0, 0, 0];
    hello.extend_from_slice(b"olyc");
    hello.extend_from_slice(&1u32.to_le_bytes());
    hello.extend_from_slice(&77u64.to_le_bytes());
    s.write_all(&hello).unwrap();
    for _ in 0..20 {
        let mut garbage = vec![64, 0, 0, 0];
        garbage.extend_from_slice(&[0xA5; 64]);
        if s.write_all(&garbage).is_err() {
            break; // closed after too many invalid frames: also right
        }
    }
    // 2. An oversized frame prefix on the peer port: the connection is closed.
    let mut p = TcpStream::connect(("127.0.0.1", c.base)).unwrap();
    p.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = p.write_all(&u32::MAX.to_le_bytes());
    let mut buf = [0u8; 256];
    let closed = loop {
        match p.read(&mut buf) {
            Ok(0) => break true,
            Ok(_) => continue, // the handshake's opening message
            Err(e) => break e.kind() == std::io::ErrorKind::ConnectionReset,
        }
    };
    assert!(
        closed,
        "node 0 kept a peer link open after an oversized frame"
    );
    // 3. A peer that cannot sign for a committee key never gets a link: garbage in
    //    place of the handshake.
    let mut q = TcpStream::connect(("127.0.0.1", c.base)).unwrap();
    let _ = q.write_all(&[32, 0, 0, 0]);
    let _ = q.write_all(&[0x5A; 32]);
    drop(q);

    // The cluster keeps committing.
    let (out, v) = c.client(&["--txs", "1000", "--window", "200", "--duration", "20"]);
    check_client(&out, &v, 1000, c.dir.path());

    let mut reports = Vec::new();
    for i in 0..4 {
        let (ok, r) = c.stop(i);
        assert!(ok, "node {i} did not exit cleanly:\n{}", c.log(i));
        assert!(
            r["committed_txs"].as_u64().unwrap_or(0) > 0,
            "node {i}: {r}"
        );
        reports.push(r);
    }
    assert!(
        reports[0]["invalid_frames"].as_u64().unwrap_or(0) >= 1,
        "node 0 did not count the garbage client frames: {}",
        reports[0]
    );
    // At SIGTERM node 0 also dumped its metrics: readable on stderr, JSON in its data
    // directory, with the rejected frames counted by reason.
    let metrics = std::fs::read_to_string(c.path("data/node-0/metrics.json"))
        .expect("node 0 wrote data/node-0/metrics.json");
    let m: serde_json::Value = serde_json::from_str(&metrics).expect("metrics.json is JSON");
    let counter = |id: &str| m["counters"][id].as_u64().unwrap_or(0);
    assert!(counter("olympus_commits_total") > 0, "{metrics}");
    let rejected: u64 = ["decode", "signature", "client_decode", "client_submit"]
        .iter()
        .map(|r| counter(&format!("olympus_frames_rejected_total{{reason=\"{r}\"}}")))
        .sum();
    assert!(rejected >= 1, "no rejected frame in {metrics}");
    assert!(
        m["histograms"]["olympus_loop_busy_us"]["count"]
            .as_u64()
            .unwrap_or(0)
            > 0,
        "{metrics}"
    );
    assert!(
        c.log(0).contains("olympus_commit_interval_us: n="),
        "no readable metrics dump in node 0's log:\n{}",
        c.log(0)
    );
    // Every transaction was executed at most once on every node: 4000 submitted.
    for r in &reports {
        assert!(r["committed_txs"].as_u64().unwrap() <= 4000, "{r}");
    }
}

#[test]
fn a_node_killed_under_load_recovers_from_disk_and_catches_up() {
    kill_and_restart_under_load(4, 6000, &["--window", "300"], &[]);
}

/// The same for a synchronous protocol, which persists its committed mark only every
/// `COMMIT_PERSIST_EVERY` commits: the restarted node may deliver again blocks it had
/// delivered, and must still execute every transaction exactly once.
#[test]
fn an_apollo_node_killed_under_load_recovers_and_executes_nothing_twice() {
    // Open loop, so that the load lasts (about 4 s) across the kill at 1.5 s.
    kill_and_restart_under_load(
        3,
        16_000,
        &["--rate", "4000"],
        &["--protocol", "apollo", "--delta-ms", "20"],
    );
}

/// The same for Artemis on real nodes: the restarted node resynchronises (recovery
/// replies with the peers' chain tails, block fetches), commits again and executes every
/// transaction exactly once. (The liveness cases of its recovery — several replicas
/// restarting within one view — are the simulator's: see `sim/tests/artemis.rs`.)
#[test]
fn an_artemis_node_killed_under_load_recovers_and_executes_nothing_twice() {
    kill_and_restart_under_load(
        3,
        16_000,
        &["--rate", "4000"],
        &["--protocol", "artemis", "--delta-ms", "20"],
    );
}

/// The same with batches disseminated by digest: the restarted node replays its chain
/// from its batch log and fetches the batches it missed.
#[test]
fn with_digest_dissemination_a_killed_node_recovers_and_fetches_what_it_missed() {
    kill_and_restart_under_load(
        4,
        6000,
        &["--window", "300"],
        &["--dissemination", "digests"],
    );
}

fn kill_and_restart_under_load(
    n: usize,
    txs: u64,
    load: &'static [&'static str],
    genconfig: &[&str],
) {
    let mut c = Cluster::start_with(n, &[], genconfig);
    let dir = c.dir.path().to_path_buf();
    let client = std::thread::spawn(move || {
        let json = dir.join("crash-client.json");
        let out = Command::new(BIN)
            .arg("client")
            .arg("--config")
            .arg(dir.join("cfg/clients.toml"))
            .arg("--json")
            .arg(&json)
            .args(["--txs", &txs.to_string(), "--duration", "20"])
            .args(load)
            .args(["--resubmit-ms", "1000"])
            .output()
            .unwrap();
        let v: serde_json::Value = std::fs::read_to_string(&json)
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or(serde_json::Value::Null);
        (out, v)
    });
    std::thread::sleep(Duration::from_millis(1500));
    let mut victim = c.nodes[2].take().unwrap();
    unsafe_kill(victim.id(), libc::SIGKILL);
    victim.wait().unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    c.nodes[2] = Some(c.spawn_node(2));
    let (out, v) = client.join().unwrap();
    check_client(&out, &v, txs, c.dir.path());
    // Let the restarted node finish catching up, then stop everybody.
    std::thread::sleep(Duration::from_millis(1500));
    let reports: Vec<_> = (0..n).map(|i| c.stop(i)).collect();
    let heights: Vec<_> = reports
        .iter()
        .map(|(_, r)| r["committed_height"].clone())
        .collect();
    for (i, (ok, r)) in reports.iter().enumerate() {
        assert!(ok, "node {i} did not exit cleanly:\n{}", c.log(i));
        assert_eq!(
            r["ledger_txs"],
            txs,
            "node {i} lost or repeated transactions (heights {heights:?}): {r}\n{}",
            c.log(i)
        );
    }
    let restarted = &reports[2].1;
    eprintln!("restarted node: {restarted}");
    assert!(
        restarted["recovered_blocks"].as_u64().unwrap_or(0) > 0,
        "the restarted node replayed nothing from its chain log: {restarted}"
    );
}

#[test]
fn mis_signed_messages_of_a_byzantine_node_are_dropped_and_counted() {
    // Every fourth view has the Byzantine leader and ends by timeout: keep it short.
    let mut c = Cluster::start_with(4, &[3], &["--view-timeout-ms", "200"]);
    let (out, v) = c.client(&[
        "--txs",
        "1000",
        "--window",
        "200",
        "--duration",
        "30",
        "--resubmit-ms",
        "1000",
    ]);
    check_client(&out, &v, 1000, c.dir.path());
    // Votes are checked when a leader aggregates them, and only the first quorum is;
    // over the run the honest leaders must have caught the Byzantine node's votes.
    let mut caught = 0;
    for i in 0..3 {
        let (ok, r) = c.stop(i);
        assert!(ok, "node {i}:\n{}", c.log(i));
        caught += r["bad_signatures"].as_u64().unwrap_or(0);
        assert_eq!(r["ledger_txs"], 1000, "node {i}: {r}");
    }
    assert!(caught > 0, "no honest node counted the mis-signed messages");
}

#[test]
fn a_node_with_a_bad_config_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("node.toml");
    std::fs::write(&bad, "id = 0\nsecret_key = \"zz\"\n").unwrap();
    let out = Command::new(BIN)
        .arg("node")
        .arg("--config")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("node.toml"), "{err}");
    let out = Command::new(BIN)
        .args(["node", "--config", "/nonexistent/node.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/node.toml"));
}

/// The synchronous family runs on real nodes: n = 3 (f = 1), every client transaction
/// acknowledged by f + 1 distinct replicas in one block and executed exactly once. In
/// Sync HotStuff, Opt Sync and Artemis the replicas that do not lead forward their
/// clients' batches to the leader; in Apollo every replica proposes in its own turns.
#[test]
fn the_synchronous_protocols_commit_every_transaction_once_on_nodes() {
    for protocol in ["sync-hotstuff", "opt-sync", "apollo", "artemis"] {
        let mut c = Cluster::start_with(3, &[], &["--protocol", protocol, "--delta-ms", "20"]);
        let cfg = std::fs::read_to_string(c.path("cfg/node-0.toml")).unwrap();
        assert!(cfg.contains(&format!("protocol = \"{protocol}\"")), "{cfg}");
        let (out, v) = c.client(&["--txs", "1000", "--window", "200", "--duration", "30"]);
        check_client(&out, &v, 1000, c.dir.path());
        let mut complete = 0;
        for i in 0..3 {
            let (ok, report) = c.stop(i);
            assert!(
                ok,
                "{protocol}: node {i} did not stop cleanly:\n{}",
                c.log(i)
            );
            let executed = report["ledger_txs"].as_u64().unwrap_or(u64::MAX);
            assert!(executed <= 1000, "{protocol}: node {i} executed {executed}");
            if executed == 1000 {
                complete += 1;
            }
        }
        assert!(
            complete >= 2,
            "{protocol}: fewer than f + 1 nodes executed everything"
        );
    }
}
