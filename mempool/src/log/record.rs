//! The on-disk record format of the batch log.
//!
//! ```text
//! offset  size  field
//!      0     4  magic      b"OLB1"
//!      4     4  len        u32 LE, bytes of the body
//!      8     8  seq        u64 LE, the record's sequence number in the log
//!     16    32  digest     the caller's digest of the body (BLAKE3 for batches)
//!     48     8  reserved   zero; a future flags field
//!     56     8  checksum   xxh3-64 over bytes 0..56 of the header, then the body
//!     64   len  body
//!      .     .  zero padding up to the next multiple of 16
//! ```
//!
//! Records start at offset 0 of a segment and follow each other with no gap, each
//! starting on a 16-byte boundary, so a body is 16-byte aligned in the mapping (whose
//! base is page aligned) and rkyv can read it in place. An all-zero header marks the end
//! of the written part of a segment: segment files are preallocated with zeros and the
//! log keeps everything past the last record zero (see `log` module docs).
//!
//! The checksum is for detecting torn writes and media corruption only: xxh3 is not
//! collision resistant, and nothing read from the log ever came from a peer without its
//! digest having been checked first.

use olympus_types::Digest;
use xxhash_rust::xxh3::Xxh3;

/// Identifies a record header (and the format version).
pub const MAGIC: [u8; 4] = *b"OLB1";
/// Bytes of a record header.
pub const HEADER_BYTES: usize = 64;
/// Every record starts on a multiple of this, so bodies are aligned for rkyv.
pub const RECORD_ALIGN: usize = 16;

const CHECKED_BYTES: usize = 56;

/// Why recovery stopped reading a segment at some offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Corruption {
    #[error("the segment ends inside a record header")]
    TornHeader,
    #[error("bad magic {0:02x?}")]
    BadMagic([u8; 4]),
    #[error("unknown flags {0:#x} in the reserved header field")]
    UnknownFlags(u64),
    #[error("record length {len} runs past the end of the segment ({room} bytes left)")]
    TornBody { len: u64, room: u64 },
    #[error("checksum mismatch: stored {stored:#018x}, computed {computed:#018x}")]
    Checksum { stored: u64, computed: u64 },
    #[error("sequence number {found}, expected {expected}")]
    Sequence { expected: u64, found: u64 },
    #[error("non-zero bytes after the last record")]
    TrailingBytes,
}

/// Total bytes a record with a body of `len` bytes occupies, padding included.
pub fn record_size(len: usize) -> Option<usize> {
    HEADER_BYTES
        .checked_add(len)?
        .checked_next_multiple_of(RECORD_ALIGN)
}

fn checksum(checked: &[u8], body: &[u8]) -> u64 {
    let mut h = Xxh3::new();
    h.update(checked);
    h.update(body);
    h.digest()
}

/// The header of a record with this body.
pub fn encode_header(seq: u64, digest: &Digest, body: &[u8]) -> [u8; HEADER_BYTES] {
    let len = u32::try_from(body.len()).expect("callers bound the body length below u32::MAX");
    let mut h = [0u8; HEADER_BYTES];
    h[0..4].copy_from_slice(&MAGIC);
    h[4..8].copy_from_slice(&len.to_le_bytes());
    h[8..16].copy_from_slice(&seq.to_le_bytes());
    h[16..48].copy_from_slice(&digest.0);
    // 48..56 reserved, zero.
    let sum = checksum(&h[..CHECKED_BYTES], body);
    h[56..64].copy_from_slice(&sum.to_le_bytes());
    h
}

/// A record found in a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    pub seq: u64,
    pub digest: Digest,
    /// Offset of the body in the segment.
    pub body: usize,
    pub len: usize,
    /// Offset of the next record.
    pub next: usize,
}

/// What lies at an offset of a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// A complete record whose checksum matches.
    Record(Found),
    /// An all-zero header or the end of the segment: no more records.
    End,
    /// Something that is neither.
    Corrupt(Corruption),
}

fn le_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

/// Reads the record at `off` of `seg`. Never panics, whatever the bytes; `off` must be
/// at most `seg.len()`.
pub fn parse(seg: &[u8], off: usize) -> Parsed {
    let rest = &seg[off..];
    if rest.len() < HEADER_BYTES {
        return if is_zero(rest) {
            Parsed::End
        } else {
            Parsed::Corrupt(Corruption::TornHeader)
        };
    }
    let h = &rest[..HEADER_BYTES];
    if is_zero(h) {
        return Parsed::End;
    }
    let mut magic = [0u8; 4];
    magic.copy_from_slice(&h[0..4]);
    if magic != MAGIC {
        return Parsed::Corrupt(Corruption::BadMagic(magic));
    }
    let len = le_u32(&h[4..8]) as usize;
    let room = rest.len() - HEADER_BYTES;
    if len > room {
        return Parsed::Corrupt(Corruption::TornBody {
            len: len as u64,
            room: room as u64,
        });
    }
    let flags = le_u64(&h[48..56]);
    let body = &rest[HEADER_BYTES..HEADER_BYTES + len];
    let stored = le_u64(&h[56..64]);
    let computed = checksum(&h[..CHECKED_BYTES], body);
    if stored != computed {
        return Parsed::Corrupt(Corruption::Checksum { stored, computed });
    }
    // Only trusted once the checksum matched: a flipped bit would show as a checksum error.
    if flags != 0 {
        return Parsed::Corrupt(Corruption::UnknownFlags(flags));
    }
    let mut digest = [0u8; 32];
    digest.copy_from_slice(&h[16..48]);
    let end = off + HEADER_BYTES + len;
    Parsed::Record(Found {
        seq: le_u64(&h[8..16]),
        digest: Digest(digest),
        body: off + HEADER_BYTES,
        len,
        // A segment file whose length is not a multiple of 16 ends inside the padding.
        next: end.next_multiple_of(RECORD_ALIGN).min(seg.len()),
    })
}

/// Whether every byte is zero.
pub fn is_zero(b: &[u8]) -> bool {
    last_non_zero(b).is_none()
}

/// The index of the last non-zero byte.
pub fn last_non_zero(b: &[u8]) -> Option<usize> {
    // Word-at-a-time from the end: recovery scans up to a whole segment of zeros.
    let (head, words, tail) = {
        // SAFETY: every bit pattern is a valid u64; align_to only reinterprets bytes.
        unsafe { b.align_to::<u64>() }
    };
    if let Some(i) = tail.iter().rposition(|&x| x != 0) {
        return Some(head.len() + words.len() * 8 + i);
    }
    if let Some(w) = words.iter().rposition(|&x| x != 0) {
        let base = head.len() + w * 8;
        let bytes = &b[base..base + 8];
        return bytes.iter().rposition(|&x| x != 0).map(|i| base + i);
    }
    head.iter().rposition(|&x| x != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_bodies_stay_aligned() {
        let mut seg = vec![0u8; 1024];
        let mut off = 0;
        for (i, len) in [0usize, 1, 15, 16, 17, 100].into_iter().enumerate() {
            let body = vec![i as u8 + 1; len];
            let d = Digest::of(&body);
            let h = encode_header(i as u64, &d, &body);
            seg[off..off + HEADER_BYTES].copy_from_slice(&h);
            seg[off + HEADER_BYTES..off + HEADER_BYTES + len].copy_from_slice(&body);
            let Parsed::Record(f) = parse(&seg, off) else {
                panic!("record {i} not found")
            };
            assert_eq!((f.seq, f.digest, f.len), (i as u64, d, len));
            assert_eq!(f.body % RECORD_ALIGN, 0);
            assert_eq!(f.next, off + record_size(len).unwrap());
            off = f.next;
        }
        assert_eq!(parse(&seg, off), Parsed::End);
        assert_eq!(parse(&seg, seg.len()), Parsed::End);
    }

    #[test]
    fn last_non_zero_finds_every_position() {
        let mut b = vec![0u8; 100];
        assert_eq!(last_non_zero(&b[3..]), None);
        for i in 0..100 {
            b[i] = 7;
            assert_eq!(last_non_zero(&b), Some(i));
            assert_eq!(last_non_zero(&b[3..]), i.checked_sub(3));
            b[i] = 0;
        }
    }
}
