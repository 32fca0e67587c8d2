//! The one reader of `/proc`: a process's exe, comm, threads, start time, status counters,
//! namespaces, memory maps and open BPF programs, parsed defensively (any of it may vanish or
//! be odd: the target can exit or name itself `a) b (c` at any moment).
//!
//! Std only and no `crate::` paths, so xtask compiles this same file (`#[path]`) instead of
//! depending on perf-user (whose build needs the eBPF object xtask builds).

use std::{
    fs, io,
    path::{Path, PathBuf},
};

/// `/proc/PID/FILE` (`file` may be empty or nested, `task/TID/comm`).
pub fn path(pid: u32, file: &str) -> PathBuf {
    let dir = PathBuf::from(format!("/proc/{pid}"));
    if file.is_empty() { dir } else { dir.join(file) }
}

/// Every process now running (the numeric entries of `/proc`), unsorted.
pub fn pids() -> Vec<u32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()).filter_map(|e| e.file_name().to_str()?.parse().ok()).collect()
}

/// Whether a process (or thread) `pid` exists now.
pub fn exists(pid: u32) -> bool {
    path(pid, "").exists()
}

/// The link to a process's binary. Attach and read symbols through it, not through its
/// target: it reaches the file even in another mount namespace or after it was replaced.
pub fn exe_link(pid: u32) -> PathBuf {
    path(pid, "exe")
}

/// Where `/proc/PID/exe` points (as the target's mount namespace names it).
pub fn exe(pid: u32) -> io::Result<PathBuf> {
    fs::read_link(exe_link(pid))
}

/// A comm file's text without trailing whitespace (its newline); empty when it cannot be read (the thread is gone).
fn read_comm(path: &Path) -> String {
    fs::read_to_string(path).map(|s| s.trim_end().to_string()).unwrap_or_default()
}

/// A process's command name (`/proc/PID/comm`); empty when it is gone.
pub fn comm(pid: u32) -> String {
    read_comm(&path(pid, "comm"))
}

/// A thread's name (`/proc/PID/task/TID/comm`); empty when it is gone.
pub fn thread_comm(pid: u32, tid: u32) -> String {
    read_comm(&path(pid, &format!("task/{tid}/comm")))
}

/// A process's thread ids, unsorted; empty when it is gone.
pub fn threads(pid: u32) -> Vec<u32> {
    let Ok(dir) = fs::read_dir(path(pid, "task")) else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()).filter_map(|e| e.file_name().to_str()?.parse().ok()).collect()
}

/// Every thread of a process with its name.
pub fn thread_names(pid: u32) -> Vec<(u32, String)> {
    threads(pid).into_iter().map(|tid| (tid, thread_comm(pid, tid))).collect()
}

/// The fields of `/proc/PID/stat` we use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stat {
    /// The command name between the parentheses, as the kernel wrote it (spaces, parentheses
    /// and all).
    pub comm: String,
    /// One letter: R, S, D, Z, …
    pub state: char,
    /// User and system CPU time of all threads so far, in clock ticks.
    pub utime_ticks: u64,
    pub stime_ticks: u64,
    /// When the process started, in clock ticks since boot: with the pid, names one process
    /// (a pid is reused, a pid and start time are not).
    pub start_ticks: u64,
}

/// Parses the text of `/proc/PID/stat`. The command name (field 2) may contain spaces and
/// parentheses, so it runs from the first `(` to the *last* `)`; fields resume after that.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_string();
    // Fields 3 (state) onwards; field N of proc(5) is rest[N - 3].
    let rest: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    let field = |n: usize| rest.get(n - 3).copied();
    let state = field(3)?.chars().next()?;
    Some(Stat {
        comm,
        state,
        utime_ticks: field(14)?.parse().ok()?,
        stime_ticks: field(15)?.parse().ok()?,
        start_ticks: field(22)?.parse().ok()?,
    })
}

/// `/proc/PID/stat`, parsed; `None` when the process is gone or the text is not as expected.
pub fn stat(pid: u32) -> Option<Stat> {
    parse_stat(&fs::read_to_string(path(pid, "stat")).ok()?)
}

/// Start time of a process (clock ticks since boot), to tell it from a later process with its pid.
pub fn start_time(pid: u32) -> Option<u64> {
    stat(pid).map(|s| s.start_ticks)
}

/// The fields of `/proc/PID/status` we use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Status {
    /// Effective capabilities, one bit per `CAP_*` number.
    pub cap_eff: u64,
    /// Resident set size now and at its peak, in KiB (kernel threads have none).
    pub vm_rss_kib: Option<u64>,
    pub vm_hwm_kib: Option<u64>,
}

/// Parses the text of `/proc/PID/status`.
pub fn parse_status(text: &str) -> Status {
    let mut s = Status::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        let kib = || value.split_whitespace().next().and_then(|v| v.parse().ok());
        match key {
            "CapEff" => s.cap_eff = u64::from_str_radix(value, 16).unwrap_or(0),
            "VmRSS" => s.vm_rss_kib = kib(),
            "VmHWM" => s.vm_hwm_kib = kib(),
            _ => {}
        }
    }
    s
}

/// `/proc/PID/status`, parsed; `None` when the process is gone.
pub fn status(pid: u32) -> Option<Status> {
    fs::read_to_string(path(pid, "status")).ok().map(|t| parse_status(&t))
}

/// This process's own status (`/proc/self/status`).
pub fn own_status() -> Option<Status> {
    status(std::process::id())
}

/// Whether a capability set allows loading BPF: root's CAP_SYS_ADMIN, or CAP_BPF with
/// CAP_PERFMON (kernel 5.8+).
pub fn can_load_bpf(cap_eff: u64) -> bool {
    const CAP_SYS_ADMIN: u32 = 21;
    const CAP_PERFMON: u32 = 38;
    const CAP_BPF: u32 = 39;
    let has = |c: u32| cap_eff & (1u64 << c) != 0;
    has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON))
}

/// The namespace a process is in (`/proc/PID/ns/KIND`, KIND = `mnt`, `pid`, …): the link's
/// text, `mnt:[4026531841]`, equal for two processes exactly when they share it.
pub fn namespace(pid: u32, kind: &str) -> Option<PathBuf> {
    fs::read_link(path(pid, &format!("ns/{kind}"))).ok()
}

/// One line of `/proc/PID/maps`: a mapped range and what backs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    /// `r-xp` and the like.
    pub perms: String,
    /// Offset of `start` in the backing file.
    pub offset: u64,
    pub inode: u64,
    /// The file, `[heap]`, `[vdso]`, … or empty (anonymous). A path may contain spaces (and
    /// ends in ` (deleted)` when the file was removed).
    pub path: String,
}

/// Parses the text of `/proc/PID/maps`; lines not in the kernel's format are skipped.
pub fn parse_maps(text: &str) -> Vec<Mapping> {
    text.lines().filter_map(parse_maps_line).collect()
}

fn parse_maps_line(line: &str) -> Option<Mapping> {
    // Five space-separated fields, then the path (which may itself contain spaces).
    let mut it = line.splitn(6, ' ');
    let (range, perms, offset, _dev, inode) = (it.next()?, it.next()?, it.next()?, it.next()?, it.next()?);
    let (start, end) = range.split_once('-')?;
    Some(Mapping {
        start: u64::from_str_radix(start, 16).ok()?,
        end: u64::from_str_radix(end, 16).ok()?,
        perms: perms.to_string(),
        offset: u64::from_str_radix(offset, 16).ok()?,
        inode: inode.parse().ok()?,
        path: it.next().unwrap_or("").trim_start().to_string(),
    })
}

/// The text of `/proc/PID/maps` (a few KiB: cheap to read once a second).
pub fn maps_text(pid: u32) -> io::Result<String> {
    fs::read_to_string(path(pid, "maps"))
}

/// `/proc/PID/maps`, parsed.
pub fn maps(pid: u32) -> io::Result<Vec<Mapping>> {
    fs::read_to_string(path(pid, "maps")).map(|t| parse_maps(&t))
}

/// The BPF program ids a process holds open (from `prog_id:` lines of its fdinfo), sorted and
/// without repeats; empty when it is gone.
pub fn bpf_prog_ids(pid: u32) -> Vec<u32> {
    let mut ids: Vec<u32> = fdinfos(pid)
        .iter()
        .flat_map(|info| info.lines().filter_map(|l| l.strip_prefix("prog_id:")?.trim().parse().ok()))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The text of every fdinfo file of a process that could be read.
fn fdinfos(pid: u32) -> Vec<String> {
    let Ok(dir) = fs::read_dir(path(pid, "fdinfo")) else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()).filter_map(|e| fs::read_to_string(e.path()).ok()).collect()
}

/// Each CPU's steal so far by `/proc/stat` (its 8th column, USER_HZ ticks, as ns), indexed by
/// CPU number; `None` for a CPU without a line. Empty if the file cannot be read.
pub fn cpu_steal_ns() -> Vec<Option<u64>> {
    // SAFETY: sysconf has no memory effects.
    let user_hz = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).ok().filter(|&hz| hz > 0).unwrap_or(100);
    fs::read_to_string("/proc/stat").map(|text| parse_cpu_steal(&text, 1_000_000_000 / user_hz)).unwrap_or_default()
}

fn parse_cpu_steal(text: &str, tick_ns: u64) -> Vec<Option<u64>> {
    let mut out: Vec<Option<u64>> = Vec::new();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let Some(cpu) = fields.next().and_then(|n| n.strip_prefix("cpu")).and_then(|n| n.parse::<usize>().ok()) else {
            continue;
        };
        let Some(ticks) = fields.nth(7).and_then(|v| v.parse::<u64>().ok()) else { continue };
        if cpu >= out.len() {
            out.resize(cpu + 1, None);
        }
        out[cpu] = Some(ticks.saturating_mul(tick_ns));
    }
    out
}

/// NMIs so far on all CPUs, by `/proc/interrupts`' `NMI:` line; `None` if it cannot be read.
pub fn nmi_total() -> Option<u64> {
    fs::read_to_string("/proc/interrupts").ok().and_then(|t| parse_nmi_total(&t))
}

fn parse_nmi_total(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.trim_start().starts_with("NMI:"))?;
    let counts = line.trim_start().strip_prefix("NMI:")?.split_whitespace().map_while(|f| f.parse::<u64>().ok());
    Some(counts.sum())
}

/// The fdinfo text of each BPF program descriptor a process holds (`anon_inode:bpf-prog`).
pub fn bpf_prog_fdinfos(pid: u32) -> Vec<String> {
    let Ok(dir) = fs::read_dir(path(pid, "fd")) else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .filter(|e| fs::read_link(e.path()).is_ok_and(|t| t.to_string_lossy().contains("bpf-prog")))
        .filter_map(|e| fs::read_to_string(path(pid, "fdinfo").join(e.file_name())).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steal_column_per_cpu_in_ns() {
        let text = "cpu  273204 0 36134 51598 1444 0 197 1052 0 0\n\
                    cpu0 136225 0 17695 26824 530 0 9 509 0 0\n\
                    cpu2 136979 0 18439 24773 914 0 188 543 0 0\n\
                    intr 1 2 3\n";
        assert_eq!(parse_cpu_steal(text, 10_000_000), [Some(5_090_000_000), None, Some(5_430_000_000)]);
        assert!(parse_cpu_steal("cpu0 1 2\n", 10).is_empty(), "a short line is no reading");
    }

    #[test]
    fn nmi_total_sums_every_cpu_and_stops_at_the_label() {
        let text = "           CPU0       CPU1\n  0:   40   0  IO-APIC 2-edge timer\n NMI:    3    4   Non-maskable interrupts\n";
        assert_eq!(parse_nmi_total(text), Some(7));
        assert_eq!(parse_nmi_total("  0: 1 2 timer\n"), None, "no NMI line, no reading");
    }

    /// A comm with spaces and both parentheses must not shift the fields after it.
    #[test]
    fn stat_comm_with_spaces_and_parentheses() {
        let text = "4242 (a) b (c) d) S 1 4242 4242 0 -1 4194560 100 0 0 0 17 23 0 0 20 0 3 0 987654 1000 10";
        let s = parse_stat(text).unwrap();
        assert_eq!(s.comm, "a) b (c) d");
        assert_eq!((s.state, s.utime_ticks, s.stime_ticks, s.start_ticks), ('S', 17, 23, 987_654));
        // Truncated or garbled text is no stat, not a wrong one.
        assert_eq!(parse_stat("4242 (x S 1"), None);
        assert_eq!(parse_stat("4242 (x) S 1 2 3"), None);
        assert_eq!(parse_stat(""), None);
    }

    #[test]
    fn own_process_reads_back() {
        let me = std::process::id();
        let s = stat(me).unwrap();
        assert_eq!(start_time(me), Some(s.start_ticks));
        assert!(threads(me).contains(&me));
        assert_eq!(comm(me), s.comm);
        assert_eq!(exe(me).unwrap(), std::env::current_exe().unwrap());
        assert_eq!(namespace(me, "mnt"), fs::read_link("/proc/self/ns/mnt").ok());
        assert!(own_status().unwrap().vm_rss_kib.unwrap() > 0);
        let exe = std::env::current_exe().unwrap();
        assert!(maps(me).unwrap().iter().any(|m| m.perms.contains('x') && Path::new(&m.path) == exe));
        // pid 0 is never a process.
        assert!(!exists(0) && stat(0).is_none() && threads(0).is_empty() && comm(0).is_empty());
    }

    #[test]
    fn status_and_maps_lines() {
        let s = parse_status("Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\nCapEff:\t000001ffffffffff\n");
        assert_eq!((s.vm_rss_kib, s.vm_hwm_kib), (Some(1024), Some(2048)));
        assert_eq!(parse_status("Name:\tkthreadd\n").vm_rss_kib, None);
        assert!(can_load_bpf(s.cap_eff));
        assert!(can_load_bpf((1 << 39) | (1 << 38)) && !can_load_bpf(1 << 39) && !can_load_bpf(0));
        let m = parse_maps(
            "7f00-7f10 r-xp 00001000 fd:01 1234   /opt/my app/bin (deleted)\n7f10-7f20 rw-p 0 00:00 0\nbad\n",
        );
        assert_eq!(m.len(), 2);
        assert_eq!((m[0].start, m[0].end, m[0].offset, m[0].inode), (0x7f00, 0x7f10, 0x1000, 1234));
        assert_eq!(m[0].path, "/opt/my app/bin (deleted)");
        assert_eq!(m[1].path, "");
    }
}
