//! `cargo xtask bench`: measures perf-user against the kernel's floor, bpftrace and strace in one
//! run, on bench-target's empty functions; prints the tables and writes docs/BENCHMARKS.md.

mod hot_paths;
mod report;
mod run;
mod stats;
mod sys;

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use report::{Attach, AttachRow, CallRow, Cell, Load, LoadRow, PairRow, Results, Spin, SyscallRow};
use run::{Bins, Outcome, Tracer, run_once};

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Smoke test: one repetition of short loops, no 100/1,000-function attach (under a minute);
    /// writes target/bench/BENCHMARKS-quick.md.
    #[arg(long)]
    quick: bool,
    /// Repetitions per number (the median is reported); default 5 (section 1: 11; attach: at most 3),
    /// or 1 with --quick.
    #[arg(long, value_name = "N")]
    reps: Option<usize>,
    /// Where to write the markdown (default: docs/BENCHMARKS.md, or target/bench/ with --quick).
    #[arg(long, value_name = "FILE.md")]
    output: Option<PathBuf>,
}

/// How long each kind of run is.
#[derive(Clone, Copy, Debug)]
struct Plan {
    reps: usize,
    /// Calls per traced run of an empty function (~2 µs each when traced).
    traced_calls: u64,
    /// Calls per untraced run (~2 ns each).
    untraced_calls: u64,
    /// getppid calls per run (strace makes each one ~20 µs).
    syscalls: u64,
    /// Length of each throughput run.
    load_ms: u64,
    /// Calls of the 20 µs spin.
    spin_calls: u64,
    /// Repetitions of section 1's per-call runs: their differences are tens of ns against
    /// run-to-run swings of ±20 % on this kind of VM, so their medians need more runs.
    call_reps: usize,
    /// Repetitions of the paired runs, each a ratio measured under one machine state.
    pair_reps: usize,
}

const FULL: Plan = Plan {
    reps: 5,
    traced_calls: 300_000,
    untraced_calls: 20_000_000,
    syscalls: 100_000,
    load_ms: 3000,
    spin_calls: 20_000,
    call_reps: 11,
    pair_reps: 5,
};
const QUICK: Plan = Plan {
    reps: 1,
    traced_calls: 30_000,
    untraced_calls: 2_000_000,
    syscalls: 10_000,
    load_ms: 1000,
    spin_calls: 2000,
    call_reps: 1,
    pair_reps: 1,
};

const SPIN_NS: u64 = 20_000;
/// The probed functions: name in the tables, bench-target's `--func` value, path in the binary.
const FUNCS: [(&str, &str, [&str; 3]); 2] = [
    ("push_rbp", "push-rbp", ["bench_target", "funcs", "push_rbp"]),
    ("nop5", "nop5", ["bench_target", "funcs", "nop5"]),
];
const ATTACH_COUNTS: [u32; 4] = [1, 10, 100, 1000];
/// The kernel unregisters uprobes one RCU grace period at a time (~0.1 s each on a busy VM): 100
/// functions take ~20 s to detach, 1,000 minutes. Runs wait this long, then move on.
const DETACH_CAP: Duration = Duration::from_secs(60);
/// The 1,000-function run comes last and is not repeated; its detach finishes in the background.
const DETACH_CAP_1000: Duration = Duration::from_secs(10);
const LOAD_RATES: [(&str, u64); 2] = [("100k calls/s", 100_000), ("1M calls/s", 1_000_000)];
/// The load rows' label suffix for `--latency-only --sample 10`.
pub const SAMPLED_LOAD: &str = "`--latency-only --sample 10`";

struct Ctx {
    bins: Bins,
    scratch: PathBuf,
    plan: Plan,
    notes: Vec<String>,
}

pub fn run(args: &BenchArgs) -> Result<()> {
    let started = Instant::now();
    let mut plan = if args.quick { QUICK } else { FULL };
    if let Some(reps) = args.reps {
        if reps == 0 {
            bail!("--reps must be at least 1");
        }
        plan.reps = reps;
        plan.call_reps = reps;
    }
    if !sys::is_root() {
        bail!("the bench attaches eBPF programs and uprobes: run it as root (sudo -E cargo xtask bench)");
    }
    let root = crate::workspace_root();
    let output = args.output.clone().unwrap_or_else(|| {
        if args.quick { root.join("target/bench/BENCHMARKS-quick.md") } else { root.join("docs/BENCHMARKS.md") }
    });
    build()?;
    let machine = sys::Machine::read();
    let scratch = root.join("target/bench");
    std::fs::create_dir_all(&scratch).with_context(|| format!("creating {}", scratch.display()))?;

    let mut tools = vec![("perf-user", Ok(sys::revision(&root)))];
    let mut tool = |name: &'static str, version_arg: &str| {
        let found = sys::tool(name, version_arg);
        if let Err(why) = &found {
            eprintln!("bench: {why}: its rows are skipped");
        }
        tools.push((name, found.as_ref().map(|(_, v)| v.clone()).map_err(|e| format!("skipped: {e}"))));
        found.ok().map(|(p, _)| p)
    };
    let bpftrace = tool("bpftrace", "--version");
    let strace = tool("strace", "-V");
    let binutils = tool("nm", "--version").and(tool("objdump", "--version"));
    let bin = root.join("target/release");
    let mut ctx = Ctx {
        bins: Bins {
            perf_user: bin.join("perf-user"),
            perf_user_args: Vec::new(),
            bench_target: bin.join("bench-target"),
            bpftrace,
            strace,
        },
        scratch,
        plan,
        notes: Vec::new(),
    };
    let help = perf_user_help(&ctx.bins.perf_user)?;
    let sampling = if help.contains("--sample") {
        Ok(())
    } else {
        Err("not implemented: perf-user attach has no --sample flag".to_string())
    };
    if help.contains("--max-overhead") {
        // The overhead guard would detach the very probes whose cost is being measured.
        ctx.bins.perf_user_args = strings(&["--max-overhead", "1000"]);
    }
    let others = sys::other_tracers();
    if !others.is_empty() {
        let note = format!("other tracers were running when the bench started (numbers may be disturbed): {others}");
        eprintln!("bench: {note}");
        ctx.notes.push(note);
    }

    // First: compiling the benches would disturb the kernel measurements.
    eprintln!("bench: userspace hot paths (cargo bench -p perf-user)");
    let hot_paths = hot_paths::run(args.quick);
    if let Err(e) = &hot_paths {
        eprintln!("bench: hot paths: {e}");
    }
    let calls = FUNCS
        .iter()
        .map(|&(name, arg, path)| call_row(&mut ctx, name, arg, &path, binutils.is_some(), sampling.is_ok()))
        .collect();
    let pairs =
        FUNCS.iter().map(|&(name, arg, path)| pair_row(&mut ctx, name, arg, &path, binutils.is_some())).collect();
    let syscalls = syscall_rows(&mut ctx);
    let (ceiling, loads) = load_rows(&mut ctx);
    let spin = spin_accuracy(&mut ctx);
    let programs = program_costs(&mut ctx);
    // Last: the 1,000-function run leaves the kernel detaching for minutes, so --quick skips it
    // (and the 100-function run, whose detach alone takes ~20 s).
    let attach = ATTACH_COUNTS
        .iter()
        .map(|&n| match n {
            100.. if args.quick => AttachRow { functions: n, result: Err("skipped with --quick".into()) },
            _ => attach_row(&mut ctx, n),
        })
        .collect();

    let results = Results {
        machine,
        loadavg_end: sys::loadavg(),
        quick: args.quick,
        reps: plan.reps,
        elapsed_s: started.elapsed().as_secs_f64(),
        plan: format!(
            "section 1: median of {}, paired runs {}; {} calls per traced run, {} untraced, {} getppid, {} ms per throughput run, {} spins",
            plan.call_reps,
            plan.pair_reps,
            report::thousands(plan.traced_calls as f64),
            report::thousands(plan.untraced_calls as f64),
            report::thousands(plan.syscalls as f64),
            plan.load_ms,
            report::thousands(plan.spin_calls as f64)
        ),
        tools,
        perf_user_flags: ctx.bins.perf_user_args.join(" "),
        calls,
        pairs,
        sampling,
        syscalls,
        ceiling,
        loads,
        attach,
        spin_ns: SPIN_NS,
        spin,
        programs,
        hot_paths,
        notes: ctx.notes,
    };
    let md = report::markdown(&results);
    println!("{md}");
    if let Some(dir) = output.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&output, &md).with_context(|| format!("writing {}", output.display()))?;
    eprintln!("bench: wrote {} ({:.0} s)", output.display(), started.elapsed().as_secs_f64());
    Ok(())
}

/// Release perf-user (which embeds the eBPF object) and bench-target.
fn build() -> Result<()> {
    if !crate::ebpf_object().exists() {
        eprintln!("bench: no eBPF object at {}; building it", crate::ebpf_object().display());
        crate::build_ebpf(&crate::setup()?)?;
    }
    crate::status(
        Command::new(crate::cargo())
            .args(["build", "--release", "-p", "perf-user", "-p", "bench-target"])
            .current_dir(crate::workspace_root()),
    )
    .context("building perf-user and bench-target (release)")
}

/// `perf-user attach --help`: which optional flags (`--sample`, `--max-overhead`) this build has.
fn perf_user_help(perf_user: &Path) -> Result<String> {
    let help = Command::new(perf_user)
        .args(["attach", "--help"])
        .output()
        .with_context(|| format!("running {} attach --help", perf_user.display()))?;
    Ok(String::from_utf8_lossy(&help.stdout).into_owned())
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| (*s).to_string()).collect()
}

/// One configuration of an interleaved measurement: a label, bench-target's arguments, and the
/// tracer (or why it is skipped).
struct Config {
    label: String,
    target: Vec<String>,
    tracer: Result<Tracer, String>,
    go: bool,
    detach_cap: Option<Duration>,
    /// Rejects a run whose probes did not see what the target did (it then counts as failed).
    check: Option<Check>,
}

type Check = Box<dyn Fn(&Outcome) -> Result<(), String>>;

impl Config {
    fn new(label: impl Into<String>, target: Vec<String>, tracer: Result<Tracer, String>) -> Config {
        Config { label: label.into(), target, tracer, go: true, detach_cap: None, check: None }
    }

    fn checked(mut self, check: Check) -> Config {
        self.check = Some(check);
        self
    }
}

/// perf-user's kernel counter for `symbol` must equal the calls the target made of it (half of
/// them in a paired run).
fn counted_every_call(symbol: String) -> Check {
    Box::new(move |o| {
        let calls = o.target.map_or(0, |t| if t.pair_ns.is_some() { t.calls / 2 } else { t.calls });
        let counted = export_field(o, &symbol, "count").ok_or_else(|| format!("no {symbol} in the report"))?;
        if counted as u64 == calls {
            Ok(())
        } else {
            Err(format!("perf-user counted {counted} of {calls} calls of {symbol}"))
        }
    })
}

/// bpftrace's histogram must hold (nearly) every call.
fn bpftrace_saw_every_call(o: &Outcome) -> Result<(), String> {
    let calls = o.target.map_or(0, |t| t.calls);
    let seen = bpftrace_hist(o).iter().map(|(count, _)| count).sum::<u64>();
    if seen as f64 >= calls as f64 * 0.99 {
        Ok(())
    } else {
        Err(format!("bpftrace's histogram holds {seen} of {calls} calls: its probes did not fire"))
    }
}

/// Runs every configuration `reps` times, interleaved (A B C, A B C, …) so that drift in the
/// machine's load spreads evenly; returns each configuration's outcomes.
fn interleaved(ctx: &mut Ctx, configs: &[Config]) -> Vec<Vec<Result<Outcome, String>>> {
    repeated(ctx, configs, ctx.plan.reps)
}

fn repeated(ctx: &mut Ctx, configs: &[Config], reps: usize) -> Vec<Vec<Result<Outcome, String>>> {
    let mut all: Vec<Vec<Result<Outcome, String>>> = configs.iter().map(|_| Vec::new()).collect();
    for rep in 0..reps {
        for (i, c) in configs.iter().enumerate() {
            let outcome = match &c.tracer {
                Err(why) => Err(why.clone()),
                Ok(tracer) => {
                    let label = format!("{}-{rep}", c.label.replace([' ', '/', '(', ')'], "_"));
                    let r = run_once(&ctx.bins, &c.target, tracer, c.go, c.detach_cap, &ctx.scratch, &label).and_then(
                        |o| match &c.check {
                            Some(check) => check(&o).map(|()| o).map_err(anyhow::Error::msg),
                            None => Ok(o),
                        },
                    );
                    if let Ok(o) = &r {
                        note_warnings(ctx, o);
                    }
                    match &r {
                        Ok(o) => eprintln!("bench: [{}/{reps}] {:<32} {}", rep + 1, c.label, summary(o)),
                        Err(e) => {
                            eprintln!("bench: [{}/{reps}] {} FAILED: {e:#}", rep + 1, c.label);
                            ctx.notes.push(format!("{} (repetition {}) failed: {e:#}", c.label, rep + 1));
                        }
                    }
                    r.map_err(|e| format!("failed: {}", first_line(&format!("{e:#}"))))
                }
            };
            all[i].push(outcome);
        }
    }
    all
}

/// perf-user's report warnings (single-stepped probes, the overhead guard, …), once each.
fn note_warnings(ctx: &mut Ctx, o: &Outcome) {
    let warnings = o.export.as_ref().and_then(|e| e.get("warnings")).and_then(|w| w.as_array());
    for w in warnings.into_iter().flatten().filter_map(|w| w.as_str()) {
        let note = format!("perf-user warned: {w}");
        if !ctx.notes.contains(&note) {
            ctx.notes.push(note);
        }
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").chars().take(160).collect()
}

fn summary(o: &Outcome) -> String {
    let mut s = String::new();
    if let Some(t) = o.target {
        s.push_str(&format!("{:.1} ns/call ({}/s)", t.ns_per_call, report::thousands(t.calls_per_sec)));
    }
    if let Some(a) = o.attach_s {
        s.push_str(&format!(" attach {a:.3} s"));
    }
    if let Some(c) = o.tracer_cpu_pct {
        s.push_str(&format!(" tracer cpu {c:.1} %"));
    }
    if let Some(d) = o.detach_s {
        s.push_str(&format!(" detach {d:.3} s"));
    }
    s
}

/// `f` of every outcome that has it; the first error if none does.
fn runs_of(outcomes: &[Result<Outcome, String>], f: impl Fn(&Outcome) -> Option<f64>) -> stats::Runs {
    let values: Vec<f64> = outcomes.iter().filter_map(|o| o.as_ref().ok().and_then(&f)).collect();
    if values.is_empty() {
        return Err(outcomes
            .iter()
            .find_map(|o| o.as_ref().err().cloned())
            .unwrap_or_else(|| "failed: no value measured".into()));
    }
    Ok(values)
}

/// The median of `f` over the outcomes that have it; the first error if none does.
fn median_of(outcomes: &[Result<Outcome, String>], f: impl Fn(&Outcome) -> Option<f64>) -> Cell {
    stats::med(&runs_of(outcomes, f))
}

fn ns_per_call(o: &Outcome) -> Option<f64> {
    o.target.map(|t| t.ns_per_call)
}

/// `functions[]` entry of perf-user's report for `symbol`.
fn export_function<'a>(o: &'a Outcome, symbol: &str) -> Option<&'a serde_json::Value> {
    o.export
        .as_ref()?
        .get("functions")?
        .as_array()?
        .iter()
        .find(|f| f.get("symbol").and_then(|s| s.as_str()) == Some(symbol))
}

fn export_field(o: &Outcome, symbol: &str, field: &str) -> Option<f64> {
    export_function(o, symbol)?.get(field)?.as_f64()
}

/// bpftrace's `@h` histogram as (count, bucket) pairs, e.g. `(296418, "[512, 1K)")`.
fn bpftrace_hist(o: &Outcome) -> Vec<(u64, String)> {
    o.tracer_output
        .iter()
        .skip_while(|l| !l.starts_with("@h:"))
        .filter_map(|l| {
            let (bucket, rest) = l.split_once(')')?;
            let count: u64 = rest.split_whitespace().next()?.parse().ok()?;
            Some((count, format!("{bucket})")))
        })
        .collect()
}

/// bpftrace's fullest `@h` bucket.
fn bpftrace_mode_bucket(o: &Outcome) -> Option<String> {
    bpftrace_hist(o).into_iter().max_by_key(|(count, _)| *count).map(|(_, b)| b)
}

/// Section 1 (and the empty-function half of 6): one function untraced, at the floor, under
/// perf-user, under bpftrace (and sampled, if perf-user can).
fn call_row(ctx: &mut Ctx, name: &'static str, arg: &str, path: &[&str], binutils: bool, sampling: bool) -> CallRow {
    let bin = ctx.bins.bench_target.clone();
    let glob = path.join("::");
    let symbol = raw_symbol(&bin, path, binutils);
    let first_insn = symbol
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|s| sys::first_instruction(&bin, s).map_err(|e| format!("{e:#}")));
    let expected = if name == "nop5" { "0f 1f 44 00 00" } else { "55" };
    match &first_insn {
        Ok(insn) if insn.starts_with(expected) => {}
        Ok(insn) => ctx
            .notes
            .push(format!("{name} starts with `{insn}`, not `{expected}`: its row measures another probe site")),
        Err(e) => ctx.notes.push(format!("could not disassemble {name}: {e}")),
    }
    let bpftrace = bpftrace_latency(&ctx.bins, &symbol);
    let traced = strings(&["calls", "--func", arg, "--iterations", &ctx.plan.traced_calls.to_string()]);
    let untraced = strings(&["calls", "--func", arg, "--iterations", &ctx.plan.untraced_calls.to_string()]);
    let perf_user = |extra: &[&str]| {
        let mut args = strings(&["--func", &glob]);
        args.extend(strings(extra));
        Ok(Tracer::PerfUser(args))
    };
    // Empty programs attached as each timed mode attaches: the session alone (latency-only), the
    // session with the tracepoints attribution needs (`--syscalls` gives empty programs those),
    // and the entry + return pair of kernels without sessions, with those tracepoints.
    let mut configs = vec![
        Config::new(format!("{name} untraced"), untraced, Ok(Tracer::None)),
        Config::new(format!("{name} floor (empty)"), traced.clone(), perf_user(&["--probe-mode", "empty"])),
        Config::new(
            format!("{name} floor + tracepoints"),
            traced.clone(),
            perf_user(&["--probe-mode", "empty", "--syscalls"]),
        ),
        Config::new(format!("{name} perf-user"), traced.clone(), perf_user(&[]))
            .checked(counted_every_call(glob.clone())),
        Config::new(format!("{name} bpftrace"), traced.clone(), bpftrace).checked(Box::new(bpftrace_saw_every_call)),
        Config::new(
            format!("{name} pair floor + tracepoints"),
            traced.clone(),
            perf_user(&["--probe-mode", "empty", "--attach-mode", "multi", "--syscalls"]),
        ),
        Config::new(format!("{name} perf-user pair"), traced.clone(), perf_user(&["--attach-mode", "multi"]))
            .checked(counted_every_call(glob.clone())),
    ];
    configs.push(
        Config::new(format!("{name} latency-only"), traced.clone(), perf_user(&["--latency-only"]))
            .checked(counted_every_call(glob.clone())),
    );
    configs.push(Config::new(
        format!("{name} latency-only sampled"),
        traced.clone(),
        perf_user(&["--latency-only", "--sample", "10"]),
    ));
    // The least any timing adds: the empty session program reading the clock at entry and return.
    configs.push(Config::new(format!("{name} clock floor"), traced.clone(), perf_user(&["--probe-mode", "clock"])));
    if sampling {
        // Sampled floors: the empty session program making the same 1-in-10 draw, so the sampled
        // runs are judged against what the kernel charges for sampling at all.
        configs.push(Config::new(
            format!("{name} sampled floor"),
            traced.clone(),
            perf_user(&["--probe-mode", "empty", "--sample", "10"]),
        ));
        configs.push(Config::new(
            format!("{name} sampled floor + tracepoints"),
            traced.clone(),
            perf_user(&["--probe-mode", "empty", "--sample", "10", "--syscalls"]),
        ));
        configs.push(Config::new(format!("{name} perf-user sampled"), traced, perf_user(&["--sample", "10"])));
    }
    let out = repeated(ctx, &configs, ctx.plan.call_reps);
    // The sampled configurations exist only where perf-user can sample.
    let sampled_runs = |i: usize| out.get(i).map_or_else(|| Err("not implemented".into()), |o| runs_of(o, ns_per_call));
    CallRow {
        func: name,
        first_insn,
        untraced: runs_of(&out[0], ns_per_call),
        floor: runs_of(&out[1], ns_per_call),
        floor_tracepoints: runs_of(&out[2], ns_per_call),
        perf_user: runs_of(&out[3], ns_per_call),
        bpftrace: runs_of(&out[4], ns_per_call),
        pair_floor: runs_of(&out[5], ns_per_call),
        pair: runs_of(&out[6], ns_per_call),
        latency: runs_of(&out[7], ns_per_call),
        latency_sampled: runs_of(&out[8], ns_per_call),
        clock_floor: runs_of(&out[9], ns_per_call),
        sampled_floor: sampled_runs(10),
        sampled_floor_tracepoints: sampled_runs(11),
        sampled: sampled_runs(12),
        p50_ns: median_of(&out[3], |o| export_field(o, &glob, "p50_ns")),
        p99_ns: median_of(&out[3], |o| export_field(o, &glob, "p99_ns")),
        bpftrace_bucket: out[4].iter().flatten().find_map(bpftrace_mode_bucket).ok_or_else(|| {
            out[4].iter().find_map(|o| o.as_ref().err().cloned()).unwrap_or_else(|| "no histogram printed".into())
        }),
    }
}

/// The raw (mangled) symbol of bench-target's function at `path`, which bpftrace needs.
fn raw_symbol(bin: &Path, path: &[&str], binutils: bool) -> Result<String, String> {
    if binutils {
        sys::mangled_symbol(bin, path).map_err(|e| format!("{e:#}"))
    } else {
        Err("nm/objdump not installed".into())
    }
}

/// bpftrace's usual latency one-liner on bench-target's function whose raw symbol is `symbol`.
fn bpftrace_latency(bins: &Bins, symbol: &Result<String, String>) -> Result<Tracer, String> {
    match (&bins.bpftrace, symbol) {
        (None, _) => Err("skipped: bpftrace not installed".to_string()),
        (_, Err(e)) => Err(format!("skipped: no raw symbol ({e})")),
        (Some(_), Ok(sym)) => {
            let b = bins.bench_target.display();
            Ok(Tracer::Bpftrace(format!(
                "uprobe:{b}:{sym} {{ @s[tid] = nsecs; }}\n\
                 uretprobe:{b}:{sym} /@s[tid]/ {{ @h = hist(nsecs - @s[tid]); delete(@s[tid]); }}"
            )))
        }
    }
}

/// Section 1's paired runs: `bench-target pair` alternates the function and its twin in blocks
/// of 100 calls, timing each, with empty programs on the function and the measured mode on the
/// twin (bpftrace on the function for the comparison with it). Machine noise then hits both sides
/// of a ratio alike; each run gives one ratio of added costs.
fn pair_row(ctx: &mut Ctx, name: &'static str, arg: &str, path: &[&str], binutils: bool) -> PairRow {
    let glob = path.join("::");
    let twin = format!("{glob}_twin");
    let symbol = raw_symbol(&ctx.bins.bench_target, path, binutils);
    let bpftrace = bpftrace_latency(&ctx.bins, &symbol);
    let pair = |calls: u64| strings(&["pair", "--func", arg, "--iterations", &calls.to_string()]);
    let (traced, untraced) = (pair(ctx.plan.traced_calls), pair(ctx.plan.untraced_calls / 2));
    let perf_user = |func: &str, extra: &[&str]| {
        let mut args = strings(&["--func", func]);
        args.extend(strings(extra));
        Tracer::PerfUser(args)
    };
    let floor_and = |extra: &[&str]| {
        Ok(Tracer::Pair(Box::new(perf_user(&glob, &["--probe-mode", "empty"])), Box::new(perf_user(&twin, extra))))
    };
    let configs = [
        Config::new(format!("{name} pair untraced"), untraced, Ok(Tracer::None)),
        Config::new(format!("{name} pair floor/floor"), traced.clone(), floor_and(&["--probe-mode", "empty"])),
        Config::new(format!("{name} pair floor/clock"), traced.clone(), floor_and(&["--probe-mode", "clock"])),
        Config::new(format!("{name} pair floor/latency-only"), traced.clone(), floor_and(&["--latency-only"]))
            .checked(counted_every_call(twin.clone())),
        Config::new(format!("{name} pair floor/perf-user"), traced.clone(), floor_and(&[]))
            .checked(counted_every_call(twin.clone())),
        Config::new(
            format!("{name} pair bpftrace/latency-only sampled"),
            traced,
            bpftrace
                .map(|b| Tracer::Pair(Box::new(b), Box::new(perf_user(&twin, &["--latency-only", "--sample", "10"])))),
        ),
    ];
    let out = repeated(ctx, &configs, ctx.plan.pair_reps);
    let side = |o: &Outcome, twin: bool| o.target?.pair_ns.map(|(f, t)| if twin { t } else { f });
    let untraced_first = median_of(&out[0], |o| side(o, false));
    let untraced_twin = median_of(&out[0], |o| side(o, true));
    // Each run's (twin − its untraced cost) / (function − its untraced cost).
    let ratios = |outcomes: &[Result<Outcome, String>]| match (&untraced_first, &untraced_twin) {
        (Ok(uf), Ok(ut)) => runs_of(outcomes, |o| {
            let (f, t) = o.target?.pair_ns?;
            (f - uf > 0.0).then(|| (t - ut) / (f - uf))
        }),
        (Err(e), _) | (_, Err(e)) => Err(e.clone()),
    };
    PairRow {
        func: name,
        same: ratios(&out[1]),
        clock: ratios(&out[2]),
        latency: ratios(&out[3]),
        perf_user: ratios(&out[4]),
        latency_sampled_vs_bpftrace: ratios(&out[5]),
    }
}

/// Section 2: the getppid loop untraced and under perf-user, bpftrace and strace.
fn syscall_rows(ctx: &mut Ctx) -> Vec<SyscallRow> {
    let target = strings(&["syscalls", "--iterations", &ctx.plan.syscalls.to_string()]);
    let bpftrace = match &ctx.bins.bpftrace {
        None => Err("skipped: bpftrace not installed".to_string()),
        Some(_) => sys::ensure_tracefs().map_err(|e| format!("skipped: {e}")).map(|()| {
            Tracer::Bpftrace("tracepoint:raw_syscalls:sys_enter /pid == {pid}/ { @[args->id] = count(); }".into())
        }),
    };
    let strace =
        if ctx.bins.strace.is_some() { Ok(Tracer::Strace) } else { Err("skipped: strace not installed".into()) };
    let rows: [(&'static str, Result<Tracer, String>); 4] = [
        ("untraced", Ok(Tracer::None)),
        ("perf-user --syscalls", Ok(Tracer::PerfUser(strings(&["--syscalls"])))),
        ("bpftrace (count by id)", bpftrace),
        ("strace -c -f", strace),
    ];
    let configs: Vec<Config> = rows
        .iter()
        .map(|(label, tracer)| Config::new(format!("syscalls {label}"), target.clone(), tracer.clone()))
        .collect();
    let out = interleaved(ctx, &configs);
    rows.iter()
        .zip(&out)
        .map(|((label, _), o)| SyscallRow {
            tracer: label,
            ns_per_call: median_of(o, ns_per_call),
            tracer_cpu_pct: median_of(o, |o| o.tracer_cpu_pct),
        })
        .collect()
}

/// Sections 3 and 4: perf-user on `nop5` flat out (the ceiling), then at the paced rates the
/// ceiling allows.
fn load_rows(ctx: &mut Ctx) -> (LoadRow, Vec<LoadRow>) {
    let glob = FUNCS[1].2.join("::");
    let load = |ctx: &mut Ctx, label: &str, rate: u64, flags: &[&str]| -> Result<Load, String> {
        let target = strings(&[
            "calls",
            "--func",
            "nop5",
            "--iterations",
            "1000000000000",
            "--duration-ms",
            &ctx.plan.load_ms.to_string(),
            "--rate",
            &rate.to_string(),
        ]);
        let mut args = strings(&["--func", &glob]);
        args.extend(strings(flags));
        let config = Config::new(label, target, Ok(Tracer::PerfUser(args)));
        let out = interleaved(ctx, &[config]).remove(0);
        let mut lost: Vec<(String, u64)> = Vec::new();
        let mut exemplars_retired = 0;
        let mut uncounted = 0i64;
        for o in out.iter().flatten() {
            if let Some(map) = o.export.as_ref().and_then(|e| e.get("lost")).and_then(|l| l.as_object()) {
                for (k, v) in map {
                    let v = v.as_u64().unwrap_or(0);
                    if k == "exemplars_evicted" {
                        exemplars_retired += v;
                        continue;
                    }
                    match lost.iter_mut().find(|(name, _)| name == k) {
                        Some(entry) => entry.1 += v,
                        None if v > 0 => lost.push((k.clone(), v)),
                        None => {}
                    }
                }
            }
            // `calls`: every call the kernel counted, timed or sampled out.
            if let (Some(t), Some(counted)) = (o.target, export_field(o, &glob, "calls")) {
                uncounted += t.calls as i64 - counted as i64;
            }
        }
        Ok(Load {
            reached_per_s: median_of(&out, |o| o.target.map(|t| t.calls_per_sec))?,
            cpu_pct: median_of(&out, |o| o.tracer_cpu_pct)?,
            vmhwm_kb: median_of(&out, |o| o.tracer_vmhwm_kb.map(|k| k as f64))? as u64,
            lost,
            exemplars_retired,
            uncounted,
        })
    };
    let ceiling = LoadRow { label: "flat out (ceiling)".into(), result: load(ctx, "nop5 flat out", 0, &[]) };
    let reached = ceiling.result.as_ref().map(|c| c.reached_per_s).ok();
    let mut loads: Vec<LoadRow> = LOAD_RATES
        .iter()
        .map(|&(label, rate)| {
            let result = match reached {
                // Within 2 % of the target counts as reachable: pacing then holds the rate.
                Some(max) if max >= rate as f64 * 0.98 => load(ctx, &format!("nop5 at {label}"), rate, &[]),
                Some(max) => Err(format!(
                    "not reachable here: traced calls top out at {}/s (see the ceiling row)",
                    report::thousands(max)
                )),
                None => Err("skipped: the ceiling run failed".into()),
            };
            LoadRow { label: label.into(), result }
        })
        .collect();
    // The cheapest mode that still counts every call: a sampled-out call costs its entry trap.
    let sampled = ["--latency-only", "--sample", "10"];
    let flat = load(ctx, "nop5 flat out, latency-only sampled", 0, &sampled);
    let result = match &flat {
        Ok(c) if c.reached_per_s >= 1e6 * 0.98 => load(ctx, "nop5 at 1M, latency-only sampled", 1_000_000, &sampled),
        Ok(c) => Err(format!("not reachable here: calls top out at {}/s", report::thousands(c.reached_per_s))),
        Err(_) => Err("skipped: the ceiling run failed".into()),
    };
    loads.push(LoadRow { label: format!("flat out, {}", SAMPLED_LOAD), result: flat });
    loads.push(LoadRow { label: format!("1M calls/s, {}", SAMPLED_LOAD), result });
    (ceiling, loads)
}

/// Section 5: perf-user start to `attached N probes` for N of bench-target's 1,000 functions.
fn attach_row(ctx: &mut Ctx, n: u32) -> AttachRow {
    // f0000 … f0999: "f0000" is one function, "f000" ten, "f00" a hundred, "f" all. The trailing
    // `*` also takes in ThinLTO's `.llvm.NNN` suffix, which these symbols may carry.
    let glob = match n {
        1 => "bench_target::many::f0000*",
        10 => "bench_target::many::f000*",
        100 => "bench_target::many::f00*",
        _ => "bench_target::many::f*",
    };
    let mut config = Config::new(
        format!("attach {n} function{}", if n == 1 { "" } else { "s" }),
        strings(&["calls", "--func", "many"]),
        Ok(Tracer::PerfUser(strings(&["--func", glob]))),
    );
    config.go = false;
    config.detach_cap = Some(if n >= 1000 { DETACH_CAP_1000 } else { DETACH_CAP });
    // Detaching 100 functions takes ~20 s: three runs are enough for attach times.
    let reps = if n >= 1000 { 1 } else { ctx.plan.reps.min(3) };
    let out = repeated(ctx, &[config], reps).remove(0);
    let result = (|| {
        let probes = out.iter().flatten().find_map(|o| o.probes).ok_or("no `attached N probes` line")?;
        let detach_over_s = out.iter().flatten().find_map(|o| o.detach_over_s);
        Ok(Attach {
            probes,
            attach_s: median_of(&out, |o| o.attach_s)?,
            detach_s: if detach_over_s.is_some() { None } else { median_of(&out, |o| o.detach_s).ok() },
            detach_over_s,
            runs: out.iter().flatten().count(),
        })
    })()
    .map_err(|e: String| e);
    if let Ok(a) = &result
        && a.probes != 4 + u64::from(n)
    {
        ctx.notes.push(format!(
            "attach {n}: {} probes, expected {} (4 tracepoints + one session probe per function)",
            a.probes,
            4 + n
        ));
    }
    AttachRow { functions: n, result }
}

/// Section 6: perf-user's p50 and p99 of a 20 µs spin.
fn spin_accuracy(ctx: &mut Ctx) -> Result<Spin, String> {
    let glob = "bench_target::funcs::spin";
    let target = strings(&[
        "calls",
        "--func",
        "spin",
        "--spin-ns",
        &SPIN_NS.to_string(),
        "--iterations",
        &ctx.plan.spin_calls.to_string(),
    ]);
    let config = Config::new("spin 20 µs perf-user", target, Ok(Tracer::PerfUser(strings(&["--func", glob]))));
    let out = interleaved(ctx, &[config]).remove(0);
    Ok(Spin {
        p50_ns: median_of(&out, |o| export_field(o, glob, "p50_ns"))?,
        p99_ns: median_of(&out, |o| export_field(o, glob, "p99_ns"))?,
    })
}

/// Section 7: each BPF program's run time per configuration, with the kernel's BPF statistics on
/// for these runs only (they slow every program down).
fn program_costs(ctx: &mut Ctx) -> Result<Vec<report::ProgramCost>, String> {
    if sys::tool("bpftool", "version").is_err() {
        return Err("skipped: bpftool not installed".into());
    }
    let was_on = sys::bpf_stats_enabled();
    sys::set_bpf_stats(true).map_err(|e| format!("skipped: {e:#}"))?;
    let traced = strings(&["calls", "--func", "push-rbp", "--iterations", &ctx.plan.traced_calls.to_string()]);
    let glob = "bench_target::funcs::push_rbp";
    let perf_user = |extra: &[&str]| {
        let mut args = strings(&["--func", glob]);
        args.extend(strings(extra));
        Ok(Tracer::PerfUser(args))
    };
    let labels = [
        report::EMPTY_PROGRAMS,
        report::CLOCK_PROGRAMS,
        "perf-user",
        "perf-user --attach-mode multi",
        "perf-user --sample 10",
        "perf-user --latency-only",
    ];
    let configs = [
        Config::new("programs: floor", traced.clone(), perf_user(&["--probe-mode", "empty"])),
        Config::new("programs: clock floor", traced.clone(), perf_user(&["--probe-mode", "clock"])),
        Config::new("programs: perf-user", traced.clone(), perf_user(&[])),
        Config::new("programs: pair", traced.clone(), perf_user(&["--attach-mode", "multi"])),
        Config::new("programs: sampled", traced.clone(), perf_user(&["--sample", "10"])),
        Config::new("programs: latency-only", traced, perf_user(&["--latency-only"])),
    ];
    let out = interleaved(ctx, &configs);
    if !was_on {
        let _ = sys::set_bpf_stats(false);
    }
    let mut rows = Vec::new();
    for (label, outcomes) in labels.into_iter().zip(&out) {
        let mut names: Vec<String> =
            outcomes.iter().flatten().flat_map(|o| o.prog_stats.iter().map(|p| p.0.clone())).collect();
        names.sort();
        names.dedup();
        for name in names {
            let ns = median_of(outcomes, |o| o.prog_stats.iter().find(|p| p.0 == name).map(|p| p.2));
            let per_call = median_of(outcomes, |o| {
                let calls = o.target?.calls as f64;
                o.prog_stats.iter().find(|p| p.0 == name).map(|p| p.1 as f64 / calls)
            });
            if let (Ok(ns_per_run), Ok(runs_per_call)) = (ns, per_call)
                && runs_per_call >= 0.01
            {
                rows.push(report::ProgramCost { config: label, program: name, runs_per_call, ns_per_run });
            }
        }
    }
    if rows.is_empty() {
        return Err(out
            .iter()
            .flatten()
            .find_map(|o| o.as_ref().err().cloned())
            .unwrap_or_else(|| "no program ran".into()));
    }
    Ok(rows)
}
