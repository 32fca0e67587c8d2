//! Helpers shared by the integration tests: run the real binary, signal it,
//! and read back its truth file.

// Each test crate uses a different subset of these helpers.
#![allow(dead_code, reason = "shared between test crates")]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_target-app");
/// Generous: these limits only catch hangs; nothing passes or fails on speed.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

/// A scratch directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "target-app-it-{}-{name}-{}",
            std::process::id(),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
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

/// Runs the binary to completion.
pub fn run(args: &[&str]) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn target-app");
    let deadline = Instant::now() + EXIT_TIMEOUT;
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("target-app {args:?} did not exit within {EXIT_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().expect("collect output")
}

pub fn read_truth(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read truth file {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("truth is not JSON ({e}): {text}"))
}

pub fn wait_for_file(path: &Path) {
    let deadline = Instant::now() + READY_TIMEOUT;
    while !path.exists() {
        assert!(Instant::now() < deadline, "{} did not appear within {READY_TIMEOUT:?}", path.display());
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A running target-app that printed `ready`; killed on drop if still alive.
pub struct Running {
    child: Child,
    pub pid: i32,
}

impl Running {
    pub fn start(args: &[&str]) -> Running {
        let mut child = Command::new(BIN)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn target-app");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let pid = i32::try_from(child.id()).expect("pid fits i32");
        let line =
            rx.recv_timeout(READY_TIMEOUT).unwrap_or_else(|e| panic!("no ready line from target-app {args:?}: {e}"));
        assert_eq!(line, format!("ready pid={pid}"));
        Running { child, pid }
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) with a pid we spawned and have not reaped (the
        // Child is still owned here), so it cannot hit a recycled pid.
        let rc = unsafe { libc::kill(self.pid, signal) };
        assert_eq!(rc, 0, "kill({}, {signal}) failed", self.pid);
    }

    pub fn wait(mut self) -> ExitStatus {
        let deadline = Instant::now() + EXIT_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "target-app did not exit within {EXIT_TIMEOUT:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The `functions` entry for a stage short name.
pub fn function<'a>(truth: &'a Value, stage: &str) -> &'a Value {
    truth["functions"]
        .as_array()
        .expect("functions is an array")
        .iter()
        .find(|f| f["stage"] == stage)
        .unwrap_or_else(|| panic!("no function entry for stage {stage}"))
}

pub fn u64_at(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("{key} is not an unsigned integer in {v}"))
}
