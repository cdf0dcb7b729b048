//! The network: its shared state, the engine's handle on it, the inbox, and the read and
//! write loops every link runs.
//!
//! All of it lives on one executor (the network shard): state is `Rc`/`Cell`, tasks are
//! local, and [`NetHandle`] is `!Send`. Other shards reach the network through the
//! engine's cross-shard channels; frames cross shards as `Arc` buffers ([`Frame`]).

use crate::config::{NetConfig, NetError, SendError, Validator, MAX_WRITE_BATCH_BYTES, READ_CHUNK};
use crate::frame::Frame;
use crate::queue::{Cancel, PushError, Queue, Weighted};
use crate::rt::{self, Listener, Stream, MAX_IOV_PER_WRITE};
use crate::stats::{add, inc, NetStats};
use olympus_crypto::{Committee, Keypair};
use olympus_types::frame::{FrameReader, LEN_PREFIX};
use olympus_types::NodeId;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// One client connection, numbered by this node in accept order (never reused).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientConn(pub u64);

impl std::fmt::Display for ClientConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "c{}", self.0)
    }
}

/// Who sent a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Origin {
    /// An authenticated peer.
    Peer(NodeId),
    /// A client connection.
    Client(ClientConn),
}

/// A frame body received, with its authenticated origin. The body is untrusted bytes:
/// decode it with [`olympus_types::frame::decode`], and report a failure with
/// [`NetHandle::report_invalid`].
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    Peer {
        from: NodeId,
        body: Vec<u8>,
    },
    Client {
        conn: ClientConn,
        client: u64,
        body: Vec<u8>,
    },
}

impl Incoming {
    pub fn origin(&self) -> Origin {
        match self {
            Incoming::Peer { from, .. } => Origin::Peer(*from),
            Incoming::Client { conn, .. } => Origin::Client(*conn),
        }
    }
    pub fn body(&self) -> &[u8] {
        match self {
            Incoming::Peer { body, .. } | Incoming::Client { body, .. } => body,
        }
    }
}

impl Weighted for Incoming {
    fn weight(&self) -> usize {
        self.body().len()
    }
}

/// Received frames, in arrival order per link, for the engine. Bounded: while it is full
/// the readers stop reading their sockets.
pub struct Inbox {
    q: Queue<Incoming>,
}

impl Inbox {
    /// The next frame; `None` once the network is shut down and the inbox drained.
    pub async fn recv(&self) -> Option<Incoming> {
        self.q.pop().await
    }
    pub fn try_recv(&self) -> Option<Incoming> {
        self.q.try_pop()
    }
    pub fn len(&self) -> usize {
        self.q.len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What [`NetHandle::broadcast`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BroadcastReport {
    /// Peers whose queue took the frame.
    pub queued: usize,
    /// Peers whose queue was full (counted in `sends_refused`).
    pub refused: usize,
}

pub(crate) struct PeerSlot {
    pub(crate) addr: SocketAddr,
    pub(crate) queue: Queue<Frame>,
    pub(crate) connected: Cell<bool>,
}

/// A link that delivers frames: its cancel signal and its invalid-frame count.
pub(crate) struct LinkGuard {
    pub(crate) seq: u64,
    pub(crate) cancel: Cancel,
    pub(crate) invalid: Cell<u32>,
}

pub(crate) struct ClientSlot {
    pub(crate) link: Rc<LinkGuard>,
    pub(crate) queue: Queue<Frame>,
}

pub(crate) struct Limits {
    pub(crate) client_queue_bound: usize,
    pub(crate) client_queue_bytes: usize,
    pub(crate) max_clients: usize,
    pub(crate) max_client_frame: usize,
    pub(crate) max_invalid_frames: u32,
    pub(crate) backoff_min: Duration,
    pub(crate) backoff_max: Duration,
}

/// State shared by the handle and every task of one network.
pub(crate) struct Shared {
    pub(crate) me: NodeId,
    pub(crate) key: Arc<Keypair>,
    pub(crate) committee: Arc<Committee>,
    pub(crate) stats: Arc<NetStats>,
    pub(crate) limits: Limits,
    pub(crate) validator: Option<Validator>,
    pub(crate) inbox: Queue<Incoming>,
    pub(crate) peers: Vec<PeerSlot>,
    /// The current inbound link of each peer (a newer one replaces and closes an older).
    pub(crate) inbound: RefCell<HashMap<NodeId, Rc<LinkGuard>>>,
    pub(crate) clients: RefCell<HashMap<ClientConn, ClientSlot>>,
    pub(crate) pending_handshakes: Cell<usize>,
    pub(crate) pending_clients: Cell<usize>,
    pub(crate) next_seq: Cell<u64>,
    pub(crate) shutdown: Cancel,
    pub(crate) live_tasks: Cell<usize>,
    pub(crate) peer_addr: SocketAddr,
    pub(crate) client_addr: Option<SocketAddr>,
}

/// Decrements a counter when dropped (tasks may be dropped mid-await on shutdown).
pub(crate) struct CountGuard<'a>(pub(crate) &'a Cell<usize>);

impl<'a> CountGuard<'a> {
    pub(crate) fn new(c: &'a Cell<usize>) -> Self {
        c.set(c.get() + 1);
        CountGuard(c)
    }
}

impl Drop for CountGuard<'_> {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

impl Shared {
    /// Spawns a task that ends at shutdown at the latest.
    pub(crate) fn spawn(self: &Rc<Self>, fut: impl std::future::Future<Output = ()> + 'static) {
        let shared = self.clone();
        rt::spawn(async move {
            let _live = CountGuard::new(&shared.live_tasks);
            shared.shutdown.run(fut).await;
        });
    }

    pub(crate) fn next_seq(&self) -> u64 {
        let s = self.next_seq.get();
        self.next_seq.set(s + 1);
        s
    }

    pub(crate) fn new_link(&self) -> Rc<LinkGuard> {
        Rc::new(LinkGuard {
            seq: self.next_seq(),
            cancel: Cancel::new(),
            invalid: Cell::new(0),
        })
    }

    /// Counts an invalid frame against `link`; closes it at the limit.
    pub(crate) fn strike(&self, link: &LinkGuard) {
        inc(&self.stats.frames_invalid);
        let n = link.invalid.get().saturating_add(1);
        link.invalid.set(n);
        if n >= self.limits.max_invalid_frames && !link.cancel.is_cancelled() {
            inc(&self.stats.links_closed_invalid);
            link.cancel.cancel();
        }
    }

    /// Reads frames from `stream` into the inbox until the link ends. Oversized frames
    /// and truncated ones end it (counted); invalid ones (per the validator) are
    /// counted and dropped, and end it at the limit.
    pub(crate) async fn read_loop(
        &self,
        stream: &mut Stream,
        origin: Origin,
        client: u64,
        limit: usize,
        link: &LinkGuard,
    ) {
        let mut reader = FrameReader::new();
        let mut buf = vec![0u8; READ_CHUNK];
        loop {
            let n = match stream.read(&mut buf).await {
                Ok(0) => {
                    if reader.buffered() > 0 {
                        inc(&self.stats.frames_truncated);
                    }
                    return;
                }
                Ok(n) => n,
                Err(_) => return,
            };
            reader.extend(&buf[..n]);
            loop {
                let body = match reader.next_frame() {
                    Ok(Some(body)) => body,
                    Ok(None) => break,
                    Err(_) => {
                        inc(&self.stats.frames_oversized);
                        return;
                    }
                };
                if body.len() > limit {
                    inc(&self.stats.frames_oversized);
                    return;
                }
                if let Some(v) = &self.validator {
                    if !v(origin, &body) {
                        self.strike(link);
                        if link.cancel.is_cancelled() {
                            return;
                        }
                        continue;
                    }
                }
                inc(&self.stats.frames_in);
                add(&self.stats.bytes_in, body.len() as u64);
                let item = match origin {
                    Origin::Peer(from) => Incoming::Peer { from, body },
                    Origin::Client(conn) => Incoming::Client { conn, client, body },
                };
                if self.inbox.push(item).await.is_err() || link.cancel.is_cancelled() {
                    return;
                }
            }
            // Everything complete was taken: what is left is one partial frame, which
            // must still fit the limit.
            if reader.buffered() > limit + LEN_PREFIX {
                inc(&self.stats.frames_oversized);
                return;
            }
        }
    }

    /// Writes what `queue` holds, draining it on each wake-up, until the queue is closed
    /// (`Ok`) or the socket fails (`Err`; the frames being written are lost).
    pub(crate) async fn write_loop(
        &self,
        stream: &mut Stream,
        queue: &Queue<Frame>,
    ) -> std::io::Result<()> {
        let mut batch: Vec<Frame> = Vec::new();
        loop {
            if !queue.wait_nonempty().await {
                return Ok(());
            }
            queue.drain_into(&mut batch, MAX_IOV_PER_WRITE, MAX_WRITE_BATCH_BYTES);
            let bytes: usize = batch.iter().map(Frame::wire_len).sum();
            if let Err(e) = stream.write_frames(&batch, &self.stats).await {
                add(&self.stats.frames_lost, batch.len() as u64);
                return Err(e);
            }
            add(&self.stats.frames_out, batch.len() as u64);
            add(&self.stats.bytes_out, bytes as u64);
            batch.clear();
        }
    }
}

/// Starts networks; see [`Network::start`].
pub struct Network;

impl Network {
    /// Binds the listeners and starts every task of the network on the current glommio
    /// executor: the peer accept loop, one dialer-and-writer per peer, and the client
    /// accept loop if a client port is configured. Returns the engine's handle and the
    /// inbox. Must be called on a glommio executor thread.
    pub fn start(mut cfg: NetConfig) -> Result<(NetHandle, Inbox), NetError> {
        let n = cfg.committee.size();
        let bad = |m: String| Err(NetError::Config(m));
        if cfg.peer_addrs.len() != n {
            return bad(format!(
                "{} peer addresses for a committee of {n}",
                cfg.peer_addrs.len()
            ));
        }
        if cfg.me.index() >= n {
            return bad(format!(
                "{} is not a member of the committee of {n}",
                cfg.me
            ));
        }
        if cfg.key.id() != cfg.me {
            return bad(format!(
                "the key is {}'s, this node is {}",
                cfg.key.id(),
                cfg.me
            ));
        }
        if cfg.committee.public(cfg.me) != Some(cfg.key.public()) {
            return bad(format!("the key is not {}'s key in the committee", cfg.me));
        }
        if cfg.key.scheme() != cfg.committee.scheme() {
            return bad("the key and the committee use different schemes".into());
        }
        if cfg.queue_bound == 0
            || cfg.inbox_bound == 0
            || cfg.client_queue_bound == 0
            || cfg.max_invalid_frames == 0
        {
            return bad("queue bounds and max_invalid_frames must be at least 1".into());
        }
        let bind = |std: Option<std::net::TcpListener>, addr: Option<SocketAddr>| {
            let r = match std {
                Some(l) => Listener::from_std(l),
                None => match addr {
                    Some(addr) => Listener::bind(addr),
                    None => return Ok(None),
                },
            };
            let named = |source| NetError::Bind {
                addr: addr.map_or("a given listener".into(), |a| a.to_string()),
                source,
            };
            let l = r.map_err(named)?;
            let local = l.local_addr().map_err(named)?;
            Ok(Some((l, local)))
        };
        let Some((peer_listener, peer_addr)) = bind(
            cfg.peer_listener.take(),
            Some(cfg.peer_addrs[cfg.me.index()]),
        )?
        else {
            return bad("no peer listener".into());
        };
        let client = bind(cfg.client_listener.take(), cfg.client_addr)?;
        let client_addr = client.as_ref().map(|(_, a)| *a);
        let peers = cfg
            .peer_addrs
            .iter()
            .map(|&addr| PeerSlot {
                addr,
                queue: Queue::new(cfg.queue_bound, cfg.queue_bytes),
                connected: Cell::new(false),
            })
            .collect();
        let shared = Rc::new(Shared {
            me: cfg.me,
            key: cfg.key,
            committee: cfg.committee,
            stats: Arc::new(NetStats::default()),
            limits: Limits {
                client_queue_bound: cfg.client_queue_bound,
                client_queue_bytes: cfg.client_queue_bytes,
                max_clients: cfg.max_clients,
                max_client_frame: cfg.max_client_frame,
                max_invalid_frames: cfg.max_invalid_frames,
                backoff_min: cfg.backoff_min,
                backoff_max: cfg.backoff_max,
            },
            validator: cfg.validator,
            inbox: Queue::new(cfg.inbox_bound, cfg.inbox_bytes),
            peers,
            inbound: RefCell::new(HashMap::new()),
            clients: RefCell::new(HashMap::new()),
            pending_handshakes: Cell::new(0),
            pending_clients: Cell::new(0),
            next_seq: Cell::new(0),
            shutdown: Cancel::new(),
            live_tasks: Cell::new(0),
            peer_addr,
            client_addr,
        });
        shared.spawn(crate::peer::accept_loop(shared.clone(), peer_listener));
        for i in 0..n {
            if i != cfg.me.index() {
                shared.spawn(crate::peer::outbound(shared.clone(), NodeId(i as u16)));
            }
        }
        if let Some((l, _)) = client {
            shared.spawn(crate::client::accept_loop(shared.clone(), l));
        }
        let inbox = Inbox {
            q: shared.inbox.clone(),
        };
        Ok((NetHandle { shared }, inbox))
    }
}

/// The engine's handle on a running network. Cheap to clone; local to the network's
/// executor.
#[derive(Clone)]
pub struct NetHandle {
    shared: Rc<Shared>,
}

impl NetHandle {
    pub fn me(&self) -> NodeId {
        self.shared.me
    }

    /// The address the peer listener is bound to.
    pub fn peer_addr(&self) -> SocketAddr {
        self.shared.peer_addr
    }

    /// The address the client listener is bound to, if there is one.
    pub fn client_addr(&self) -> Option<SocketAddr> {
        self.shared.client_addr
    }

    /// The live counters (shareable with other threads).
    pub fn stats(&self) -> Arc<NetStats> {
        self.shared.stats.clone()
    }

    fn slot(&self, to: NodeId) -> Result<&PeerSlot, SendError> {
        if to == self.shared.me {
            return Err(SendError::UnknownPeer(to));
        }
        self.shared
            .peers
            .get(to.index())
            .ok_or(SendError::UnknownPeer(to))
    }

    /// Queues `frame` for `to`, or refuses at once if its queue is full (counted).
    pub fn try_send(&self, to: NodeId, frame: Frame) -> Result<(), SendError> {
        match self.slot(to)?.queue.try_push(frame) {
            Ok(()) => Ok(()),
            Err(PushError::Full(_)) => {
                inc(&self.shared.stats.sends_refused);
                Err(SendError::Full)
            }
            Err(PushError::Closed(_)) => Err(SendError::Closed),
        }
    }

    /// Queues `frame` for `to`, waiting while its queue is full (backpressure).
    pub async fn send(&self, to: NodeId, frame: Frame) -> Result<(), SendError> {
        self.slot(to)?
            .queue
            .push(frame)
            .await
            .map_err(|_| SendError::Closed)
    }

    /// Queues `frame` for every peer without waiting; full queues are skipped and
    /// counted. The peers share the frame's bytes (no copy per peer).
    pub fn broadcast(&self, frame: &Frame) -> BroadcastReport {
        let mut report = BroadcastReport::default();
        for (i, _) in self
            .shared
            .peers
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != self.shared.me.index())
        {
            match self.try_send(NodeId(i as u16), frame.clone()) {
                Ok(()) => report.queued += 1,
                Err(_) => report.refused += 1,
            }
        }
        report
    }

    /// Queues `frame` for every peer, waiting for room in each queue in turn.
    pub async fn broadcast_wait(&self, frame: &Frame) -> Result<(), SendError> {
        for i in (0..self.shared.peers.len()).filter(|i| *i != self.shared.me.index()) {
            self.send(NodeId(i as u16), frame.clone()).await?;
        }
        Ok(())
    }

    /// Queues a reply to a client connection, or refuses at once if its queue is full
    /// (counted) or the connection is gone.
    pub fn try_reply(&self, conn: ClientConn, frame: Frame) -> Result<(), SendError> {
        let clients = self.shared.clients.borrow();
        let slot = clients.get(&conn).ok_or(SendError::UnknownClient(conn.0))?;
        match slot.queue.try_push(frame) {
            Ok(()) => Ok(()),
            Err(PushError::Full(_)) => {
                inc(&self.shared.stats.sends_refused);
                Err(SendError::Full)
            }
            Err(PushError::Closed(_)) => Err(SendError::UnknownClient(conn.0)),
        }
    }

    /// Queues a reply to a client connection, waiting while its queue is full.
    pub async fn reply(&self, conn: ClientConn, frame: Frame) -> Result<(), SendError> {
        let queue = {
            let clients = self.shared.clients.borrow();
            clients
                .get(&conn)
                .ok_or(SendError::UnknownClient(conn.0))?
                .queue
                .clone()
        };
        queue
            .push(frame)
            .await
            .map_err(|_| SendError::UnknownClient(conn.0))
    }

    /// Reports a frame from `origin` that the engine could not decode or validate:
    /// counted in `frames_invalid`; the link is closed after
    /// [`NetConfig::max_invalid_frames`] such reports.
    pub fn report_invalid(&self, origin: Origin) {
        let link = match origin {
            Origin::Peer(id) => self.shared.inbound.borrow().get(&id).cloned(),
            Origin::Client(conn) => self
                .shared
                .clients
                .borrow()
                .get(&conn)
                .map(|c| c.link.clone()),
        };
        match link {
            Some(link) => self.shared.strike(&link),
            None => inc(&self.shared.stats.frames_invalid),
        }
    }

    /// Frames queued for `to` and not yet written.
    pub fn queue_len(&self, to: NodeId) -> usize {
        self.slot(to).map(|s| s.queue.len()).unwrap_or(0)
    }

    /// Whether the outbound link to `to` is established.
    pub fn is_connected(&self, to: NodeId) -> bool {
        self.slot(to).map(|s| s.connected.get()).unwrap_or(false)
    }

    /// Open client connections.
    pub fn client_count(&self) -> usize {
        self.shared.clients.borrow().len()
    }

    /// Stops every task, closes every socket and queue (queued frames are dropped and
    /// counted as lost), and waits up to a second for the tasks to finish.
    pub async fn shutdown(&self) {
        let s = &self.shared;
        for p in &s.peers {
            add(&s.stats.frames_lost, p.queue.len() as u64);
            p.queue.close();
        }
        for c in s.clients.borrow().values() {
            c.queue.close();
        }
        s.inbox.close();
        s.shutdown.cancel();
        for _ in 0..1000 {
            if s.live_tasks.get() == 0 {
                break;
            }
            rt::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Whether [`NetHandle::shutdown`] was called.
    pub fn is_shut_down(&self) -> bool {
        self.shared.shutdown.is_cancelled()
    }
}
