//! `perf-user attach` as a pipeline of named stages with typed hand-offs:
//! preflight → plan → load → run → finish. Each stage's module says what it may touch.

mod finish;
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

pub use liveness::{Liveness, TargetState};

/// Traces `cfg.pid` until the duration, a signal, a quit key, the target's exit or `execve`;
/// prints (and exports) the results, then detaches.
pub fn run(cfg: AttachConfig) -> Result<()> {
    // Everything that can fail cheaply fails here, before a probe is placed.
    let checked = preflight::check(&cfg)?;
    let plan = plan::make(&cfg, &checked)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async move {
        // Handlers first: a Ctrl-C during attach is then seen right after it, not lost.
        let mut signals = run::Signals::install()?;
        let published = run::Published::start(checked.metrics_listener, checked.snapshots)?;
        let loaded = load::load(&cfg, plan, &checked.target, &signals)?;
        let mut session = run::Loop::new(&cfg, loaded, checked.target, published)?;
        let end = session.run(&cfg, &mut signals).await?;
        finish::finish(&cfg, session, end)
    })
}
