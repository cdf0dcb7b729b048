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
/// bench. FAKE_MODE selects a failure: node-dies (node 1 exits 3), client-fails,
/// no-commit, conflict (the client saw one transaction in two blocks).
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
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
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
        "[default: hotstuff]",
        "-n <N[,N..]>",
        "[default: 4]",
        "--block-size",
        "[default: 400]",
        "--payload",
        "--duration",
        "[default: 10]",
        "--warmup",
        "[default: 2]",
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
    ] {
        assert!(root.join(f).is_file(), "{f} missing in {}", root.display());
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
    assert_eq!(
        fs::read_to_string(root.join("runs.csv"))
            .expect("runs")
            .lines()
            .count(),
        5
    );

    let m: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(root.join("manifest.json")).expect("manifest"))
            .expect("manifest is JSON");
    assert_eq!(m["status"], "complete");
    assert_eq!(m["parameters"]["n"], serde_json::json!([1, 4]));
    assert_eq!(m["load"]["model"], "closed-loop");
    assert!(m["host"]["nproc"].as_u64().is_some_and(|n| n >= 1));
    assert!(m["command_line"].as_array().is_some_and(|a| a.len() > 3));
    let runs = m["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 4);
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
