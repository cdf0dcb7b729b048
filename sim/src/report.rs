//! What a run found: counters, commits, faults, and the violations of the invariants.
//!
//! A report is plain data, comparable with `==` (two runs of one seed must produce equal
//! reports, trace hash included) and printable ([`std::fmt::Display`]). Violations are
//! data too, never panics: [`RunReport::repro`] is the one-line command that replays the
//! run that found them.

use crate::config::ByzantineKind;
use olympus_types::NodeId;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// Which invariant a violation breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ViolationKind {
    /// Two honest replicas committed different blocks at one height.
    Conflict,
    /// A replica's commits did not go up by exactly one height, a committed block does
    /// not link to the previous one, or its digest is not its block's.
    CommitOrder,
    /// An executed transaction no client submitted (or with a different payload).
    UnknownTransaction,
    /// A transaction appears in one replica's committed log more often than its client
    /// submitted it.
    DuplicateTransaction,
    /// An honest replica signed two different votes in one view.
    DoubleVote,
    /// An honest replica did not commit within the liveness bound after the faults
    /// stopped.
    Liveness,
}

impl ViolationKind {
    pub fn name(self) -> &'static str {
        match self {
            ViolationKind::Conflict => "conflict",
            ViolationKind::CommitOrder => "commit-order",
            ViolationKind::UnknownTransaction => "unknown-tx",
            ViolationKind::DuplicateTransaction => "duplicate-tx",
            ViolationKind::DoubleVote => "double-vote",
            ViolationKind::Liveness => "liveness",
        }
    }

    /// Safety violations (everything but liveness).
    pub fn is_safety(self) -> bool {
        self != ViolationKind::Liveness
    }
}

impl fmt::Display for ViolationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One broken invariant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub kind: ViolationKind,
    /// Virtual time at which it was detected.
    pub at: Duration,
    /// One line saying what happened.
    pub description: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{} at {}] {}",
            self.kind,
            fmt_time(self.at),
            self.description
        )
    }
}

/// Per message kind: copies sent (one per recipient), delivered to a state machine,
/// rejected by `Protocol::verify`, and dropped (lost, partitioned, receiver down or
/// silent).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MessageCounts {
    pub sent: u64,
    pub delivered: u64,
    pub rejected: u64,
    pub dropped: u64,
}

/// Commit progress of the honest replicas.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommitStats {
    /// Committed height of each honest replica at the end of the run.
    pub heights: Vec<(NodeId, u64)>,
    pub min_height: u64,
    pub max_height: u64,
    /// Longest wait, over honest replicas, from the end of the fault window to the
    /// replica's first commit after it (`None` if some replica never committed again).
    pub max_recovery: Option<Duration>,
}

/// Everything a run measured and found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunReport {
    /// The protocol's command-line name.
    pub protocol: &'static str,
    pub seed: u64,
    /// `olympus sim` flags that rebuild the configuration (see `SimConfig::cli_flags`).
    pub flags: String,
    pub n: usize,
    /// The Byzantine replicas of this seed and their kinds.
    pub byzantine: Vec<(NodeId, ByzantineKind)>,
    /// Virtual time at which the run ended.
    pub virtual_time: Duration,
    /// Events the simulator processed.
    pub events_processed: u64,
    pub commits: CommitStats,
    /// Whether the liveness checker ran (see `SimConfig::checks_liveness`).
    pub liveness_checked: bool,
    /// Distinct transactions the clients created.
    pub txs_submitted: u64,
    /// Submissions including retries.
    pub tx_submissions: u64,
    /// Distinct transactions executed by at least one honest replica.
    pub txs_executed: u64,
    /// Transactions executed by at least f + 1 honest replicas (the client's receipt).
    pub txs_confirmed: u64,
    /// Committed transactions an honest ledger skipped because it had already executed
    /// them (the at-most-once rule), summed over honest replicas.
    pub duplicates_suppressed: u64,
    /// Clients' batches the leader half refused (full).
    pub batches_refused: u64,
    pub messages: BTreeMap<&'static str, MessageCounts>,
    /// Injected faults by kind.
    pub faults: BTreeMap<&'static str, u64>,
    /// Protocol `Event`s by kind, and driver-level counters (persists, fetches, timers).
    pub events: BTreeMap<&'static str, u64>,
    pub violations: Vec<Violation>,
    /// Violations found beyond the ones kept.
    pub violations_dropped: u64,
    /// A hash of every delivered message, fired timer and commit, in order: equal for
    /// two runs of one seed.
    pub trace_hash: u64,
}

impl RunReport {
    /// True if no invariant was violated.
    pub fn ok(&self) -> bool {
        self.violations.is_empty() && self.violations_dropped == 0
    }

    /// True if some safety invariant was violated.
    pub fn has_safety_violation(&self) -> bool {
        self.violations.iter().any(|v| v.kind.is_safety())
    }

    /// The one-line command that reproduces this run.
    pub fn repro(&self) -> String {
        format!(
            "olympus sim --protocol {} {} --seed {}",
            self.protocol, self.flags, self.seed
        )
    }

    /// Total messages sent (copies).
    pub fn messages_sent(&self) -> u64 {
        self.messages.values().map(|c| c.sent).sum()
    }

    /// Total messages delivered.
    pub fn messages_delivered(&self) -> u64 {
        self.messages.values().map(|c| c.delivered).sum()
    }
}

/// `1.234s`
pub fn fmt_time(d: Duration) -> String {
    format!("{:.3}s", d.as_secs_f64())
}

impl fmt::Display for RunReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "protocol {}  seed {}  n {}",
            self.protocol, self.seed, self.n
        )?;
        if self.byzantine.is_empty() {
            writeln!(f, "byzantine: none")?;
        } else {
            let b: Vec<String> = self
                .byzantine
                .iter()
                .map(|(id, k)| format!("{id} {k}"))
                .collect();
            writeln!(f, "byzantine: {}", b.join(", "))?;
        }
        writeln!(
            f,
            "virtual time {}  events {}  trace {:016x}",
            fmt_time(self.virtual_time),
            self.events_processed,
            self.trace_hash
        )?;
        let h: Vec<String> = self
            .commits
            .heights
            .iter()
            .map(|(id, h)| format!("{id}:{h}"))
            .collect();
        writeln!(
            f,
            "commits: height min {} max {}  [{}]  recovery after faults: {}{}",
            self.commits.min_height,
            self.commits.max_height,
            h.join(" "),
            self.commits
                .max_recovery
                .map_or("never".to_string(), fmt_time),
            if self.liveness_checked {
                ""
            } else {
                " (liveness not checked: beyond f)"
            }
        )?;
        writeln!(
            f,
            "transactions: submitted {} (submissions {}), executed {}, confirmed {}, \
             duplicates suppressed {}, batches refused {}",
            self.txs_submitted,
            self.tx_submissions,
            self.txs_executed,
            self.txs_confirmed,
            self.duplicates_suppressed,
            self.batches_refused
        )?;
        writeln!(f, "messages (sent/delivered/rejected/dropped):")?;
        for (k, c) in &self.messages {
            writeln!(
                f,
                "  {k:<12} {}/{}/{}/{}",
                c.sent, c.delivered, c.rejected, c.dropped
            )?;
        }
        let faults: Vec<String> = self
            .faults
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        writeln!(
            f,
            "faults: {}",
            if faults.is_empty() {
                "none".into()
            } else {
                faults.join(", ")
            }
        )?;
        let ev: Vec<String> = self
            .events
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        writeln!(f, "events: {}", ev.join(", "))?;
        if self.ok() {
            writeln!(f, "violations: none")?;
        } else {
            writeln!(
                f,
                "violations: {}",
                self.violations.len() as u64 + self.violations_dropped
            )?;
            for v in &self.violations {
                writeln!(f, "  {v}")?;
            }
            if self.violations_dropped > 0 {
                writeln!(f, "  ... and {} more", self.violations_dropped)?;
            }
            writeln!(f, "repro: {}", self.repro())?;
        }
        Ok(())
    }
}

/// Totals over many runs (a sweep), built with [`SweepSummary::add`].
#[derive(Clone, Debug, Default)]
pub struct SweepSummary {
    pub seeds: u64,
    /// Sum over seeds of the highest honest committed height.
    pub commits_total: u64,
    /// Lowest, over seeds, of the lowest honest committed height.
    pub commits_min: Option<u64>,
    pub txs_submitted: u64,
    pub txs_executed: u64,
    pub duplicates_suppressed: u64,
    pub messages_sent: u64,
    pub faults: BTreeMap<&'static str, u64>,
    /// Violations over all seeds.
    pub violations: u64,
    /// The reports of the seeds that violated an invariant, by seed.
    pub failing: Vec<RunReport>,
    /// Virtual time simulated, over all seeds.
    pub virtual_time: Duration,
}

impl SweepSummary {
    pub fn add(&mut self, r: &RunReport) {
        self.seeds += 1;
        self.commits_total += r.commits.max_height;
        self.commits_min = Some(
            self.commits_min
                .map_or(r.commits.min_height, |m| m.min(r.commits.min_height)),
        );
        self.txs_submitted += r.txs_submitted;
        self.txs_executed += r.txs_executed;
        self.duplicates_suppressed += r.duplicates_suppressed;
        self.messages_sent += r.messages_sent();
        for (k, v) in &r.faults {
            *self.faults.entry(k).or_default() += v;
        }
        self.violations += r.violations.len() as u64 + r.violations_dropped;
        self.virtual_time += r.virtual_time;
        if !r.ok() {
            let at = self.failing.partition_point(|x| x.seed < r.seed);
            self.failing.insert(at, r.clone());
        }
    }

    pub fn ok(&self) -> bool {
        self.violations == 0
    }
}
