//! Section 1's separate runs (and the empty-function half of section 6): each probed function of
//! bench-target untraced, under the floors, perf-user's modes and bpftrace, in interleaved rounds.

use std::path::Path;

use super::{
    readings::{
        bpftrace_mode_bucket, bpftrace_saw_every_call, counted_every_call, export_field, first_error, median_of,
        ns_per_call, runs_of,
    },
    results::CallRow,
    rounds::{Config, Ctx, Outcomes, repeated, strings},
    run::Bins,
    sys,
    tracer::Tracer,
};

/// The probed functions: name in the tables, bench-target's `--func` value, path in the binary.
pub const FUNCS: [(&str, &str, [&str; 3]); 2] = [
    ("push_rbp", "push-rbp", ["bench_target", "funcs", "push_rbp"]),
    ("nop5", "nop5", ["bench_target", "funcs", "nop5"]),
];

/// One row per probed function.
pub fn measure(ctx: &mut Ctx, binutils: bool, sampling: bool) -> Vec<CallRow> {
    FUNCS.iter().map(|&(name, arg, path)| call_row(ctx, name, arg, &path, binutils, sampling)).collect()
}

/// One function untraced, at the floor, under perf-user, under bpftrace (and sampled, if perf-user
/// can).
fn call_row(ctx: &mut Ctx, name: &'static str, arg: &str, path: &[&str], binutils: bool, sampling: bool) -> CallRow {
    let glob = path.join("::");
    let symbol = raw_symbol(&ctx.bins.bench_target, path, binutils);
    let first_insn = first_instruction(ctx, name, &symbol);
    let bpftrace = bpftrace_latency(&ctx.bins, &symbol);
    let configs = configs(ctx, name, arg, &glob, bpftrace, sampling);
    let out = repeated(ctx, &configs, ctx.plan.call_reps);
    row(name, first_insn, &glob, &out)
}

/// The function's first instruction as objdump shows it; a note when it is not the probe site the
/// row is meant to measure.
fn first_instruction(ctx: &mut Ctx, name: &str, symbol: &Result<String, String>) -> Result<String, String> {
    let bin = &ctx.bins.bench_target;
    let first_insn = symbol
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|s| sys::first_instruction(bin, s).map_err(|e| format!("{e:#}")));
    let expected = if name == "nop5" { "0f 1f 44 00 00" } else { "55" };
    match &first_insn {
        Ok(insn) if insn.starts_with(expected) => {}
        Ok(insn) => ctx
            .notes
            .push(format!("{name} starts with `{insn}`, not `{expected}`: its row measures another probe site")),
        Err(e) => ctx.notes.push(format!("could not disassemble {name}: {e}")),
    }
    first_insn
}

/// The configurations, in the order `row` reads them.
fn configs(
    ctx: &Ctx,
    name: &str,
    arg: &str,
    glob: &str,
    bpftrace: Result<Tracer, String>,
    sampling: bool,
) -> Vec<Config> {
    let traced = strings(&["calls", "--func", arg, "--iterations", &ctx.plan.traced_calls.to_string()]);
    let untraced = strings(&["calls", "--func", arg, "--iterations", &ctx.plan.untraced_calls.to_string()]);
    let perf_user = |extra: &[&str]| Ok(Tracer::perf_user(glob, extra));
    let config = |label: &str, extra: &[&str]| Config::new(format!("{name} {label}"), traced.clone(), perf_user(extra));
    let counted = |c: Config| c.checked(counted_every_call(glob.to_string()));
    // Empty programs attached as each timed mode attaches: the session alone (latency-only), the
    // session with the tracepoints attribution needs (`--syscalls` gives empty programs those),
    // and the entry + return pair of kernels without sessions, with those tracepoints.
    let mut configs = vec![
        Config::new(format!("{name} untraced"), untraced, Ok(Tracer::None)),
        config("floor (empty)", &["--probe-mode", "empty"]),
        config("floor + tracepoints", &["--probe-mode", "empty", "--syscalls"]),
        counted(config("perf-user", &[])),
        Config::new(format!("{name} bpftrace"), traced.clone(), bpftrace).checked(Box::new(bpftrace_saw_every_call)),
        config("pair floor + tracepoints", &["--probe-mode", "empty", "--attach-mode", "multi", "--syscalls"]),
        counted(config("perf-user pair", &["--attach-mode", "multi"])),
        counted(config("latency-only", &["--latency-only"])),
        config("latency-only sampled", &["--latency-only", "--sample", "10"]),
        // The least any timing adds: the empty session program reading the clock at entry and return.
        config("clock floor", &["--probe-mode", "clock"]),
    ];
    if sampling {
        // Sampled floors: the empty session program making the same 1-in-10 draw, so the sampled
        // runs are judged against what the kernel charges for sampling at all.
        configs.push(config("sampled floor", &["--probe-mode", "empty", "--sample", "10"]));
        configs.push(config("sampled floor + tracepoints", &["--probe-mode", "empty", "--sample", "10", "--syscalls"]));
        configs.push(config("perf-user sampled", &["--sample", "10"]));
    }
    configs
}

/// The row from the configurations' outcomes, in `configs`' order.
fn row(name: &'static str, first_insn: Result<String, String>, glob: &str, out: &Outcomes) -> CallRow {
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
        p50_ns: median_of(&out[3], |o| export_field(o, glob, "p50_ns")),
        p99_ns: median_of(&out[3], |o| export_field(o, glob, "p99_ns")),
        bpftrace_bucket: out[4]
            .iter()
            .flatten()
            .find_map(bpftrace_mode_bucket)
            .ok_or_else(|| first_error(&out[4]).unwrap_or_else(|| "no histogram printed".into())),
    }
}

/// The raw (mangled) symbol of bench-target's function at `path`, which bpftrace needs.
pub fn raw_symbol(bin: &Path, path: &[&str], binutils: bool) -> Result<String, String> {
    if binutils {
        sys::mangled_symbol(bin, path).map_err(|e| format!("{e:#}"))
    } else {
        Err("nm/objdump not installed".into())
    }
}

/// bpftrace's usual latency one-liner on bench-target's function whose raw symbol is `symbol`.
pub fn bpftrace_latency(bins: &Bins, symbol: &Result<String, String>) -> Result<Tracer, String> {
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
