//! `cargo xtask bench`: measures perf-user against the kernel's floor, bpftrace and strace in one
//! run, on bench-target's empty functions and on real workloads; prints the tables and writes
//! docs/BENCHMARKS.md.

mod attach;
mod calls;
mod goals;
mod guard;
mod hot_paths;
mod interference;
mod judge;
mod load;
mod pairs;
mod plan;
mod preflight;
mod proc;
mod programs;
mod readings;
mod report;
mod results;
mod rounds;
mod run;
mod spans;
mod spin;
mod stats;
mod sys;
mod syscalls;
mod text;
mod tracer;
mod workload;

use std::{
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::{Context, Result};
use plan::Plan;
use results::Results;

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

pub fn run(args: &BenchArgs) -> Result<()> {
    let started = Instant::now();
    let plan = Plan::choose(args.quick, args.reps)?;
    let output = output_path(args);
    let preflight::Prepared { mut ctx, machine, tools, sampling, binutils, stats_off: _stats_off } =
        preflight::prepare(plan)?;
    let ctx = &mut ctx;

    // First: compiling the benches would disturb the kernel measurements.
    eprintln!("bench: userspace hot paths (cargo bench -p perf-user)");
    let hot_paths = hot_paths::run(args.quick);
    if let Err(e) = &hot_paths {
        eprintln!("bench: hot paths: {e}");
    }
    let calls = calls::measure(ctx, binutils, sampling.is_ok());
    let pairs = pairs::measure(ctx, binutils);
    let syscalls = syscalls::measure(ctx, binutils);
    let (ceiling, loads) = load::measure(ctx);
    let spin = spin::measure(ctx);
    let programs = programs::measure(ctx);
    let interference = interference::measure(ctx);
    let workloads = workload::measure(ctx);
    let spans = spans::measure(ctx, binutils);
    let guard = guard::measure(ctx);
    // Last: the 1,000-function run leaves the kernel detaching for minutes.
    let attach = attach::measure(ctx, args.quick);

    let results = Results {
        machine,
        loadavg_end: sys::loadavg(),
        quick: args.quick,
        reps: plan.reps,
        elapsed_s: started.elapsed().as_secs_f64(),
        plan: plan.describe(),
        tools,
        perf_user_flags: ctx.bins.perf_user_args.join(" "),
        calls,
        pairs,
        sampling,
        syscalls,
        ceiling,
        loads,
        attach,
        spin_ns: spin::SPIN_NS,
        spin,
        programs,
        hot_paths,
        workloads,
        interference,
        spans,
        guard,
        notes: std::mem::take(&mut ctx.notes),
    };
    write_report(&output, &report::markdown(&results), started)
}

/// `--output`, or docs/BENCHMARKS.md (target/bench/BENCHMARKS-quick.md with `--quick`).
fn output_path(args: &BenchArgs) -> PathBuf {
    let root = crate::workspace_root();
    args.output.clone().unwrap_or_else(|| {
        if args.quick { root.join("target/bench/BENCHMARKS-quick.md") } else { root.join("docs/BENCHMARKS.md") }
    })
}

/// Prints the markdown and writes it to `output`.
fn write_report(output: &Path, md: &str, started: Instant) -> Result<()> {
    println!("{md}");
    if let Some(dir) = output.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(output, md).with_context(|| format!("writing {}", output.display()))?;
    eprintln!("bench: wrote {} ({:.0} s)", output.display(), started.elapsed().as_secs_f64());
    Ok(())
}
