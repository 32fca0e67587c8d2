//! Measures, on this host, how much a probe pair adds to a measured call: the same programs are
//! attached to an empty function of perf-user itself, which is called many times; the median
//! it reports is pure probe cost, later subtracted from every traced call (`--no-calibrate` keeps
//! raw numbers).

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
    /// What a probed call costs the traced thread in all (entry and return traps and programs),
    /// from timing the same calls with and without probes: the overhead estimate's unit. For an
    /// emulated entry (`push rbp`).
    pub per_call_ns: u64,
    /// The same through a 5-byte nop entry.
    pub per_call_nop5_ns: u64,
    /// The same through a single-stepped entry.
    pub per_call_stepped_ns: u64,
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
    let sample = collector.sample();
    let window = |id: usize| -> Result<WindowCost, CalibrationError> {
        let calls = targets[id].1;
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
    let per_call = |id: usize| probed_ns[id].saturating_sub(plain_ns[id]) / u64::from(targets[id].1);
    let cost = ProbeCost {
        in_window: window(0)?,
        in_window_nop5: window(1)?,
        in_window_stepped: window(2)?,
        per_call_ns: per_call(0),
        per_call_nop5_ns: per_call(1),
        per_call_stepped_ns: per_call(2),
    };
    drop(collector);
    Ok((cost, tracer))
}

/// Wall time of `calls` calls of a calibration target.
fn time_calls(target: extern "C" fn(u64) -> u64, calls: u32) -> u64 {
    let target = std::hint::black_box(target);
    let start = std::time::Instant::now();
    let mut acc = 0u64;
    for i in 0..u64::from(calls) {
        acc = acc.wrapping_add(target(i));
    }
    std::hint::black_box(acc);
    start.elapsed().as_nanos() as u64
}
