//! The bench's results, the goals judged from them, and their rendering as the markdown that is
//! both printed and written to docs/BENCHMARKS.md. Pure: no process is run here.

use std::fmt::Write as _;

use super::{
    stats::{RatioCi, Runs, med, median_ci, ratio_ci},
    sys::Machine,
};

/// A measured number, or why there is none (`skipped: …`, `failed: …`).
pub type Cell = Result<f64, String>;

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

#[derive(Debug, PartialEq)]
pub enum Status {
    Met,
    NotMet,
    /// The 95 % interval straddles the goal: these runs cannot tell.
    Inconclusive,
    NotMeasured(String),
}

#[derive(Debug)]
pub struct Goal {
    pub goal: &'static str,
    pub measured: String,
    pub status: Status,
}

fn added(traced: &Cell, base: &Cell) -> Cell {
    match (traced, base) {
        (Ok(t), Ok(b)) => Ok(t - b),
        (Err(e), _) | (_, Err(e)) => Err(e.clone()),
    }
}

/// Medians' difference: a measurement's added cost over `base`.
fn added_runs(traced: &Runs, base: &Runs) -> Cell {
    added(&med(traced), &med(base))
}

fn ratio(a: &Cell, b: &Cell) -> Cell {
    match (a, b) {
        (Ok(a), Ok(b)) if *b > 0.0 => Ok(a / b),
        (Ok(_), Ok(_)) => Err("n/a (divisor ≤ 0)".into()),
        (Err(e), _) | (_, Err(e)) => Err(e.clone()),
    }
}

/// `name: value; name: value` with each value as `fmt` writes it, or its error.
fn measured_text<T>(values: &[(String, Result<T, String>)], fmt: impl Fn(&T) -> String) -> String {
    values
        .iter()
        .map(|(name, v)| match v {
            Ok(x) => format!("{name}: {}", fmt(x)),
            Err(e) => format!("{name}: {e}"),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// `name value, name value`: a goal's side figures, each as `fmt` writes it, or its error.
fn list_text<T>(values: &[(String, Result<T, String>)], fmt: impl Fn(&T) -> String) -> String {
    let parts: Vec<String> = values
        .iter()
        .map(|(name, v)| match v {
            Ok(x) => format!("{name} {}", fmt(x)),
            Err(e) => format!("{name} {e}"),
        })
        .collect();
    parts.join(", ")
}

/// The values of a goal, or the first reason one is missing (which makes the goal unmeasured).
fn all_measured<T: Copy>(values: &[(String, Result<T, String>)]) -> Result<Vec<T>, Status> {
    values.iter().map(|(_, v)| v.as_ref().copied().map_err(|e| Status::NotMeasured(e.clone()))).collect()
}

/// Every measured value must pass `ok`; any missing one makes the goal unmeasured.
fn judge(values: &[(String, Cell)], fmt: impl Fn(f64) -> String, ok: impl Fn(f64) -> bool) -> (String, Status) {
    let measured = measured_text(values, |x| fmt(*x));
    let status = match all_measured(values) {
        Ok(xs) if xs.iter().all(|x| ok(*x)) => Status::Met,
        Ok(_) => Status::NotMet,
        Err(status) => status,
    };
    (measured, status)
}

/// One value per measured function.
fn per_func<T>(calls: &[CallRow], f: impl Fn(&CallRow) -> T) -> Vec<(String, T)> {
    calls.iter().map(|c| (c.func.to_string(), f(c))).collect()
}

/// `1.08× (95 % CI 1.01–1.16)`; one run gives no interval to show.
fn ci_text(ci: &RatioCi) -> String {
    if ci.lo == ci.hi {
        format!("{:.2}×", ci.ratio)
    } else {
        format!("{:.2}× (95 % CI {:.2}–{:.2})", ci.ratio, ci.lo, ci.hi)
    }
}

/// A ratio goal (`≤ limit`) judged on each function's interval: met when every interval lies
/// within the limit, not met when one lies wholly beyond it, inconclusive otherwise (the runs
/// cannot tell; more repetitions or a quieter machine can).
fn judge_ci(values: &[(String, Result<RatioCi, String>)], of: &str, limit: f64) -> (String, Status) {
    let measured = measured_text(values, |ci| format!("{} {of}", ci_text(ci)));
    if values.is_empty() {
        return ("nothing measured".into(), Status::NotMeasured("no function measured".into()));
    }
    let status = match all_measured(values) {
        Ok(cis) if cis.iter().all(|ci| ci.hi <= limit) => Status::Met,
        Ok(cis) if cis.iter().any(|ci| ci.lo > limit) => Status::NotMet,
        Ok(_) => Status::Inconclusive,
        Err(status) => status,
    };
    (measured, status)
}

/// The same ratio estimated from section 7 instead: perf-user differs from its floor only in what
/// its function programs do, which the kernel's own run-time accounting measures per run with
/// little noise, so `1 + that work per call / the floor's added cost` (section 7 traces push_rbp).
/// With the clock floor measured, the same estimate for it tells how much of that the clock reads
/// alone take.
fn from_program_time(r: &Results, config: &str, floor: &dyn Fn(&CallRow) -> &Runs) -> String {
    let Some(push_rbp) = r.calls.iter().find(|c| c.func == "push_rbp") else {
        return String::new();
    };
    let Ok(floor_ns) = added_runs(floor(push_rbp), &push_rbp.untraced) else {
        return String::new();
    };
    let estimate =
        |config: &str| program_work(r, config).filter(|w| floor_ns > 0.0 && *w > 0.0).map(|w| (1.0 + w / floor_ns, w));
    let Some((ratio, work)) = estimate(config) else {
        return String::new();
    };
    let mut text = format!("; from program run time (section 7): push_rbp {ratio:.2}× ({work:.0} ns of work per call");
    if let Some((ratio, work)) = estimate(CLOCK_PROGRAMS) {
        let _ = write!(text, "; the clock reads alone: {work:.0} ns, {ratio:.2}×");
    }
    text + ")"
}

/// Section 7: the work per call of `config`'s function programs above the empty programs' (the
/// tracepoint programs run in the floor too).
fn program_work(r: &Results, config: &str) -> Option<f64> {
    let programs = r.programs.as_ref().ok()?;
    let empty = programs.iter().filter(|p| p.config == EMPTY_PROGRAMS).map(|p| p.ns_per_run).reduce(f64::min)?;
    let runs = programs.iter().filter(|p| p.config == config && p.program.starts_with("func_"));
    let work = runs.map(|p| (p.ns_per_run - empty).max(0.0) * p.runs_per_call).sum();
    Some(work)
}

/// A goal that perf-user in one mode adds at most 1.1 × what its floor adds.
struct LimitGoal {
    goal: &'static str,
    /// The mode's paired ratios over its floor (section 1).
    paired: fn(&PairRow) -> &Runs,
    /// The mode's and the floor's separate runs (section 1).
    mode: fn(&CallRow) -> &Runs,
    floor: fn(&CallRow) -> &Runs,
    floor_name: &'static str,
    /// The mode's configuration in section 7.
    programs: &'static str,
}

pub fn goals(r: &Results) -> Vec<Goal> {
    let mut goals = Vec::new();

    let per_func_ci = |f: &dyn Fn(&CallRow) -> Result<RatioCi, String>| per_func(&r.calls, f);
    let per_pair = |f: &dyn Fn(&PairRow) -> &Runs| -> Vec<(String, Result<RatioCi, String>)> {
        r.pairs.iter().map(|p| (p.func.to_string(), median_ci(f(p)))).collect()
    };
    // The 1.1 × goals, judged on the paired runs (both sides timed at once); the clock floor, the
    // separate runs and the program-time estimate say the same from other angles.
    let limit_goals = [
        LimitGoal {
            goal: "perf-user added cost ≤ 1.1 × the floor attached the same way (session + tracepoints)",
            paired: |p| &p.perf_user,
            mode: |c| &c.perf_user,
            floor: |c| &c.floor_tracepoints,
            floor_name: "floor + tracepoints",
            programs: "perf-user",
        },
        LimitGoal {
            goal: "… without attribution (`--latency-only`) ≤ 1.1 × the floor (session)",
            paired: |p| &p.latency,
            mode: |c| &c.latency,
            floor: |c| &c.floor,
            floor_name: "floor",
            programs: "perf-user --latency-only",
        },
    ];
    for g in limit_goals {
        let (measured, status) = judge_ci(&per_pair(&g.paired), &format!("{}, paired", g.floor_name), 1.1);
        let separate = per_func_ci(&|c| ratio_ci((g.mode)(c), (g.floor)(c), &c.untraced));
        let measured = format!(
            "{measured}; the clock reads alone, paired: {}; separate runs: {}",
            list_text(&per_pair(&|p| &p.clock), ci_text),
            list_text(&separate, ci_text)
        ) + &from_program_time(r, g.programs, &g.floor);
        goals.push(Goal { goal: g.goal, measured, status });
    }

    // What the kernel alone charges for sampling, in the same unit: no sampled mode can be cheaper.
    let floor_vs_bpftrace = |floor: &dyn Fn(&CallRow) -> &Runs| {
        let parts = per_func_ci(&|c| ratio_ci(floor(c), &c.bpftrace, &c.untraced));
        format!(" (empty programs sampled the same way: {})", list_text(&parts, ci_text))
    };
    let (measured, status) = match &r.sampling {
        Err(why) => (why.clone(), Status::NotMeasured("not implemented".into())),
        Ok(()) => {
            let (measured, status) =
                judge_ci(&per_func_ci(&|c| ratio_ci(&c.sampled, &c.bpftrace, &c.untraced)), "bpftrace", 0.4);
            (measured + &floor_vs_bpftrace(&|c| &c.sampled_floor_tracepoints), status)
        }
    };
    goals.push(Goal { goal: "sampled (1 in 10) added cost ≤ 0.4 × bpftrace", measured, status });
    // Paired with bpftrace on the twin (neither brings tracepoints that would slow the other).
    let (mut measured, status) = judge_ci(&per_pair(&|p| &p.latency_sampled_vs_bpftrace), "bpftrace, paired", 0.4);
    let separate = per_func_ci(&|c| ratio_ci(&c.latency_sampled, &c.bpftrace, &c.untraced));
    let _ = write!(measured, "; separate runs: {}", list_text(&separate, ci_text));
    if r.sampling.is_ok() {
        measured += &floor_vs_bpftrace(&|c| &c.sampled_floor);
    }
    goals.push(Goal {
        goal: "… without attribution (`--latency-only --sample 10`) ≤ 0.4 × bpftrace",
        measured,
        status,
    });

    let (measured, status) =
        judge(&per_func(&r.calls, |c| c.p50_ns.clone()), |x| format!("p50 {x:.0} ns"), |x| x.abs() <= 100.0);
    goals.push(Goal { goal: "empty function p50 within ±100 ns of 0", measured, status });

    let spin_ns = r.spin_ns as f64;
    let err = |x: f64| (x - spin_ns) / spin_ns * 100.0;
    let (measured, status) = match &r.spin {
        Ok(s) => {
            let p50 = err(s.p50_ns);
            let status = if p50.abs() <= 3.0 { Status::Met } else { Status::NotMet };
            (format!("p50 {p50:+.2} %, p99 {:+.2} % (judged on p50)", err(s.p99_ns)), status)
        }
        Err(e) => (e.clone(), Status::NotMeasured(e.clone())),
    };
    goals.push(Goal { goal: "20 µs spin within ±3 %", measured, status });

    let at_1m = r.loads.iter().find(|l| l.label == "1M calls/s");
    let (measured, status) = match at_1m.map(|l| &l.result) {
        Some(Ok(l)) => {
            let ok = l.nothing_lost() && l.cpu_pct < 2.0;
            (describe_load(l), if ok { Status::Met } else { Status::NotMet })
        }
        Some(Err(e)) => {
            let best = match &r.ceiling.result {
                Ok(c) => format!("; at the ceiling instead: {}", describe_load(c)),
                Err(_) => String::new(),
            };
            // Why: even empty programs on the cheapest probe site cost this much per call.
            let floor =
                r.calls.iter().filter_map(|c| added_runs(&c.floor, &c.untraced).ok()).fold(f64::INFINITY, f64::min);
            let why = if floor.is_finite() && floor > 0.0 {
                format!("; the floor alone costs {floor:.0} ns per call, i.e. at most {}/s", thousands(1e9 / floor))
            } else {
                String::new()
            };
            (format!("{e}{best}{why}"), Status::NotMeasured("1M calls/s not reached".into()))
        }
        None => ("no 1M run".into(), Status::NotMeasured("no 1M run".into())),
    };
    goals.push(Goal { goal: "no lost events and perf-user < 2 % of one core at 1M calls/s", measured, status });
    let sampled_1m = r.loads.iter().find(|l| l.label.starts_with("1M") && l.label.ends_with(super::SAMPLED_LOAD));
    let (measured, status) = match sampled_1m.map(|l| &l.result) {
        Some(Ok(l)) => {
            let ok = l.nothing_lost() && l.cpu_pct < 2.0;
            (describe_load(l), if ok { Status::Met } else { Status::NotMet })
        }
        Some(Err(e)) => (e.clone(), Status::NotMeasured(e.clone())),
        None => ("no run".into(), Status::NotMeasured("no run".into())),
    };
    goals.push(Goal {
        goal: "… counting every call, timing 1 in 10 (`--latency-only --sample 10`)", measured, status
    });

    let thousand = r.attach.iter().find(|a| a.functions == 1000).map(|a| &a.result);
    let (measured, status) = match thousand {
        Some(Ok(a)) => (format!("{:.3} s", a.attach_s), if a.attach_s < 1.0 { Status::Met } else { Status::NotMet }),
        Some(Err(e)) => (e.clone(), Status::NotMeasured(e.clone())),
        None => ("no run".into(), Status::NotMeasured("no run".into())),
    };
    goals.push(Goal { goal: "attach 1,000 functions < 1 s", measured, status });
    goals
}

fn describe_load(l: &Load) -> String {
    format!(
        "{}/s, perf-user {:.2} % of a core, {}",
        thousands(l.reached_per_s),
        l.cpu_pct,
        if l.nothing_lost() { "nothing lost".to_string() } else { lost_text(l) }
    ) + &retired_text(l)
}

fn retired_text(l: &Load) -> String {
    match l.exemplars_retired {
        0 => String::new(),
        n => format!(
            " ({} older slow-call exemplars retired: only the newest `--exemplars` are kept)",
            thousands(n as f64)
        ),
    }
}

fn lost_text(l: &Load) -> String {
    let mut parts: Vec<String> = l.lost.iter().map(|(k, v)| format!("{k} {v}")).collect();
    if l.uncounted != 0 {
        parts.push(format!("{} calls not counted", l.uncounted));
    }
    if parts.is_empty() { "0".into() } else { parts.join(", ") }
}

pub fn thousands(x: f64) -> String {
    let n = x.round().max(0.0) as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// A criterion time in its natural unit.
fn duration(ns: f64) -> String {
    match ns {
        x if x >= 1e6 => format!("{:.2} ms", x / 1e6),
        x if x >= 1e3 => format!("{:.2} µs", x / 1e3),
        x => format!("{x:.0} ns"),
    }
}

fn ns(c: &Cell) -> String {
    match c {
        Ok(v) => format!("{v:.1}"),
        Err(e) => e.clone(),
    }
}

fn times(c: &Cell) -> String {
    match c {
        Ok(v) => format!("{v:.2}×"),
        Err(e) => e.clone(),
    }
}

/// Table cells may not contain `|` or newlines.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// One row of a per-function table: the function's name, then `cells` (escaped here).
fn func_row(md: &mut String, func: &str, cells: &[String]) {
    let cells: Vec<String> = cells.iter().map(|c| cell(c)).collect();
    let _ = writeln!(md, "| `{func}` | {} |", cells.join(" | "));
}

pub fn markdown(r: &Results) -> String {
    let mut md = String::new();
    let m = &r.machine;
    let _ = writeln!(md, "# Benchmarks\n");
    let _ = writeln!(
        md,
        "Generated by `cargo xtask bench{}` from the numbers it measured; do not edit by hand, rerun it.\n",
        if r.quick { " --quick" } else { "" }
    );
    if r.quick {
        let _ = writeln!(md, "**Quick run**: one repetition of short loops, a smoke test; not for comparison.\n");
    }
    let _ = writeln!(md, "| | |\n|---|---|");
    let _ = writeln!(md, "| CPU | {} ({} cores) |", cell(&m.cpu), m.cores);
    let _ = writeln!(md, "| kernel | {} |", cell(&m.kernel));
    let _ = writeln!(md, "| date | {} |", m.date_utc);
    let _ = writeln!(md, "| load average (1 min) at start / end | {} / {} |", m.loadavg, r.loadavg_end);
    for (name, v) in &r.tools {
        let _ = writeln!(md, "| {name} | {} |", cell(v.as_ref().unwrap_or_else(|e| e)));
    }
    if !r.perf_user_flags.is_empty() {
        let _ = writeln!(
            md,
            "| perf-user flags added | `{}` (the overhead guard would detach the probes being measured) |",
            r.perf_user_flags
        );
    }
    let _ = writeln!(md, "| repetitions | median of {} per number; {} |", r.reps, cell(&r.plan));
    let _ = writeln!(md, "| bench duration | {:.0} s |\n", r.elapsed_s);

    let _ = writeln!(
        md,
        "## Goals\n\nRatios are of medians; each comes with a 95 % bootstrap interval from the repetitions, \
         and a ratio goal is met only when every function's interval lies within it. Separate runs on this VM \
         swing by ±20 %, more than the differences judged, so the 1.1 × goals and the latency-only sampled one \
         are judged on **paired runs** (section 1): one process calls the function and its twin in alternating \
         blocks, one side under the floor (or bpftrace), the other under the mode judged, so both see the same \
         machine. The separate runs and the programs' run time (section 7) are shown beside them.\n\n\
         | goal | measured | status |\n|---|---|---|"
    );
    for g in goals(r) {
        let status = match &g.status {
            Status::Met => "met".to_string(),
            Status::NotMet => "**not met**".to_string(),
            Status::Inconclusive => "inconclusive (the interval straddles the goal)".to_string(),
            Status::NotMeasured(why) => format!("not measured ({why})"),
        };
        let _ = writeln!(md, "| {} | {} | {} |", g.goal, cell(&g.measured), cell(&status));
    }

    let _ = writeln!(md, "\n## 1. Per-call cost on an empty function (ns per call)\n");
    let _ = writeln!(
        md,
        "Added = traced − untraced ns/call, as bench-target measures its own loop. Floor: perf-user \
         `--probe-mode empty` (one session program that does nothing, on the same attach points); \
         + tracepoints: the same with the syscall and scheduler tracepoints attribution attaches \
         (`--syscalls`), which each probe's own syscalls pass through. perf-user: default flags \
         (a session, attribution).\n"
    );
    let _ = writeln!(
        md,
        "| function | first instruction | untraced | floor added | floor + tracepoints added | perf-user added | \
         bpftrace added | perf-user / floor + tracepoints | perf-user / floor | perf-user / bpftrace |\n\
         |---|---|---|---|---|---|---|---|---|---|"
    );
    for c in &r.calls {
        let pu = added_runs(&c.perf_user, &c.untraced);
        let floor = added_runs(&c.floor, &c.untraced);
        let floor_tp = added_runs(&c.floor_tracepoints, &c.untraced);
        let bt = added_runs(&c.bpftrace, &c.untraced);
        func_row(
            &mut md,
            c.func,
            &[
                format!("`{}`", c.first_insn.as_ref().unwrap_or_else(|e| e)),
                ns(&med(&c.untraced)),
                ns(&floor),
                ns(&floor_tp),
                ns(&pu),
                ns(&bt),
                times(&ratio(&pu, &floor_tp)),
                times(&ratio(&pu, &floor)),
                times(&ratio(&pu, &bt)),
            ],
        );
    }
    let _ = writeln!(
        md,
        "\nPaired runs (`bench-target pair`): the function and its twin (the same code at another address) \
         called in alternating blocks of 100, each timed on its own, with empty programs on the function and \
         the mode named on the twin (bpftrace on the function in the last column); each run gives the ratio \
         of the twin's added cost to the function's, the median of {} runs with its 95 % interval. Empty \
         programs on both sides test the method itself. perf-user's default mode brings its tracepoints, which \
         both functions' probe syscalls pass through, so its ratio is over the floor + tracepoints.\n\n\
         | function | empty / floor | clock floor / floor | latency-only / floor | perf-user / floor + tracepoints | \
         latency-only sampled / bpftrace |\n|---|---|---|---|---|---|",
        r.pairs.first().and_then(|p| p.same.as_ref().ok()).map_or(0, Vec::len)
    );
    for p in &r.pairs {
        let ci_cell = |runs: &Runs| match median_ci(runs) {
            Ok(ci) => ci_text(&ci),
            Err(e) => e,
        };
        let cells = [&p.same, &p.clock, &p.latency, &p.perf_user, &p.latency_sampled_vs_bpftrace].map(ci_cell);
        func_row(&mut md, p.func, &cells);
    }
    let _ = writeln!(md, "\nWhere perf-user's added cost goes, per call:\n");
    for c in &r.calls {
        let pu = added_runs(&c.perf_user, &c.untraced);
        let floor = added_runs(&c.floor, &c.untraced);
        let tracepoints = added_runs(&c.floor_tracepoints, &c.floor);
        let programs = added_runs(&c.perf_user, &c.floor_tracepoints);
        let share = |part: &Cell| match ratio(part, &pu) {
            Ok(x) => format!("{:.0} %", x * 100.0),
            Err(e) => e,
        };
        let _ = writeln!(
            md,
            "- `{}`: the probes {} ns ({}), the tracepoints on the probes' own syscalls {} ns ({}), \
             perf-user's programs {} ns ({})",
            c.func,
            ns(&floor),
            share(&floor),
            ns(&tracepoints),
            share(&tracepoints),
            ns(&programs),
            share(&programs)
        );
    }
    let _ = writeln!(
        md,
        "\nAttached as an entry and a return program (`--attach-mode multi`: `uprobe_multi` links, the \
         default where the kernel has no sessions), against empty programs attached the same way, with \
         the tracepoints:\n\n| function | pair floor + tracepoints added | perf-user pair added | \
         perf-user / floor |\n|---|---|---|---|"
    );
    for c in &r.calls {
        let pu = added_runs(&c.pair, &c.untraced);
        let floor = added_runs(&c.pair_floor, &c.untraced);
        func_row(&mut md, c.func, &[ns(&floor), ns(&pu), times(&ratio(&pu, &floor))]);
    }
    let _ = writeln!(
        md,
        "\nWithout attribution (`--latency-only`: the entry time kept in the session cookie, no thread \
         state, no tracepoints), against the floor and the clock floor (`--probe-mode clock`: the empty \
         session program reading the clock at entry and at return, the least any timing adds):\n\n\
         | function | floor added | clock floor added | clock floor / floor | latency-only added | \
         latency-only / floor | latency-only / clock floor |\n|---|---|---|---|---|---|---|"
    );
    for c in &r.calls {
        let lat = added_runs(&c.latency, &c.untraced);
        let floor = added_runs(&c.floor, &c.untraced);
        let clock = added_runs(&c.clock_floor, &c.untraced);
        func_row(
            &mut md,
            c.func,
            &[
                ns(&floor),
                ns(&clock),
                times(&ratio(&clock, &floor)),
                ns(&lat),
                times(&ratio(&lat, &floor)),
                times(&ratio(&lat, &clock)),
            ],
        );
    }
    match &r.sampling {
        Ok(()) => {
            let _ = writeln!(
                md,
                "\nSampled (`--sample 10`: every call counted, one in ten timed, the others' return probe \
                 skipped), against the sampled floor (the empty session program making the same draw; \
                 with the tracepoints for the default mode) and bpftrace:\n\n\
                 | function | sampled floor added | floor / bpftrace | latency-only sampled added | / floor | \
                 / bpftrace | sampled floor + tracepoints added | perf-user sampled added | / floor + tracepoints | \
                 / bpftrace |\n|---|---|---|---|---|---|---|---|---|---|"
            );
            for c in &r.calls {
                let bt = added_runs(&c.bpftrace, &c.untraced);
                let floor = added_runs(&c.sampled_floor, &c.untraced);
                let lat = added_runs(&c.latency_sampled, &c.untraced);
                let floor_tp = added_runs(&c.sampled_floor_tracepoints, &c.untraced);
                let pu = added_runs(&c.sampled, &c.untraced);
                func_row(
                    &mut md,
                    c.func,
                    &[
                        ns(&floor),
                        times(&ratio(&floor, &bt)),
                        ns(&lat),
                        times(&ratio(&lat, &floor)),
                        times(&ratio(&lat, &bt)),
                        ns(&floor_tp),
                        ns(&pu),
                        times(&ratio(&pu, &floor_tp)),
                        times(&ratio(&pu, &bt)),
                    ],
                );
            }
        }
        Err(why) => {
            let _ = writeln!(md, "\nSampled tracing: {why}.");
        }
    }

    let _ = writeln!(md, "\n## 2. Syscall tracing overhead (getppid loop, ns per call)\n");
    let _ = writeln!(
        md,
        "| tracer | ns/call | added | vs perf-user added | tracer CPU during the loop (% of one core) |\n\
         |---|---|---|---|---|"
    );
    let base = r.syscalls.iter().find(|s| s.tracer == "untraced").map(|s| s.ns_per_call.clone());
    let base = base.unwrap_or_else(|| Err("no untraced run".into()));
    let pu_added = r
        .syscalls
        .iter()
        .find(|s| s.tracer.starts_with("perf-user"))
        .map_or_else(|| Err("no perf-user run".to_string()), |s| added(&s.ns_per_call, &base));
    for s in &r.syscalls {
        let (add, vs) = if s.tracer == "untraced" {
            ("—".to_string(), "—".to_string())
        } else {
            let a = added(&s.ns_per_call, &base);
            (ns(&a), times(&ratio(&a, &pu_added)))
        };
        let cpu = match &s.tracer_cpu_pct {
            Ok(v) => format!("{v:.1}"),
            Err(e) => e.clone(),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} |",
            s.tracer,
            cell(&ns(&s.ns_per_call)),
            cell(&add),
            cell(&vs),
            if s.tracer == "untraced" { "—".into() } else { cell(&cpu) }
        );
    }

    let _ = writeln!(md, "\n## 3–4. Throughput ceiling and perf-user's own cost\n");
    let _ = writeln!(
        md,
        "perf-user (default flags unless the row says otherwise, guard off) tracing `nop5` while bench-target \
         calls it at a paced rate, or flat out. *Lost* also lists calls the target made that perf-user did not \
         count; slow-call exemplars beyond the newest `--exemplars` (1,000 by default), which perf-user received \
         and let go, are shown beside it but are not lost events.\n\n\
         | load | reached calls/s | perf-user CPU (% of one core) | perf-user peak RSS | lost |\n|---|---|---|---|---|"
    );
    for l in std::iter::once(&r.ceiling).chain(&r.loads) {
        match &l.result {
            Ok(x) => {
                let _ = writeln!(
                    md,
                    "| {} | {} | {:.2} | {:.1} MiB | {} |",
                    l.label,
                    thousands(x.reached_per_s),
                    x.cpu_pct,
                    x.vmhwm_kb as f64 / 1024.0,
                    cell(&(lost_text(x) + &retired_text(x)))
                );
            }
            Err(e) => {
                let _ = writeln!(md, "| {} | {} | | | |", l.label, cell(e));
            }
        }
    }

    let _ = writeln!(md, "\n## 5. Attach time\n");
    let _ = writeln!(
        md,
        "perf-user start to its `attached N probes` line (symbols, calibration, load, attach), and SIGINT to \
         exit (final read, detach, report).\n\n\
         | functions | probes | attach | detach | detach per uprobe | runs |\n|---|---|---|---|---|---|"
    );
    for a in &r.attach {
        match &a.result {
            Ok(x) => {
                let uprobes = x.probes.saturating_sub(4).max(1) as f64;
                let (detach, per) = match (x.detach_s, x.detach_over_s) {
                    (Some(d), _) => (format!("{d:.3} s"), format!("{:.1} ms", d / uprobes * 1000.0)),
                    (None, Some(cap)) => (format!("> {cap:.0} s (finished in the background)"), "—".into()),
                    (None, None) => ("?".into(), "—".into()),
                };
                let _ = writeln!(
                    md,
                    "| {} | {} | {:.3} s | {detach} | {per} | {} |",
                    a.functions, x.probes, x.attach_s, x.runs
                );
            }
            Err(e) => {
                let _ = writeln!(md, "| {} | {} | | | | |", a.functions, cell(e));
            }
        }
    }

    let _ = writeln!(md, "\n## 6. Accuracy\n");
    let _ = writeln!(
        md,
        "| calls of | truth | perf-user p50 | perf-user p99 | bpftrace hist bucket |\n|---|---|---|---|---|"
    );
    for c in &r.calls {
        let _ = writeln!(
            md,
            "| `{}` (empty) | ~0 ns | {} | {} | {} |",
            c.func,
            cell(&c.p50_ns.as_ref().map_or_else(|e| e.clone(), |v| format!("{v:.0} ns"))),
            cell(&c.p99_ns.as_ref().map_or_else(|e| e.clone(), |v| format!("{v:.0} ns"))),
            cell(c.bpftrace_bucket.as_ref().unwrap_or_else(|e| e))
        );
    }
    let spin_ns = r.spin_ns as f64;
    match &r.spin {
        Ok(s) => {
            let _ = writeln!(
                md,
                "| `spin` | {} ns | {:.0} ns ({:+.2} %) | {:.0} ns ({:+.2} %) | |",
                thousands(spin_ns),
                s.p50_ns,
                (s.p50_ns - spin_ns) / spin_ns * 100.0,
                s.p99_ns,
                (s.p99_ns - spin_ns) / spin_ns * 100.0
            );
        }
        Err(e) => {
            let _ = writeln!(md, "| `spin` | {} ns | {} | | |", thousands(spin_ns), cell(e));
        }
    }

    let _ = writeln!(md, "\n## 7. Where perf-user's cost goes: BPF program run time\n");
    match &r.programs {
        Ok(rows) => {
            let empty = rows
                .iter()
                .filter(|p| p.config == EMPTY_PROGRAMS)
                .map(|p| p.ns_per_run)
                .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.min(v))));
            let _ = writeln!(
                md,
                "`push_rbp` traced with `kernel.bpf_stats_enabled=1` (which adds its own clock reads to every \
                 run: compare with the empty programs, {}). *Work* is ns/run minus the empty program's.\n\n\
                 | configuration | program | runs per call | ns per run | work |\n|---|---|---|---|---|",
                empty.map_or_else(|| "not measured".into(), |e| format!("{e:.0} ns/run"))
            );
            for p in rows {
                let work = empty.map_or_else(String::new, |e| format!("{:.0}", p.ns_per_run - e));
                let _ = writeln!(
                    md,
                    "| {} | `{}` | {:.2} | {:.0} | {work} |",
                    p.config, p.program, p.runs_per_call, p.ns_per_run
                );
            }
        }
        Err(e) => {
            let _ = writeln!(md, "{e}");
        }
    }

    let _ = writeln!(md, "\n## 8. Userspace hot paths (criterion)\n");
    match &r.hot_paths {
        Ok(h) => {
            let _ = writeln!(
                md,
                "`cargo bench -p perf-user` (`perf-user/benches/`): the work perf-user does per tick and per \
                 function (merging per-CPU histograms, percentiles, windows), per frame of the UI, and once \
                 at attach (symbols of a real binary). Median per iteration.\n\n\
                 | benchmark | median | ± |\n|---|---|---|"
            );
            for row in &h.rows {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} |",
                    cell(&row.name),
                    duration(row.median_ns),
                    duration(row.deviation_ns)
                );
            }
            for note in &h.notes {
                let _ = writeln!(md, "\n{note}");
            }
        }
        Err(e) => {
            let _ = writeln!(md, "{e}");
        }
    }

    let _ = writeln!(md, "\n{HOW_TO_READ}");
    if !r.notes.is_empty() {
        let _ = writeln!(md, "\n## Notes from this run\n");
        for n in &r.notes {
            let _ = writeln!(md, "- {}", n.replace('\n', " "));
        }
    }
    md
}

const HOW_TO_READ: &str = "## How to read this

- **bench-target** (`bench-target/`) times its own loop: `ns_per_call` = loop time / calls. Its probed
  functions are empty (`#[inline(never)]`, `black_box`): `push_rbp` starts with `push rbp` (frame
  pointers), `nop5` with the 5-byte nop `0f 1f 44 00 00` (a naked function), `spin` busy-waits 20 µs.
  Untraced they cost a few ns, so **added** ns/call is what tracing costs per call.
- **Floor** is the kernel's own price for a uprobe session (one program run at entry and one at
  return) running an empty program on the same addresses: no tracer can be cheaper with uprobes.
  **+ tracepoints** adds the syscall and scheduler tracepoints that attribution needs (perf-user's own
  `sys_enter`/`sys_exit`/`sched_switch` programs, which return at once on the probes' syscalls): every
  traced return is a `uretprobe` syscall and every hit of a nop5 site a `uprobe` syscall, so the
  syscall tracepoints run on every call. That cost is the kernel's tracepoint path: the programs'
  own work is a few ns per run (section 7). That is the default mode's floor attached the same way;
  *perf-user / floor + tracepoints* is how much perf-user's programs add on top of it, *perf-user /
  floor* what the default mode costs over the bare probes. *perf-user / bpftrace* compares with
  bpftrace's usual latency one-liner (`@s[tid] = nsecs` / `hist(nsecs - @s[tid])`, attached with
  `-p PID`, an entry and a return probe, no tracepoints).
- **Modes.** The default keeps every call's attribution (a per-thread shadow stack: two task-storage
  lookups and two clock reads per call above the floor, plus the tracepoints). `--latency-only` keeps
  only the entry time, in the uprobe session's cookie: two clock reads and a few ns, no tracepoints.
  `--sample 10` times one call in ten and skips the others' return probe; with `--latency-only` each
  call is drawn on its own, so a sampled-out call costs its entry trap and a few ns, which is what
  makes 1M counted calls/s possible on this VM. The **sampled floor** is the empty session program
  making the same draw (`--probe-mode empty --sample 10`): nine calls in ten pay only their entry
  trap, the tenth the whole floor. No sampled mode can be cheaper, so it says how far below
  bpftrace sampling can go on this machine at all.
- The **clock floor** (`--probe-mode clock`) is the empty session program plus one
  `bpf_ktime_get_ns` at entry and one at return, kept in the session cookie: what any tracer that
  times each call must add to the floor. The floor reads no clock, so the 1.1 × goals leave the
  clock reads, the thread's state and the aggregation 10 % of the floor together; where the clock
  floor alone is near 1.1 × the floor (a VM's clock read costs tens of ns), no timing program can
  meet them.
- Syscall overhead: the loop calls getppid(2); perf-user `--syscalls` and bpftrace's counting script
  use tracepoints, strace `-c -f` stops the process twice per syscall (ptrace).
- **CPU** is the tracer's utime + stime (`/proc/PID/stat`, all threads, 10 ms ticks) over the measured
  loop only, as % of one core; **peak RSS** is VmHWM at the end of the loop. **Lost** lists non-zero
  counters of the report's `lost{}` and calls the target made that the kernel did not count.
- Attach: from starting perf-user to its `attached N probes` line (reading symbols, calibrating,
  loading and attaching: 4 tracepoints + one session probe per function, all functions on one
  `uprobe_multi` session link). Detach: SIGINT to exit; closing a `uprobe_multi` link unregisters all its
  uprobes behind one RCU grace period (perf-event uprobes, on kernels before 6.6, take one each).
- Program run time (section 7): the kernel's own accounting (`kernel.bpf_stats_enabled`, on for
  those runs only) of each program during the loop. It shows what perf-user adds to the floor:
  two clock reads, the thread's state (task-local storage), the histogram and totals updates.
- Accuracy: perf-user's p50 of an empty function should be ~0 (it subtracts the probes' own cost,
  calibrated at start-up); bpftrace's histogram includes that cost. The spin's truth is 20,000 ns
  (it exits on the first clock read past 20 µs, tens of ns later).
- Every number is the median of the repetitions, configurations interleaved; the machine was not
  idle (see the load average), so compare columns of one run, not runs of different days. The
  goals' intervals resample each configuration's runs, or a paired measurement's per-run ratios
  (2,000 times, fixed seed): an *inconclusive* goal is one these runs cannot decide.";

#[cfg(test)]
mod tests {
    use super::*;

    fn row(untraced: f64, floor: f64, pu: f64, bt: f64) -> CallRow {
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
    fn paired(perf_user: Vec<f64>, latency: Runs, latency_sampled_vs_bpftrace: Runs) -> PairRow {
        PairRow {
            func: "push_rbp",
            same: Ok(vec![1.0]),
            clock: Ok(vec![1.04]),
            latency,
            perf_user: Ok(perf_user),
            latency_sampled_vs_bpftrace,
        }
    }

    fn results(calls: Vec<CallRow>) -> Results {
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

    #[test]
    fn goals_are_judged_from_added_costs() {
        // Paired: perf-user 1.05× the floor: met (separate runs: 1,050 added over a 1,000 floor).
        let g = goals(&results(vec![row(2.0, 1002.0, 1052.0, 802.0)]));
        assert!(g[0].measured.starts_with("push_rbp: 1.05× floor + tracepoints, paired; the clock reads alone, paired: push_rbp 1.04×; separate runs: push_rbp 1.05×"), "{g:?}");
        assert_eq!(g[0].status, Status::Met, "{g:?}");
        assert!(matches!(g[1].status, Status::NotMeasured(_)), "no latency-only row: not measured");
        assert!(matches!(g[2].status, Status::NotMeasured(_)), "no sampling: not measured");
        assert!(matches!(g[3].status, Status::NotMeasured(_)));
        assert_eq!(g[4].status, Status::Met);
        assert_eq!(g[5].status, Status::Met, "p50 +0.5 %");
        assert!(matches!(g[6].status, Status::NotMeasured(_)), "1M unreachable");
        assert!(matches!(g[7].status, Status::NotMeasured(_)), "no sampled 1M run");
        assert_eq!(g[8].status, Status::Met);
        // Latency only: paired 1.08× the floor; sampled 0.375× bpftrace.
        let mut res = results(vec![row(2.0, 1002.0, 1052.0, 802.0)]);
        res.pairs = vec![paired(vec![1.05], Ok(vec![1.08]), Ok(vec![0.375]))];
        let g = goals(&res);
        assert_eq!((&g[1].status, &g[3].status), (&Status::Met, &Status::Met), "{g:?}");
        // Nothing paired: the goals judged on pairs are not measured, never met by default.
        res.pairs.clear();
        assert!(matches!(goals(&res)[0].status, Status::NotMeasured(_)));
        // Sampled 350 against bpftrace's 800: not met, and the sampled floors say how close it can get.
        let mut r = row(2.0, 1002.0, 1052.0, 802.0);
        (r.latency_sampled, r.sampled_floor) = (Ok(vec![302.0]), Ok(vec![242.0]));
        (r.sampled, r.sampled_floor_tracepoints) = (Ok(vec![352.0]), Ok(vec![322.0]));
        let mut res = results(vec![r]);
        res.sampling = Ok(());
        let g = goals(&res);
        assert_eq!(g[2].status, Status::NotMet, "{g:?}");
        assert!(
            g[2].measured.contains("0.44× bpftrace (empty programs sampled the same way: push_rbp 0.40×)"),
            "{g:?}"
        );
        assert!(g[3].measured.ends_with("(empty programs sampled the same way: push_rbp 0.30×)"), "{g:?}");
        let mut res = results(vec![row(2.0, 1002.0, 1502.0, 802.0)]);
        res.pairs = vec![paired(vec![1.5], Ok(vec![1.08]), Ok(vec![0.375]))];
        assert_eq!(goals(&res)[0].status, Status::NotMet, "1.5× floor");
    }

    #[test]
    fn program_run_time_gives_a_second_estimate_of_the_ratio() {
        let mut r = results(vec![row(2.0, 1002.0, 1052.0, 802.0)]);
        let cost = |config, program: &str, runs_per_call, ns_per_run| ProgramCost {
            config,
            program: program.into(),
            runs_per_call,
            ns_per_run,
        };
        r.programs = Ok(vec![
            cost(EMPTY_PROGRAMS, "func_session_em", 2.0, 36.0),
            cost("perf-user", "func_session", 2.0, 96.0),
            cost("perf-user", "sys_enter", 1.0, 40.0),
        ]);
        let g = goals(&r);
        // 2 runs × 60 ns of work over a 1,000 ns floor; the tracepoint program is in the floor too.
        let expected = "; from program run time (section 7): push_rbp 1.12× (120 ns of work per call)";
        assert!(g[0].measured.ends_with(expected), "{g:?}");
        assert!(!g[1].measured.contains("program run time"), "no latency-only program measured: {g:?}");

        // With the clock floor measured, the share of the clock reads (2 × 20 ns) is shown too.
        if let Ok(p) = &mut r.programs {
            p.push(cost(CLOCK_PROGRAMS, "func_session_cl", 2.0, 56.0));
        }
        let g = goals(&r);
        let expected = "push_rbp 1.12× (120 ns of work per call; the clock reads alone: 40 ns, 1.04×)";
        assert!(g[0].measured.ends_with(expected), "{g:?}");
    }

    #[test]
    fn a_ratio_goal_the_runs_cannot_decide_is_inconclusive() {
        // Paired ratios around 1.05× but swinging ±20 %: the interval straddles 1.1.
        let swing = |m: f64| (0..11).map(|i| m * (0.8 + 0.04 * f64::from(i))).collect::<Vec<_>>();
        let mut res = results(vec![row(0.0, 1000.0, 1050.0, 1400.0)]);
        res.pairs = vec![paired(swing(1.05), Ok(vec![1.08]), Ok(vec![0.375]))];
        let g = goals(&res);
        assert_eq!(g[0].status, Status::Inconclusive, "{g:?}");
        assert!(g[0].measured.starts_with("push_rbp: 1.05× (95 % CI "), "{g:?}");
        // The same median from steady runs is met; from runs all beyond 1.1×, not met.
        res.pairs = vec![paired(vec![1.05; 11], Ok(vec![1.08]), Ok(vec![0.375]))];
        assert_eq!(goals(&res)[0].status, Status::Met);
        res.pairs = vec![paired(swing(1.3).iter().map(|x| x.max(1.15)).collect(), Ok(vec![1.08]), Ok(vec![0.375]))];
        assert_eq!(goals(&res)[0].status, Status::NotMet);
    }

    #[test]
    fn retired_exemplars_are_shown_but_are_not_lost_events() {
        let load = |exemplars_retired, uncounted| LoadRow {
            label: "1M calls/s".into(),
            result: Ok(Load {
                reached_per_s: 1e6,
                cpu_pct: 0.5,
                vmhwm_kb: 1024,
                lost: vec![],
                exemplars_retired,
                uncounted,
            }),
        };
        let mut r = results(vec![row(2.0, 1002.0, 1052.0, 802.0)]);
        r.loads = vec![load(7300, 0)];
        let g = goals(&r);
        assert_eq!(g[6].status, Status::Met, "{g:?}");
        assert!(g[6].measured.contains("nothing lost (7,300 older slow-call exemplars retired"), "{g:?}");
        r.loads = vec![load(0, 3)];
        assert_eq!(goals(&r)[6].status, Status::NotMet, "calls the kernel did not count are lost");
    }

    #[test]
    fn a_missing_number_is_not_measured_rather_than_met() {
        let mut res = results(vec![row(2.0, 1002.0, 1052.0, 802.0)]);
        res.pairs[0].perf_user = Err("failed: boom".into());
        let g = goals(&res);
        assert!(matches!(g[0].status, Status::NotMeasured(_)), "{g:?}");
        assert!(g[0].measured.starts_with("push_rbp: failed: boom"), "{g:?}");
    }

    #[test]
    fn markdown_tables_survive_odd_cells() {
        let mut r = row(2.0, 1002.0, 1052.0, 802.0);
        r.bpftrace = Err("skipped: bpftrace | missing".into());
        let mut res = results(vec![r]);
        res.pairs[0].latency_sampled_vs_bpftrace = Err("skipped: bpftrace | missing".into());
        let md = markdown(&res);
        assert!(md.contains("skipped: bpftrace \\| missing"), "{md}");
        assert!(
            md.contains("| `push_rbp` | 1.00× | 1.04× | not measured | 1.05× | skipped: bpftrace \\| missing |"),
            "{md}"
        );
        assert!(md.contains("| merge \\| sparse | 12.35 µs | 20 ns |"), "{md}");
        assert_eq!(thousands(1_234_567.4), "1,234,567");
    }
}
