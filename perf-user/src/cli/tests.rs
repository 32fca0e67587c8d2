//! Flag parsing and `TraceArgs::config`'s checks: each bad combination is one clear error.

use super::*;

fn args(extra: &[&str]) -> Result<AttachConfig, String> {
    let me = std::process::id().to_string();
    let mut argv = vec!["perf-user", "attach", "--pid", &me];
    argv.extend_from_slice(extra);
    let cli = Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
    let Cmd::Attach(a) = cli.cmd else {
        return Err("not attach".into());
    };
    a.validate(false).map_err(|e| e.to_string())
}

#[test]
fn valid_arguments() {
    let c = args(&["--func", "a::*", "--duration", "2s", "--slow", "1ms"]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.duration_ns, Some(2_000_000_000));
    assert_eq!(c.slow, Slow::Fixed(1_000_000));
    assert!(!c.tui, "no TTY means headless");
}

#[test]
fn bad_arguments_have_clear_errors() {
    assert!(args(&[]).unwrap_err().contains("nothing to trace"));
    assert!(args(&["--func", "x", "--duration", "soon"]).unwrap_err().contains("--duration"));
    assert!(args(&["--func", "x", "--duration", "0s"]).unwrap_err().contains("greater than zero"));
    assert!(args(&["--func", "x", "--slow", "fast"]).unwrap_err().contains("--slow"));
    assert!(args(&["--func", ""]).unwrap_err().contains("empty pattern"));
    assert!(args(&["--func", "x", "--interval", "1ns"]).unwrap_err().contains("minimum of 10ms"));
    assert!(args(&["--func", "x", "--interval", "10ms"]).is_ok());
    assert!(args(&["--func", "x", "--export", "-"]).unwrap_err().contains("stdout"));
    assert!(args(&["--func", "x", "--trace", "-"]).unwrap_err().contains("stdout"));
    assert!(args(&["--func", "x", "--trace", "t.json", "--slow", "off"]).unwrap_err().contains("slow calls"));
    assert!(args(&["--func", "x", "--trace", "t.json", "--entry-only"]).unwrap_err().contains("slow calls"));
    assert!(args(&["--func", "x", "--trace", "t.json", "--export", "t.json"]).unwrap_err().contains("--export"));
    assert!(args(&["--func", "x", "--trace", "t.json"]).is_ok_and(|c| c.trace.is_some()));
    let cli = Cli::try_parse_from(["perf-user", "attach", "--pid=-5", "--func", "x"]);
    let Ok(Cli { cmd: Cmd::Attach(a) }) = cli else { panic!("parse") };
    assert!(a.validate(false).unwrap_err().to_string().contains("not a valid process id"));
    let cli = Cli::try_parse_from(["perf-user", "attach", "--pid", "999999999", "--func", "x"]);
    let Ok(Cli { cmd: Cmd::Attach(a) }) = cli else { panic!("parse") };
    assert!(a.validate(false).unwrap_err().to_string().contains("no such process"));
}

/// `run` takes every `attach` option, and CMD only after `--` (so CMD's own flags are never
/// read as perf-user's).
#[test]
fn run_takes_the_attach_options_and_a_command_after_double_dash() {
    let cli = Cli::try_parse_from(["perf-user", "run", "--func", "a::*", "--sample", "5", "--", "app", "--func", "x"]);
    let Ok(Cli { cmd: Cmd::Run(r) }) = cli else { panic!("parse") };
    let c = r.validate(false).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((c.pid, c.funcs.as_slice(), c.sample_every), (0, &["a::*".to_string()][..], 5));
    assert_eq!(c.command, ["app", "--func", "x"].map(OsString::from));
    assert!(Cli::try_parse_from(["perf-user", "run", "--func", "x", "app"]).is_err(), "CMD needs --");
    assert!(Cli::try_parse_from(["perf-user", "run", "--func", "x", "--"]).is_err(), "CMD is required");
    let cli = Cli::try_parse_from(["perf-user", "run", "--", "app"]);
    let Ok(Cli { cmd: Cmd::Run(r) }) = cli else { panic!("parse") };
    assert!(r.validate(false).unwrap_err().to_string().contains("nothing to trace"));
}
