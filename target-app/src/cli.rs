//! Command line: clap-derive raw `Args`, validated into the `Config` the
//! rest of the program runs from.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::inject::{InjectPlan, InjectSpec, SpecError, parse_duration};

#[derive(Debug, Clone, Parser)]
#[command(
    name = "target-app",
    version,
    about = "Traced demo process for perf-ebpf: a small trading pipeline that records its own per-stage latencies as ground truth",
    long_about = None,
    after_long_help = AFTER_HELP
)]
pub struct Args {
    /// Market-data messages fed per second.
    #[arg(long, value_name = "N", default_value_t = 20_000,
          value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub rate: u64,

    /// Seed of the simulated market; the same seed gives the same messages,
    /// orders and fills.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,

    /// Stop after this many seconds of feeding (float, e.g. 2.5; a unit such
    /// as 500ms also works). Default: run until SIGINT or SIGTERM.
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub duration: Option<Duration>,

    /// Stop feeding after exactly N messages, drain the pipeline, write the
    /// truth file and exit 0.
    #[arg(long, value_name = "N")]
    pub messages: Option<u64>,

    /// Start all threads but feed nothing until SIGUSR2 arrives, so a tracer
    /// can attach first and see every call.
    #[arg(long)]
    pub hold: bool,

    /// Write the ground-truth JSON here at exit and on every SIGUSR1
    /// (atomically: FILE.json.tmp, then rename).
    #[arg(long, value_name = "FILE.json")]
    pub truth: Option<PathBuf>,

    /// Journal file. Default: target-app-<pid>.journal in the temp
    /// directory, removed at exit.
    #[arg(long, value_name = "PATH")]
    pub journal: Option<PathBuf>,

    /// Inject latency into a stage; repeatable, at most once per stage.
    ///
    /// STAGE: decode, book, signal, risk_check, matching, on_message,
    /// gateway, journal.
    /// SPEC:
    ///   sleep:DUR:every:N  every Nth call sleeps DUR (off-CPU);
    ///   spin:DUR:every:N   every Nth call busy-waits DUR (on-CPU);
    ///   syscalls:K         every call makes exactly K getppid(2) syscalls;
    ///   fsync:every:N      every Nth call fsyncs the journal (journal only);
    ///   panic:every:N      every Nth call panics, caught above on_message
    ///                      (needs a panic=unwind build: --profile release-unwind);
    ///   pagefault:[P:]every:N  every Nth call writes P fresh pages (default 16):
    ///                      P minor faults, counted by the thread's rusage;
    ///   majorfault:[P:]every:N  every Nth call drops a P-page file (default 16)
    ///                      from the page cache and reads it through a mapping:
    ///                      P major faults, counted by the thread's rusage;
    ///   migrate:every:N    every Nth call moves the thread to the other of two
    ///                      CPUs (it stays pinned between): one migration each.
    /// DUR: 500ns, 50us, 50µs, 1.5ms, 2s.
    #[arg(long, value_name = "STAGE=SPEC", verbatim_doc_comment)]
    pub inject: Vec<InjectSpec>,
}

const AFTER_HELP: &str = "\
Signals: SIGUSR2 releases --hold; SIGUSR1 writes a truth snapshot; SIGINT and
SIGTERM drain the pipeline, write the truth file and exit 0.
Prints 'ready pid=<pid>' on stdout once all threads are up.";

/// `--duration`: plain float seconds, or a duration with a unit.
fn parse_secs(text: &str) -> Result<Duration, String> {
    if let Ok(secs) = text.parse::<f64>() {
        if !(secs.is_finite() && secs > 0.0 && secs <= 1e9) {
            return Err(format!("'{text}' must be a number of seconds > 0"));
        }
        return Ok(Duration::from_secs_f64(secs));
    }
    parse_duration(text).map_err(|e| format!("'{text}' is not a number of seconds ({e})"))
}

/// Where the journal goes, and whether we own (and so remove) it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JournalLocation {
    Temporary(PathBuf),
    Given(PathBuf),
}

impl JournalLocation {
    pub fn path(&self) -> &std::path::Path {
        match self {
            JournalLocation::Temporary(p) | JournalLocation::Given(p) => p,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub rate: u64,
    pub seed: u64,
    pub duration: Option<Duration>,
    pub messages: Option<u64>,
    pub hold: bool,
    pub truth: Option<PathBuf>,
    pub journal: JournalLocation,
    pub inject: InjectPlan,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid --inject: {0}")]
    Inject(#[from] SpecError),
}

impl Args {
    pub fn into_config(self) -> Result<Config, ConfigError> {
        let inject = InjectPlan::new(&self.inject)?;
        let journal = match self.journal {
            Some(path) => JournalLocation::Given(path),
            None => JournalLocation::Temporary(
                std::env::temp_dir().join(format!("target-app-{}.journal", std::process::id())),
            ),
        };
        Ok(Config {
            rate: self.rate,
            seed: self.seed,
            duration: self.duration,
            messages: self.messages,
            hold: self.hold,
            truth: self.truth,
            journal,
            inject,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inject::Action;
    use crate::stage::Stage;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("target-app").chain(args.iter().copied()))
    }

    #[test]
    fn defaults() {
        let config = parse(&[]).expect("no args").into_config().expect("config");
        assert_eq!(config.rate, 20_000);
        assert_eq!(config.seed, 1);
        assert_eq!(config.duration, None);
        assert_eq!(config.messages, None);
        assert!(!config.hold);
        assert!(matches!(config.journal, JournalLocation::Temporary(_)));
        assert_eq!(config.inject, InjectPlan::default());
    }

    #[test]
    fn every_flag() {
        let config = parse(&[
            "--rate",
            "50000",
            "--seed",
            "9",
            "--duration",
            "1.5",
            "--messages",
            "100",
            "--hold",
            "--truth",
            "t.json",
            "--journal",
            "j.log",
            "--inject",
            "book=syscalls:2",
            "--inject",
            "journal=fsync:every:5",
        ])
        .expect("valid args")
        .into_config()
        .expect("valid config");
        assert_eq!(config.rate, 50_000);
        assert_eq!(config.duration, Some(Duration::from_millis(1500)));
        assert_eq!(config.messages, Some(100));
        assert!(config.hold);
        assert_eq!(config.journal, JournalLocation::Given("j.log".into()));
        assert_eq!(config.inject.action(Stage::Book), Some(Action::Syscalls { count: 2 }));
        assert_eq!(config.inject.action(Stage::Journal), Some(Action::Fsync { every: 5 }));
    }

    #[test]
    fn duration_takes_seconds_or_a_unit() {
        assert_eq!(parse_secs("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_secs("0.25"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_secs("300ms"), Ok(Duration::from_millis(300)));
        assert!(parse_secs("0").is_err());
        assert!(parse_secs("-1").is_err());
        assert!(parse_secs("nan").is_err());
        assert!(parse_secs("soon").is_err());
    }

    #[test]
    fn bad_values_are_rejected() {
        for args in [
            &["--rate", "0"][..],
            &["--rate", "fast"],
            &["--messages", "-3"],
            &["--inject", "risk=sleep:1ms:every:2"],
            &["--inject", "book=sleep:1ms:every:0"],
            &["--duration", "x"],
            &["--frobnicate"],
        ] {
            assert!(parse(args).is_err(), "{args:?} accepted");
        }
        let dup = parse(&["--inject", "book=syscalls:1", "--inject", "book=syscalls:2"]).expect("each spec parses");
        assert!(dup.into_config().is_err());
    }

    #[test]
    fn clap_definition_is_valid() {
        use clap::CommandFactory;
        Args::command().debug_assert();
    }
}
