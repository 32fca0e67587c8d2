//! Stage 4 of `attach`: the event loop. Ticks, signals, the deadline, terminal keys and the
//! target's exit become `Event`s for the app; the loop does the I/O the app asks for.

use std::{
    sync::{Arc, atomic::AtomicBool},
    time::Duration,
};

use crate::{bpf::sys::error_chain, model::WindowCost};

use anyhow::Result;
use tokio::{
    signal::unix::{Signal, SignalKind, signal},
    sync::watch,
    time::Instant,
};

use super::{
    launch,
    liveness::AsyncLiveness,
    load::Loaded,
    preflight::Target,
    threads::{learn_thread_names, thread_names},
};
use crate::{
    app::{Action, App, EndReason, Event, Key},
    cli::{AttachConfig, Slow},
    commands::out,
    output::{escape, export, prometheus},
    tui,
};

/// SIGINT and SIGTERM: as events in the loop, and as a flag the blocking attach checks. For
/// `run` they go to CMD instead, and the run ends when CMD does.
pub(super) struct Signals {
    sigint: Signal,
    sigterm: Signal,
    cancel: Arc<AtomicBool>,
    /// `run`: signals are forwarded to CMD, never end the loop themselves.
    forwarded: bool,
}

impl Signals {
    pub fn install(forward_to: Option<u32>) -> Result<Signals> {
        let cancel = Arc::new(AtomicBool::new(false));
        for sig in [libc::SIGINT, libc::SIGTERM] {
            signal_hook::flag::register(sig, Arc::clone(&cancel))?;
            if let Some(pid) = forward_to {
                forward(sig, pid)?;
            }
        }
        Ok(Signals {
            sigint: signal(SignalKind::interrupt())?,
            sigterm: signal(SignalKind::terminate())?,
            cancel,
            forwarded: forward_to.is_some(),
        })
    }

    pub fn cancel(&self) -> &AtomicBool {
        &self.cancel
    }

    async fn recv(&mut self) {
        if self.forwarded {
            return std::future::pending().await;
        }
        tokio::select! {
            _ = self.sigint.recv() => {}
            _ = self.sigterm.recv() => {}
        }
    }
}

/// Passes `sig` on to CMD from the handler itself (kill is async-signal-safe), unless the terminal
/// sent it: a Ctrl-C goes to the whole foreground process group, CMD included (it stays in ours),
/// and a second copy would make a program that stops gently on the first stop hard.
fn forward(sig: i32, pid: u32) -> Result<()> {
    let action = move |info: &libc::siginfo_t| {
        if info.si_code != libc::SI_KERNEL {
            launch::interrupt(pid, sig);
        }
    };
    // SAFETY: the action only compares an integer and calls kill(2), both async-signal-safe.
    unsafe { signal_hook_registry::register_sigaction(sig, action) }?;
    Ok(())
}

/// `--prometheus` and `--export-interval`: what the loop publishes on a schedule.
pub(super) struct Published {
    metrics: Option<watch::Sender<String>>,
    metrics_at: Option<Instant>,
    pub snapshots: Option<export::Snapshots>,
}

impl Published {
    pub fn start(listener: Option<std::net::TcpListener>, snapshots: Option<export::Snapshots>) -> Result<Published> {
        let metrics = match listener {
            Some(listener) => {
                let addr = listener.local_addr()?;
                let (tx, rx) = watch::channel(String::new());
                prometheus::spawn(listener, rx)?;
                out(&format!("serving Prometheus metrics on http://{addr}/metrics\n"));
                Some(tx)
            }
            None => None,
        };
        Ok(Published { metrics, metrics_at: None, snapshots })
    }

    /// Metrics are rendered at most once a second (scrapes read the latest text from the channel).
    fn publish(&mut self, app: &mut App) {
        let metrics_due =
            self.metrics.is_some() && self.metrics_at.is_none_or(|t| t.elapsed() >= Duration::from_secs(1));
        let snapshot_due = self.snapshots.as_ref().is_some_and(|s| s.due());
        if !metrics_due && !snapshot_due {
            return;
        }
        let report = app.report(None);
        if let Some(tx) = self.metrics.as_ref().filter(|_| metrics_due) {
            tx.send_replace(prometheus::render(&report, &prometheus::health()));
            self.metrics_at = Some(Instant::now());
        }
        if let Some(s) = self.snapshots.as_mut().filter(|_| snapshot_due)
            && let Err(e) = s.write(&report)
        {
            eprintln!("perf-user: {e}");
            app.set_status(format!("snapshot failed: {e}"));
        }
    }
}

/// The loop's state: what was loaded, the target, the terminal, the schedule.
pub(super) struct Loop {
    pub loaded: Loaded,
    pub pid: u32,
    liveness: Option<AsyncLiveness>,
    pub ui: Option<tui::Tui>,
    pub published: Published,
    /// `run`: the target is CMD, which gets the terminal UI's Ctrl-C.
    launched: bool,
}

impl Loop {
    pub fn new(cfg: &AttachConfig, loaded: Loaded, target: Target, published: Published) -> Result<Loop> {
        let ui = if cfg.tui {
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
            out(&loaded.attached_line);
        }
        let liveness = Some(target.liveness.into_async()?);
        Ok(Loop { loaded, pid: target.pid, liveness, ui, published, launched: !cfg.command.is_empty() })
    }

    /// Runs until the app says the run ends; returns why.
    pub async fn run(&mut self, cfg: &AttachConfig, signals: &mut Signals) -> Result<EndReason> {
        let mut tick = tokio::time::interval(Duration::from_nanos(cfg.interval_ns));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let deadline = cfg.duration_ns.map(|ns| Instant::now() + Duration::from_nanos(ns));
        let mut last_print = Instant::now();
        loop {
            let event = tokio::select! {
                _ = tick.tick() => self.tick_event(),
                () = wait_exit(self.liveness.as_ref()) => self.exit_event(),
                () = signals.recv() => Event::Signal,
                () = sleep_until(deadline) => Event::DurationElapsed,
                key = tui::next_key(&mut self.ui) => Event::Key(key),
            };
            if self.passes_on_ctrl_c(&event) {
                continue;
            }
            let exited = matches!(event, Event::TargetExited);
            // The target's last reading comes with its exit.
            let reading = exited || matches!(event, Event::Tick { .. });
            match self.loaded.app.handle(event) {
                Action::Continue => {}
                Action::ExportSnapshot => self.export_snapshot(cfg),
                Action::Exit(reason) => return Ok(reason),
            }
            if reading {
                self.after_reading(cfg);
            }
            if exited && self.ui.is_none() {
                return Ok(EndReason::TargetExited);
            }
            match &mut self.ui {
                Some(ui) => ui.draw(&self.loaded.app)?,
                None if last_print.elapsed() >= Duration::from_secs(1) => {
                    last_print = Instant::now();
                    out(&self.loaded.app.progress_line());
                }
                None => {}
            }
        }
    }

    /// The terminal UI reads Ctrl-C as a key; for `run` it is CMD's, as it would be without us
    /// (once CMD has exited it quits, as for `attach`).
    fn passes_on_ctrl_c(&mut self, event: &Event) -> bool {
        if !(self.launched && matches!(event, Event::Key(Key::CtrlC)) && !self.loaded.app.target_exited) {
            return false;
        }
        launch::interrupt(self.pid, libc::SIGINT);
        self.loaded.app.status = format!("sent SIGINT to pid {}", self.pid);
        true
    }

    fn sample(&mut self) -> Event {
        let c = &mut self.loaded.collector;
        Event::Tick { sample: c.sample(), exemplars: c.drain_exemplars() }
    }

    /// A reading; after an `execve` the last reading of the old program, then the end.
    fn tick_event(&mut self) -> Event {
        let sample = self.sample();
        if self.liveness.as_ref().is_some_and(AsyncLiveness::execed) {
            self.loaded.app.handle(sample);
            return Event::TargetExec;
        }
        sample
    }

    /// One last reading (the kernel kept counting until the very end), then the exit; the pidfd
    /// stays readable, so it is not watched again.
    fn exit_event(&mut self) -> Event {
        self.liveness = None;
        let sample = self.sample();
        self.loaded.app.handle(sample);
        Event::TargetExited
    }

    /// The `e` key: a numbered snapshot next to `--export` (which the exit writes), or in the
    /// working directory without it; the footer says where.
    fn export_snapshot(&mut self, cfg: &AttachConfig) {
        let app = &mut self.loaded.app;
        let stem = export::numbered_snapshot_stem(cfg.export.as_deref(), self.pid);
        let status = match export::write_numbered_snapshot(&stem, &with_thread_names(app, None)) {
            Ok(path) => format!("snapshot written to {}", path.display()),
            Err(e) => format!("snapshot failed: {e:#}"),
        };
        app.set_status(status);
    }

    /// After each reading (keys change nothing they read): `--slow auto`, the overhead guard, the
    /// periodic publications, thread names and libraries loaded since.
    fn after_reading(&mut self, cfg: &AttachConfig) {
        let Loaded { tracer, app, collector, .. } = &mut self.loaded;
        if cfg.slow == Slow::Auto {
            for (fn_id, slow_ns) in app.auto_thresholds() {
                let _ = tracer.set_slow_threshold(fn_id, slow_ns);
            }
            if let Some(spans) = &mut collector.spans {
                for (span_id, slow_ns) in app.span_auto_thresholds() {
                    let _ = spans.set_slow(span_id, slow_ns);
                }
            }
        }
        // All of the verdict's functions at once: their links close side by side.
        let verdict = app.overhead_guard(cfg.max_overhead_pct);
        if !verdict.is_empty() {
            let fn_ids: Vec<u32> = verdict.iter().map(|v| v.0).collect();
            match tracer.detach_functions(&fn_ids) {
                Ok(_) => {
                    for (fn_id, note) in verdict {
                        if self.ui.is_none() {
                            print_note(&note);
                        }
                        app.handle(Event::ProbesDetached { fn_id, note });
                    }
                }
                Err(e) => eprintln!("perf-user: overhead guard: {e:#}"),
            }
        }
        if let Some(warning) = app.tracepoints_over_budget(cfg.max_overhead_pct) {
            self.say(warning);
        }
        let Loaded { app, .. } = &mut self.loaded;
        self.published.publish(app);
        if cfg.per_thread {
            learn_thread_names(app);
        }
        if !app.target_exited {
            self.pick_up_libraries();
        }
    }

    /// Probes the functions of libraries loaded since the last look (see `refresh`).
    fn pick_up_libraries(&mut self) {
        let Loaded { tracer, app, collector, refresh, probe_cost, .. } = &mut self.loaded;
        let Some(late) = refresh.as_mut().and_then(|r| r.poll(app.session.functions.len() as u32)) else { return };
        let mut infos = late.infos;
        let mut warnings = Vec::new();
        if !late.probes.is_empty() {
            match tracer.add_probes(&late.probes, &AtomicBool::new(false)) {
                Ok(skipped) => {
                    for s in skipped {
                        if let Some(i) = infos.iter_mut().find(|i| i.id == s.fn_id) {
                            i.detached = true;
                        }
                        warnings.push(format!("warning: {s}"));
                    }
                    // The library's links may be the ones that ran out of descriptors.
                    warnings.extend(tracer.links_shared_note().map(|n| format!("warning: {n}")));
                }
                Err(e) => {
                    // Their ids stay taken (some may have probes): shown as detached, never reused.
                    infos.iter_mut().for_each(|i| i.detached = true);
                    warnings.push(format!("warning: probing a library loaded after attach: {}", error_chain(&e)));
                }
            }
        }
        let costs: Vec<WindowCost> = infos.iter().map(|i| probe_cost.in_window_for(i.site_class)).collect();
        let now_ns = app.session.elapsed_ns();
        for (info, cost) in infos.iter_mut().zip(&costs) {
            info.calibration_ns = cost.median_ns;
            info.floor_ns = cost.floor_ns();
            info.hit_cost_ns = probe_cost.per_call_for(info.site_class) / 2;
            info.added_ns = Some(now_ns);
        }
        collector.add_functions(infos.iter().map(|i| i.symbol.clone()).collect(), costs);
        for note in late.notes {
            if self.ui.is_none() {
                print_note(&note);
            }
            self.loaded.app.handle(Event::FunctionsAdded { functions: std::mem::take(&mut infos), note });
        }
        for w in warnings {
            self.say(w);
        }
    }

    /// A note for the user now: on stdout without the terminal UI, in the status line with it.
    fn say(&mut self, note: String) {
        if self.ui.is_none() {
            print_note(&note);
        }
        self.loaded.app.set_status(note.clone());
        self.loaded.app.info.warnings.push(note);
    }
}

/// A note on stdout (no terminal UI): it can name a library path or a symbol the target chose, so
/// its control characters are shown, never obeyed.
fn print_note(note: &str) {
    out(&format!("perf-user: {}\n", escape::control(note)));
}

async fn wait_exit(liveness: Option<&AsyncLiveness>) {
    match liveness {
        // A failed wait (the runtime lost the descriptor) is treated like no watch at all.
        Some(l) if l.wait_exit().await.is_ok() => {}
        _ => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

pub(super) fn write_export(app: &App, end: Option<EndReason>, path: &std::path::Path) -> Result<()> {
    export::write_atomic(path, &export::json(&with_thread_names(app, end)))?;
    Ok(())
}

/// The report, with the names of threads still alive filled in.
fn with_thread_names(app: &App, end: Option<EndReason>) -> crate::output::report::Report {
    let mut app_report = app.report(end);
    if app_report.threads.iter().any(|t| t.thread.is_empty()) {
        let names = thread_names(app.info.target.pid);
        for t in &mut app_report.threads {
            if let Some((_, n)) = names.iter().find(|(tid, _)| *tid == t.tid) {
                t.thread.clone_from(n);
            }
        }
    }
    app_report
}
