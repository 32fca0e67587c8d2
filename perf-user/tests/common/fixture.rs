//! C fixtures compiled by the tests that need a program whose calls they control: the build, its
//! disassembly, and one traced run from the fixture's first call to its exit.
#![allow(dead_code, reason = "each test crate uses a different subset")]

use std::{
    io::Write as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use serde_json::Value;

use super::{PerfUser, TempDir, bpf_available, read_json, spawn_ready, tool_available};

/// Where the fixtures' sources (and their shared `fixture.h`) live.
pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// `src` (a file in tests/fixtures) built by `tool` with `args` into `dir/out`; panics with the
/// compiler's output if it fails.
pub fn compile(dir: &TempDir, tool: &str, args: &[&str], src: &str, out: &str) -> PathBuf {
    let path = dir.join(out);
    let o = Command::new(tool)
        .args(args)
        .arg("-o")
        .arg(&path)
        .arg(Path::new(FIXTURES).join(src))
        .output()
        .unwrap_or_else(|e| panic!("run {tool} (the tests compile a fixture): {e}"));
    assert!(o.status.success(), "{tool} {src}: {}", String::from_utf8_lossy(&o.stderr));
    path
}

/// `objdump -d` of `exe`, for the tests that check the build has the instructions they count on.
pub fn disassemble(exe: &Path) -> String {
    let dump = Command::new("objdump").args(["-d", "--no-show-raw-insn"]).arg(exe).output().expect("run objdump");
    assert!(dump.status.success(), "objdump: {}", String::from_utf8_lossy(&dump.stderr));
    String::from_utf8_lossy(&dump.stdout).into_owned()
}

/// Whether a test on a compiled and disassembled fixture can run: BPF, the C compiler and
/// objdump (in CI a failure, outside it a printed skip).
pub fn can_run_c_fixture(test: &str) -> bool {
    bpf_available(test) && tool_available(test, "cc", &["--version"]) && tool_available(test, "objdump", &["--version"])
}

/// One traced run at a time: two on a 2-CPU machine preempt each other, which skews timings.
pub static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `exe` (a fixture that prints `ready`, waits for `go` on stdin, prints `done` and writes
/// its truth to `--truth`) with `fixture_args`, traced by perf-user with `--export` and
/// `perf_user_args` from its first call to its exit; perf-user gets `pu_timeout` to end after it.
/// Returns (report, truth).
pub fn traced_fixture_run(
    dir: &TempDir,
    exe: &Path,
    fixture_args: &[&str],
    perf_user_args: &[&str],
    pu_timeout: Duration,
) -> (Value, Value) {
    traced_fixture_run_limited(dir, exe, fixture_args, perf_user_args, pu_timeout, None)
}

/// `traced_fixture_run` with perf-user's descriptor limit set to `nofile` when given.
pub fn traced_fixture_run_limited(
    dir: &TempDir,
    exe: &Path,
    fixture_args: &[&str],
    perf_user_args: &[&str],
    pu_timeout: Duration,
    nofile: Option<u64>,
) -> (Value, Value) {
    let truth = dir.join("truth.json");
    let (mut child, lines) = spawn_ready(
        Command::new(exe).args(fixture_args).arg("--truth").arg(&truth).stdin(Stdio::piped()).stderr(Stdio::inherit()),
    );
    let export = dir.join("report.json");
    let mut args = vec!["--export", export.to_str().unwrap()];
    args.extend(perf_user_args);
    let mut pu = PerfUser::attach_limited(child.id(), &args, &[], nofile);
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    lines.wait_for("done", Duration::from_secs(120));
    let status = child.wait().expect("wait for the fixture");
    assert!(status.success(), "fixture exited with {status}");
    pu.wait(pu_timeout);
    (read_json(&export), read_json(&truth))
}
