//! The transport's counters: plain atomics, readable from any thread at any time.
//!
//! One [`NetStats`] per [`Network`](crate::Network), shared as `Arc<NetStats>` (see
//! [`NetHandle::stats`](crate::NetHandle::stats)); [`NetStats::snapshot`] copies every
//! counter into a [`StatsSnapshot`]. Updates use `Relaxed` ordering: each counter is
//! exact, but a snapshot is not one atomic cut across counters.

use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! counters {
    ($( $(#[$doc:meta])* $name:ident, )*) => {
        /// Live counters of one network (see the module documentation).
        #[derive(Default, Debug)]
        pub struct NetStats {
            $( $(#[$doc])* pub $name: AtomicU64, )*
        }

        /// A copy of every counter of [`NetStats`].
        #[derive(Default, Debug, Clone, Copy, PartialEq, Eq)]
        pub struct StatsSnapshot {
            $( $(#[$doc])* pub $name: u64, )*
        }

        impl NetStats {
            /// Reads every counter.
            pub fn snapshot(&self) -> StatsSnapshot {
                StatsSnapshot { $( $name: self.$name.load(Ordering::Relaxed), )* }
            }
        }

        impl std::fmt::Display for StatsSnapshot {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let mut first = true;
                $(
                    if self.$name != 0 {
                        if !first { f.write_str(" ")?; }
                        first = false;
                        write!(f, "{}={}", stringify!($name), self.$name)?;
                    }
                )*
                Ok(())
            }
        }
    };
}

counters! {
    /// Frames delivered to the inbox (peers and clients).
    frames_in,
    /// Body bytes of those frames.
    bytes_in,
    /// Frames written to sockets (peers and clients).
    frames_out,
    /// Wire bytes written (prefixes included).
    bytes_out,
    /// Write system calls made by the writers (`sendmsg` plus the writes that wait for
    /// room in the socket buffer). `frames_out / writes` is the coalescing factor.
    writes,
    /// Frames dropped because their link failed while they were being written, or
    /// because the network shut down with them queued.
    frames_lost,
    /// `try_send`/`broadcast`/`try_reply` calls refused because a queue was full.
    sends_refused,
    /// Peer handshakes completed (both directions).
    handshakes_ok,
    /// Peer handshakes refused or failed, for any reason (both directions).
    handshakes_refused,
    /// ... of which: the other side claimed an id outside the committee, or our own.
    refused_unknown_peer,
    /// ... of which: a signature did not verify.
    refused_bad_signature,
    /// ... of which: malformed or unexpected bytes, wrong version or committee.
    refused_malformed,
    /// ... of which: the handshake did not finish in time (or the socket failed).
    refused_timeout,
    /// Connections closed at accept because too many handshakes or clients were open.
    accepts_refused,
    /// Frames whose length prefix exceeded the limit (the link is closed).
    frames_oversized,
    /// Links closed at EOF in the middle of a frame.
    frames_truncated,
    /// Frames judged invalid by the validator or reported by the engine.
    frames_invalid,
    /// Links closed because they sent too many invalid frames.
    links_closed_invalid,
    /// Outbound links established after the first one to the same peer.
    reconnects,
    /// Failed connection attempts (refused, timed out, handshake failed).
    dial_failures,
    /// Outbound links that went down after being established.
    links_down,
    /// Client connections that completed their hello.
    clients_accepted,
    /// Client connections closed for a bad or missing hello.
    clients_refused,
}

impl StatsSnapshot {
    /// Frames per write system call: how well the writers coalesce.
    pub fn frames_per_write(&self) -> f64 {
        if self.writes == 0 {
            0.0
        } else {
            self.frames_out as f64 / self.writes as f64
        }
    }
}

/// `counter += n`, relaxed.
pub(crate) fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// `counter += 1`, relaxed.
pub(crate) fn inc(c: &AtomicU64) {
    add(c, 1);
}
