//! Shared by perf-user's integration tests: the real binaries, a real target-app, and the rule for
//! tests that need BPF (skip with a reason outside CI, fail loudly in CI).
#![allow(dead_code, reason = "each test crate uses a different subset")]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests panic with context")]

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, ChildStdout, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use serde_json::Value;
use target_app::stage::Stage;

mod fixture;
#[allow(unused_imports, reason = "each test crate uses a different subset")]
pub use fixture::*;

pub const PERF_USER: &str = env!("CARGO_BIN_EXE_perf-user");

/// The eight pipeline stages of target-app, by their demangled names, as target-app names them
/// (its own tests check each against its binary).
pub const STAGES: [&str; Stage::COUNT] = {
    let mut names = [""; Stage::COUNT];
    let mut i = 0;
    while i < Stage::COUNT {
        names[i] = Stage::ALL[i].symbol();
        i += 1;
    }
    names
};

/// True when this process can load BPF. Without it: outside CI the test is skipped with a printed
/// reason; in CI (`CI` set) that is a failure, because CI runs as root.
pub fn bpf_available(test: &str) -> bool {
    let cap_eff = perf_user::target::proc::own_status().map_or(0, |s| s.cap_eff);
    let ok = perf_user::target::proc::can_load_bpf(cap_eff);
    if !ok {
        assert!(std::env::var_os("CI").is_none(), "{test}: CI must run as root with BPF (CapEff={cap_eff:x})");
        eprintln!("SKIPPED {test}: needs root or CAP_BPF+CAP_PERFMON (CI runs it)");
    }
    ok
}

/// True when `tool args…` runs (a system tool a test drives: bpftrace, bpftool). Without it: a
/// failure in CI, whose `.ci/run` installs it; outside CI a printed skip.
pub fn tool_available(test: &str, tool: &str, args: &[&str]) -> bool {
    if Command::new(tool).args(args).output().is_ok() {
        return true;
    }
    assert!(std::env::var_os("CI").is_none(), "{test}: CI must have {tool} (.ci/run installs it)");
    eprintln!("SKIPPED {test}: {tool} not installed");
    false
}

/// target-app built by the same `cargo test` (it is a workspace member, so its binary sits next to ours).
pub fn target_app_bin() -> PathBuf {
    let dir = Path::new(PERF_USER).parent().expect("bin dir");
    let p = dir.join("target-app");
    assert!(p.exists(), "{} missing: run `cargo xtask test` (or cargo build -p target-app)", p.display());
    p
}

/// bench-target (its functions start with `push rbp` or a 5-byte nop), built by `cargo xtask test`.
pub fn bench_target_bin() -> PathBuf {
    let p = Path::new(PERF_USER).parent().expect("bin dir").join("bench-target");
    assert!(p.exists(), "{} missing: run `cargo xtask test` (or cargo build --release -p bench-target)", p.display());
    p
}

pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!("perf-user-it-{}-{name}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Lines of a child's stdout, read on a thread so a test can wait for one with a timeout.
pub struct Lines(mpsc::Receiver<String>);

impl Lines {
    pub fn new(out: ChildStdout) -> Lines {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines(rx)
    }

    /// Waits for a line containing `needle`; returns it, or panics with what was seen.
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.0.recv_timeout(left) {
                Ok(l) if l.contains(needle) => return l,
                Ok(l) => seen.push(l),
                Err(mpsc::RecvTimeoutError::Timeout) => break,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        panic!("no line containing {needle:?} within {timeout:?}; saw: {seen:#?}");
    }

    /// Everything printed until the stream closes.
    pub fn rest(&self, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut out = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.0.recv_timeout(left) {
                Ok(l) => out.push(l),
                Err(_) => break,
            }
        }
        out
    }
}

/// Spawns `cmd` with its stdout captured and waits for the `ready pid=` line target-app and
/// bench-target print once they can be traced.
pub fn spawn_ready(cmd: &mut Command) -> (Child, Lines) {
    let mut child = cmd.stdout(Stdio::piped()).spawn().expect("spawn");
    let lines = Lines::new(child.stdout.take().expect("stdout"));
    lines.wait_for("ready pid=", Duration::from_secs(20));
    (child, lines)
}

/// A running target-app; killed on drop if still alive.
pub struct TargetApp {
    pub child: Child,
    pub pid: u32,
    pub truth: PathBuf,
    pub stdout: Lines,
}

impl TargetApp {
    /// Starts target-app with `args` plus `--truth` in `dir`, and waits for its `ready` line.
    pub fn start(dir: &TempDir, args: &[&str]) -> TargetApp {
        let truth = dir.join("truth.json");
        let (child, stdout) = spawn_ready(
            Command::new(target_app_bin())
                .args(args)
                .arg("--truth")
                .arg(&truth)
                .arg("--journal")
                .arg(dir.join("journal"))
                .stdin(Stdio::null())
                .stderr(Stdio::null()),
        );
        let pid = child.id();
        TargetApp { child, pid, truth, stdout }
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(self.pid as i32, sig) };
        assert_eq!(rc, 0, "kill({}, {sig})", self.pid);
    }

    /// Waits for exit (success required) and returns the final truth file.
    pub fn wait_truth(&mut self, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                assert!(status.success(), "target-app exited with {status}");
                break;
            }
            assert!(Instant::now() < deadline, "target-app did not exit within {timeout:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
        read_json(&self.truth)
    }
}

impl Drop for TargetApp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// `perf-user attach` headless against `pid`, stdout captured line by line.
pub struct PerfUser {
    pub child: Child,
    pub stdout: Lines,
}

impl PerfUser {
    pub fn attach(pid: u32, extra: &[&str]) -> PerfUser {
        PerfUser::attach_with_env(pid, extra, &[])
    }

    pub fn attach_with_env(pid: u32, extra: &[&str], env: &[(&str, &str)]) -> PerfUser {
        PerfUser::attach_limited(pid, extra, env, None)
    }

    /// `attach` with perf-user's descriptor limit (soft and hard) set to `nofile` when given.
    pub fn attach_limited(pid: u32, extra: &[&str], env: &[(&str, &str)], nofile: Option<u64>) -> PerfUser {
        let mut cmd = Command::new(PERF_USER);
        if let Some(n) = nofile {
            use std::os::unix::process::CommandExt as _;
            let lim = libc::rlimit { rlim_cur: n, rlim_max: n };
            // SAFETY: setrlimit is async-signal-safe; `lim` is a valid rlimit copied into the closure.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        // The overhead guard gives up functions to protect the target, from a cost estimated at
        // start-up; on a loaded machine that estimate can trip it mid-run. A test that compares
        // counts with the truth wants every call, so the guard is off unless the test sets it.
        let guard: &[&str] = if extra.contains(&"--max-overhead") { &[] } else { &["--max-overhead", "1000"] };
        let mut child = cmd
            .envs(env.iter().copied())
            .args(["attach", "--no-tui", "--pid", &pid.to_string()])
            .args(guard)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn perf-user");
        let stdout = Lines::new(child.stdout.take().expect("stdout"));
        stdout.wait_for("attached ", Duration::from_secs(30));
        PerfUser { child, stdout }
    }

    /// Waits for perf-user to end by itself and requires success.
    pub fn wait(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                assert!(status.success(), "perf-user exited with {status}");
                return;
            }
            assert!(Instant::now() < deadline, "perf-user did not end within {timeout:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(self.child.id() as i32, sig) };
        assert_eq!(rc, 0);
    }
}

impl Drop for PerfUser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `functions[]` entry of a report or truth file by symbol.
pub fn function<'a>(doc: &'a Value, symbol: &str) -> &'a Value {
    doc["functions"].as_array().and_then(|fs| fs.iter().find(|f| f["symbol"] == symbol)).unwrap_or_else(|| {
        panic!("no function {symbol} in {}", serde_json::to_string_pretty(&doc["functions"]).unwrap())
    })
}

pub fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not an unsigned number: {v}"))
}

/// Every part of a call's or a function's `attribution`, own compute and the interference parts
/// included: together they are its wall time.
pub const PARTS: [&str; 8] = [
    "self_oncpu_ns",
    "callees_ns",
    "syscalls_ns",
    "offcpu_blocked_ns",
    "offcpu_runqueue_ns",
    "irq_ns",
    "softirq_ns",
    "steal_ns",
];

/// One part of an exported call's or function's attribution, in ns.
pub fn part(v: &Value, name: &str) -> u64 {
    u(&v["attribution"][name])
}

/// The sum of every part: the wall time they split.
pub fn parts_sum(v: &Value) -> u64 {
    PARTS.iter().map(|p| part(v, p)).sum()
}

/// target-app's arguments for the injected-sleep runs: 20,000 messages at 10,000/s, every 100th
/// risk check sleeping 200 µs (off-CPU, in clock_nanosleep).
pub const SLEEPY_RISK_CHECKS: [&str; 6] =
    ["--rate", "10000", "--messages", "20000", "--inject", "risk_check=sleep:200us:every:100"];

/// Runs one traced target-app from --hold to its exit: perf-user sees every call.
/// Returns (perf-user's report, target-app's truth).
pub fn traced_run(name: &str, app_args: &[&str], funcs: &[&str], extra: &[&str]) -> (Value, Value) {
    traced_run_with_env(name, app_args, funcs, extra, &[])
}

/// `traced_run` with perf-user's environment extended by `env`.
pub fn traced_run_with_env(
    name: &str,
    app_args: &[&str],
    funcs: &[&str],
    extra: &[&str],
    env: &[(&str, &str)],
) -> (Value, Value) {
    let dir = TempDir::new(name);
    let mut args = vec!["--hold"];
    args.extend_from_slice(app_args);
    let mut app = TargetApp::start(&dir, &args);
    let export = dir.join("report.json");
    let mut pu_args: Vec<String> = vec!["--export".into(), export.display().to_string()];
    for f in funcs {
        pu_args.push("--func".into());
        pu_args.push((*f).into());
    }
    pu_args.extend(extra.iter().map(|s| s.to_string()));
    let pu_ref: Vec<&str> = pu_args.iter().map(String::as_str).collect();
    let mut pu = PerfUser::attach_with_env(app.pid, &pu_ref, env);
    app.signal(libc::SIGUSR2);
    let truth = app.wait_truth(Duration::from_secs(120));
    // perf-user notices the exit on its next tick, takes a last reading and writes the export.
    pu.wait(Duration::from_secs(30));
    let report = read_json(&export);
    (report, truth)
}

/// bpftrace's classic tracepoints need tracefs; mount it where the machine has not (as root).
pub fn ensure_tracefs() {
    if Path::new("/sys/kernel/tracing/events").exists() {
        return;
    }
    let ok = Command::new("mount")
        .args(["-t", "tracefs", "nodev", "/sys/kernel/tracing"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "cannot mount tracefs at /sys/kernel/tracing");
}

/// A copy of this kernel's BTF in `dir` in which the kernel function `kfunc` is renamed: perf-user
/// pointed at it (`PERF_USER_BTF`) sees a kernel without that kfunc.
pub fn btf_without_kfunc(dir: &TempDir, kfunc: &str) -> std::path::PathBuf {
    let mut btf = std::fs::read("/sys/kernel/btf/vmlinux").expect("read /sys/kernel/btf/vmlinux");
    let name = format!("\0{kfunc}\0").into_bytes();
    let at =
        btf.windows(name.len()).position(|w| w == name).unwrap_or_else(|| panic!("this kernel's BTF names {kfunc}"));
    btf[at + name.len() - 2] = b'X';
    let path = dir.join(&format!("vmlinux-without-{kfunc}"));
    std::fs::write(&path, &btf).expect("write the BTF copy");
    path
}
