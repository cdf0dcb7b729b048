//! The node's metrics recorder: counters, gauges and histograms that are plain atomics.
//!
//! The node records through the [`metrics`] facade (`metrics::counter!`, `gauge!`,
//! `histogram!`); [`install`] makes a [`Registry`] of this module the process's global
//! recorder. The hot path pays one relaxed atomic add per counter increment and four
//! (bucket, count, sum, max) per histogram sample, once a handle is registered; the node
//! registers its handles once at start (see [`crate::meters`]), so no lookup happens per
//! event.
//!
//! # Histograms
//!
//! Values are recorded as unsigned integers (rounded; negative and NaN become 0,
//! anything above `u64::MAX` saturates): durations in microseconds (names end in `_us`),
//! sizes in their own unit. The buckets are fixed and log-scale: 0, 1, 2 and 3 exactly,
//! then every power-of-two range `[2^e, 2^(e+1))` split into four equal sub-buckets — so
//! a bucket's width is at most a quarter of its lower bound, and a percentile read from
//! the buckets (the bucket's upper bound, capped by the maximum seen) overstates the true
//! value by at most 25 %. [`BUCKETS`] buckets cover all of `u64`.
//!
//! # Reading
//!
//! [`snapshot`] copies every metric (a consistent value per metric, not one atomic cut
//! across metrics). A [`Snapshot`] renders as a readable table with the non-empty
//! histogram ranges drawn as bars ([`Snapshot::to_text`]), as JSON ([`Snapshot::to_json`],
//! what the node writes to `metrics.json` at exit), and in the Prometheus text
//! exposition format ([`Snapshot::to_prometheus`], served live by [`serve`]).

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::Hash;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};
use std::time::{Duration, Instant};

/// Buckets per histogram: 4 exact small values plus 4 sub-buckets for each of the 62
/// power-of-two ranges from `[4, 8)` up to `[2^63, 2^64)`.
pub const BUCKETS: usize = 4 + 4 * 62;
/// Width of the bars of [`Snapshot::to_text`].
const BAR_WIDTH: usize = 40;
/// Longest request head the endpoint reads.
const MAX_REQUEST_BYTES: usize = 8 * 1024;
/// How long the endpoint waits on a slow scraper, each way.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(2);

/// The bucket a value falls into.
pub fn bucket_index(v: u64) -> usize {
    if v < 4 {
        return v as usize;
    }
    let e = 63 - v.leading_zeros() as usize; // 2 ..= 63
    let sub = ((v >> (e - 2)) & 3) as usize;
    4 + (e - 2) * 4 + sub
}

/// The smallest and largest value of bucket `i` (both inclusive).
pub fn bucket_bounds(i: usize) -> (u64, u64) {
    if i < 4 {
        return (i as u64, i as u64);
    }
    let e = (i - 4) / 4 + 2;
    let sub = ((i - 4) % 4) as u64;
    let lo = (4 + sub) << (e - 2);
    let width = 1u64 << (e - 2);
    (lo, lo + (width - 1))
}

/// The power-of-two range a value falls into: 0 for 0, `g` for `[2^(g-1), 2^g)`.
fn octave(v: u64) -> usize {
    64 - v.leading_zeros() as usize
}

/// The value a histogram stores for a recorded `f64`.
fn to_u64(v: f64) -> u64 {
    // `as` saturates and maps NaN to 0.
    v.round() as u64
}

/// A counter: one atomic.
#[derive(Debug, Default)]
pub struct AtomicCounter(AtomicU64);

impl metrics::CounterFn for AtomicCounter {
    fn increment(&self, value: u64) {
        self.0.fetch_add(value, Ordering::Relaxed);
    }
    fn absolute(&self, value: u64) {
        self.0.fetch_max(value, Ordering::Relaxed);
    }
}

/// A gauge: the bits of an `f64` in one atomic.
#[derive(Debug, Default)]
pub struct AtomicGauge(AtomicU64);

impl AtomicGauge {
    fn update(&self, f: impl Fn(f64) -> f64) {
        // The closure never returns None, so this cannot fail.
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some(f(f64::from_bits(bits)).to_bits())
            });
    }
    fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

impl metrics::GaugeFn for AtomicGauge {
    fn increment(&self, value: f64) {
        self.update(|v| v + value);
    }
    fn decrement(&self, value: f64) {
        self.update(|v| v - value);
    }
    fn set(&self, value: f64) {
        self.0.store(value.to_bits(), Ordering::Relaxed);
    }
}

/// A histogram: fixed log-scale buckets, count, sum and maximum, all atomics.
#[derive(Debug)]
pub struct AtomicHistogram {
    buckets: [AtomicU64; BUCKETS],
    sum: AtomicU64,
    max: AtomicU64,
}

impl Default for AtomicHistogram {
    fn default() -> Self {
        AtomicHistogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum: AtomicU64::new(0),
            max: AtomicU64::new(0),
        }
    }
}

impl AtomicHistogram {
    /// Records one value (see the module documentation for the conversion).
    pub fn record_u64(&self, v: u64) {
        self.buckets[bucket_index(v)].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(v, Ordering::Relaxed);
        // A plain load first: the maximum rarely moves, and `fetch_max` is a CAS loop.
        if v > self.max.load(Ordering::Relaxed) {
            self.max.fetch_max(v, Ordering::Relaxed);
        }
    }

    /// Copies the histogram. The count is the sum of the bucket counts, so percentiles
    /// are consistent with it even while other threads record.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let buckets: Vec<(usize, u64)> = self
            .buckets
            .iter()
            .enumerate()
            .map(|(i, b)| (i, b.load(Ordering::Relaxed)))
            .filter(|&(_, c)| c > 0)
            .collect();
        HistogramSnapshot {
            count: buckets.iter().map(|&(_, c)| c).sum(),
            sum: self.sum.load(Ordering::Relaxed),
            max: self.max.load(Ordering::Relaxed),
            buckets,
        }
    }
}

impl metrics::HistogramFn for AtomicHistogram {
    fn record(&self, value: f64) {
        self.record_u64(to_u64(value));
    }
}

/// A copy of one histogram.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HistogramSnapshot {
    pub count: u64,
    pub sum: u64,
    pub max: u64,
    /// The non-empty buckets: (bucket index, count), by index.
    pub buckets: Vec<(usize, u64)>,
}

impl HistogramSnapshot {
    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum as f64 / self.count as f64
        }
    }

    /// The `q`-quantile (0..=1) as the upper bound of the bucket holding it, capped by
    /// the maximum: never below the true value, at most 25 % above it. 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for &(i, c) in &self.buckets {
            seen += c;
            if seen >= rank {
                return bucket_bounds(i).1.min(self.max);
            }
        }
        self.max
    }

    /// Counts per power-of-two range: (smallest, largest value, count), non-empty only.
    pub fn octaves(&self) -> Vec<(u64, u64, u64)> {
        let mut out: Vec<(u64, u64, u64)> = Vec::new();
        for &(i, c) in &self.buckets {
            let (lo, _) = bucket_bounds(i);
            let g = octave(lo);
            let (glo, ghi) = if g == 0 {
                (0, 0)
            } else {
                (
                    1u64 << (g - 1),
                    (1u64 << (g - 1)).wrapping_mul(2).wrapping_sub(1),
                )
            };
            match out.last_mut() {
                Some(last) if last.0 == glo => last.2 += c,
                _ => out.push((glo, ghi, c)),
            }
        }
        out
    }
}

/// A metric's name and labels, e.g. `olympus_frames_rejected_total{reason="decode"}`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MetricId {
    pub name: String,
    pub labels: Vec<(String, String)>,
}

impl MetricId {
    fn of(key: &Key) -> MetricId {
        MetricId {
            name: key.name().to_string(),
            labels: key
                .labels()
                .map(|l| (l.key().to_string(), l.value().to_string()))
                .collect(),
        }
    }
}

impl std::fmt::Display for MetricId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)?;
        if !self.labels.is_empty() {
            f.write_str("{")?;
            for (i, (k, v)) in self.labels.iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                write!(f, "{k}=\"{}\"", escape_label(v))?;
            }
            f.write_str("}")?;
        }
        Ok(())
    }
}

/// A copy of every metric of a registry, sorted by name and labels.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Seconds since the registry was created (rates are over this).
    pub uptime_s: f64,
    pub counters: Vec<(MetricId, u64)>,
    pub gauges: Vec<(MetricId, f64)>,
    pub histograms: Vec<(MetricId, HistogramSnapshot)>,
    /// Descriptions given with `describe_*!`, by metric name.
    pub help: Vec<(String, String)>,
}

/// Every metric of a process: what the [`metrics`] facade records into.
pub struct Registry {
    start: Instant,
    counters: RwLock<HashMap<Key, Arc<AtomicCounter>>>,
    gauges: RwLock<HashMap<Key, Arc<AtomicGauge>>>,
    histograms: RwLock<HashMap<Key, Arc<AtomicHistogram>>>,
    help: Mutex<HashMap<String, String>>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new()
    }
}

/// The handle of `key` in `map`, created on first use. A read lock on the fast path.
fn get_or_insert<T: Default>(map: &RwLock<HashMap<Key, Arc<T>>>, key: &Key) -> Arc<T> {
    if let Some(h) = map.read().unwrap_or_else(PoisonError::into_inner).get(key) {
        return h.clone();
    }
    map.write()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(key.clone())
        .or_default()
        .clone()
}

fn read_all<T, V>(
    map: &RwLock<HashMap<Key, Arc<T>>>,
    read: impl Fn(&T) -> V,
) -> Vec<(MetricId, V)> {
    let mut out: Vec<(MetricId, V)> = map
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .map(|(k, h)| (MetricId::of(k), read(h)))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

impl Registry {
    pub fn new() -> Self {
        Registry {
            start: Instant::now(),
            counters: Default::default(),
            gauges: Default::default(),
            histograms: Default::default(),
            help: Default::default(),
        }
    }

    /// Copies every metric.
    pub fn snapshot(&self) -> Snapshot {
        let mut help: Vec<(String, String)> = self
            .help
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        help.sort();
        Snapshot {
            uptime_s: self.start.elapsed().as_secs_f64(),
            counters: read_all(&self.counters, |c| c.0.load(Ordering::Relaxed)),
            gauges: read_all(&self.gauges, AtomicGauge::get),
            histograms: read_all(&self.histograms, AtomicHistogram::snapshot),
            help,
        }
    }

    fn describe(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        let mut text = description.to_string();
        if let Some(u) = unit {
            let _ = write!(text, " ({})", u.as_str());
        }
        self.help
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.as_str().to_string(), text);
    }
}

impl Recorder for Registry {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(key, unit, description);
    }
    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(key, unit, description);
    }
    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(key, unit, description);
    }
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(get_or_insert(&self.counters, key))
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(get_or_insert(&self.gauges, key))
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(get_or_insert(&self.histograms, key))
    }
}

static REGISTRY: OnceLock<Registry> = OnceLock::new();
static INSTALLED: OnceLock<bool> = OnceLock::new();

/// Another recorder was already the global one; this module's registry sees nothing.
#[derive(Debug, thiserror::Error)]
#[error("another metrics recorder is already installed")]
pub struct AlreadyInstalled;

/// Makes this module's registry the process's global recorder (once; later calls return
/// the same registry). Install before registering handles: a handle registered earlier
/// is a no-op one.
pub fn install() -> Result<&'static Registry, AlreadyInstalled> {
    let registry = REGISTRY.get_or_init(Registry::new);
    let ok = *INSTALLED.get_or_init(|| metrics::set_global_recorder(registry).is_ok());
    if ok {
        Ok(registry)
    } else {
        Err(AlreadyInstalled)
    }
}

/// Every metric of the installed registry (empty before [`install`]).
pub fn snapshot() -> Snapshot {
    REGISTRY.get().map(Registry::snapshot).unwrap_or_default()
}

fn escape_json(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A JSON number: non-finite values (not JSON) become null.
fn json_f64(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        "null".into()
    }
}

/// A Prometheus metric or label name: invalid characters become `_`.
fn prom_name(s: &str, colons: bool) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || (colons && c == ':') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

fn prom_f64(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

fn prom_labels(labels: &[(String, String)], extra: Option<(&str, &str)>) -> String {
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{}=\"{}\"", prom_name(k, false), escape_label(v)))
        .collect();
    if let Some((k, v)) = extra {
        parts.push(format!("{k}=\"{v}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

impl Snapshot {
    /// The histogram named `name` (any labels), if recorded.
    pub fn histogram(&self, name: &str) -> Option<&HistogramSnapshot> {
        self.histograms
            .iter()
            .find(|(id, _)| id.name == name)
            .map(|(_, h)| h)
    }

    /// The counter named `name` with no labels, if registered.
    pub fn counter(&self, name: &str) -> Option<u64> {
        self.counters
            .iter()
            .find(|(id, _)| id.name == name && id.labels.is_empty())
            .map(|(_, v)| *v)
    }

    fn rate(&self, v: u64) -> f64 {
        if self.uptime_s > 0.0 {
            v as f64 / self.uptime_s
        } else {
            0.0
        }
    }

    /// A readable table: counters with their rate per second over the uptime, gauges,
    /// and for every histogram n, mean, p50, p90, p99, max and its non-empty
    /// power-of-two ranges drawn as bars. No line starts with `{`.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "metrics after {:.3} s", self.uptime_s);
        let width = self
            .counters
            .iter()
            .map(|(id, _)| id.to_string().len())
            .chain(self.gauges.iter().map(|(id, _)| id.to_string().len()))
            .max()
            .unwrap_or(0)
            .max(10);
        if !self.counters.is_empty() {
            let _ = writeln!(
                s,
                "counters{:>w$} {:>14}",
                "count",
                "per second",
                w = width + 8
            );
            for (id, v) in &self.counters {
                let id = id.to_string();
                let _ = writeln!(s, "  {id:<width$} {v:>14} {:>14.1}", self.rate(*v));
            }
        }
        if !self.gauges.is_empty() {
            let _ = writeln!(s, "gauges");
            for (id, v) in &self.gauges {
                let id = id.to_string();
                let _ = writeln!(s, "  {id:<width$} {v:>14}");
            }
        }
        if !self.histograms.is_empty() {
            let _ = writeln!(
                s,
                "histograms (percentiles are bucket upper bounds: at most 25 % high)"
            );
        }
        for (id, h) in &self.histograms {
            let _ = writeln!(
                s,
                "  {id}: n={} mean={:.1} p50={} p90={} p99={} max={}",
                h.count,
                h.mean(),
                h.quantile(0.5),
                h.quantile(0.9),
                h.quantile(0.99),
                h.max
            );
            let octaves = h.octaves();
            let top = octaves.iter().map(|o| o.2).max().unwrap_or(0);
            for (lo, hi, c) in octaves {
                let len = if top == 0 {
                    0
                } else {
                    ((c as u128 * BAR_WIDTH as u128).div_ceil(top as u128)) as usize
                };
                let _ = writeln!(
                    s,
                    "    {lo:>12} ..{hi:>12} |{:<BAR_WIDTH$}| {c}",
                    "#".repeat(len)
                );
            }
        }
        s
    }

    /// JSON: `{"uptime_s", "counters": {id: n}, "gauges": {id: x}, "histograms": {id:
    /// {count, sum, mean, max, p50, p90, p99, p999, buckets: [[lo, hi, count], ...]}}}`,
    /// one metric per line.
    pub fn to_json(&self) -> String {
        let mut s = String::new();
        let _ = write!(s, "{{\"uptime_s\":{},", json_f64(self.uptime_s));
        let section = |s: &mut String, name: &str, items: Vec<String>| {
            let _ = write!(s, "\n\"{name}\":{{");
            for (i, item) in items.iter().enumerate() {
                let _ = write!(s, "{}\n  {item}", if i > 0 { "," } else { "" });
            }
            s.push('}');
        };
        let counters = self
            .counters
            .iter()
            .map(|(id, v)| format!("\"{}\":{v}", escape_json(&id.to_string())))
            .collect();
        section(&mut s, "counters", counters);
        s.push(',');
        let gauges = self
            .gauges
            .iter()
            .map(|(id, v)| format!("\"{}\":{}", escape_json(&id.to_string()), json_f64(*v)))
            .collect();
        section(&mut s, "gauges", gauges);
        s.push(',');
        let histograms = self
            .histograms
            .iter()
            .map(|(id, h)| {
                let buckets: Vec<String> = h
                    .buckets
                    .iter()
                    .map(|&(i, c)| {
                        let (lo, hi) = bucket_bounds(i);
                        format!("[{lo},{hi},{c}]")
                    })
                    .collect();
                format!(
                    "\"{}\":{{\"count\":{},\"sum\":{},\"mean\":{},\"max\":{},\"p50\":{},\
                     \"p90\":{},\"p99\":{},\"p999\":{},\"buckets\":[{}]}}",
                    escape_json(&id.to_string()),
                    h.count,
                    h.sum,
                    json_f64(h.mean()),
                    h.max,
                    h.quantile(0.5),
                    h.quantile(0.9),
                    h.quantile(0.99),
                    h.quantile(0.999),
                    buckets.join(",")
                )
            })
            .collect();
        section(&mut s, "histograms", histograms);
        s.push_str("\n}\n");
        s
    }

    /// The Prometheus text exposition format (version 0.0.4). Histogram buckets are the
    /// power-of-two ranges, cumulative, with `le` the largest value of each range (values
    /// are integers), up to the range holding the maximum, then `+Inf`.
    pub fn to_prometheus(&self) -> String {
        let mut s = String::new();
        let typed = |s: &mut String, name: &str, kind: &str, last: &mut String| {
            if last != name {
                if let Some((_, h)) = self.help.iter().find(|(n, _)| n == name) {
                    let h = h.replace('\\', "\\\\").replace('\n', "\\n");
                    let _ = writeln!(s, "# HELP {name} {h}");
                }
                let _ = writeln!(s, "# TYPE {name} {kind}");
                *last = name.to_string();
            }
        };
        let mut last = String::new();
        let _ = writeln!(s, "# TYPE olympus_uptime_seconds gauge");
        let _ = writeln!(s, "olympus_uptime_seconds {}", prom_f64(self.uptime_s));
        for (id, v) in &self.counters {
            let name = prom_name(&id.name, true);
            typed(&mut s, &name, "counter", &mut last);
            let _ = writeln!(s, "{name}{} {v}", prom_labels(&id.labels, None));
        }
        for (id, v) in &self.gauges {
            let name = prom_name(&id.name, true);
            typed(&mut s, &name, "gauge", &mut last);
            let _ = writeln!(
                s,
                "{name}{} {}",
                prom_labels(&id.labels, None),
                prom_f64(*v)
            );
        }
        for (id, h) in &self.histograms {
            let name = prom_name(&id.name, true);
            typed(&mut s, &name, "histogram", &mut last);
            let octaves = h.octaves();
            let top = octave(h.max);
            let mut cumulative = 0;
            let mut next = octaves.iter().peekable();
            for g in 0..=top {
                let le = if g == 0 {
                    0
                } else {
                    (1u64 << (g - 1)).wrapping_mul(2).wrapping_sub(1)
                };
                while let Some(&&(lo, _, c)) = next.peek() {
                    if lo > le {
                        break;
                    }
                    cumulative += c;
                    next.next();
                }
                let labels = prom_labels(&id.labels, Some(("le", &le.to_string())));
                let _ = writeln!(s, "{name}_bucket{labels} {cumulative}");
            }
            let labels = prom_labels(&id.labels, Some(("le", "+Inf")));
            let _ = writeln!(s, "{name}_bucket{labels} {}", h.count);
            let labels = prom_labels(&id.labels, None);
            let _ = writeln!(s, "{name}_sum{labels} {}", h.sum);
            let _ = writeln!(s, "{name}_count{labels} {}", h.count);
        }
        s
    }
}

/// Serves [`snapshot`] in the Prometheus text format on `addr` (`GET /metrics` or `/`),
/// from a plain thread, one scrape at a time, each bounded by [`SCRAPE_TIMEOUT`].
/// Returns the bound address (port 0 picks one). The thread lives as long as the process.
pub fn serve(addr: SocketAddr) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    let local = listener.local_addr()?;
    std::thread::Builder::new()
        .name("olympus-metrics".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                // A scraper that misbehaves only loses its own answer.
                let _ = answer(stream);
            }
        })?;
    Ok(local)
}

/// Reads one request head and writes one response.
fn answer(mut stream: TcpStream) -> std::io::Result<()> {
    stream.set_read_timeout(Some(SCRAPE_TIMEOUT))?;
    stream.set_write_timeout(Some(SCRAPE_TIMEOUT))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST_BYTES {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next(), parts.next());
    let (status, body) = match (method, path) {
        (Some("GET"), Some("/metrics" | "/")) => ("200 OK", snapshot().to_prometheus()),
        (Some("GET"), _) => ("404 Not Found", "not found; try /metrics\n".to_string()),
        _ => ("405 Method Not Allowed", "GET only\n".to_string()),
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_tile_u64_without_gaps_and_are_at_most_a_quarter_wide() {
        let mut expect_lo = 0u64;
        for i in 0..BUCKETS {
            let (lo, hi) = bucket_bounds(i);
            assert_eq!(
                lo,
                expect_lo,
                "bucket {i} starts where {} ended",
                i.max(1) - 1
            );
            assert!(hi >= lo);
            assert_eq!(bucket_index(lo), i);
            assert_eq!(bucket_index(hi), i);
            if lo >= 4 {
                assert!((hi - lo + 1) * 4 <= lo, "bucket {i} [{lo}, {hi}] too wide");
            }
            expect_lo = hi.wrapping_add(1);
        }
        assert_eq!(expect_lo, 0, "the last bucket ends at u64::MAX");
        for v in [0, 1, 3, 4, 5, 7, 8, 9, 1000, 1 << 40, u64::MAX] {
            let (lo, hi) = bucket_bounds(bucket_index(v));
            assert!(lo <= v && v <= hi, "{v} in [{lo}, {hi}]");
        }
    }

    #[test]
    fn values_convert_by_rounding_and_saturating() {
        assert_eq!(to_u64(-3.0), 0);
        assert_eq!(to_u64(f64::NAN), 0);
        assert_eq!(to_u64(2.5), 3);
        assert_eq!(to_u64(1e30), u64::MAX);
    }

    #[test]
    fn quantiles_bound_the_true_value_within_a_quarter() {
        let h = AtomicHistogram::default();
        for v in 1..=1000u64 {
            h.record_u64(v);
        }
        let s = h.snapshot();
        assert_eq!((s.count, s.sum, s.max), (1000, 500_500, 1000));
        assert!((s.mean() - 500.5).abs() < 1e-9);
        for (q, truth) in [(0.5, 500u64), (0.9, 900), (0.99, 990), (0.001, 1)] {
            let got = s.quantile(q);
            assert!(
                got >= truth && got as f64 <= truth as f64 * 1.25,
                "q{q}: {got} vs {truth}"
            );
        }
        assert_eq!(s.quantile(1.0), 1000, "capped by the maximum");
        assert_eq!(HistogramSnapshot::default().quantile(0.5), 0);
        let octaves = s.octaves();
        assert_eq!(octaves.first(), Some(&(1, 1, 1)));
        assert_eq!(octaves.last(), Some(&(512, 1023, 489)));
        assert_eq!(octaves.iter().map(|o| o.2).sum::<u64>(), 1000);
    }

    /// A registry with some metrics, recorded through the facade.
    fn sample() -> Snapshot {
        let r = Registry::new();
        metrics::with_local_recorder(&r, || {
            metrics::describe_counter!("olympus_commits_total", "blocks committed");
            let c = metrics::counter!("olympus_commits_total");
            c.increment(3);
            c.increment(4);
            metrics::counter!("olympus_rejected_total", "reason" => "decode").increment(2);
            metrics::counter!("olympus_rejected_total", "reason" => "bad \"sig\"").increment(1);
            metrics::gauge!("olympus_inbox_depth").set(5.0);
            metrics::gauge!("olympus_inbox_depth").increment(2.0);
            let h = metrics::histogram!("olympus_verify_us");
            for v in [0.0, 3.0, 100.0, 120.0, 130.0, 5000.0] {
                h.record(v);
            }
        });
        r.snapshot()
    }

    #[test]
    fn the_facade_records_into_the_registry() {
        let s = sample();
        assert_eq!(s.counter("olympus_commits_total"), Some(7));
        assert_eq!(s.counters.len(), 3);
        assert_eq!(
            s.counters[1].0.to_string(),
            "olympus_rejected_total{reason=\"bad \\\"sig\\\"\"}"
        );
        assert_eq!(s.gauges[0].1, 7.0);
        let h = s.histogram("olympus_verify_us").expect("histogram");
        assert_eq!((h.count, h.sum, h.max), (6, 5353, 5000));
    }

    #[test]
    fn text_dump_shows_rates_percentiles_and_bars() {
        let mut s = sample();
        s.uptime_s = 2.0;
        let t = s.to_text();
        assert!(t.contains("olympus_commits_total"), "{t}");
        assert!(t.contains("3.5"), "rate per second: {t}");
        assert!(
            t.contains("olympus_verify_us: n=6 mean=892.2 p50=111 p90=5000 p99=5000 max=5000"),
            "{t}"
        );
        // 100, 120 share the 64..127 range; 130 is in 128..255.
        let bars: Vec<&str> = t.lines().filter(|l| l.contains('|')).collect();
        assert_eq!(bars.len(), 5, "{t}");
        assert!(bars[2].contains("64 ..") && bars[2].ends_with("| 2"), "{t}");
        assert!(
            bars[2].contains(&"#".repeat(BAR_WIDTH)),
            "the fullest range fills the bar: {t}"
        );
        assert!(!t.lines().any(|l| l.trim_start().starts_with('{')));
    }

    #[test]
    fn json_dump_is_valid_and_complete() {
        let s = sample();
        let j = s.to_json();
        let v: serde_json::Value = serde_json::from_str(&j).expect(&j);
        assert_eq!(v["counters"]["olympus_commits_total"], 7);
        assert_eq!(
            v["counters"]["olympus_rejected_total{reason=\"decode\"}"],
            2
        );
        assert_eq!(v["gauges"]["olympus_inbox_depth"], 7.0);
        let h = &v["histograms"]["olympus_verify_us"];
        assert_eq!(h["count"], 6);
        assert_eq!(h["max"], 5000);
        assert_eq!(h["p50"], 111);
        assert_eq!(h["buckets"][0], serde_json::json!([0, 0, 1]));
        let empty: serde_json::Value =
            serde_json::from_str(&Snapshot::default().to_json()).expect("empty");
        assert_eq!(empty["counters"], serde_json::json!({}));
    }

    #[test]
    fn prometheus_text_has_types_cumulative_buckets_and_escaped_labels() {
        let p = sample().to_prometheus();
        let lines: Vec<&str> = p.lines().collect();
        let has = |l: &str| lines.contains(&l);
        assert!(has("# HELP olympus_commits_total blocks committed"), "{p}");
        assert!(has("# TYPE olympus_commits_total counter"), "{p}");
        assert!(has("olympus_commits_total 7"), "{p}");
        assert_eq!(
            lines
                .iter()
                .filter(|l| **l == "# TYPE olympus_rejected_total counter")
                .count(),
            1,
            "one TYPE line per name: {p}"
        );
        assert!(has("olympus_rejected_total{reason=\"decode\"} 2"), "{p}");
        assert!(
            has("olympus_rejected_total{reason=\"bad \\\"sig\\\"\"} 1"),
            "{p}"
        );
        assert!(has("# TYPE olympus_inbox_depth gauge"), "{p}");
        assert!(has("olympus_inbox_depth 7"), "{p}");
        assert!(has("# TYPE olympus_verify_us histogram"), "{p}");
        // Values 0, 3, 100, 120, 130, 5000.
        for (le, n) in [
            (0, 1),
            (1, 1),
            (3, 2),
            (63, 2),
            (127, 4),
            (255, 5),
            (4095, 5),
        ] {
            let l = format!("olympus_verify_us_bucket{{le=\"{le}\"}} {n}");
            assert!(has(&l), "{l} in {p}");
        }
        assert!(has("olympus_verify_us_bucket{le=\"8191\"} 6"), "{p}");
        assert!(has("olympus_verify_us_bucket{le=\"+Inf\"} 6"), "{p}");
        assert!(has("olympus_verify_us_sum 5353"), "{p}");
        assert!(has("olympus_verify_us_count 6"), "{p}");
        assert!(
            !p.contains("le=\"16383\""),
            "stops at the maximum's range: {p}"
        );
    }

    #[test]
    fn names_are_made_valid_for_prometheus() {
        assert_eq!(prom_name("a.b-c", true), "a_b_c");
        assert_eq!(prom_name("9lives", true), "_9lives");
        assert_eq!(prom_name("a:b", false), "a_b");
    }

    #[test]
    fn the_endpoint_serves_the_installed_registry() {
        let registry = install().expect("no other recorder in this test binary");
        // Through the global recorder this time.
        metrics::counter!("olympus_endpoint_test_total").increment(9);
        assert_eq!(
            registry.snapshot().counter("olympus_endpoint_test_total"),
            Some(9)
        );
        let addr = serve("127.0.0.1:0".parse().expect("addr")).expect("bind");
        let get = |path: &str| {
            let mut c = TcpStream::connect(addr).expect("connect");
            write!(c, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
            let mut out = String::new();
            c.read_to_string(&mut out).expect("read");
            out
        };
        let ok = get("/metrics");
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(
            ok.contains("\r\n\r\n# TYPE olympus_uptime_seconds gauge\n"),
            "{ok}"
        );
        assert!(ok.contains("\nolympus_endpoint_test_total 9\n"), "{ok}");
        assert!(get("/other").starts_with("HTTP/1.1 404"));
    }
}
