//! The network's configuration, its named limits and its errors.

use crate::backoff::{DEFAULT_BACKOFF_MAX, DEFAULT_BACKOFF_MIN};
use olympus_crypto::{Committee, Keypair};
use olympus_types::NodeId;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Frames queued for one peer before `try_send` refuses and `send` waits.
pub const DEFAULT_PEER_QUEUE_FRAMES: usize = 4096;
/// Bytes queued for one peer before `try_send` refuses and `send` waits (a single frame
/// larger than this is still accepted into an empty queue).
pub const DEFAULT_PEER_QUEUE_BYTES: usize = 64 << 20;
/// Frames waiting in the inbox for the engine before readers stop reading their sockets
/// (TCP then pushes back on the senders).
pub const DEFAULT_INBOX_FRAMES: usize = 8192;
/// Bytes waiting in the inbox (see [`DEFAULT_INBOX_FRAMES`]).
pub const DEFAULT_INBOX_BYTES: usize = 128 << 20;
/// Replies queued for one client connection before `try_reply` refuses.
pub const DEFAULT_CLIENT_QUEUE_FRAMES: usize = 1024;
/// Bytes of replies queued for one client connection.
pub const DEFAULT_CLIENT_QUEUE_BYTES: usize = 4 << 20;
/// Client connections open at once (beyond this, new ones are closed at accept).
pub const DEFAULT_MAX_CLIENTS: usize = 1024;
/// Largest frame a client may send (peers may send up to
/// [`MAX_FRAME_BYTES`](olympus_types::limits::MAX_FRAME_BYTES)). With
/// [`DEFAULT_MAX_CLIENTS`] this bounds client read buffers to 256 MiB.
pub const DEFAULT_MAX_CLIENT_FRAME: usize = 256 << 10;
/// Invalid frames a link may send before it is closed.
pub const DEFAULT_MAX_INVALID_FRAMES: u32 = 16;
/// Peer connections accepted but not yet through their handshake, at once.
pub const MAX_PENDING_HANDSHAKES: usize = 64;
/// How long a client has to send its hello frame.
pub const CLIENT_HELLO_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a TCP connect to a peer may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Bytes asked of the socket per read.
pub const READ_CHUNK: usize = 64 << 10;
/// Most bytes one writer wake-up drains from a queue into one write.
pub const MAX_WRITE_BATCH_BYTES: usize = 4 << 20;

/// Judges a received frame body before it is delivered: `false` drops it and counts an
/// invalid frame against the link (see [`NetConfig::max_invalid_frames`]). Runs on the
/// network's executor, on every frame: keep it cheap (rkyv validation, not a signature
/// check).
pub type Validator = Arc<dyn Fn(crate::Origin, &[u8]) -> bool + Send + Sync>;

/// Everything [`Network::start`](crate::Network::start) needs. Build with
/// [`NetConfig::new`] and adjust the public fields.
pub struct NetConfig {
    /// This node.
    pub me: NodeId,
    /// Every node's peer address, indexed by node id; `peer_addrs[me]` is where this
    /// node listens (unless [`NetConfig::peer_listener`] is given).
    pub peer_addrs: Vec<SocketAddr>,
    /// Where clients connect; `None` for no client port.
    pub client_addr: Option<SocketAddr>,
    /// This node's key; `key.id()` must be `me` and its public key the committee's.
    pub key: Arc<Keypair>,
    /// The committee: one member per entry of `peer_addrs`.
    pub committee: Arc<Committee>,
    /// See [`DEFAULT_PEER_QUEUE_FRAMES`].
    pub queue_bound: usize,
    /// See [`DEFAULT_PEER_QUEUE_BYTES`].
    pub queue_bytes: usize,
    /// See [`DEFAULT_INBOX_FRAMES`].
    pub inbox_bound: usize,
    /// See [`DEFAULT_INBOX_BYTES`].
    pub inbox_bytes: usize,
    /// See [`DEFAULT_CLIENT_QUEUE_FRAMES`].
    pub client_queue_bound: usize,
    /// See [`DEFAULT_CLIENT_QUEUE_BYTES`].
    pub client_queue_bytes: usize,
    /// See [`DEFAULT_MAX_CLIENTS`].
    pub max_clients: usize,
    /// See [`DEFAULT_MAX_CLIENT_FRAME`].
    pub max_client_frame: usize,
    /// See [`DEFAULT_MAX_INVALID_FRAMES`].
    pub max_invalid_frames: u32,
    /// First reconnect delay (see [`crate::backoff`]).
    pub backoff_min: Duration,
    /// Largest reconnect delay.
    pub backoff_max: Duration,
    /// Optional check of every received frame (see [`Validator`]).
    pub validator: Option<Validator>,
    /// An already bound peer listener to use instead of binding `peer_addrs[me]`.
    pub peer_listener: Option<std::net::TcpListener>,
    /// An already bound client listener to use instead of binding `client_addr`.
    pub client_listener: Option<std::net::TcpListener>,
}

impl NetConfig {
    /// A configuration with every limit at its default and no client port.
    pub fn new(
        me: NodeId,
        peer_addrs: Vec<SocketAddr>,
        key: Arc<Keypair>,
        committee: Arc<Committee>,
    ) -> Self {
        NetConfig {
            me,
            peer_addrs,
            client_addr: None,
            key,
            committee,
            queue_bound: DEFAULT_PEER_QUEUE_FRAMES,
            queue_bytes: DEFAULT_PEER_QUEUE_BYTES,
            inbox_bound: DEFAULT_INBOX_FRAMES,
            inbox_bytes: DEFAULT_INBOX_BYTES,
            client_queue_bound: DEFAULT_CLIENT_QUEUE_FRAMES,
            client_queue_bytes: DEFAULT_CLIENT_QUEUE_BYTES,
            max_clients: DEFAULT_MAX_CLIENTS,
            max_client_frame: DEFAULT_MAX_CLIENT_FRAME,
            max_invalid_frames: DEFAULT_MAX_INVALID_FRAMES,
            backoff_min: DEFAULT_BACKOFF_MIN,
            backoff_max: DEFAULT_BACKOFF_MAX,
            validator: None,
            peer_listener: None,
            client_listener: None,
        }
    }
}

/// Why the network could not start.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("invalid network configuration: {0}")]
    Config(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
}

/// Why a frame was not queued.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// The destination's queue is at its bound (counted in `sends_refused`).
    #[error("the queue is full")]
    Full,
    /// Not a peer of this node (outside the committee, or this node itself).
    #[error("{0} is not a peer")]
    UnknownPeer(NodeId),
    /// No open client connection with this id.
    #[error("no client connection {0}")]
    UnknownClient(u64),
    /// The network was shut down.
    #[error("the network is shut down")]
    Closed,
}
