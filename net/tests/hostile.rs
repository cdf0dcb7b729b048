//! Hostile peers and clients over real loopback sockets: impostors, strangers, garbage,
//! truncated and oversized frames, invalid frames. Every case is refused and counted,
//! and the node keeps serving its good peers.

mod common;

use common::*;
use olympus_crypto::{Keypair, Scheme};
use olympus_net::client::client_hello;
use olympus_net::handshake::{Acceptor, HELLO_LEN};
use olympus_net::{Frame, Incoming, Origin};
use olympus_types::limits::MAX_FRAME_BYTES;
use olympus_types::NodeId;
use std::io::Write;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

/// Nodes 0 and 1 still exchange frames both ways.
fn still_serving(a: &Node, b: &Node, tag: u32) {
    a.call(move |h| async move {
        h.send(NodeId(1), Frame::from_body(&body(0, tag, 8)).unwrap())
            .await
            .unwrap()
    });
    b.call(move |h| async move {
        h.send(NodeId(0), Frame::from_body(&body(1, tag, 8)).unwrap())
            .await
            .unwrap()
    });
    assert_eq!(seq_of(b.recv().body()), (0, tag));
    assert_eq!(seq_of(a.recv().body()), (1, tag));
}

#[test]
fn impostors_and_strangers_are_refused_and_counted() {
    // A committee of 3; node 2's address is a hostile listener run by the test.
    let mut c = cluster(3);
    let hostile = c.listeners[2].take().unwrap();
    let a = Node::start(c.config(0));
    let b = Node::start(c.config(1));
    a.wait_connected(&[1]);
    b.wait_connected(&[0]);

    // Node 2's id with a key that is not node 2's: node 0 answers the hello (its own
    // signature is fine) but refuses the proof.
    let fake2 = Keypair::generate(Scheme::Bls, &[99; 32], NodeId(2));
    let before = a.snapshot();
    assert!(
        raw_dial(a.peer_addr, &fake2, &c.committee, NodeId(0)).is_err(),
        "impostor was welcomed"
    );
    eventually("bad signature counted", || {
        a.snapshot().refused_bad_signature > before.refused_bad_signature
    });

    // An id outside the committee: refused at the hello, before node 0 signs anything.
    let stranger = Keypair::generate(Scheme::Bls, &[99; 32], NodeId(9));
    assert!(raw_dial(a.peer_addr, &stranger, &c.committee, NodeId(0)).is_err());
    eventually("unknown peer counted", || {
        a.snapshot().refused_unknown_peer > before.refused_unknown_peer
    });

    // A node claiming to be node 1 but dialling with node 0's id is "ourselves".
    assert!(raw_dial(a.peer_addr, &c.keys[0], &c.committee, NodeId(0)).is_err());

    // The other direction: node 0 dials "node 2" and meets a listener that signs with
    // the wrong key; node 0 refuses it.
    let before = a.snapshot();
    let committee = c.committee.clone();
    let fake = Arc::new(fake2);
    let server = std::thread::spawn(move || serve_fake_listener(hostile, &fake, &committee));
    eventually("node 0 refuses the fake listener", || {
        a.snapshot().refused_bad_signature > before.refused_bad_signature
    });
    assert!(!a.call(|h| async move { h.is_connected(NodeId(2)) }));
    drop(server);

    let s = a.snapshot();
    assert!(s.handshakes_refused >= 4, "{s}");
    still_serving(&a, &b, 1);
}

/// Accepts connections on `l` and answers each hello with a challenge signed by `key`.
fn serve_fake_listener(l: TcpListener, key: &Keypair, committee: &olympus_crypto::Committee) {
    l.set_nonblocking(false).unwrap();
    for _ in 0..3 {
        let Ok((mut s, _)) = l.accept() else { return };
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let Ok(hello) = read_msg(&mut s, HELLO_LEN) else {
            continue;
        };
        // Node 0 says hello to node 2; we are "node 2" with the wrong key.
        if let Ok((_, challenge)) = Acceptor::on_hello(key, committee, &hello, [5; 32]) {
            let _ = s.write_all(&challenge);
            assert!(
                closed_by_peer(&mut s),
                "node 0 must hang up on a bad listener signature"
            );
        }
    }
}

#[test]
fn garbage_truncated_and_oversized_input_closes_the_link() {
    let mut c = cluster(3);
    let a = Node::start(c.config(0));
    let b = Node::start(c.config(1));
    a.wait_connected(&[1]);

    // Garbage instead of a hello: refused before anything is buffered.
    let mut s = raw_connect(a.peer_addr);
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert!(closed_by_peer(&mut s));
    eventually("garbage counted", || a.snapshot().refused_malformed >= 1);

    // A hello prefix announcing 4 GiB: refused on the prefix.
    let mut s = raw_connect(a.peer_addr);
    s.write_all(&u32::MAX.to_le_bytes()).unwrap();
    assert!(closed_by_peer(&mut s));
    eventually("huge hello counted", || a.snapshot().refused_malformed >= 2);

    // Half a hello, then EOF.
    let mut s = raw_connect(a.peer_addr);
    s.write_all(&[77, 0, 0, 0, b'o', b'l']).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(closed_by_peer(&mut s));
    eventually("truncated hello counted", || {
        a.snapshot().refused_timeout >= 1
    });

    // An authenticated peer (node 2's real key) that sends two good frames, then a
    // truncated one, then EOF: the good ones arrive, the link is closed and counted.
    let mut s = raw_dial(a.peer_addr, &c.keys[2], &c.committee, NodeId(0)).unwrap();
    s.write_all(&wire(&body(2, 0, 10))).unwrap();
    s.write_all(&wire(&body(2, 1, 10))).unwrap();
    s.write_all(&[100, 0, 0, 0, 1, 2, 3]).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    for seq in 0..2 {
        let m = a.recv();
        assert_eq!(m.origin(), Origin::Peer(NodeId(2)));
        assert_eq!(seq_of(m.body()), (2, seq));
    }
    assert!(closed_by_peer(&mut s));
    eventually("truncated frame counted", || {
        a.snapshot().frames_truncated == 1
    });

    // Authenticated, then a length prefix over the limit: closed, counted.
    let mut s = raw_dial(a.peer_addr, &c.keys[2], &c.committee, NodeId(0)).unwrap();
    s.write_all(&((MAX_FRAME_BYTES as u32) + 1).to_le_bytes())
        .unwrap();
    assert!(closed_by_peer(&mut s));
    eventually("oversized frame counted", || {
        a.snapshot().frames_oversized == 1
    });

    a.assert_quiet(Duration::from_millis(20));
    still_serving(&a, &b, 7);
    println!("node 0: {}", a.snapshot());
}

#[test]
fn invalid_frames_close_the_link_after_the_limit() {
    let mut c = cluster(3);
    let mut cfg = c.config(0);
    cfg.max_invalid_frames = 3;
    // The engine's cheap check: bodies starting with 0xff are invalid.
    cfg.validator = Some(Arc::new(|_, body: &[u8]| body.first() != Some(&0xff)));
    let a = Node::start(cfg);
    let b = Node::start(c.config(1));
    a.wait_connected(&[1]);

    let mut s = raw_dial(a.peer_addr, &c.keys[2], &c.committee, NodeId(0)).unwrap();
    s.write_all(&wire(&[0xff, 1])).unwrap();
    s.write_all(&wire(&body(2, 0, 8))).unwrap();
    s.write_all(&wire(&[0xff, 2])).unwrap();
    assert_eq!(seq_of(a.recv().body()), (2, 0));
    s.write_all(&wire(&[0xff, 3])).unwrap();
    assert!(
        closed_by_peer(&mut s),
        "third invalid frame closes the link"
    );
    let st = a.snapshot();
    assert_eq!((st.frames_invalid, st.links_closed_invalid), (3, 1), "{st}");

    // The engine reports what it could not decode: same accounting.
    let mut s = raw_dial(a.peer_addr, &c.keys[2], &c.committee, NodeId(0)).unwrap();
    for i in 0..3u32 {
        s.write_all(&wire(&body(2, i, 8))).unwrap();
        let m = a.recv();
        let origin = m.origin();
        a.call(move |h| async move { h.report_invalid(origin) });
    }
    assert!(closed_by_peer(&mut s));
    assert_eq!(a.snapshot().links_closed_invalid, 2);
    still_serving(&a, &b, 3);
}

#[test]
fn client_port_delivers_replies_and_refuses_abuse() {
    let mut c = cluster(2);
    let mut cfg = c.config(0);
    let client_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    cfg.client_listener = Some(client_listener);
    cfg.max_client_frame = 1024;
    let a = Node::start(cfg);
    let b = Node::start(c.config(1));
    let caddr = a.client_addr.unwrap();

    // A good client: hello, two requests, a reply back on the same connection.
    let mut s = raw_connect(caddr);
    s.write_all(client_hello(77).wire()).unwrap();
    s.write_all(&wire(b"req-1")).unwrap();
    s.write_all(&wire(b"req-2")).unwrap();
    let mut conns = Vec::new();
    for want in [&b"req-1"[..], b"req-2"] {
        match a.recv() {
            Incoming::Client { conn, client, body } => {
                assert_eq!((client, &body[..]), (77, want));
                conns.push(conn);
            }
            other => panic!("expected a client frame, got {other:?}"),
        }
    }
    assert_eq!(conns[0], conns[1]);
    let conn = conns[0];
    a.call(move |h| async move {
        h.reply(conn, Frame::from_body(b"receipt").unwrap())
            .await
            .unwrap()
    });
    assert_eq!(read_msg(&mut s, 7).unwrap(), b"receipt");

    // No hello, garbage instead.
    let mut g = raw_connect(caddr);
    g.write_all(b"\x10\x00\x00\x00this is no hello").unwrap();
    assert!(closed_by_peer(&mut g));
    eventually("bad hello counted", || a.snapshot().clients_refused == 1);

    // Oversized for a client (the client limit is 1 KiB here).
    let mut g = raw_connect(caddr);
    g.write_all(client_hello(5).wire()).unwrap();
    g.write_all(&2048u32.to_le_bytes()).unwrap();
    g.write_all(&[0u8; 2048]).unwrap();
    assert!(closed_by_peer(&mut g));
    eventually("client oversized counted", || {
        a.snapshot().frames_oversized == 1
    });

    // Truncated, then EOF.
    let mut g = raw_connect(caddr);
    g.write_all(client_hello(6).wire()).unwrap();
    g.write_all(&[50, 0, 0, 0, 1]).unwrap();
    g.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(closed_by_peer(&mut g));
    eventually("client truncated counted", || {
        a.snapshot().frames_truncated == 1
    });

    // The good client is still served, and so are the peers.
    s.write_all(&wire(b"req-3")).unwrap();
    assert_eq!(a.recv().body(), b"req-3");
    drop(s);
    eventually("client gone", || {
        a.call(|h| async move { h.client_count() }) == 0
    });
    let gone =
        a.call(move |h| async move { h.try_reply(conn, Frame::from_body(b"late").unwrap()) });
    assert!(gone.is_err());
    still_serving(&a, &b, 9);
    println!("node 0: {}", a.snapshot());
}
