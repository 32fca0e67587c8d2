//! The main thread: owns the run, turns signals and the deadline into
//! pipeline commands, and writes the truth file from the pipeline's reports.

use std::io::Write;
use std::path::PathBuf;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Instant;

use anyhow::{Context, anyhow};
use signal_hook::consts::{SIGINT, SIGTERM, SIGUSR1, SIGUSR2};
use signal_hook::iterator::Signals;

use crate::cli::{Config, JournalLocation};
use crate::pipeline::{Event, Pipeline};
use crate::truth::{self, Report, Target, Truth};

/// Removes the default journal at exit, including on error paths.
struct RemoveOnDrop(Option<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(path) = &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

pub fn run(config: Config) -> anyhow::Result<()> {
    // Install handlers before anything can observe us: SIGUSR1/2 would
    // otherwise kill a process that a test signals right after "ready".
    let mut signals = Signals::new([SIGINT, SIGTERM, SIGUSR1, SIGUSR2]).context("cannot install signal handlers")?;
    let signals_handle = signals.handle();
    let (events_tx, events_rx) = mpsc::channel();
    let signal_events = events_tx.clone();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                if signal_events.send(Event::Signal(signal)).is_err() {
                    break;
                }
            }
        })
        .context("cannot spawn the signals thread")?;

    let _journal_cleanup = RemoveOnDrop(match &config.journal {
        JournalLocation::Temporary(path) => Some(path.clone()),
        JournalLocation::Given(_) => None,
    });
    let pipeline = Pipeline::start(&config, &events_tx)?;
    drop(events_tx);

    let mut stdout = std::io::stdout().lock();
    // A closed stdout is not our failure: the run goes on without it.
    let _ = writeln!(stdout, "ready pid={}", std::process::id()).and_then(|()| stdout.flush());
    drop(stdout);

    let target = Target::current();
    let mut holding = config.hold;
    let mut deadline = None;
    if !holding {
        pipeline.release();
        deadline = config.duration.map(|d| Instant::now() + d);
    }

    let report = loop {
        let event = match deadline {
            Some(at) => match events_rx.recv_timeout(at.saturating_duration_since(Instant::now())) {
                Ok(event) => event,
                Err(RecvTimeoutError::Timeout) => {
                    deadline = None;
                    pipeline.stop();
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => return Err(disconnected()),
            },
            None => events_rx.recv().map_err(|_| disconnected())?,
        };
        match event {
            Event::Signal(SIGINT | SIGTERM) => {
                deadline = None;
                pipeline.stop();
            }
            Event::Signal(SIGUSR1) => {
                if config.truth.is_some() {
                    pipeline.snapshot();
                } else {
                    eprintln!("target-app: SIGUSR1 ignored: no --truth file given");
                }
            }
            Event::Signal(SIGUSR2) => {
                if holding {
                    holding = false;
                    pipeline.release();
                    deadline = config.duration.map(|d| Instant::now() + d);
                }
            }
            Event::Signal(_) => {}
            Event::Report { is_final: false, report } => {
                if let Err(e) = write_truth(&config, &report, &target, false) {
                    // A failed snapshot is worth a warning, not the run.
                    eprintln!("target-app: warning: truth snapshot not written: {e:#}");
                }
            }
            Event::Report { is_final: true, report } => break report,
            Event::Failed { thread, error } => {
                return Err(error.context(format!("the {thread} thread failed")));
            }
        }
    };

    let truth = write_truth(&config, &report, &target, true)?;
    pipeline.join();
    signals_handle.close();
    eprint!("{}", summary(&truth));
    Ok(())
}

fn disconnected() -> anyhow::Error {
    anyhow!("every pipeline thread exited without a final report")
}

fn write_truth(config: &Config, report: &Report, target: &Target, is_final: bool) -> anyhow::Result<Truth> {
    let truth = Truth::build(report, target.clone(), is_final, truth::unix_ns_now(), Instant::now());
    if let Some(path) = &config.truth {
        truth::write_atomic(path, &truth).with_context(|| format!("cannot write the truth file {}", path.display()))?;
    }
    Ok(truth)
}

/// The exit summary printed on stderr.
pub fn summary(truth: &Truth) -> String {
    let p = &truth.pipeline;
    let mut out = format!(
        "target-app: fed {} messages in {:.3} s ({:.0} msg/s achieved); \
         decoded {}, signals {}, risk rejected {}, orders {}, fills {}, journaled {}\n",
        truth.messages_fed,
        truth.duration_ns as f64 / 1e9,
        truth.rate_achieved_per_s,
        p.decoded,
        p.signals_fired,
        p.risk_rejected,
        p.orders_submitted,
        p.fills,
        p.journaled,
    );
    out.push_str(&format!(
        "  {:<11} {:>10} {:>9} {:>10} {:>10} {:>12}\n",
        "stage", "calls", "injected", "p50_ns", "p99_ns", "max_ns"
    ));
    for f in truth.functions.iter().map(|f| &f.summary) {
        out.push_str(&format!(
            "  {:<11} {:>10} {:>9} {:>10} {:>10} {:>12}\n",
            f.stage.short_name(),
            f.latency.count,
            f.injected_count,
            f.latency.p50_ns,
            f.latency.p99_ns,
            f.latency.max_ns
        ));
    }
    out
}
