//! The eight traced stages: their short names, their exact demangled symbols,
//! and the per-thread latency recorder that is the ground truth for each.

use std::fmt;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::inject::InjectCounts;
use crate::latency::{LatencyRecord, LatencySummary};

/// One traced stage function. The order is pipeline order, which is also the
/// order of `functions` in the truth file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Decode,
    Book,
    Signal,
    RiskCheck,
    Matching,
    OnMessage,
    Gateway,
    Journal,
}

impl Stage {
    pub const COUNT: usize = 8;
    pub const ALL: [Stage; Stage::COUNT] = [
        Stage::Decode,
        Stage::Book,
        Stage::Signal,
        Stage::RiskCheck,
        Stage::Matching,
        Stage::OnMessage,
        Stage::Gateway,
        Stage::Journal,
    ];

    /// The name used by `--inject STAGE=…` and by `stage` in the truth file.
    pub const fn short_name(self) -> &'static str {
        match self {
            Stage::Decode => "decode",
            Stage::Book => "book",
            Stage::Signal => "signal",
            Stage::RiskCheck => "risk_check",
            Stage::Matching => "matching",
            Stage::OnMessage => "on_message",
            Stage::Gateway => "gateway",
            Stage::Journal => "journal",
        }
    }

    /// The demangled symbol (`{:#}` of rustc-demangle, no hash) that a user
    /// attaches a uprobe to. `tests/symbols.rs` checks each one against the
    /// built binary, so renaming a stage function fails a test, not a user.
    pub const fn symbol(self) -> &'static str {
        match self {
            Stage::Decode => "target_app::feed::decode",
            Stage::Book => "target_app::book::OrderBook::apply",
            Stage::Signal => "target_app::signal::Signal::update",
            Stage::RiskCheck => "target_app::risk::RiskEngine::check",
            Stage::Matching => "target_app::matching::MatchingEngine::submit",
            Stage::OnMessage => "target_app::engine::Engine::on_message",
            Stage::Gateway => "target_app::gateway::Gateway::send",
            Stage::Journal => "target_app::journal::Journal::append",
        }
    }

    pub fn from_short_name(name: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| s.short_name() == name)
    }

    pub const fn index(self) -> usize {
        self as usize
    }

    /// All short names, comma separated, for error messages and `--help`.
    pub fn short_names() -> String {
        Stage::ALL.map(Stage::short_name).join(", ")
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.short_name())
    }
}

/// Latency record for one stage, owned by the one thread that calls it, so
/// recording takes no lock.
#[derive(Debug, Clone)]
pub struct StageStats {
    stage: Stage,
    latency: LatencyRecord,
}

impl StageStats {
    pub fn new(stage: Stage) -> Result<Self, StatsError> {
        // Fixed bounds so recording never allocates or resizes on a hot path.
        let latency = LatencyRecord::new().map_err(|source| StatsError { stage, source })?;
        Ok(StageStats { stage, latency })
    }

    pub fn stage(&self) -> Stage {
        self.stage
    }

    pub fn count(&self) -> u64 {
        self.latency.count()
    }

    #[inline(always)]
    pub fn record(&mut self, elapsed: Duration) {
        self.latency.record(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Times `f` at the call site: the same interval a uprobe/uretprobe pair
    /// around the stage function sees, plus two clock reads.
    #[inline(always)]
    pub fn time<R>(&mut self, f: impl FnOnce() -> R) -> R {
        let t0 = Instant::now();
        let out = f();
        self.record(t0.elapsed());
        out
    }

    pub fn summary(&self, injected: InjectCounts) -> StageSummary {
        StageSummary {
            stage: self.stage,
            latency: self.latency.summary(),
            injected_count: injected.calls,
            injected_page_faults: injected.page_faults,
            injected_major_faults: injected.major_faults,
            injected_migrations: injected.migrations,
            injected_sleeps_blocked: injected.sleeps_blocked,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot create the latency histogram for stage {stage}")]
pub struct StatsError {
    pub stage: Stage,
    #[source]
    pub source: hdrhistogram::CreationError,
}

/// The numbers one stage contributes to the truth file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StageSummary {
    pub stage: Stage,
    /// `count`, `min_ns` … `max_ns`, `sum_ns`, inline.
    #[serde(flatten)]
    pub latency: LatencySummary,
    pub injected_count: u64,
    /// Page faults the thread took inside `pagefault` injections, by its own rusage.
    pub injected_page_faults: u64,
    /// The major ones among them (`majorfault` injections).
    pub injected_major_faults: u64,
    /// CPU migrations `migrate` injections caused (the thread ran on another CPU afterwards).
    pub injected_migrations: u64,
    /// `sleep` injections during which the thread blocked (left the CPU voluntarily), by its own
    /// rusage: the sleeps a tracer must see off-CPU.
    pub injected_sleeps_blocked: u64,
}

impl StageSummary {
    pub fn empty(stage: Stage) -> Self {
        StageSummary {
            stage,
            latency: LatencySummary::default(),
            injected_count: 0,
            injected_page_faults: 0,
            injected_major_faults: 0,
            injected_migrations: 0,
            injected_sleeps_blocked: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_round_trip() {
        for stage in Stage::ALL {
            assert_eq!(Stage::from_short_name(stage.short_name()), Some(stage));
            assert_eq!(Stage::ALL[stage.index()], stage);
        }
        assert_eq!(Stage::from_short_name("risk"), None);
    }

    fn stats(stage: Stage) -> StageStats {
        StageStats::new(stage).expect("constant histogram bounds are valid")
    }

    #[test]
    fn summary_is_exact_for_min_max_count_and_clamped_quantiles() {
        let mut stats = stats(Stage::Book);
        for ns in [100u64, 200, 300, 400, 1_000_000] {
            stats.record(Duration::from_nanos(ns));
        }
        let summary = stats.summary(InjectCounts { calls: 1, ..InjectCounts::default() });
        assert_eq!(summary.injected_count, 1);
        let s = summary.latency;
        assert_eq!(s.count, 5);
        assert_eq!(s.min_ns, 100);
        assert_eq!(s.max_ns, 1_000_000);
        assert_eq!(s.sum_ns, 1_001_000);
        assert_eq!(s.mean_ns, 200_200);
        assert!(s.p50_ns >= 300 && s.p50_ns <= 301, "{}", s.p50_ns);
        assert_eq!(s.p999_ns, 1_000_000);
    }

    #[test]
    fn empty_summary_is_all_zero() {
        let s = stats(Stage::Journal).summary(InjectCounts::default());
        assert_eq!(s, StageSummary::empty(Stage::Journal));
    }
}
