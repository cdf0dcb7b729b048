//! Scenario tests of the batch log: crash recovery at every byte, reopen, rollover,
//! pruning, zero-copy reads.

use olympus_mempool::log::{
    BatchLog, Corruption, FsyncPolicy, LogConfig, LogError, Seq, RECORD_HEADER_BYTES,
};
use olympus_mempool::{Batcher, BatcherConfig, SealedBatch};
use olympus_types::{Batch, Digest, Transaction};
use proptest::prelude::*;
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn cfg(dir: &Path, segment_bytes: u64) -> LogConfig {
    LogConfig {
        segment_bytes,
        fsync: FsyncPolicy::Never,
        ..LogConfig::new(dir)
    }
}

/// A deterministic, non-zero body.
fn body(i: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|j| ((i * 131 + j * 7) % 255 + 1) as u8)
        .collect()
}

fn open(c: &LogConfig) -> (BatchLog, olympus_mempool::Recovery) {
    BatchLog::open(c.clone()).unwrap()
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    v.sort();
    v
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for f in segment_files(from) {
        fs::copy(&f, to.join(f.file_name().unwrap())).unwrap();
    }
}

fn record_end(off_body: u64, len: usize) -> u64 {
    off_body + len as u64
}

fn padded_end(off_body: u64, len: usize) -> u64 {
    record_end(off_body, len).next_multiple_of(16)
}

/// The crash test: for every byte offset within the last two records, truncate the last
/// segment there, and separately flip the byte there; recovery keeps exactly the
/// complete records before the damage, the log takes appends, and they survive reopen.
#[test]
fn recovery_at_every_byte_of_the_last_two_records() {
    let root = tempfile::tempdir().unwrap();
    let orig = root.path().join("orig");
    let c = cfg(&orig, 1024);
    // 2000 bytes gets a segment of its own; the last six share the last segment.
    let sizes = [10, 200, 300, 2000, 17, 0, 400, 16, 100, 37];
    let bodies: Vec<Vec<u8>> = sizes.iter().enumerate().map(|(i, &n)| body(i, n)).collect();
    let digests: Vec<Digest> = bodies.iter().map(|b| Digest::of(b)).collect();
    let mut locs = Vec::new();
    {
        let (mut log, rec) = open(&c);
        assert_eq!(rec.records, 0);
        for (d, b) in digests.iter().zip(&bodies) {
            locs.push(log.append(*d, b).unwrap());
        }
        assert_eq!(log.stats().segments, 3);
    }
    let n = sizes.len();
    let (a, b) = (locs[n - 2], locs[n - 1]);
    assert_eq!(
        a.segment, b.segment,
        "the last two records share the last segment"
    );
    let files = segment_files(&orig);
    let last_file = files.last().unwrap().clone();
    let last_name = last_file.file_name().unwrap().to_owned();
    let original = fs::read(&last_file).unwrap();

    let start = a.offset - RECORD_HEADER_BYTES as u64;
    let end = padded_end(b.offset, sizes[n - 1]);
    let extra = body(99, 77);
    let extra_digest = Digest::of(&extra);
    let mut case = 0;
    for p in start..end {
        for flip in [false, true] {
            case += 1;
            let dir = root.path().join(format!("case{case}"));
            copy_dir(&orig, &dir);
            let target = dir.join(&last_name);
            let expect_kept = if flip {
                let mut bytes = original.clone();
                bytes[p as usize] ^= 0x5a;
                fs::write(&target, &bytes).unwrap();
                // A flip in a record's header or body loses it and what follows; a flip
                // in its padding loses nothing (padding is not part of any record).
                if p < record_end(a.offset, sizes[n - 2]) {
                    n - 2
                } else if p < padded_end(a.offset, sizes[n - 2]) {
                    n
                } else if p < record_end(b.offset, sizes[n - 1]) {
                    n - 1
                } else {
                    n
                }
            } else {
                fs::OpenOptions::new()
                    .write(true)
                    .open(&target)
                    .unwrap()
                    .set_len(p)
                    .unwrap();
                locs.iter()
                    .zip(&sizes)
                    .filter(|(l, &len)| l.segment != a.segment || record_end(l.offset, len) <= p)
                    .count()
            };
            let what = format!("{} at {p}", if flip { "flip" } else { "truncate" });
            let c = cfg(&dir, 1024);
            {
                let (mut log, rec) =
                    BatchLog::open(c.clone()).unwrap_or_else(|e| panic!("{what}: {e}"));
                assert_eq!(rec.records, expect_kept, "{what}: {rec:?}");
                assert_eq!(log.len(), expect_kept, "{what}");
                assert_eq!(log.next_seq(), Seq(expect_kept as u64), "{what}");
                if let Some(t) = &rec.truncated {
                    let kept_end = if expect_kept == n - 2 {
                        start
                    } else {
                        padded_end(locs[expect_kept - 1].offset, sizes[expect_kept - 1])
                    };
                    assert_eq!(t.offset, kept_end, "{what}: {t:?}");
                    assert!(t.discarded_bytes > 0);
                }
                if flip && expect_kept < n {
                    assert!(
                        rec.truncated.is_some(),
                        "{what}: a damaged record must be reported"
                    );
                }
                for i in 0..n {
                    let got = log.get(&digests[i]);
                    if i < expect_kept {
                        assert_eq!(got.as_deref(), Some(&bodies[i][..]), "{what}: record {i}");
                    } else {
                        assert!(got.is_none(), "{what}: record {i} should be gone");
                    }
                }
                log.append(extra_digest, &extra).unwrap();
            }
            let (log, rec) = BatchLog::open(c).unwrap_or_else(|e| panic!("{what}, reopen: {e}"));
            assert_eq!(rec.truncated, None, "{what}: second reopen cut something");
            assert_eq!(log.len(), expect_kept + 1, "{what}");
            assert_eq!(
                log.get(&extra_digest).as_deref(),
                Some(&extra[..]),
                "{what}"
            );
            for i in 0..expect_kept {
                assert_eq!(
                    log.get(&digests[i]).as_deref(),
                    Some(&bodies[i][..]),
                    "{what}"
                );
            }
            drop(log);
            fs::remove_dir_all(&dir).unwrap();
        }
    }
    assert!(case > 400, "covered {case} cases");
}

#[test]
fn a_cut_record_never_comes_back_behind_a_new_one() {
    // Flip a byte in the second-to-last record, reopen (it and the last are cut), append
    // a record of the same size as the cut one: the old last record sits exactly where
    // the next header would be, and must not be resurrected.
    let root = tempfile::tempdir().unwrap();
    let c = cfg(root.path(), 4096);
    let bodies: Vec<Vec<u8>> = (0..3).map(|i| body(i, 50)).collect();
    let mut locs = Vec::new();
    {
        let (mut log, _) = open(&c);
        for b in &bodies {
            locs.push(log.append(Digest::of(b), b).unwrap());
        }
    }
    let f = segment_files(root.path())[0].clone();
    let mut bytes = fs::read(&f).unwrap();
    bytes[locs[1].offset as usize + 3] ^= 1;
    fs::write(&f, &bytes).unwrap();
    let replacement = body(7, 50);
    {
        let (mut log, rec) = open(&c);
        assert_eq!(rec.records, 1);
        assert!(matches!(
            rec.truncated.as_ref().unwrap().reason,
            Corruption::Checksum { .. }
        ));
        let loc = log.append(Digest::of(&replacement), &replacement).unwrap();
        assert_eq!(loc.offset, locs[1].offset);
    }
    let (log, rec) = open(&c);
    assert_eq!(rec.truncated, None);
    assert_eq!(log.len(), 2);
    assert!(!log.contains(&Digest::of(&bodies[2])));
}

#[test]
fn reopen_after_clean_close_keeps_everything_and_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let c = LogConfig {
        segment_bytes: 4096,
        ..LogConfig::new(dir.path())
    }; // fsync Always
    let bodies: Vec<Vec<u8>> = (0..40).map(|i| body(i, i * 37 % 700)).collect();
    let mut locs = Vec::new();
    {
        let (mut log, _) = open(&c);
        for b in &bodies {
            let loc = log.append(Digest::of(b), b).unwrap();
            // Zero-copy and equal right away.
            let got = log.get(&Digest::of(b)).unwrap();
            assert_eq!(&got[..], &b[..]);
            assert_eq!(got.as_ptr() as usize % 16, 0, "bodies are 16-byte aligned");
            locs.push(loc);
        }
        assert!(log.stats().syncs >= 40);
        log.close().unwrap();
    }
    let (log, rec) = open(&c);
    assert_eq!(rec.truncated, None);
    assert_eq!(rec.records, 40);
    assert_eq!(log.next_seq(), Seq(40));
    for (b, loc) in bodies.iter().zip(&locs) {
        let d = Digest::of(b);
        assert!(log.contains(&d));
        assert_eq!(log.locate(&d), Some(*loc));
        let got = log.get(&d).unwrap();
        assert_eq!(&got[..], &b[..]);
        assert_eq!(got.seq(), loc.seq);
        assert_eq!(got.digest(), d);
    }
    let order: Vec<Digest> = log.records().map(|(_, d)| d).collect();
    assert_eq!(
        order,
        bodies.iter().map(|b| Digest::of(b)).collect::<Vec<_>>()
    );
}

#[test]
fn append_is_idempotent_and_refuses_oversized_records() {
    let dir = tempfile::tempdir().unwrap();
    let c = LogConfig {
        max_record_bytes: 1000,
        ..cfg(dir.path(), 4096)
    };
    let (mut log, _) = open(&c);
    let b = body(1, 100);
    let first = log.append(Digest::of(&b), &b).unwrap();
    let again = log.append(Digest::of(&b), &b).unwrap();
    assert_eq!(first, again);
    assert_eq!(log.len(), 1);
    assert_eq!(log.stats().duplicate_appends, 1);
    assert_eq!(log.next_seq(), Seq(1));
    let big = vec![1u8; 1001];
    assert!(matches!(
        log.append(Digest::of(&big), &big),
        Err(LogError::RecordTooLarge {
            len: 1001,
            max: 1000
        })
    ));
    log.append(Digest::of(&big[..1000]), &big[..1000]).unwrap();
}

#[test]
fn rollover_across_segments_and_oversized_records_get_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(dir.path(), 1024);
    let mut bodies = Vec::new();
    {
        let (mut log, _) = open(&c);
        for i in 0..30 {
            let len = if i == 11 { 5000 } else { 150 + i };
            let b = body(i, len);
            let loc = log.append(Digest::of(&b), &b).unwrap();
            assert_eq!(loc.seq, Seq(i as u64));
            bodies.push(b);
        }
        let s = log.stats();
        assert!(s.segments >= 6, "{s:?}");
        assert_eq!(s.records, 30);
        assert_eq!(
            s.record_bytes,
            bodies.iter().map(|b| b.len() as u64).sum::<u64>()
        );
        let big = log.locate(&Digest::of(&bodies[11])).unwrap();
        assert_eq!(
            big.segment, big.seq,
            "the big record starts its own segment"
        );
        assert_eq!(big.offset, RECORD_HEADER_BYTES as u64);
    }
    let files = segment_files(dir.path());
    // Segments are named by their first sequence number and preallocated.
    for f in &files {
        let len = fs::metadata(f).unwrap().len();
        assert!(
            len == 1024 || len == (5000 + 64u64).next_multiple_of(16),
            "{f:?}: {len}"
        );
    }
    let (log, rec) = open(&c);
    assert_eq!(rec.segments, files.len());
    for b in &bodies {
        assert_eq!(log.get(&Digest::of(b)).as_deref(), Some(&b[..]));
    }
}

#[test]
fn a_first_record_larger_than_a_segment_grows_the_empty_one() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(dir.path(), 1024);
    let b = body(0, 3000);
    {
        let (mut log, _) = open(&c);
        log.append(Digest::of(&b), &b).unwrap();
        assert_eq!(log.stats().segments, 1);
    }
    let (log, _) = open(&c);
    assert_eq!(log.get(&Digest::of(&b)).as_deref(), Some(&b[..]));
}

#[test]
fn log_bytes_stay_valid_across_prune_and_close() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(dir.path(), 1024);
    let (mut log, _) = open(&c);
    let bodies: Vec<Vec<u8>> = (0..20).map(|i| body(i, 300)).collect();
    for b in &bodies {
        log.append(Digest::of(b), b).unwrap();
    }
    let held: Vec<_> = bodies
        .iter()
        .map(|b| log.get(&Digest::of(b)).unwrap())
        .collect();
    let before = segment_files(dir.path()).len();
    let mark = log.next_seq();
    let pruned = log.prune_before(mark).unwrap();
    assert_eq!(
        pruned.segments,
        before - 1,
        "everything but the active segment goes"
    );
    assert_eq!(segment_files(dir.path()).len(), 1);
    // Overwrite freed disk space with new data; held bytes must not change.
    for i in 100..140 {
        let b = body(i, 300);
        log.append(Digest::of(&b), &b).unwrap();
    }
    drop(log);
    for (h, b) in held.iter().zip(&bodies) {
        assert_eq!(&h[..], &b[..]);
    }
}

#[test]
fn prune_removes_whole_segments_below_the_mark_and_seqs_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(dir.path(), 1024);
    let bodies: Vec<Vec<u8>> = (0..12).map(|i| body(i, 250)).collect(); // 3 per segment
    let (mut log, _) = open(&c);
    for b in &bodies {
        log.append(Digest::of(b), b).unwrap();
    }
    // Segments start at 0, 3, 6, 9. A mark of 7 frees [0..3) and [3..6) but not [6..9).
    let p = log.prune_before(Seq(7)).unwrap();
    assert_eq!((p.segments, p.records), (2, 6));
    assert_eq!(log.first_seq(), Seq(6));
    for (i, b) in bodies.iter().enumerate() {
        assert_eq!(log.contains(&Digest::of(b)), i >= 6, "{i}");
    }
    assert_eq!(log.prune_before(Seq(7)).unwrap().segments, 0);
    // Prune everything: the active segment stays.
    log.prune_before(Seq(u64::MAX)).unwrap();
    assert_eq!(log.first_seq(), Seq(9));
    drop(log);
    let (mut log, rec) = open(&c);
    assert_eq!(rec.records, 3);
    assert_eq!(log.next_seq(), Seq(12));
    // Fill a new segment, prune all the old ones, reopen: numbering continues.
    for i in 12..16 {
        let b = body(i, 250);
        log.append(Digest::of(&b), &b).unwrap();
    }
    log.prune_before(Seq(16)).unwrap();
    assert_eq!(log.len(), 1);
    drop(log);
    let (log, _) = open(&c);
    assert_eq!(log.next_seq(), Seq(16));
    assert_eq!(log.first_seq(), Seq(15));
}

#[test]
fn damage_outside_the_last_segment_is_an_error() {
    let root = tempfile::tempdir().unwrap();
    let orig = root.path().join("orig");
    let c = cfg(&orig, 1024);
    {
        let (mut log, _) = open(&c);
        for i in 0..9 {
            let b = body(i, 250); // 320 bytes a record, 3 per segment
            log.append(Digest::of(&b), &b).unwrap();
        }
    }
    let files = segment_files(&orig);
    assert_eq!(files.len(), 3);
    let name = |i: usize| files[i].file_name().unwrap().to_owned();

    // A flipped byte in the first segment.
    let d = root.path().join("flip");
    copy_dir(&orig, &d);
    let mut bytes = fs::read(d.join(name(0))).unwrap();
    bytes[500] ^= 0xff;
    fs::write(d.join(name(0)), &bytes).unwrap();
    assert!(matches!(
        BatchLog::open(cfg(&d, 1024)),
        Err(LogError::Corrupt { offset: 320, .. })
    ));

    // A truncated middle segment.
    let d = root.path().join("short");
    copy_dir(&orig, &d);
    fs::OpenOptions::new()
        .write(true)
        .open(d.join(name(1)))
        .unwrap()
        .set_len(700)
        .unwrap();
    assert!(matches!(
        BatchLog::open(cfg(&d, 1024)),
        Err(LogError::Corrupt { .. })
    ));

    // A missing middle segment.
    let d = root.path().join("gap");
    copy_dir(&orig, &d);
    fs::remove_file(d.join(name(1))).unwrap();
    assert!(matches!(
        BatchLog::open(cfg(&d, 1024)),
        Err(LogError::Gap {
            expected: 3,
            found: 6,
            ..
        })
    ));
}

#[test]
fn one_directory_one_log() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(dir.path(), 1024);
    let (log, _) = open(&c);
    assert!(matches!(
        BatchLog::open(c.clone()),
        Err(LogError::Locked(_))
    ));
    drop(log);
    open(&c);
}

#[test]
fn config_is_validated() {
    let dir = tempfile::tempdir().unwrap();
    for bad in [
        LogConfig {
            segment_bytes: 100,
            ..LogConfig::new(dir.path())
        },
        LogConfig {
            segment_bytes: 1000,
            ..LogConfig::new(dir.path())
        },
        LogConfig {
            max_record_bytes: usize::MAX,
            ..LogConfig::new(dir.path())
        },
        LogConfig {
            fsync: FsyncPolicy::EveryBytes(0),
            ..LogConfig::new(dir.path())
        },
    ] {
        assert!(matches!(BatchLog::open(bad), Err(LogError::Config(_))));
    }
    assert_eq!(LogConfig::new("x").fsync, FsyncPolicy::Always);
}

#[test]
fn every_bytes_policy_syncs_in_steps() {
    let dir = tempfile::tempdir().unwrap();
    let c = LogConfig {
        fsync: FsyncPolicy::EveryBytes(1000),
        ..cfg(dir.path(), 1 << 20)
    };
    let (mut log, _) = open(&c);
    for i in 0..10 {
        let b = body(i, 186); // 256 bytes a record
        log.append(Digest::of(&b), &b).unwrap();
    }
    let s = log.stats();
    assert_eq!(s.syncs, 2, "{s:?}"); // at 1024 and 2048 bytes
    assert_eq!(s.unsynced_bytes, 512);
    log.sync().unwrap();
    assert_eq!(log.stats().unsynced_bytes, 0);
}

/// Write-back handed to another thread: a job covers exactly what was appended since
/// the last one, runs off the appending thread, and rolling to a new segment still
/// seals the old one completely.
#[test]
fn sync_jobs_run_on_another_thread_and_cover_every_append() {
    let dir = tempfile::tempdir().unwrap();
    let c = LogConfig {
        fsync: FsyncPolicy::EveryBytes(u64::MAX),
        ..cfg(dir.path(), 4096)
    };
    let (mut log, _) = open(&c);
    assert!(log.take_sync_job().unwrap().is_none());
    let mut written = Vec::new();
    for i in 0..40 {
        let b = body(i, 186); // 256 bytes a record: 16 to a segment
        log.append(Digest::of(&b), &b).unwrap();
        written.push(b);
        if i % 3 == 0 {
            let job = log.take_sync_job().unwrap().expect("unsynced bytes");
            assert!(!job.is_empty() && job.len() % 256 == 0);
            std::thread::spawn(move || job.run())
                .join()
                .unwrap()
                .unwrap();
            assert_eq!(log.stats().unsynced_bytes, 0);
            assert!(log.take_sync_job().unwrap().is_none());
        }
    }
    assert!(segment_files(dir.path()).len() >= 3);
    drop(log);
    let (log, rec) = open(&c);
    assert!(rec.truncated.is_none());
    for b in &written {
        assert_eq!(&*log.get(&Digest::of(b)).expect("recovered"), &b[..]);
    }
}

#[test]
fn sealed_batches_go_to_the_log_and_decode_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(&cfg(dir.path(), 1 << 20));
    let mut b = Batcher::new(BatcherConfig {
        max_batch_txs: 16,
        ..Default::default()
    })
    .unwrap();
    for n in 0..64u64 {
        let tx = Transaction {
            client: n % 3,
            nonce: n,
            payload: vec![n as u8; 40],
        };
        b.submit(tx, Duration::ZERO).unwrap();
    }
    let mut sealed = Vec::new();
    while let Some(s) = b.pop() {
        log.append(s.digest, &s.bytes).unwrap();
        sealed.push(s);
    }
    assert_eq!(sealed.len(), 4);
    for s in &sealed {
        let bytes = log.get(&s.digest).unwrap();
        let batch: Batch = olympus_types::frame::decode(&bytes).unwrap();
        assert_eq!(batch.digest(), s.digest);
        assert_eq!(SealedBatch::from_archive(&bytes).unwrap(), *s);
    }
}

#[test]
fn log_bytes_cross_threads_while_the_log_appends() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(&cfg(dir.path(), 4096));
    let first = body(0, 1000);
    log.append(Digest::of(&first), &first).unwrap();
    let held = log.get(&Digest::of(&first)).unwrap();
    let reader = std::thread::spawn(move || {
        let mut sum = 0u64;
        for _ in 0..1000 {
            sum += held.iter().map(|&b| b as u64).sum::<u64>();
        }
        (sum, held.to_vec())
    });
    for i in 1..200 {
        let b = body(i, 500);
        log.append(Digest::of(&b), &b).unwrap();
        if i % 50 == 0 {
            log.prune_before(log.next_seq()).unwrap();
        }
    }
    let (sum, copy) = reader.join().unwrap();
    assert_eq!(copy, first);
    assert_eq!(sum, 1000 * first.iter().map(|&b| b as u64).sum::<u64>());
}

#[derive(Debug, Clone)]
enum Op {
    Append(usize),
    Reopen,
    Prune(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0usize..1500).prop_map(Op::Append),
        1 => Just(Op::Reopen),
        1 => any::<u8>().prop_map(Op::Prune),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Against a model: every record appended and not pruned reads back equal, across
    /// reopens; pruning drops only records below the mark.
    #[test]
    fn log_matches_a_model(ops in prop::collection::vec(op(), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let c = cfg(dir.path(), 2048);
        let (mut log, _) = open(&c);
        let mut model: HashMap<Digest, (u64, Vec<u8>)> = HashMap::new();
        let mut next = 0u64;
        for (i, op) in ops.into_iter().enumerate() {
            match op {
                Op::Append(len) => {
                    let b = body(i, len);
                    let d = Digest::of(&b);
                    let loc = log.append(d, &b).unwrap();
                    if let Some((seq, _)) = model.get(&d) {
                        // Only empty bodies repeat: the append is idempotent.
                        prop_assert_eq!(loc.seq, Seq(*seq));
                    } else {
                        prop_assert_eq!(loc.seq, Seq(next));
                        model.insert(d, (next, b));
                        next += 1;
                    }
                }
                Op::Reopen => {
                    drop(log);
                    let (l, rec) = open(&c);
                    prop_assert_eq!(rec.truncated, None);
                    log = l;
                }
                Op::Prune(f) => {
                    let mark = next * f as u64 / 255;
                    let before = log.first_seq().0;
                    log.prune_before(Seq(mark)).unwrap();
                    let first = log.first_seq().0;
                    // Nothing at or above the mark goes.
                    prop_assert!(first <= mark.max(before));
                    model.retain(|_, (s, _)| *s >= first);
                }
            }
            prop_assert_eq!(log.len(), model.len());
            prop_assert_eq!(log.next_seq(), Seq(next));
        }
        for (d, (s, b)) in &model {
            let got = log.get(d).unwrap();
            prop_assert_eq!(got.seq(), Seq(*s));
            prop_assert_eq!(&got[..], &b[..]);
        }
    }
}
