//! What the bench measured, section by section: the rows the measurements fill in and the report
//! and the goals read. Plain data; no process is run and nothing is judged here.

use super::{
    stats::{Cell, Estimate, RatioCi, Runs, medians_ci},
    sys::Machine,
    text::thousands,
};

/// The load rows' label suffix for `--latency-only --sample 10`.
pub const SAMPLED_LOAD: &str = "`--latency-only --sample 10`";

/// Section 1: one probed function under each tracer (absolute ns per call, medians).
#[derive(Debug)]
pub struct CallRow {
    pub func: &'static str,
    /// The first instruction as objdump shows it.
    pub first_insn: Result<String, String>,
    pub untraced: Runs,
    /// Empty programs on a uprobe session, nothing else: the kernel's price for the probes.
    pub floor: Runs,
    /// The same with the syscall and scheduler tracepoints attribution attaches: the floor of the
    /// default mode, attached the same way.
    pub floor_tracepoints: Runs,
    /// Default flags: a session with attribution.
    pub perf_user: Runs,
    pub bpftrace: Runs,
    /// An entry and a return program on `uprobe_multi` links (`--attach-mode multi`, the default
    /// on kernels without sessions), against empty ones attached the same way.
    pub pair_floor: Runs,
    pub pair: Runs,
    /// `--latency-only` (no tracepoints, like `floor`) and `--latency-only --sample 10`.
    pub latency: Runs,
    pub latency_sampled: Runs,
    /// `--probe-mode clock`: the empty session program reading the clock at entry and at return,
    /// the least any timing of a call adds (no tracepoints, like `floor`).
    pub clock_floor: Runs,
    /// `--probe-mode empty --sample 10`: the empty session program skipping the return probe of
    /// nine calls in ten by the same draw; alone (the floor of `--latency-only --sample 10`) and
    /// with the tracepoints (the floor of `--sample 10`).
    pub sampled_floor: Runs,
    pub sampled_floor_tracepoints: Runs,
    pub sampled: Runs,
    /// perf-user's p50 and p99 for the function (`functions[].p50_ns`, `p99_ns` of the full runs).
    pub p50_ns: Cell,
    pub p99_ns: Cell,
    /// bpftrace's fullest `hist()` bucket for the same calls.
    pub bpftrace_bucket: Result<String, String>,
}

/// Section 1's paired runs of one function: each value is one run's ratio of the twin's added
/// cost to the function's, both timed in the same process at the same time (`bench-target pair`).
#[derive(Debug)]
pub struct PairRow {
    pub func: &'static str,
    /// Empty programs on both: what the method itself makes of two equal costs (1.00× if fair).
    pub same: Runs,
    /// `--probe-mode clock` over the floor.
    pub clock: Runs,
    /// `--latency-only` over the floor.
    pub latency: Runs,
    /// perf-user's default mode over the floor + tracepoints (its tracepoints see both functions'
    /// probe syscalls).
    pub perf_user: Runs,
    /// `--latency-only --sample 10` over bpftrace's latency one-liner on the function.
    pub latency_sampled_vs_bpftrace: Runs,
}

/// Section 2: the syscall loop under one tracer.
#[derive(Debug)]
pub struct SyscallRow {
    pub tracer: &'static str,
    pub ns_per_call: Cell,
    pub tracer_cpu_pct: Cell,
}

/// Section 11: one span per iteration under one tracer.
#[derive(Debug)]
pub struct SpanRow {
    pub tracer: &'static str,
    /// ns per iteration: both endpoints' calls, probes and the tracer's work on them (the median,
    /// and every repetition's value for the goal's interval).
    pub ns_per_span: Cell,
    pub ns_runs: Runs,
    pub tracer_cpu_pct: Cell,
}

/// Section 12: a function set under one overhead budget.
#[derive(Debug)]
pub struct GuardRow {
    /// The set's size and entry instruction, for the table.
    pub what: &'static str,
    /// `--max-overhead`; `None`: the guard off.
    pub budget_pct: Option<u32>,
    /// The share of one CPU the probes took once the guard had settled, in %, with its 95 %
    /// interval.
    pub probe_share_pct: Estimate,
    /// What the target's throughput lost against untraced, in % (bench-target: the untraced runs;
    /// target-app: the same process's untraced window), with its 95 % interval.
    pub throughput_loss_pct: Estimate,
    /// Functions the guard detached, and functions attached.
    pub detached: Cell,
    pub functions: Cell,
}

/// Sections 3 and 4: perf-user tracing a paced (or flat-out) loop.
#[derive(Debug)]
pub struct LoadRow {
    pub label: String,
    pub result: Result<Load, String>,
}

#[derive(Debug, Clone)]
pub struct Load {
    pub reached_per_s: f64,
    pub cpu_pct: f64,
    pub vmhwm_kb: u64,
    /// Non-zero `lost{}` counters, summed over the repetitions, but `exemplars_evicted`.
    pub lost: Vec<(String, u64)>,
    /// `lost.exemplars_evicted`: slow-call exemplars perf-user received and then let go because
    /// only the newest `--exemplars N` are kept. A retention bound, not a lost event: every call
    /// is still counted and in the histograms.
    pub exemplars_retired: u64,
    /// Calls the target made minus calls the kernel counted, summed (0: every call seen).
    pub uncounted: i64,
}

impl Load {
    pub fn nothing_lost(&self) -> bool {
        self.lost.is_empty() && self.uncounted == 0
    }

    /// The non-zero lost counters and the uncounted calls, or `0`.
    pub fn lost_text(&self) -> String {
        let mut parts: Vec<String> = self.lost.iter().map(|(k, v)| format!("{k} {v}")).collect();
        if self.uncounted != 0 {
            parts.push(format!("{} calls not counted", self.uncounted));
        }
        if parts.is_empty() { "0".into() } else { parts.join(", ") }
    }

    /// The retired exemplars, said beside what was lost (they are not lost events).
    pub fn retired_text(&self) -> String {
        match self.exemplars_retired {
            0 => String::new(),
            n => format!(
                " ({} older slow-call exemplars retired: only the newest `--exemplars` are kept)",
                thousands(n as f64)
            ),
        }
    }
}

/// Section 5: attaching to N functions.
#[derive(Debug)]
pub struct AttachRow {
    pub functions: u32,
    pub result: Result<Attach, String>,
}

#[derive(Debug, Clone, Copy)]
pub struct Attach {
    pub probes: u64,
    pub attach_s: f64,
    /// SIGINT to exit, when it finished within the run's cap.
    pub detach_s: Option<f64>,
    /// The cap, when detaching took longer (it finished in the background).
    pub detach_over_s: Option<f64>,
    /// Repetitions behind the medians.
    pub runs: usize,
}

/// Section 6: the spin of known length.
#[derive(Debug, Clone, Copy)]
pub struct Spin {
    pub p50_ns: f64,
    pub p99_ns: f64,
}

#[derive(Debug)]
pub struct Results {
    pub machine: Machine,
    pub loadavg_end: String,
    pub quick: bool,
    pub reps: usize,
    pub elapsed_s: f64,
    pub plan: String,
    pub tools: Vec<(&'static str, Result<String, String>)>,
    /// Flags the bench adds to every `perf-user attach`.
    pub perf_user_flags: String,
    pub calls: Vec<CallRow>,
    pub pairs: Vec<PairRow>,
    pub sampling: Result<(), String>,
    pub syscalls: Vec<SyscallRow>,
    pub ceiling: LoadRow,
    pub loads: Vec<LoadRow>,
    pub attach: Vec<AttachRow>,
    pub spin_ns: u64,
    pub spin: Result<Spin, String>,
    /// Section 7: per-program run time with `kernel.bpf_stats_enabled`, by configuration.
    pub programs: Result<Vec<ProgramCost>, String>,
    /// Section 8: the criterion benches of perf-user's userspace hot paths.
    pub hot_paths: Result<HotPaths, String>,
    /// Section 9: real workloads, traced in every mode.
    pub workloads: Workloads,
    /// Section 10: what `--interference` adds per call, interrupt and page fault.
    pub interference: Result<InterferenceCost, String>,
    /// Section 11: the cost of a span against bpftrace's keyed-timing script.
    pub spans: Vec<SpanRow>,
    /// Section 12: the overhead guard against its budget.
    pub guard: Vec<GuardRow>,
    pub notes: Vec<String>,
}

/// One criterion bench: median time per iteration and criterion's deviation.
#[derive(Debug)]
pub struct HotPath {
    pub name: String,
    pub median_ns: f64,
    pub deviation_ns: f64,
}

#[derive(Debug)]
pub struct HotPaths {
    pub rows: Vec<HotPath>,
    /// Lines the benches print themselves (a frame's share of the UI's frame budget).
    pub notes: Vec<String>,
}

/// Section 7's configuration of empty programs, whose run time is the others' baseline.
pub const EMPTY_PROGRAMS: &str = "empty (floor)";
/// Section 7's configuration of empty programs that read the clock at entry and return.
pub const CLOCK_PROGRAMS: &str = "clock floor (empty + clock reads)";

/// One BPF program's median run time in one configuration (bpf_stats adds its own accounting,
/// about as much as an empty program's whole run).
#[derive(Debug)]
pub struct ProgramCost {
    pub config: &'static str,
    pub program: String,
    pub runs_per_call: f64,
    pub ns_per_run: f64,
}

/// One BPF program's median runs and run time in one configuration of section 10.
#[derive(Debug)]
pub struct InterfProgram {
    pub config: &'static str,
    pub program: String,
    /// Runs during the measured loop.
    pub runs: f64,
    pub runs_per_call: f64,
    pub ns_per_run: f64,
}

/// Section 10: what `--interference` adds.
#[derive(Debug)]
pub struct InterferenceCost {
    pub func: &'static str,
    /// The default mode on both sides of the pair: the method's own ratio (1.00× if fair).
    pub same: Runs,
    /// `--interference` on the twin over the default mode on the function.
    pub interference: Runs,
    /// `--no-call-tree` on the twin over the default mode on the function.
    pub no_call_tree: Runs,
    pub programs: Result<Vec<InterfProgram>, String>,
}

/// Section 9's tracing modes, the same functions traced in each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Untraced,
    Default,
    /// The default mode without the syscall tracepoints that every process on the machine pays for.
    BlockedSyscalls,
    LatencyOnly,
    Sampled,
    LatencySampled,
    Bpftrace,
}

impl Mode {
    pub const ALL: [Mode; 7] = [
        Mode::Untraced,
        Mode::Default,
        Mode::BlockedSyscalls,
        Mode::LatencyOnly,
        Mode::Sampled,
        Mode::LatencySampled,
        Mode::Bpftrace,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Mode::Untraced => "untraced",
            Mode::Default => "perf-user (default)",
            Mode::BlockedSyscalls => "perf-user `--blocked-syscalls-only`",
            Mode::LatencyOnly => "perf-user `--latency-only`",
            Mode::Sampled => "perf-user `--sample 10`",
            Mode::LatencySampled => "perf-user `--latency-only --sample 10`",
            Mode::Bpftrace => "bpftrace latency script",
        }
    }

    /// perf-user's flags for the mode; `None` for the modes perf-user does not run in.
    pub fn perf_user_flags(self) -> Option<&'static [&'static str]> {
        match self {
            Mode::Default => Some(&[]),
            Mode::BlockedSyscalls => Some(&["--blocked-syscalls-only"]),
            Mode::LatencyOnly => Some(&["--latency-only"]),
            Mode::Sampled => Some(&["--sample", "10"]),
            Mode::LatencySampled => Some(&["--latency-only", "--sample", "10"]),
            Mode::Untraced | Mode::Bpftrace => None,
        }
    }
}

/// One run of a workload under one mode.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WorkRun {
    /// Requests (or messages) completed per second.
    pub per_s: f64,
    /// The workload's own p99: the load generator's request latency, or target-app's `on_message`.
    pub p99_us: f64,
    /// The server's and the client's user + system CPU per request (target-app: the process's).
    pub cpu_per_op_us: f64,
    /// The tracer's own user + system CPU per request.
    pub tracer_cpu_per_op_us: f64,
    /// What other processes (and the hypervisor) took of the machine's CPUs during the run, in %.
    pub others_pct: f64,
}

/// Section 9: one workload in one regime, each mode's runs, one per round (round `i` of every mode
/// ran in the same round, next to each other).
#[derive(Debug)]
pub struct Workload {
    pub name: String,
    /// The name in a goal's measured text: `target-app`, `1 connection`.
    pub short: &'static str,
    /// What one operation is: `request`, `message`.
    pub unit: &'static str,
    pub modes: Vec<(Mode, Vec<Result<WorkRun, String>>)>,
}

impl Workload {
    /// `f` of each of `mode`'s runs that succeeded; the first failure's reason if none did.
    pub fn runs_of(&self, mode: Mode, f: impl Fn(&WorkRun) -> f64) -> Runs {
        let runs = self.modes.iter().find(|(m, _)| *m == mode).map(|(_, runs)| runs.as_slice());
        let runs = runs.ok_or_else(|| format!("not measured: no {} runs", mode.label()))?;
        let values: Vec<f64> = runs.iter().flatten().map(f).collect();
        if values.is_empty() {
            let error = runs.iter().find_map(|r| r.as_ref().err().cloned());
            return Err(error.unwrap_or_else(|| "failed: no run measured".into()));
        }
        Ok(values)
    }

    /// `f` of the medians of `metric` over each of `modes`' runs, in that order, with its 95 %
    /// interval from resampling each mode's runs on its own.
    fn of_medians(
        &self,
        modes: &[Mode],
        metric: fn(&WorkRun) -> f64,
        f: impl Fn(&[f64]) -> Option<f64>,
    ) -> Result<RatioCi, String> {
        let runs: Vec<Runs> = modes.iter().map(|&m| self.runs_of(m, metric)).collect();
        medians_ci(&runs.iter().collect::<Vec<_>>(), f)
    }

    /// The throughput lost to `mode`, in % of the untraced rate.
    pub fn loss_pct(&self, mode: Mode) -> Result<RatioCi, String> {
        self.of_medians(&[mode, Mode::Untraced], |r| r.per_s, |m| Some((1.0 - m[0] / m[1]) * 100.0))
    }

    /// The CPU per operation `mode` adds to the untraced runs', in µs.
    pub fn added_cpu_us(&self, mode: Mode) -> Result<RatioCi, String> {
        self.of_medians(&[mode, Mode::Untraced], |r| r.cpu_per_op_us, |m| Some(m[0] - m[1]))
    }

    /// How far `mode` moves the p99, in µs.
    pub fn p99_shift_us(&self, mode: Mode) -> Result<RatioCi, String> {
        self.of_medians(&[mode, Mode::Untraced], |r| r.p99_us, |m| Some(m[0] - m[1]))
    }

    /// `mode`'s added CPU per operation over `other`'s (none where `other` adds none).
    pub fn added_cpu_ratio(&self, mode: Mode, other: Mode) -> Result<RatioCi, String> {
        self.of_medians(
            &[mode, other, Mode::Untraced],
            |r| r.cpu_per_op_us,
            |m| {
                let other_added = m[1] - m[2];
                (other_added > 0.0).then(|| (m[0] - m[2]) / other_added)
            },
        )
    }

    /// `mode`'s throughput loss minus `other`'s, in percentage points of the untraced rate.
    pub fn loss_over(&self, mode: Mode, other: Mode) -> Result<RatioCi, String> {
        self.of_medians(&[mode, other, Mode::Untraced], |r| r.per_s, |m| Some((m[1] - m[0]) / m[2] * 100.0))
    }
}

/// The server of section 9 and the functions traced in it.
#[derive(Debug, Clone)]
pub struct Server {
    /// `nginx version: nginx/1.22.1`
    pub version: String,
    pub binary: String,
    /// Where the functions' names come from (the symbol table, or the dynamic one of a stripped
    /// binary).
    pub symbols: String,
    /// Each traced function with its first instruction.
    pub functions: Vec<(String, Result<String, String>)>,
}

/// Section 9: target-app flat out, and the real server in both regimes.
#[derive(Debug)]
pub struct Workloads {
    pub target_app: Result<Workload, String>,
    pub server: Result<Server, String>,
    /// The server's regimes (empty when it could not be measured).
    pub server_regimes: Vec<Workload>,
    /// perf-user's calls of each traced server function per request (default mode).
    pub calls_per_request: Vec<(String, f64)>,
    /// Seconds of load per server run.
    pub load_secs: u64,
}

/// Results built by hand, for the tests of the goals and of the report.
#[cfg(test)]
pub mod fixtures {
    use super::*;
    use crate::bench::sys::Machine;

    /// push_rbp's separate runs: untraced, floor + tracepoints, perf-user and bpftrace.
    pub fn row(untraced: f64, floor: f64, pu: f64, bt: f64) -> CallRow {
        CallRow {
            func: "push_rbp",
            first_insn: Ok("55  push %rbp".into()),
            untraced: Ok(vec![untraced]),
            floor: Err("not measured".into()),
            floor_tracepoints: Ok(vec![floor]),
            perf_user: Ok(vec![pu]),
            bpftrace: Ok(vec![bt]),
            pair_floor: Err("not measured".into()),
            pair: Err("not measured".into()),
            latency: Err("not measured".into()),
            latency_sampled: Err("not measured".into()),
            clock_floor: Err("not measured".into()),
            sampled_floor: Err("not implemented".into()),
            sampled_floor_tracepoints: Err("not implemented".into()),
            sampled: Err("not implemented".into()),
            p50_ns: Ok(8.0),
            p99_ns: Ok(400.0),
            bpftrace_bucket: Ok("[512, 1K)".into()),
        }
    }

    /// Paired runs of push_rbp: perf-user's per-run ratios over the floor + tracepoints, and
    /// optionally latency-only's over the floor and latency-only sampled over bpftrace.
    pub fn paired(perf_user: Vec<f64>, latency: Runs, latency_sampled_vs_bpftrace: Runs) -> PairRow {
        PairRow {
            func: "push_rbp",
            same: Ok(vec![1.0]),
            clock: Ok(vec![1.04]),
            latency,
            perf_user: Ok(perf_user),
            latency_sampled_vs_bpftrace,
        }
    }

    /// Results with these calls, one paired row, and the other sections filled in or not measured.
    pub fn results(calls: Vec<CallRow>) -> Results {
        let not_measured = || Err("not measured".to_string());
        Results {
            pairs: vec![paired(vec![1.05], not_measured(), not_measured())],
            machine: Machine::default(),
            loadavg_end: "0".into(),
            quick: false,
            reps: 3,
            elapsed_s: 1.0,
            plan: String::new(),
            tools: vec![],
            perf_user_flags: String::new(),
            calls,
            sampling: Err("perf-user has no --sample".into()),
            syscalls: vec![],
            ceiling: LoadRow { label: "flat out".into(), result: Err("x".into()) },
            loads: vec![LoadRow { label: "1M calls/s".into(), result: Err("unreachable".into()) }],
            attach: vec![AttachRow {
                functions: 1000,
                result: Ok(Attach { probes: 2004, attach_s: 0.5, detach_s: Some(0.1), detach_over_s: None, runs: 1 }),
            }],
            spin_ns: 20_000,
            spin: Ok(Spin { p50_ns: 20_100.0, p99_ns: 30_000.0 }),
            programs: Err("not measured".into()),
            interference: Err("not measured".into()),
            hot_paths: Ok(HotPaths {
                rows: vec![HotPath { name: "merge | sparse".into(), median_ns: 12_345.0, deviation_ns: 20.0 }],
                notes: vec!["one frame: 1ms".into()],
            }),
            workloads: Workloads {
                target_app: Err("not measured".into()),
                server: Err("skipped: nginx not installed".into()),
                server_regimes: vec![],
                calls_per_request: vec![],
                load_secs: 5,
            },
            spans: vec![],
            guard: vec![],
            notes: vec![],
        }
    }

    /// A mode's rounds: (rate, CPU per operation), or a failed run.
    pub type Rounds = Vec<Option<(f64, f64)>>;

    /// A workload whose runs are given per mode as (rate, CPU per operation) per round; its p99
    /// is 100 µs plus the CPU, the tracer's CPU a tenth of it.
    pub fn workload(short: &'static str, modes: &[(Mode, Rounds)]) -> Workload {
        let run = |r: &Option<(f64, f64)>| match *r {
            Some((per_s, cpu)) => {
                let tracer_cpu_per_op_us = cpu / 10.0;
                Ok(WorkRun { per_s, p99_us: 100.0 + cpu, cpu_per_op_us: cpu, tracer_cpu_per_op_us, others_pct: 5.0 })
            }
            None => Err("failed: boom".to_string()),
        };
        let modes = modes.iter().map(|(m, runs)| (*m, runs.iter().map(run).collect())).collect();
        Workload { name: format!("nginx, {short}"), short, unit: "request", modes }
    }

    /// The server measured in these regimes.
    pub fn server(regimes: Vec<Workload>) -> Workloads {
        let functions = vec![("ngx_http_process_request".to_string(), Ok("41 55  push %r13".to_string()))];
        Workloads {
            target_app: Err("not measured".into()),
            server: Ok(Server {
                version: "nginx version: nginx/1.22.1".into(),
                binary: "/usr/sbin/nginx".into(),
                symbols: "the dynamic symbol table".into(),
                functions,
            }),
            server_regimes: regimes,
            calls_per_request: vec![("ngx_http_process_request".into(), 1.0)],
            load_secs: 5,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{fixtures::workload, *};

    #[test]
    fn modes_are_compared_on_their_medians_over_the_runs_that_worked() {
        let w = workload(
            "1 connection",
            &[
                (Mode::Untraced, vec![Some((100.0, 20.0)), Some((50.0, 25.0)), None]),
                (Mode::Default, vec![Some((90.0, 26.0)), None, Some((10.0, 90.0))]),
                (Mode::Bpftrace, vec![Some((95.0, 23.0)), Some((45.0, 24.0)), Some((20.0, 60.0))]),
            ],
        );
        let point = |ci: Result<RatioCi, String>| ci.map(|ci| ci.ratio).unwrap_or_else(|e| panic!("{e}"));
        let close = |got: f64, want: f64| assert!((got - want).abs() < 1e-9, "{got} != {want}");
        // Medians: untraced 75 req/s at 22.5 µs; default 50 at 58 µs; bpftrace 45 at 24 µs.
        close(point(w.loss_pct(Mode::Default)), (1.0 - 50.0 / 75.0) * 100.0);
        close(point(w.added_cpu_us(Mode::Default)), 35.5);
        close(point(w.p99_shift_us(Mode::Default)), 35.5);
        close(point(w.added_cpu_ratio(Mode::Default, Mode::Bpftrace)), 35.5 / 1.5);
        close(point(w.loss_over(Mode::Default, Mode::Bpftrace)), (45.0 - 50.0) / 75.0 * 100.0);
        let ci = w.added_cpu_us(Mode::Default).unwrap_or_else(|e| panic!("{e}"));
        assert!(ci.lo < ci.ratio && ci.ratio < ci.hi, "two or three runs each: an interval around the point, {ci:?}");
        assert_eq!(w.runs_of(Mode::Bpftrace, |r| r.per_s), Ok(vec![95.0, 45.0, 20.0]));
        assert!(w.loss_pct(Mode::LatencyOnly).is_err_and(|e| e.contains("no perf-user `--latency-only` runs")));
        // bpftrace adding nothing leaves no ratio to take.
        assert!(w.added_cpu_ratio(Mode::Default, Mode::Untraced).is_err());
    }

    #[test]
    fn a_mode_that_never_ran_gives_its_reason() {
        let w = workload("8 connections", &[(Mode::Untraced, vec![Some((100.0, 20.0))]), (Mode::Default, vec![None])]);
        assert_eq!(w.loss_pct(Mode::Default), Err("failed: boom".into()));
    }
}
