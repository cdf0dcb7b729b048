//! `olympus bench` from the outside: its command line, and its orchestration of real
//! child processes, run against a stand-in `--bin` (a small Python script playing
//! genconfig, node and client) so that the bench's own logic — readiness, progress,
//! failure reports, outputs, cleanup — is tested without the engine. Tests that need the
//! stand-in are skipped when `python3` is not installed.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const OLYMPUS: &str = env!("CARGO_BIN_EXE_olympus");

/// Plays `olympus genconfig`, `olympus node` and `olympus client` well enough for the
/// bench. A node burns a little CPU, and at SIGTERM writes a metrics JSON (--metrics-out,
/// with an olympus_verify_us histogram) and prints its counters as a JSON line, like the
/// real one. FAKE_MODE selects a failure: node-dies (node 1 exits 3), client-fails,
/// no-commit, conflict (the client saw one transaction in two blocks), no-metrics (nodes
/// write no metrics and print no counters).
const FAKE: &str = r#"#!/usr/bin/env python3
import json, os, select, signal, socket, sys, time

def opts(argv):
    out, i = {}, 0
    while i < len(argv):
        k = argv[i]
        if k.startswith("-") and i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            out[k] = argv[i + 1]; i += 2
        else:
            out[k] = True; i += 1
    return out

cmd, o = sys.argv[1], opts(sys.argv[2:])
mode = os.environ.get("FAKE_MODE", "")

if cmd == "genconfig":
    n, base, out = int(o["-n"]), int(o["--base-port"]), o["--out"]
    os.makedirs(out, exist_ok=True)
    for i in range(n):
        with open(os.path.join(out, "node-%d.toml" % i), "w") as f:
            f.write("id = %d\npeer_port = %d\nclient_port = %d\ndata_dir = \"%s/node-%d\"\n"
                    % (i, base + 2 * i, base + 2 * i + 1, o["--data-dir"], i))
    with open(os.path.join(out, "clients.toml"), "w") as f:
        f.write("n = %d\nprotocol = \"%s\"\n" % (n, o["--protocol"]))
    print("wrote %d node files" % n)

elif cmd == "node":
    cfg = dict(l.split(" = ", 1) for l in open(o["--config"]).read().splitlines())
    me = int(cfg["id"])
    print("node %s pid=%d args=%s" % (me, os.getpid(), " ".join(sys.argv[1:])), flush=True)
    os.makedirs(cfg["data_dir"].strip('"'), exist_ok=True)
    def on_term(*a):
        if mode != "no-metrics":
            with open(o["--metrics-out"], "w") as f:
                json.dump({"uptime_s": 1.0, "counters": {"olympus_commits_total": 20},
                           "gauges": {}, "histograms": {"olympus_verify_us":
                           {"count": 100, "sum": 20000, "mean": 200.0, "max": 900}}}, f)
            print(json.dumps({"node": me, "committed_blocks": 20}), flush=True)
        sys.exit(0)
    signal.signal(signal.SIGTERM, on_term)
    end = time.process_time() + 0.15
    while time.process_time() < end:
        pass
    if mode == "node-dies" and me == 1:
        time.sleep(0.5)
        print("fatal: disk on fire", file=sys.stderr, flush=True)
        sys.exit(3)
    socks = []
    for key in ("peer_port", "client_port"):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", int(cfg[key])))
        s.listen(64)
        socks.append(s)
    while True:
        ready, _, _ = select.select(socks, [], [], 0.2)
        for s in ready:
            c, _ = s.accept()
            c.close()

elif cmd == "client":
    assert os.path.exists(o["--config"]), o["--config"]
    assert ("--window" in o) != ("--rate" in o), "exactly one of --window and --rate"
    if mode == "client-fails":
        print("error: cannot reach the committee", file=sys.stderr)
        sys.exit(1)
    warmup, duration = int(o["--warmup"]), int(o["--duration"])
    rate = 0 if mode == "no-commit" else 1000
    series = []
    for t in range(1, warmup + duration + 1):
        time.sleep(1)
        print("progress t=%d committed=%d tps=%d" % (t, t * rate, rate), file=sys.stderr, flush=True)
        if t > warmup:
            series.append({"t": float(t), "committed": t * rate, "tps": float(rate),
                           "p50_ms": 10.0 + t, "p99_ms": 30.0 + t})
    report = {"load": "window" if "--window" in o else "rate", "payload": int(o["--payload"]),
              "submitted": duration * 1100, "committed": (warmup + duration) * rate,
              "measured": duration * rate, "conflicts": 3 if mode == "conflict" else 0,
              "throughput_tx_s": float(rate),
              "latency_ms": {"mean": 12.0, "p50": 11.0, "p90": 20.0, "p99": 31.0, "max": 50.0},
              "series": series}
    with open(o["--json"], "w") as f:
        json.dump(report, f)
    # Like the real client: exit 1 when nothing committed or on a conflict.
    sys.exit(1 if rate == 0 or mode == "conflict" else 0)
else:
    sys.exit("unknown command " + cmd)
"#;

fn python3() -> bool {
    Command::new("python3")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A fresh directory for one test, holding the stand-in binary.
fn setup(name: &str) -> Option<(PathBuf, PathBuf)> {
    if !python3() {
        eprintln!("skipped: python3 is not installed");
        return None;
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("bench-cli-{name}"));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("test dir");
    let fake = dir.join("fake-olympus");
    fs::write(&fake, FAKE).expect("write stand-in");
    fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).expect("chmod");
    Some((dir, fake))
}

fn bench(args: &[&str], fake_mode: &str) -> Output {
    Command::new(OLYMPUS)
        .arg("bench")
        .args(args)
        .env("FAKE_MODE", fake_mode)
        .output()
        .expect("run olympus bench")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The one timestamped directory a bench wrote under `out`.
fn only_root(out: &Path) -> PathBuf {
    let entries: Vec<PathBuf> = fs::read_dir(out)
        .expect("out dir")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    entries[0].clone()
}

#[test]
fn help_tells_the_defaults() {
    let out = Command::new(OLYMPUS)
        .args(["bench", "--help"])
        .output()
        .expect("run");
    assert!(out.status.success());
    let help = text(&out.stdout);
    for expected in [
        "--protocol",
        "[default: hotstuff; with --sweep: hotstuff,twochain]",
        "-n <N[,N..]>",
        "[default: 4]",
        "--block-size <TXS[,TXS..]>",
        "[default: 400; with --sweep: 100,400,1000]",
        "--payload",
        "--duration",
        "[default: 10; with --sweep: 5]",
        "--warmup",
        "[default: 2; with --sweep: 1]",
        "--sweep",
        "[default: 1; with --sweep: 3]",
        "Cost breakdown",
        "/proc/<pid>/stat",
        "--window",
        "[default: 10000]",
        "--rate",
        "--placement",
        "[default: compact]",
        "--runs",
        "--base-port",
        "[default: 17000]",
        "--out",
        "[default: runs]",
        "--delta-ms",
        "[default: 50]",
        "--view-timeout-ms",
        "[default: 1000]",
        "--keep",
        "--bin",
        "summary.csv",
        "Exit status",
    ] {
        assert!(
            help.contains(expected),
            "--help lacks {expected:?}:\n{help}"
        );
    }
}

#[test]
fn window_and_rate_together_is_a_usage_error() {
    let out = bench(&["--window", "10", "--rate", "100"], "");
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("--window") && err.contains("--rate"), "{err}");
}

#[test]
fn bad_sizes_and_protocols_are_usage_errors() {
    let out = bench(&["-n", "0"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("at least 1 node"),
        "{}",
        text(&out.stderr)
    );
    let out = bench(&["--protocol", "hotstuf"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unknown protocol"));
    let out = bench(&["--bin", "/nonexistent/olympus"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no such file"));
}

#[test]
fn a_sweep_writes_table_csv_manifest_and_plots() {
    let Some((dir, fake)) = setup("sweep") else {
        return;
    };
    let out_dir = dir.join("runs");
    let o = bench(
        &[
            "--bin",
            fake.to_str().expect("utf-8 path"),
            "--duration",
            "1",
            "--warmup",
            "1",
            "-n",
            "1,4",
            "--runs",
            "2",
            "--base-port",
            "23000",
            "--out",
            out_dir.to_str().expect("utf-8 path"),
        ],
        "",
    );
    let (stdout, stderr) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(
        o.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("window 10000"), "{stdout}");
    assert!(stdout.contains("1000 (1000–1000)"), "{stdout}");
    assert!(stdout.contains("2/2"), "{stdout}");

    let root = only_root(&out_dir);
    for f in [
        "summary.csv",
        "runs.csv",
        "manifest.json",
        "throughput.svg",
        "latency.svg",
        "throughput.png",
        "latency.png",
    ] {
        assert!(root.join(f).is_file(), "{f} missing in {}", root.display());
    }
    assert!(!root.join("throughput_vs_block_size.png").exists());
    let png = fs::read(root.join("throughput.png")).expect("png");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    // The cost table: one row per node of each run (10 rows: within the limit of 16).
    assert!(stdout.contains("CPU time per committed block"), "{stdout}");
    assert!(
        stdout.contains("crypto µs") && stdout.contains("network µs"),
        "{stdout}"
    );
    let cost_rows: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("hotstuff n="))
        .collect();
    assert_eq!(cost_rows.len(), 10, "{stdout}");
    for row in &cost_rows {
        // 20 blocks each; crypto is 20000 µs / 20 blocks = 1000 µs (capped at user time).
        assert!(row.contains(" 20 "), "{row}");
        assert!(!row.contains("n/a"), "{row}");
    }
    let summary = fs::read_to_string(root.join("summary.csv")).expect("summary");
    let lines: Vec<&str> = summary.lines().collect();
    assert_eq!(lines.len(), 3, "{summary}");
    assert!(
        lines[1].starts_with(
            "hotstuff,1,0,400,0,window,10000,,2,2,1000,1000,1000,11,11,11,31,31,31,12,12,12"
        ),
        "{summary}"
    );
    assert!(lines[2].starts_with("hotstuff,4,1,"), "{summary}");
    let runs_csv = fs::read_to_string(root.join("runs.csv")).expect("runs");
    let run_rows: Vec<&str> = runs_csv.lines().collect();
    assert_eq!(run_rows.len(), 5);
    let header: Vec<&str> = run_rows[0].split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).expect(name);
    for row in &run_rows[1..] {
        let fields: Vec<&str> = row.split(',').collect();
        let total: f64 = fields[col("cpu_us_per_block")]
            .parse()
            .expect("cpu per block");
        let crypto: f64 = fields[col("crypto_us_per_block")].parse().expect("crypto");
        let net: f64 = fields[col("network_us_per_block")]
            .parse()
            .expect("network");
        let rest: f64 = fields[col("rest_us_per_block")].parse().expect("rest");
        assert!(total > 0.0 && crypto > 0.0 && crypto <= 1000.0, "{row}");
        assert!((crypto + net + rest - total).abs() < 1.0, "{row}");
    }
    let sheader: Vec<&str> = lines[0].split(',').collect();
    assert!(sheader.contains(&"cpu_us_per_block_median"), "{summary}");

    let m: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(root.join("manifest.json")).expect("manifest"))
            .expect("manifest is JSON");
    assert_eq!(m["status"], "complete");
    assert_eq!(m["parameters"]["n"], serde_json::json!([1, 4]));
    assert_eq!(m["load"]["model"], "closed-loop");
    assert!(m["host"]["nproc"].as_u64().is_some_and(|n| n >= 1));
    assert!(m["command_line"].as_array().is_some_and(|a| a.len() > 3));
    assert!(m["cost_method"]
        .as_str()
        .is_some_and(|s| s.contains("/proc/<pid>/stat")));
    let runs = m["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 4);
    let costs = runs[3]["node_costs"].as_array().expect("node costs");
    assert_eq!(costs.len(), 4);
    assert_eq!(costs[0]["committed_blocks"], 20);
    assert_eq!(costs[0]["crypto_hist_us"], 20000.0);
    assert!(costs[0]["per_block"]["total_us"]
        .as_f64()
        .is_some_and(|t| t > 0.0));
    assert!(runs[3]["cost"]["total_us"].as_f64().is_some());
    // Fresh ports per run: 1 node (2 ports), 1 node, 4 nodes (8 ports), 4 nodes.
    let ports: Vec<u64> = runs
        .iter()
        .filter_map(|r| r["base_port"].as_u64())
        .collect();
    assert_eq!(ports.len(), 4);
    assert!(ports.windows(2).all(|w| w[0] < w[1]), "{ports:?}");
    assert!(
        ports[3] - ports[2] >= 8 && ports[1] - ports[0] >= 2,
        "{ports:?}"
    );

    let last = root.join(runs[3]["dir"].as_str().expect("dir"));
    for i in 0..4 {
        let log = fs::read_to_string(last.join(format!("node-{i}.log"))).expect("node log");
        assert!(log.contains("--placement compact"), "{log}");
    }
    assert!(
        !last.join("data").exists(),
        "data dirs are deleted without --keep"
    );
    assert!(last.join("client.json").is_file() && last.join("config/node-3.toml").is_file());
    let client_log = fs::read_to_string(last.join("client.log")).expect("client log");
    assert!(client_log.contains("progress t=2"), "{client_log}");
    let svg = fs::read_to_string(root.join("throughput.svg")).expect("svg");
    assert_eq!(svg.matches("<polyline").count(), 4);
}

#[test]
fn a_block_size_sweep_plots_against_block_size_and_missing_metrics_are_na() {
    let Some((dir, fake)) = setup("block-sweep") else {
        return;
    };
    let out_dir = dir.join("runs");
    let o = bench(
        &[
            "--bin",
            fake.to_str().expect("utf-8 path"),
            "--sweep",
            "--protocol",
            "hotstuff",
            "-n",
            "1",
            "--block-size",
            "100,400",
            "--runs",
            "1",
            "--duration",
            "1",
            "--warmup",
            "0",
            "--base-port",
            "23100",
            "--out",
            out_dir.to_str().expect("utf-8 path"),
        ],
        "no-metrics",
    );
    let (stdout, stderr) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(
        o.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stderr.contains("--sweep: protocols hotstuff"), "{stderr}");
    let root = only_root(&out_dir);
    for f in [
        "throughput_vs_block_size.png",
        "latency_vs_block_size.png",
        "throughput_vs_block_size.svg",
        "latency_vs_block_size.svg",
        "throughput.png",
    ] {
        assert!(root.join(f).is_file(), "{f} missing");
    }
    assert!(root.join("01-hotstuff-n1-b100-r1/client.json").is_file());
    assert!(root.join("02-hotstuff-n1-b400-r1/client.json").is_file());
    let summary = fs::read_to_string(root.join("summary.csv")).expect("summary");
    let rows: Vec<&str> = summary.lines().collect();
    assert_eq!(rows.len(), 3, "{summary}");
    assert!(rows[1].starts_with("hotstuff,1,0,100,"), "{summary}");
    assert!(rows[2].starts_with("hotstuff,1,0,400,"), "{summary}");
    // No counters and no metrics: the cost is n/a, and the run still succeeds.
    assert!(rows[1].ends_with(",,,,"), "{summary}");
    let cost_rows: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("hotstuff n=1 b="))
        .collect();
    assert_eq!(cost_rows.len(), 2, "{stdout}");
    assert!(
        cost_rows.iter().all(|r| r.matches("n/a").count() == 5),
        "{stdout}"
    );
    let m: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(root.join("manifest.json")).expect("manifest"))
            .expect("JSON");
    assert_eq!(m["parameters"]["block_size"], serde_json::json!([100, 400]));
    assert_eq!(m["parameters"]["sweep"], true);
    assert_eq!(m["runs"][1]["block_size"], 400);
}

#[test]
fn a_dying_node_fails_the_run_with_its_log() {
    let Some((dir, fake)) = setup("node-dies") else {
        return;
    };
    let out_dir = dir.join("runs");
    let o = bench(
        &[
            "--bin",
            fake.to_str().expect("utf-8 path"),
            "--duration",
            "2",
            "--warmup",
            "0",
            "--base-port",
            "23200",
            "--keep",
            "--out",
            out_dir.to_str().expect("utf-8 path"),
        ],
        "node-dies",
    );
    let (stdout, stderr) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(
        o.status.code(),
        Some(1),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stderr.contains("node 1 exited early (exit code 3)"),
        "{stderr}"
    );
    assert!(stderr.contains("disk on fire"), "{stderr}");
    assert!(
        stdout.contains("failed") && stdout.contains("0/1"),
        "{stdout}"
    );
    let root = only_root(&out_dir);
    let runs = fs::read_to_string(root.join("runs.csv")).expect("runs.csv");
    assert!(runs.contains(",failed,"), "{runs}");
    assert!(
        root.join("01-hotstuff-n4-r1/data").is_dir(),
        "--keep keeps data dirs"
    );
    let m: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(root.join("manifest.json")).expect("manifest"))
            .expect("JSON");
    assert_eq!(m["status"], "failed");
    assert_no_node_left(&root.join("01-hotstuff-n4-r1"), 4);
}

#[test]
fn a_failing_client_no_commit_or_a_conflict_fails_the_run() {
    let Some((dir, fake)) = setup("client") else {
        return;
    };
    for (mode, port, expected) in [
        ("client-fails", "23300", "the client failed (exit code 1)"),
        (
            "no-commit",
            "23400",
            "nothing committed in the measured window",
        ),
        ("conflict", "23450", "SAFETY VIOLATION"),
    ] {
        let out_dir = dir.join(mode);
        let o = bench(
            &[
                "--bin",
                fake.to_str().expect("utf-8 path"),
                "--duration",
                "1",
                "--warmup",
                "0",
                "--rate",
                "500",
                "--base-port",
                port,
                "--out",
                out_dir.to_str().expect("utf-8 path"),
            ],
            mode,
        );
        let stderr = text(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{mode}: {stderr}");
        assert!(stderr.contains(expected), "{mode}: {stderr}");
        let root = only_root(&out_dir);
        assert_no_node_left(&root.join("01-hotstuff-n4-r1"), 4);
    }
}

#[test]
fn sigterm_stops_the_nodes_and_keeps_partial_results() {
    let Some((dir, fake)) = setup("sigterm") else {
        return;
    };
    let out_dir = dir.join("runs");
    let child = Command::new(OLYMPUS)
        .args(["bench", "--bin", fake.to_str().expect("utf-8 path")])
        .args(["--duration", "30", "--warmup", "0", "--base-port", "23500"])
        .arg("--out")
        .arg(&out_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn bench");
    // Wait until the client runs (its log exists), then stop the bench.
    let start = Instant::now();
    let client_log = loop {
        let found = fs::read_dir(&out_dir)
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| {
                let p = e.ok()?.path().join("01-hotstuff-n4-r1/client.log");
                p.exists().then_some(p)
            });
        if let Some(p) = found {
            break p;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the client never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let pid = libc::pid_t::try_from(child.id()).expect("pid");
    // SAFETY: plain syscall on our own child.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let o = child.wait_with_output().expect("wait bench");
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "the bench did not stop promptly"
    );
    assert_eq!(o.status.code(), Some(130), "{}", text(&o.stderr));
    let run_dir = client_log.parent().expect("run dir");
    assert_no_node_left(run_dir, 4);
    let root = run_dir.parent().expect("root");
    let m: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(root.join("manifest.json")).expect("manifest"))
            .expect("JSON");
    assert_eq!(m["status"], "interrupted");
    assert!(root.join("summary.csv").is_file());
}

/// Every stand-in node of a run has exited (each logs its pid on its first line).
fn assert_no_node_left(run_dir: &Path, n: usize) {
    for i in 0..n {
        let log = fs::read_to_string(run_dir.join(format!("node-{i}.log"))).unwrap_or_default();
        let Some(pid) = log
            .split_whitespace()
            .find_map(|w| w.strip_prefix("pid="))
            .and_then(|p| p.parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        // The bench reaps its children, so a live process with this pid would be a leak
        // (or, unlikely, a reused pid).
        let alive = Path::new(&format!("/proc/{pid}")).exists()
            && fs::read_to_string(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.contains("fake-olympus"));
        assert!(!alive, "node {i} (pid {pid}) is still running");
    }
}
