//! Section 2: the getppid loop untraced and under perf-user `--syscalls`, bpftrace's counting
//! script and strace, interleaved.

use super::{
    readings::{median_of, ns_per_call},
    results::SyscallRow,
    rounds::{Config, Ctx, interleaved, strings},
    sys,
    tracer::Tracer,
};

pub fn measure(ctx: &mut Ctx) -> Vec<SyscallRow> {
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
