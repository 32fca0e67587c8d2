//! The ground-truth file: what each pipeline thread reports, joined into the
//! `perf-ebpf-truth/v1` JSON, and written atomically.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::engine::EngineCounts;

/// User + system CPU time of this process (all threads), from getrusage(2).
fn process_cpu_ns() -> u64 {
    // SAFETY: getrusage writes a plain struct we own; an all-zero rusage is a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to `ru`; RUSAGE_SELF covers every thread of the process.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return 0;
    }
    let ns = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1_000;
    ns(ru.ru_utime) + ns(ru.ru_stime)
}
use crate::stage::{Stage, StageSummary};

pub const SCHEMA: &str = "perf-ebpf-truth/v1";

/// When feeding started, on both clocks: wall time for the window, monotonic
/// time for durations.
#[derive(Debug, Clone, Copy)]
pub struct Start {
    pub unix_ns: u64,
    pub at: Instant,
}

impl Start {
    pub fn now() -> Start {
        Start { unix_ns: unix_ns_now(), at: Instant::now() }
    }
}

pub fn unix_ns_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)).unwrap_or(0)
}

/// The feed thread's part of a report.
#[derive(Debug, Clone, Copy, Default)]
pub struct FeedReport {
    pub messages_fed: u64,
    /// None while `--hold` has not been released.
    pub started: Option<Start>,
    /// When the last message was fed, if feeding has stopped.
    pub stopped_at: Option<Instant>,
}

/// The engine thread's part: decode and on_message are timed by the thread
/// loop, the callees inside `on_message`.
#[derive(Debug, Clone, Default)]
pub struct EngineReport {
    pub decoded: u64,
    pub decode_errors: u64,
    /// Injected panics caught above `on_message` (profile `release-unwind` only).
    pub panics_caught: u64,
    pub counts: EngineCounts,
    pub stages: Vec<StageSummary>,
}

/// The gateway thread's part.
#[derive(Debug, Clone, Default)]
pub struct GatewayReport {
    pub gateway_sent: u64,
    pub journaled: u64,
    pub orders: u64,
    pub fills: u64,
    pub tick_to_trade: crate::tick::TickToTrade,
    pub stages: Vec<StageSummary>,
}

/// Everything the threads know at one consistent cut of the pipeline.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub feed: FeedReport,
    pub engine: EngineReport,
    pub gateway: GatewayReport,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Truth {
    pub schema: &'static str,
    pub target: Target,
    pub window: Window,
    /// Monotonic time from the first message fed to when this was written.
    pub duration_ns: u64,
    pub messages_fed: u64,
    /// messages_fed over the time spent feeding (first to last message).
    pub rate_achieved_per_s: f64,
    /// false for a SIGUSR1 snapshot, true for the file written at exit.
    #[serde(rename = "final")]
    pub is_final: bool,
    /// CPU time (user + system) the whole process used so far: what a tracer's overhead costs it.
    pub cpu_ns: u64,
    pub pipeline: Pipeline,
    pub functions: Vec<FunctionTruth>,
    /// Feed receive → gateway send of every order, timed by target-app (the span perf-user's
    /// `--span` measures between `tick::feed_receive` and `tick::order_sent`).
    pub tick_to_trade: crate::tick::TickToTrade,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    pub pid: u32,
    /// Absolute path of the running executable (lossy UTF-8).
    pub exe: String,
}

impl Target {
    pub fn current() -> Target {
        let exe = std::env::current_exe()
            .and_then(|p| p.canonicalize())
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        Target { pid: std::process::id(), exe }
    }
}

/// Wall-clock span the truth covers; both ends equal while nothing was fed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Window {
    pub start_unix_ns: u64,
    pub end_unix_ns: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Pipeline {
    pub decoded: u64,
    pub decode_errors: u64,
    pub panics_caught: u64,
    pub book_updates: u64,
    pub signals_fired: u64,
    pub risk_checked: u64,
    pub risk_rejected: u64,
    pub orders_submitted: u64,
    pub fills: u64,
    /// gateway.send calls: one per order plus one per fill.
    pub gateway_sent: u64,
    pub gateway_orders: u64,
    pub gateway_fills: u64,
    pub journaled: u64,
}

/// One stage's numbers in the truth file, keyed by the function a tracer would see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FunctionTruth {
    /// Demangled symbol, without hash: the key to join with a tracer export.
    pub symbol: &'static str,
    /// `stage`, `count`, `min_ns` … `injected_count` (calls on which an `--inject` fired), inline.
    #[serde(flatten)]
    pub summary: StageSummary,
}

impl From<StageSummary> for FunctionTruth {
    fn from(summary: StageSummary) -> Self {
        FunctionTruth { symbol: summary.stage.symbol(), summary }
    }
}

fn ns_between(from: Instant, to: Instant) -> u64 {
    u64::try_from(to.saturating_duration_since(from).as_nanos()).unwrap_or(u64::MAX)
}

impl Truth {
    /// Joins a report into the truth as of (`end_unix_ns`, `end`). Every
    /// stage is listed, in pipeline order, even if it was never called.
    pub fn build(report: &Report, target: Target, is_final: bool, end_unix_ns: u64, end: Instant) -> Truth {
        let feed = &report.feed;
        let (window, duration_ns, rate) = match feed.started {
            None => (Window { start_unix_ns: end_unix_ns, end_unix_ns }, 0, 0.0),
            Some(start) => {
                let feeding_ns = ns_between(start.at, feed.stopped_at.unwrap_or(end));
                let rate = if feeding_ns == 0 { 0.0 } else { feed.messages_fed as f64 * 1e9 / feeding_ns as f64 };
                (Window { start_unix_ns: start.unix_ns, end_unix_ns }, ns_between(start.at, end), rate)
            }
        };
        let c = report.engine.counts;
        let g = &report.gateway;
        let summaries = report.engine.stages.iter().chain(&g.stages);
        let functions = Stage::ALL
            .into_iter()
            .map(|stage| {
                summaries
                    .clone()
                    .find(|s| s.stage == stage)
                    .copied()
                    .unwrap_or_else(|| StageSummary::empty(stage))
                    .into()
            })
            .collect();
        Truth {
            schema: SCHEMA,
            target,
            window,
            duration_ns,
            messages_fed: feed.messages_fed,
            rate_achieved_per_s: rate,
            is_final,
            cpu_ns: process_cpu_ns(),
            pipeline: Pipeline {
                decoded: report.engine.decoded,
                decode_errors: report.engine.decode_errors,
                panics_caught: report.engine.panics_caught,
                book_updates: c.book_updates,
                signals_fired: c.signals_fired,
                risk_checked: c.risk_checked,
                risk_rejected: c.risk_rejected,
                orders_submitted: c.orders_submitted,
                fills: c.fills,
                gateway_sent: g.gateway_sent,
                gateway_orders: g.orders,
                gateway_fills: g.fills,
                journaled: g.journaled,
            },
            functions,
            tick_to_trade: g.tick_to_trade.clone(),
        }
    }

    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        let mut out = serde_json::to_vec_pretty(self)?;
        out.push(b'\n');
        Ok(out)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("cannot serialise the truth file")]
    Serialize(#[from] serde_json::Error),
    #[error("cannot write {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Writes `FILE.tmp` then renames it over `FILE`, so a reader never sees a
/// half-written truth file.
pub fn write_atomic(path: &Path, truth: &Truth) -> Result<(), WriteError> {
    let bytes = truth.to_json()?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let io_err = |path: &Path| {
        let path = path.to_owned();
        move |source| WriteError::Io { path, source }
    };
    let mut file = std::fs::File::create(&tmp).map_err(io_err(&tmp))?;
    file.write_all(&bytes).map_err(io_err(&tmp))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(io_err(path))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn target() -> Target {
        Target { pid: 1, exe: "/bin/x".into() }
    }

    #[test]
    fn held_run_has_an_empty_window_and_all_stages() {
        let now = Instant::now();
        let truth = Truth::build(&Report::default(), target(), false, 123, now);
        assert_eq!(truth.window, Window { start_unix_ns: 123, end_unix_ns: 123 });
        assert_eq!(truth.duration_ns, 0);
        assert_eq!(truth.functions.len(), Stage::COUNT);
        assert!(truth.functions.iter().all(|f| f.summary.latency.count == 0));
    }

    #[test]
    fn json_shape_matches_the_schema() {
        let at = Instant::now();
        let mut report = Report {
            feed: FeedReport {
                messages_fed: 1000,
                started: Some(Start { unix_ns: 5, at }),
                stopped_at: Some(at + Duration::from_millis(500)),
            },
            ..Report::default()
        };
        let mut book = StageSummary::empty(Stage::Book);
        book.latency.count = 1000;
        report.engine.stages.push(book);
        let end = at + Duration::from_secs(1);
        let truth = Truth::build(&report, target(), true, 1_000_000_005, end);
        assert_eq!(truth.duration_ns, 1_000_000_000);
        assert!((truth.rate_achieved_per_s - 2000.0).abs() < 1e-6);

        let json: serde_json::Value = serde_json::from_slice(&truth.to_json().expect("serialise")).expect("valid JSON");
        assert_eq!(json["schema"], "perf-ebpf-truth/v1");
        assert_eq!(json["target"]["exe"], "/bin/x");
        assert_eq!(json["window"]["start_unix_ns"], 5);
        assert_eq!(json["final"], true);
        assert_eq!(json["pipeline"]["decoded"], 0);
        let book = &json["functions"][1];
        assert_eq!(book["symbol"], "target_app::book::OrderBook::apply");
        assert_eq!(book["stage"], "book");
        assert_eq!(book["count"], 1000);
        for key in [
            "min_ns",
            "mean_ns",
            "p50_ns",
            "p90_ns",
            "p99_ns",
            "p999_ns",
            "max_ns",
            "injected_count",
            "injected_page_faults",
            "injected_major_faults",
            "injected_migrations",
            "injected_sleeps_blocked",
        ] {
            assert!(book[key].is_u64(), "{key}");
        }
        assert_eq!(json["functions"][2]["stage"], "signal");
        assert_eq!(json["functions"][3]["stage"], "risk_check");
    }

    #[test]
    fn write_is_atomic_and_leaves_no_tmp() {
        let dir = std::env::temp_dir().join(format!("target-app-truth-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join("t.json");
        let truth = Truth::build(&Report::default(), target(), true, 1, Instant::now());
        write_atomic(&path, &truth).expect("write");
        write_atomic(&path, &truth).expect("overwrite");
        let names: Vec<_> = std::fs::read_dir(&dir).expect("list").map(|e| e.expect("entry").file_name()).collect();
        std::fs::remove_dir_all(&dir).expect("cleanup");
        assert_eq!(names, ["t.json"]);
    }
}
