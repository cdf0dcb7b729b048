//! Measures the locked memory glommio executors pin: starts `count` executors with the
//! given io memory and ring depth, one after another, and prints `VmPin` (what io_uring
//! charged to this process) once they all run.
//!
//! `cargo run -p olympus-net --example memlock_probe -- [io_memory] [ring_depth] [count]`
//!
//! Run it as root and again without `CAP_IPC_LOCK`, where the limit is enforced:
//! `capsh --drop=cap_ipc_lock -- -c 'target/debug/examples/memlock_probe 65536 128 8'`.
//! Findings are in the documentation of `olympus_net::rt`.

use glommio::LocalExecutorBuilder;
use std::time::Duration;

fn status(key: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .collect::<Vec<_>>()
        .join(" ")
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let io_memory = args.first().copied().unwrap_or(olympus_net::rt::IO_MEMORY);
    let depth = args.get(1).copied().unwrap_or(olympus_net::rt::RING_DEPTH);
    let count = args.get(2).copied().unwrap_or(4);
    let limit = olympus_net::checks::memlock_limit().ok().flatten();
    println!(
        "RLIMIT_MEMLOCK {}, CAP_IPC_LOCK {}",
        limit.map_or("unlimited".into(), olympus_net::checks::fmt_bytes),
        olympus_net::checks::has_cap_ipc_lock()
    );
    let (tx, rx) = std::sync::mpsc::channel();
    let mut handles = Vec::new();
    for i in 0..count {
        let tx = tx.clone();
        let builder = LocalExecutorBuilder::default()
            .io_memory(io_memory)
            .ring_depth(depth);
        match builder.spawn(move || async move {
            tx.send(i).ok();
            glommio::timer::sleep(Duration::from_millis(1000)).await;
        }) {
            Ok(h) => handles.push(h),
            Err(e) => println!("executor {i} failed to start: {e}"),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(tx);
    std::thread::sleep(Duration::from_millis(300));
    println!(
        "io_memory {io_memory} ring_depth {depth}: {} executors running, VmPin {}, predicted {} each",
        rx.try_iter().count(),
        status("VmPin:"),
        olympus_net::checks::fmt_bytes(olympus_net::checks::locked_bytes_per_executor(io_memory))
    );
    for h in handles {
        let _ = h.join();
    }
}
