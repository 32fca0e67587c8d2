//! Section 2: the getppid loop untraced and under perf-user `--syscalls`, bpftrace's counting
//! script and strace, interleaved; and what the loop pays when the tracer traces another process
//! (perf-user's default and `--latency-only`, bpftrace's latency script), the tax every process on
//! the machine pays while a tracer runs.

use super::{
    calls::{FUNCS, bpftrace_latency, raw_symbol},
    readings::{median_of, ns_per_call},
    results::SyscallRow,
    rounds::{Config, Ctx, interleaved, strings},
    sys,
    tracer::Tracer,
};

/// The row of perf-user's default mode on another process: the syscall tax it puts on the machine.
pub const ELSEWHERE_DEFAULT: &str = "perf-user default, tracing another process";

pub fn measure(ctx: &mut Ctx, binutils: bool) -> Vec<SyscallRow> {
    let target = strings(&["syscalls", "--iterations", &ctx.plan.syscalls.to_string()]);
    let bpftrace = match &ctx.bins.bpftrace {
        None => Err("skipped: bpftrace not installed".to_string()),
        Some(_) => sys::ensure_tracefs().map_err(|e| format!("skipped: {e}")).map(|()| {
            Tracer::Bpftrace("tracepoint:raw_syscalls:sys_enter /pid == {pid}/ { @[args->id] = count(); }".into())
        }),
    };
    let strace =
        if ctx.bins.strace.is_some() { Ok(Tracer::Strace) } else { Err("skipped: strace not installed".into()) };
    // The idle process elsewhere runs bench-target's push_rbp (never called there).
    let (_, _, path) = FUNCS[0];
    let glob = path.join("::");
    let elsewhere = |t: Result<Tracer, String>| t.map(|t| Tracer::Elsewhere(Box::new(t)));
    let bpftrace_elsewhere =
        elsewhere(bpftrace_latency(&ctx.bins, &raw_symbol(&ctx.bins.bench_target, &path, binutils)));
    let rows: [(&'static str, Result<Tracer, String>); 9] = [
        ("untraced", Ok(Tracer::None)),
        ("perf-user --syscalls", Ok(Tracer::PerfUser(strings(&["--syscalls"])))),
        ("perf-user default, syscalls outside traced calls", Ok(Tracer::perf_user(&glob, &[]))),
        ("bpftrace (count by id)", bpftrace),
        ("strace -c -f", strace),
        (ELSEWHERE_DEFAULT, elsewhere(Ok(Tracer::perf_user(&glob, &[])))),
        (
            "perf-user --blocked-syscalls-only, tracing another process",
            elsewhere(Ok(Tracer::perf_user(&glob, &["--blocked-syscalls-only"]))),
        ),
        (
            "perf-user --latency-only, tracing another process",
            elsewhere(Ok(Tracer::perf_user(&glob, &["--latency-only"]))),
        ),
        ("bpftrace latency script, tracing another process", bpftrace_elsewhere),
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
