//! [`DurableCell`]: a small blob stored crash-safely, for a protocol's safety state.
//!
//! A replica must never vote twice in a view. The state that prevents it (last voted
//! view or round, the lock) must be on stable storage before any vote leaves the node,
//! and a restarted node must read back exactly the last value it stored. The engine
//! persists it through a `DurableCell` before it sends a vote.
//!
//! # How
//!
//! [`DurableCell::store`] writes the value, framed and checksummed, to `<path>.tmp`,
//! fsyncs it, renames it over `<path>` and fsyncs the directory. `rename` replaces the
//! name atomically, so at every instant `<path>` names a complete value: the old one until
//! the rename is durable, the new one after. A crash during `store` leaves at worst a torn
//! `<path>.tmp`, which [`DurableCell::load`] never reads.
//!
//! File format: `magic "OLYCELL1" | len u32 LE | reserved u32 (0) | xxh3-64 of the
//! preceding 16 bytes and the value | value`.
//!
//! # Invariants
//!
//! * `load` returns the value of the last `store` that returned `Ok`, or a later one
//!   whose `store` was interrupted after its rename reached the disk.
//! * `load` never returns a value that fails its checksum. A damaged `<path>` is an error
//!   ([`CellError::Corrupt`]), **not** `None`: reporting "nothing stored" would let a
//!   node forget its last vote and vote again.
//! * Values are at most [`MAX_CELL_BYTES`]; larger ones are refused on store and a file
//!   claiming more is refused on load before it is read.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use xxhash_rust::xxh3::Xxh3;

/// Largest value a cell holds. Safety state is a few views and a certificate.
pub const MAX_CELL_BYTES: usize = 1024 * 1024;

const MAGIC: &[u8; 8] = b"OLYCELL1";
const HEADER: usize = 24;

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
#[derive(Debug, Clone)]
pub struct DurableCell {
    path: PathBuf,
    tmp: PathBuf,
    dir: PathBuf,
}

impl DurableCell {
    /// A cell stored at `path`; its directory is created if missing. Nothing is read.
    pub fn new(path: impl Into<PathBuf>) -> Result<Self, CellError> {
        let path = path.into();
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        let mut tmp = path.clone().into_os_string();
        tmp.push(".tmp");
        Ok(DurableCell {
            path,
            tmp: PathBuf::from(tmp),
            dir,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The last value stored, or `None` if nothing was ever stored.
    pub fn load(&self) -> Result<Option<Vec<u8>>, CellError> {
        let mut file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("open", &self.path)(e)),
        };
        let size = file.metadata().map_err(io_err("stat", &self.path))?.len();
        if size > (HEADER + MAX_CELL_BYTES) as u64 {
            return Err(self.corrupt("larger than any value"));
        }
        let mut buf = Vec::with_capacity(size as usize);
        file.read_to_end(&mut buf)
            .map_err(io_err("read", &self.path))?;
        if buf.len() < HEADER {
            return Err(self.corrupt("shorter than its header"));
        }
        if &buf[0..8] != MAGIC {
            return Err(self.corrupt("bad magic"));
        }
        let len = u32::from_le_bytes([buf[8], buf[9], buf[10], buf[11]]) as usize;
        if buf.len() != HEADER + len {
            return Err(self.corrupt("length does not match the file size"));
        }
        let mut stored = [0u8; 8];
        stored.copy_from_slice(&buf[16..24]);
        if u64::from_le_bytes(stored) != checksum(&buf[..16], &buf[HEADER..]) {
            return Err(self.corrupt("checksum mismatch"));
        }
        if buf[12..16] != [0; 4] {
            return Err(self.corrupt("unknown flags"));
        }
        buf.drain(..HEADER);
        Ok(Some(buf))
    }

    /// Stores `value` durably: when this returns `Ok`, a crash at any later point leaves
    /// `load` returning `value` (or a later value).
    pub fn store(&self, value: &[u8]) -> Result<(), CellError> {
        if value.len() > MAX_CELL_BYTES {
            return Err(CellError::TooLarge(value.len()));
        }
        let mut head = [0u8; HEADER];
        head[0..8].copy_from_slice(MAGIC);
        head[8..12].copy_from_slice(&(value.len() as u32).to_le_bytes());
        let sum = checksum(&head[..16], value);
        head[16..24].copy_from_slice(&sum.to_le_bytes());

        let mut tmp = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&self.tmp)
            .map_err(io_err("create", &self.tmp))?;
        tmp.write_all(&head).map_err(io_err("write", &self.tmp))?;
        tmp.write_all(value).map_err(io_err("write", &self.tmp))?;
        tmp.sync_all().map_err(io_err("sync", &self.tmp))?;
        drop(tmp);
        fs::rename(&self.tmp, &self.path).map_err(io_err("rename", &self.tmp))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err("sync", &self.dir))
    }

    fn corrupt(&self, why: &'static str) -> CellError {
        CellError::Corrupt {
            path: self.path.clone(),
            why,
        }
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
        let cell = DurableCell::new(dir.path().join("sub/safety")).unwrap();
        assert_eq!(cell.load().unwrap(), None);
        cell.store(b"view 1").unwrap();
        assert_eq!(cell.load().unwrap().as_deref(), Some(&b"view 1"[..]));
        cell.store(b"").unwrap();
        assert_eq!(cell.load().unwrap().as_deref(), Some(&b""[..]));
        cell.store(b"view 2, lock 7").unwrap();
        let again = DurableCell::new(dir.path().join("sub/safety")).unwrap();
        assert_eq!(
            again.load().unwrap().as_deref(),
            Some(&b"view 2, lock 7"[..])
        );
    }

    #[test]
    fn a_torn_temp_file_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let cell = DurableCell::new(dir.path().join("safety")).unwrap();
        cell.store(b"voted view 41").unwrap();
        // A crash during the next store: every prefix of what it would write, and garbage.
        let mut next = Vec::new();
        next.extend_from_slice(MAGIC);
        next.extend_from_slice(&13u32.to_le_bytes());
        next.extend_from_slice(&[0; 12]);
        next.extend_from_slice(b"voted view 42");
        for cut in 0..=next.len() {
            fs::write(&cell.tmp, &next[..cut]).unwrap();
            assert_eq!(cell.load().unwrap().as_deref(), Some(&b"voted view 41"[..]));
        }
        // And the next store still works over the torn temp file.
        cell.store(b"voted view 42").unwrap();
        assert_eq!(cell.load().unwrap().as_deref(), Some(&b"voted view 42"[..]));
    }

    #[test]
    fn damage_to_the_cell_is_an_error_not_none() {
        let dir = tempfile::tempdir().unwrap();
        let cell = DurableCell::new(dir.path().join("safety")).unwrap();
        cell.store(b"lock at view 9").unwrap();
        let good = fs::read(cell.path()).unwrap();
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x20;
            fs::write(cell.path(), &bad).unwrap();
            assert!(
                matches!(cell.load(), Err(CellError::Corrupt { .. })),
                "flipped byte {i} went unnoticed"
            );
        }
        for cut in 0..good.len() {
            fs::write(cell.path(), &good[..cut]).unwrap();
            assert!(
                matches!(cell.load(), Err(CellError::Corrupt { .. })),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn oversized_values_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cell = DurableCell::new(dir.path().join("safety")).unwrap();
        let big = vec![0u8; MAX_CELL_BYTES + 1];
        assert!(matches!(cell.store(&big), Err(CellError::TooLarge(_))));
        assert_eq!(cell.load().unwrap(), None);
    }
}
