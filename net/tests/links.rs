//! Peer links over real loopback sockets: delivery, coalescing, zero-copy broadcast,
//! backpressure and reconnect. Each node runs on its own glommio executor thread.

mod common;

use common::*;
use olympus_net::{Frame, Incoming, SendError};
use olympus_types::NodeId;
use std::time::Duration;

/// Every node sends `count` frames to every other; each receives them in order, once.
fn exchange(nodes: &[Node], count: u32) {
    let n = nodes.len();
    for (i, node) in nodes.iter().enumerate() {
        node.call(move |h| async move {
            for seq in 0..count {
                for j in (0..n).filter(|&j| j != i) {
                    let f = Frame::from_body(&body(i, seq, 16 + seq as usize % 200)).unwrap();
                    h.send(NodeId(j as u16), f).await.unwrap();
                }
            }
        });
    }
    for (j, node) in nodes.iter().enumerate() {
        let mut next = vec![0u32; n];
        for _ in 0..count as usize * (n - 1) {
            let Incoming::Peer { from, body } = node.recv() else {
                panic!("client frame")
            };
            let (tag, seq) = seq_of(&body);
            assert_eq!(tag as usize, from.index(), "body names its sender");
            assert_ne!(from.index(), j);
            assert_eq!(
                seq,
                next[from.index()],
                "{} got frames from {from} out of order",
                node.id
            );
            assert_eq!(body.len(), 16 + seq as usize % 200);
            next[from.index()] += 1;
        }
        assert!(next.iter().enumerate().all(|(i, &c)| i == j || c == count));
        node.assert_quiet(Duration::from_millis(50));
    }
}

#[test]
fn two_nodes_exchange_in_order_exactly_once() {
    let mut c = cluster(2);
    // Frames sent before the links are up wait in the queues.
    let nodes: Vec<Node> = (0..2).map(|i| Node::start(c.config(i))).collect();
    exchange(&nodes, 500);
    for n in &nodes {
        let s = n.snapshot();
        assert_eq!(s.frames_in, 500);
        assert_eq!(s.frames_out, 500);
        assert_eq!(s.handshakes_ok, 2, "one as dialer, one as listener: {s}");
        assert_eq!(s.handshakes_refused, 0);
    }
}

#[test]
fn three_nodes_exchange_and_broadcast() {
    let mut c = cluster(3);
    let nodes: Vec<Node> = (0..3).map(|i| Node::start(c.config(i))).collect();
    exchange(&nodes, 200);
    for (i, node) in nodes.iter().enumerate() {
        node.call(move |h| async move {
            for seq in 0..100 {
                h.broadcast_wait(&Frame::from_body(&body(i, seq, 32)).unwrap())
                    .await
                    .unwrap();
            }
        });
    }
    for node in &nodes {
        let mut next = [0u32; 3];
        for _ in 0..200 {
            let m = node.recv();
            let (tag, seq) = seq_of(m.body());
            assert_eq!(seq, next[tag as usize]);
            next[tag as usize] += 1;
        }
    }
}

#[test]
fn writes_coalesce_many_frames_per_syscall() {
    let mut c = cluster(2);
    let nodes: Vec<Node> = (0..2).map(|i| Node::start(c.config(i))).collect();
    nodes[0].wait_connected(&[1]);
    let before = nodes[0].snapshot();
    // 1000 frames queued without yielding: the writer wakes once and drains them all.
    nodes[0].call(|h| async move {
        for seq in 0..1000 {
            h.try_send(NodeId(1), Frame::from_body(&body(0, seq, 24)).unwrap())
                .unwrap();
        }
    });
    for seq in 0..1000 {
        assert_eq!(seq_of(nodes[1].recv().body()), (0, seq));
    }
    let after = nodes[0].snapshot();
    let frames = after.frames_out - before.frames_out;
    let writes = after.writes - before.writes;
    let per_write = frames as f64 / writes as f64;
    println!(
        "coalescing: {frames} frames in {writes} write syscalls = {per_write:.1} frames/write"
    );
    assert_eq!(frames, 1000);
    assert!(per_write > 10.0, "{frames} frames took {writes} writes");
}

#[test]
fn broadcast_shares_one_buffer_among_peers() {
    let mut c = cluster(4);
    let nodes: Vec<Node> = (0..4).map(|i| Node::start(c.config(i))).collect();
    nodes[0].wait_connected(&[1, 2, 3]);
    let (queued, handles_after_queue, same) = nodes[0].call(|h| async move {
        let frame = Frame::from_body(&[42u8; 4096]).unwrap();
        let report = h.broadcast(&frame);
        // Before any writer runs: our handle plus one per peer queue, all one buffer.
        let handles = frame.handles();
        let same = frame.clone().same_bytes(&frame);
        (report.queued, handles, same)
    });
    assert_eq!(queued, 3);
    assert_eq!(
        handles_after_queue, 4,
        "each peer queue holds the same Arc, not a copy"
    );
    assert!(same);
    for n in &nodes[1..] {
        assert_eq!(n.recv().body(), &[42u8; 4096][..]);
    }
    // The writers wrote from the shared buffer and let go of it.
    let handles = nodes[0].call(|h| async move {
        let frame = Frame::from_body(b"x").unwrap();
        h.broadcast(&frame);
        for _ in 0..2000 {
            if frame.handles() == 1 {
                break;
            }
            glommio::timer::sleep(Duration::from_millis(1)).await;
        }
        frame.handles()
    });
    assert_eq!(handles, 1);
}

#[test]
fn full_queues_refuse_or_wait() {
    let mut c = cluster(2);
    let mut cfg = c.config(0);
    cfg.queue_bound = 8;
    // Node 1 is not running: nothing drains node 0's queue.
    let node = Node::start(cfg);
    let (results, waited, bad) = node.call(|h| async move {
        let f = Frame::from_body(b"hello").unwrap();
        let results: Vec<bool> = (0..10)
            .map(|_| h.try_send(NodeId(1), f.clone()).is_ok())
            .collect();
        let send = h.send(NodeId(1), f.clone());
        let waited = futures_lite::future::or(async { send.await.map(|_| false) }, async {
            glommio::timer::sleep(Duration::from_millis(100)).await;
            Ok(true)
        })
        .await;
        let bad = (h.try_send(NodeId(0), f.clone()), h.try_send(NodeId(9), f));
        (results, waited, bad)
    });
    assert_eq!(
        results,
        [true, true, true, true, true, true, true, true, false, false]
    );
    assert_eq!(waited, Ok(true), "send() waits while the queue is full");
    assert_eq!(
        bad,
        (
            Err(SendError::UnknownPeer(NodeId(0))),
            Err(SendError::UnknownPeer(NodeId(9)))
        )
    );
    assert_eq!(node.snapshot().sends_refused, 2);
    // Once the peer comes up, the queued frames flow.
    let peer = Node::start(c.config(1));
    for _ in 0..8 {
        assert_eq!(peer.recv().body(), b"hello");
    }
}

#[test]
fn reconnect_after_restart_on_the_same_address() {
    let mut c = cluster(2);
    let a = Node::start(c.config(0));
    let b = Node::start(c.config(1));
    a.wait_connected(&[1]);
    b.wait_connected(&[0]);
    let nodes = [a, b];
    exchange(&nodes, 20);
    let [a, b] = nodes;
    b.stop();
    // Node 0 notices the link went down.
    eventually("link 0->1 down", || a.snapshot().links_down >= 1);
    // Node 1 again, binding its address anew.
    let b = Node::start(c.config(1));
    a.wait_connected(&[1]);
    b.wait_connected(&[0]);
    let nodes = [a, b];
    exchange(&nodes, 20);
    let s = nodes[0].snapshot();
    println!("node 0 after the restart of node 1: {s}");
    assert!(s.reconnects >= 1, "{s}");
}

#[test]
fn large_frames_survive_partial_writes() {
    // Frames far larger than the socket buffer: sendmsg writes part of a frame, the
    // writer waits for room and resumes mid-frame.
    let mut c = cluster(2);
    let nodes: Vec<Node> = (0..2).map(|i| Node::start(c.config(i))).collect();
    nodes[0].call(|h| async move {
        for seq in 0..12u32 {
            let mut b = body(0, seq, (3 << 20) + seq as usize * 4099);
            for (k, x) in b.iter_mut().enumerate().skip(5) {
                *x = (k as u32).wrapping_mul(seq + 1) as u8;
            }
            h.send(NodeId(1), Frame::from_body(&b).unwrap())
                .await
                .unwrap();
        }
    });
    for seq in 0..12u32 {
        let m = nodes[1].recv();
        let b = m.body();
        assert_eq!(seq_of(b), (0, seq));
        assert_eq!(b.len(), (3 << 20) + seq as usize * 4099);
        assert!(b
            .iter()
            .enumerate()
            .skip(5)
            .all(|(k, &x)| x == (k as u32).wrapping_mul(seq + 1) as u8));
    }
    let s = nodes[0].snapshot();
    println!("large frames: {s}");
    assert!(
        s.writes > 12,
        "partial writes took more than one call per frame: {s}"
    );
}
