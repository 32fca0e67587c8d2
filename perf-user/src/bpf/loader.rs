//! The only module that talks to aya: loads the embedded eBPF object with the target's globals,
//! attaches the probes and returns a guard whose drop detaches everything.

use std::{
    num::NonZeroU32,
    os::fd::{AsFd, OwnedFd},
    path::{Path, PathBuf},
    sync::OnceLock,
};

use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, MapData},
    programs::{
        BtfTracePoint, RawTracePoint, UProbe,
        uprobe::{UProbeAttachLocation, UProbeAttachPoint, UProbeLinkId, UProbeScope},
    },
};
use perf_ebpf_common::{Config, INTERF_ON, INTERF_STEAL, StealLayout, names};

use crate::{bpf::btf, bpf::kfunc, bpf::uprobe_multi};

#[cfg(perf_ebpf_object_missing)]
compile_error!("the eBPF object is not built: run `cargo xtask build-ebpf` (or `cargo xtask test`) first");

#[cfg(not(perf_ebpf_object_missing))]
pub(crate) static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(env!("PERF_EBPF_OBJECT"));
#[cfg(perf_ebpf_object_missing)]
pub(crate) static EBPF_OBJECT: &[u8] = &[];

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("permission denied loading BPF programs: run as root or with CAP_BPF and CAP_PERFMON")]
    NotPermitted,
    #[error("this kernel has no uprobe support (no uprobe_multi links, no {0}/bus/event_source/devices/uprobe)")]
    NoUprobes(String),
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
    pub attach: AttachMode,
}

/// How the function probes are attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum AttachMode {
    /// A session where the kernel has one (6.13+), else `uprobe_multi` links (6.6+), else one perf
    /// event per probe.
    #[default]
    Auto,
    /// One program for entry and return through a `uprobe_multi` session link (kernel 6.13+); the
    /// only mode in which sampled-out calls skip the return probe.
    Session,
    /// One `uprobe_multi` link per program for all functions; fails on older kernels.
    Multi,
    /// One perf-event uprobe per function and program (any kernel with uprobes).
    Single,
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
    /// The empty session program plus a clock read at entry and return: the least any timing of
    /// a call adds, for benchmarks (needs session cookies).
    Clock,
    /// One session program keeping the entry time in the session cookie: wall-time latency and
    /// counts only (no thread state, no attribution, no exemplars), the cheapest timed mode.
    Latency,
}

impl ProbeMode {
    /// The export's `probes` field: what the function probes measured.
    pub fn label(self) -> &'static str {
        match self {
            ProbeMode::Full => "full",
            ProbeMode::Latency => "latency",
            ProbeMode::EntryOnly => "entry_only",
            ProbeMode::Empty => "empty",
            ProbeMode::Clock => "clock",
        }
    }

    /// The command-line option that selects the mode, for error messages.
    fn flag(self) -> &'static str {
        match self {
            ProbeMode::Full => "--probe-mode full",
            ProbeMode::Latency => "--latency-only",
            ProbeMode::EntryOnly => "--entry-only",
            ProbeMode::Empty => "--probe-mode empty",
            ProbeMode::Clock => "--probe-mode clock",
        }
    }

    /// Whether the mode keeps a call's entry state in the session cookie, so it can only be
    /// attached as a uprobe session.
    fn needs_session_cookie(self) -> bool {
        matches!(self, ProbeMode::Latency | ProbeMode::Clock)
    }
}

/// Loaded programs and their links. Dropping it detaches every probe and unloads the programs.
pub struct Tracer {
    /// Dropped first: closing the multi links detaches all their probes at once.
    links: Links,
    pub ebpf: Ebpf,
    func_slow: Array<MapData, u64>,
    pub attached: usize,
    /// With `--interference`: whether hypervisor steal is measured (a KVM guest whose kernel
    /// has a per-CPU `steal_time`); false without `--interference`.
    pub steal_measured: bool,
}

/// Where the running task finds its CPU's steal clock (see `StealLayout`), from the kernel's BTF;
/// `None` on a kernel without KVM guest steal time or without the fields it needs.
fn steal_layout(vmlinux: &[u8]) -> Option<StealLayout> {
    let se = btf::parse_member_offsets(vmlinux, "task_struct", &["se"]).ok()?;
    let cfs_rq = btf::parse_member_offsets(vmlinux, "sched_entity", &["cfs_rq"]).ok()?;
    let rq = btf::parse_member_offsets(vmlinux, "cfs_rq", &["rq"]).ok()?;
    // The program reads `steal`, which must be the struct's first field.
    let steal = btf::parse_member_offsets(vmlinux, "kvm_steal_time", &["steal"]).ok()?;
    if steal.first() != Some(&0) {
        return None;
    }
    let steal_time = btf::var_section_offset(vmlinux, "steal_time").ok()??;
    let runqueues = btf::var_section_offset(vmlinux, "runqueues").ok()??;
    Some(StealLayout {
        task_cfs_rq: u64::from(*se.first()?) + u64::from(*cfs_rq.first()?),
        cfs_rq_rq: u64::from(*rq.first()?),
        steal_minus_rq: i64::from(steal_time).wrapping_sub(i64::from(runqueues)) as u64,
    })
}

/// Whether this kernel runs under a hypervisor (the CPU's `hypervisor` flag). Steal time exists
/// only there; elsewhere the kernel's `steal_time` stays 0 and is not worth reading.
fn is_vm_guest() -> bool {
    std::fs::read_to_string("/proc/cpuinfo")
        .is_ok_and(|s| s.lines().any(|l| l.starts_with("flags") && l.split_whitespace().any(|f| f == "hypervisor")))
}

/// The function probes, by how they were attached.
enum Links {
    /// Every uprobe link by function, so one function's probes can be removed (overhead guard).
    Single(Vec<(u32, &'static str, UProbeLinkId)>),
    /// One link per program over all `probes`; removing a function re-creates the links.
    Multi { progs: Vec<MultiProgram>, probes: Vec<Probe>, exe: PathBuf, pid: u32 },
}

struct MultiProgram {
    name: &'static str,
    prog: OwnedFd,
    hook: Hook,
    link: Option<OwnedFd>,
}

/// Where a function program runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hook {
    Entry,
    Return,
    /// At entry, and at return unless the entry returned non-zero.
    Session,
}

/// The programs to attach, returns first: a call that starts between the two attaches then has a
/// return without an entry (counted as orphaned) rather than an entry that never returns.
fn programs(mode: ProbeMode, session: bool) -> &'static [(&'static str, Hook)] {
    match (mode, session) {
        (ProbeMode::Full, false) => &[(names::PROG_FUNC_EXIT, Hook::Return), (names::PROG_FUNC_ENTRY, Hook::Entry)],
        (ProbeMode::Full, true) => &[(names::PROG_FUNC_SESSION, Hook::Session)],
        (ProbeMode::EntryOnly, _) => &[(names::PROG_FUNC_COUNT, Hook::Entry)],
        (ProbeMode::Empty, false) => {
            &[(names::PROG_FUNC_EXIT_EMPTY, Hook::Return), (names::PROG_FUNC_ENTRY_EMPTY, Hook::Entry)]
        }
        (ProbeMode::Empty, true) => &[(names::PROG_FUNC_SESSION_EMPTY, Hook::Session)],
        (ProbeMode::Latency, _) => &[(names::PROG_FUNC_LATENCY, Hook::Session)],
        (ProbeMode::Clock, _) => &[(names::PROG_FUNC_SESSION_CLOCK, Hook::Session)],
    }
}

/// The eBPF object with its kernel-function calls resolved against the kernel BTF `vmlinux`
/// (once per process).
fn object(vmlinux: &[u8]) -> Result<&'static kfunc::Resolved, LoadError> {
    static OBJECT: OnceLock<Result<kfunc::Resolved, String>> = OnceLock::new();
    OBJECT.get_or_init(|| kfunc::resolve(EBPF_OBJECT, vmlinux)).as_ref().map_err(|e| LoadError::Load(e.clone()))
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

/// Program `name` of the object as aya's type `T` (`UProbe`, `RawTracePoint`, …).
fn program<'a, T>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut T, LoadError>
where
    &'a mut T: TryFrom<&'a mut aya::programs::Program, Error = aya::programs::ProgramError>,
{
    ebpf.program_mut(name)
        .ok_or_else(|| LoadError::Load(format!("no program {name}")))?
        .try_into()
        .map_err(|e| LoadError::Load(format!("program {name}: {e}")))
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
        if spec.probes.len() > spec.max_funcs {
            return Err(LoadError::TooManyFunctions { count: spec.probes.len(), max: spec.max_funcs });
        }
        // PERF_USER_BTF points at another BTF file (a kernel whose BTF lives elsewhere).
        let btf_path = std::env::var_os("PERF_USER_BTF").map_or_else(|| PathBuf::from(btf::VMLINUX), PathBuf::from);
        let vmlinux = btf::read(&btf_path)?;
        let offsets = btf::parse_member_offsets(&vmlinux, "task_struct", &["tgid"])?;
        let object = object(&vmlinux)?;
        if spec.mode == ProbeMode::Latency && spec.probes.len() > perf_ebpf_common::LATENCY_MAX_FUNCS as usize {
            return Err(LoadError::TooManyFunctions {
                count: spec.probes.len(),
                max: perf_ebpf_common::LATENCY_MAX_FUNCS as usize,
            });
        }
        if spec.mode.needs_session_cookie() && !object.has(kfunc::SESSION_COOKIE) {
            return Err(LoadError::Load(format!(
                "{} needs uprobe session cookies ({}, kernel 6.13+), which this kernel lacks",
                spec.mode.flag(),
                kfunc::SESSION_COOKIE
            )));
        }
        let funcs = u32::try_from(spec.probes.len().max(1)).unwrap_or(u32::MAX);
        let mut config = spec.config;
        let interference = spec.tracepoints && config.interference & INTERF_ON != 0;
        let layout = if interference && is_vm_guest() { steal_layout(&vmlinux) } else { None };
        let steal = layout.is_some();
        if steal {
            config.interference |= INTERF_STEAL;
        } else {
            config.interference &= !INTERF_STEAL;
        }
        let mut ebpf = EbpfLoader::new()
            .override_global(names::GLOBAL_TARGET_TGID, &spec.pid, true)
            .override_global(names::GLOBAL_TASK_TGID_OFFSET, &offsets[0], true)
            .override_global(names::GLOBAL_CONFIG, &config, true)
            .override_global(names::GLOBAL_STEAL_LAYOUT, &layout.unwrap_or_default(), true)
            .map_max_entries(names::FUNC_STATS, funcs)
            .map_max_entries(names::FUNC_HIST, 2 * funcs)
            .map_max_entries(names::FUNC_SLOW, funcs)
            .map_max_entries(names::FUNC_NESTS, funcs)
            // THREADS is task storage, which aya 0.14 creates but has no type for.
            .allow_unsupported_maps()
            .load(object.bytes())
            .map_err(load_error)?;

        // A second copy of the object for the uprobe_multi programs, pointed at aya's maps before
        // any map handle is taken out of `ebpf`.
        let raw = match spec.attach {
            AttachMode::Single => Err("not needed".to_owned()),
            AttachMode::Multi | AttachMode::Session | AttachMode::Auto => {
                uprobe_multi::RawObject::new(object.bytes(), &ebpf)
            }
        };

        let func_slow: Array<MapData, u64> = ebpf
            .take_map(names::FUNC_SLOW)
            .ok_or_else(|| LoadError::Load("no FUNC_SLOW map in the object".into()))
            .and_then(|m| Array::try_from(m).map_err(load_error))?;

        let mut attached = 0;
        if spec.tracepoints {
            // BTF tracepoints where typed arguments help (the syscall number, the next task).
            let kernel_btf = aya::Btf::from_sys_fs().map_err(|e| LoadError::Load(format!("kernel BTF: {e}")))?;
            for (name, tp) in [
                (names::PROG_SYS_ENTER, "sys_enter"),
                (names::PROG_SYS_EXIT, "sys_exit"),
                (names::PROG_SCHED_SWITCH, "sched_switch"),
            ] {
                let prog: &mut BtfTracePoint = program(&mut ebpf, name)?;
                prog.load(tp, &kernel_btf).map_err(|e| attach_error(format!("BTF tracepoint {tp}"), e))?;
                prog.attach().map_err(|e| attach_error(format!("BTF tracepoint {tp}"), e))?;
                attached += 1;
            }
            if interference {
                // System-wide, but each a few stores per interrupt (docs/ATTRIBUTION.md, "Interference").
                for (name, tp) in [
                    (names::PROG_IRQ_ENTRY, "irq_handler_entry"),
                    (names::PROG_IRQ_EXIT, "irq_handler_exit"),
                    (names::PROG_TIMER_ENTRY, "local_timer_entry"),
                    (names::PROG_TIMER_EXIT, "local_timer_exit"),
                    (names::PROG_SOFTIRQ_ENTRY, "softirq_entry"),
                    (names::PROG_SOFTIRQ_EXIT, "softirq_exit"),
                    (names::PROG_PAGE_FAULT, "page_fault_user"),
                ] {
                    let prog: &mut BtfTracePoint = program(&mut ebpf, name)?;
                    prog.load(tp, &kernel_btf).map_err(|e| attach_error(format!("BTF tracepoint {tp}"), e))?;
                    prog.attach().map_err(|e| attach_error(format!("BTF tracepoint {tp}"), e))?;
                    attached += 1;
                }
            }
            let name = names::PROG_PROCESS_EXIT;
            let tp = "sched_process_exit";
            let prog: &mut RawTracePoint = program(&mut ebpf, name)?;
            prog.load().map_err(|e| attach_error(format!("raw tracepoint {tp}"), e))?;
            prog.attach(tp).map_err(|e| attach_error(format!("raw tracepoint {tp}"), e))?;
            attached += 1;
        }

        let session =
            spec.attach == AttachMode::Session || spec.config.sample_every > 1 || spec.mode.needs_session_cookie();
        if session && spec.attach == AttachMode::Single {
            let what = if spec.mode.needs_session_cookie() { spec.mode.flag() } else { "sampling" };
            return Err(LoadError::Load(format!("{what} needs session attachment, not --attach-mode single")));
        }
        let links = match spec.attach {
            AttachMode::Single => attach_single(&mut ebpf, spec, programs(spec.mode, false))?,
            AttachMode::Multi => attach_multi(&raw, spec, programs(spec.mode, session))?,
            AttachMode::Session => attach_multi(&raw, spec, programs(spec.mode, true))?,
            // Sampling and latency-only have no fallback: they need the session.
            AttachMode::Auto if session => attach_multi(&raw, spec, programs(spec.mode, true))?,
            // The cheapest the kernel has: a session (6.13+: one program, one trap's worth less
            // work per call), else an entry and a return program on uprobe_multi links (6.6+),
            // else perf events. Older kernels reject the attach type at load or at link time.
            AttachMode::Auto => match attach_multi(&raw, spec, programs(spec.mode, true)) {
                Ok(links) => links,
                Err(LoadError::NotPermitted) => return Err(LoadError::NotPermitted),
                Err(_) => match attach_multi(&raw, spec, programs(spec.mode, false)) {
                    Ok(links) => links,
                    Err(LoadError::NotPermitted) => return Err(LoadError::NotPermitted),
                    Err(_) => attach_single(&mut ebpf, spec, programs(spec.mode, false))?,
                },
            },
        };
        attached += match &links {
            Links::Single(l) => l.len(),
            Links::Multi { progs, probes, .. } => progs.len() * probes.len(),
        };
        Ok(Tracer { links, ebpf, func_slow, attached, steal_measured: steal })
    }

    /// How the function probes were attached: `uprobe_session`, `uprobe_multi` or `perf_event`.
    pub fn attach_kind(&self) -> &'static str {
        match self.attached_as() {
            AttachMode::Session => "uprobe_session",
            AttachMode::Multi => "uprobe_multi",
            AttachMode::Single | AttachMode::Auto => "perf_event",
        }
    }

    /// The attach mode the probes ended up with (`Auto` resolved).
    pub fn attached_as(&self) -> AttachMode {
        match &self.links {
            Links::Single(_) => AttachMode::Single,
            Links::Multi { progs, .. } if progs.iter().any(|p| p.hook == Hook::Session) => AttachMode::Session,
            Links::Multi { .. } => AttachMode::Multi,
        }
    }

    /// Removes every probe of one function; the rest keep running. Its frames still on a thread's
    /// shadow stack are dropped as orphans by the next entry below them.
    pub fn detach_function(&mut self, fn_id: u32) -> Result<usize, LoadError> {
        let detached = match &mut self.links {
            Links::Single(links) => {
                let mut detached = 0;
                let mut i = 0;
                while i < links.len() {
                    if links[i].0 != fn_id {
                        i += 1;
                        continue;
                    }
                    let (_, name, link) = links.swap_remove(i);
                    let prog: &mut UProbe = program(&mut self.ebpf, name)?;
                    prog.detach(link).map_err(|e| attach_error(format!("detaching {name}"), e))?;
                    detached += 1;
                }
                detached
            }
            Links::Multi { progs, probes, exe, pid } => {
                let before = probes.len();
                probes.retain(|p| p.fn_id != fn_id);
                if probes.len() == before {
                    return Ok(0);
                }
                // A link's function set is fixed: close them all (entries first, so no new frame
                // waits for a return that is no longer probed), then link the rest again, returns
                // first. Calls in flight meanwhile end up counted as orphans.
                for p in progs.iter_mut().rev() {
                    p.link = None;
                }
                for p in progs.iter_mut() {
                    if !probes.is_empty() {
                        p.link = Some(link_multi(p, probes, exe, *pid)?);
                    }
                }
                progs.len() * (before - probes.len())
            }
        };
        self.attached -= detached;
        Ok(detached)
    }

    /// Sets one function's own exemplar threshold (0: the global one).
    pub fn set_slow_threshold(&mut self, fn_id: u32, slow_ns: u64) -> Result<(), LoadError> {
        self.func_slow.set(fn_id, slow_ns, 0).map_err(load_error)
    }
}

/// Perf-event uprobes need the kernel's uprobe PMU. `PERF_USER_SYSFS` points at another sysfs
/// root (tests simulate a kernel without uprobes with it).
fn uprobe_pmu() -> Result<(), LoadError> {
    let sysfs = std::env::var_os("PERF_USER_SYSFS").map_or_else(|| PathBuf::from("/sys"), PathBuf::from);
    if sysfs.join("bus/event_source/devices/uprobe").exists() {
        Ok(())
    } else {
        Err(LoadError::NoUprobes(sysfs.display().to_string()))
    }
}

fn attach_single(ebpf: &mut Ebpf, spec: &LoadSpec, progs: &[(&'static str, Hook)]) -> Result<Links, LoadError> {
    uprobe_pmu()?;
    let pid = NonZeroU32::new(spec.pid).ok_or_else(|| LoadError::Load("pid 0".into()))?;
    let mut links = Vec::with_capacity(progs.len() * spec.probes.len());
    for &(name, _) in progs {
        let prog: &mut UProbe = program(ebpf, name)?;
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
        }
    }
    Ok(Links::Single(links))
}

/// Loads each program again with the `uprobe_multi` attach type and links it to every function.
/// All or nothing: on error, whatever was linked is closed again.
fn attach_multi(
    raw: &Result<uprobe_multi::RawObject, String>,
    spec: &LoadSpec,
    progs: &[(&'static str, Hook)],
) -> Result<Links, LoadError> {
    let raw = raw.as_ref().map_err(|e| LoadError::Load(e.clone()))?;
    let mut loaded = Vec::with_capacity(progs.len());
    for &(name, hook) in progs {
        let attach_type = if hook == Hook::Session {
            uprobe_multi::BPF_TRACE_UPROBE_SESSION
        } else {
            uprobe_multi::BPF_TRACE_UPROBE_MULTI
        };
        let prog = raw.load(name, attach_type).map_err(load_error)?;
        loaded.push(MultiProgram { name, prog, hook, link: None });
    }
    for p in &mut loaded {
        if !spec.probes.is_empty() {
            p.link = Some(link_multi(p, &spec.probes, &spec.exe, spec.pid)?);
        }
    }
    Ok(Links::Multi { progs: loaded, probes: spec.probes.clone(), exe: spec.exe.clone(), pid: spec.pid })
}

fn link_multi(p: &MultiProgram, probes: &[Probe], exe: &Path, pid: u32) -> Result<OwnedFd, LoadError> {
    let offsets: Vec<u64> = probes.iter().map(|p| p.file_offset).collect();
    let cookies: Vec<u64> = probes.iter().map(|p| u64::from(p.fn_id)).collect();
    let how = match p.hook {
        Hook::Entry => uprobe_multi::Link::Entry,
        Hook::Return => uprobe_multi::Link::Return,
        Hook::Session => uprobe_multi::Link::Session,
    };
    uprobe_multi::attach(p.prog.as_fd(), exe, &offsets, &cookies, pid, how).map_err(|e| {
        if e.raw_os_error() == Some(libc::EPERM) {
            LoadError::NotPermitted
        } else {
            LoadError::Attach { what: format!("{} to {} functions", p.name, probes.len()), reason: e.to_string() }
        }
    })
}
