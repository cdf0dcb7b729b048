//! The peer handshake: each side of a new peer connection proves it holds the key of the
//! node id it claims. Sans-IO: this module turns received bytes into replies and
//! verdicts; the crate's private `peer` module moves the bytes (under [`HANDSHAKE_TIMEOUT`]).
//!
//! # Protocol
//!
//! The dialer *D* opened a TCP connection to the address of node *L*. Every message is
//! framed like any frame, `[len u32 LE][body]`, and every body starts with the magic
//! `b"olyp"`, the version [`HANDSHAKE_VERSION`] (u32 LE) and a one-byte message tag. Each
//! message has one fixed length; a length prefix that differs from it ends the handshake
//! before any body byte is read, so a handshake buffers at most [`MAX_HANDSHAKE_MSG`]
//! bytes.
//!
//! 1. `D → L  Hello { committee, dialer: D, listener: L, nonce_d }` — `committee` is the
//!    committee fingerprint, `nonce_d` 32 fresh random bytes. *L* refuses unless the
//!    fingerprint is its own, `D` is a committee member other than *L*, and `L` is its
//!    own id.
//! 2. `L → D  Challenge { listener: L, nonce_l, sig_l }` with
//!    `sig_l = sign_L(Statement("net/handshake/listener") · committee · D · L · nonce_d ·
//!    nonce_l)`. *D* refuses unless `L` is the node it meant to dial and `sig_l` verifies
//!    under `L`'s committee key.
//! 3. `D → L  Proof { sig_d }` with `sig_d = sign_D(Statement("net/handshake/dialer") ·
//!    committee · D · L · nonce_d · nonce_l)`. *L* refuses unless it verifies under
//!    `D`'s key.
//! 4. `L → D  Welcome` — from here on the connection carries frames from *D* to *L*
//!    only (one connection per direction and peer pair).
//!
//! A refusal is a closed connection (the reason is counted, not sent). Each side signs a
//! statement that includes the other side's fresh nonce, so a recorded handshake cannot
//! be replayed; the two roles sign under different domain tags, so one side's signature
//! cannot be reflected back as the other's; both ids and the committee are bound, so a
//! signature cannot be used against another node or committee.
//!
//! What this does not give: confidentiality or integrity of the frames that follow. An
//! attacker who can inject into an established TCP stream can inject frames; protocol
//! messages whose authenticity matters carry their own signatures. (A session key from
//! an ephemeral key exchange and a MAC per frame would close this; see the crate docs.)

use olympus_crypto::{Committee, Keypair};
use olympus_types::frame::LEN_PREFIX;
use olympus_types::{Digest, NodeId, Signature, Statement, SIGNATURE_LEN};
use std::time::Duration;

/// Version of the handshake (and of the framing that follows it).
pub const HANDSHAKE_VERSION: u32 = 1;
/// The whole handshake must finish within this time, or the connection is closed.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

const MAGIC: [u8; 4] = *b"olyp";
const HEADER: usize = 4 + 4 + 1;
const TAG_HELLO: u8 = 1;
const TAG_CHALLENGE: u8 = 2;
const TAG_PROOF: u8 = 3;
const TAG_WELCOME: u8 = 4;

/// Body bytes of a `Hello`.
pub const HELLO_LEN: usize = HEADER + 32 + 2 + 2 + 32;
/// Body bytes of a `Challenge`.
pub const CHALLENGE_LEN: usize = HEADER + 2 + 32 + SIGNATURE_LEN;
/// Body bytes of a `Proof`.
pub const PROOF_LEN: usize = HEADER + SIGNATURE_LEN;
/// Body bytes of a `Welcome`.
pub const WELCOME_LEN: usize = HEADER;
/// The largest handshake message body.
pub const MAX_HANDSHAKE_MSG: usize = CHALLENGE_LEN;

/// Why a handshake was refused.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeError {
    #[error("malformed handshake message")]
    Malformed,
    #[error("handshake version {0}, expected {HANDSHAKE_VERSION}")]
    Version(u32),
    #[error("the other side uses a different committee")]
    CommitteeMismatch,
    #[error("{0} is not a committee member")]
    UnknownNode(NodeId),
    #[error("the other side claims our own id")]
    SelfConnection,
    #[error("expected to talk to {expected}, the other side is {got}")]
    WrongPeer { expected: NodeId, got: NodeId },
    #[error("the handshake signature of {0} does not verify")]
    BadSignature(NodeId),
    #[error("the handshake did not finish in time or the connection failed")]
    Timeout,
}

fn header(tag: u8, body_len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(LEN_PREFIX + body_len);
    out.extend_from_slice(&(body_len as u32).to_le_bytes());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&HANDSHAKE_VERSION.to_le_bytes());
    out.push(tag);
    out
}

/// Checks the header of a body that must be `len` bytes with tag `tag`; returns the
/// rest.
fn open(body: &[u8], tag: u8, len: usize) -> Result<&[u8], HandshakeError> {
    if body.len() != len || body[..4] != MAGIC {
        return Err(HandshakeError::Malformed);
    }
    let version = u32::from_le_bytes([body[4], body[5], body[6], body[7]]);
    if version != HANDSHAKE_VERSION {
        return Err(HandshakeError::Version(version));
    }
    if body[8] != tag {
        return Err(HandshakeError::Malformed);
    }
    Ok(&body[HEADER..])
}

/// Splits `n` bytes off the front of `rest` (the caller checked the total length).
fn take<const N: usize>(rest: &mut &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&rest[..N]);
    *rest = &rest[N..];
    out
}

fn statement(
    role: &str,
    fp: &Digest,
    d: NodeId,
    l: NodeId,
    nd: &[u8; 32],
    nl: &[u8; 32],
) -> Digest {
    Statement::new(role)
        .digest(fp)
        .u64(d.0 as u64)
        .u64(l.0 as u64)
        .bytes(nd)
        .bytes(nl)
        .finish()
}

/// What the listener signs.
pub fn listener_statement(
    fp: &Digest,
    d: NodeId,
    l: NodeId,
    nd: &[u8; 32],
    nl: &[u8; 32],
) -> Digest {
    statement("net/handshake/listener", fp, d, l, nd, nl)
}

/// What the dialer signs.
pub fn dialer_statement(fp: &Digest, d: NodeId, l: NodeId, nd: &[u8; 32], nl: &[u8; 32]) -> Digest {
    statement("net/handshake/dialer", fp, d, l, nd, nl)
}

/// The dialer's side.
pub struct Dialer<'a> {
    key: &'a Keypair,
    committee: &'a Committee,
    target: NodeId,
    nonce: [u8; 32],
}

impl<'a> Dialer<'a> {
    /// Starts a handshake as `key.id()` with node `target`; `nonce` must be fresh random.
    pub fn new(
        key: &'a Keypair,
        committee: &'a Committee,
        target: NodeId,
        nonce: [u8; 32],
    ) -> Self {
        Dialer {
            key,
            committee,
            target,
            nonce,
        }
    }

    /// Message 1, with its length prefix.
    pub fn hello(&self) -> Vec<u8> {
        let mut out = header(TAG_HELLO, HELLO_LEN);
        out.extend_from_slice(&self.committee.fingerprint().0);
        out.extend_from_slice(&self.key.id().0.to_le_bytes());
        out.extend_from_slice(&self.target.0.to_le_bytes());
        out.extend_from_slice(&self.nonce);
        out
    }

    /// Checks message 2 (its body); returns message 3, with its length prefix.
    pub fn on_challenge(&self, body: &[u8]) -> Result<Vec<u8>, HandshakeError> {
        let mut rest = open(body, TAG_CHALLENGE, CHALLENGE_LEN)?;
        let listener = NodeId(u16::from_le_bytes(take::<2>(&mut rest)));
        let nonce_l = take::<32>(&mut rest);
        let sig = Signature(take::<SIGNATURE_LEN>(&mut rest));
        if listener != self.target {
            return Err(HandshakeError::WrongPeer {
                expected: self.target,
                got: listener,
            });
        }
        let fp = self.committee.fingerprint();
        let me = self.key.id();
        let msg = listener_statement(&fp, me, listener, &self.nonce, &nonce_l);
        self.committee
            .verify(listener, &msg, &sig)
            .map_err(|_| HandshakeError::BadSignature(listener))?;
        let mut out = header(TAG_PROOF, PROOF_LEN);
        let proof = self
            .key
            .sign(&dialer_statement(&fp, me, listener, &self.nonce, &nonce_l));
        out.extend_from_slice(&proof.0);
        Ok(out)
    }

    /// Checks message 4 (its body): the listener accepted us.
    pub fn on_welcome(&self, body: &[u8]) -> Result<(), HandshakeError> {
        open(body, TAG_WELCOME, WELCOME_LEN).map(|_| ())
    }
}

/// The listener's side, after a valid `Hello`.
pub struct Acceptor {
    fp: Digest,
    dialer: NodeId,
    me: NodeId,
    nonce_d: [u8; 32],
    nonce_l: [u8; 32],
}

impl Acceptor {
    /// Checks message 1 (its body); returns the handshake state and message 2, with its
    /// length prefix. `nonce` must be fresh random.
    pub fn on_hello(
        key: &Keypair,
        committee: &Committee,
        body: &[u8],
        nonce: [u8; 32],
    ) -> Result<(Acceptor, Vec<u8>), HandshakeError> {
        let mut rest = open(body, TAG_HELLO, HELLO_LEN)?;
        let fp = Digest(take::<32>(&mut rest));
        let dialer = NodeId(u16::from_le_bytes(take::<2>(&mut rest)));
        let listener = NodeId(u16::from_le_bytes(take::<2>(&mut rest)));
        let nonce_d = take::<32>(&mut rest);
        let me = key.id();
        if fp != committee.fingerprint() {
            return Err(HandshakeError::CommitteeMismatch);
        }
        if dialer.index() >= committee.size() {
            return Err(HandshakeError::UnknownNode(dialer));
        }
        if dialer == me {
            return Err(HandshakeError::SelfConnection);
        }
        if listener != me {
            return Err(HandshakeError::WrongPeer {
                expected: me,
                got: listener,
            });
        }
        let state = Acceptor {
            fp,
            dialer,
            me,
            nonce_d,
            nonce_l: nonce,
        };
        let sig = key.sign(&listener_statement(&fp, dialer, me, &nonce_d, &nonce));
        let mut out = header(TAG_CHALLENGE, CHALLENGE_LEN);
        out.extend_from_slice(&me.0.to_le_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sig.0);
        Ok((state, out))
    }

    /// The id the dialer claims (not yet proven).
    pub fn claimed(&self) -> NodeId {
        self.dialer
    }

    /// Checks message 3 (its body); returns the proven id of the dialer and message 4,
    /// with its length prefix.
    pub fn on_proof(
        &self,
        committee: &Committee,
        body: &[u8],
    ) -> Result<(NodeId, Vec<u8>), HandshakeError> {
        let mut rest = open(body, TAG_PROOF, PROOF_LEN)?;
        let sig = Signature(take::<SIGNATURE_LEN>(&mut rest));
        let msg = dialer_statement(&self.fp, self.dialer, self.me, &self.nonce_d, &self.nonce_l);
        committee
            .verify(self.dialer, &msg, &sig)
            .map_err(|_| HandshakeError::BadSignature(self.dialer))?;
        Ok((self.dialer, header(TAG_WELCOME, WELCOME_LEN)))
    }
}

/// The length a handshake message's prefix must announce for a body of `expected`
/// bytes; `Err` for anything else, before the body is read.
pub fn check_prefix(prefix: [u8; LEN_PREFIX], expected: usize) -> Result<usize, HandshakeError> {
    let len = u32::from_le_bytes(prefix) as usize;
    if len != expected || len > MAX_HANDSHAKE_MSG {
        return Err(HandshakeError::Malformed);
    }
    Ok(len)
}

/// 32 random bytes from the kernel (`getrandom(2)`), for nonces and seeds.
pub fn fresh_nonce() -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut filled = 0;
    while filled < out.len() {
        // SAFETY: the pointer and length describe the unfilled tail of `out`, which is
        // valid for writes of that many bytes.
        let n =
            unsafe { libc::getrandom(out[filled..].as_mut_ptr().cast(), out.len() - filled, 0) };
        if n > 0 {
            filled += n as usize;
        } else if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            // getrandom(2) cannot fail on a 5.8+ kernel once the pool is initialised;
            // refuse to run with a predictable nonce rather than continue.
            panic!("getrandom(2) failed: {}", std::io::Error::last_os_error());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use olympus_crypto::{generate_committee, Scheme};

    fn body(wire: &[u8]) -> &[u8] {
        &wire[LEN_PREFIX..]
    }

    #[test]
    fn handshake_succeeds_between_members() {
        let (c, keys) = generate_committee(Scheme::Bls, &[1; 32], 3).unwrap();
        let d = Dialer::new(&keys[0], &c, NodeId(1), [7; 32]);
        let hello = d.hello();
        assert_eq!(
            check_prefix(hello[..4].try_into().unwrap(), HELLO_LEN),
            Ok(HELLO_LEN)
        );
        let (acc, challenge) = Acceptor::on_hello(&keys[1], &c, body(&hello), [8; 32]).unwrap();
        assert_eq!(acc.claimed(), NodeId(0));
        let proof = d.on_challenge(body(&challenge)).unwrap();
        let (who, welcome) = acc.on_proof(&c, body(&proof)).unwrap();
        assert_eq!(who, NodeId(0));
        d.on_welcome(body(&welcome)).unwrap();
    }

    #[test]
    fn impostors_and_garbage_are_refused() {
        let (c, keys) = generate_committee(Scheme::Bls, &[1; 32], 3).unwrap();
        // Node 2's id with a key that is not node 2's.
        let fake = Keypair::generate(Scheme::Bls, &[9; 32], NodeId(2));
        let d = Dialer::new(&fake, &c, NodeId(1), [7; 32]);
        let (acc, challenge) = Acceptor::on_hello(&keys[1], &c, body(&d.hello()), [8; 32]).unwrap();
        let proof = d.on_challenge(body(&challenge)).unwrap();
        assert_eq!(
            acc.on_proof(&c, body(&proof)).err(),
            Some(HandshakeError::BadSignature(NodeId(2)))
        );
        // A listener with the wrong key is caught by the dialer.
        let fake1 = Keypair::generate(Scheme::Bls, &[9; 32], NodeId(1));
        let d = Dialer::new(&keys[0], &c, NodeId(1), [7; 32]);
        let (_, challenge) = Acceptor::on_hello(&fake1, &c, body(&d.hello()), [8; 32]).unwrap();
        assert_eq!(
            d.on_challenge(body(&challenge)),
            Err(HandshakeError::BadSignature(NodeId(1)))
        );
        // Unknown id, own id, wrong target.
        let stranger = Keypair::generate(Scheme::Bls, &[9; 32], NodeId(9));
        let d = Dialer::new(&stranger, &c, NodeId(1), [7; 32]);
        assert_eq!(
            Acceptor::on_hello(&keys[1], &c, body(&d.hello()), [8; 32]).err(),
            Some(HandshakeError::UnknownNode(NodeId(9)))
        );
        let d = Dialer::new(&keys[1], &c, NodeId(1), [7; 32]);
        assert_eq!(
            Acceptor::on_hello(&keys[1], &c, body(&d.hello()), [8; 32]).err(),
            Some(HandshakeError::SelfConnection)
        );
        let d = Dialer::new(&keys[0], &c, NodeId(2), [7; 32]);
        assert!(matches!(
            Acceptor::on_hello(&keys[1], &c, body(&d.hello()), [8; 32]),
            Err(HandshakeError::WrongPeer { .. })
        ));
        // Another committee.
        let (c2, _) = generate_committee(Scheme::Bls, &[2; 32], 3).unwrap();
        let d = Dialer::new(&keys[0], &c, NodeId(1), [7; 32]);
        assert_eq!(
            Acceptor::on_hello(&keys[1], &c2, body(&d.hello()), [8; 32]).err(),
            Some(HandshakeError::CommitteeMismatch)
        );
        // Garbage of every length up to the largest message, and a wrong prefix.
        for len in 0..=MAX_HANDSHAKE_MSG {
            let junk = vec![0xa5u8; len];
            assert!(Acceptor::on_hello(&keys[1], &c, &junk, [8; 32]).is_err());
            assert!(d.on_challenge(&junk).is_err());
            assert!(d.on_welcome(&junk).is_err());
        }
        assert!(check_prefix(u32::MAX.to_le_bytes(), HELLO_LEN).is_err());
        // A reflected challenge is not a proof: different tag and domain.
        let d = Dialer::new(&keys[0], &c, NodeId(1), [7; 32]);
        let (acc, challenge) = Acceptor::on_hello(&keys[1], &c, body(&d.hello()), [8; 32]).unwrap();
        let mut reflected = header(TAG_PROOF, PROOF_LEN);
        reflected.extend_from_slice(&body(&challenge)[HEADER + 2 + 32..]);
        assert_eq!(
            acc.on_proof(&c, body(&reflected)).err(),
            Some(HandshakeError::BadSignature(NodeId(0)))
        );
    }

    #[test]
    fn nonces_differ() {
        assert_ne!(fresh_nonce(), fresh_nonce());
    }
}
