//! Batch log and batcher micro-benchmarks.
//!
//! `append/*`: the log's append throughput beside, in the same run and on the same
//! bytes, a `memcpy` into memory (the floor) and a plain buffered file write
//! (`BufWriter<File>`; the target is the log within 2x of it). All writers run in steady
//! state: files of 64 MiB are started and old ones deleted as they go, as the log does
//! when it is pruned. `append_synced/*` compares the log under `FsyncPolicy::Always` with
//! `write` + `fdatasync` per record.
//!
//! `read/*`: `get` (a zero-copy handle) and `get` plus reading every byte.
//! `batch/*`: building a batch through the batcher (dedup, cut, encode once, digest
//! once), and sealing a ready batch.
//!
//! Run: `cargo bench -p olympus-mempool --bench log -- --warm-up-time 1 --measurement-time 3`

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use olympus_mempool::log::{BatchLog, FsyncPolicy, LogConfig, Seq};
use olympus_mempool::{Batcher, BatcherConfig, SealedBatch};
use olympus_types::{Batch, Digest, Transaction};
use std::fs::File;
use std::hint::black_box;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const SEGMENT: u64 = 64 * 1024 * 1024;

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

/// A unique digest without hashing: the benchmark measures the log, not BLAKE3.
fn digest(n: u64) -> Digest {
    let mut d = [0u8; 32];
    d[..8].copy_from_slice(&n.to_le_bytes());
    d[8] = 1;
    Digest(d)
}

/// The log in steady state: appends, and drops old segments as it rolls over.
struct LogWriter {
    log: BatchLog,
    n: u64,
    _dir: tempfile::TempDir,
}

impl LogWriter {
    fn new(fsync: FsyncPolicy) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let cfg = LogConfig {
            fsync,
            segment_bytes: SEGMENT,
            ..LogConfig::new(dir.path())
        };
        let (log, _) = BatchLog::open(cfg).unwrap();
        LogWriter {
            log,
            n: 0,
            _dir: dir,
        }
    }

    fn append(&mut self, bytes: &[u8]) {
        let loc = self.log.append(digest(self.n), bytes).unwrap();
        self.n += 1;
        // A new segment began: everything before it is "checkpointed".
        if loc.segment == loc.seq && loc.seq > Seq(0) {
            self.log.prune_before(loc.segment).unwrap();
        }
    }
}

/// `BufWriter<File>` in the same steady state: 64 MiB files, the previous one deleted.
struct FileWriter {
    dir: tempfile::TempDir,
    out: BufWriter<File>,
    path: PathBuf,
    written: u64,
    files: u64,
    sync: bool,
}

impl FileWriter {
    fn new(sync: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0");
        let out = BufWriter::new(File::create(&path).unwrap());
        FileWriter {
            dir,
            out,
            path,
            written: 0,
            files: 0,
            sync,
        }
    }

    fn next_path(dir: &Path, n: u64) -> PathBuf {
        dir.join(n.to_string())
    }

    fn write(&mut self, bytes: &[u8]) {
        if self.written + bytes.len() as u64 > SEGMENT {
            self.out.flush().unwrap();
            self.files += 1;
            let path = Self::next_path(self.dir.path(), self.files);
            self.out = BufWriter::new(File::create(&path).unwrap());
            std::fs::remove_file(std::mem::replace(&mut self.path, path)).unwrap();
            self.written = 0;
        }
        self.out.write_all(bytes).unwrap();
        if self.sync {
            self.out.flush().unwrap();
            self.out.get_ref().sync_data().unwrap();
        }
        self.written += bytes.len() as u64;
    }
}

/// `memcpy` into a 64 MiB buffer, wrapping around: the floor for any writer.
struct MemWriter {
    buf: Vec<u8>,
    at: usize,
}

impl MemWriter {
    fn write(&mut self, bytes: &[u8]) {
        if self.at + bytes.len() > self.buf.len() {
            self.at = 0;
        }
        self.buf[self.at..self.at + bytes.len()].copy_from_slice(bytes);
        black_box(&self.buf[self.at]);
        self.at += bytes.len();
    }
}

fn timed(iters: u64, mut f: impl FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        f();
    }
    start.elapsed()
}

fn append(c: &mut Criterion) {
    let mut g = c.benchmark_group("append");
    for len in [4 * 1024, 64 * 1024] {
        let data = payload(len);
        g.throughput(Throughput::Bytes(len as u64));
        let mut mem = MemWriter {
            buf: vec![1; SEGMENT as usize],
            at: 0,
        };
        g.bench_function(BenchmarkId::new("memcpy", len), |b| {
            b.iter_custom(|iters| timed(iters, || mem.write(&data)))
        });
        let mut file = FileWriter::new(false);
        g.bench_function(BenchmarkId::new("bufwriter", len), |b| {
            b.iter_custom(|iters| timed(iters, || file.write(&data)))
        });
        drop(file);
        let mut log = LogWriter::new(FsyncPolicy::Never);
        g.bench_function(BenchmarkId::new("log_never", len), |b| {
            b.iter_custom(|iters| timed(iters, || log.append(&data)))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("append_synced");
    let len = 64 * 1024;
    let data = payload(len);
    g.throughput(Throughput::Bytes(len as u64));
    let mut file = FileWriter::new(true);
    g.bench_function(BenchmarkId::new("write_fdatasync", len), |b| {
        b.iter_custom(|iters| timed(iters, || file.write(&data)))
    });
    drop(file);
    let mut log = LogWriter::new(FsyncPolicy::Always);
    g.bench_function(BenchmarkId::new("log_always", len), |b| {
        b.iter_custom(|iters| timed(iters, || log.append(&data)))
    });
    g.finish();
}

fn read(c: &mut Criterion) {
    let mut g = c.benchmark_group("read");
    let len = 64 * 1024;
    let records = 256u64; // 16 MiB: stays in the page cache
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        fsync: FsyncPolicy::Never,
        ..LogConfig::new(dir.path())
    };
    let (mut log, _) = BatchLog::open(cfg).unwrap();
    let data = payload(len);
    for n in 0..records {
        log.append(digest(n), &data).unwrap();
    }
    let mut n = 0u64;
    g.throughput(Throughput::Elements(1));
    g.bench_function("get", |b| {
        b.iter(|| {
            n = (n + 1) % records;
            black_box(log.get(&digest(n)).unwrap())
        })
    });
    g.throughput(Throughput::Bytes(len as u64));
    g.bench_function(BenchmarkId::new("get_and_read", len), |b| {
        b.iter(|| {
            n = (n + 1) % records;
            let bytes = log.get(&digest(n)).unwrap();
            black_box(xxhash_rust::xxh3::xxh3_64(&bytes))
        })
    });
    g.bench_function(BenchmarkId::new("read_vec_baseline", len), |b| {
        b.iter(|| black_box(xxhash_rust::xxh3::xxh3_64(black_box(&data))))
    });
    g.finish();
}

fn txs(count: u64, len: usize, round: u64) -> Vec<Transaction> {
    (0..count)
        .map(|i| Transaction {
            client: i % 64,
            nonce: round * count + i,
            payload: payload(len),
        })
        .collect()
}

fn batch(c: &mut Criterion) {
    let mut g = c.benchmark_group("batch");
    let (count, len) = (1000u64, 512usize);
    let bytes = Batch::new(txs(count, len, 0)).encoded_len() as u64;
    g.throughput(Throughput::Bytes(bytes));
    let cfg = BatcherConfig {
        max_batch_txs: count as usize,
        max_batch_bytes: 1 << 20,
        ..Default::default()
    };
    let mut batcher = Batcher::new(cfg).unwrap();
    let mut round = 0;
    g.bench_function(BenchmarkId::new("batcher_submit_seal", count), |b| {
        b.iter_batched(
            || {
                round += 1;
                txs(count, len, round)
            },
            |txs| {
                for tx in txs {
                    batcher.submit(tx, Duration::ZERO).unwrap();
                }
                batcher.pop().unwrap()
            },
            BatchSize::LargeInput,
        )
    });
    let ready = Batch::new(txs(count, len, 0));
    g.bench_function(BenchmarkId::new("seal_encode_digest", count), |b| {
        b.iter(|| SealedBatch::seal(black_box(&ready)).unwrap())
    });
    g.finish();
}

criterion_group!(benches, append, read, batch);
criterion_main!(benches);
