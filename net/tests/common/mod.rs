//! Test harness: nodes on their own glommio executor threads, driven from the test thread
//! through std channels, and blocking raw clients that speak (or abuse) the protocol.
#![allow(dead_code)]

use glommio::Placement;
use olympus_crypto::{generate_committee, Committee, Keypair, Scheme};
use olympus_net::handshake::{check_prefix, fresh_nonce, Dialer, CHALLENGE_LEN, WELCOME_LEN};
use olympus_net::{rt, Incoming, NetConfig, NetHandle, NetStats, Network, StatsSnapshot};
use olympus_types::NodeId;
use std::future::Future;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::pin::Pin;
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long any single wait in a test may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(20);

type Job = Box<dyn FnOnce(NetHandle) -> Pin<Box<dyn Future<Output = ()>>> + Send>;

pub struct Cluster {
    pub committee: Arc<Committee>,
    pub keys: Vec<Arc<Keypair>>,
    pub addrs: Vec<SocketAddr>,
    pub listeners: Vec<Option<TcpListener>>,
}

/// A committee of `n` BLS keys and `n` peer listeners bound on loopback port 0.
pub fn cluster(n: usize) -> Cluster {
    let (committee, keys) = generate_committee(Scheme::Bls, &[7; 32], n).unwrap();
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    Cluster {
        committee: Arc::new(committee),
        keys: keys.into_iter().map(Arc::new).collect(),
        addrs: listeners.iter().map(|l| l.local_addr().unwrap()).collect(),
        listeners: listeners.into_iter().map(Some).collect(),
    }
}

impl Cluster {
    /// The default configuration of node `i`, using its pre-bound listener if unused.
    pub fn config(&mut self, i: usize) -> NetConfig {
        let mut cfg = NetConfig::new(
            NodeId(i as u16),
            self.addrs.clone(),
            self.keys[i].clone(),
            self.committee.clone(),
        );
        cfg.peer_listener = self.listeners[i].take();
        cfg.backoff_min = Duration::from_millis(20);
        cfg.backoff_max = Duration::from_millis(200);
        cfg
    }
}

pub struct Node {
    pub id: NodeId,
    cmd: Sender<Option<Job>>,
    pub events: Receiver<Incoming>,
    pub stats: Arc<NetStats>,
    pub peer_addr: SocketAddr,
    pub client_addr: Option<SocketAddr>,
    join: Option<glommio::ExecutorJoinHandle<()>>,
}

impl Node {
    /// Starts a node with `cfg` on a fresh executor thread.
    pub fn start(cfg: NetConfig) -> Node {
        let id = cfg.me;
        let (cmd_tx, cmd_rx) = channel::<Option<Job>>();
        let (ev_tx, ev_rx) = channel();
        let (ready_tx, ready_rx) = channel();
        let join = rt::executor_builder(Placement::Unbound)
            .name(&format!("node{}", id.0))
            .spawn(move || async move {
                let (h, inbox) = match Network::start(cfg) {
                    Ok(x) => x,
                    Err(e) => panic!("network start: {e}"),
                };
                ready_tx
                    .send((h.stats(), h.peer_addr(), h.client_addr()))
                    .unwrap();
                glommio::spawn_local(async move {
                    while let Some(m) = inbox.recv().await {
                        if ev_tx.send(m).is_err() {
                            break;
                        }
                    }
                })
                .detach();
                loop {
                    match cmd_rx.try_recv() {
                        Ok(Some(job)) => job(h.clone()).await,
                        Ok(None) | Err(std::sync::mpsc::TryRecvError::Disconnected) => break,
                        Err(std::sync::mpsc::TryRecvError::Empty) => {
                            glommio::timer::sleep(Duration::from_millis(1)).await
                        }
                    }
                }
                h.shutdown().await;
            })
            .unwrap();
        let (stats, peer_addr, client_addr) =
            ready_rx.recv_timeout(WAIT).expect("node did not start");
        Node {
            id,
            cmd: cmd_tx,
            events: ev_rx,
            stats,
            peer_addr,
            client_addr,
            join: Some(join),
        }
    }

    /// Runs `f` on the node's executor and returns its result.
    pub fn call<R, F, Fut>(&self, f: F) -> R
    where
        F: FnOnce(NetHandle) -> Fut + Send + 'static,
        Fut: Future<Output = R> + 'static,
        R: Send + 'static,
    {
        let (tx, rx) = channel();
        let job: Job = Box::new(move |h| {
            Box::pin(async move {
                let _ = tx.send(f(h).await);
            })
        });
        self.cmd.send(Some(job)).expect("node is gone");
        rx.recv_timeout(WAIT).expect("node call timed out")
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// The next received frame.
    pub fn recv(&self) -> Incoming {
        match self.events.recv_timeout(WAIT) {
            Ok(m) => m,
            Err(RecvTimeoutError::Timeout) => panic!(
                "{}: no frame within {WAIT:?}; stats: {}",
                self.id,
                self.snapshot()
            ),
            Err(e) => panic!("{}: {e}", self.id),
        }
    }

    /// Nothing more arrives within `d`.
    pub fn assert_quiet(&self, d: Duration) {
        if let Ok(m) = self.events.recv_timeout(d) {
            panic!("{}: unexpected frame {m:?}", self.id);
        }
    }

    /// Waits until the outbound links to all of `peers` are up.
    pub fn wait_connected(&self, peers: &[usize]) {
        let peers: Vec<NodeId> = peers.iter().map(|&p| NodeId(p as u16)).collect();
        let deadline = Instant::now() + WAIT;
        loop {
            let p = peers.clone();
            if self.call(move |h| async move { p.iter().all(|&p| h.is_connected(p)) }) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{}: links to {peers:?} not up; stats: {}",
                self.id,
                self.snapshot()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Shuts the network down and stops the executor thread.
    pub fn stop(mut self) {
        self.stop_inner();
    }

    fn stop_inner(&mut self) {
        let _ = self.cmd.send(None);
        if let Some(j) = self.join.take() {
            j.join().expect("executor failed");
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.stop_inner();
        }
    }
}

/// Waits until `cond` holds, failing the test after [`WAIT`].
pub fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A body that names its sender and sequence number.
pub fn body(from: usize, seq: u32, len: usize) -> Vec<u8> {
    let mut b = vec![from as u8; len.max(5)];
    b[1..5].copy_from_slice(&seq.to_le_bytes());
    b
}

pub fn seq_of(body: &[u8]) -> (u8, u32) {
    (body[0], u32::from_le_bytes(body[1..5].try_into().unwrap()))
}

/// A blocking raw connection with read and write timeouts.
pub fn raw_connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Reads one length-prefixed message whose body must be `expected` bytes.
pub fn read_msg(s: &mut TcpStream, expected: usize) -> std::io::Result<Vec<u8>> {
    let mut prefix = [0u8; 4];
    s.read_exact(&mut prefix)?;
    let len = check_prefix(prefix, expected).map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut body = vec![0u8; len];
    s.read_exact(&mut body)?;
    Ok(body)
}

/// Dials `addr` as `key.id()` and runs the handshake with `target`; `Ok` if welcomed.
pub fn raw_dial(
    addr: SocketAddr,
    key: &Keypair,
    committee: &Committee,
    target: NodeId,
) -> std::io::Result<TcpStream> {
    let mut s = raw_connect(addr);
    let d = Dialer::new(key, committee, target, fresh_nonce());
    s.write_all(&d.hello())?;
    let challenge = read_msg(&mut s, CHALLENGE_LEN)?;
    let proof = d
        .on_challenge(&challenge)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    s.write_all(&proof)?;
    let welcome = read_msg(&mut s, WELCOME_LEN)?;
    d.on_welcome(&welcome)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(s)
}

/// True once the other side has closed `s` (EOF or reset), within the read timeout.
pub fn closed_by_peer(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
}

pub fn wire(body: &[u8]) -> Vec<u8> {
    let mut w = (body.len() as u32).to_le_bytes().to_vec();
    w.extend_from_slice(body);
    w
}
