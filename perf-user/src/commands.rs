//! The subcommands that read an export (`report`, `diff`, `flamegraph`) and the one stdout writer
//! every subcommand prints through. `attach` lives in its own module (`crate::attach`).

use std::io::Write;

use anyhow::{Context, Result};

use crate::{
    cli,
    output::{diff, export, flame},
};

/// Writes to stdout; a closed pipe (`| head`) is not an error, the run goes on quietly.
pub fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush());
}

/// `perf-user diff`: 0 no regression, 1 a function regressed beyond --fail-above, 2 bad input
/// (one line on stderr), so CI can tell a regression from a broken pipeline.
pub fn diff(args: &cli::DiffArgs) -> i32 {
    let run = || -> Result<diff::Diff> {
        let t = args.thresholds().map_err(anyhow::Error::msg)?;
        let base = export::read_report(&args.base)?;
        let new = export::read_report(&args.new)?;
        let (bf, nf) = (args.base.display().to_string(), args.new.display().to_string());
        diff::check_same_program(&base, &bf, &new, &nf, args.force)?;
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

/// `perf-user flamegraph`: an export as an SVG flame graph or folded stacks.
pub fn flamegraph(args: &cli::FlameArgs) -> Result<()> {
    let report = export::read_report(&args.file)?;
    let source = if args.slow_only { flame::Source::SlowOnly } else { flame::Source::AllCalls };
    let bytes = if args.folded {
        flame::folded(&report, source).into_bytes()
    } else {
        let title = format!("perf-ebpf: pid {} {}", report.target.pid, report.target.exe);
        flame::svg(&report, source, &title).with_context(|| args.file.display().to_string())?
    };
    export::write_atomic(&args.output, &bytes)?;
    Ok(())
}

/// `perf-user report`: an export in another format.
pub fn report(args: &cli::ReportArgs) -> Result<()> {
    let report = export::read_report(&args.file)?;
    out(&String::from_utf8_lossy(&export::serialize(&report, args.format)));
    Ok(())
}
