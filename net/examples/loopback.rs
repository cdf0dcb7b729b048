//! Small-frame throughput between two nodes on loopback, each on its own glommio
//! executor thread: node 0 sends N frames to node 1 with `send().await` (backpressure),
//! node 1 drains its inbox. Prints frames/s, MB/s and the writer's frames per syscall.
//!
//! `cargo run --release -p olympus-net --example loopback -- [frames] [body bytes]`

use glommio::Placement;
use olympus_crypto::{generate_committee, Scheme};
use olympus_net::{rt, Frame, NetConfig, Network};
use olympus_types::NodeId;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let frames = args.first().copied().unwrap_or(1_000_000);
    let size = args.get(1).copied().unwrap_or(64).max(8);
    if let Err(e) = olympus_net::checks::check_all(2) {
        eprintln!("start-up check failed: {e}");
        std::process::exit(1);
    }
    let (committee, keys) = generate_committee(Scheme::Bls, &[3; 32], 2).expect("committee");
    let committee = Arc::new(committee);
    let listeners: Vec<TcpListener> = (0..2)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    let addrs: Vec<_> = listeners
        .iter()
        .map(|l| l.local_addr().expect("addr"))
        .collect();
    let sender_done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut handles = Vec::new();
    for (i, listener) in listeners.into_iter().enumerate() {
        let mut cfg = NetConfig::new(
            NodeId(i as u16),
            addrs.clone(),
            Arc::new(keys[i].clone()),
            committee.clone(),
        );
        cfg.peer_listener = Some(listener);
        let sender_done = sender_done.clone();
        handles.push(
            rt::executor_builder(Placement::Fixed(i))
                .name(&format!("node{i}"))
                .spawn(move || async move {
                    let (h, inbox) = Network::start(cfg).expect("start");
                    if i == 0 {
                        while !h.is_connected(NodeId(1)) {
                            glommio::timer::sleep(Duration::from_millis(1)).await;
                        }
                        let t = Instant::now();
                        let mut body = vec![0u8; size];
                        for seq in 0..frames as u64 {
                            body[..8].copy_from_slice(&seq.to_le_bytes());
                            let f = Frame::from_body(&body).expect("frame");
                            h.send(NodeId(1), f).await.expect("send");
                        }
                        // Wait for the queue to drain before reading the counters.
                        while h.queue_len(NodeId(1)) > 0 {
                            glommio::timer::sleep(Duration::from_millis(1)).await;
                        }
                        let s = h.stats().snapshot();
                        println!(
                            "sender: {} frames queued in {:.2?}; {} write syscalls, {:.1} frames/write",
                            frames,
                            t.elapsed(),
                            s.writes,
                            s.frames_per_write()
                        );
                        sender_done.store(true, std::sync::atomic::Ordering::Release);
                        // Keep the link up until the receiver is done.
                        while inbox.recv().await.is_some() {}
                    } else {
                        let mut t = None;
                        for expect in 0..frames as u64 {
                            let Some(m) = inbox.recv().await else { break };
                            t.get_or_insert_with(Instant::now);
                            let seq = u64::from_le_bytes(m.body()[..8].try_into().expect("8 bytes"));
                            assert_eq!(seq, expect, "frames out of order");
                        }
                        let el = t.map(|t| t.elapsed()).unwrap_or_default().as_secs_f64();
                        let wire = (size + 4) as f64 * frames as f64;
                        println!(
                            "receiver: {} frames of {} body bytes in {:.3} s = {:.0} frames/s, {:.1} MB/s of wire",
                            frames,
                            size,
                            el,
                            frames as f64 / el,
                            wire / el / 1e6
                        );
                        while !sender_done.load(std::sync::atomic::Ordering::Acquire) {
                            glommio::timer::sleep(Duration::from_millis(1)).await;
                        }
                        std::process::exit(0);
                    }
                })
                .expect("executor"),
        );
    }
    for h in handles {
        let _ = h.join();
    }
}
