//! Entry point: parses the command line, runs the pipeline, and maps every
//! failure to a one-line message and a non-zero exit code.

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;
use target_app::cli::Args;

/// Exit code for a bad command line, as clap uses.
const USAGE_ERROR: u8 = 2;

fn main() -> ExitCode {
    // Injected panics are expected and caught; say nothing about them, keep every other message.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<&str>() != Some(&target_app::inject::INJECTED_PANIC) {
            default_hook(info);
        }
    }));
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) => return clap_exit(&e),
    };
    let config = match args.into_config() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("target-app: error: {e}");
            return ExitCode::from(USAGE_ERROR);
        }
    };
    match target_app::app::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("target-app: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `--help`/`--version` print in full; anything else is one line on stderr,
/// because callers (tests, scripts) read the first line as the reason.
fn clap_exit(e: &clap::Error) -> ExitCode {
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            // A closed stdout is fine for --help.
            let _ = e.print();
            ExitCode::SUCCESS
        }
        _ => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("error: invalid arguments");
            eprintln!("target-app: {first} (see --help)");
            ExitCode::from(USAGE_ERROR)
        }
    }
}
