//! Peer links: the accept loop and the inbound (receiving) side of each link, and the
//! outbound side — a dialer that keeps one connection to each peer, with reconnect and
//! backoff, and the writer that drains the peer's queue into it.
//!
//! Between two nodes A and B there are two connections: A dials B and only writes on
//! it, B dials A and only writes on it. Each is authenticated by the handshake of
//! [`crate::handshake`] before any frame moves. A newer inbound connection from a peer
//! replaces (and closes) an older one, so a peer that restarted is not shadowed by its
//! own stale link.
//!
//! Delivery: on one established connection, frames arrive in order and exactly once.
//! When a connection fails, the frames being written at that moment are lost (counted in
//! `frames_lost`); frames still queued wait (bounded) for the next connection. Protocols
//! recover from loss as they do from a slow or crashed peer.

use crate::backoff::Backoff;
use crate::config::CONNECT_TIMEOUT;
use crate::config::MAX_PENDING_HANDSHAKES;
use crate::handshake::{
    check_prefix, fresh_nonce, Acceptor, Dialer, HandshakeError, CHALLENGE_LEN, HANDSHAKE_TIMEOUT,
    HELLO_LEN, PROOF_LEN, WELCOME_LEN,
};
use crate::network::{CountGuard, Origin, Shared};
use crate::rt::{self, Listener, Stream};
use crate::stats::{inc, NetStats};
use olympus_types::frame::LEN_PREFIX;
use olympus_types::limits::MAX_FRAME_BYTES;
use olympus_types::NodeId;
use std::rc::Rc;
use std::time::Duration;

/// Pause after a failed `accept` (e.g. out of descriptors) before the next.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(10);

/// Reads one handshake message whose body must be `expected` bytes.
async fn read_msg(s: &mut Stream, expected: usize) -> Result<Vec<u8>, HandshakeError> {
    let mut prefix = [0u8; LEN_PREFIX];
    s.read_exact(&mut prefix)
        .await
        .map_err(|_| HandshakeError::Timeout)?;
    let len = check_prefix(prefix, expected)?;
    let mut body = vec![0u8; len];
    s.read_exact(&mut body)
        .await
        .map_err(|_| HandshakeError::Timeout)?;
    Ok(body)
}

async fn write_msg(s: &mut Stream, bytes: &[u8]) -> Result<(), HandshakeError> {
    s.write_all(bytes)
        .await
        .map_err(|_| HandshakeError::Timeout)
}

fn record(stats: &NetStats, e: HandshakeError) {
    inc(&stats.handshakes_refused);
    inc(match e {
        HandshakeError::UnknownNode(_)
        | HandshakeError::SelfConnection
        | HandshakeError::WrongPeer { .. } => &stats.refused_unknown_peer,
        HandshakeError::BadSignature(_) => &stats.refused_bad_signature,
        HandshakeError::Malformed
        | HandshakeError::Version(_)
        | HandshakeError::CommitteeMismatch => &stats.refused_malformed,
        HandshakeError::Timeout => &stats.refused_timeout,
    });
}

/// Accepts peer connections for the life of the network.
pub(crate) async fn accept_loop(shared: Rc<Shared>, listener: Listener) {
    loop {
        match listener.accept().await {
            Ok(stream) => {
                if shared.pending_handshakes.get() >= MAX_PENDING_HANDSHAKES {
                    inc(&shared.stats.accepts_refused);
                    continue;
                }
                shared.spawn(inbound(shared.clone(), stream));
            }
            Err(_) => rt::sleep(ACCEPT_ERROR_PAUSE).await,
        }
    }
}

async fn accept_handshake(shared: &Shared, s: &mut Stream) -> Result<NodeId, HandshakeError> {
    let hello = read_msg(s, HELLO_LEN).await?;
    let (acceptor, challenge) =
        Acceptor::on_hello(&shared.key, &shared.committee, &hello, fresh_nonce())?;
    write_msg(s, &challenge).await?;
    let proof = read_msg(s, PROOF_LEN).await?;
    let (from, welcome) = acceptor.on_proof(&shared.committee, &proof)?;
    write_msg(s, &welcome).await?;
    Ok(from)
}

/// One accepted peer connection: handshake, then frames into the inbox.
async fn inbound(shared: Rc<Shared>, mut stream: Stream) {
    let from = {
        let _pending = CountGuard::new(&shared.pending_handshakes);
        match rt::timeout(HANDSHAKE_TIMEOUT, accept_handshake(&shared, &mut stream)).await {
            Some(Ok(from)) => from,
            Some(Err(e)) => return record(&shared.stats, e),
            None => return record(&shared.stats, HandshakeError::Timeout),
        }
    };
    inc(&shared.stats.handshakes_ok);
    let link = shared.new_link();
    if let Some(old) = shared.inbound.borrow_mut().insert(from, link.clone()) {
        old.cancel.cancel();
    }
    link.cancel
        .run(shared.read_loop(&mut stream, Origin::Peer(from), 0, MAX_FRAME_BYTES, &link))
        .await;
    let mut inbound = shared.inbound.borrow_mut();
    if inbound.get(&from).is_some_and(|l| l.seq == link.seq) {
        inbound.remove(&from);
    }
}

/// Connects to `peer` and runs the dialer's half of the handshake.
async fn dial(shared: &Shared, peer: NodeId) -> Result<Stream, Option<HandshakeError>> {
    let addr = shared.peers[peer.index()].addr;
    let mut s = Stream::connect(addr, CONNECT_TIMEOUT)
        .await
        .map_err(|_| None)?;
    let handshake = async {
        let d = Dialer::new(&shared.key, &shared.committee, peer, fresh_nonce());
        write_msg(&mut s, &d.hello()).await?;
        let challenge = read_msg(&mut s, CHALLENGE_LEN).await?;
        let proof = d.on_challenge(&challenge)?;
        write_msg(&mut s, &proof).await?;
        let welcome = read_msg(&mut s, WELCOME_LEN).await?;
        d.on_welcome(&welcome)
    };
    match rt::timeout(HANDSHAKE_TIMEOUT, handshake).await {
        Some(Ok(())) => Ok(s),
        Some(Err(e)) => Err(Some(e)),
        None => Err(Some(HandshakeError::Timeout)),
    }
}

/// Waits for the end of an outbound connection: the peer never sends on it, so any
/// byte, EOF or error means the link is over.
async fn watch(mut s: Stream) {
    let mut byte = [0u8; 1];
    let _ = s.read(&mut byte).await;
}

/// Keeps the outbound link to `peer` up for the life of the network.
pub(crate) async fn outbound(shared: Rc<Shared>, peer: NodeId) {
    let slot = &shared.peers[peer.index()];
    let seed = u64::from_le_bytes(fresh_nonce()[..8].try_into().unwrap_or([1; 8]));
    let mut backoff = Backoff::new(shared.limits.backoff_min, shared.limits.backoff_max, seed);
    let mut established_before = false;
    while !slot.queue.is_closed() {
        let mut stream = match dial(&shared, peer).await {
            Ok(s) => s,
            Err(e) => {
                inc(&shared.stats.dial_failures);
                if let Some(e) = e {
                    record(&shared.stats, e);
                }
                rt::sleep(backoff.next_delay()).await;
                continue;
            }
        };
        inc(&shared.stats.handshakes_ok);
        if established_before {
            inc(&shared.stats.reconnects);
        }
        established_before = true;
        backoff.reset();
        let watcher = match stream.try_clone() {
            Ok(w) => w,
            Err(_) => {
                // Out of descriptors, most likely: wait before trying again.
                rt::sleep(backoff.next_delay()).await;
                continue;
            }
        };
        slot.connected.set(true);
        futures_lite::future::or(
            async {
                let _ = shared.write_loop(&mut stream, &slot.queue).await;
            },
            watch(watcher),
        )
        .await;
        stream.shutdown();
        slot.connected.set(false);
        inc(&shared.stats.links_down);
        // Even a link that was up a moment ago waits before redialling, so a peer that
        // accepts and drops at once is not dialled in a tight loop.
        rt::sleep(backoff.next_delay()).await;
    }
}
