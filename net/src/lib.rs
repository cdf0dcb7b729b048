//! The io_uring TCP transport of olympus, on glommio 0.9.
//!
//! A node listens on its peer address and keeps one authenticated outbound link to every
//! other committee member; frames it receives are handed to the engine as bytes with the
//! authenticated sender. Clients use a separate port. Everything runs as tasks on the
//! current glommio executor (the network shard).
//!
//! # Modules
//!
//! - [`network`](Network): [`Network::start`], the engine's [`NetHandle`] (send, broadcast,
//!   reply, report invalid frames, stats, shutdown), the [`Inbox`] of [`Incoming`] frames,
//!   and the read and write loops every link runs.
//! - `peer` (private): the peer accept loop and inbound links; the per-peer dialer with
//!   reconnect and backoff, and its writer.
//! - [`client`]: the client port and its hello frame.
//! - [`handshake`]: the sans-IO peer handshake (the protocol is documented there).
//! - [`frame`]: [`Frame`], an outgoing frame shared by `Arc` — encoded once, never copied
//!   per peer.
//! - [`backoff`]: bounded exponential reconnect backoff with seeded jitter.
//! - [`config`]: [`NetConfig`], every named limit, the errors.
//! - [`stats`]: [`NetStats`], atomic counters.
//! - [`checks`]: start-up checks — kernel 5.8+, io_uring allowed, `RLIMIT_MEMLOCK`.
//! - [`rt`]: **the glommio seam** — sockets, vectored writes, timers, spawning and the
//!   executor builder; nothing else in the crate names glommio. The queues and cancel
//!   signals (`queue`, private) are executor-agnostic single-threaded futures.
//!
//! # Using it
//!
//! ```no_run
//! # use olympus_net::*;
//! # fn demo(cfg: NetConfig) {
//! olympus_net::checks::check_all(1).expect("start-up checks");
//! rt::executor_builder(glommio::Placement::Fixed(0))
//!     .spawn(move || async move {
//!         let (net, inbox) = Network::start(cfg).expect("listen");
//!         let vote = Frame::from_body(b"encoded message").expect("size");
//!         net.broadcast(&vote); // one buffer, n-1 queue entries
//!         while let Some(m) = inbox.recv().await {
//!             // untrusted bytes: decode with olympus_types::frame::decode, and on
//!             // failure: net.report_invalid(m.origin());
//!             if let Incoming::Client { conn, .. } = m {
//!                 let _ = net.try_reply(conn, Frame::from_body(b"receipt").expect("size"));
//!             }
//!         }
//!     })
//!     .expect("executor");
//! # }
//! ```
//!
//! # Invariants
//!
//! - **Every peer link is authenticated** before any frame moves on it, both ways: each
//!   side signs the other's fresh nonce with its committee key ([`handshake`]). Unknown
//!   ids, bad signatures, other committees and malformed messages are refused, counted
//!   and the connection closed. A handshake is bounded in time
//!   ([`handshake::HANDSHAKE_TIMEOUT`]), in size (fixed-size messages, the length prefix
//!   checked before the body is read) and in number
//!   ([`config::MAX_PENDING_HANDSHAKES`]).
//! - **Bytes from the network are never trusted.** Received bytes go through
//!   [`olympus_types::frame::FrameReader`], which refuses a length prefix over
//!   [`MAX_FRAME_BYTES`](olympus_types::limits::MAX_FRAME_BYTES) before buffering
//!   (clients: [`NetConfig::max_client_frame`]); an oversized or truncated frame closes
//!   the link and is counted. Bodies go up as bytes — this crate never interprets them —
//!   and invalid ones (per the optional [`Validator`], or reported by the engine with
//!   [`NetHandle::report_invalid`]) are counted, and close the link after
//!   [`NetConfig::max_invalid_frames`]. No code path panics or unwraps on anything a
//!   peer or client sends; the handshake parsers are tested on garbage of every length.
//! - **Everything is bounded**: per-peer and per-client send queues (frames and bytes;
//!   `try_send` refuses and counts, `send().await` waits), the inbox (readers stop
//!   reading, so TCP pushes back on the sender), read buffers (one frame), client
//!   connections, pending handshakes, reconnect delays. The limits are named constants
//!   in [`config`].
//! - **Delivery**: on one established link, frames arrive in order and exactly once.
//!   When a link fails, the frames being written are lost (counted); queued ones wait
//!   for the next link. A newer inbound link from a peer replaces an older one.
//! - **No copies per peer**: a broadcast queues `Arc` handles to one buffer, and the
//!   writer passes those buffers to one `sendmsg(2)` per wake-up (up to 1024 frames),
//!   so frames are coalesced without being copied in user space ([`rt`]).
//!
//! # Measured
//!
//! On the 2-core development VM (Linux 6.18), release build, two nodes on loopback, each
//! on its own executor, `examples/loopback.rs`: 1,000,000 frames of 64 body bytes in
//! 0.11–0.14 s, **7.0–8.8 M frames/s** (480–600 MB/s of wire), the writer averaging
//! **~1020 frames per write syscall** (977–986 `sendmsg` calls for the million); 1 KiB
//! bodies: 1.7–2.1 M frames/s (1.7–2.2 GB/s). The coalescing test queues 1000 frames in
//! one go and sees them leave in one syscall. (A loopback figure: no network, and the
//! receiver only counts frames.)
//!
//! Locked memory: a glommio 0.9 executor pins 3 × its io memory (at least 64 KiB), not
//! its rings, so with [`rt::IO_MEMORY`] = 64 KiB an executor costs 192 KiB and 42 fit
//! under an 8 MiB `RLIMIT_MEMLOCK`; glommio's default 10 MiB would cost 30 MiB each.
//! glommio also refuses to start below 512 KiB. Details in [`rt`] and [`checks`].
//!
//! # Not done yet
//!
//! - Frames after the handshake are neither encrypted nor MACed: authentication holds
//!   at connect time only (a TCP injector could add frames). A key exchange in the
//!   handshake and a per-frame MAC would fix it.
//! - [`NetHandle`] is local to the network's executor; other shards must go through the
//!   engine's cross-shard channels.
//! - Writes use `sendmsg(2)` plus glommio's io_uring readiness poll, not io_uring
//!   `IORING_OP_SENDMSG` or `MSG_ZEROCOPY` (which would help only for large frames).
//! - Counters are global per network, not per peer, and not yet exported through the
//!   `metrics` facade.

#![deny(clippy::undocumented_unsafe_blocks)]

pub mod backoff;
pub mod checks;
pub mod client;
pub mod config;
pub mod frame;
pub mod handshake;
mod network;
mod peer;
mod queue;
pub mod rt;
pub mod stats;

pub use config::{NetConfig, NetError, SendError, Validator};
pub use frame::Frame;
pub use network::{BroadcastReport, ClientConn, Inbox, Incoming, NetHandle, Network, Origin};
pub use stats::{NetStats, StatsSnapshot};
