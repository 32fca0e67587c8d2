//! Stage 3 of `attach`: the probes go in (functions the kernel refuses are skipped, one warning
//! each), the probe cost is calibrated, and the collector and the app are set up.

use anyhow::{Result, anyhow};

use super::{TargetState, plan::Plan, preflight::Target, refresh::Refresh, run::Signals, threads::unix_ns};
use crate::{
    app::{App, TailColours},
    bpf::{
        calibrate,
        collect::Collector,
        loader::{LoadSpec, ProbeMode, Tracer},
        spans::SpanReader,
    },
    cli::{AttachConfig, Slow},
    model::{FuncInfo, Session, SiteClass, SpanInfo, StealReading, WindowCost},
    output::report::{self, RunInfo},
    target::proc,
};

/// What the run stage drives.
pub(super) struct Loaded {
    pub tracer: Tracer,
    /// The calibration's own probes; they stay until the end (see `calibrate`).
    pub calibration: Option<Tracer>,
    pub collector: Collector,
    pub app: App,
    /// "attached N probes …", printed when there is no terminal UI.
    pub attached_line: String,
    /// Steal by both sources at the start, when steal is measured (see `model::steal_check`).
    pub steal_start: Option<StealReading>,
    /// With `--interference`: NMIs on the machine so far (`/proc/interrupts`), at the start.
    pub nmi_start: Option<u64>,
    /// The probe cost per kind of probe site, for functions added later.
    pub probe_cost: calibrate::ProbeCost,
    /// Picks up libraries loaded after attach (with `OBJECT:FUNC` patterns).
    pub refresh: Option<Refresh>,
}

/// Functions whose probe the kernel refused (shown detached) and links shared for want of
/// descriptors: each said on stderr and kept with the report.
fn note_attach_warnings(tracer: &mut Tracer, infos: &mut [FuncInfo], warnings: &mut Vec<String>) {
    for s in &tracer.skipped {
        let note = s.to_string();
        eprintln!("perf-user: warning: {note}");
        warnings.push(note);
        if let Some(info) = infos.get_mut(s.fn_id as usize) {
            info.detached = true;
        }
    }
    if let Some(note) = tracer.links_shared_note() {
        eprintln!("perf-user: warning: {note}");
        warnings.push(note);
    }
}

/// The reader of the `--span` maps, with each span's fixed slow threshold set.
fn span_reader(cfg: &AttachConfig, tracer: &mut Tracer, spans: &[SpanInfo], pid: u32) -> Result<SpanReader> {
    let names = spans.iter().map(|s| s.name.clone()).collect();
    let mut reader = SpanReader::new(tracer, names, pid, cfg.span_keys)?;
    if let Slow::Fixed(ns) = cfg.slow {
        for s in spans {
            reader.set_slow(s.id, ns)?;
        }
    }
    Ok(reader)
}

pub(super) fn load(
    cfg: &AttachConfig,
    plan: Plan,
    target: &Target,
    baseline: Option<&report::Report>,
    signals: &Signals,
) -> Result<Loaded> {
    let Plan { mut infos, spec, mut warnings, refresh, spans } = plan;
    // If the target dies during attach, the run stage notices at once and the run ends like any
    // other target exit: export written, saying so.
    let mut tracer = Tracer::load_until(&spec, signals.cancel()).map_err(|e| {
        if target.liveness.state() == TargetState::Exited {
            anyhow!(e).context(format!("target pid {} exited while its probes were being attached", target.pid))
        } else {
            e.into()
        }
    })?;
    note_attach_warnings(&mut tracer, &mut infos, &mut warnings);
    let tracepoint_ns = if cfg.calibrate && spec.tracepoints { tracepoint_cost(&tracer, &mut warnings) } else { 0 };
    let (probe_cost, calibration) =
        calibrate_probes(cfg, spec.mode, spec.probes.is_empty() && refresh.is_none(), &tracer, &mut warnings)?;
    // Each function gets the cost of its kind of probe site.
    let per_fn: Vec<WindowCost> = infos.iter().map(|i| probe_cost.in_window_for(i.site_class)).collect();
    for (info, cost) in infos.iter_mut().zip(&per_fn) {
        info.calibration_ns = cost.median_ns;
        info.floor_ns = cost.floor_ns();
        // A call is two probe hits (entry and return).
        info.hit_cost_ns = probe_cost.per_call_for(info.site_class) / 2;
    }
    if let Some(note) = stepped_warning(&infos, &probe_cost) {
        eprintln!("perf-user: {note}");
        warnings.push(note);
    }
    let mut collector = Collector::new(&mut tracer, infos.iter().map(|f| f.symbol.clone()).collect(), per_fn)?;
    collector.per_thread = cfg.per_thread;
    collector.target_pid = target.pid;
    collector.latency_only = spec.mode == ProbeMode::Latency;
    if !spans.is_empty() {
        collector.spans = Some(span_reader(cfg, &mut tracer, &spans, target.pid)?);
    }
    let info = run_info(cfg, &spec, target, &tracer, &probe_cost, tracepoint_ns, warnings);
    let attached_line = attached_line(cfg, &tracer, target, &infos);
    let mut session = Session::new(infos, cfg.exemplars);
    session.spans = spans;
    let mut app = App::new(session, info);
    app.tick_ns = cfg.interval_ns;
    app.max_overhead_pct = cfg.max_overhead_pct;
    let threshold_ns = match cfg.slow {
        Slow::Fixed(ns) => Some(ns),
        Slow::Auto | Slow::Off => None,
    };
    app.tails = TailColours::new(threshold_ns, baseline);
    let steal_start = (app.info.steal_source == "kvm_steal_time").then(|| steal_reading(&collector));
    let nmi_start = if app.info.interference { proc::nmi_total() } else { None };
    Ok(Loaded { tracer, calibration, collector, app, attached_line, steal_start, nmi_start, probe_cost, refresh })
}

/// What the export and report say about the run itself: the target, when the probes began to
/// attach, how they were placed and what each kind of probe costs.
fn run_info(
    cfg: &AttachConfig,
    spec: &LoadSpec,
    target: &Target,
    tracer: &Tracer,
    probe_cost: &calibrate::ProbeCost,
    tracepoint_ns: u64,
    warnings: Vec<String>,
) -> RunInfo {
    RunInfo {
        target: report::Target { pid: target.pid, exe: target.exe.display().to_string(), comm: proc::comm(target.pid) },
        // When the probes began to attach, the origin of exemplar times (`at_ns`).
        started_unix_ns: unix_ns()
            .saturating_sub(crate::bpf::collect::monotonic_ns().saturating_sub(tracer.attach_mono_ns)),
        end_reason: String::new(),
        thread_names: Vec::new(),
        warnings,
        calibration_ns: probe_cost.in_window.median_ns,
        // A call is two probe hits (entry and return).
        probe_cost_per_hit_ns: probe_cost.per_call_ns / 2,
        tracepoint_cost_per_syscall_ns: tracepoint_ns,
        probe_costs: class_costs(probe_cost),
        attach: tracer.attach_kind().to_owned(),
        sample_every: cfg.sample_every.max(1),
        probes: spec.mode.label().to_string(),
        interference: cfg.interference && spec.tracepoints,
        syscalls_inside_only: !cfg.syscalls,
        blocked_syscalls_only: cfg.blocked_syscalls_only && spec.tracepoints,
        steal_source: match (cfg.interference && spec.tracepoints, tracer.steal_measured) {
            (false, _) => String::new(),
            (true, true) => "kvm_steal_time".to_owned(),
            (true, false) => "not available".to_owned(),
        },
        cpu_steal: Vec::new(),
        nmi_source: if cfg.interference && spec.tracepoints { "not available".to_owned() } else { String::new() },
        nmi_count: None,
    }
}

/// Calibrates once the target's probes are in (a bad setup fails there first). The calibration
/// probes stay until the end: removing a uprobe stalls every other uprobe operation for a grace
/// period, and they cost nothing once their function is not called.
fn calibrate_probes(
    cfg: &AttachConfig,
    mode: ProbeMode,
    no_probes: bool,
    tracer: &Tracer,
    warnings: &mut Vec<String>,
) -> Result<(calibrate::ProbeCost, Option<Tracer>)> {
    let timed = matches!(mode, ProbeMode::Full | ProbeMode::Latency);
    if !cfg.calibrate || !timed || no_probes {
        return Ok((calibrate::ProbeCost::default(), None));
    }
    // The programs the target got, attached the same way (the calibration times every call of
    // its targets, also when the target is sampled).
    match calibrate::probe_cost_ns(tracer.attached_as(), mode) {
        Ok((cost, probes)) => Ok((cost, Some(probes))),
        // The mode itself does not work on this kernel: no numbers rather than wrong ones.
        Err(e @ calibrate::CalibrationError::Miscounted { .. }) => Err(e.into()),
        Err(e) => {
            let note = format!("{e}; latencies include the probes' own cost");
            eprintln!("perf-user: warning: {note}");
            warnings.push(note);
            Ok((calibrate::ProbeCost::default(), None))
        }
    }
}

/// What the tracepoints add to one syscall of the target (0: not measured, or the measurement
/// failed, said as a warning: the overhead estimate then has no fixed part).
fn tracepoint_cost(tracer: &Tracer, warnings: &mut Vec<String>) -> u64 {
    calibrate::tracepoint_cost_ns(tracer.attached_as()).unwrap_or_else(|e| {
        let note = format!("{e}; the overhead estimate leaves out the tracepoints' cost");
        eprintln!("perf-user: warning: {note}");
        warnings.push(note);
        0
    })
}

/// The measured cost of each kind of probe site, for the export; none when not calibrated.
fn class_costs(cost: &calibrate::ProbeCost) -> Vec<report::ProbeClassCost> {
    if cost.per_call_ns == 0 && cost.in_window.median_ns == 0 {
        return Vec::new();
    }
    SiteClass::ALL
        .iter()
        .map(|&c| report::ProbeClassCost {
            class: c.label().to_owned(),
            functions: 0,
            per_call_ns: cost.per_call_for(c),
            calibration_ns: cost.in_window_for(c).median_ns,
            tight_ns: cost.measured_for(c).tight_ns,
            sparse_ns: cost.measured_for(c).sparse_ns,
        })
        .collect()
}

/// Single-stepped probe sites, with what they cost per call on this host against an emulated
/// entry when that was measured.
fn stepped_warning(infos: &[FuncInfo], cost: &calibrate::ProbeCost) -> Option<String> {
    let stepped: Vec<&str> = infos.iter().filter(|f| f.single_step).map(|f| f.symbol.as_str()).collect();
    if stepped.is_empty() {
        return None;
    }
    let price = if cost.per_call_stepped_ns > 0 {
        format!(
            "measured here: {:.1} µs per call, against {:.1} µs for an emulated entry",
            cost.per_call_stepped_ns as f64 / 1e3,
            cost.per_call_ns as f64 / 1e3
        )
    } else {
        "not measured (--no-calibrate); several times an emulated entry's".to_owned()
    };
    Some(format!(
        "{} of {} probes start on an instruction the kernel single-steps ({price}): {}",
        stepped.len(),
        infos.len(),
        stepped.iter().take(5).copied().collect::<Vec<_>>().join(", ")
    ))
}

fn attached_line(cfg: &AttachConfig, tracer: &Tracer, target: &Target, infos: &[FuncInfo]) -> String {
    format!(
        "attached {} probes ({}) to pid {} ({}): {} functions{}{}\n",
        tracer.attached,
        tracer.attach_kind(),
        target.pid,
        target.exe.display(),
        infos.len(),
        if cfg.spans.is_empty() { String::new() } else { format!(", {} spans", cfg.spans.len()) },
        if cfg.syscalls { ", syscalls" } else { "" }
    )
}

/// Both sources of each CPU's steal, read back to back.
pub(super) fn steal_reading(collector: &Collector) -> StealReading {
    StealReading { clock_ns: collector.steal_at_last_tick_ns(), proc_stat_ns: proc::cpu_steal_ns() }
}
