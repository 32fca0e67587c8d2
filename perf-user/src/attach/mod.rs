//! `perf-user attach` and `perf-user run` as one pipeline of named stages with typed hand-offs:
//! preflight → plan → load → run → finish. Each stage's module says what it may touch.

mod finish;
mod launch;
mod liveness;
mod load;
mod objects;
mod plan;
mod preflight;
mod refresh;
mod run;
mod threads;

use anyhow::Result;

use crate::cli::AttachConfig;

pub use launch::LaunchError;
pub use liveness::{Liveness, TargetState};

/// Traces `cfg.pid` until the duration, a signal, a quit key, the target's exit or `execve`;
/// prints (and exports) the results, then detaches. For `run` (`cfg.command` given) the target is
/// CMD, started here with its probes in place; returns the exit status perf-user should end
/// with: CMD's for `run`, 0 for `attach`.
pub fn run(cfg: AttachConfig) -> Result<i32> {
    // Everything that can fail cheaply fails here, before a probe is placed (and, for `run`,
    // the child is forked here, while perf-user still has one thread).
    let mut checked = preflight::check(&cfg)?;
    let plan = plan::make(&cfg, &checked)?;
    let mut child = checked.target.launched.take();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        // Handlers first: a Ctrl-C during attach is then seen right after it, not lost.
        let mut signals = run::Signals::install(child.as_ref().map(|c| c.pid))?;
        let published = run::Published::start(checked.metrics_listener, checked.snapshots)?;
        let mut loaded = load::load(&cfg, plan, &checked.target, checked.baseline.as_ref(), &signals)?;
        if let Some(child) = &mut child {
            // The probes are in: CMD may start. Its exec is no exec away from the target.
            child.release()?;
            checked.target.liveness.watch_exec();
            loaded.app.info.target.comm = crate::target::proc::comm(child.pid);
        }
        let mut session = run::Loop::new(&cfg, loaded, checked.target, published)?;
        let end = session.run(&cfg, &mut signals).await?;
        finish::finish(&cfg, session, end)
    })?;
    match child {
        Some(child) => Ok(child.wait_after_trace()?),
        None => Ok(0),
    }
}
