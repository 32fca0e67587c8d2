//! Stage 5 of `attach`: the final reading, then results first (terminal, export, tables) and the
//! detach last: it is slow with many probes (the kernel waits out a grace period per uprobe,
//! serially, ~0.1 s each here), and nobody should wait for that to see their numbers.

use anyhow::Result;

use super::{
    load::{Loaded, steal_reading},
    run::{Loop, write_export},
    threads::learn_thread_names,
};
use crate::{
    app::{EndReason, Event},
    cli::AttachConfig,
    commands::out,
    model::steal_check,
    output::{export, prometheus},
};

pub(super) fn finish(cfg: &AttachConfig, session: Loop, end: EndReason) -> Result<()> {
    let Loop { loaded, pid, ui, mut published, .. } = session;
    let Loaded { mut tracer, calibration, mut collector, mut app, steal_start, nmi_start, .. } = loaded;
    // The numbers end here (after an exit or exec the last reading was taken already). The target
    // still runs: its functions are frozen first, so every map read holds the same calls (each
    // reading's function and path totals agree anyway, from the epoch copy it settles; the
    // histograms and per-thread rows only agree with them once nothing records).
    if !app.target_exited && end != EndReason::Exec {
        if let Err(e) = tracer.freeze() {
            app.info.warnings.push(format!(
                "the last reading was taken while the target ran ({}): a function's histogram and per-thread rows can hold calls made during the reading that its count does not",
                crate::bpf::sys::error_chain(&e)
            ));
        }
        app.handle(Event::Tick { sample: collector.sample(), exemplars: collector.drain_exemplars() });
    }
    if let Some(start) = steal_start {
        app.info.cpu_steal = steal_check(&start, &steal_reading(&collector));
    }
    note_nmis(&mut app, nmi_start);
    // A run the kernel skipped is an event the books never saw (a switch, an interrupt's end).
    let misses: u64 = prometheus::health().programs.iter().map(|p| p.recursion_misses).sum();
    if misses > 0 {
        app.info.warnings.push(format!(
            "the kernel skipped {misses} runs of our BPF programs (recursion_misses: already running on that CPU); the events they would have seen are missing"
        ));
    }
    if cfg.per_thread {
        learn_thread_names(&mut app);
    }
    drop(ui);
    drop(collector);
    let report = app.report(Some(end));
    if let Some(s) = &mut published.snapshots {
        // The stream ends with the final report, like the --export file.
        if let Err(e) = s.write(&report) {
            eprintln!("perf-user: {e}");
        }
    }
    let exported = cfg.export.as_ref().map(|path| write_export(&app, Some(end), path)).transpose();
    let traced = cfg.trace.as_ref().map(|path| write_trace(&app, path)).transpose();
    out(&export::text(&report));
    match end {
        EndReason::TargetExited => out(&format!("target pid {pid} exited; report covers it up to its exit\n")),
        EndReason::Exec => {
            out(&format!("target pid {pid} ran execve; report covers its previous program up to then\n"));
        }
        _ => {}
    }
    drop(tracer);
    drop(calibration);
    exported?;
    traced?;
    Ok(())
}

/// `--trace`: the slow calls kept, as Chrome trace-event JSON.
fn write_trace(app: &crate::app::App, path: &std::path::Path) -> Result<()> {
    let kept: Vec<_> = app.session.exemplars.iter().cloned().collect();
    let target = &app.info.target;
    let bytes = crate::output::trace::serialize(&kept, target.pid, &target.comm);
    Ok(crate::output::files::write_file(path, &bytes)?)
}

/// `--interference`: the NMIs the machine took during the run, whose time is not split out (there
/// is no NMI source to measure it from on the VMs this was built on): counted, and said if any.
fn note_nmis(app: &mut crate::app::App, start: Option<u64>) {
    let Some(n) = start.zip(crate::target::proc::nmi_total()).and_then(|(a, b)| b.checked_sub(a)) else {
        return;
    };
    app.info.nmi_count = Some(n);
    if n > 0 {
        app.info.warnings.push(format!(
            "{n} NMIs on the machine during the run: NMI time is not split out (nmi_source: not available), any that hit a traced call is in its own compute"
        ));
    }
}
