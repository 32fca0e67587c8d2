//! The only module that talks to aya: loads the embedded eBPF object with the target's globals,
//! attaches the probes and returns a guard whose drop detaches everything.

use std::{
    path::PathBuf,
    sync::{OnceLock, atomic::AtomicBool},
};

use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, MapData},
    programs::{BtfTracePoint, RawTracePoint, UProbe},
};
use perf_ebpf_common::{Config, INTERF_ON, INTERF_STEAL, StealLayout, names};

use crate::{bpf::btf, bpf::kfunc, bpf::uprobe_multi};

mod error;
mod links;
mod spans;

pub use error::LoadError;
use error::or_not_permitted;
pub use links::Skipped;
use links::{Hook, Links, Objects, attach_multi, attach_single, programs};
pub use spans::SpanProbe;

#[cfg(perf_ebpf_object_missing)]
compile_error!("the eBPF object is not built: run `cargo xtask build-ebpf` (or `cargo xtask test`) first");

#[cfg(not(perf_ebpf_object_missing))]
pub(crate) static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(env!("PERF_EBPF_OBJECT"));
#[cfg(perf_ebpf_object_missing)]
pub(crate) static EBPF_OBJECT: &[u8] = &[];

/// One function to probe: its id in the kernel's maps and where its first instruction is.
#[derive(Clone, Debug)]
pub struct Probe {
    pub fn_id: u32,
    pub file_offset: u64,
    /// For error messages.
    pub symbol: String,
    /// The ELF object `file_offset` is in (a shared library's `/proc/PID/map_files/…`); `None`:
    /// the executable, `LoadSpec::exe`.
    pub object: Option<PathBuf>,
}

#[derive(Clone, Debug)]
pub struct LoadSpec {
    pub pid: u32,
    /// `/proc/PID/exe`: the inode the process runs, even if the path on disk was replaced.
    pub exe: PathBuf,
    pub probes: Vec<Probe>,
    /// Function ids the kernel's maps make room for: at least `probes.len()`, more when functions
    /// may be added while tracing (libraries loaded later, [`Tracer::add_probes`]).
    pub capacity: usize,
    pub mode: ProbeMode,
    /// Attach the syscall and scheduler tracepoints (attribution, `--syscalls`).
    pub tracepoints: bool,
    pub config: Config,
    pub max_funcs: usize,
    pub attach: AttachMode,
    /// `--span` endpoints, and the size of the map of starts waiting for their end.
    pub spans: Vec<SpanProbe>,
    pub span_keys: u32,
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
    /// The objects probed, held open (after `links`: the probes' files).
    objects: Objects,
    /// The process traced and its executable (probes without an object).
    target: (u32, PathBuf),
    /// Function ids the maps hold.
    capacity: usize,
    pub ebpf: Ebpf,
    func_slow: Array<MapData, u64>,
    pub attached: usize,
    /// Functions the kernel refused to probe (one warning each); the rest are traced.
    pub skipped: Vec<Skipped>,
    /// With `--interference`: whether hypervisor steal is measured (a KVM guest whose kernel
    /// has a per-CPU `steal_time`); false without `--interference`.
    pub steal_measured: bool,
    /// CLOCK_MONOTONIC just before the first probe was attached: no call the probes time can
    /// have entered earlier, so exemplar times count from here (`at_ns`, "time since attach").
    pub attach_mono_ns: u64,
    /// The most functions per link already reported by `links_shared_note` (0: none), so
    /// libraries probed later that share more are reported, and nothing twice.
    shared_noted: usize,
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

/// The eBPF object with its kernel-function calls resolved against the kernel BTF `vmlinux`
/// (once per process).
fn object(vmlinux: &[u8]) -> Result<&'static kfunc::Resolved, LoadError> {
    static OBJECT: OnceLock<Result<kfunc::Resolved, String>> = OnceLock::new();
    OBJECT
        .get_or_init(|| kfunc::resolve(EBPF_OBJECT, vmlinux).map_err(|e| super::sys::error_chain(&e)))
        .as_ref()
        .map_err(|e| LoadError::Kfunc(e.clone()))
}

fn attach_error(what: impl Into<String>, source: aya::programs::ProgramError) -> LoadError {
    or_not_permitted(LoadError::Attach { what: what.into(), source })
}

/// Program `name` of the object as aya's type `T` (`UProbe`, `RawTracePoint`, …).
fn program<'a, T>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut T, LoadError>
where
    &'a mut T: TryFrom<&'a mut aya::programs::Program, Error = aya::programs::ProgramError>,
{
    ebpf.program_mut(name)
        .ok_or_else(|| LoadError::MissingProgram { name: name.to_owned() })?
        .try_into()
        .map_err(|source| LoadError::Program { name: name.to_owned(), source })
}

/// Whether this process may load BPF at all (root, or CAP_BPF + CAP_PERFMON), from /proc/self/status.
pub fn has_bpf_privileges() -> bool {
    crate::target::proc::own_status().is_some_and(|s| crate::target::proc::can_load_bpf(s.cap_eff))
}

impl Tracer {
    pub fn load(spec: &LoadSpec) -> Result<Tracer, LoadError> {
        Tracer::load_until(spec, &AtomicBool::new(false))
    }

    /// Loads and attaches; gives up with [`LoadError::Interrupted`] between attach steps once
    /// `cancel` is set (a signal), detaching whatever was attached.
    pub fn load_until(spec: &LoadSpec, cancel: &AtomicBool) -> Result<Tracer, LoadError> {
        if !has_bpf_privileges() {
            return Err(LoadError::NotPermitted);
        }
        if spec.probes.len() > spec.max_funcs {
            return Err(LoadError::TooManyFunctions { count: spec.probes.len(), max: spec.max_funcs });
        }
        let (mut ebpf, object, steal_measured) = load_object(spec)?;
        // A second copy of the object for the uprobe_multi programs, pointed at aya's maps before
        // any map handle is taken out of `ebpf`.
        let raw = match spec.attach {
            AttachMode::Single => Err("not needed".to_owned()),
            AttachMode::Multi | AttachMode::Session | AttachMode::Auto => {
                uprobe_multi::RawObject::new(object.bytes(), &ebpf).map_err(|e| super::sys::error_chain(&e))
            }
        };
        let func_slow: Array<MapData, u64> = ebpf
            .take_map(names::FUNC_SLOW)
            .ok_or_else(|| LoadError::MissingMap { name: names::FUNC_SLOW.to_owned() })
            .and_then(|m| {
                Array::try_from(m).map_err(|source| LoadError::Map { name: names::FUNC_SLOW.to_owned(), source })
            })?;
        let interference = spec.tracepoints && spec.config.interference & INTERF_ON != 0;
        let syscalls = spec.config.syscalls_from_sched == 0;
        let attach_mono_ns = super::collect::monotonic_ns();
        let mut attached = if spec.tracepoints { attach_tracepoints(&mut ebpf, syscalls, interference)? } else { 0 };
        let mut skipped = Vec::new();
        let mut objects = Objects::default();
        let links = attach_functions(&mut ebpf, &raw, &mut objects, spec, cancel, &mut skipped)?;
        attached += links.count();
        attached += spans::attach_spans(&mut ebpf, spec.pid, &spec.spans)?;
        Ok(Tracer {
            links,
            objects,
            target: (spec.pid, spec.exe.clone()),
            capacity: capacity(spec),
            ebpf,
            func_slow,
            attached,
            skipped,
            steal_measured,
            attach_mono_ns,
            shared_noted: 0,
        })
    }

    /// When the descriptor limit made functions share links, at attach or since for libraries
    /// loaded later: one line saying so, for the screen and the export's warnings, given again
    /// only when more functions share a link than last said. Detaching one of them (the overhead
    /// guard) then re-links the others of its link, whose calls are lost meanwhile.
    pub fn links_shared_note(&mut self) -> Option<String> {
        let s = self.links.sharing().filter(|s| s.per_link > self.shared_noted)?;
        self.shared_noted = s.per_link;
        Some(format!(
            "the descriptor limit ({}) is too low for one probe link per function (about {} needed): up to {} \
             functions share a link, so when the overhead guard detaches one the others of its link lose calls \
             while they are re-linked; raise the hard limit (ulimit -Hn) to avoid it",
            s.fd_limit, s.fd_needed, s.per_link
        ))
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
            Links::Single { .. } => AttachMode::Single,
            Links::Multi { progs, .. } if progs.iter().any(|p| p.hook == Hook::Session) => AttachMode::Session,
            Links::Multi { .. } => AttachMode::Multi,
        }
    }

    /// Removes every probe of the functions `fn_ids`; the rest keep running. Their frames still on
    /// a thread's shadow stack are dropped as orphans by the next entry below them. The links of
    /// all of them close at once (see `links::unlink_functions`). Returns the probes removed.
    pub fn detach_functions(&mut self, fn_ids: &[u32]) -> Result<usize, LoadError> {
        let detached = match &mut self.links {
            Links::Single { links, .. } => {
                let mut detached = 0;
                let mut i = 0;
                while i < links.len() {
                    if !fn_ids.contains(&links[i].0) {
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
            Links::Multi { progs, groups, pid } => {
                // Their own links close; the other functions' links stay as they are.
                progs.len() * links::unlink_functions(progs, groups, fn_ids, *pid)?
            }
        };
        self.attached -= detached;
        Ok(detached)
    }

    /// Probes functions found after the load (a library the target loaded later), the same way as
    /// the others. Their ids must be below the spec's `capacity`. Returns the functions the kernel
    /// refused (the rest are traced).
    pub fn add_probes(&mut self, probes: &[Probe], cancel: &AtomicBool) -> Result<Vec<Skipped>, LoadError> {
        if let Some(p) = probes.iter().find(|p| p.fn_id as usize >= self.capacity) {
            return Err(LoadError::TooManyFunctions { count: p.fn_id as usize + 1, max: self.capacity });
        }
        let mut skipped = Vec::new();
        let before = self.links.count();
        let target = (self.target.0, self.target.1.as_path());
        match &mut self.links {
            Links::Single { progs, links } => {
                let progs: &[(&str, Hook)] = progs;
                links::single_probes(
                    &mut self.ebpf,
                    &mut self.objects,
                    target,
                    progs,
                    probes,
                    cancel,
                    &mut skipped,
                    links,
                )?;
            }
            Links::Multi { progs, groups, .. } => {
                groups.extend(links::multi_groups(progs, &mut self.objects, target, probes, cancel, &mut skipped)?);
            }
        }
        self.attached += self.links.count().saturating_sub(before);
        Ok(skipped)
    }

    /// Sets one function's own exemplar threshold (0: the global one).
    pub fn set_slow_threshold(&mut self, fn_id: u32, slow_ns: u64) -> Result<(), LoadError> {
        self.func_slow
            .set(fn_id, slow_ns.min(perf_ebpf_common::SLOW_FROZEN - 1), 0)
            .map_err(|source| LoadError::Map { name: names::FUNC_SLOW.to_owned(), source })
    }

    /// The run's last reading while the target runs: every function's returns stop recording
    /// (`SLOW_FROZEN`), and this returns once no program is still recording one, so every map
    /// read next (histograms and per-thread rows too, which have no epoch copies) holds exactly
    /// the same calls. Nothing is recorded afterwards.
    pub fn freeze(&mut self) -> Result<(), LoadError> {
        for fn_id in 0..self.func_slow.len() {
            self.func_slow
                .set(fn_id, perf_ebpf_common::SLOW_FROZEN, 0)
                .map_err(|source| LoadError::Map { name: names::FUNC_SLOW.to_owned(), source })?;
        }
        super::sys::wait_for_running_programs().map_err(LoadError::from)
    }
}

/// Function ids the maps hold: the spec's room for later functions, within what the mode can name.
fn capacity(spec: &LoadSpec) -> usize {
    let room = spec.capacity.max(spec.probes.len());
    if spec.mode == ProbeMode::Latency { room.min(perf_ebpf_common::LATENCY_MAX_FUNCS as usize) } else { room }
}

/// The embedded object with the target's globals, loaded (programs not yet attached).
/// Also says whether hypervisor steal is measured (`--interference` on a KVM guest).
fn load_object(spec: &LoadSpec) -> Result<(Ebpf, &'static kfunc::Resolved, bool), LoadError> {
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
        return Err(LoadError::Unsupported {
            what: spec.mode.flag(),
            needs: format!("uprobe session cookies ({}, kernel 6.13+), which this kernel lacks", kfunc::SESSION_COOKIE),
        });
    }
    let funcs = u32::try_from(capacity(spec).max(1)).unwrap_or(u32::MAX);
    let mut config = spec.config;
    let interference = spec.tracepoints && config.interference & INTERF_ON != 0;
    let layout = if interference && is_vm_guest() { steal_layout(&vmlinux) } else { None };
    let steal = layout.is_some();
    // Major faults are counted when the kernel's task_struct has `maj_flt` (always so far).
    let maj_flt_offset: u32 = if interference {
        btf::parse_member_offsets(&vmlinux, "task_struct", &["maj_flt"])
            .ok()
            .and_then(|o| o.first().copied())
            .unwrap_or(0)
    } else {
        0
    };
    if steal {
        config.interference |= INTERF_STEAL;
    } else {
        config.interference &= !INTERF_STEAL;
    }
    let ebpf = EbpfLoader::new()
        .override_global(names::GLOBAL_TARGET_TGID, &spec.pid, true)
        .override_global(names::GLOBAL_TASK_TGID_OFFSET, &offsets[0], true)
        .override_global(names::GLOBAL_TASK_MAJ_FLT_OFFSET, &maj_flt_offset, true)
        .override_global(names::GLOBAL_CONFIG, &config, true)
        .override_global(names::GLOBAL_STEAL_LAYOUT, &layout.unwrap_or_default(), true)
        .map_max_entries(names::FUNC_STATS, funcs.saturating_mul(perf_ebpf_common::EPOCHS))
        .map_max_entries(names::FUNC_HIST, 2 * funcs)
        .map_max_entries(names::FUNC_SLOW, funcs)
        .map_max_entries(names::FUNC_NESTS, funcs)
        .map_max_entries(perf_ebpf_common::spans::names::SPAN_STARTS, spec.span_keys.max(1))
        // THREADS is task storage, which aya 0.14 creates but has no type for.
        .allow_unsupported_maps()
        .load(object.bytes())
        .map_err(|e| or_not_permitted(LoadError::Object(e)))?;
    Ok((ebpf, object, steal))
}

/// The scheduler tracepoints (attribution), with `syscalls` the syscall ones (attribution,
/// `--syscalls`; every syscall on the machine pays for them), and with `interference` the
/// interrupt and page-fault ones; returns how many.
fn attach_tracepoints(ebpf: &mut Ebpf, syscalls: bool, interference: bool) -> Result<usize, LoadError> {
    // BTF tracepoints where typed arguments help (the syscall number, the next task).
    let kernel_btf = aya::Btf::from_sys_fs().map_err(LoadError::KernelBtf)?;
    let mut attached = 0;
    let syscall_tps: &[(&str, &str)] =
        if syscalls { &[(names::PROG_SYS_ENTER, "sys_enter"), (names::PROG_SYS_EXIT, "sys_exit")] } else { &[] };
    for &(name, tp) in syscall_tps.iter().chain(&[(names::PROG_SCHED_SWITCH, "sched_switch")]) {
        let prog: &mut BtfTracePoint = program(ebpf, name)?;
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
            let prog: &mut BtfTracePoint = program(ebpf, name)?;
            prog.load(tp, &kernel_btf).map_err(|e| attach_error(format!("BTF tracepoint {tp}"), e))?;
            prog.attach().map_err(|e| attach_error(format!("BTF tracepoint {tp}"), e))?;
            attached += 1;
        }
    }
    let name = names::PROG_PROCESS_EXIT;
    let tp = "sched_process_exit";
    let prog: &mut RawTracePoint = program(ebpf, name)?;
    prog.load().map_err(|e| attach_error(format!("raw tracepoint {tp}"), e))?;
    prog.attach(tp).map_err(|e| attach_error(format!("raw tracepoint {tp}"), e))?;
    Ok(attached + 1)
}

/// The function probes, the cheapest way the kernel has; refused functions land in `skipped`.
fn attach_functions(
    ebpf: &mut Ebpf,
    raw: &Result<uprobe_multi::RawObject, String>,
    objects: &mut Objects,
    spec: &LoadSpec,
    cancel: &AtomicBool,
    skipped: &mut Vec<Skipped>,
) -> Result<Links, LoadError> {
    let session =
        spec.attach == AttachMode::Session || spec.config.sample_every > 1 || spec.mode.needs_session_cookie();
    if session && spec.attach == AttachMode::Single {
        let what = if spec.mode.needs_session_cookie() { spec.mode.flag() } else { "sampling" };
        return Err(LoadError::Unsupported { what, needs: "session attachment, not --attach-mode single".into() });
    }
    match spec.attach {
        AttachMode::Single => attach_single(ebpf, objects, spec, programs(spec.mode, false), cancel, skipped),
        AttachMode::Multi => attach_multi(raw, objects, spec, programs(spec.mode, session), cancel, skipped),
        AttachMode::Session => attach_multi(raw, objects, spec, programs(spec.mode, true), cancel, skipped),
        // Sampling and latency-only have no fallback: they need the session.
        AttachMode::Auto if session => attach_multi(raw, objects, spec, programs(spec.mode, true), cancel, skipped),
        // The cheapest the kernel has: a session (6.13+: one program, one trap's worth less
        // work per call), else an entry and a return program on uprobe_multi links (6.6+),
        // else perf events. Older kernels reject the attach type at load or at link time.
        // Missing privileges and a signal end the fallbacks at once.
        AttachMode::Auto => {
            let fatal = |e: &LoadError| matches!(e, LoadError::NotPermitted | LoadError::Interrupted);
            match attach_multi(raw, objects, spec, programs(spec.mode, true), cancel, skipped) {
                Err(e) if !fatal(&e) => {
                    skipped.clear();
                    match attach_multi(raw, objects, spec, programs(spec.mode, false), cancel, skipped) {
                        Err(e) if !fatal(&e) => {
                            skipped.clear();
                            attach_single(ebpf, objects, spec, programs(spec.mode, false), cancel, skipped)
                        }
                        other => other,
                    }
                }
                other => other,
            }
        }
    }
}
