//! Command-line arguments: clap's raw view (`Cli`), validated into what the rest of the program
//! runs on (`AttachConfig`), so every bad input is caught here with one clear line.

use std::{ffi::OsString, path::PathBuf};

use clap::{Args, Parser, Subcommand};

pub mod span;

use crate::{
    bpf::loader::{AttachMode, ProbeMode},
    output::export::Format,
    units::parse_duration_ns,
};

#[derive(Parser, Debug)]
#[command(
    name = "perf-user",
    version,
    about = "Where does the time go? Per-function latency and its attribution (own CPU, callees, syscalls, off-CPU) for a running process, with eBPF.",
    long_about = None
)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Attach to a running process and trace functions (and its syscalls) live.
    Attach(AttachArgs),
    /// Start a command with its probes in place before its `main` runs; exit with its status.
    Run(RunArgs),
    /// Print a saved JSON report as tables.
    Report(ReportArgs),
    /// Compare two reports; exit 1 when a function regressed significantly beyond --fail-above.
    Diff(DiffArgs),
    /// Draw a report's attribution as a flame graph (SVG).
    Flamegraph(FlameArgs),
}

#[derive(Args, Debug)]
#[command(after_help = "Needs root (or CAP_BPF + CAP_PERFMON) and a kernel with BTF and uprobes.\n\
Syscall counts never include syscall 335 (uretprobe): the kernel enters it on every traced return.\n\
Examples:\n  sudo perf-user attach --pid 1234 --func 'target_app::book::*' --func '*::submit'\n  \
sudo perf-user attach --pid 1234 --func 'libc.so.6:malloc' --func 'libengine*.so:book::*'\n  \
sudo perf-user attach --pid 1234 --func 'target_app::*' --no-tui --duration 10s --export run.json")]
pub struct AttachArgs {
    /// Process to trace.
    #[arg(long, short)]
    pub pid: i64,
    #[command(flatten)]
    pub trace: TraceArgs,
}

#[derive(Args, Debug)]
#[command(after_help = "Needs root (or CAP_BPF + CAP_PERFMON) and a kernel with BTF and uprobes.\n\
CMD is found on PATH as a shell finds it, started with its probes already attached (traced from its \
first call), and perf-user exits with its exit status (128+N when signal N killed it). The export \
is written when CMD ends. Ctrl-C and SIGINT/SIGTERM sent to perf-user go to CMD; perf-user ends \
after it. --duration or `q` stop the tracing early; perf-user still waits for CMD.\n\
Examples:\n  sudo perf-user run --func 'target_app::*' --no-tui --export run.json -- ./target-app --messages 20000")]
pub struct RunArgs {
    #[command(flatten)]
    pub trace: TraceArgs,
    /// The command to start and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

/// The options `attach` and `run` share: what to trace and how.
#[derive(Args, Debug)]
pub struct TraceArgs {
    /// Functions to trace: glob on demangled names (`*` spans `::`), a raw symbol name, or 0xADDR, in
    /// the main executable. OBJECT:FUNC picks functions of a shared library the target maps, a glob
    /// on its file name, a colon, a glob on the function (`libc.so.6:malloc`, `libengine*.so:book::*`);
    /// libraries it loads later (dlopen) are picked up within a second. Repeatable.
    #[arg(long = "func", short = 'f', value_name = "GLOB")]
    pub funcs: Vec<String>,
    /// Time from one function to another on any thread, matched by a key: NAME=FROM..TO, each end
    /// FUNC(argN), FUNC(argN+OFFSET) (a u64 through a pointer) at the entry or FUNC(ret) at the
    /// return; e.g. tick=*::feed_receive(arg0)..*::order_sent(arg0+8). Repeatable (docs/SPANS.md).
    #[arg(long = "span", value_name = "NAME=FROM..TO")]
    pub spans: Vec<String>,
    /// Span starts that may wait for their end at once (all spans); the oldest beyond it are
    /// dropped and counted in lost.span_unmatched.
    #[arg(long, default_value_t = 16384, value_name = "N")]
    pub span_keys: u32,
    /// Also show the target's syscalls (count, errors, latency). Attribution uses them either way.
    #[arg(long)]
    pub syscalls: bool,
    /// Leave the syscall tracepoints off, which every syscall of every process on the machine
    /// pays for while attached (tens of ns each): name syscalls only where the target leaves the
    /// CPU in them, blocked or preempted (read when it is switched out; count = times switched
    /// out, time = time off-CPU). Their on-CPU time then counts as own CPU time
    /// (docs/ATTRIBUTION.md).
    #[arg(long, conflicts_with_all = ["syscalls", "latency_only", "entry_only"])]
    pub blocked_syscalls_only: bool,
    /// Stop after this long (e.g. 30s, 5m); default: until Ctrl-C, `q` or the target exits.
    #[arg(long, value_name = "DURATION")]
    pub duration: Option<String>,
    /// Print text instead of the terminal UI (also used when stdout is not a terminal).
    #[arg(long)]
    pub no_tui: bool,
    /// Write the JSON report here at the end (atomically; also on Ctrl-C, SIGTERM and target exit).
    /// Only a regular file is ever replaced, never a symlink or a device.
    #[arg(long, value_name = "FILE.json")]
    pub export: Option<PathBuf>,
    /// Also append a snapshot of the report every DURATION to FILE.ndjson (next to --export
    /// FILE.json; one JSON report a line).
    #[arg(long, value_name = "DURATION")]
    pub export_interval: Option<String>,
    /// Serve Prometheus metrics on http://ADDR:PORT/metrics while attached (e.g. 127.0.0.1:9464).
    #[arg(long, value_name = "ADDR:PORT")]
    pub prometheus: Option<String>,
    /// Send calls at least this long as exemplars with their breakdown (e.g. 1ms), or `auto`
    /// (above the running p99.9), or `off`.
    #[arg(long, value_name = "DURATION|auto|off", default_value = "auto")]
    pub slow: String,
    /// Write the slow calls kept (`--exemplars`) and the traced calls nested in them as Chrome
    /// trace-event JSON at the end (Perfetto, chrome://tracing), one track per thread.
    #[arg(long, value_name = "FILE.json")]
    pub trace: Option<PathBuf>,
    /// Slow-call exemplars kept in memory (when full, the function with the most gives up its oldest).
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub exemplars: usize,
    /// A previous export (`--export` JSON or NDJSON): the UI colours each function's p99 and
    /// p99.9 red when more than 20% above it there, green when as much below.
    #[arg(long, value_name = "FILE.json")]
    pub baseline: Option<PathBuf>,
    /// Keep statistics per thread as well.
    #[arg(long)]
    pub per_thread: bool,
    /// Do not keep statistics per call path: no call tree (Tree tab, `call_tree[]`) and a flame
    /// graph of the functions alone, for one per-CPU hash update less per timed return.
    #[arg(long)]
    pub no_call_tree: bool,
    /// Split own CPU time into own compute, hard interrupts, softirqs and hypervisor steal, and
    /// count page faults, context switches and migrations per call (adds system-wide interrupt
    /// tracepoints; see docs/ATTRIBUTION.md).
    #[arg(long)]
    pub interference: bool,
    /// How often to read the kernel's maps and refresh (e.g. 250ms; at least 10ms).
    #[arg(long, default_value = "250ms", value_name = "DURATION")]
    pub interval: String,
    /// Read symbols from this file instead of the target's executable (for stripped binaries).
    #[arg(long, value_name = "FILE")]
    pub symbols: Option<PathBuf>,
    /// Most functions one run may trace.
    #[arg(long, default_value_t = 4096, value_name = "N")]
    pub max_funcs: usize,
    /// Count calls only (entry probes, no return probes): safe on any binary, times nothing.
    #[arg(long)]
    pub entry_only: bool,
    /// Time calls but skip attribution: one session program keeps the entry time in the session
    /// cookie, no per-thread state (the cheapest timed mode; no own/callee/syscall/off-CPU split,
    /// no exemplars). Needs kernel 6.13+; with --sample N each call is timed with chance 1/N.
    #[arg(long, conflicts_with = "entry_only")]
    pub latency_only: bool,
    /// Count every call but time one outermost call in N (and all calls nested in it, so their
    /// attribution stays exact); the others skip the return probe. Needs kernel 6.13+ (uprobe
    /// sessions).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub sample: u32,
    /// Attach return probes even to a binary that can unwind (Rust panic=unwind, C++ exceptions);
    /// an unwind through a traced function then aborts the target.
    #[arg(long)]
    pub allow_unwind_risk: bool,
    /// Overhead guard: when the estimated probe cost (probe hits/s × measured cost per hit) exceeds
    /// this share of one CPU, the hottest functions' probes are detached until it is under three
    /// quarters of it, and the UI and export say so.
    #[arg(long, default_value = "25", value_name = "PCT")]
    pub max_overhead: f64,
    /// Report raw latencies: do not subtract the probes' own cost, measured at start-up on this host.
    #[arg(long)]
    pub no_calibrate: bool,
    /// Programs on the functions (benchmarks: `empty` measures the kernel's floor).
    #[arg(long, value_enum, default_value = "full", hide = true)]
    pub probe_mode: ProbeMode,
    /// How probes are attached: a uprobe session (6.13+), `uprobe_multi` links (6.6+) or one perf
    /// event per probe; `auto` takes the first the kernel has.
    #[arg(long, value_enum, default_value = "auto")]
    pub attach_mode: AttachMode,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// A report written by `perf-user attach --export`.
    pub file: PathBuf,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

#[derive(Args, Debug)]
#[command(after_help = "Exit status: 0 no regression, 1 a function regressed beyond --fail-above \
(significantly), 2 bad input.\n\
A change counts only if it is beyond the threshold and statistically significant (95 %) given \
the calls on each side; see docs/EXPORT.md.")]
pub struct DiffArgs {
    /// The reference report (JSON from `attach --export`, NDJSON snapshots, or bpftrace -f json).
    pub base: PathBuf,
    /// The report to judge against it.
    pub new: PathBuf,
    /// Fail (exit 1) when a function's metric grew by more than PCT percent, significantly.
    #[arg(long, value_name = "PCT", default_value = "20", allow_hyphen_values = true)]
    pub fail_above: String,
    /// Flag as slower when the metric grew by more than PCT percent, significantly.
    #[arg(long, value_name = "PCT", default_value = "5", allow_hyphen_values = true)]
    pub warn_above: String,
    /// What to judge by.
    #[arg(long, value_enum, default_value = "p99")]
    pub metric: crate::output::diff::Metric,
    #[arg(long, value_enum, default_value = "text")]
    pub format: DiffFormat,
    /// Compare even reports of different executables (refused by default: functions would be
    /// paired by name across unrelated programs).
    #[arg(long)]
    pub force: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DiffFormat {
    Text,
    Json,
}

#[derive(Args, Debug)]
pub struct FlameArgs {
    /// A report written by `perf-user attach --export`.
    pub file: PathBuf,
    /// Where to write the SVG (`-` for stdout). Only a regular file is ever replaced.
    #[arg(long, short, value_name = "OUT.svg")]
    pub output: PathBuf,
    /// Write the folded stacks (`frame;frame ns` lines) instead of the SVG.
    #[arg(long)]
    pub folded: bool,
    /// Draw the slow calls only (the report's exemplars), each outermost one a root with its
    /// heaviest traced callees inside.
    #[arg(long)]
    pub slow_only: bool,
}

/// Parses `--fail-above`/`--warn-above`: a finite percentage ≥ 0, with or without `%`.
pub fn parse_pct(flag: &str, s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("--{flag} '{s}': expected a percentage such as 20 or 7.5%"))?;
    if !v.is_finite() || v < 0.0 {
        return Err(format!("--{flag} '{s}': must be a percentage of 0 or more"));
    }
    Ok(v)
}

impl DiffArgs {
    pub fn thresholds(&self) -> Result<crate::output::diff::Thresholds, String> {
        let fail_pct = parse_pct("fail-above", &self.fail_above)?;
        let warn_pct = parse_pct("warn-above", &self.warn_above)?;
        if warn_pct > fail_pct {
            return Err(format!("--warn-above {warn_pct} is above --fail-above {fail_pct}"));
        }
        Ok(crate::output::diff::Thresholds { warn_pct, fail_pct })
    }
}

/// The shortest `--interval`: each tick reads every map, so 1ns would spin a CPU for nothing.
pub const MIN_INTERVAL_NS: u64 = 10_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slow {
    Off,
    Auto,
    Fixed(u64),
}

/// A validated `attach` request.
#[derive(Clone, Debug)]
pub struct AttachConfig {
    /// The process to trace; 0 for `run` until its child is started.
    pub pid: u32,
    /// `run`: the command to start and trace (`argv`); empty for `attach`.
    pub command: Vec<OsString>,
    pub funcs: Vec<String>,
    pub spans: Vec<span::SpanSpec>,
    /// `--span-keys`: size of the kernel's map of waiting span starts.
    pub span_keys: u32,
    pub syscalls: bool,
    /// `--blocked-syscalls-only`: no syscall tracepoints; syscalls named where the target blocks.
    pub blocked_syscalls_only: bool,
    pub duration_ns: Option<u64>,
    pub tui: bool,
    pub export: Option<PathBuf>,
    /// `--export-interval`: snapshot period.
    pub export_interval_ns: Option<u64>,
    pub prometheus: Option<std::net::SocketAddr>,
    pub slow: Slow,
    pub exemplars: usize,
    /// `--baseline`: the report tail latencies are compared with.
    pub baseline: Option<PathBuf>,
    /// `--trace`: the slow calls as Chrome trace-event JSON, written at the end.
    pub trace: Option<PathBuf>,
    pub per_thread: bool,
    /// Statistics per call path (off with `--no-call-tree`).
    pub call_tree: bool,
    /// `--interference`.
    pub interference: bool,
    pub interval_ns: u64,
    pub symbols: Option<PathBuf>,
    pub max_funcs: usize,
    pub probe_mode: ProbeMode,
    pub attach_mode: AttachMode,
    /// Time one outermost call in this many (1: all).
    pub sample_every: u32,
    pub allow_unwind_risk: bool,
    pub calibrate: bool,
    /// Percent of one CPU.
    pub max_overhead_pct: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--pid {0}: not a valid process id")]
    BadPid(i64),
    #[error("--pid {0}: no such process")]
    NoProcess(u32),
    #[error("nothing to trace: give --func GLOB, --span and/or --syscalls")]
    NothingToTrace,
    #[error("--{flag}: {error}")]
    Duration { flag: &'static str, error: crate::units::DurationError },
    #[error("--{flag} must be greater than zero")]
    Zero { flag: &'static str },
    #[error("--interval {0}: below the minimum of 10ms (each tick reads every map)")]
    IntervalTooShort(String),
    #[error("--export -: stdout carries the terminal UI and the tables; give a file")]
    ExportToStdout,
    #[error("--max-overhead {0}: expected a percentage of one CPU above 0 (e.g. 25)")]
    Overhead(f64),
    #[error("{0}")]
    Span(String),
    #[error("--func '{0}': no function after the colon; OBJECT:FUNC, e.g. 'libc.so.6:malloc'")]
    EmptyFunction(String),
    #[error("--func '': empty pattern")]
    EmptyPattern,
    #[error("--prometheus '{0}': expected ADDR:PORT, e.g. 127.0.0.1:9464")]
    BadListenAddr(String),
    #[error("--export-interval needs --export FILE.json (snapshots go to FILE.ndjson)")]
    IntervalNeedsExport,
    #[error("--export {0}: snapshots would go to the same file; name the export FILE.json")]
    SnapshotCollision(PathBuf),
    #[error("--sample needs a uprobe session: it cannot be combined with {0}")]
    SampleConflict(&'static str),
    #[error("--trace {0}: {1}")]
    TraceConflict(PathBuf, &'static str),
    #[error("--latency-only keeps no per-thread state and needs a uprobe session: it cannot be combined with {0}")]
    LatencyOnlyConflict(&'static str),
}

/// `--prometheus`: an IP address and port (`[::1]:9464` for IPv6), or `localhost:PORT`. No DNS.
fn parse_listen_addr(s: &str) -> Result<std::net::SocketAddr, ConfigError> {
    let bad = || ConfigError::BadListenAddr(s.to_string());
    if let Some(port) = s.strip_prefix("localhost:") {
        let port: u16 = port.parse().map_err(|_| bad())?;
        return Ok(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    }
    s.parse().map_err(|_| bad())
}

impl AttachArgs {
    pub fn validate(self, stdout_is_tty: bool) -> Result<AttachConfig, ConfigError> {
        let pid = u32::try_from(self.pid).ok().filter(|&p| p > 0).ok_or(ConfigError::BadPid(self.pid))?;
        if !crate::target::proc::exists(pid) {
            return Err(ConfigError::NoProcess(pid));
        }
        self.trace.validate(pid, Vec::new(), stdout_is_tty)
    }
}

impl RunArgs {
    pub fn validate(self, stdout_is_tty: bool) -> Result<AttachConfig, ConfigError> {
        self.trace.validate(0, self.command, stdout_is_tty)
    }
}

impl TraceArgs {
    fn validate(self, pid: u32, command: Vec<OsString>, stdout_is_tty: bool) -> Result<AttachConfig, ConfigError> {
        let spans = self.check_targets()?;
        let Timings { duration_ns, interval_ns, slow, export_interval_ns } = self.check_timings()?;
        self.check_export(export_interval_ns)?;
        let prometheus = self.prometheus.as_deref().map(parse_listen_addr).transpose()?;
        self.check_modes(slow)?;
        Ok(AttachConfig {
            pid,
            command,
            funcs: self.funcs,
            spans,
            span_keys: self.span_keys,
            syscalls: self.syscalls,
            blocked_syscalls_only: self.blocked_syscalls_only,
            duration_ns,
            tui: !self.no_tui && stdout_is_tty,
            export: self.export,
            export_interval_ns,
            prometheus,
            slow,
            exemplars: self.exemplars,
            baseline: self.baseline,
            trace: self.trace,
            per_thread: self.per_thread,
            call_tree: !self.no_call_tree,
            interference: self.interference,
            interval_ns,
            symbols: self.symbols,
            max_funcs: self.max_funcs,
            probe_mode: if self.entry_only {
                ProbeMode::EntryOnly
            } else if self.latency_only {
                ProbeMode::Latency
            } else {
                self.probe_mode
            },
            attach_mode: self.attach_mode,
            sample_every: self.sample,
            allow_unwind_risk: self.allow_unwind_risk,
            calibrate: !self.no_calibrate,
            max_overhead_pct: self.max_overhead,
        })
    }

    /// Something to trace, and every `--func` and `--span` well formed.
    fn check_targets(&self) -> Result<Vec<span::SpanSpec>, ConfigError> {
        if self.funcs.is_empty() && self.spans.is_empty() && !self.syscalls {
            return Err(ConfigError::NothingToTrace);
        }
        let spans =
            self.spans.iter().map(|s| span::parse(s)).collect::<Result<Vec<_>, _>>().map_err(ConfigError::Span)?;
        span::check_all(&spans).map_err(ConfigError::Span)?;
        if self.span_keys == 0 {
            return Err(ConfigError::Zero { flag: "span-keys" });
        }
        if self.funcs.iter().any(|f| f.trim().is_empty()) {
            return Err(ConfigError::EmptyPattern);
        }
        if let Some(f) = self.funcs.iter().find(|f| {
            matches!(crate::target::symbols::objects::split_object_pattern(f), (Some(_), func) if func.trim().is_empty())
        }) {
            return Err(ConfigError::EmptyFunction(f.clone()));
        }
        Ok(spans)
    }

    /// The durations and intervals, parsed and checked.
    fn check_timings(&self) -> Result<Timings, ConfigError> {
        let dur =
            |flag: &'static str, s: &str| parse_duration_ns(s).map_err(|error| ConfigError::Duration { flag, error });
        let duration_ns = self.duration.as_deref().map(|d| dur("duration", d)).transpose()?;
        if duration_ns == Some(0) {
            return Err(ConfigError::Zero { flag: "duration" });
        }
        let interval_ns = dur("interval", &self.interval)?;
        if interval_ns == 0 {
            return Err(ConfigError::Zero { flag: "interval" });
        }
        if interval_ns < MIN_INTERVAL_NS {
            return Err(ConfigError::IntervalTooShort(self.interval.clone()));
        }
        let slow = match self.slow.as_str() {
            "auto" => Slow::Auto,
            "off" | "0" => Slow::Off,
            s => Slow::Fixed(dur("slow", s)?),
        };
        let export_interval_ns = self.export_interval.as_deref().map(|d| dur("export-interval", d)).transpose()?;
        if export_interval_ns == Some(0) {
            return Err(ConfigError::Zero { flag: "export-interval" });
        }
        Ok(Timings { duration_ns, interval_ns, slow, export_interval_ns })
    }

    /// `--export` and `--export-interval` consistent, the export never stdout.
    fn check_export(&self, export_interval_ns: Option<u64>) -> Result<(), ConfigError> {
        if let (Some(_), Some(e)) = (export_interval_ns, &self.export)
            && crate::output::export::snapshot_path(e) == *e
        {
            return Err(ConfigError::SnapshotCollision(e.clone()));
        }
        if export_interval_ns.is_some() && self.export.is_none() {
            return Err(ConfigError::IntervalNeedsExport);
        }
        if self.export.as_deref().is_some_and(crate::output::files::is_stdout) {
            return Err(ConfigError::ExportToStdout);
        }
        Ok(())
    }

    /// The overhead limit, exemplars, sampling, `--trace` and the probe modes compatible.
    fn check_modes(&self, slow: Slow) -> Result<(), ConfigError> {
        if !(self.max_overhead > 0.0 && self.max_overhead <= 10_000.0) {
            return Err(ConfigError::Overhead(self.max_overhead));
        }
        if self.exemplars == 0 && slow != Slow::Off {
            return Err(ConfigError::Zero { flag: "exemplars" });
        }
        if self.sample == 0 {
            return Err(ConfigError::Zero { flag: "sample" });
        }
        if let Some(t) = &self.trace {
            let why = if crate::output::files::is_stdout(t) {
                Some("stdout carries the terminal UI and the tables; give a file")
            } else if slow == Slow::Off || self.latency_only || self.entry_only {
                Some("a trace holds slow calls, which --slow off, --latency-only and --entry-only do not send")
            } else if self.export.as_ref() == Some(t) {
                Some("the same file as --export")
            } else {
                None
            };
            if let Some(why) = why {
                return Err(ConfigError::TraceConflict(t.clone(), why));
            }
        }
        if self.latency_only {
            if self.per_thread {
                return Err(ConfigError::LatencyOnlyConflict("--per-thread"));
            }
            if let Some(flag) = without_sessions(self.attach_mode) {
                return Err(ConfigError::LatencyOnlyConflict(flag));
            }
        }
        if self.sample > 1 {
            if self.entry_only {
                return Err(ConfigError::SampleConflict("--entry-only"));
            }
            if let Some(flag) = without_sessions(self.attach_mode) {
                return Err(ConfigError::SampleConflict(flag));
            }
        }
        Ok(())
    }
}

/// The durations of `validate`'s checks, in ns.
struct Timings {
    duration_ns: Option<u64>,
    interval_ns: u64,
    slow: Slow,
    export_interval_ns: Option<u64>,
}

/// The flag that asks for an attach mode without uprobe sessions, which `--sample` and
/// `--latency-only` need.
fn without_sessions(mode: AttachMode) -> Option<&'static str> {
    match mode {
        AttachMode::Multi => Some("--attach-mode multi"),
        AttachMode::Single => Some("--attach-mode single"),
        AttachMode::Auto | AttachMode::Session => None,
    }
}

#[cfg(test)]
mod tests;
