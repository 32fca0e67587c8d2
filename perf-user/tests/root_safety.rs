//! perf-user runs as root: each test plants one attack on a path it writes or reads, or one
//! hostile input, and checks that nothing but a regular file was ever replaced (docs/SECURITY.md).
//!
//! The symlinks are planted by root in a root-owned temp dir, standing in for an unprivileged
//! user's: with `fs.protected_symlinks=0` (this VM) the kernel follows either alike, and with 1 it
//! would still follow root's, so a writer that refuses these refuses the user's too.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests panic with context")]

mod common;

use std::{
    ffi::CString,
    os::unix::{
        ffi::OsStrExt,
        fs::{FileTypeExt, MetadataExt, PermissionsExt},
    },
    path::{Path, PathBuf},
    process::{Command, Output},
    time::{Duration, Instant},
};

use common::*;
use perf_user::{
    model::{Attribution, LatencySummary},
    output::{
        export,
        report::{AttributionReport, FunctionReport, ProbeReport, Report, SCHEMA, Target},
    },
};

/// True as root; otherwise a printed skip (a failure in CI, which runs as root).
fn root(test: &str) -> bool {
    // SAFETY: geteuid(2) has no preconditions.
    let ok = unsafe { libc::geteuid() } == 0;
    if !ok {
        assert!(std::env::var_os("CI").is_none(), "{test}: CI runs as root");
        eprintln!("SKIPPED {test}: needs root (mknod, mount)");
    }
    ok
}

fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

/// A private `/dev/null`: the same character device (1, 3), in the test's directory.
fn mknod_null(p: &Path) {
    // SAFETY: a valid path; mknod(2) creates a node and touches nothing else.
    let rc = unsafe { libc::mknod(cpath(p).as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) };
    assert_eq!(rc, 0, "mknod {}: {}", p.display(), std::io::Error::last_os_error());
}

fn assert_still_null(p: &Path) {
    let m = std::fs::symlink_metadata(p).unwrap();
    assert!(m.file_type().is_char_device(), "{} is no longer a character device", p.display());
    assert_eq!(m.rdev(), libc::makedev(1, 3));
}

fn mkfifo(p: &Path) {
    // SAFETY: a valid path.
    assert_eq!(unsafe { libc::mkfifo(cpath(p).as_ptr(), 0o644) }, 0);
}

/// Runs perf-user with a deadline: a command that should fail at once must not hang or eat RAM.
fn run(args: &[&str], cwd: &Path) -> Output {
    let started = Instant::now();
    let out = assert_cmd::Command::new(PERF_USER)
        .args(args)
        .current_dir(cwd)
        .timeout(Duration::from_secs(60))
        .output()
        .expect("run perf-user");
    assert!(out.status.code().is_some(), "perf-user {args:?} hung or crashed: {:?}", out.status);
    assert!(started.elapsed() < Duration::from_secs(20), "perf-user {args:?} took {:?}", started.elapsed());
    out
}

/// The one-line failure: non-zero exit, exactly one error line, containing `needle`.
fn fails_with(out: &Output, needle: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "expected failure; stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(errors.len(), 1, "one error line expected: {stderr}");
    assert!(errors[0].contains(needle), "expected {needle:?} in: {stderr}");
    errors[0].to_string()
}

/// A report with `n` functions that spent time, for `report`, `diff` and `flamegraph`.
fn report(exe: &str, n: usize) -> Report {
    let functions = (0..n)
        .map(|i| FunctionReport {
            symbol: format!("app::module_{i}::a_function_with_a_long_enough_name"),
            calls: 100,
            latency: LatencySummary {
                count: 100,
                min_ns: 900,
                mean_ns: 1000,
                p50_ns: 1000,
                p90_ns: 1100,
                p99_ns: 1200,
                p999_ns: 1300,
                max_ns: 1400,
            },
            total_ns: 100_000,
            attribution: AttributionReport {
                parts: Attribution {
                    self_oncpu_ns: 40_000,
                    callees_ns: 30_000,
                    syscalls_ns: 10_000,
                    offcpu_blocked_ns: 10_000,
                    offcpu_runqueue_ns: 10_000,
                    ..Attribution::default()
                },
                syscalls: vec![],
            },
            ..FunctionReport::default()
        })
        .collect();
    Report {
        schema: SCHEMA.into(),
        target: Target { pid: 42, exe: exe.into(), comm: "app".into() },
        duration_ns: 1_000_000_000,
        functions,
        ..Report::default()
    }
}

fn write_report(dir: &TempDir, name: &str, r: &Report) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, export::json(r)).unwrap();
    p
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

// --- outputs: flamegraph -o, the same writer as --export and the `e` key ---

#[test]
fn flamegraph_to_a_device_node_is_refused_and_the_device_stays() {
    if !root("flamegraph_to_a_device_node_is_refused_and_the_device_stays") {
        return;
    }
    let dir = TempDir::new("rs-dev");
    let input = write_report(&dir, "r.json", &report("/bin/app", 3));
    let null = dir.join("null");
    mknod_null(&null);
    let out = run(&["flamegraph", input.to_str().unwrap(), "-o", null.to_str().unwrap()], &dir.0);
    fails_with(&out, "character device");
    assert_still_null(&null);
    assert_eq!(entries(&dir.0), ["null", "r.json"], "no temp file left");
}

#[test]
fn flamegraph_to_dash_writes_stdout_not_a_file_named_dash() {
    let dir = TempDir::new("rs-dash");
    let input = write_report(&dir, "r.json", &report("/bin/app", 3));
    let out = run(&["flamegraph", input.to_str().unwrap(), "-o", "-"], &dir.0);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("<svg"), "the SVG goes to stdout");
    assert_eq!(entries(&dir.0), ["r.json"], "no file named -");
}

#[test]
fn symlinks_fifos_and_directories_are_refused_in_one_line() {
    let dir = TempDir::new("rs-kinds");
    let input = write_report(&dir, "r.json", &report("/bin/app", 3));
    let victim = dir.join("victim");
    std::fs::write(&victim, "precious").unwrap();
    // Planted before the start: the usual /etc/passwd trick, and /dev/stdout (a symlink too).
    let link = dir.join("out.svg");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let fifo = dir.join("fifo.svg");
    mkfifo(&fifo);
    let sub = dir.join("sub");
    std::fs::create_dir(&sub).unwrap();
    for (path, kind) in [(&link, "symbolic link"), (&fifo, "FIFO"), (&sub, "directory")] {
        // A FIFO with no reader would block a writer forever: refused at once, not hung.
        let out = run(&["flamegraph", input.to_str().unwrap(), "-o", path.to_str().unwrap()], &dir.0);
        fails_with(&out, kind);
    }
    let out = run(&["flamegraph", input.to_str().unwrap(), "-o", "/dev/stdout"], &dir.0);
    fails_with(&out, "symbolic link");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    assert_eq!(entries(&dir.0), ["fifo.svg", "out.svg", "r.json", "sub", "victim"]);
    assert!(entries(&sub).is_empty());
}

#[test]
fn an_existing_0600_output_stays_0600() {
    let dir = TempDir::new("rs-mode");
    let input = write_report(&dir, "r.json", &report("/bin/app", 3));
    let svg = dir.join("private.svg");
    std::fs::write(&svg, "old").unwrap();
    std::fs::set_permissions(&svg, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = run(&["flamegraph", input.to_str().unwrap(), "-o", svg.to_str().unwrap()], &dir.0);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let m = std::fs::metadata(&svg).unwrap();
    assert_eq!(m.permissions().mode() & 0o777, 0o600, "the mode was {:o}", m.permissions().mode());
    assert!(std::fs::read_to_string(&svg).unwrap().contains("<svg"));
}

/// Unmounts on drop, also when an assertion fails.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_fails_in_one_line_and_leaves_no_temp_file() {
    if !root("a_full_disk_fails_in_one_line_and_leaves_no_temp_file") {
        return;
    }
    let dir = TempDir::new("rs-full");
    // ~2,000 functions: the folded stacks are ~700 kB, ten times the file system.
    let input = write_report(&dir, "r.json", &report("/bin/app", 2000));
    let small = dir.join("small");
    std::fs::create_dir(&small).unwrap();
    let ok = Command::new("mount").args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"]).arg(&small).status().unwrap();
    assert!(ok.success(), "mount tmpfs");
    let _mount = Mount(small.clone());
    let out_path = small.join("big.folded");
    let out = run(&["flamegraph", input.to_str().unwrap(), "--folded", "-o", out_path.to_str().unwrap()], &dir.0);
    fails_with(&out, "No space left");
    assert!(entries(&small).is_empty(), "left behind: {:?}", entries(&small));
}

// --- attach: --export, --export-interval (need a live target, root; not BPF itself) ---

#[test]
fn export_to_a_device_node_is_refused_before_attaching() {
    if !root("export_to_a_device_node_is_refused_before_attaching") {
        return;
    }
    let dir = TempDir::new("rs-exportdev");
    let app = TargetApp::start(&dir, &["--hold"]);
    let null = dir.join("null");
    mknod_null(&null);
    let pid = app.pid.to_string();
    let out =
        run(&["attach", "--pid", &pid, "--func", STAGES[0], "--no-tui", "--export", null.to_str().unwrap()], &dir.0);
    fails_with(&out, "character device");
    assert_still_null(&null);
}

#[test]
fn an_ndjson_symlink_planted_before_the_start_is_refused() {
    if !root("an_ndjson_symlink_planted_before_the_start_is_refused") {
        return;
    }
    let dir = TempDir::new("rs-ndjson");
    let app = TargetApp::start(&dir, &["--hold"]);
    let victim = dir.join("victim");
    std::fs::write(&victim, "precious").unwrap();
    std::os::unix::fs::symlink(&victim, dir.join("run.ndjson")).unwrap();
    let export = dir.join("run.json");
    let pid = app.pid.to_string();
    let out = run(
        &[
            "attach",
            "--pid",
            &pid,
            "--func",
            STAGES[0],
            "--no-tui",
            "--duration",
            "2s",
            "--export",
            export.to_str().unwrap(),
            "--export-interval",
            "1s",
        ],
        &dir.0,
    );
    fails_with(&out, "symbolic link");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
}

#[test]
fn an_export_symlink_planted_after_the_start_up_check_is_refused() {
    if !bpf_available("an_export_symlink_planted_after_the_start_up_check_is_refused") {
        return;
    }
    let dir = TempDir::new("rs-race");
    let app = TargetApp::start(&dir, &["--hold"]);
    let victim = dir.join("victim");
    std::fs::write(&victim, "precious").unwrap();
    let export = dir.join("run.json");
    let mut pu =
        PerfUser::attach(app.pid, &["--func", STAGES[0], "--duration", "3s", "--export", export.to_str().unwrap()]);
    // After the check, before the end: the export path and the temp name the old writer used
    // (`FILE.<pid>.tmp`) both become symlinks to the victim.
    std::os::unix::fs::symlink(&victim, &export).unwrap();
    let old_tmp = dir.join(&format!("run.json.{}.tmp", pu.child.id()));
    std::os::unix::fs::symlink(&victim, &old_tmp).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = pu.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "perf-user did not end");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(!status.success(), "writing through a planted symlink must fail the run");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert!(std::fs::symlink_metadata(&export).unwrap().file_type().is_symlink());
    let mut left = entries(&dir.0);
    left.retain(|e| e.contains(".tmp") && !e.ends_with(&format!("{}.tmp", pu.child.id())));
    assert!(left.is_empty(), "temp files left: {left:?}");
}

/// Regression (issue 16): the final export was created through the path as it was at the end; an
/// output directory replaced by a symlink mid-run sent root's write into the symlink's target.
#[test]
fn an_output_directory_swapped_for_a_symlink_mid_run_is_not_followed() {
    if !bpf_available("an_output_directory_swapped_for_a_symlink_mid_run_is_not_followed") {
        return;
    }
    let dir = TempDir::new("rs-dirswap");
    let app = TargetApp::start(&dir, &["--hold"]);
    let (out, moved, victim) = (dir.join("out"), dir.join("out.moved"), dir.join("victim"));
    std::fs::create_dir(&out).unwrap();
    std::fs::create_dir(&victim).unwrap();
    std::fs::write(victim.join("run.json"), "precious").unwrap();
    let export = out.join("run.json");
    let args =
        ["--func", STAGES[0], "--duration", "3s", "--export", export.to_str().unwrap(), "--export-interval", "200ms"];
    let mut pu = PerfUser::attach(app.pid, &args);
    // Mid-run: the directory is moved away and a symlink to the victim's takes its name.
    std::fs::rename(&out, &moved).unwrap();
    std::os::unix::fs::symlink(&victim, &out).unwrap();
    pu.wait(Duration::from_secs(60));
    assert_eq!(std::fs::read_to_string(victim.join("run.json")).unwrap(), "precious");
    assert_eq!(entries(&victim), ["run.json"], "nothing written into the symlink's target");
    // Everything went to the directory perf-user opened at the start.
    assert_eq!(read_json(&moved.join("run.json"))["end_reason"], "duration");
    assert!(std::fs::read_to_string(moved.join("run.ndjson")).unwrap().lines().count() >= 2);
    assert_eq!(entries(&moved), ["run.json", "run.ndjson"]);
}

// --- readers and text output ---

#[test]
fn report_of_dev_zero_fails_fast_in_one_line() {
    let dir = TempDir::new("rs-zero");
    fails_with(&run(&["report", "/dev/zero"], &dir.0), "character device");
    // A regular file over the limit is refused from its size, without reading it.
    let big = dir.join("big.json");
    std::fs::File::create(&big).unwrap().set_len(1 << 30).unwrap();
    fails_with(&run(&["report", big.to_str().unwrap()], &dir.0), "input limit");
    // A pipe that never ends stops at the limit.
    let fifo = dir.join("endless");
    mkfifo(&fifo);
    let writer_path = fifo.clone();
    std::thread::spawn(move || {
        use std::io::Write;
        let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(&writer_path) else { return };
        let zeros = vec![b' '; 1 << 20];
        while f.write_all(&zeros).is_ok() {}
    });
    fails_with(&run(&["report", fifo.to_str().unwrap()], &dir.0), "input limit");
}

#[test]
fn escape_sequences_in_names_never_reach_the_terminal() {
    let dir = TempDir::new("rs-esc");
    let mut r = report("/bin/app\x1b]0;owned\x07", 2);
    r.functions[0].symbol = "app::\x1b]0;pwned\x07\x1b[2J::f".into();
    r.target.comm = "\x1b[31mred".into();
    let input = write_report(&dir, "r.json", &r);
    for format in ["text", "markdown", "csv"] {
        let out = run(&["report", input.to_str().unwrap(), "--format", format], &dir.0);
        assert!(out.status.success());
        assert!(!out.stdout.contains(&0x1b), "{format}: a raw ESC reached stdout");
        assert!(!out.stdout.contains(&0x07), "{format}: a raw BEL reached stdout");
        assert!(String::from_utf8_lossy(&out.stdout).contains("\\x1b]0;pwned"), "{format}: shown escaped");
    }
}

#[test]
fn untimed_and_detached_functions_are_marked_in_the_tables() {
    let dir = TempDir::new("rs-untimed");
    let mut r = report("/bin/app", 2);
    // Counted but never timed (entry-only, sampled out) and detached by the guard.
    r.functions[1].latency = LatencySummary::default();
    r.functions[1].attribution = AttributionReport::default();
    r.functions[1].probe = ProbeReport { detached: true, ..ProbeReport::default() };
    let input = write_report(&dir, "r.json", &r);
    let out = run(&["report", input.to_str().unwrap()], &dir.0);
    let text = String::from_utf8_lossy(&out.stdout);
    let row = text.lines().find(|l| l.contains("module_1")).unwrap();
    assert!(row.starts_with("x "), "detached mark: {row}");
    assert!(!row.contains("0ns") && row.contains('—'), "untimed row: {row}");
}

#[test]
fn diff_of_different_programs_is_refused_unless_forced() {
    let dir = TempDir::new("rs-diff");
    let a = write_report(&dir, "a.json", &report("/usr/sbin/nginx", 3));
    let b = write_report(&dir, "b.json", &report("/opt/target-app", 3));
    let out = run(&["diff", a.to_str().unwrap(), b.to_str().unwrap()], &dir.0);
    assert_eq!(out.status.code(), Some(2), "bad input exits 2");
    fails_with(&out, "--force");
    let out = run(&["diff", a.to_str().unwrap(), b.to_str().unwrap(), "--force"], &dir.0);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn interval_below_10ms_is_refused() {
    let dir = TempDir::new("rs-interval");
    let me = std::process::id().to_string();
    let out = run(&["attach", "--pid", &me, "--func", "x", "--interval", "1ns"], &dir.0);
    fails_with(&out, "minimum of 10ms");
}

#[test]
fn a_truncated_ndjson_tail_is_reported_and_the_complete_lines_used() {
    let dir = TempDir::new("rs-ndjson-tail");
    let mut data = export::ndjson_line(&report("/bin/first", 1));
    data.extend(export::ndjson_line(&report("/bin/second", 1)));
    let third = export::ndjson_line(&report("/bin/third", 1));
    data.extend(&third[..third.len() / 2]);
    let p = dir.join("s.ndjson");
    std::fs::write(&p, data).unwrap();
    let out = run(&["report", p.to_str().unwrap()], &dir.0);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("truncated"));
    assert!(String::from_utf8_lossy(&out.stdout).contains("/bin/second"));
}
