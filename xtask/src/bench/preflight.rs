//! Everything before the first measurement: root, the release binaries, the machine's description,
//! which external tools exist (a missing one skips its rows), and what this perf-user build can do.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};

use super::{plan::Plan, rounds::Ctx, rounds::strings, run::Bins, sys};

/// A tool's version for the report's header, or why its rows are skipped.
pub type ToolVersion = (&'static str, Result<String, String>);

/// What the measurements start from.
pub struct Prepared {
    pub ctx: Ctx,
    pub machine: sys::Machine,
    pub tools: Vec<ToolVersion>,
    /// Whether this perf-user has `--sample`.
    pub sampling: Result<(), String>,
    /// nm and objdump, which find raw symbols and first instructions.
    pub binutils: bool,
    /// The kernel's BPF run-time accounting kept off until the bench ends.
    pub stats_off: Option<sys::BpfStats>,
}

pub fn prepare(plan: Plan) -> Result<Prepared> {
    if !sys::is_root() {
        bail!("the bench attaches eBPF programs and uprobes: run it as root (sudo -E cargo xtask bench)");
    }
    let root = crate::workspace_root();
    build()?;
    let machine = sys::Machine::read();
    let scratch = root.join("target/bench");
    std::fs::create_dir_all(&scratch).with_context(|| format!("creating {}", scratch.display()))?;

    let mut tools = vec![("perf-user", Ok(sys::revision(&root)))];
    let bpftrace = find_tool(&mut tools, "bpftrace", "--version");
    let strace = find_tool(&mut tools, "strace", "-V");
    let binutils = find_tool(&mut tools, "nm", "--version").and(find_tool(&mut tools, "objdump", "--version"));
    let nginx = find_tool(&mut tools, "nginx", "-v");
    let wrk = find_tool(&mut tools, "wrk", "-v");
    let bin = root.join("target/release");
    let bins = Bins {
        perf_user: bin.join("perf-user"),
        perf_user_args: Vec::new(),
        bench_target: bin.join("bench-target"),
        target_app: bin.join("target-app"),
        bpftrace,
        strace,
        nginx,
        wrk,
    };
    let mut ctx = Ctx { bins, scratch, plan, notes: Vec::new(), warned: Vec::new() };
    let sampling = perf_user_flags(&mut ctx)?;
    note_other_tracers(&mut ctx);
    let stats_off = stats_off(&mut ctx)?;
    Ok(Prepared { ctx, machine, tools, sampling, binutils: binutils.is_some(), stats_off })
}

/// Release perf-user (which embeds the eBPF object), bench-target and target-app.
fn build() -> Result<()> {
    if !crate::ebpf_object().exists() {
        eprintln!("bench: no eBPF object at {}; building it", crate::ebpf_object().display());
        crate::build_ebpf(&crate::setup()?)?;
    }
    crate::status(
        Command::new(crate::cargo())
            .args(["build", "--release", "-p", "perf-user", "-p", "bench-target", "-p", "target-app"])
            .current_dir(crate::workspace_root()),
    )
    .context("building perf-user, bench-target and target-app (release)")
}

/// An external tool on PATH, its version recorded for the report; `None` (and its rows skipped)
/// when it is missing.
fn find_tool(tools: &mut Vec<ToolVersion>, name: &'static str, version_arg: &str) -> Option<PathBuf> {
    let found = sys::tool(name, version_arg);
    if let Err(why) = &found {
        eprintln!("bench: {why}: its rows are skipped");
    }
    tools.push((name, found.as_ref().map(|(_, v)| v.clone()).map_err(|e| format!("skipped: {e}"))));
    found.ok().map(|(p, _)| p)
}

/// Which optional flags this perf-user has: the overhead guard is turned off (it would detach the
/// very probes whose cost is being measured); returns whether it can sample.
fn perf_user_flags(ctx: &mut Ctx) -> Result<Result<(), String>> {
    let help = perf_user_help(&ctx.bins.perf_user)?;
    if help.contains("--max-overhead") {
        ctx.bins.perf_user_args = strings(&["--max-overhead", "1000"]);
    }
    Ok(if help.contains("--sample") {
        Ok(())
    } else {
        Err("not implemented: perf-user attach has no --sample flag".to_string())
    })
}

/// `perf-user attach --help`.
fn perf_user_help(perf_user: &Path) -> Result<String> {
    let help = Command::new(perf_user)
        .args(["attach", "--help"])
        .output()
        .with_context(|| format!("running {} attach --help", perf_user.display()))?;
    Ok(String::from_utf8_lossy(&help.stdout).into_owned())
}

/// Other tracers' probes and detaches compete with the measurements: said in the notes.
fn note_other_tracers(ctx: &mut Ctx) {
    let others = sys::other_tracers();
    if !others.is_empty() {
        let note = format!("other tracers were running when the bench started (numbers may be disturbed): {others}");
        eprintln!("bench: {note}");
        ctx.notes.push(note);
    }
}

/// `kernel.bpf_stats_enabled` left on (by an interrupted bench, or by hand) adds two clock reads to
/// every BPF program run, perf-user's and bpftrace's: every timing would be inflated. It is turned
/// off for the bench, said in the notes, and put back on when the bench ends.
fn stats_off(ctx: &mut Ctx) -> Result<Option<sys::BpfStats>> {
    if !sys::bpf_stats_enabled() {
        return Ok(None);
    }
    let guard = sys::BpfStats::set(false)?;
    let note = "kernel.bpf_stats_enabled was 1 when the bench started: it was turned off for the measurements \
                (it adds two clock reads to every program run) and back on at the end"
        .to_string();
    eprintln!("bench: {note}");
    ctx.notes.push(note);
    Ok(Some(guard))
}
