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

/// First bytes of a function whose probe site is a 5-byte nop.
pub const NOP5: [u8; 5] = [0x0f, 0x1f, 0x44, 0x00, 0x00];

/// What probes cost on this host.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProbeCost {
    /// What the probes add inside a measured call of an empty function: their own cost inside
    /// every measured call (subtracted from reported latencies).
    pub in_window: WindowCost,
    /// The same for a function entered through a 5-byte nop.
    pub in_window_nop5: WindowCost,
    /// What a probed call costs the traced thread in all (entry and return traps and programs),
    /// from timing the same calls with and without probes: the overhead estimate's unit.
    pub per_call_ns: u64,
}

impl ProbeCost {
    /// The in-window cost to subtract for a function starting with `entry` bytes.
    pub fn in_window_for(&self, entry: &[u8]) -> WindowCost {
        if entry.starts_with(&NOP5) { self.in_window_nop5 } else { self.in_window }
    }
}

/// Calibrates with the run's attach mode (a session program's window differs from an entry and a
/// return program's), and returns the probes themselves for the caller to drop when convenient.
pub fn probe_cost_ns(attach: AttachMode, mode: ProbeMode) -> Result<(ProbeCost, Tracer), CalibrationError> {
    let exe = &crate::target::proc::exe_link(std::process::id());
    let table = SymbolTable::read(exe)?;
    let targets =
        table.select(&["perf_user_calibration_target".to_string(), "perf_user_calibration_target_nop5".to_string()])?;
    let [push, nop5] = targets.as_slice() else { return Err(CalibrationError::NoSamples) };
    let spec = LoadSpec {
        pid: std::process::id(),
        exe: exe.to_path_buf(),
        probes: vec![
            Probe { fn_id: 0, file_offset: push.file_offset, symbol: push.name.clone(), object: None },
            Probe { fn_id: 1, file_offset: nop5.file_offset, symbol: nop5.name.clone(), object: None },
        ],
        mode,
        tracepoints: false,
        config: perf_ebpf_common::Config::default(),
        max_funcs: 2,
        capacity: 2,
        attach,
        spans: Vec::new(),
        span_keys: perf_ebpf_common::spans::SPAN_KEYS_DEFAULT,
    };
    let plain_ns = time_calls(perf_user_calibration_target);
    let mut tracer = Tracer::load(&spec)?;
    let mut collector = Collector::new(&mut tracer, vec![push.name.clone(), nop5.name.clone()], Vec::new())?;
    let probed_ns = time_calls(perf_user_calibration_target);
    time_calls(perf_user_calibration_target_nop5);
    let sample = collector.sample();
    let window = |id: usize| -> Result<WindowCost, CalibrationError> {
        let f = sample.functions.get(id).ok_or(CalibrationError::NoSamples)?;
        if f.count < u64::from(CALLS) / 2 {
            return Err(CalibrationError::NoSamples);
        }
        // Session programs tell entry from return by the session cookie the kernel zeroes at
        // entry; on a kernel that did not, calls would go uncounted or be timed twice.
        if f.calls != u64::from(CALLS) || f.count != u64::from(CALLS) {
            return Err(CalibrationError::Miscounted { calls: f.calls, timed: f.count, expected: CALLS });
        }
        Ok(WindowCost { median_ns: f.total_hist.summary(None).p50_ns, min_ns: f.min_ns })
    };
    let cost = ProbeCost {
        in_window: window(0)?,
        in_window_nop5: window(1)?,
        per_call_ns: probed_ns.saturating_sub(plain_ns) / u64::from(CALLS),
    };
    drop(collector);
    Ok((cost, tracer))
}

/// Wall time of `CALLS` calls of a calibration target.
fn time_calls(target: extern "C" fn(u64) -> u64) -> u64 {
    let target = std::hint::black_box(target);
    let start = std::time::Instant::now();
    let mut acc = 0u64;
    for i in 0..u64::from(CALLS) {
        acc = acc.wrapping_add(target(i));
    }
    std::hint::black_box(acc);
    start.elapsed().as_nanos() as u64
}
