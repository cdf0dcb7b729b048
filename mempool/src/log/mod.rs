//! The batch log: append-only, memory-mapped segment files keyed by digest.
//!
//! It replaces rocksdb for batches. A node appends every batch it stores (its own and
//! its peers') under the batch digest, reads them back by digest without copying, and
//! drops whole segments once everything in them is below the stable checkpoint.
//!
//! # Layout
//!
//! A directory of segment files named `{start:020}.seg`, where `start` is the sequence
//! number ([`Seq`]) of the first record the segment holds (Kafka's naming). Every append
//! gets the next sequence number, so the files of a healthy log are contiguous: each
//! segment starts where the one before it ends. Each file is preallocated to
//! [`LogConfig::segment_bytes`] (`set_len` and, on Linux, `posix_fallocate`, so a full
//! disk shows as an error at segment creation and never as a `SIGBUS` on a write into a
//! hole); a record larger than that gets a segment of its own size. Records are laid out
//! as described in [`record`]: a 64-byte header (magic, length, sequence number, digest,
//! xxh3-64 checksum over header and body), the body, zero padding to 16 bytes. Bodies
//! are therefore 16-byte aligned in memory and rkyv reads them in place.
//!
//! Only the last segment is written (the *active* one); appends copy into the unused
//! tail of its mapping. See [`segment`] for why that is sound while readers hold
//! [`LogBytes`] into the same mapping.
//!
//! # Invariants
//!
//! * Everything past the last record of the active segment is zero. Fresh files are
//!   zero; recovery zeroes (truncates and re-extends) anything it cuts. This is what lets
//!   recovery tell a clean end (an all-zero header) from a torn write, and it is why a cut
//!   record can never come back to life behind a later, shorter record.
//! * Record bytes are written once, before the record enters the in-memory index, and
//!   never again.
//! * Sequence numbers are contiguous across the records of all live segments.
//! * The index maps every live record's digest to its location; appending a digest that
//!   is already present writes nothing and returns the existing location (idempotent).
//!   The log trusts the caller's digest: check a batch's digest before appending it.
//!
//! # Recovery
//!
//! [`BatchLog::open`] scans every segment and verifies every record's checksum and
//! sequence number. In the **last** segment, the first record that fails, and everything
//! after it, is a torn or corrupt tail: it is cut and reported in [`Recovery::truncated`].
//! In any **other** segment a bad record, or a gap between segments, is an error
//! ([`LogError::Corrupt`], [`LogError::Gap`]): those segments were complete and synced
//! before the next one began, so damage there is not a crash artefact, and silently
//! dropping committed batches would be worse than stopping.
//!
//! # Durability: [`FsyncPolicy`]
//!
//! * [`FsyncPolicy::Always`] (**the default**): every append is written back with
//!   `msync(MS_SYNC)` over its range before `append` returns. A batch the caller was
//!   told is stored survives power loss.
//! * [`FsyncPolicy::EveryBytes(n)`](FsyncPolicy::EveryBytes): written back once `n`
//!   bytes are unsynced, and by [`BatchLog::sync`]. A power loss can lose up to `n`
//!   bytes of the most recent records (recovery cuts them cleanly).
//! * [`FsyncPolicy::Never`]: the OS writes back when it likes; only a process crash is
//!   survived (the page cache outlives the process). For tests and benchmarks.
//!
//! Under `Always` and `EveryBytes`, creating a segment syncs the new file and the
//! directory, and a segment is synced completely before the next one is started, which is
//! what makes "only the last segment can be torn" true. A failed sync poisons the log:
//! after it every append fails with [`LogError::Poisoned`], because after a failed
//! `fsync` the kernel may have dropped the dirty pages and no retry can tell (reopen to
//! recover what is on disk).
//!
//! # Pruning
//!
//! [`BatchLog::prune_before`] takes a [`Seq`]: "every record with a smaller sequence
//! number is no longer needed". A caller remembers [`BatchLog::next_seq`] when it takes
//! a checkpoint, and passes it once the checkpoint is stable. Only whole segments go
//! (those whose records are all below the mark), never the active one, so some records
//! below the mark may stay readable a while longer. [`LogBytes`] handed out before stay
//! valid.
//!
//! # Page faults
//!
//! Appends and reads touch mapped memory, so they can fault (a first write to a page of
//! a fresh segment, a read of a page the kernel evicted). Run the log off a reactor's
//! latency-critical path, or keep hot batches in memory as [`crate::SealedBatch`] and
//! read the log only for catch-up and recovery.
//!
//! Measured (benches/log.rs, ext4): the first-write fault (the kernel zeroes the page,
//! then `page_mkwrite`) is most of an append's cost beyond the copy and the checksum.
//! Prefaulting ahead with `MADV_POPULATE_WRITE` did not make appends cheaper (it moves
//! the same kernel work), and `pwritev` into the file instead of stores into the
//! mapping was ~10% faster for 64 KiB records but twice as slow for 4 KiB ones, so
//! appends store into the mapping.

mod record;
mod segment;

pub use record::{Corruption, HEADER_BYTES as RECORD_HEADER_BYTES, RECORD_ALIGN};
pub use segment::LogBytes;

use olympus_types::limits::MAX_FRAME_BYTES;
use olympus_types::Digest;
use record::Parsed;
use segment::Segment;
use std::collections::{HashMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Default size of a segment file: 64 MiB.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
/// Smallest segment size accepted.
pub const MIN_SEGMENT_BYTES: u64 = 256;
/// Largest segment size accepted.
pub const MAX_SEGMENT_BYTES: u64 = 1 << 34;
/// Largest record body the format can hold (the length field is a u32).
pub const MAX_RECORD_LIMIT: usize = u32::MAX as usize - 2 * RECORD_HEADER_BYTES;

const SEGMENT_SUFFIX: &str = ".seg";
const LOCK_FILE: &str = "LOCK";

/// When the log forces appended bytes to stable storage. See the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FsyncPolicy {
    /// Sync after every append. The default.
    #[default]
    Always,
    /// Sync once this many bytes are unsynced (and on [`BatchLog::sync`]).
    EveryBytes(u64),
    /// Never sync explicitly: the OS decides. Survives a process crash, not power loss.
    Never,
}

/// Where and how to keep the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// The directory of segment files; created if missing. The log owns it exclusively.
    pub dir: PathBuf,
    /// Size of each preallocated segment file; a multiple of 16 between
    /// [`MIN_SEGMENT_BYTES`] and [`MAX_SEGMENT_BYTES`]. Default [`DEFAULT_SEGMENT_BYTES`].
    pub segment_bytes: u64,
    /// Largest record body accepted by [`BatchLog::append`]. Default
    /// [`MAX_FRAME_BYTES`]: anything a peer can send fits.
    pub max_record_bytes: usize,
    /// Default [`FsyncPolicy::Always`].
    pub fsync: FsyncPolicy,
}

impl LogConfig {
    /// The defaults, in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        LogConfig {
            dir: dir.into(),
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            max_record_bytes: MAX_FRAME_BYTES,
            fsync: FsyncPolicy::default(),
        }
    }

    fn validate(&self) -> Result<usize, LogError> {
        if !(MIN_SEGMENT_BYTES..=MAX_SEGMENT_BYTES).contains(&self.segment_bytes)
            || self.segment_bytes.next_multiple_of(RECORD_ALIGN as u64) != self.segment_bytes
        {
            return Err(LogError::Config(format!(
                "segment_bytes {} must be a multiple of {RECORD_ALIGN} in \
                 {MIN_SEGMENT_BYTES}..={MAX_SEGMENT_BYTES}",
                self.segment_bytes
            )));
        }
        if self.max_record_bytes > MAX_RECORD_LIMIT {
            return Err(LogError::Config(format!(
                "max_record_bytes {} exceeds the format's limit {MAX_RECORD_LIMIT}",
                self.max_record_bytes
            )));
        }
        if let FsyncPolicy::EveryBytes(0) = self.fsync {
            return Err(LogError::Config(
                "FsyncPolicy::EveryBytes(0): use Always".into(),
            ));
        }
        usize::try_from(self.segment_bytes)
            .map_err(|_| LogError::Config("segment_bytes does not fit in memory".into()))
    }
}

/// A record's position in the log: the order it was appended in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Seq(pub u64);

impl std::fmt::Display for Seq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Where a record lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub seq: Seq,
    /// The segment: the sequence number it starts at (its file name).
    pub segment: Seq,
    /// Offset of the body in the segment file.
    pub offset: u64,
    /// Bytes of the body.
    pub len: u32,
}

/// Why the log could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("invalid log config: {0}")]
    Config(String),
    #[error("record of {len} bytes exceeds the limit of {max} bytes")]
    RecordTooLarge { len: usize, max: usize },
    #[error("segment {path} is corrupt at offset {offset}: {reason}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: Corruption,
    },
    #[error("segment {path} starts at seq {found} but the segment before it ends at {expected}")]
    Gap {
        path: PathBuf,
        expected: u64,
        found: u64,
    },
    #[error("{0} is locked by another open log")]
    Locked(PathBuf),
    #[error("an earlier sync failed; the log refuses writes until it is reopened")]
    Poisoned,
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> LogError + 'a {
    move |source| LogError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// What [`BatchLog::open`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// Segment files opened.
    pub segments: usize,
    /// Complete, verified records kept.
    pub records: usize,
    /// The sequence number the next append gets.
    pub next_seq: Seq,
    /// The torn or corrupt tail cut from the last segment, if there was one.
    pub truncated: Option<Truncation>,
}

/// A tail cut from the last segment by recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncation {
    pub path: PathBuf,
    /// Where the kept records end; everything from here on was zeroed.
    pub offset: u64,
    /// Bytes from `offset` to the last non-zero byte that was discarded.
    pub discarded_bytes: u64,
    /// What was found at `offset`.
    pub reason: Corruption,
}

/// What [`BatchLog::prune_before`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pruned {
    pub segments: usize,
    pub records: usize,
    pub file_bytes: u64,
}

/// Counters and sizes, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogStats {
    pub segments: usize,
    /// Records in the index.
    pub records: usize,
    /// Bytes of the bodies of those records.
    pub record_bytes: u64,
    /// Bytes of all segment files (their preallocated size).
    pub file_bytes: u64,
    /// Sequence number of the oldest record still kept (the first segment's start).
    pub first_seq: Seq,
    pub next_seq: Seq,
    /// Records written since open.
    pub appends: u64,
    /// Appends of a digest already present (nothing written).
    pub duplicate_appends: u64,
    /// Syncs to stable storage since open.
    pub syncs: u64,
    /// Bytes written to the active segment and not yet synced.
    pub unsynced_bytes: u64,
}

/// Where a record body is: what the index holds.
struct Entry {
    seg: Arc<Segment>,
    /// Offset of the body.
    off: usize,
    len: usize,
    seq: u64,
}

impl Entry {
    fn location(&self) -> Location {
        Location {
            seq: Seq(self.seq),
            segment: Seq(self.seg.start),
            offset: self.off as u64,
            len: self.len as u32,
        }
    }
}

struct SegState {
    seg: Arc<Segment>,
    /// Digests of its records, in order: the record with seq `seg.start + i` is `digests[i]`.
    digests: Vec<Digest>,
    record_bytes: u64,
}

impl SegState {
    fn end(&self) -> u64 {
        self.seg.start + self.digests.len() as u64
    }
}

/// The batch log. See the module docs.
pub struct BatchLog {
    cfg: LogConfig,
    segment_bytes: usize,
    /// Ascending by start; never empty; the last one is active.
    segments: VecDeque<SegState>,
    index: HashMap<Digest, Entry>,
    /// End of the last record in the active segment.
    write_off: usize,
    /// Bytes of the active segment before this are synced (under a syncing policy).
    synced_off: usize,
    next_seq: u64,
    poisoned: bool,
    appends: u64,
    duplicate_appends: u64,
    syncs: u64,
    /// Held for the flock on the directory's lock file.
    _lock: File,
}

/// A range of a segment to write back, from [`BatchLog::take_sync_job`]. `Send`: run
/// it on whichever thread may block.
pub struct SyncJob {
    seg: Arc<Segment>,
    from: usize,
    len: usize,
}

impl SyncJob {
    /// Writes the range back to stable storage (`msync(MS_SYNC)`).
    pub fn run(&self) -> std::io::Result<()> {
        self.seg.flush(self.from, self.len)
    }

    /// Bytes it covers.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl BatchLog {
    /// Opens (or creates) the log in `cfg.dir` and recovers it. See the module docs.
    pub fn open(cfg: LogConfig) -> Result<(BatchLog, Recovery), LogError> {
        let segment_bytes = cfg.validate()?;
        fs::create_dir_all(&cfg.dir).map_err(io_err("create", &cfg.dir))?;
        let lock = lock_dir(&cfg.dir)?;
        let starts = list_segments(&cfg.dir)?;
        let syncing = cfg.fsync != FsyncPolicy::Never;

        let mut segments = VecDeque::new();
        let mut index = HashMap::new();
        let mut truncated = None;
        let mut write_off = 0;
        let mut records = 0;
        for (i, &start) in starts.iter().enumerate() {
            let last = i + 1 == starts.len();
            if let Some(prev) = segments.back().map(SegState::end) {
                if prev != start {
                    let path = segment_path(&cfg.dir, start);
                    return Err(LogError::Gap {
                        path,
                        expected: prev,
                        found: start,
                    });
                }
            }
            let scanned = scan_segment(&cfg.dir, start, last, segment_bytes, syncing)?;
            let seg = Arc::new(scanned.seg);
            let mut state = SegState {
                seg: Arc::clone(&seg),
                digests: Vec::new(),
                record_bytes: 0,
            };
            for f in scanned.records {
                index.entry(f.digest).or_insert_with(|| Entry {
                    seg: Arc::clone(&seg),
                    off: f.body,
                    len: f.len,
                    seq: f.seq,
                });
                state.digests.push(f.digest);
                state.record_bytes += f.len as u64;
            }
            records += state.digests.len();
            if last {
                write_off = scanned.end;
                truncated = scanned.truncated;
            }
            segments.push_back(state);
        }
        if segments.is_empty() {
            let seg = create_segment(&cfg.dir, 0, segment_bytes, syncing)?;
            segments.push_back(SegState {
                seg: Arc::new(seg),
                digests: Vec::new(),
                record_bytes: 0,
            });
        }
        let next_seq = segments.back().map_or(0, SegState::end);
        let log = BatchLog {
            cfg,
            segment_bytes,
            segments,
            index,
            write_off,
            synced_off: write_off,
            next_seq,
            poisoned: false,
            appends: 0,
            duplicate_appends: 0,
            syncs: 0,
            _lock: lock,
        };
        let recovery = Recovery {
            segments: log.segments.len(),
            records,
            next_seq: Seq(next_seq),
            truncated,
        };
        Ok((log, recovery))
    }

    /// Appends `bytes` under `digest`, durably per the [`FsyncPolicy`]. Idempotent: for a
    /// digest already in the log it writes nothing and returns the existing location.
    pub fn append(&mut self, digest: Digest, bytes: &[u8]) -> Result<Location, LogError> {
        if self.poisoned {
            return Err(LogError::Poisoned);
        }
        if let Some(e) = self.index.get(&digest) {
            self.duplicate_appends += 1;
            return Ok(e.location());
        }
        let max = self.cfg.max_record_bytes;
        if bytes.len() > max {
            return Err(LogError::RecordTooLarge {
                len: bytes.len(),
                max,
            });
        }
        // Cannot overflow: max_record_bytes <= MAX_RECORD_LIMIT.
        let need = record::record_size(bytes.len()).unwrap_or(usize::MAX);
        if self.write_off.saturating_add(need) > self.active().seg.capacity() {
            self.roll(need)?;
        }
        let seq = self.next_seq;
        let off = self.write_off;
        let header = record::encode_header(seq, &digest, bytes);
        let seg = Arc::clone(&self.active().seg);
        // SAFETY: [off, off + need) is in the active segment's unused tail (roll made room),
        // which no LogBytes or index entry covers; `bytes` is caller memory or an older
        // record, so it does not overlap the tail. The padding is already zero (tail
        // invariant), so only header and body are written.
        unsafe { seg.write(off, &[&header, bytes]) };
        let end = off + need;
        let due = match self.cfg.fsync {
            FsyncPolicy::Always => true,
            FsyncPolicy::EveryBytes(n) => (end - self.synced_off) as u64 >= n,
            FsyncPolicy::Never => false,
        };
        self.write_off = end;
        if due {
            self.flush_active()?;
        }
        self.index.insert(
            digest,
            Entry {
                seg,
                off: off + RECORD_HEADER_BYTES,
                len: bytes.len(),
                seq,
            },
        );
        let active = self.active_mut();
        active.digests.push(digest);
        active.record_bytes += bytes.len() as u64;
        self.next_seq += 1;
        self.appends += 1;
        Ok(Location {
            seq: Seq(seq),
            segment: Seq(self.active().seg.start),
            offset: (off + RECORD_HEADER_BYTES) as u64,
            len: bytes.len() as u32,
        })
    }

    /// The body appended under `digest`, read in place. See [`LogBytes`].
    pub fn get(&self, digest: &Digest) -> Option<LogBytes> {
        let e = self.index.get(digest)?;
        Some(LogBytes::new(
            Arc::clone(&e.seg),
            e.off,
            e.len,
            e.seq,
            *digest,
        ))
    }

    /// Whether a record with this digest is in the log.
    pub fn contains(&self, digest: &Digest) -> bool {
        self.index.contains_key(digest)
    }

    /// Where the record with this digest is.
    pub fn locate(&self, digest: &Digest) -> Option<Location> {
        self.index.get(digest).map(Entry::location)
    }

    /// Records in the log.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The sequence number the next append will get. Remember it at a checkpoint and pass
    /// it to [`BatchLog::prune_before`] once the checkpoint is stable.
    pub fn next_seq(&self) -> Seq {
        Seq(self.next_seq)
    }

    /// The oldest sequence number the log may still hold.
    pub fn first_seq(&self) -> Seq {
        Seq(self.segments.front().map_or(self.next_seq, |s| s.seg.start))
    }

    /// Every record's sequence number and digest, oldest first: for replay after a restart.
    pub fn records(&self) -> impl Iterator<Item = (Seq, Digest)> + '_ {
        self.segments.iter().flat_map(|s| {
            let start = s.seg.start;
            s.digests
                .iter()
                .enumerate()
                .map(move |(i, d)| (Seq(start + i as u64), *d))
        })
    }

    /// Forces every appended byte to stable storage, whatever the policy.
    pub fn sync(&mut self) -> Result<(), LogError> {
        if self.poisoned {
            return Err(LogError::Poisoned);
        }
        self.flush_active()
    }

    /// Hands the not yet written-back part of the active segment to the caller, who
    /// writes it back with [`SyncJob::run`] — on another thread if it likes, so that the
    /// thread appending never blocks on the disk — and counts it synced from now on.
    /// `None` when everything appended is already written back.
    ///
    /// What a job covers is durable only once `run` returned `Ok`: a caller that
    /// promises durability (a receipt, an acknowledgement) waits for that. A job that
    /// fails leaves the log's state unknown; the caller must stop using the log (reopen
    /// it to recover what is on disk), as after a failed [`BatchLog::sync`]. A segment is
    /// still sealed with a full write-back before the next one begins, whatever jobs
    /// are in flight, so only the last segment can be torn.
    pub fn take_sync_job(&mut self) -> Result<Option<SyncJob>, LogError> {
        if self.poisoned {
            return Err(LogError::Poisoned);
        }
        let (from, len) = (self.synced_off, self.write_off - self.synced_off);
        if len == 0 {
            return Ok(None);
        }
        self.synced_off = self.write_off;
        self.syncs += 1;
        Ok(Some(SyncJob {
            seg: Arc::clone(&self.active().seg),
            from,
            len,
        }))
    }

    /// Syncs and closes. Dropping the log also syncs (under a syncing policy) but cannot
    /// report an error.
    pub fn close(mut self) -> Result<(), LogError> {
        self.sync()
    }

    /// Drops every whole segment all of whose records have a sequence number below
    /// `below`: the caller no longer needs anything appended before `below`. The active
    /// segment is never dropped. Handed-out [`LogBytes`] stay valid.
    pub fn prune_before(&mut self, below: Seq) -> Result<Pruned, LogError> {
        let mut pruned = Pruned::default();
        while self.segments.len() > 1 && self.segments[0].end() <= below.0 {
            let Some(s) = self.segments.pop_front() else {
                break;
            };
            for d in &s.digests {
                if self
                    .index
                    .get(d)
                    .is_some_and(|e| Arc::ptr_eq(&e.seg, &s.seg))
                {
                    self.index.remove(d);
                }
            }
            pruned.segments += 1;
            pruned.records += s.digests.len();
            pruned.file_bytes += s.seg.capacity() as u64;
            // Unlinking leaves the mapping (and so every LogBytes) valid.
            fs::remove_file(s.seg.path()).map_err(io_err("remove", s.seg.path()))?;
        }
        if pruned.segments > 0 && self.cfg.fsync != FsyncPolicy::Never {
            sync_dir(&self.cfg.dir)?;
        }
        Ok(pruned)
    }

    pub fn stats(&self) -> LogStats {
        LogStats {
            segments: self.segments.len(),
            records: self.index.len(),
            record_bytes: self.segments.iter().map(|s| s.record_bytes).sum(),
            file_bytes: self.segments.iter().map(|s| s.seg.capacity() as u64).sum(),
            first_seq: self.first_seq(),
            next_seq: self.next_seq(),
            appends: self.appends,
            duplicate_appends: self.duplicate_appends,
            syncs: self.syncs,
            unsynced_bytes: (self.write_off - self.synced_off) as u64,
        }
    }

    pub fn config(&self) -> &LogConfig {
        &self.cfg
    }

    fn active(&self) -> &SegState {
        self.segments
            .back()
            .expect("the log always has an active segment")
    }

    fn active_mut(&mut self) -> &mut SegState {
        self.segments
            .back_mut()
            .expect("the log always has an active segment")
    }

    fn syncing(&self) -> bool {
        self.cfg.fsync != FsyncPolicy::Never
    }

    /// Writes back the unsynced part of the active segment. Poisons the log on failure.
    fn flush_active(&mut self) -> Result<(), LogError> {
        let (from, len) = (self.synced_off, self.write_off - self.synced_off);
        if len == 0 {
            return Ok(());
        }
        let seg = Arc::clone(&self.active().seg);
        if let Err(e) = seg.flush(from, len) {
            self.poisoned = true;
            return Err(io_err("sync", seg.path())(e));
        }
        self.synced_off = self.write_off;
        self.syncs += 1;
        Ok(())
    }

    /// Makes room for a record of `need` bytes: a new active segment, or, when the active
    /// one holds nothing yet, a bigger active segment.
    fn roll(&mut self, need: usize) -> Result<(), LogError> {
        let capacity = self.segment_bytes.max(need);
        let syncing = self.syncing();
        if self.active().digests.is_empty() {
            // Until the bigger segment is mapped the log has no active segment: poison it
            // so that a failure here leaves a log that refuses writes rather than panics.
            self.poisoned = true;
            let Some(old) = self.segments.pop_back() else {
                unreachable!("never empty")
            };
            // No record is in it, so neither the index nor any LogBytes holds its Arc.
            let seg = match Arc::try_unwrap(old.seg) {
                Ok(seg) => seg,
                Err(_) => unreachable!("an empty segment is shared"),
            };
            let Segment {
                start, path, file, ..
            } = seg; // unmaps
            preallocate(&file, capacity as u64, &path)?;
            if syncing {
                file.sync_all().map_err(io_err("sync", &path))?;
            }
            let seg =
                Segment::map(start, path.clone(), file, capacity).map_err(io_err("map", &path))?;
            self.segments.push_back(SegState {
                seg: Arc::new(seg),
                digests: Vec::new(),
                record_bytes: 0,
            });
            self.poisoned = false;
        } else {
            // Seal: the finished segment is durable before the next one begins, so only the
            // last segment can ever be torn. All of it: a part handed out as a
            // `SyncJob` may still be on its way to the disk.
            if syncing {
                self.synced_off = 0;
                self.flush_active()?;
            }
            let seg = create_segment(&self.cfg.dir, self.next_seq, capacity, syncing)?;
            self.segments.push_back(SegState {
                seg: Arc::new(seg),
                digests: Vec::new(),
                record_bytes: 0,
            });
        }
        self.write_off = 0;
        self.synced_off = 0;
        Ok(())
    }
}

impl Drop for BatchLog {
    fn drop(&mut self) {
        if self.syncing() && !self.poisoned {
            let _ = self.flush_active();
        }
    }
}

impl std::fmt::Debug for BatchLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchLog")
            .field("dir", &self.cfg.dir)
            .field("stats", &self.stats())
            .finish()
    }
}

fn segment_path(dir: &Path, start: u64) -> PathBuf {
    dir.join(format!("{start:020}{SEGMENT_SUFFIX}"))
}

/// Start sequence numbers of the segment files in `dir`, ascending. Other files are
/// ignored.
fn list_segments(dir: &Path) -> Result<Vec<u64>, LogError> {
    let mut starts = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err("list", dir))? {
        let entry = entry.map_err(io_err("list", dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(stem) = name.strip_suffix(SEGMENT_SUFFIX) else {
            continue;
        };
        if stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(start) = stem.parse::<u64>() {
                starts.push(start);
            }
        }
    }
    starts.sort_unstable();
    Ok(starts)
}

/// Extends `file` to `len` bytes of zeros and, on Linux, allocates its blocks, so that a
/// write into the mapping can never hit a full disk (which would be a SIGBUS).
fn preallocate(file: &File, len: u64, path: &Path) -> Result<(), LogError> {
    file.set_len(len).map_err(io_err("resize", path))?;
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let len = libc::off_t::try_from(len)
            .map_err(|_| LogError::Config(format!("segment of {len} bytes is too large")))?;
        // SAFETY: a plain syscall on a file descriptor we own.
        let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) };
        // Filesystems without fallocate get the sparse file set_len made.
        if rc != 0 && rc != libc::EOPNOTSUPP && rc != libc::EINVAL {
            return Err(io_err("preallocate", path)(io::Error::from_raw_os_error(
                rc,
            )));
        }
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("sync", dir))
}

fn lock_dir(dir: &Path) -> Result<File, LogError> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io_err("open", &path))?;
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: a plain syscall on a file descriptor we own.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::WouldBlock {
                return Err(LogError::Locked(dir.to_path_buf()));
            }
            return Err(io_err("lock", &path)(err));
        }
    }
    Ok(file)
}

fn create_segment(
    dir: &Path,
    start: u64,
    capacity: usize,
    syncing: bool,
) -> Result<Segment, LogError> {
    let path = segment_path(dir, start);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(io_err("create", &path))?;
    preallocate(&file, capacity as u64, &path)?;
    if syncing {
        file.sync_all().map_err(io_err("sync", &path))?;
        sync_dir(dir)?;
    }
    Segment::map(start, path.clone(), file, capacity).map_err(io_err("map", &path))
}

struct Scanned {
    seg: Segment,
    records: Vec<record::Found>,
    /// End of the last kept record: where the next one goes.
    end: usize,
    truncated: Option<Truncation>,
}

/// Opens, maps and verifies one segment; cuts a bad tail if it is the last one.
fn scan_segment(
    dir: &Path,
    start: u64,
    last: bool,
    segment_bytes: usize,
    syncing: bool,
) -> Result<Scanned, LogError> {
    let path = segment_path(dir, start);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(io_err("open", &path))?;
    let len = file.metadata().map_err(io_err("stat", &path))?.len();
    let len = usize::try_from(len)
        .map_err(|_| LogError::Config(format!("{} is too large to map", path.display())))?;
    // The last segment is the one appends go to: give it its full, aligned size again (a
    // crash may have left it short). Growing adds zeros, which read as the end of the log.
    let capacity = if last {
        len.max(segment_bytes).next_multiple_of(RECORD_ALIGN)
    } else {
        len
    };
    if capacity > len {
        preallocate(&file, capacity as u64, &path)?;
    }
    let seg = Segment::map(start, path.clone(), file, capacity).map_err(io_err("map", &path))?;

    let mut records = Vec::new();
    let mut off = 0;
    let mut bad = None;
    let dirty_to;
    {
        // SAFETY: nothing writes to this segment while `data` lives: it is not yet in the
        // log, and the slice is dropped at the end of this block.
        let data = unsafe { seg.as_slice() };
        let mut expected = start;
        loop {
            match record::parse(data, off) {
                Parsed::End => break,
                Parsed::Record(f) if f.seq == expected => {
                    records.push(f);
                    off = f.next;
                    expected += 1;
                }
                Parsed::Record(f) => {
                    bad = Some(Corruption::Sequence {
                        expected,
                        found: f.seq,
                    });
                    break;
                }
                Parsed::Corrupt(c) => {
                    bad = Some(c);
                    break;
                }
            }
        }
        if !last {
            if let Some(reason) = bad {
                return Err(LogError::Corrupt {
                    path,
                    offset: off as u64,
                    reason,
                });
            }
            return Ok(Scanned {
                seg,
                records,
                end: off,
                truncated: None,
            });
        }
        dirty_to = record::last_non_zero(&data[off..]).map(|i| off + i + 1);
    }
    let Some(dirty_to) = dirty_to else {
        debug_assert!(bad.is_none(), "a bad record is never all zeros");
        return Ok(Scanned {
            seg,
            records,
            end: off,
            truncated: None,
        });
    };
    // Cut: shrink the file to the kept records and grow it back, which zeroes the rest
    // (restoring the tail invariant). The mapping is dropped first: nothing may touch a
    // mapping over a shrinking file.
    let Segment { file, .. } = seg;
    file.set_len(off as u64)
        .map_err(io_err("truncate", &path))?;
    preallocate(&file, capacity as u64, &path)?;
    if syncing {
        file.sync_all().map_err(io_err("sync", &path))?;
    }
    let seg = Segment::map(start, path.clone(), file, capacity).map_err(io_err("map", &path))?;
    let truncated = Truncation {
        path,
        offset: off as u64,
        discarded_bytes: (dirty_to - off) as u64,
        reason: bad.unwrap_or(Corruption::TrailingBytes),
    };
    Ok(Scanned {
        seg,
        records,
        end: off,
        truncated: Some(truncated),
    })
}
