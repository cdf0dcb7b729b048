//! The runtime seam: everything glommio-specific lives in this module.
//!
//! The rest of the crate sees a few functions (`spawn`, `sleep`, `timeout`) and two
//! types, `Listener` and `Stream`, each a thin wrapper around a glommio io_uring
//! socket. Another io_uring runtime can replace glommio by reimplementing this file.
//!
//! # Vectored writes
//!
//! glommio's `TcpStream` writes one buffer per call (its `poll_write_vectored` is the
//! default that takes only the first buffer), so `Stream::write_frames` makes the
//! system call itself: one `sendmsg(2)` with an `iovec` per frame (up to
//! [`MAX_IOV_PER_WRITE`]), `MSG_DONTWAIT | MSG_NOSIGNAL`, straight from the frames'
//! shared buffers — no user-space copy, many frames per system call. Only when the
//! socket buffer is full (`EAGAIN`) does it fall back to glommio's own write of the
//! next slice, which parks the task on io_uring until the socket is writable, and then
//! goes back to `sendmsg`. (glommio's own socket path is the same idea — an optimistic
//! non-blocking syscall, then an io_uring poll — so this adds no new mechanism.)
//!
//! # Executors and locked memory
//!
//! [`executor_builder`] makes glommio executors sized for a network shard:
//! [`IO_MEMORY`] of registered io memory and [`RING_DEPTH`] entries per ring. Measured
//! on Linux 6.18 with glommio 0.9 (`net/examples/memlock_probe.rs`, reading `VmPin` of
//! `/proc/self/status`): an executor pins **3 × io_memory** (glommio registers its io
//! buffer with each of its three rings — main, latency, poll), rounded up to 4 KiB and
//! at least 64 KiB; the rings themselves are charged to the memory cgroup, not to
//! `RLIMIT_MEMLOCK`, on kernels 5.12 and later. So:
//!
//! | io_memory | pinned per executor | executors under 8 MiB |
//! |-----------|---------------------|-----------------------|
//! | 64 KiB (our default) | 192 KiB | 42 |
//! | 1 MiB | 3 MiB | 2 |
//! | 10 MiB (glommio's default) | 30 MiB | 0 |
//!
//! When registration does not fit, glommio logs a warning and runs without registered
//! buffers (we saw 2 of 4 executors with 1 MiB register, the others fall back), so the
//! limit shows up as a slowdown of glommio's file I/O rather than an error; sockets never
//! use those buffers. glommio also refuses to start at all when `RLIMIT_MEMLOCK` is below
//! 512 KiB, whatever io_memory is. A process with `CAP_IPC_LOCK` (root, typically) is
//! not limited (we measured 30 MiB pinned per default executor under an 8 MiB limit).
//! [`crate::checks::check_memlock`] turns these facts into a start-up check.

use crate::frame::Frame;
use crate::stats::{inc, NetStats};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd};
use std::time::Duration;

/// Registered io memory per executor (glommio's minimum; glommio's default is 10 MiB).
pub const IO_MEMORY: usize = 64 * 1024;
/// Submission queue entries per io_uring ring (glommio's default).
pub const RING_DEPTH: usize = 128;
/// How long written data may stay unacknowledged before the kernel drops the
/// connection (`TCP_USER_TIMEOUT`): a peer that vanished without a reset is noticed,
/// and its link redialled, instead of its writer waiting on a full socket forever.
pub const TCP_USER_TIMEOUT: Duration = Duration::from_secs(30);
/// Most frames in one `sendmsg(2)` (Linux's `IOV_MAX`).
pub const MAX_IOV_PER_WRITE: usize = 1024;

/// A glommio executor builder with this crate's io memory and ring depth (see the module
/// documentation for what they cost in locked memory).
pub fn executor_builder(placement: glommio::Placement) -> glommio::LocalExecutorBuilder {
    glommio::LocalExecutorBuilder::new(placement)
        .io_memory(IO_MEMORY)
        .ring_depth(RING_DEPTH)
}

/// Runs `fut` as a detached task on the current executor.
pub(crate) fn spawn(fut: impl Future<Output = ()> + 'static) {
    glommio::spawn_local(fut).detach();
}

pub(crate) async fn sleep(d: Duration) {
    glommio::timer::sleep(d).await;
}

/// `fut`'s output, or `None` if it did not finish within `d` (then it is dropped).
pub(crate) async fn timeout<T>(d: Duration, fut: impl Future<Output = T>) -> Option<T> {
    futures_lite::future::or(async { Some(fut.await) }, async {
        sleep(d).await;
        None
    })
    .await
}

/// A listening TCP socket on the current executor.
pub(crate) struct Listener(TcpListener);

impl Listener {
    /// Binds `addr` (with `SO_REUSEADDR`, not `SO_REUSEPORT`: a second process on the
    /// same port is an error, not a silent split of the connections).
    pub(crate) fn bind(addr: SocketAddr) -> io::Result<Listener> {
        Self::from_std(std::net::TcpListener::bind(addr)?)
    }

    /// Adopts a listener bound elsewhere (tests, socket activation).
    pub(crate) fn from_std(l: std::net::TcpListener) -> io::Result<Listener> {
        l.set_nonblocking(false)?;
        let fd = l.into_raw_fd();
        // SAFETY: `fd` is a bound, listening TCP socket that we own (`into_raw_fd` gave
        // up std's ownership); glommio takes it over and closes it on drop.
        Ok(Listener(unsafe { TcpListener::from_raw_fd(fd) }))
    }

    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr().map_err(io::Error::from)
    }

    pub(crate) async fn accept(&self) -> io::Result<Stream> {
        let s = Stream(self.0.accept().await.map_err(io::Error::from)?);
        s.tune();
        Ok(s)
    }
}

/// A connected TCP socket on the current executor.
pub(crate) struct Stream(TcpStream);

impl Stream {
    pub(crate) async fn connect(addr: SocketAddr, limit: Duration) -> io::Result<Stream> {
        let s = Stream(
            TcpStream::connect_timeout(addr, limit)
                .await
                .map_err(io::Error::from)?,
        );
        s.tune();
        Ok(s)
    }

    /// `TCP_NODELAY` (latency matters more than packet count: the writers already
    /// coalesce) and [`TCP_USER_TIMEOUT`]. Best effort: a socket without them still works.
    fn tune(&self) {
        let _ = self.0.set_nodelay(true);
        let ms = TCP_USER_TIMEOUT.as_millis() as libc::c_uint;
        // SAFETY: setsockopt(2) reads `size_of::<c_uint>()` bytes from `&ms`, which lives
        // across the call.
        unsafe {
            libc::setsockopt(
                self.0.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_USER_TIMEOUT,
                (&ms as *const libc::c_uint).cast(),
                std::mem::size_of::<libc::c_uint>() as libc::socklen_t,
            )
        };
    }

    /// A second handle on the same socket (`dup(2)`), so one task can read while another
    /// writes. The socket closes when both are dropped.
    pub(crate) fn try_clone(&self) -> io::Result<Stream> {
        // SAFETY: `F_DUPFD_CLOEXEC` on our own open descriptor has no memory effects.
        let fd = unsafe { libc::fcntl(self.0.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor of a connected TCP socket that nothing else
        // owns; glommio closes it on drop.
        Ok(Stream(unsafe { TcpStream::from_raw_fd(fd) }))
    }

    /// Shuts both directions down, which also wakes a reader on a duplicate handle.
    pub(crate) fn shutdown(&self) {
        // SAFETY: shutdown(2) on our own descriptor has no memory effects.
        unsafe { libc::shutdown(self.0.as_raw_fd(), libc::SHUT_RDWR) };
    }

    pub(crate) async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf).await
    }

    pub(crate) async fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        self.0.read_exact(buf).await
    }

    pub(crate) async fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.write_all(buf).await
    }

    /// Writes every frame, in order, with as few system calls as the socket allows (see
    /// the module documentation); each call is counted in `stats.writes`.
    pub(crate) async fn write_frames(
        &mut self,
        frames: &[Frame],
        stats: &NetStats,
    ) -> io::Result<()> {
        let fd = self.0.as_raw_fd();
        let (mut idx, mut off) = (0usize, 0usize);
        let mut iov: Vec<libc::iovec> = Vec::with_capacity(frames.len().min(MAX_IOV_PER_WRITE));
        while idx < frames.len() {
            iov.clear();
            for (k, f) in frames[idx..].iter().take(MAX_IOV_PER_WRITE).enumerate() {
                let bytes = if k == 0 { &f.wire()[off..] } else { f.wire() };
                iov.push(libc::iovec {
                    iov_base: bytes.as_ptr() as *mut libc::c_void,
                    iov_len: bytes.len(),
                });
            }
            // SAFETY: a zeroed msghdr is valid (no address, no control data); `msg_iov`
            // points at `iov.len()` iovecs, each describing a live, immutable slice of a
            // frame in `frames`, all of which outlive the call.
            let sent = unsafe {
                let mut msg: libc::msghdr = std::mem::zeroed();
                msg.msg_iov = iov.as_mut_ptr();
                msg.msg_iovlen = iov.len() as _;
                libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
            };
            inc(&stats.writes);
            let mut n = if sent >= 0 {
                sent as usize
            } else {
                let err = io::Error::last_os_error();
                match err.kind() {
                    io::ErrorKind::Interrupted => continue,
                    io::ErrorKind::WouldBlock => {
                        // Park until writable via glommio, writing the next slice.
                        let n = self.0.write(&frames[idx].wire()[off..]).await?;
                        inc(&stats.writes);
                        if n == 0 {
                            return Err(io::ErrorKind::WriteZero.into());
                        }
                        n
                    }
                    _ => return Err(err),
                }
            };
            while n > 0 && idx < frames.len() {
                let left = frames[idx].wire_len() - off;
                if n >= left {
                    n -= left;
                    idx += 1;
                    off = 0;
                } else {
                    off += n;
                    n = 0;
                }
            }
        }
        Ok(())
    }
}
