//! One segment file and its mapping, and the zero-copy [`LogBytes`] handle.
//!
//! # Why the shared, writable mapping is sound
//!
//! A [`Segment`] holds a [`MmapRaw`]: memmap2 never creates a Rust reference to the
//! mapped memory, only raw pointers, so the mapping itself asserts nothing about
//! aliasing. References are created in exactly two places, and each covers bytes that
//! nothing writes while the reference lives:
//!
//! * [`LogBytes::deref`] makes `&[u8]` over one record body. A `LogBytes` is only made
//!   for a record in the log's index, and a record enters the index after its bytes were
//!   written. The log is append-only: it writes only at or after the active segment's
//!   write offset, which only grows, so an indexed range is never written again.
//!   (Recovery zeroes a cut tail by shrinking and regrowing the file, in
//!   `BatchLog::open`, with that segment unmapped and before any record is indexed.)
//! * Recovery makes `&[u8]` over a whole segment to scan it; it drops that slice before
//!   anything writes to the segment.
//!
//! Writes go through `copy_nonoverlapping` into the unused tail, from `&mut BatchLog`, so
//! a writer and another thread reading an older record touch disjoint bytes: no data
//! race. A reader on another thread got its `LogBytes` through `&BatchLog`, which cannot
//! coexist with the writer's `&mut BatchLog`; whatever handed that borrow or the
//! `LogBytes` across threads (a lock, a channel) orders the write before the read.
//!
//! The mapping stays valid as long as any `Arc<Segment>` lives: the log never shrinks a
//! mapped file (recovery drops the mapping before truncating), and pruning only unlinks
//! the file, which leaves the inode and the mapping intact until the last `LogBytes` of
//! that segment is dropped and the mapping is unmapped.
//!
//! What is outside this model, as for every mmap-based store: another process
//! truncating or rewriting the files. `BatchLog` takes an exclusive `flock` on the
//! directory's lock file so that two logs never share a directory by accident.

use memmap2::{MmapOptions, MmapRaw};
use olympus_types::Digest;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A segment file mapped read-write. Shared by the log and every [`LogBytes`] into it.
pub struct Segment {
    /// Sequence number of the first record this segment holds (also its file name).
    pub start: u64,
    pub path: PathBuf,
    pub file: File,
    map: MmapRaw,
}

impl Segment {
    /// Maps `capacity` bytes of `file`, whose length must be at least `capacity`.
    pub fn map(start: u64, path: PathBuf, file: File, capacity: usize) -> std::io::Result<Self> {
        let map = MmapOptions::new().len(capacity).map_raw(&file)?;
        Ok(Segment {
            start,
            path,
            file,
            map,
        })
    }

    /// Bytes mapped: the segment's capacity.
    pub fn capacity(&self) -> usize {
        self.map.len()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The whole segment as a slice.
    ///
    /// # Safety
    /// Nothing may write to the segment while the slice lives (see the module docs);
    /// only recovery uses this, before the segment is written.
    pub unsafe fn as_slice(&self) -> &[u8] {
        // SAFETY: the mapping is `capacity` bytes long and lives as long as `self`; the
        // caller guarantees no concurrent writes.
        unsafe { std::slice::from_raw_parts(self.map.as_ptr(), self.capacity()) }
    }

    /// Copies `parts` one after the other into the segment starting at `off`.
    ///
    /// # Safety
    /// `[off, off + total)` must lie in the unused tail of the segment: no `LogBytes` or
    /// other reference covers it (see the module docs). The sources must not overlap the
    /// destination (a source may be a `LogBytes` of an older record: that range is
    /// disjoint from the tail).
    pub unsafe fn write(&self, off: usize, parts: &[&[u8]]) {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        assert!(
            off.checked_add(total)
                .is_some_and(|end| end <= self.capacity()),
            "write of {total} bytes at {off} past the segment's {} bytes",
            self.capacity()
        );
        let mut at = off;
        for p in parts {
            // SAFETY: in bounds (asserted above); the caller guarantees nobody reads or
            // holds a reference to the destination and that it does not overlap `p`.
            unsafe {
                std::ptr::copy_nonoverlapping(p.as_ptr(), self.map.as_mut_ptr().add(at), p.len())
            };
            at += p.len();
        }
    }

    /// Writes back `[off, off + len)` of the mapping and waits for the device
    /// (`msync(MS_SYNC)`, which on Linux is `fdatasync` of that range).
    pub fn flush(&self, off: usize, len: usize) -> std::io::Result<()> {
        if len == 0 {
            return Ok(());
        }
        self.map.flush_range(off, len)
    }
}

/// A record body, read in place from the mapping: derefs to `&[u8]` without a copy.
///
/// It holds an `Arc` of its segment, so it stays valid after the log drops or prunes the
/// segment (the file is unlinked, the mapping lives until the last `LogBytes` goes). The
/// body is 16-byte aligned, so `olympus_types::frame::decode` reads it in place too.
#[derive(Clone)]
pub struct LogBytes {
    seg: Arc<Segment>,
    off: usize,
    len: usize,
    seq: u64,
    digest: Digest,
}

impl LogBytes {
    /// Must only be called for a record that was completely written (see module docs).
    pub(crate) fn new(seg: Arc<Segment>, off: usize, len: usize, seq: u64, digest: Digest) -> Self {
        assert!(off
            .checked_add(len)
            .is_some_and(|end| end <= seg.capacity()));
        LogBytes {
            seg,
            off,
            len,
            seq,
            digest,
        }
    }

    /// The record's sequence number in the log.
    pub fn seq(&self) -> super::Seq {
        super::Seq(self.seq)
    }

    /// The digest the record was appended under.
    pub fn digest(&self) -> Digest {
        self.digest
    }

    pub fn as_slice(&self) -> &[u8] {
        self
    }
}

impl std::ops::Deref for LogBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // SAFETY: `[off, off + len)` is in bounds (asserted in `new`) of a mapping kept
        // alive by `self.seg`, and it holds a completely written record that the log never
        // writes again (module docs), so a shared slice over it aliases no write.
        unsafe { std::slice::from_raw_parts(self.seg.map.as_ptr().add(self.off), self.len) }
    }
}

impl AsRef<[u8]> for LogBytes {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl std::fmt::Debug for LogBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogBytes")
            .field("seq", &self.seq)
            .field("digest", &self.digest)
            .field("len", &self.len)
            .field("segment", &self.seg.start)
            .finish()
    }
}
