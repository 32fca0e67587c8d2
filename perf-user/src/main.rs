//! perf-user: attach eBPF probes to a running process and show where each function's time goes.
//! This file only parses the command line and dispatches; `perf_user::attach` holds the pipeline.

use std::io::IsTerminal;

use clap::Parser;
use perf_user::{
    attach,
    cli::{Cli, Cmd},
    commands,
    output::escape,
};

fn main() {
    let tty = std::io::stdout().is_terminal();
    let result = match Cli::parse().cmd {
        Cmd::Attach(args) => args.validate(tty).map_err(Into::into).and_then(attach::run).map(|_| ()),
        // perf-user ends as CMD did, so a script sees CMD's status.
        Cmd::Run(args) => match args.validate(tty).map_err(Into::into).and_then(attach::run) {
            Ok(status) => std::process::exit(status),
            Err(e) => Err(e),
        },
        Cmd::Report(args) => commands::report(&args),
        Cmd::Diff(args) => std::process::exit(commands::diff(&args)),
        Cmd::Flamegraph(args) => commands::flamegraph(&args),
    };
    if let Err(e) = result {
        // Errors name the target's files and symbols, which may carry terminal escapes.
        eprintln!("perf-user: error: {}", escape::lines(&format!("{e:#}")));
        // A command `run` could not start ends as a shell says (127 not found, 126 cannot run).
        std::process::exit(e.downcast_ref::<attach::LaunchError>().map_or(1, attach::LaunchError::exit_status));
    }
}
