//! perf-user: attach eBPF probes to a running process and show where each function's time goes.
//! This file wires the pieces: arguments → symbols → loader → (collect → app → tui/text) → export.

mod app;
mod btf;
mod cli;
mod collect;
mod export;
mod loader;
mod model;
mod report;
mod symbols;
mod syscalls;
mod tui;
mod units;

use std::{
    io::{IsTerminal, Write},
    path::{Path, PathBuf},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, Result, bail};
use clap::Parser;
use perf_ebpf_common::Config as KernelConfig;
use tokio::signal::unix::{SignalKind, signal};

use crate::{
    app::{Action, App, EndReason, Event},
    cli::{AttachConfig, Cli, Cmd, Slow},
    collect::Collector,
    loader::{LoadSpec, Probe, Tracer},
    model::{FuncInfo, Session},
    report::{RunInfo, Target},
    symbols::SymbolTable,
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

fn snapshot_path(pid: u32) -> PathBuf {
    PathBuf::from(format!("perf-ebpf-{pid}-{}.json", unix_ns() / 1_000_000_000))
}

fn attach(cfg: AttachConfig) -> Result<()> {
    let pid = cfg.pid;
    let start = process_start(pid);
    let exe_link = PathBuf::from(format!("/proc/{pid}/exe"));
    let exe = std::fs::read_link(&exe_link)
        .with_context(|| format!("cannot read {} (does the process exist and may we trace it?)", exe_link.display()))?;
    if let Some(path) = &cfg.export {
        export::check_writable(path)?;
    }

    // Symbols come from the file the process runs (through /proc, so a replaced binary on disk
    // does not matter) unless the user gave an unstripped copy.
    let symbol_file = cfg.symbols.clone().unwrap_or_else(|| exe_link.clone());
    let functions = if cfg.funcs.is_empty() {
        Vec::new()
    } else {
        let mut table = SymbolTable::read(&symbol_file)?;
        table.binary = if cfg.symbols.is_some() { symbol_file.clone() } else { exe.clone() };
        table.select(&cfg.funcs)?
    };
    if functions.len() > cfg.max_funcs {
        bail!(
            "{} functions match but --max-funcs is {}; narrow the globs or raise --max-funcs",
            functions.len(),
            cfg.max_funcs
        );
    }

    let infos: Vec<FuncInfo> = functions
        .iter()
        .enumerate()
        .map(|(i, f)| FuncInfo {
            id: i as u32,
            symbol: f.name.clone(),
            raw_symbol: f.raw.clone(),
            address: f.address,
            ..FuncInfo::default()
        })
        .collect();
    let kernel_config = KernelConfig {
        slow_ns: match cfg.slow {
            Slow::Fixed(ns) => ns,
            Slow::Off | Slow::Auto => 0,
        },
        per_thread: u32::from(cfg.per_thread),
        _pad: 0,
    };
    let spec = LoadSpec {
        pid,
        exe: exe_link.clone(),
        probes: functions
            .iter()
            .enumerate()
            .map(|(i, f)| Probe { fn_id: i as u32, file_offset: f.file_offset, symbol: f.name.clone() })
            .collect(),
        returns: true,
        config: kernel_config,
        max_funcs: cfg.max_funcs,
    };

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async move {
        // Handlers first: a Ctrl-C during attach is then seen right after it, not lost.
        let mut sigint = signal(SignalKind::interrupt())?;
        let mut sigterm = signal(SignalKind::terminate())?;

        let mut tracer = Tracer::load(&spec)?;
        if !alive(pid, start) {
            bail!("pid {pid} exited while attaching");
        }
        let mut collector = Collector::new(&mut tracer, infos.iter().map(|f| f.symbol.clone()).collect())?;
        collector.per_thread = cfg.per_thread;
        let info = RunInfo {
            target: Target { pid, exe: exe.display().to_string(), comm: read_comm(&format!("/proc/{pid}/comm")) },
            started_unix_ns: unix_ns(),
            end_reason: String::new(),
            thread_names: Vec::new(),
            warnings: Vec::new(),
        };
        let attached_line = format!(
            "attached {} probes to pid {pid} ({}): {} functions{}\n",
            tracer.attached,
            exe.display(),
            infos.len(),
            if cfg.syscalls { ", syscalls" } else { "" }
        );
        let mut app = App::new(Session::new(infos, cfg.exemplars), info);

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
                    let path = cfg.export.clone().unwrap_or_else(|| snapshot_path(pid));
                    app.status = match write_export(&app, None, &path) {
                        Ok(()) => format!("exported {}", path.display()),
                        Err(e) => format!("export failed: {e:#}"),
                    };
                }
                Action::Exit(reason) => break reason,
            }
            if cfg.slow == Slow::Auto {
                update_auto_thresholds(&app, &mut tracer);
            }
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

        // Final reading, then detach before writing anything (the target runs untraced again).
        if !app.target_exited {
            app.handle(Event::Tick { sample: collector.sample(), exemplars: collector.drain_exemplars() });
        }
        if cfg.per_thread {
            learn_thread_names(&mut app);
        }
        drop(collector);
        drop(tracer);
        if let Some(ui) = ui.take() {
            ui.stop();
        }
        let report = app.report(Some(end));
        if let Some(path) = &cfg.export {
            write_export(&app, Some(end), path)?;
        }
        out(&export::text(&report));
        if end == EndReason::TargetExited {
            out(&format!("target pid {pid} exited; report covers it up to its exit\n"));
        }
        Ok(())
    })
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

/// `--slow auto`: each function's exemplar threshold follows its own running p99.9.
fn update_auto_thresholds(app: &App, tracer: &mut Tracer) {
    let Some(latest) = app.session.latest() else {
        return;
    };
    for f in &latest.functions {
        if f.count >= 100 {
            let p999 = f.total_hist.summary(None).p999_ns.max(1);
            let _ = tracer.set_slow_threshold(f.id, p999);
        }
    }
}

fn progress_line(app: &App) -> String {
    let s = &app.session;
    let Some(w) = s.window(model::Window::Last1s) else {
        return String::new();
    };
    let calls: u64 = w.functions.iter().map(|f| f.count).sum();
    let slowest = w.functions.iter().filter(|f| f.count > 0).map(|f| (f.total_hist.summary(None).p99_ns, f.id)).max();
    let top = slowest
        .and_then(|(p99, id)| {
            s.functions.get(id as usize).map(|fi| format!("; slowest p99 {} {}", units::fmt_ns(p99), fi.symbol))
        })
        .unwrap_or_default();
    format!(
        "[{:>6}] {} calls/s, {} probe hits/s, {} lost{}\n",
        units::fmt_ns(s.elapsed_ns()),
        units::fmt_rate(model::rate_per_s(calls, w.at_ns)),
        units::fmt_rate(s.hits_per_s()),
        w.counters.lost.total(),
        top
    )
}
