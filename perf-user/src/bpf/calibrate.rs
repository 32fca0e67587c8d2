//! Measures, on this host, how much a probe pair adds to a measured call: the same programs are
//! attached to an empty function of perf-user itself, which is called many times; the median
//! it reports is pure probe cost, later subtracted from every traced call (`--no-calibrate` keeps
//! raw numbers). It also measures what a probed call costs the target in all, in a tight loop and
//! called sparsely (after a short sleep, as real code meets its probes), for the overhead estimate.

use crate::{
    bpf::collect::Collector,
    bpf::loader::{AttachMode, LoadError, LoadSpec, Probe, ProbeMode, Tracer},
    model::WindowCost,
    target::symbols::SymbolTable,
};

/// Calls of the empty function: enough for a stable median, about 10–20 ms with probes.
const CALLS: u32 = 10_000;
/// Calls of the single-stepped one, each 10–30 µs with probes on a VM: 20–60 ms.
const STEPPED_CALLS: u32 = 2_000;
/// The tight loops are timed in this many slices, the fastest slice counting: a slice an
/// interrupt or a neighbour's burst slowed down is left out.
const SLICES: u32 = 5;
/// Sparse calls of each function, each after a short sleep: the caches, TLB and branch
/// predictors the probe path needs have gone cold by then, as in real code, where a hit costs
/// 1.3–2× a tight loop's (docs/ATTRIBUTION.md, "Probe cost and calibration").
const SPARSE_CALLS: u32 = 48;
/// At least this many, however long they take.
const SPARSE_MIN_CALLS: u32 = 12;
/// The sleep before each sparse call.
const SPARSE_GAP: std::time::Duration = std::time::Duration::from_micros(50);
/// Past this, no further sparse rounds (a busy machine wakes sleepers late): about 20 ms quiet.
const SPARSE_BUDGET: std::time::Duration = std::time::Duration::from_millis(150);

/// The empty function the probes are calibrated on. `#[no_mangle]` so it is found by name,
/// `#[inline(never)]` and `black_box` so it stays a real call with a real prologue.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn perf_user_calibration_target(x: u64) -> u64 {
    std::hint::black_box(x)
}

#[derive(Debug, thiserror::Error)]
pub enum CalibrationError {
    #[error("calibration: {0}")]
    Symbols(#[from] crate::target::symbols::SymbolError),
    #[error("calibration: {0}")]
    Load(#[from] LoadError),
    #[error("calibration: the probes on perf-user's own test function never fired")]
    NoSamples,
    #[error(
        "calibration: {expected} calls of perf-user's own test function were seen as {calls} calls, {timed} timed: \
         the probes do not work on this kernel as perf-user expects"
    )]
    Miscounted { calls: u64, timed: u64, expected: u32 },
}

/// The same empty function entered through a 5-byte nop, the cheap probe site of recent kernels
/// (the trap becomes a call), whose in-window cost differs from a `push rbp` site.
#[unsafe(naked)]
#[unsafe(no_mangle)]
pub extern "C" fn perf_user_calibration_target_nop5(x: u64) -> u64 {
    core::arch::naked_asm!(".byte 0x0f, 0x1f, 0x44, 0x00, 0x00", "mov rax, rdi", "ret")
}

/// The same empty function entered through an instruction the kernel single-steps out of line on
/// every hit (`lea`), the expensive probe site (no frame pointer, CET's `endbr64`, …).
#[unsafe(naked)]
#[unsafe(no_mangle)]
pub extern "C" fn perf_user_calibration_target_stepped(x: u64) -> u64 {
    core::arch::naked_asm!("lea rax, [rdi]", "ret")
}

/// The unprobed twin the sparse calls are set against: the same empty body, never probed.
#[unsafe(naked)]
#[unsafe(no_mangle)]
pub extern "C" fn perf_user_calibration_unprobed(x: u64) -> u64 {
    core::arch::naked_asm!("push rbp", "mov rbp, rsp", "mov rax, rdi", "pop rbp", "ret")
}

pub use crate::model::{NOP5, SiteClass};

/// What probes cost on this host.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProbeCost {
    /// What the probes add inside a measured call of an empty function: their own cost inside
    /// every measured call (subtracted from reported latencies).
    pub in_window: WindowCost,
    /// The same for a function entered through a 5-byte nop.
    pub in_window_nop5: WindowCost,
    /// The same for a function whose first instruction is single-stepped.
    pub in_window_stepped: WindowCost,
    /// What a probed call costs the traced thread in all (entry and return traps and programs):
    /// the larger of a tight loop's and sparse calls' (`PerCall::realistic_ns`), the overhead
    /// estimate's unit. For an emulated entry (`push rbp`).
    pub per_call_ns: u64,
    /// The same through a 5-byte nop entry.
    pub per_call_nop5_ns: u64,
    /// The same through a single-stepped entry.
    pub per_call_stepped_ns: u64,
    /// The two measurements behind `per_call_*`, per class (emulated, nop5, single-stepped).
    pub measured: [PerCall; 3],
}

/// What one probed call costs its thread, measured two ways.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PerCall {
    /// In a tight loop: everything the probe path touches stays in the caches (CPU time, the
    /// fastest slice).
    pub tight_ns: u64,
    /// Called sparsely, each call after a short sleep, against an unprobed twin called the same
    /// way (wall time of the call alone, median).
    pub sparse_ns: u64,
}

impl PerCall {
    /// The cost the estimate and the guard use: real code meets its probes neither always hot
    /// nor always cold, and the guard's promise needs the higher one.
    pub fn realistic_ns(&self) -> u64 {
        self.tight_ns.max(self.sparse_ns)
    }
}

impl ProbeCost {
    /// The in-window cost to subtract for a function of this class.
    pub fn in_window_for(&self, class: SiteClass) -> WindowCost {
        match class {
            SiteClass::Emulated => self.in_window,
            SiteClass::Nop5 => self.in_window_nop5,
            SiteClass::SingleStep => self.in_window_stepped,
        }
    }

    /// The tight-loop and sparse-call measurements behind `per_call_for(class)`.
    pub fn measured_for(&self, class: SiteClass) -> PerCall {
        match class {
            SiteClass::Emulated => self.measured[0],
            SiteClass::Nop5 => self.measured[1],
            SiteClass::SingleStep => self.measured[2],
        }
    }

    /// What one call of a function of this class costs the target (0: not measured).
    pub fn per_call_for(&self, class: SiteClass) -> u64 {
        match class {
            SiteClass::Emulated => self.per_call_ns,
            SiteClass::Nop5 => self.per_call_nop5_ns,
            SiteClass::SingleStep => self.per_call_stepped_ns,
        }
    }
}

/// Calibrates with the run's attach mode (a session program's window differs from an entry and a
/// return program's), and returns the probes themselves for the caller to drop when convenient.
pub fn probe_cost_ns(attach: AttachMode, mode: ProbeMode) -> Result<(ProbeCost, Tracer), CalibrationError> {
    let exe = &crate::target::proc::exe_link(std::process::id());
    let table = SymbolTable::read(exe)?;
    let names =
        ["perf_user_calibration_target", "perf_user_calibration_target_nop5", "perf_user_calibration_target_stepped"];
    let targets = table.select(&names.map(String::from))?;
    let [push, nop5, stepped] = targets.as_slice() else { return Err(CalibrationError::NoSamples) };
    let probe = |fn_id, f: &crate::target::symbols::Function| Probe {
        fn_id,
        file_offset: f.file_offset,
        symbol: f.name.clone(),
        object: None,
    };
    let spec = LoadSpec {
        pid: std::process::id(),
        exe: exe.to_path_buf(),
        probes: vec![probe(0, push), probe(1, nop5), probe(2, stepped)],
        mode,
        tracepoints: false,
        config: perf_ebpf_common::Config::default(),
        max_funcs: 3,
        capacity: 3,
        attach,
        spans: Vec::new(),
        span_keys: perf_ebpf_common::spans::SPAN_KEYS_DEFAULT,
    };
    let targets: [(extern "C" fn(u64) -> u64, u32); 3] = [
        (perf_user_calibration_target, CALLS),
        (perf_user_calibration_target_nop5, CALLS),
        (perf_user_calibration_target_stepped, STEPPED_CALLS),
    ];
    let plain_ns = targets.map(|(f, calls)| time_calls(f, calls));
    let mut tracer = Tracer::load(&spec)?;
    let mut collector =
        Collector::new(&mut tracer, targets.iter().zip(names).map(|(_, n)| n.to_string()).collect(), Vec::new())?;
    let probed_ns = targets.map(|(f, calls)| time_calls(f, calls));
    let (sparse_ns, sparse_calls) = sparse_per_call_ns(targets.map(|t| t.0));
    let sample = collector.sample();
    let window = |id: usize| -> Result<WindowCost, CalibrationError> {
        let calls = targets[id].1 + sparse_calls;
        let f = sample.functions.get(id).ok_or(CalibrationError::NoSamples)?;
        if f.count < u64::from(calls) / 2 {
            return Err(CalibrationError::NoSamples);
        }
        // Session programs tell entry from return by the session cookie the kernel zeroes at
        // entry; on a kernel that did not, calls would go uncounted or be timed twice.
        if f.calls != u64::from(calls) || f.count != u64::from(calls) {
            return Err(CalibrationError::Miscounted { calls: f.calls, timed: f.count, expected: calls });
        }
        Ok(WindowCost { median_ns: f.total_hist.summary(None).p50_ns, min_ns: f.min_ns })
    };
    let measured: [PerCall; 3] = std::array::from_fn(|id| PerCall {
        tight_ns: probed_ns[id].saturating_sub(plain_ns[id]) / u64::from(targets[id].1 / SLICES),
        sparse_ns: sparse_ns[id],
    });
    let cost = ProbeCost {
        in_window: window(0)?,
        in_window_nop5: window(1)?,
        in_window_stepped: window(2)?,
        per_call_ns: measured[0].realistic_ns(),
        per_call_nop5_ns: measured[1].realistic_ns(),
        per_call_stepped_ns: measured[2].realistic_ns(),
        measured,
    };
    drop(collector);
    Ok((cost, tracer))
}

/// CPU time of the fastest of `SLICES` slices of `calls` calls of a calibration target: the
/// thread's own CPU time, so time the machine gave to others does not count, and the fastest slice,
/// so an interrupt's does not either.
fn time_calls(target: extern "C" fn(u64) -> u64, calls: u32) -> u64 {
    let target = std::hint::black_box(target);
    let per_slice = u64::from(calls / SLICES);
    let mut fastest = u64::MAX;
    for slice in 0..u64::from(SLICES) {
        let start = thread_cpu_ns();
        let mut acc = 0u64;
        for i in 0..per_slice {
            acc = acc.wrapping_add(target(slice * per_slice + i));
        }
        std::hint::black_box(acc);
        fastest = fastest.min(thread_cpu_ns().saturating_sub(start));
    }
    fastest
}

/// Syscalls per slice of `syscall_ns`: about 0.5 ms each on a VM.
const SYSCALLS: u32 = 4_000;

/// What one cheap syscall (`getppid`) costs this thread, in CPU time: the fastest of `SLICES`
/// slices.
fn syscall_ns() -> u64 {
    let mut fastest = u64::MAX;
    for _ in 0..SLICES {
        let start = thread_cpu_ns();
        for _ in 0..SYSCALLS {
            // SAFETY: getppid(2) has no arguments and cannot fail.
            std::hint::black_box(unsafe { libc::getppid() });
        }
        fastest = fastest.min(thread_cpu_ns().saturating_sub(start));
    }
    fastest / u64::from(SYSCALLS)
}

/// What the run's tracepoint programs add to one syscall of the target (`--max-overhead`'s fixed
/// part), measured once they are in. They return at the target check for perf-user's syscalls,
/// so perf-user is traced as a target for the measurement: by a second tracer of its own with the
/// tracepoints alone (no uprobe, so dropping it stalls nothing), whose programs take the target's
/// path (its thread's state looked up). A syscall timed with it, less one timed without it, is
/// what the run's programs cost each syscall of the target. A switch-out is counted as one such
/// syscall (one tracepoint where a syscall has two, but the off-CPU bookkeeping).
pub fn tracepoint_cost_ns(attach: AttachMode) -> Result<u64, CalibrationError> {
    let spec = LoadSpec {
        pid: std::process::id(),
        exe: crate::target::proc::exe_link(std::process::id()),
        probes: Vec::new(),
        mode: ProbeMode::Full,
        tracepoints: true,
        config: perf_ebpf_common::Config::default(),
        max_funcs: 1,
        capacity: 1,
        attach,
        spans: Vec::new(),
        span_keys: perf_ebpf_common::spans::SPAN_KEYS_DEFAULT,
    };
    let without = syscall_ns();
    let tracer = Tracer::load(&spec)?;
    let with = syscall_ns();
    drop(tracer);
    Ok(with.saturating_sub(without))
}

/// CPU time this thread has used (`CLOCK_THREAD_CPUTIME_ID`; the probes' traps run in it).
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes the timespec we own; this clock always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &raw mut ts) };
    (ts.tv_sec as u64).saturating_mul(1_000_000_000).saturating_add(ts.tv_nsec as u64)
}

/// Each target called sparsely, each call after `SPARSE_GAP` of sleep and timed alone, against
/// the unprobed twin called the same way: the median difference per target, and how many calls
/// each got. Medians of single calls, so one preempted call does not count.
fn sparse_per_call_ns(targets: [extern "C" fn(u64) -> u64; 3]) -> ([u64; 3], u32) {
    let start = std::time::Instant::now();
    let mut diffs: [Vec<u64>; 3] = Default::default();
    let mut calls = 0;
    while calls < SPARSE_CALLS && (calls < SPARSE_MIN_CALLS || start.elapsed() < SPARSE_BUDGET) {
        for (f, d) in targets.iter().zip(&mut diffs) {
            std::thread::sleep(SPARSE_GAP);
            let probed = time_one(*f, u64::from(calls));
            std::thread::sleep(SPARSE_GAP);
            let plain = time_one(perf_user_calibration_unprobed, u64::from(calls));
            d.push(probed.saturating_sub(plain));
        }
        calls += 1;
    }
    (diffs.map(|mut d| median(&mut d)), calls)
}

/// Wall time of one call.
fn time_one(target: extern "C" fn(u64) -> u64, x: u64) -> u64 {
    let target = std::hint::black_box(target);
    let start = std::time::Instant::now();
    std::hint::black_box(target(x));
    start.elapsed().as_nanos() as u64
}

fn median(v: &mut [u64]) -> u64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}
