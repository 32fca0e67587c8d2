//! What the bench measured, section by section: the rows the measurements fill in and the report
//! and the goals read. Plain data; no process is run and nothing is judged here.

use super::{
    stats::{Cell, Runs},
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
            hot_paths: Ok(HotPaths {
                rows: vec![HotPath { name: "merge | sparse".into(), median_ns: 12_345.0, deviation_ns: 20.0 }],
                notes: vec!["one frame: 1ms".into()],
            }),
            notes: vec![],
        }
    }
}
