//! perf-user: attach eBPF probes to a running process and show where each function's time goes.
//! This file only parses the command line and dispatches; `perf_user::attach` holds the pipeline.

use std::io::IsTerminal;

use clap::Parser;
use perf_user::{
    attach,
    cli::{Cli, Cmd},
    commands,
};

fn main() {
    let result = match Cli::parse().cmd {
        Cmd::Attach(args) => args.validate(std::io::stdout().is_terminal()).map_err(Into::into).and_then(attach::run),
        Cmd::Report(args) => commands::report(&args),
        Cmd::Diff(args) => std::process::exit(commands::diff(&args)),
        Cmd::Flamegraph(args) => commands::flamegraph(&args),
    };
    if let Err(e) = result {
        eprintln!("perf-user: error: {e:#}");
        std::process::exit(1);
    }
}
