//! Measures, on this host, how much a probe pair adds to a measured call: the same programs are
//! attached to an empty function of perf-user itself, which is called many times; the median
//! it reports is pure probe cost, later subtracted from every traced call (`--no-calibrate` keeps
//! raw numbers).

use std::path::Path;

use crate::{
    collect::Collector,
    loader::{LoadError, LoadSpec, Probe, ProbeMode, Tracer},
    symbols::SymbolTable,
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
    Symbols(#[from] crate::symbols::SymbolError),
    #[error("calibration: {0}")]
    Load(#[from] LoadError),
    #[error("calibration: the probes on perf-user's own test function never fired")]
    NoSamples,
}

/// What probes cost on this host.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProbeCost {
    /// The median wall time the probes report for an empty function: their own cost inside a
    /// measured call (subtracted from reported latencies).
    pub in_window_ns: u64,
    /// What a probed call costs the traced thread in all (entry and return traps and programs),
    /// from timing the same calls with and without probes: the overhead estimate's unit.
    pub per_call_ns: u64,
}

/// Calibrates, and returns the probes themselves for the caller to drop when convenient.
pub fn probe_cost_ns() -> Result<(ProbeCost, Tracer), CalibrationError> {
    let exe = Path::new("/proc/self/exe");
    let table = SymbolTable::read(exe)?;
    let f = table.select(&["perf_user_calibration_target".to_string()])?;
    let Some(f) = f.first() else { return Err(CalibrationError::NoSamples) };
    let spec = LoadSpec {
        pid: std::process::id(),
        exe: exe.to_path_buf(),
        probes: vec![Probe { fn_id: 0, file_offset: f.file_offset, symbol: f.name.clone() }],
        mode: ProbeMode::Full,
        tracepoints: false,
        config: perf_ebpf_common::Config::default(),
        max_funcs: 1,
    };
    let plain_ns = time_calls();
    let mut tracer = Tracer::load(&spec)?;
    let mut collector = Collector::new(&mut tracer, vec![f.name.clone()], 0)?;
    let probed_ns = time_calls();
    let sample = collector.sample();
    let func = sample.functions.first().ok_or(CalibrationError::NoSamples)?;
    if func.count < u64::from(CALLS) / 2 {
        return Err(CalibrationError::NoSamples);
    }
    let cost = ProbeCost {
        in_window_ns: func.total_hist.summary(None).p50_ns,
        per_call_ns: probed_ns.saturating_sub(plain_ns) / u64::from(CALLS),
    };
    drop(collector);
    Ok((cost, tracer))
}

/// Wall time of `CALLS` calls of the calibration target.
fn time_calls() -> u64 {
    let start = std::time::Instant::now();
    let mut acc = 0u64;
    for i in 0..u64::from(CALLS) {
        acc = acc.wrapping_add(perf_user_calibration_target(i));
    }
    std::hint::black_box(acc);
    start.elapsed().as_nanos() as u64
}
