//! perf-user: attach eBPF probes to a running process and show where each function's time goes.
//! This file wires the pieces: arguments → symbols → loader → (collect → app → tui/text) → export.

use std::{
    io::{IsTerminal, Write},
    path::{Path, PathBuf},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, Result, bail};
use clap::Parser;
use perf_ebpf_common::Config as KernelConfig;
use tokio::signal::unix::{SignalKind, signal};

use perf_user::{
    app::{Action, App, EndReason, Event},
    bpf::calibrate,
    bpf::collect::Collector,
    bpf::loader,
    bpf::loader::{LoadSpec, Probe, ProbeMode, Tracer},
    bpf::probe_site,
    cli,
    cli::{AttachConfig, Cli, Cmd, Slow},
    model,
    model::{FuncInfo, Session, WindowCost},
    output::diff,
    output::export,
    output::flame,
    output::prometheus,
    output::report::{RunInfo, Target},
    target::symbols,
    target::symbols::SymbolTable,
    tui, units,
};

fn main() {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Attach(args) => {
            let tty = std::io::stdout().is_terminal();
            match args.validate(tty) {
                Ok(cfg) => attach(cfg),
                Err(e) => Err(e.into()),
            }
        }
        Cmd::Report(args) => report_cmd(&args),
        Cmd::Diff(args) => std::process::exit(diff_cmd(&args)),
        Cmd::Flamegraph(args) => flame_cmd(&args),
    };
    if let Err(e) = result {
        eprintln!("perf-user: error: {e:#}");
        std::process::exit(1);
    }
}

/// Writes to stdout; a closed pipe (`| head`) is not an error, the run goes on quietly.
fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush());
}

/// `perf-user diff`: 0 no regression, 1 a function regressed beyond --fail-above, 2 bad input
/// (one line on stderr), so CI can tell a regression from a broken pipeline.
fn diff_cmd(args: &cli::DiffArgs) -> i32 {
    let run = || -> Result<diff::Diff> {
        let t = args.thresholds().map_err(anyhow::Error::msg)?;
        let base = export::read_report(&args.base)?;
        let new = export::read_report(&args.new)?;
        let (bf, nf) = (args.base.display().to_string(), args.new.display().to_string());
        Ok(diff::compare(&base, &bf, &new, &nf, args.metric, t))
    };
    match run() {
        Ok(d) => {
            match args.format {
                cli::DiffFormat::Text => out(&diff::text(&d)),
                cli::DiffFormat::Json => out(&String::from_utf8_lossy(&diff::json(&d))),
            }
            i32::from(d.failed)
        }
        Err(e) => {
            eprintln!("perf-user: error: {e:#}");
            2
        }
    }
}

fn flame_cmd(args: &cli::FlameArgs) -> Result<()> {
    let report = export::read_report(&args.file)?;
    let bytes = if args.folded {
        flame::folded(&report).into_bytes()
    } else {
        let title = format!("perf-ebpf: pid {} {}", report.target.pid, report.target.exe);
        flame::svg(&report, &title).with_context(|| args.file.display().to_string())?
    };
    export::write_atomic(&args.output, &bytes)?;
    Ok(())
}

fn report_cmd(args: &cli::ReportArgs) -> Result<()> {
    let report = export::read_report(&args.file)?;
    out(&String::from_utf8_lossy(&export::serialize(&report, args.format)));
    Ok(())
}

/// Start time of a process (clock ticks since boot), to tell it from a later process with its pid.
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: fields resume after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn alive(pid: u32, start: Option<u64>) -> bool {
    process_start(pid).is_some_and(|s| Some(s) == start)
}

fn read_comm(path: &str) -> String {
    std::fs::read_to_string(path).map(|s| s.trim_end().to_string()).unwrap_or_default()
}

fn thread_names(pid: u32) -> Vec<(u32, String)> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .map(|tid| (tid, read_comm(&format!("/proc/{pid}/task/{tid}/comm"))))
        .collect()
}

/// Names threads seen in per-thread statistics while they still exist (a report written after
/// the target exited can no longer ask /proc).
fn learn_thread_names(app: &mut App) {
    let Some(latest) = app.session.latest() else { return };
    let pid = app.info.target.pid;
    let unknown: Vec<u32> = latest
        .threads
        .iter()
        .map(|t| t.tid)
        .filter(|tid| !app.info.thread_names.iter().any(|(t, _)| t == tid))
        .collect();
    for tid in unknown {
        let name = read_comm(&format!("/proc/{pid}/task/{tid}/comm"));
        if !name.is_empty() {
            app.info.thread_names.push((tid, name));
        }
    }
}

fn unix_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

fn attach(cfg: AttachConfig) -> Result<()> {
    if !loader::has_bpf_privileges() {
        return Err(loader::LoadError::NotPermitted.into());
    }
    let pid = cfg.pid;
    let start = process_start(pid);
    let exe_link = PathBuf::from(format!("/proc/{pid}/exe"));
    let exe = std::fs::read_link(&exe_link)
        .with_context(|| format!("cannot read {} (does the process exist and may we trace it?)", exe_link.display()))?;
    if let Some(path) = &cfg.export {
        export::check_writable(path)?;
    }
    // Listen and create the snapshot file now: a busy port or an unwritable path fails before attaching.
    let metrics_listener = cfg.prometheus.map(prometheus::bind).transpose()?;
    let mut snapshots = match (cfg.export_interval_ns, &cfg.export) {
        (Some(ns), Some(path)) => {
            Some(export::Snapshots::create(&export::snapshot_path(path), Duration::from_nanos(ns))?)
        }
        _ => None,
    };

    let mut warnings = Vec::new();
    if let Some(note) = namespace_note(pid) {
        eprintln!("perf-user: {note}");
        warnings.push(note);
    }
    let functions = if cfg.funcs.is_empty() { Vec::new() } else { resolve_functions(&cfg, &exe_link, &exe)? };
    if functions.len() > cfg.max_funcs {
        bail!(
            "{} functions match but --max-funcs is {}; narrow the globs or raise --max-funcs",
            functions.len(),
            cfg.max_funcs
        );
    }
    let mode = probe_mode(&cfg, &exe_link, &mut warnings)?;

    let infos: Vec<FuncInfo> = functions
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let site = probe_site::classify(&f.entry_bytes, f.address);
            FuncInfo {
                id: i as u32,
                symbol: f.name.clone(),
                raw_symbol: f.raw.clone(),
                address: f.address,
                entry_insn: site.insn,
                single_step: site.single_step,
                detached: false,
                calibration_ns: 0,
            }
        })
        .collect();
    let stepped: Vec<&str> = infos.iter().filter(|f| f.single_step).map(|f| f.symbol.as_str()).collect();
    if !stepped.is_empty() {
        let note = format!(
            "{} of {} probes start on an instruction the kernel single-steps (~10x the cost per hit): {}",
            stepped.len(),
            infos.len(),
            stepped.iter().take(5).copied().collect::<Vec<_>>().join(", ")
        );
        eprintln!("perf-user: {note}");
        warnings.push(note);
    }
    // Travels with the numbers: what the percentiles and the attribution describe.
    if mode == ProbeMode::Latency {
        warnings.push(
            "latency only: wall time and counts; own CPU, callees, syscalls and off-CPU time were not split \
             (0), no exemplars"
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
    let kernel_config = KernelConfig {
        slow_ns: match cfg.slow {
            Slow::Fixed(ns) => ns,
            Slow::Off | Slow::Auto => 0,
        },
        per_thread: u32::from(cfg.per_thread),
        sample_every: cfg.sample_every,
        sample_below: perf_ebpf_common::sample_below(cfg.sample_every),
        interference: if cfg.interference { perf_ebpf_common::INTERF_ON } else { 0 },
    };
    let spec = LoadSpec {
        pid,
        exe: exe_link.clone(),
        probes: functions
            .iter()
            .enumerate()
            .map(|(i, f)| Probe { fn_id: i as u32, file_offset: f.file_offset, symbol: f.name.clone() })
            .collect(),
        mode,
        // Attribution and the syscall table need the syscall and scheduler tracepoints;
        // latency-only and the benchmarks' floors (empty programs, the clock alone) have them only
        // for --syscalls.
        tracepoints: !matches!(mode, ProbeMode::Latency | ProbeMode::Empty | ProbeMode::Clock) || cfg.syscalls,
        config: kernel_config,
        max_funcs: cfg.max_funcs,
        attach: cfg.attach_mode,
    };

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async move {
        // Handlers first: a Ctrl-C during attach is then seen right after it, not lost.
        let mut sigint = signal(SignalKind::interrupt())?;
        let mut sigterm = signal(SignalKind::terminate())?;
        let metrics = match metrics_listener {
            Some(listener) => {
                let addr = listener.local_addr()?;
                let (tx, rx) = tokio::sync::watch::channel(String::new());
                prometheus::spawn(listener, rx)?;
                out(&format!("serving Prometheus metrics on http://{addr}/metrics\n"));
                Some(tx)
            }
            None => None,
        };
        let mut metrics_at: Option<tokio::time::Instant> = None;

        // If the target dies during attach, the loop below notices on its first tick and the run
        // ends like any other target exit: export written, saying so.
        let mut tracer = Tracer::load(&spec)?;
        // Calibrate once the target's probes are in (a bad setup fails there first). The
        // calibration probes stay until the end: removing a uprobe stalls every other uprobe
        // operation for a grace period, and they cost nothing once their function is not called.
        let mut calibration = None;
        let timed = matches!(mode, ProbeMode::Full | ProbeMode::Latency);
        let probe_cost = if cfg.calibrate && timed && !spec.probes.is_empty() {
            // The programs the target got, attached the same way (the calibration times every
            // call of its targets, also when the target is sampled).
            match calibrate::probe_cost_ns(tracer.attached_as(), mode) {
                Ok((cost, probes)) => {
                    calibration = Some(probes);
                    cost
                }
                // The mode itself does not work on this kernel: no numbers rather than wrong ones.
                Err(e @ calibrate::CalibrationError::Miscounted { .. }) => return Err(e.into()),
                Err(e) => {
                    let note = format!("{e}; latencies include the probes' own cost");
                    eprintln!("perf-user: warning: {note}");
                    warnings.push(note);
                    calibrate::ProbeCost::default()
                }
            }
        } else {
            calibrate::ProbeCost::default()
        };
        let calibration_ns = probe_cost.in_window.median_ns;
        // Each function gets the cost of its kind of probe site.
        let per_fn_calibration: Vec<WindowCost> =
            functions.iter().map(|f| probe_cost.in_window_for(&f.entry_bytes)).collect();
        let mut infos = infos;
        for (info, cost) in infos.iter_mut().zip(&per_fn_calibration) {
            info.calibration_ns = cost.median_ns;
        }
        let mut collector =
            Collector::new(&mut tracer, infos.iter().map(|f| f.symbol.clone()).collect(), per_fn_calibration)?;
        collector.per_thread = cfg.per_thread;
        collector.latency_only = mode == ProbeMode::Latency;
        let info = RunInfo {
            target: Target { pid, exe: exe.display().to_string(), comm: read_comm(&format!("/proc/{pid}/comm")) },
            started_unix_ns: unix_ns(),
            end_reason: String::new(),
            thread_names: Vec::new(),
            warnings,
            calibration_ns,
            probe_cost_per_hit_ns: probe_cost.per_call_ns / 2,
            attach: tracer.attach_kind().to_owned(),
            sample_every: cfg.sample_every.max(1),
            probes: mode.label().to_string(),
            interference: cfg.interference && spec.tracepoints,
            steal_source: match (cfg.interference && spec.tracepoints, tracer.steal_measured) {
                (false, _) => String::new(),
                (true, true) => "kvm_steal_time".to_owned(),
                (true, false) => "not available".to_owned(),
            },
        };
        let attached_line = format!(
            "attached {} probes ({}) to pid {pid} ({}): {} functions{}\n",
            tracer.attached,
            tracer.attach_kind(),
            exe.display(),
            infos.len(),
            if cfg.syscalls { ", syscalls" } else { "" }
        );
        let mut app = App::new(Session::new(infos, cfg.exemplars), info);
        if probe_cost.per_call_ns > 0 {
            // A call is two probe hits (entry and return).
            app.cost_per_hit_ns = probe_cost.per_call_ns as f64 / 2.0;
        }

        let mut ui = if cfg.tui {
            match tui::Tui::start() {
                Ok(ui) => Some(ui),
                Err(e) => {
                    eprintln!("perf-user: no terminal UI ({e:#}); printing text instead");
                    None
                }
            }
        } else {
            None
        };
        if ui.is_none() {
            out(&attached_line);
        }

        let mut tick = tokio::time::interval(Duration::from_nanos(cfg.interval_ns));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let deadline = cfg.duration_ns.map(|ns| tokio::time::Instant::now() + Duration::from_nanos(ns));
        let mut last_print = tokio::time::Instant::now();
        let end = loop {
            let event = tokio::select! {
                _ = tick.tick() => {
                    if !app.target_exited && !alive(pid, start) {
                        // One last reading: the kernel kept counting until the very end.
                        let ev = Event::Tick { sample: collector.sample(), exemplars: collector.drain_exemplars() };
                        app.handle(ev);
                        Event::TargetExited
                    } else {
                        Event::Tick { sample: collector.sample(), exemplars: collector.drain_exemplars() }
                    }
                }
                _ = sigint.recv() => Event::Signal,
                _ = sigterm.recv() => Event::Signal,
                _ = sleep_until(deadline) => Event::DurationElapsed,
                key = tui::next_key(&mut ui) => Event::Key(key),
            };
            let exited = matches!(event, Event::TargetExited);
            match app.handle(event) {
                Action::Continue => {}
                Action::ExportSnapshot => {
                    // Only ever the path the user gave: perf-user writes nowhere else.
                    app.status = match &cfg.export {
                        None => "no --export FILE.json given: nothing written".to_string(),
                        Some(path) => match write_export(&app, None, path) {
                            Ok(()) => format!("exported {}", path.display()),
                            Err(e) => format!("export failed: {e:#}"),
                        },
                    };
                }
                Action::Exit(reason) => break reason,
            }
            if cfg.slow == Slow::Auto {
                update_auto_thresholds(&app, &mut tracer);
            }
            for (fn_id, note) in overhead_guard(&app, cfg.max_overhead_pct) {
                match tracer.detach_function(fn_id) {
                    Ok(_) => {
                        app.handle(Event::ProbesDetached { fn_id, note });
                    }
                    Err(e) => eprintln!("perf-user: overhead guard: {e}"),
                }
            }
            publish_periodic(&mut app, metrics.as_ref(), &mut metrics_at, snapshots.as_mut());
            if cfg.per_thread {
                learn_thread_names(&mut app);
            }
            if exited && ui.is_none() {
                break EndReason::TargetExited;
            }
            match &mut ui {
                Some(ui) => ui.draw(&app)?,
                None => {
                    if last_print.elapsed() >= Duration::from_secs(1) {
                        last_print = tokio::time::Instant::now();
                        out(&progress_line(&app));
                    }
                }
            }
        };

        // Final reading; the numbers end here. Results first (terminal, export, tables), then the
        // detach, which is slow with many probes: the kernel waits out a grace period per uprobe,
        // serially (~0.1 s each here), and nobody should wait for that to see their numbers.
        if !app.target_exited {
            app.handle(Event::Tick { sample: collector.sample(), exemplars: collector.drain_exemplars() });
        }
        if cfg.per_thread {
            learn_thread_names(&mut app);
        }
        if let Some(ui) = ui.take() {
            ui.stop();
        }
        drop(collector);
        let report = app.report(Some(end));
        if let Some(s) = &mut snapshots {
            // The stream ends with the final report, like the --export file.
            if let Err(e) = s.write(&report) {
                eprintln!("perf-user: {e}");
            }
        }
        let exported = cfg.export.as_ref().map(|path| write_export(&app, Some(end), path)).transpose();
        out(&export::text(&report));
        if end == EndReason::TargetExited {
            out(&format!("target pid {pid} exited; report covers it up to its exit\n"));
        }
        drop(tracer);
        drop(calibration);
        exported?;
        Ok(())
    })
}

/// The traced functions: from the binary the process runs, or for a stripped one from `--symbols`
/// or its separate debug file (build id / .gnu_debuglink).
fn resolve_functions(cfg: &AttachConfig, exe_link: &Path, exe: &Path) -> Result<Vec<symbols::Function>> {
    let mut table = match &cfg.symbols {
        Some(file) => SymbolTable::read_split(file, exe_link)?,
        None => SymbolTable::read(exe_link)?,
    };
    table.binary = cfg.symbols.clone().unwrap_or_else(|| exe.to_path_buf());
    let only_addresses = cfg.funcs.iter().all(|f| f.starts_with("0x"));
    if table.functions.is_empty() && cfg.symbols.is_none() && !only_addresses {
        let dir = exe.parent().unwrap_or(Path::new("/"));
        if let Some(debug) = symbols::find_debug_file(exe_link, dir) {
            eprintln!("perf-user: {} is stripped; symbols from {}", exe.display(), debug.display());
            table = SymbolTable::read_split(&debug, exe_link)?;
            table.binary = exe.to_path_buf();
        }
    }
    Ok(table.select(&cfg.funcs)?)
}

/// Full tracing, unless a return probe could abort the target: then entry-only (counts), said
/// loudly, unless the user accepted the risk.
fn probe_mode(cfg: &AttachConfig, exe_link: &Path, warnings: &mut Vec<String>) -> Result<ProbeMode> {
    if !matches!(cfg.probe_mode, ProbeMode::Full | ProbeMode::Latency) || cfg.funcs.is_empty() {
        return Ok(cfg.probe_mode);
    }
    let risk = SymbolTable::read(exe_link).ok().and_then(|t| t.unwind_risk);
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

/// A target in another mount namespace (a container) is traced through /proc/PID/exe, which is
/// right, but the user should know paths in the report are the container's.
fn namespace_note(pid: u32) -> Option<String> {
    let ours = std::fs::read_link("/proc/self/ns/mnt").ok()?;
    let theirs = std::fs::read_link(format!("/proc/{pid}/ns/mnt")).ok()?;
    (ours != theirs).then(|| {
        format!("pid {pid} is in another mount namespace ({}); its binary is read through /proc/{pid}/exe and paths are the container's", theirs.display())
    })
}

/// `--prometheus` and `--export-interval`: what the loop publishes on a schedule, from one report.
/// Metrics are rendered at most once a second (scrapes read the latest text from the channel).
fn publish_periodic(
    app: &mut App,
    metrics: Option<&tokio::sync::watch::Sender<String>>,
    metrics_at: &mut Option<tokio::time::Instant>,
    snapshots: Option<&mut export::Snapshots>,
) {
    let metrics_due = metrics.is_some() && metrics_at.is_none_or(|t| t.elapsed() >= Duration::from_secs(1));
    let snapshot_due = snapshots.as_ref().is_some_and(|s| s.due());
    if !metrics_due && !snapshot_due {
        return;
    }
    let report = app.report(None);
    if let Some(tx) = metrics.filter(|_| metrics_due) {
        tx.send_replace(prometheus::render(&report, &prometheus::health()));
        *metrics_at = Some(tokio::time::Instant::now());
    }
    if let Some(s) = snapshots.filter(|_| snapshot_due)
        && let Err(e) = s.write(&report)
    {
        eprintln!("perf-user: {e}");
        app.status = format!("snapshot failed: {e}");
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

fn write_export(app: &App, end: Option<EndReason>, path: &Path) -> Result<()> {
    let mut app_report = app.report(end);
    if app_report.threads.iter().any(|t| t.thread.is_empty()) {
        let names = thread_names(app.info.target.pid);
        for t in &mut app_report.threads {
            if let Some((_, n)) = names.iter().find(|(tid, _)| *tid == t.tid) {
                t.thread.clone_from(n);
            }
        }
    }
    export::write_atomic(path, &export::json(&app_report))?;
    Ok(())
}

/// `--max-overhead`: when the probes' estimated cost over the last second exceeds the budget,
/// the hottest functions are given up, one by one, until it fits. Never silently: each one comes
/// back with the note for the UI and the export.
fn overhead_guard(app: &App, max_pct: f64) -> Vec<(u32, String)> {
    if app.target_exited || app.session.elapsed_ns() < 2_000_000_000 {
        return Vec::new();
    }
    let Some(window) = app.session.last_second() else { return Vec::new() };
    let mut costs = model::probe_overhead_pct(window, &app.session.functions, app.cost_per_hit_ns);
    let mut total: f64 = costs.iter().map(|c| c.1).sum();
    costs.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut out = Vec::new();
    for (fn_id, pct) in costs {
        if total <= max_pct {
            break;
        }
        let name = app.session.functions.get(fn_id as usize).map_or("?", |f| f.symbol.as_str());
        out.push((
            fn_id,
            format!(
                "overhead guard: detached {name} (probes cost ~{total:.1}% of a CPU > --max-overhead {max_pct}%; it alone ~{pct:.1}%)"
            ),
        ));
        total -= pct;
    }
    out
}

/// `--slow auto`: each function's exemplar threshold follows its own running p99.9.
/// The kernel compares raw wall times (probe cost included) with the threshold, while the
/// session's histograms are calibrated: the probe cost is added back.
fn update_auto_thresholds(app: &App, tracer: &mut Tracer) {
    let Some(latest) = app.session.latest() else {
        return;
    };
    for f in &latest.functions {
        if f.count >= 100 {
            let p999 = f.total_hist.summary(None).p999_ns.max(1);
            let probe_cost = app.session.functions.get(f.id as usize).map_or(0, |fi| fi.calibration_ns);
            let _ = tracer.set_slow_threshold(f.id, p999.saturating_add(probe_cost));
        }
    }
}

fn progress_line(app: &App) -> String {
    let s = &app.session;
    let Some(w) = s.last_second() else {
        return String::new();
    };
    let calls: u64 = w.functions.iter().map(|f| f.calls()).sum();
    let slowest = w.functions.iter().filter(|f| f.count > 0).map(|f| (f.total_hist.summary(None).p99_ns, f.id)).max();
    let top = slowest
        .and_then(|(p99, id)| {
            s.functions.get(id as usize).map(|fi| format!("; slowest p99 {} {}", units::fmt_ns(p99), fi.symbol))
        })
        .unwrap_or_default();
    format!(
        "[{:>6}] {} calls, {} probe hits, {} dropped, {} untimed{}\n",
        units::fmt_ns(s.elapsed_ns()),
        units::fmt_rate(model::rate_per_s(calls, w.at_ns)),
        units::fmt_rate(s.hits_per_s()),
        w.counters.lost.dropped(),
        w.counters.lost.total() - w.counters.lost.dropped(),
        top
    )
}
