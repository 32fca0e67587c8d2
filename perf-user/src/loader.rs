//! The only module that talks to aya: loads the embedded eBPF object with the target's globals,
//! attaches the probes and returns a guard whose drop detaches everything.

use std::{
    num::NonZeroU32,
    path::{Path, PathBuf},
};

use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, MapData},
    programs::{
        RawTracePoint, UProbe,
        uprobe::{UProbeAttachLocation, UProbeAttachPoint, UProbeLinkId, UProbeScope},
    },
};
use perf_ebpf_common::{Config, names};

use crate::btf;

#[cfg(perf_ebpf_object_missing)]
compile_error!("the eBPF object is not built: run `cargo xtask build-ebpf` (or `cargo xtask test`) first");

#[cfg(not(perf_ebpf_object_missing))]
static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(env!("PERF_EBPF_OBJECT"));
#[cfg(perf_ebpf_object_missing)]
static EBPF_OBJECT: &[u8] = &[];

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("permission denied loading BPF programs: run as root or with CAP_BPF and CAP_PERFMON")]
    NotPermitted,
    #[error("this kernel has no uprobe support (no /sys/bus/event_source/devices/uprobe)")]
    NoUprobes,
    #[error(transparent)]
    Btf(#[from] btf::BtfError),
    #[error("loading the eBPF object: {0}")]
    Load(String),
    #[error("attaching {what}: {reason}")]
    Attach { what: String, reason: String },
    #[error("{count} functions requested but at most {max} can be traced (raise --max-funcs)")]
    TooManyFunctions { count: usize, max: usize },
}

/// One function to probe: its id in the kernel's maps and where its first instruction is.
#[derive(Clone, Debug)]
pub struct Probe {
    pub fn_id: u32,
    pub file_offset: u64,
    /// For error messages.
    pub symbol: String,
}

#[derive(Clone, Debug)]
pub struct LoadSpec {
    pub pid: u32,
    /// `/proc/PID/exe`: the inode the process runs, even if the path on disk was replaced.
    pub exe: PathBuf,
    pub probes: Vec<Probe>,
    pub mode: ProbeMode,
    /// Attach the syscall and scheduler tracepoints (attribution, `--syscalls`).
    pub tracepoints: bool,
    pub config: Config,
    pub max_funcs: usize,
}

/// Which programs go on the traced functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ProbeMode {
    /// Entry and return: latency, attribution, exemplars.
    #[default]
    Full,
    /// Entry only: call counts, nothing timed. Safe on binaries that unwind (panics, exceptions).
    EntryOnly,
    /// Entry and return programs that do nothing: the kernel's floor, for benchmarks.
    Empty,
}

/// Loaded programs and their links. Dropping it detaches every probe and unloads the programs.
pub struct Tracer {
    pub ebpf: Ebpf,
    func_slow: Array<MapData, u64>,
    pub attached: usize,
    /// Every uprobe link by function, so one function's probes can be removed (overhead guard).
    links: Vec<(u32, &'static str, UProbeLinkId)>,
}

fn is_eperm(s: &str) -> bool {
    s.contains("Operation not permitted") || s.contains("os error 1)") || s.contains("EPERM")
}

fn load_error(e: impl std::fmt::Display) -> LoadError {
    let s = format!("{e:#}");
    if is_eperm(&s) { LoadError::NotPermitted } else { LoadError::Load(s) }
}

fn attach_error(what: impl Into<String>, e: impl std::error::Error) -> LoadError {
    // aya's Display often hides the cause: walk the chain.
    let mut reason = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        reason.push_str(": ");
        reason.push_str(&s.to_string());
        src = s.source();
    }
    if is_eperm(&reason) { LoadError::NotPermitted } else { LoadError::Attach { what: what.into(), reason } }
}

/// Whether this process may load BPF at all (root, or CAP_BPF + CAP_PERFMON), from /proc/self/status.
pub fn has_bpf_privileges() -> bool {
    const CAP_SYS_ADMIN: u32 = 21;
    const CAP_PERFMON: u32 = 38;
    const CAP_BPF: u32 = 39;
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        .unwrap_or(0);
    let has = |c: u32| eff & (1u64 << c) != 0;
    has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON))
}

impl Tracer {
    pub fn load(spec: &LoadSpec) -> Result<Tracer, LoadError> {
        if !has_bpf_privileges() {
            return Err(LoadError::NotPermitted);
        }
        if !Path::new("/sys/bus/event_source/devices/uprobe").exists() {
            return Err(LoadError::NoUprobes);
        }
        if spec.probes.len() > spec.max_funcs {
            return Err(LoadError::TooManyFunctions { count: spec.probes.len(), max: spec.max_funcs });
        }
        // PERF_USER_BTF points at another BTF file (a kernel whose BTF lives elsewhere).
        let btf_path = std::env::var_os("PERF_USER_BTF").map_or_else(|| PathBuf::from(btf::VMLINUX), PathBuf::from);
        let offsets = btf::member_offsets(&btf_path, "task_struct", &["pid", "tgid"])?;
        let funcs = u32::try_from(spec.probes.len().max(1)).unwrap_or(u32::MAX);
        let mut ebpf = EbpfLoader::new()
            .override_global(names::GLOBAL_TARGET_TGID, &spec.pid, true)
            .override_global(names::GLOBAL_TASK_PID_OFFSET, &offsets[0], true)
            .override_global(names::GLOBAL_TASK_TGID_OFFSET, &offsets[1], true)
            .map_max_entries(names::FUNC_STATS, funcs)
            .map_max_entries(names::FUNC_HIST, 2 * funcs)
            .map_max_entries(names::FUNC_SLOW, funcs)
            .load(EBPF_OBJECT)
            .map_err(load_error)?;

        // The programs keep the map alive; this handle only writes the initial knobs.
        let mut config: Array<MapData, Config> = ebpf
            .take_map(names::CONFIG)
            .ok_or_else(|| LoadError::Load("no CONFIG map in the object".into()))
            .and_then(|m| Array::try_from(m).map_err(load_error))?;
        config.set(0, spec.config, 0).map_err(load_error)?;
        let func_slow: Array<MapData, u64> = ebpf
            .take_map(names::FUNC_SLOW)
            .ok_or_else(|| LoadError::Load("no FUNC_SLOW map in the object".into()))
            .and_then(|m| Array::try_from(m).map_err(load_error))?;

        let mut attached = 0;
        let tracepoints: &[(&str, &str)] = if spec.tracepoints {
            &[
                (names::PROG_SYS_ENTER, "sys_enter"),
                (names::PROG_SYS_EXIT, "sys_exit"),
                (names::PROG_SCHED_SWITCH, "sched_switch"),
                (names::PROG_PROCESS_EXIT, "sched_process_exit"),
            ]
        } else {
            &[]
        };
        for &(name, tp) in tracepoints {
            let prog: &mut RawTracePoint = ebpf
                .program_mut(name)
                .ok_or_else(|| LoadError::Load(format!("no program {name}")))?
                .try_into()
                .map_err(load_error)?;
            prog.load().map_err(|e| attach_error(format!("raw tracepoint {tp}"), e))?;
            prog.attach(tp).map_err(|e| attach_error(format!("raw tracepoint {tp}"), e))?;
            attached += 1;
        }

        let pid = NonZeroU32::new(spec.pid).ok_or_else(|| LoadError::Load("pid 0".into()))?;
        // Returns first: a call that starts between the two attaches then has a return without an
        // entry (counted as orphaned) rather than an entry that never returns.
        let progs: &[&str] = match spec.mode {
            ProbeMode::Full => &[names::PROG_FUNC_EXIT, names::PROG_FUNC_ENTRY],
            ProbeMode::EntryOnly => &[names::PROG_FUNC_COUNT],
            ProbeMode::Empty => &[names::PROG_FUNC_EXIT_EMPTY, names::PROG_FUNC_ENTRY_EMPTY],
        };
        let mut links = Vec::with_capacity(progs.len() * spec.probes.len());
        for &name in progs {
            let prog: &mut UProbe = ebpf
                .program_mut(name)
                .ok_or_else(|| LoadError::Load(format!("no program {name}")))?
                .try_into()
                .map_err(load_error)?;
            prog.load().map_err(|e| attach_error(name, e))?;
            for p in &spec.probes {
                let point = UProbeAttachPoint {
                    location: UProbeAttachLocation::AbsoluteOffset(p.file_offset),
                    cookie: Some(u64::from(p.fn_id)),
                };
                let link = prog
                    .attach(point, &spec.exe, UProbeScope::OneProcess(pid))
                    .map_err(|e| attach_error(format!("{name} to {}", p.symbol), e))?;
                links.push((p.fn_id, name, link));
                attached += 1;
            }
        }
        Ok(Tracer { ebpf, func_slow, attached, links })
    }

    /// Removes every probe of one function; the rest keep running. Its frames still on a thread's
    /// shadow stack are dropped as orphans by the next entry below them.
    pub fn detach_function(&mut self, fn_id: u32) -> Result<usize, LoadError> {
        let mut detached = 0;
        let mut i = 0;
        while i < self.links.len() {
            if self.links[i].0 != fn_id {
                i += 1;
                continue;
            }
            let (_, name, link) = self.links.swap_remove(i);
            let prog: &mut UProbe = self
                .ebpf
                .program_mut(name)
                .ok_or_else(|| LoadError::Load(format!("no program {name}")))?
                .try_into()
                .map_err(load_error)?;
            prog.detach(link).map_err(|e| attach_error(format!("detaching {name}"), e))?;
            detached += 1;
        }
        self.attached -= detached;
        Ok(detached)
    }

    /// Sets one function's own exemplar threshold (0: the global one).
    pub fn set_slow_threshold(&mut self, fn_id: u32, slow_ns: u64) -> Result<(), LoadError> {
        self.func_slow.set(fn_id, slow_ns, 0).map_err(load_error)
    }
}
