//! What a simulated run looks like: committee size, Byzantine replicas, the fault mix,
//! the fault window, clients, mempool and the replicas' own configuration.
//!
//! [`SimConfig::standard`] is the mixed-fault default the `olympus sim` command uses.
//! Every duration is *virtual* time.

use olympus_protocols::ReplicaConfig;
use olympus_types::NodeId;
use std::fmt;
use std::time::Duration;

/// Where the standard fault window ends (`olympus sim --duration-ms` moves it).
pub const STANDARD_FAULT_END: Duration = Duration::from_millis(3000);
/// The standard density of partitions, crash attempts and twins splits: one of each
/// per this much fault window.
pub const FAULT_SPACING: Duration = Duration::from_millis(1400);

/// How a Byzantine replica misbehaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ByzantineKind {
    /// Runs nothing and sends nothing (a crash that never recovers).
    Silent,
    /// Two full instances of the protocol sharing one identity and one key, each in its
    /// own "world" during twins-split periods: the Twins method (Bano et al., 2020)
    /// for equivocation, double voting and forking without writing an adversary.
    Twins,
}

impl ByzantineKind {
    pub fn name(self) -> &'static str {
        match self {
            ByzantineKind::Silent => "silent",
            ByzantineKind::Twins => "twins",
        }
    }
}

impl fmt::Display for ByzantineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which kinds Byzantine replicas take in a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByzantineChoice {
    /// Each Byzantine replica draws its kind from the seed (silent or twins, evenly).
    Mixed,
    /// Every Byzantine replica is of this kind.
    All(ByzantineKind),
}

impl ByzantineChoice {
    /// `"mixed"`, `"silent"` or `"twins"`.
    pub fn name(self) -> &'static str {
        match self {
            ByzantineChoice::Mixed => "mixed",
            ByzantineChoice::All(k) => k.name(),
        }
    }

    /// Parses [`ByzantineChoice::name`].
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "mixed" => Some(ByzantineChoice::Mixed),
            "silent" => Some(ByzantineChoice::All(ByzantineKind::Silent)),
            "twins" => Some(ByzantineChoice::All(ByzantineKind::Twins)),
            _ => None,
        }
    }
}

/// The network and process faults injected during the fault window. Outside the window
/// the network delivers every message once, with a delay uniform in
/// `[delay_min, delay_max]`.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultConfig {
    /// One-way delay of a message between two nodes: uniform in `[delay_min, delay_max]`.
    pub delay_min: Duration,
    pub delay_max: Duration,
    /// Probability that a message instead takes a long-tail delay, uniform in
    /// `(delay_max, long_tail_max]`.
    pub long_tail_prob: f64,
    pub long_tail_max: Duration,
    /// Probability that a message is lost.
    pub loss_prob: f64,
    /// Probability that a message is delivered twice (the copy with its own delay).
    pub dup_prob: f64,
    /// Number of network partitions in the window (one at a time, each in its own slot
    /// of the window): the nodes are split at random into two non-empty groups and no
    /// message crosses between them until it heals.
    pub partitions: usize,
    pub partition_min: Duration,
    pub partition_max: Duration,
    /// Number of crash attempts in the window. A crash takes an honest live replica
    /// down (only if the fault budget allows) and restarts it after a downtime, at the
    /// latest at the end of the window.
    pub crashes: usize,
    pub downtime_min: Duration,
    pub downtime_max: Duration,
    /// Number of twins-split periods in the window (only when there are Twins): honest
    /// nodes are split at random into side A and side B; twin A lives with side A,
    /// twin B with side B, and no message crosses between the two worlds.
    pub twins_splits: usize,
    pub twins_split_min: Duration,
    pub twins_split_max: Duration,
}

impl FaultConfig {
    /// No faults at all: delays only.
    pub fn none(delay_min: Duration, delay_max: Duration) -> Self {
        FaultConfig {
            delay_min,
            delay_max,
            long_tail_prob: 0.0,
            long_tail_max: delay_max,
            loss_prob: 0.0,
            dup_prob: 0.0,
            partitions: 0,
            partition_min: Duration::ZERO,
            partition_max: Duration::ZERO,
            crashes: 0,
            downtime_min: Duration::ZERO,
            downtime_max: Duration::ZERO,
            twins_splits: 0,
            twins_split_min: Duration::ZERO,
            twins_split_max: Duration::ZERO,
        }
    }
}

/// Clients and their load.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientConfig {
    /// Number of clients; client `c` has home replica `c mod n`.
    pub clients: usize,
    /// Mean time between two submissions of one client (each gap is uniform in
    /// `[interval/2, 3·interval/2]`).
    pub interval: Duration,
    /// Bytes of payload per transaction.
    pub payload_bytes: usize,
    /// A transaction not confirmed after this long is resubmitted, same `(client,
    /// nonce)`, to the next replica (home + attempt mod n). Confirmed means executed by
    /// f + 1 honest replicas (all of them if fewer are honest): the simulator's stand-in
    /// for a client collecting f + 1 matching replies.
    pub retry_timeout: Duration,
    /// Resubmissions after the first submission before the client gives up.
    pub max_retries: u32,
}

/// The per-replica simulated mempool: it seals a batch when it holds `batch_max_txs`
/// transactions or when its oldest transaction has waited `batch_timeout`, and offers it
/// to the replica's leader half.
#[derive(Clone, Debug, PartialEq)]
pub struct MempoolConfig {
    pub batch_max_txs: usize,
    pub batch_timeout: Duration,
}

/// Everything that defines a run, apart from the seed and the protocol.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Committee size.
    pub n: usize,
    /// Number of Byzantine replicas (may exceed f, for positive controls).
    pub byzantine: usize,
    pub byzantine_choice: ByzantineChoice,
    /// Which replicas are Byzantine; `None`: drawn from the seed.
    pub byzantine_nodes: Option<Vec<NodeId>>,
    /// The fault budget: at any instant, Byzantine replicas plus crashed honest
    /// replicas never exceed it (crashes that would exceed it are skipped). `None`:
    /// f = (n − 1) / 3, the tolerance of the partially synchronous protocols.
    pub max_faulty: Option<usize>,
    pub faults: FaultConfig,
    /// Faults (loss, duplication, long delays, partitions, crashes, twins splits) are
    /// injected only in `[fault_start, fault_end)`. At `fault_end` every partition heals
    /// and every crashed replica restarts: from then on the network is synchronous.
    pub fault_start: Duration,
    pub fault_end: Duration,
    /// Longest virtual time a run lasts. Must be at least `fault_end + liveness_bound`.
    pub duration: Duration,
    /// The liveness checker: every honest replica must commit a new block within this
    /// long after `fault_end`.
    pub liveness_bound: Duration,
    /// With `stop_when_live`, the run ends `settle` after the last honest replica made
    /// its first post-heal commit — or, when liveness is not checked (see
    /// [`SimConfig::checks_liveness`]), `settle` after the end of the fault window. It
    /// always ends at `duration` at the latest.
    pub stop_when_live: bool,
    pub settle: Duration,
    /// End the run at the first violation (any kind): for positive controls and
    /// searches that only need to know whether a seed fails.
    pub stop_at_first_violation: bool,
    pub clients: ClientConfig,
    pub mempool: MempoolConfig,
    /// The replicas' configuration; `id` and `n` are set per replica by the simulator.
    pub replica: ReplicaConfig,
    /// Most violations kept in a report (the rest are only counted).
    pub max_violations: usize,
    /// The synchronous model (n = 2f+1, every message between honest replicas within
    /// `replica.delta`): f = (n − 1) / 2, and the fault mix of
    /// [`SimConfig::synchronous`]. A run of a protocol with `Protocol::SYNCHRONOUS` set
    /// under a configuration of the other model uses [`SimConfig::adapted`].
    pub synchronous: bool,
    /// How long after its restart a crashed replica still counts against the fault
    /// budget (zero in the partially synchronous model). A restarted synchronous replica
    /// spends a few Δ resynchronising before it is as good as one that never crashed.
    pub recovery_grace: Duration,
}

/// Why a configuration cannot run.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("n must be between 1 and {max}, got {n}")]
    BadN { n: usize, max: usize },
    #[error("{byzantine} Byzantine replicas out of n = {n}: at least one must be honest")]
    TooManyByzantine { byzantine: usize, n: usize },
    #[error("byzantine_nodes lists {listed} replicas but byzantine = {byzantine}")]
    ByzantineNodesMismatch { listed: usize, byzantine: usize },
    #[error("byzantine_nodes has a duplicate or out-of-range id {0}")]
    BadByzantineNode(NodeId),
    #[error("fault window [{start:?}, {end:?}) is empty or reversed")]
    BadWindow { start: Duration, end: Duration },
    #[error("duration {duration:?} is shorter than fault_end + liveness_bound = {needed:?}")]
    TooShort {
        duration: Duration,
        needed: Duration,
    },
    #[error("delay range [{min:?}, {max:?}] is reversed or zero")]
    BadDelay { min: Duration, max: Duration },
    #[error("{0} must be a probability in [0, 1]")]
    BadProbability(&'static str),
    #[error("{0}: minimum above maximum")]
    BadRange(&'static str),
    #[error("batch_max_txs must be at least 1")]
    BadBatch,
    #[error("client interval must be positive")]
    BadInterval,
}

impl SimConfig {
    /// f = (n − 1) / 3, or (n − 1) / 2 in the synchronous model.
    pub fn f(&self) -> usize {
        if self.synchronous {
            self.n.saturating_sub(1) / 2
        } else {
            self.n.saturating_sub(1) / 3
        }
    }

    /// Whether the liveness checker runs: only when the run stays within the fault
    /// tolerance (at most f Byzantine replicas and a fault budget of at most f), where
    /// a correct protocol promises progress. A positive control with more than f
    /// Byzantine replicas is judged on safety only.
    pub fn checks_liveness(&self) -> bool {
        self.byzantine <= self.f() && self.fault_budget() <= self.f()
    }

    /// The fault budget (see [`SimConfig::max_faulty`]).
    pub fn fault_budget(&self) -> usize {
        self.max_faulty.unwrap_or_else(|| self.f())
    }

    /// The mixed-fault default of `olympus sim`, in which a correct partially
    /// synchronous protocol stays safe and live:
    ///
    /// - replicas: view timeout 100 ms, backed off up to 1 s;
    /// - delay uniform in [1, 10] ms; during the fault window [200 ms, 3 s): 2 % of
    ///   messages take a long-tail delay of up to 250 ms, 2 % are lost, 2 % duplicated;
    ///   2 partitions of 100–600 ms; 2 crash attempts with 100–800 ms of downtime
    ///   (within the fault budget f, Byzantine replicas included); with Twins, 2
    ///   twins-split periods of 200–800 ms (2 of each = one per [`FAULT_SPACING`]);
    /// - `byzantine` Byzantine replicas, each silent or Twins by the seed — all Twins
    ///   when `byzantine` exceeds f (a positive control: silent replicas cannot break
    ///   safety, and liveness is not checked beyond f);
    /// - 4 clients, one transaction each every 20 ms on average (16-byte payloads),
    ///   retried after 1 s at the next replica, up to 8 times; batches of up to 32
    ///   transactions or 5 ms;
    /// - liveness bound 10 s after the window (10 × the maximum view timeout), and the
    ///   run stops 500 ms after every honest replica has committed after the window.
    pub fn standard(n: usize, byzantine: usize) -> SimConfig {
        let mut replica = ReplicaConfig::new(NodeId(0), n);
        replica.view_timeout = Duration::from_millis(100);
        replica.max_view_timeout = Duration::from_millis(1000);
        let ms = Duration::from_millis;
        let faults = FaultConfig {
            delay_min: ms(1),
            delay_max: ms(10),
            long_tail_prob: 0.02,
            long_tail_max: ms(250),
            loss_prob: 0.02,
            dup_prob: 0.02,
            partitions: 2,
            partition_min: ms(100),
            partition_max: ms(600),
            crashes: 2,
            downtime_min: ms(100),
            downtime_max: ms(800),
            twins_splits: 2,
            twins_split_min: ms(200),
            twins_split_max: ms(800),
        };
        let liveness_bound = replica.max_view_timeout * 10;
        let fault_end = STANDARD_FAULT_END;
        let mut c = SimConfig {
            n,
            byzantine,
            // Beyond f (a positive control) liveness is not promised and a silent replica
            // cannot break safety: every Byzantine replica is then a Twin.
            byzantine_choice: if byzantine > n.saturating_sub(1) / 3 {
                ByzantineChoice::All(ByzantineKind::Twins)
            } else {
                ByzantineChoice::Mixed
            },
            byzantine_nodes: None,
            max_faulty: None,
            faults,
            fault_start: ms(200),
            fault_end,
            duration: fault_end + liveness_bound + ms(1000),
            liveness_bound,
            stop_when_live: true,
            stop_at_first_violation: false,
            settle: ms(500),
            clients: ClientConfig {
                clients: 4,
                interval: ms(20),
                payload_bytes: 16,
                retry_timeout: ms(1000),
                max_retries: 8,
            },
            mempool: MempoolConfig {
                batch_max_txs: 32,
                batch_timeout: ms(5),
            },
            replica,
            max_violations: 32,
            synchronous: false,
            recovery_grace: Duration::ZERO,
        };
        c.set_fault_end(fault_end);
        c
    }

    /// The default of `olympus sim` for synchronous protocols (n = 2f+1), in which a
    /// correct synchronous protocol stays safe and live. Synchrony forbids what would
    /// delay an honest message beyond Δ, so unlike [`SimConfig::standard`]:
    ///
    /// - Δ (`replica.delta`) is 20 ms; delays are uniform in [1, 10] ms, and during the
    ///   fault window 2 % of messages take a long-tail delay of up to Δ − 1 µs (messages
    ///   always arrive strictly within Δ); 2 % are duplicated; **none is lost** and there
    ///   are **no partitions**;
    /// - crash attempts and Twins as in the standard mix (one of each per
    ///   [`FAULT_SPACING`]), within the fault budget f = (n − 1) / 2, where a restarted
    ///   replica still counts for `recovery_grace` = 4Δ after its restart;
    /// - a twins split cuts each twin off from the honest replicas of the other side and
    ///   from its sibling, but never cuts two honest replicas apart: Byzantine leaders
    ///   equivocate and fork, the network between honest replicas stays synchronous
    ///   (beyond f — a positive control — the splits are those of the standard mix and
    ///   do cut honest replicas apart);
    /// - `byzantine` Byzantine replicas, each silent or Twins — all Twins beyond f.
    pub fn synchronous(n: usize, byzantine: usize) -> SimConfig {
        let mut c = SimConfig::standard(n, byzantine);
        let ms = Duration::from_millis;
        c.synchronous = true;
        c.replica.delta = ms(20);
        c.recovery_grace = c.replica.delta * 4;
        c.faults.long_tail_max = c.replica.delta - Duration::from_micros(1);
        c.faults.loss_prob = 0.0;
        c.byzantine_choice = if byzantine > n.saturating_sub(1) / 2 {
            ByzantineChoice::All(ByzantineKind::Twins)
        } else {
            ByzantineChoice::Mixed
        };
        let end = c.fault_end;
        c.set_fault_end(end);
        c
    }

    /// The standard configuration of either model.
    pub fn standard_for(synchronous: bool, n: usize, byzantine: usize) -> SimConfig {
        if synchronous {
            SimConfig::synchronous(n, byzantine)
        } else {
            SimConfig::standard(n, byzantine)
        }
    }

    /// This configuration carried over to the other model (`synchronous`): the standard
    /// configuration of that model with this one's command-line settings (n, Byzantine
    /// replicas and their kind, the fault window) and its stopping rules. Unchanged when
    /// the model already matches. This is how `olympus sim` runs synchronous protocols.
    pub fn adapted(&self, synchronous: bool) -> SimConfig {
        if self.synchronous == synchronous {
            return self.clone();
        }
        let std = SimConfig::standard_for(self.synchronous, self.n, self.byzantine);
        let mut c = SimConfig::standard_for(synchronous, self.n, self.byzantine);
        if self.byzantine_choice != std.byzantine_choice {
            c.byzantine_choice = self.byzantine_choice;
        }
        c.byzantine_nodes = self.byzantine_nodes.clone();
        if self.fault_end != std.fault_end {
            c.set_fault_end(self.fault_end);
        }
        c.stop_when_live = self.stop_when_live;
        c.stop_at_first_violation = self.stop_at_first_violation;
        c.max_violations = self.max_violations;
        c
    }

    /// Moves the end of the fault window to `end` (at least `fault_start`), keeping the
    /// standard density of process and network faults — one partition, one crash
    /// attempt and one twins split per [`FAULT_SPACING`] of window, at least one of
    /// each when the window is not empty — and making `duration` `end +
    /// liveness_bound + 1 s`. This is what `olympus sim --duration-ms` sets.
    pub fn set_fault_end(&mut self, end: Duration) {
        self.fault_end = end.max(self.fault_start);
        let window = self.fault_end - self.fault_start;
        let count = if window.is_zero() {
            0
        } else {
            ((window.as_nanos() + FAULT_SPACING.as_nanos() / 2) / FAULT_SPACING.as_nanos()).max(1)
                as usize
        };
        // Synchrony allows no partition.
        self.faults.partitions = if self.synchronous { 0 } else { count };
        self.faults.crashes = count;
        self.faults.twins_splits = count;
        self.duration = self.fault_end + self.liveness_bound + Duration::from_millis(1000);
    }

    /// The standard configuration without any fault: delays only, no Byzantine
    /// replicas (the run stops as soon as every replica has committed after the
    /// would-be fault window).
    pub fn calm(n: usize) -> SimConfig {
        let mut c = SimConfig::standard(n, 0);
        c.faults = FaultConfig::none(c.faults.delay_min, c.faults.delay_max);
        c
    }

    /// Checks that the configuration can run.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let max = olympus_types::limits::MAX_NODES;
        if self.n == 0 || self.n > max {
            return Err(ConfigError::BadN { n: self.n, max });
        }
        if self.byzantine >= self.n {
            return Err(ConfigError::TooManyByzantine {
                byzantine: self.byzantine,
                n: self.n,
            });
        }
        if let Some(nodes) = &self.byzantine_nodes {
            if nodes.len() != self.byzantine {
                return Err(ConfigError::ByzantineNodesMismatch {
                    listed: nodes.len(),
                    byzantine: self.byzantine,
                });
            }
            let mut seen = vec![false; self.n];
            for id in nodes {
                if id.index() >= self.n || seen[id.index()] {
                    return Err(ConfigError::BadByzantineNode(*id));
                }
                seen[id.index()] = true;
            }
        }
        if self.fault_end < self.fault_start {
            return Err(ConfigError::BadWindow {
                start: self.fault_start,
                end: self.fault_end,
            });
        }
        let needed = self.fault_end + self.liveness_bound;
        if self.duration < needed {
            return Err(ConfigError::TooShort {
                duration: self.duration,
                needed,
            });
        }
        let f = &self.faults;
        if f.delay_max < f.delay_min || f.delay_max.is_zero() {
            return Err(ConfigError::BadDelay {
                min: f.delay_min,
                max: f.delay_max,
            });
        }
        for (name, p) in [
            ("long_tail_prob", f.long_tail_prob),
            ("loss_prob", f.loss_prob),
            ("dup_prob", f.dup_prob),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(ConfigError::BadProbability(name));
            }
        }
        for (name, lo, hi) in [
            ("partition length", f.partition_min, f.partition_max),
            ("downtime", f.downtime_min, f.downtime_max),
            ("twins split length", f.twins_split_min, f.twins_split_max),
        ] {
            if lo > hi {
                return Err(ConfigError::BadRange(name));
            }
        }
        if self.mempool.batch_max_txs == 0 {
            return Err(ConfigError::BadBatch);
        }
        if self.clients.clients > 0 && self.clients.interval.is_zero() {
            return Err(ConfigError::BadInterval);
        }
        Ok(())
    }

    /// The `olympus sim` flags that rebuild this configuration from
    /// [`SimConfig::standard`], without `--protocol` and `--seed`. Appends a note when
    /// the configuration has settings the command line cannot express.
    pub fn cli_flags(&self) -> String {
        let mut s = format!("-n {} --byzantine {}", self.n, self.byzantine);
        let std = SimConfig::standard_for(self.synchronous, self.n, self.byzantine);
        let mut rebuilt = std.clone();
        // Stopping at the first violation does not change the run up to it.
        rebuilt.stop_at_first_violation = self.stop_at_first_violation;
        if self.byzantine_choice != std.byzantine_choice {
            s.push_str(&format!(
                " --byzantine-kind {}",
                self.byzantine_choice.name()
            ));
            rebuilt.byzantine_choice = self.byzantine_choice;
        }
        if self.fault_end != std.fault_end {
            s.push_str(&format!(" --duration-ms {}", self.fault_end.as_millis()));
            rebuilt.set_fault_end(self.fault_end);
        }
        if format!("{rebuilt:?}") != format!("{self:?}") {
            s.push_str(" (plus settings the command line cannot set: a custom SimConfig)");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_is_valid_and_round_trips_to_flags() {
        for (n, b) in [(4, 0), (4, 1), (7, 2), (4, 2)] {
            let c = SimConfig::standard(n, b);
            c.validate().unwrap();
            assert_eq!(c.cli_flags(), format!("-n {n} --byzantine {b}"));
        }
        let mut c = SimConfig::standard(4, 1);
        c.byzantine_choice = ByzantineChoice::All(ByzantineKind::Twins);
        assert_eq!(c.cli_flags(), "-n 4 --byzantine 1 --byzantine-kind twins");
        c.set_fault_end(Duration::from_millis(10_000));
        assert_eq!(c.faults.crashes, 7);
        assert_eq!(
            c.cli_flags(),
            "-n 4 --byzantine 1 --byzantine-kind twins --duration-ms 10000"
        );
        c.validate().unwrap();
        let mut c = SimConfig::standard(4, 2);
        assert_eq!(
            c.byzantine_choice,
            ByzantineChoice::All(ByzantineKind::Twins)
        );
        c.byzantine_choice = ByzantineChoice::Mixed;
        assert_eq!(c.cli_flags(), "-n 4 --byzantine 2 --byzantine-kind mixed");
        c.validate().unwrap();
        c.clients.clients = 1;
        assert!(c.cli_flags().contains("custom"));
    }

    #[test]
    fn synchronous_mix_keeps_delays_within_delta_and_round_trips() {
        for (n, b) in [(3, 1), (5, 2), (7, 3), (5, 3)] {
            let c = SimConfig::synchronous(n, b);
            c.validate().unwrap();
            assert_eq!(c.f(), (n - 1) / 2);
            assert!(c.faults.long_tail_max < c.replica.delta);
            assert!(c.faults.delay_max < c.replica.delta);
            assert_eq!((c.faults.loss_prob, c.faults.partitions), (0.0, 0));
            assert_eq!(c.cli_flags(), format!("-n {n} --byzantine {b}"));
            assert_eq!(
                format!("{:?}", SimConfig::standard(n, b).adapted(true)),
                format!("{c:?}")
            );
            assert_eq!(
                format!("{:?}", c.adapted(false)),
                format!("{:?}", SimConfig::standard(n, b))
            );
        }
        let mut c = SimConfig::standard(5, 1);
        c.byzantine_choice = ByzantineChoice::All(ByzantineKind::Twins);
        c.set_fault_end(Duration::from_millis(6000));
        let s = c.adapted(true);
        assert_eq!(s.faults.partitions, 0);
        assert_eq!(s.fault_end, Duration::from_millis(6000));
        assert_eq!(
            s.cli_flags(),
            "-n 5 --byzantine 1 --byzantine-kind twins --duration-ms 6000"
        );
    }

    #[test]
    fn validate_refuses_nonsense() {
        let mut c = SimConfig::standard(4, 0);
        c.duration = Duration::from_secs(1);
        assert!(matches!(c.validate(), Err(ConfigError::TooShort { .. })));
        let c = SimConfig::standard(4, 4);
        assert!(matches!(
            c.validate(),
            Err(ConfigError::TooManyByzantine { .. })
        ));
        let mut c = SimConfig::standard(4, 1);
        c.byzantine_nodes = Some(vec![NodeId(9)]);
        assert_eq!(c.validate(), Err(ConfigError::BadByzantineNode(NodeId(9))));
    }
}
