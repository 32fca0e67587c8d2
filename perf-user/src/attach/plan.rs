//! Stage 2 of `attach`: what to probe and how: the functions from the symbols, the probe mode,
//! the warnings that travel with the numbers, and the loader's spec. Reads files, loads nothing.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use perf_ebpf_common::Config as KernelConfig;

use super::{objects, preflight::Checked, refresh::Refresh};
use crate::{
    bpf::{
        loader::{LoadSpec, Probe, ProbeMode, SpanProbe},
        probe_site,
    },
    cli::{
        AttachConfig, Slow,
        span::{Endpoint, SpanKey, SpanSpec},
    },
    model::{FuncInfo, SiteClass, SpanInfo},
    target::proc,
    target::{symbols, symbols::SymbolTable},
};

/// What the load stage attaches, and what the report says about it.
pub(super) struct Plan {
    pub infos: Vec<FuncInfo>,
    pub spec: LoadSpec,
    pub warnings: Vec<String>,
    /// `--span`s, by id.
    pub spans: Vec<SpanInfo>,
    /// With `OBJECT:FUNC` patterns: what picks up libraries the target loads later.
    pub refresh: Option<Refresh>,
}

/// Functions of libraries loaded after attach one run makes room for (within `--max-funcs`): each
/// costs its statistics and two histograms per CPU in the kernel, allocated at load.
pub(super) const LATE_ROOM: usize = 128;

pub(super) fn make(cfg: &AttachConfig, checked: &Checked) -> Result<Plan> {
    let t = &checked.target;
    let mut warnings = Vec::new();
    if let Some(note) = namespace_note(t.pid) {
        eprintln!("perf-user: {note}");
        warnings.push(note);
    }
    let (main_patterns, lib_patterns) = objects::split(&cfg.funcs);
    let mut functions = if main_patterns.is_empty() {
        Vec::new()
    } else {
        resolve_functions(cfg, &main_patterns, &t.exe_link, &t.exe)?
    };
    // `run`: the child still runs perf-user's program; CMD's objects are found as its loader will.
    let mapped = if t.launched.is_some() { objects::predicted(&t.exe) } else { objects::mapped(t.pid) };
    let found = objects::resolve(&lib_patterns, &mapped, (t.pid, &t.exe_link, &t.exe), false)?;
    for note in &found.notes {
        eprintln!("perf-user: {note}");
        warnings.push(note.clone());
    }
    for f in found.functions {
        if !functions.iter().any(|c| c.address == f.address && c.object == f.object) {
            functions.push(f);
        }
    }
    if functions.len() > cfg.max_funcs {
        bail!(
            "{} functions match but --max-funcs is {}; narrow the globs or raise --max-funcs",
            functions.len(),
            cfg.max_funcs
        );
    }
    let (spans, span_probes) = resolve_spans(cfg, &t.exe_link, &t.exe)?;
    let mode = probe_mode(cfg, &t.exe_link, &found.unwind_risks, &mut warnings)?;
    let mut names = found.names;
    names.push((t.exe_link.clone(), t.exe.display().to_string()));
    let infos = func_infos(&functions, 0, &names);
    warnings.extend(mode_warnings(cfg, mode));
    let spec = LoadSpec {
        pid: t.pid,
        exe: t.exe_link.clone(),
        probes: functions
            .iter()
            .enumerate()
            .map(|(i, f)| Probe {
                fn_id: i as u32,
                file_offset: f.file_offset,
                symbol: f.name.clone(),
                object: Some(f.object.clone()),
            })
            .collect(),
        capacity: if lib_patterns.is_empty() {
            functions.len()
        } else {
            cfg.max_funcs.min(functions.len() + LATE_ROOM).max(functions.len())
        },
        mode,
        // Attribution and the syscall table need the syscall and scheduler tracepoints;
        // latency-only and the benchmarks' floors (empty programs, the clock alone) have them only
        // for --syscalls.
        // Spans alone need none: their probes are on their endpoints only.
        tracepoints: (!functions.is_empty()
            && !matches!(mode, ProbeMode::Latency | ProbeMode::Empty | ProbeMode::Clock))
            || cfg.syscalls,
        config: kernel_config(cfg),
        max_funcs: cfg.max_funcs,
        attach: cfg.attach_mode,
        spans: span_probes,
        span_keys: cfg.span_keys,
    };
    let refresh = (!lib_patterns.is_empty()).then(|| Refresh::new(cfg, t, lib_patterns, &mapped, &spec));
    Ok(Plan { infos, spec, warnings, refresh, spans })
}

/// The functions' identities, ids from `first_id` on; `names` maps each function's object (the
/// path probed) to the path the target knows it by.
pub(super) fn func_infos(functions: &[symbols::Function], first_id: u32, names: &[(PathBuf, String)]) -> Vec<FuncInfo> {
    functions
        .iter()
        .zip(first_id..)
        .map(|(f, id)| {
            let site = probe_site::classify(&f.entry_bytes, f.address);
            FuncInfo {
                id,
                object: names
                    .iter()
                    .find(|(a, _)| *a == f.object)
                    .map_or_else(|| f.object.display().to_string(), |(_, n)| n.clone()),
                added_ns: None,
                symbol: f.name.clone(),
                raw_symbol: f.raw.clone(),
                address: f.address,
                site_class: SiteClass::of(&f.entry_bytes, site.single_step),
                entry_insn: site.insn,
                single_step: site.single_step,
                detached: false,
                calibration_ns: 0,
                floor_ns: 0,
                hit_cost_ns: 0,
            }
        })
        .collect()
}

/// What latency-only and sampling leave out (in the
/// export only: they travel with the numbers).
fn mode_warnings(cfg: &AttachConfig, mode: ProbeMode) -> Vec<String> {
    let mut warnings = Vec::new();
    if mode == ProbeMode::Latency {
        warnings.push(
            "latency only: wall time and counts; own CPU, callees, syscalls and off-CPU time were not split \
             (0), no exemplars"
                .to_string(),
        );
    }
    if cfg.blocked_syscalls_only && mode == ProbeMode::Full {
        warnings.push(
            "blocked syscalls only: a function's syscalls are those it left the CPU in, blocked or \
             preempted (count: times switched out in it, time: time off-CPU in it); syscalls' on-CPU time \
             is in own CPU time"
                .to_string(),
        );
    }
    if cfg.sample_every > 1 && mode == ProbeMode::Full {
        warnings.push(format!(
            "sampled: one outermost call in {} was timed, with every call nested in it; `calls` counts them all",
            cfg.sample_every
        ));
    }
    if cfg.sample_every > 1 && mode == ProbeMode::Latency {
        warnings.push(format!(
            "sampled: each call was timed with chance 1 in {}; `calls` counts them all",
            cfg.sample_every
        ));
    }
    warnings
}

fn kernel_config(cfg: &AttachConfig) -> KernelConfig {
    KernelConfig {
        slow_ns: match cfg.slow {
            Slow::Fixed(ns) => ns,
            Slow::Off | Slow::Auto => 0,
        },
        per_thread: u32::from(cfg.per_thread),
        sample_every: cfg.sample_every,
        sample_below: perf_ebpf_common::sample_below(cfg.sample_every),
        interference: if cfg.interference { perf_ebpf_common::INTERF_ON } else { 0 },
        syscall_table: u32::from(cfg.syscalls),
        call_paths: u32::from(cfg.call_tree),
        syscalls_from_sched: u32::from(cfg.blocked_syscalls_only),
        _pad: 0,
    }
}

/// The traced functions: from the binary the process runs, or for a stripped one from `--symbols`
/// or its separate debug file (build id / .gnu_debuglink).
fn resolve_functions(
    cfg: &AttachConfig,
    patterns: &[String],
    exe_link: &Path,
    exe: &Path,
) -> Result<Vec<symbols::Function>> {
    let mut table = match &cfg.symbols {
        Some(file) => SymbolTable::read_split(file, exe_link)?,
        None => SymbolTable::read(exe_link)?,
    };
    table.binary = cfg.symbols.clone().unwrap_or_else(|| exe.to_path_buf());
    let only_addresses = patterns.iter().all(|f| f.starts_with("0x"));
    if table.functions.is_empty() && cfg.symbols.is_none() && !only_addresses {
        let dir = exe.parent().unwrap_or(Path::new("/"));
        if let Some(debug) = symbols::find_debug_file(exe_link, dir) {
            eprintln!("perf-user: {} is stripped; symbols from {}", exe.display(), debug.display());
            table = SymbolTable::read_split(&debug, exe_link)?;
            table.binary = exe.to_path_buf();
        }
    }
    let selection = table.resolve(patterns)?;
    // Compiler-split fragments and labels a glob also matched: never probed, said in one line each.
    for note in &selection.notes {
        eprintln!("perf-user: {note}");
    }
    Ok(selection.functions)
}

/// The spans' endpoints: each must name exactly one function of the target.
fn resolve_spans(cfg: &AttachConfig, exe_link: &Path, exe: &Path) -> Result<(Vec<SpanInfo>, Vec<SpanProbe>)> {
    if cfg.spans.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let mut table = match &cfg.symbols {
        Some(file) => SymbolTable::read_split(file, exe_link)?,
        None => SymbolTable::read(exe_link)?,
    };
    table.binary = cfg.symbols.clone().unwrap_or_else(|| exe.to_path_buf());
    let mut infos = Vec::new();
    let mut probes = Vec::new();
    for (id, spec) in (0u32..).zip(&cfg.spans) {
        let from = endpoint_probe(&table, spec, &spec.from, id, false)?;
        let to = endpoint_probe(&table, spec, &spec.to, id, true)?;
        infos.push(SpanInfo { id, name: spec.name.clone(), from: from.what.clone(), to: to.what.clone() });
        probes.extend([from, to]);
    }
    Ok((infos, probes))
}

fn endpoint_probe(table: &SymbolTable, spec: &SpanSpec, ep: &Endpoint, id: u32, is_end: bool) -> Result<SpanProbe> {
    use perf_ebpf_common::spans::{SPAN_KEY_ARG, SPAN_KEY_PTR, SPAN_KEY_RET, SpanEndpoint};
    let side = if is_end { "TO" } else { "FROM" };
    let found = table
        .resolve(std::slice::from_ref(&ep.func))
        .map_err(|e| anyhow::anyhow!("--span {}: {side} {}: {e}", spec.name, ep.func))?
        .functions;
    let f = match found.as_slice() {
        [one] => one,
        many => bail!(
            "--span {}: {side} '{}' matches {} functions ({}{}); name one",
            spec.name,
            ep.func,
            many.len(),
            many.iter().take(3).map(|f| f.name.as_str()).collect::<Vec<_>>().join(", "),
            if many.len() > 3 { ", …" } else { "" }
        ),
    };
    let (kind, arg, offset) = match ep.key {
        SpanKey::Arg(n) => (SPAN_KEY_ARG, n, 0),
        SpanKey::Deref { arg, offset } => (SPAN_KEY_PTR, arg, offset),
        SpanKey::Ret => (SPAN_KEY_RET, 0, 0),
    };
    let cookie = SpanEndpoint { span_id: id, is_end: u32::from(is_end), kind, arg, offset }.cookie();
    Ok(SpanProbe {
        cookie,
        object: f.object.clone(),
        file_offset: f.file_offset,
        at_return: ep.key.at_return(),
        what: format!("{}({})", f.name, ep.key),
    })
}

/// Full tracing, unless a return probe could abort the target: then entry-only (counts), said
/// loudly, unless the user accepted the risk.
fn probe_mode(
    cfg: &AttachConfig,
    exe_link: &Path,
    library_risks: &[String],
    warnings: &mut Vec<String>,
) -> Result<ProbeMode> {
    if !matches!(cfg.probe_mode, ProbeMode::Full | ProbeMode::Latency) || cfg.funcs.is_empty() {
        return Ok(cfg.probe_mode);
    }
    let risk = SymbolTable::read(exe_link).ok().and_then(|t| t.unwind_risk).or_else(|| library_risks.first().cloned());
    let Some(reason) = risk else { return Ok(cfg.probe_mode) };
    if cfg.allow_unwind_risk {
        let note = format!(
            "unwind risk accepted ({reason}): a panic or exception crossing a traced function aborts the target"
        );
        eprintln!("perf-user: warning: {note}");
        warnings.push(note);
        return Ok(cfg.probe_mode);
    }
    let note = format!(
        "the target can unwind through traced functions ({reason}), which a return probe turns into an abort: \
         counting calls only (entry probes); pass --allow-unwind-risk for latencies"
    );
    eprintln!("perf-user: warning: {note}");
    warnings.push(note);
    Ok(ProbeMode::EntryOnly)
}

/// A target in another mount namespace (a container) is traced through /proc/PID/exe and
/// /proc/PID/map_files, which is right, but the user should know paths in the report are the container's.
fn namespace_note(pid: u32) -> Option<String> {
    let ours = proc::namespace(std::process::id(), "mnt")?;
    let theirs = proc::namespace(pid, "mnt")?;
    (ours != theirs).then(|| {
        format!(
            "pid {pid} is in another mount namespace ({}); its binary is read through /proc/{pid}/exe, its libraries \
             through /proc/{pid}/map_files, and paths are the container's",
            theirs.display()
        )
    })
}
