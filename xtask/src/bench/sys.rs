//! What the bench reads from the machine: /proc counters of a process, the machine's description,
//! which external tools exist, symbol names (nm) and first instructions (objdump).

use std::{
    os::unix::process::ExitStatusExt,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, Result, bail};

/// utime + stime of a process (all its threads, exited ones included), in seconds.
pub fn cpu_time_s(pid: u32) -> Option<f64> {
    let stat = crate::proc::stat(pid)?;
    let ticks = stat.utime_ticks + stat.stime_ticks;
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (hz > 0).then(|| ticks as f64 / hz as f64)
}

/// utime + stime, in clock ticks, from the text of /proc/PID/stat.
#[cfg(test)]
fn parse_stat_ticks(stat: &str) -> Option<u64> {
    crate::proc::parse_stat(stat).map(|s| s.utime_ticks + s.stime_ticks)
}

/// CPU time the whole machine has spent busy since boot, all CPUs together (everything but idle
/// and I/O wait, so time the hypervisor stole counts as busy), in seconds.
pub fn machine_busy_s() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> =
        stat.lines().next()?.strip_prefix("cpu ")?.split_whitespace().filter_map(|f| f.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal [guest guest_nice, already in user and nice]
    let busy: u64 = fields.iter().take(8).enumerate().filter(|(i, _)| *i != 3 && *i != 4).map(|(_, v)| v).sum();
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (hz > 0).then(|| busy as f64 / hz as f64)
}

/// Peak resident set size of a process (VmHWM), in KiB.
pub fn vmhwm_kb(pid: u32) -> Option<u64> {
    crate::proc::status(pid)?.vm_hwm_kib
}

/// Sends SIGINT (a tracer's "stop and report").
pub fn interrupt(pid: u32) {
    signal(pid, libc::SIGINT);
}

/// Sends `sig` to a process the bench started.
pub fn signal(pid: u32, sig: libc::c_int) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill(2) on a pid we started and have not reaped yet; no memory is involved.
        unsafe { libc::kill(pid, sig) };
    }
}

/// The processes whose parent is `pid` (from each process's /proc/PID/stat).
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| {
            let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
            // Field 4, the parent, is the second after the command name's closing ')'.
            stat.rfind(')').and_then(|i| stat[i + 1..].split_whitespace().nth(1)?.parse::<u32>().ok()) == Some(pid)
        })
        .collect()
}

/// Waits for `child` to exit, killing it after `timeout`, and returns its exit status with the
/// user + system CPU time it used (all its threads), from wait4(2): a process that has exited has
/// no /proc entry left to read it from.
pub fn wait_with_cpu(child: &mut Child, timeout: Duration) -> Result<(ExitStatus, f64)> {
    let pid = libc::pid_t::try_from(child.id()).context("pid out of range")?;
    let deadline = Instant::now() + timeout;
    loop {
        let mut status = 0;
        // SAFETY: an all-zero rusage is a valid value for wait4 to overwrite.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: wait4 on our own child, writing into two locals we own.
        let reaped = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if reaped == pid {
            let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
            return Ok((ExitStatus::from_raw(status), secs(usage.ru_utime) + secs(usage.ru_stime)));
        }
        if reaped < 0 {
            bail!("wait4({pid}): {}", std::io::Error::last_os_error());
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            bail!("pid {pid} did not exit within {timeout:?} and was killed");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// perf-user, bpftrace and strace processes already running (`pid comm` list): their probes
/// and detaches compete with the measurements.
pub fn other_tracers() -> String {
    let mut found: Vec<String> = crate::proc::pids()
        .into_iter()
        .filter_map(|pid| {
            let comm = crate::proc::comm(pid);
            ["perf-user", "bpftrace", "strace"].contains(&comm.as_str()).then(|| format!("{comm} ({pid})"))
        })
        .collect();
    found.sort();
    found.join(", ")
}

pub fn is_root() -> bool {
    // SAFETY: geteuid cannot fail and touches no memory.
    unsafe { libc::geteuid() == 0 }
}

/// The machine the numbers come from.
#[derive(Debug, Default)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub kernel: String,
    pub date_utc: String,
    pub loadavg: String,
}

impl Machine {
    pub fn read() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| Some(l.strip_prefix("model name")?.trim_start().strip_prefix(':')?.trim().to_string()))
            .unwrap_or_else(|| "unknown".into());
        let cores = cpuinfo.lines().filter(|l| l.starts_with("processor")).count();
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|s| s.trim().to_string());
        Machine {
            cpu,
            cores: if cores > 0 { cores } else { std::thread::available_parallelism().map_or(0, |n| n.get()) },
            kernel: kernel.unwrap_or_else(|_| "unknown".into()),
            date_utc: utc_now(),
            loadavg: loadavg(),
        }
    }
}

/// The 1-minute load average: how busy the machine was around the measurements.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// `YYYY-MM-DD HH:MM UTC`, without a date crate.
fn utc_now() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02} UTC", rem / 3600, rem % 3600 / 60)
}

/// An external tool on PATH and its version line, or why it cannot be used.
pub fn tool(name: &str, version_arg: &str) -> Result<(PathBuf, String), String> {
    let path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join(name)).find(|c| c.is_file()))
        .unwrap_or_default()
        .ok_or_else(|| format!("{name} not found on PATH"))?;
    tool_at(&path, version_arg)
}

/// The version line of the tool at `path` (some print it on stderr), or why it does not run.
pub fn tool_at(path: &Path, version_arg: &str) -> Result<(PathBuf, String), String> {
    let out = Command::new(path)
        .arg(version_arg)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{} does not run: {e}", path.display()))?;
    let text = String::from_utf8_lossy(if out.stdout.is_empty() { &out.stderr } else { &out.stdout }).into_owned();
    Ok((path.to_path_buf(), text.lines().next().unwrap_or("").trim().to_string()))
}

/// A user's uid and primary gid.
pub fn user_ids(name: &str) -> Option<(u32, u32)> {
    let name = std::ffi::CString::new(name).ok()?;
    // SAFETY: getpwnam reads a NUL-terminated name we own; the result is copied out at once, before
    // any other call could reuse its static buffer.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    // SAFETY: a non-null result points to a valid passwd entry.
    (!pw.is_null()).then(|| unsafe { ((*pw).pw_uid, (*pw).pw_gid) })
}

/// The commit the measured perf-user was built from, `+ local changes` when its sources differ.
pub fn revision(root: &Path) -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(root)
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let Some(head) = git(&["rev-parse", "--short", "HEAD"]) else {
        return "unknown (no git)".into();
    };
    let dirty = git(&["status", "--porcelain", "--", "perf-user", "perf-ebpf", "perf-ebpf-common", "bench-target"])
        .is_some_and(|s| !s.is_empty());
    if dirty { format!("{head} + local changes") } else { head }
}

/// Makes sure tracefs is mounted (bpftrace's classic tracepoints need it); says why not otherwise.
pub fn ensure_tracefs() -> Result<(), String> {
    let events = Path::new("/sys/kernel/tracing/events/raw_syscalls");
    if events.exists() {
        return Ok(());
    }
    let st = Command::new("mount").args(["-t", "tracefs", "nodev", "/sys/kernel/tracing"]).status();
    if events.exists() {
        return Ok(());
    }
    Err(format!("tracefs is not mounted at /sys/kernel/tracing and mounting it failed ({st:?})"))
}

/// Legacy-mangled Rust symbol for `path` (`["bench_target", "funcs", "nop5"]`) in `binary`, from
/// `nm`: bpftrace wants the raw name, perf-user's glob the demangled one.
pub fn mangled_symbol(binary: &Path, path: &[&str]) -> Result<String> {
    let out = Command::new("nm")
        .arg("--defined-only")
        .arg(binary)
        .stderr(Stdio::inherit())
        .output()
        .context("running nm (binutils)")?;
    if !out.status.success() {
        bail!("nm {} failed with {}", binary.display(), out.status);
    }
    let prefix: String =
        std::iter::once("_ZN".to_string()).chain(path.iter().map(|p| format!("{}{p}", p.len()))).collect();
    let want = format!("{prefix}17h");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut found = text.lines().filter_map(|l| l.split_whitespace().nth(2)).filter(|s| s.starts_with(&want));
    let sym = found.next().with_context(|| format!("no symbol {} in {}", path.join("::"), binary.display()))?;
    Ok(sym.to_string())
}

/// Whether `binary` still has its symbol table (is not stripped).
pub fn has_symbol_table(binary: &Path) -> bool {
    let out = Command::new("nm").arg("--defined-only").arg(binary).stderr(Stdio::null()).output();
    out.is_ok_and(|o| o.status.success() && !o.stdout.is_empty())
}

/// Address of a symbol, from `nm`: the symbol table, or for a stripped binary the dynamic one.
pub fn symbol_address(binary: &Path, symbol: &str) -> Result<u64> {
    let find = |dynamic: bool| -> Result<Option<u64>> {
        let mut nm = Command::new("nm");
        nm.arg("--defined-only").args(dynamic.then_some("-D")).arg(binary).stderr(Stdio::null());
        let out = nm.output().context("running nm")?;
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(text.lines().find_map(|l| {
            let mut f = l.split_whitespace();
            let addr = f.next()?;
            (f.nth(1)? == symbol).then(|| u64::from_str_radix(addr, 16).ok())?
        }))
    };
    match find(false)? {
        Some(addr) => Ok(addr),
        None => find(true)?.with_context(|| format!("{symbol} not in nm's output")),
    }
}

/// The first instruction of `symbol` as objdump prints it: `0f 1f 44 00 00  nopl 0x0(%rax,%rax,1)`.
pub fn first_instruction(binary: &Path, symbol: &str) -> Result<String> {
    let addr = symbol_address(binary, symbol)?;
    let out = Command::new("objdump")
        .arg("-d")
        .arg(format!("--start-address={addr:#x}"))
        .arg(format!("--stop-address={:#x}", addr + 16))
        .arg(binary)
        .output()
        .context("running objdump (binutils)")?;
    if !out.status.success() {
        bail!("objdump failed with {}", out.status);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    // The instruction line is `  addr:\tBYTES \tMNEMONIC OPERANDS`.
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{addr:x}:")))
        .with_context(|| format!("objdump printed no instruction at {addr:#x}"))?;
    let parts: Vec<&str> = line.split('\t').map(str::trim).filter(|s| !s.is_empty()).collect();
    Ok(parts.get(1..).map(|p| p.join("  ")).unwrap_or_default())
}

/// Whether the kernel is counting BPF program run time (`kernel.bpf_stats_enabled`).
pub fn bpf_stats_enabled() -> bool {
    std::fs::read_to_string("/proc/sys/kernel/bpf_stats_enabled").is_ok_and(|s| s.trim() == "1")
}

/// Turns the kernel's BPF run-time accounting on or off (it costs every program run tens of ns).
fn set_bpf_stats(on: bool) -> Result<()> {
    std::fs::write("/proc/sys/kernel/bpf_stats_enabled", if on { "1" } else { "0" })
        .context("writing /proc/sys/kernel/bpf_stats_enabled")
}

/// The kernel's BPF run-time accounting set to `on` for as long as this lives, then put back as it
/// was, on an early return or a panic too. (A SIGKILLed or Ctrl-C'd bench cannot put it back; the
/// next bench finds it on and turns it off, see `preflight::stats_off`.)
pub struct BpfStats {
    was_on: bool,
}

impl BpfStats {
    pub fn set(on: bool) -> Result<Self> {
        let was_on = bpf_stats_enabled();
        set_bpf_stats(on)?;
        Ok(Self { was_on })
    }
}

impl Drop for BpfStats {
    fn drop(&mut self) {
        let _ = set_bpf_stats(self.was_on);
    }
}

/// The BPF programs process `pid` holds open (from its fdinfo): id, name, run count and total run
/// time in ns, via `bpftool prog show`.
pub fn prog_stats(pid: u32) -> Vec<(u32, String, u64, u64)> {
    let ids = crate::proc::bpf_prog_ids(pid);
    let mut out = Vec::new();
    for id in ids {
        let Ok(o) = Command::new("bpftool").args(["-j", "prog", "show", "id", &id.to_string()]).output() else {
            continue;
        };
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&o.stdout) else { continue };
        let (Some(name), Some(runs), Some(ns)) = (v["name"].as_str(), v["run_cnt"].as_u64(), v["run_time_ns"].as_u64())
        else {
            continue;
        };
        out.push((id, name.to_string(), runs, ns));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_ticks_survive_a_command_name_with_spaces_and_parens() {
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 150 25 0 0 20 0 1 0 100 0 0";
        assert_eq!(parse_stat_ticks(stat), Some(175));
    }

    #[test]
    fn utc_date_has_the_expected_shape() {
        let d = utc_now();
        assert_eq!(d.len(), "2026-05-20 12:00 UTC".len(), "{d}");
        assert!(d.starts_with("20"), "{d}");
    }
}
