//! Stage 1 of `attach`: what must hold before anything is planned or loaded: privileges, the
//! target (held through a pidfd from here on), the export path and the Prometheus port.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context, Result};

use super::{
    Liveness,
    launch::{self, Command},
};
use crate::{
    bpf::loader,
    cli::AttachConfig,
    output::{export, prometheus},
    target::proc,
};

/// The traced process, as preflight found it.
pub(super) struct Target {
    pub pid: u32,
    /// `/proc/PID/exe`: what the probes attach through (the inode the process runs).
    pub exe_link: PathBuf,
    /// Where that binary lives, for the report.
    pub exe: PathBuf,
    /// Exit and `execve` of this process (not of a later one with its pid).
    pub liveness: Liveness,
    /// `run`: CMD, forked and waiting for its probes (released after load).
    pub launched: Option<launch::Child>,
}

/// What preflight hands to the later stages.
pub(super) struct Checked {
    pub target: Target,
    pub metrics_listener: Option<std::net::TcpListener>,
    pub snapshots: Option<export::Snapshots>,
    /// `--baseline`, read (a bad file fails here, before any probe).
    pub baseline: Option<crate::output::report::Report>,
}

pub(super) fn check(cfg: &AttachConfig) -> Result<Checked> {
    if !loader::has_bpf_privileges() {
        return Err(loader::LoadError::NotPermitted.into());
    }
    let command = (!cfg.command.is_empty()).then(|| Command::resolve(&cfg.command)).transpose()?;
    if let Some(path) = &cfg.export {
        export::check_writable(path)?;
    }
    // Listen and create the snapshot file now: a busy port or an unwritable path fails before attaching.
    let metrics_listener = cfg.prometheus.map(prometheus::bind).transpose()?;
    let snapshots = match (cfg.export_interval_ns, &cfg.export) {
        (Some(ns), Some(path)) => Some(snapshots(path, ns)?),
        _ => None,
    };
    // Before CMD is forked: a bad baseline must not leave a started command behind.
    let baseline = cfg.baseline.as_deref().map(export::read_report).transpose().context("--baseline")?;
    let target = match command {
        Some(command) => launched(&command)?,
        None => running(cfg.pid)?,
    };
    Ok(Checked { target, metrics_listener, snapshots, baseline })
}

fn running(pid: u32) -> Result<Target> {
    // The pidfd first: whatever is read below then belongs to the process it watches.
    let liveness = Liveness::open(pid).with_context(|| format!("cannot watch pid {pid} (does the process exist?)"))?;
    let exe_link = proc::exe_link(pid);
    let exe = std::fs::read_link(&exe_link)
        .with_context(|| format!("cannot read {} (does the process exist and may we trace it?)", exe_link.display()))?;
    Ok(Target { pid, exe_link, exe, liveness, launched: None })
}

/// `run`: the probes go on CMD's file (the child still runs perf-user's program until released).
fn launched(command: &Command) -> Result<Target> {
    let exe = std::fs::canonicalize(&command.path).with_context(|| command.path.display().to_string())?;
    let child = command.start()?;
    let pid = child.pid;
    let liveness = Liveness::open_launched(pid).with_context(|| format!("cannot watch pid {pid}"))?;
    Ok(Target { pid, exe_link: exe.clone(), exe, liveness, launched: Some(child) })
}

fn snapshots(export_path: &Path, every_ns: u64) -> Result<export::Snapshots> {
    Ok(export::Snapshots::create(&export::snapshot_path(export_path), Duration::from_nanos(every_ns))?)
}
