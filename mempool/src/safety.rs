//! [`DurableCell`]: a small blob stored crash-safely, for a protocol's safety state.
//!
//! A replica must never vote twice in a view. The state that prevents it (last voted
//! view or round, the lock) must be on stable storage before any vote leaves the node,
//! and a restarted node must read back exactly the last value it stored. The engine
//! persists it through a `DurableCell` before it sends a vote.
//!
//! # How
//!
//! The value lives in two slot files, `<path>.0` and `<path>.1`, written alternately.
//! [`DurableCell::store`] overwrites the *older* slot in place with one `pwrite` of the
//! whole record (header, sequence number, checksum, value) and one `fdatasync`: a single
//! flush per store, no rename and no directory sync (the slots are created, and their
//! directory synced, once). [`DurableCell::load`] reads both slots and returns the valid
//! record with the higher sequence number.
//!
//! A crash during `store` can tear only the slot being written. That store never
//! returned, so no vote depended on it, and the other slot still holds the previous
//! value, which `load` returns. This is the classic double-buffered superblock.
//!
//! Record format: `magic "OLYCELL2" | len u32 LE | flags u32 (0) | seq u64 LE |
//! xxh3-64 of the preceding 24 bytes and the value | value`. Bytes after the record (left
//! by an earlier, longer value) are ignored: the header's length bounds the read.
//!
//! # Invariants
//!
//! * `load` returns the value of the last `store` that returned `Ok`, or of a later one
//!   that was interrupted after its write reached the disk.
//! * `load` never returns a value that fails its checksum. When **both** slots exist and
//!   neither holds a valid record, that is an error ([`CellError::Corrupt`]), **not**
//!   `None`: reporting "nothing stored" would let a node forget its last vote and vote
//!   again. (One damaged slot beside a valid one is what a torn write looks like, and is
//!   recovered from.)
//! * Values are at most [`MAX_CELL_BYTES`]; larger ones are refused on store and a record
//!   claiming more is refused on load before it is read.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use xxhash_rust::xxh3::Xxh3;

/// Largest value a cell holds. Safety state is a few views and a certificate.
pub const MAX_CELL_BYTES: usize = 1024 * 1024;

const MAGIC: &[u8; 8] = b"OLYCELL2";
const HEADER: usize = 32;

/// Why a cell could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CellError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("value of {0} bytes exceeds the limit of {MAX_CELL_BYTES} bytes")]
    TooLarge(usize),
    #[error("{path} is corrupt: {why}")]
    Corrupt { path: PathBuf, why: &'static str },
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> CellError + 'a {
    move |source| CellError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// A crash-safe cell holding one small blob. See the module docs.
#[derive(Debug)]
pub struct DurableCell {
    path: PathBuf,
    slots: [PathBuf; 2],
    dir: PathBuf,
    /// Open slot files, once the first store created them.
    files: Option<[File; 2]>,
    /// Sequence number of the newest record (0: none).
    seq: u64,
}

/// What one slot holds.
enum Slot {
    Missing,
    Valid(u64, Vec<u8>),
    Corrupt(&'static str),
}

impl DurableCell {
    /// A cell stored at `path` (as `<path>.0` and `<path>.1`); its directory is created
    /// if missing. Nothing is read.
    pub fn new(path: impl Into<PathBuf>) -> Result<Self, CellError> {
        let path = path.into();
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        let slot = |i: u32| {
            let mut p = path.clone().into_os_string();
            p.push(format!(".{i}"));
            PathBuf::from(p)
        };
        Ok(DurableCell {
            slots: [slot(0), slot(1)],
            path,
            dir,
            files: None,
            seq: 0,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The last value stored, or `None` if nothing was ever stored.
    pub fn load(&mut self) -> Result<Option<Vec<u8>>, CellError> {
        let a = self.read_slot(0)?;
        let b = self.read_slot(1)?;
        let best = match (a, b) {
            (Slot::Valid(sa, va), Slot::Valid(sb, vb)) => {
                Some(if sa >= sb { (sa, va) } else { (sb, vb) })
            }
            (Slot::Valid(s, v), _) | (_, Slot::Valid(s, v)) => Some((s, v)),
            (Slot::Missing, Slot::Missing) => None,
            (Slot::Corrupt(why), _) | (_, Slot::Corrupt(why)) => {
                return Err(CellError::Corrupt {
                    path: self.path.clone(),
                    why,
                })
            }
        };
        Ok(best.map(|(seq, v)| {
            self.seq = self.seq.max(seq);
            v
        }))
    }

    fn read_slot(&self, i: usize) -> Result<Slot, CellError> {
        let path = &self.slots[i];
        let buf = match fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Slot::Missing),
            Err(e) => return Err(io_err("read", path)(e)),
        };
        if buf.is_empty() {
            return Ok(Slot::Missing); // created, never written
        }
        if buf.len() < HEADER {
            return Ok(Slot::Corrupt("shorter than its header"));
        }
        if &buf[0..8] != MAGIC {
            return Ok(Slot::Corrupt("bad magic"));
        }
        let len = u32::from_le_bytes([buf[8], buf[9], buf[10], buf[11]]) as usize;
        if len > MAX_CELL_BYTES || buf.len() < HEADER + len {
            return Ok(Slot::Corrupt("length exceeds the record"));
        }
        let mut word = [0u8; 8];
        word.copy_from_slice(&buf[24..32]);
        if u64::from_le_bytes(word) != checksum(&buf[..24], &buf[HEADER..HEADER + len]) {
            return Ok(Slot::Corrupt("checksum mismatch"));
        }
        if buf[12..16] != [0; 4] {
            return Ok(Slot::Corrupt("unknown flags"));
        }
        word.copy_from_slice(&buf[16..24]);
        Ok(Slot::Valid(
            u64::from_le_bytes(word),
            buf[HEADER..HEADER + len].to_vec(),
        ))
    }

    /// Stores `value` durably: when this returns `Ok`, a crash at any later point leaves
    /// `load` returning `value` (or a later value). Call [`DurableCell::load`] first on
    /// a cell that may hold older values, so sequence numbers keep rising.
    pub fn store(&mut self, value: &[u8]) -> Result<(), CellError> {
        if value.len() > MAX_CELL_BYTES {
            return Err(CellError::TooLarge(value.len()));
        }
        if self.files.is_none() {
            self.files = Some(self.open_slots()?);
        }
        let seq = self.seq + 1;
        let mut rec = Vec::with_capacity(HEADER + value.len());
        rec.extend_from_slice(MAGIC);
        rec.extend_from_slice(&(value.len() as u32).to_le_bytes());
        rec.extend_from_slice(&[0; 4]);
        rec.extend_from_slice(&seq.to_le_bytes());
        let sum = checksum(&rec, value);
        rec.extend_from_slice(&sum.to_le_bytes());
        rec.extend_from_slice(value);
        let i = (seq % 2) as usize;
        let path = &self.slots[i];
        let file = match &self.files {
            Some(f) => &f[i],
            None => unreachable!("opened above"),
        };
        file.write_all_at(&rec, 0).map_err(io_err("write", path))?;
        file.sync_data().map_err(io_err("sync", path))?;
        self.seq = seq;
        Ok(())
    }

    /// Opens (creating) both slots and makes their names durable.
    fn open_slots(&self) -> Result<[File; 2], CellError> {
        let open = |p: &PathBuf| {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(p)
                .map_err(io_err("open", p))
        };
        let files = [open(&self.slots[0])?, open(&self.slots[1])?];
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err("sync", &self.dir))?;
        Ok(files)
    }
}

fn checksum(head: &[u8], value: &[u8]) -> u64 {
    let mut h = Xxh3::new();
    h.update(head);
    h.update(value);
    h.digest()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_of_a_fresh_cell_is_none_and_store_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let mut cell = DurableCell::new(dir.path().join("sub/safety")).unwrap();
        assert_eq!(cell.load().unwrap(), None);
        cell.store(b"view 1").unwrap();
        assert_eq!(cell.load().unwrap().as_deref(), Some(&b"view 1"[..]));
        cell.store(b"a much longer value that the next, shorter one overwrites")
            .unwrap();
        cell.store(b"").unwrap();
        assert_eq!(cell.load().unwrap().as_deref(), Some(&b""[..]));
        cell.store(b"view 2, lock 7").unwrap();
        let mut again = DurableCell::new(dir.path().join("sub/safety")).unwrap();
        assert_eq!(
            again.load().unwrap().as_deref(),
            Some(&b"view 2, lock 7"[..])
        );
        // A reopened cell continues the sequence: its next store wins over the old ones.
        again.store(b"view 3").unwrap();
        let mut third = DurableCell::new(dir.path().join("sub/safety")).unwrap();
        assert_eq!(third.load().unwrap().as_deref(), Some(&b"view 3"[..]));
    }

    /// A crash during a store tears the slot being written: every prefix of the new
    /// record, and garbage, over the older slot. `load` returns the previous value.
    #[test]
    fn a_torn_store_leaves_the_previous_value() {
        let dir = tempfile::tempdir().unwrap();
        let mut cell = DurableCell::new(dir.path().join("safety")).unwrap();
        cell.store(b"voted view 40").unwrap();
        cell.store(b"voted view 41").unwrap();
        // The next store (seq 3) would overwrite slot 1, which holds seq 1.
        let older = fs::read(&cell.slots[1]).unwrap();
        let mut probe = DurableCell::new(dir.path().join("probe")).unwrap();
        probe.seq = 2;
        probe.store(b"voted view 42").unwrap();
        let next = fs::read(&probe.slots[1]).unwrap();
        for cut in 0..next.len() {
            let mut torn = next[..cut].to_vec();
            if torn.len() < older.len() {
                torn.extend_from_slice(&older[torn.len()..]);
            }
            fs::write(&cell.slots[1], &torn).unwrap();
            let mut c = DurableCell::new(dir.path().join("safety")).unwrap();
            assert_eq!(
                c.load().unwrap().as_deref(),
                Some(&b"voted view 41"[..]),
                "cut at {cut}"
            );
        }
        let mut c = DurableCell::new(dir.path().join("safety")).unwrap();
        c.load().unwrap();
        c.store(b"voted view 42").unwrap();
        assert_eq!(c.load().unwrap().as_deref(), Some(&b"voted view 42"[..]));
    }

    #[test]
    fn damage_to_both_slots_is_an_error_not_none() {
        let dir = tempfile::tempdir().unwrap();
        let mut cell = DurableCell::new(dir.path().join("safety")).unwrap();
        cell.store(b"lock at view 8").unwrap();
        cell.store(b"lock at view 9").unwrap();
        let good = [
            fs::read(&cell.slots[0]).unwrap(),
            fs::read(&cell.slots[1]).unwrap(),
        ];
        for i in 0..good[0].len().min(good[1].len()) {
            for (s, g) in good.iter().enumerate() {
                let mut bad = g.clone();
                bad[i] ^= 0x20;
                fs::write(&cell.slots[s], &bad).unwrap();
            }
            assert!(
                matches!(cell.load(), Err(CellError::Corrupt { .. })),
                "flipped byte {i} in both slots went unnoticed"
            );
        }
        // One damaged slot beside a valid one: the valid one is returned.
        fs::write(&cell.slots[0], &good[0]).unwrap();
        assert_eq!(
            cell.load().unwrap().as_deref(),
            Some(&b"lock at view 9"[..])
        );
    }

    #[test]
    fn oversized_values_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut cell = DurableCell::new(dir.path().join("safety")).unwrap();
        let big = vec![0u8; MAX_CELL_BYTES + 1];
        assert!(matches!(cell.store(&big), Err(CellError::TooLarge(_))));
        assert_eq!(cell.load().unwrap(), None);
    }
}
