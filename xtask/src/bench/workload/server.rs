//! Section 9's real server: nginx under wrk in a latency-bound regime (one connection) and a
//! CPU-bound one (many), each untraced and under every tracer, the same two functions traced.

use std::path::Path;

use anyhow::{Context, Result, bail};

use super::{
    MachineCpu, ModeRuns, nginx,
    nginx::{FUNCTIONS, Nginx},
    per_op_us, rounds, wrk,
};
use crate::bench::{
    readings::{bpftrace_map_hist, function_field},
    results::{Mode, Server, WorkRun, Workload},
    rounds::{Ctx, note_warnings},
    run::Bins,
    sys,
    tracer::{self, Stopped, Tracer},
};

/// The regimes: name, short name and wrk's connections. One connection waits for each answer
/// (latency-bound); eight keep the server's one worker and wrk's one thread busy on both cores
/// (CPU-bound).
const REGIMES: [(&str, &str, u32); 2] = [
    ("nginx, 1 connection (latency-bound)", "1 connection", 1),
    ("nginx, 8 connections (CPU-bound)", "8 connections", 8),
];

/// What the server part of section 9 measured.
pub struct Measured {
    pub server: Result<Server, String>,
    pub regimes: Vec<Workload>,
    pub calls_per_request: Vec<(String, f64)>,
}

pub fn measure(ctx: &mut Ctx) -> Measured {
    let (binary, wrk) = match (&ctx.bins.nginx, &ctx.bins.wrk) {
        (Some(n), Some(w)) => (n.clone(), w.clone()),
        _ => return not_measured("skipped: nginx and wrk not installed (apt-get install nginx wrk)".into()),
    };
    // bpftrace's probes are named by path; the one behind PATH's link is the one that runs.
    let binary = std::fs::canonicalize(&binary).unwrap_or(binary);
    let server = match nginx::describe(&binary) {
        Ok(s) => s,
        Err(e) => return not_measured(e),
    };
    let nginx = match Nginx::start(&binary) {
        Ok(n) => n,
        Err(e) => return not_measured(format!("failed: starting nginx: {e:#}")),
    };
    let tracers: Vec<(Mode, Result<Tracer, String>)> = Mode::ALL.map(|m| (m, tracer(&ctx.bins, m, &binary))).into();
    let mut calls_per_request = Vec::new();
    let regimes = REGIMES
        .iter()
        .map(|&(name, short, connections)| {
            let modes: ModeRuns = rounds(ctx, name, &tracers, ctx.plan.workload_rounds, |ctx, mode, tracer, label| {
                let (run, calls) = run(ctx, &nginx, &wrk, connections, tracer, label)?;
                if mode == Mode::Default {
                    calls_per_request = calls;
                }
                Ok(run)
            });
            Workload { name: name.into(), short, unit: "request", modes }
        })
        .collect();
    Measured { server: Ok(server), regimes, calls_per_request }
}

fn not_measured(why: String) -> Measured {
    eprintln!("bench: real server: {why}");
    Measured { server: Err(why), regimes: Vec::new(), calls_per_request: Vec::new() }
}

/// The tracer of `mode` on nginx's per-request functions.
fn tracer(bins: &Bins, mode: Mode, binary: &Path) -> Result<Tracer, String> {
    match (mode, mode.perf_user_flags()) {
        (Mode::Untraced, _) => Ok(Tracer::None),
        (_, Some(flags)) => {
            let funcs = FUNCTIONS.iter().flat_map(|f| ["--func", f]);
            Ok(Tracer::PerfUser(funcs.chain(flags.iter().copied()).map(str::to_string).collect()))
        }
        (_, None) if bins.bpftrace.is_none() => Err("skipped: bpftrace not installed".into()),
        (_, None) => sys::ensure_tracefs().map_err(|e| format!("skipped: {e}")).map(|()| bpftrace_script(binary)),
    }
}

/// bpftrace's plain latency script, per function: the entry time per thread, a histogram of
/// each call's time at return.
fn bpftrace_script(binary: &Path) -> Tracer {
    let b = binary.display();
    let probes = FUNCTIONS.iter().enumerate().map(|(i, f)| {
        format!(
            "uprobe:{b}:{f} {{ @s{i}[tid] = nsecs; }}\n\
             uretprobe:{b}:{f} /@s{i}[tid]/ {{ @h{i} = hist(nsecs - @s{i}[tid]); delete(@s{i}[tid]); }}\n"
        )
    });
    Tracer::Bpftrace(probes.collect())
}

/// One run: the tracer attached to the worker, wrk for the plan's seconds, the tracer stopped and
/// checked against the requests served; with perf-user, each function's calls per request.
fn run(
    ctx: &mut Ctx,
    nginx: &Nginx,
    wrk: &Path,
    connections: u32,
    tracer: &Tracer,
    label: &str,
) -> Result<(WorkRun, Vec<(String, f64)>)> {
    let attached = tracer::attach(&ctx.bins, tracer, nginx.worker, &ctx.scratch, label)?;
    let tracer_pid = attached.as_ref().map(|a| a.pid());
    let (server_before, tracer_before) = (nginx.cpu_time_s(), tracer_pid.and_then(sys::cpu_time_s));
    let machine = MachineCpu::now();
    let load = wrk::run(wrk, &nginx.url(), connections, ctx.plan.server_secs)?;
    let (server_after, tracer_after) = (nginx.cpu_time_s(), tracer_pid.and_then(sys::cpu_time_s));
    let ours = [(server_before, server_after), (tracer_before, tracer_after)];
    let others_pct = machine.others_pct(load.cpu_s + ours.iter().filter_map(|&(a, b)| Some(b? - a?)).sum::<f64>());
    let calls = match attached {
        Some(a) => check(ctx, &a.stop(None)?.context("the tracer did not stop")?, load.requests)?,
        None => Vec::new(),
    };
    let server = per_op_us(server_before, server_after, load.requests).context("reading nginx's CPU time")?;
    let run = WorkRun {
        per_s: load.per_s,
        p99_us: load.p99_us,
        cpu_per_op_us: server + load.cpu_s / load.requests.max(1) as f64 * 1e6,
        tracer_cpu_per_op_us: per_op_us(tracer_before, tracer_after, load.requests).unwrap_or(0.0),
        others_pct,
    };
    Ok((run, calls))
}

/// The tracer must have seen every request served (at least 99 %: wrk does not count the ones in
/// flight when it stops); returns perf-user's calls per request of each function.
fn check(ctx: &mut Ctx, stopped: &Stopped, requests: u64) -> Result<Vec<(String, f64)>> {
    let seen = |count: f64, by: &str| {
        if count < requests as f64 * 0.99 {
            bail!("{by} saw {count} calls of {} for {requests} requests", FUNCTIONS[0]);
        }
        Ok(())
    };
    match stopped.export()? {
        Some(export) => {
            note_warnings(ctx, Some(&export));
            let calls = |f: &str| function_field(&export, f, "calls").unwrap_or(0.0);
            seen(calls(FUNCTIONS[0]), "perf-user")?;
            Ok(FUNCTIONS.iter().map(|f| (f.to_string(), calls(f) / requests.max(1) as f64)).collect())
        }
        None => {
            let hist = bpftrace_map_hist(&stopped.output, "@h0");
            seen(hist.iter().map(|(count, _)| *count as f64).sum(), "bpftrace")?;
            Ok(Vec::new())
        }
    }
}
