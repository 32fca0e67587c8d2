//! The `perf-ebpf/v1` report: what a run found, built from a `Session`, and read back from JSON by
//! `report` and `diff`. Field meanings are documented in docs/EXPORT.md; units are in the names.

use serde::{Deserialize, Serialize};

use crate::{
    model::{
        Attribution, CallTree, CpuSteal, Exemplar, LatencySummary, Lost, PathTotals, Sample, Session, SyscallUse,
        Window,
    },
    target::syscalls,
};

pub const SCHEMA: &str = "perf-ebpf/v1";

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema: String,
    #[serde(default)]
    pub tool: Tool,
    pub target: Target,
    #[serde(default)]
    pub started_unix_ns: u64,
    pub duration_ns: u64,
    /// Why the run ended: `running` (a snapshot), `duration`, `signal`, `quit`, `target-exited`.
    #[serde(default)]
    pub end_reason: String,
    pub functions: Vec<FunctionReport>,
    /// `attach --span`: one row per span, the same fields as a function (`symbol` is the span's
    /// name; attribution and `self_oncpu` stay empty) plus where it runs and what matching lost.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spans: Vec<SpanReport>,
    #[serde(default)]
    pub syscalls: Vec<SyscallReport>,
    #[serde(default)]
    pub exemplars: Vec<Exemplar>,
    #[serde(default)]
    pub lost: Lost,
    #[serde(default)]
    pub probe_hits: u64,
    /// Probe cost per call measured at start-up and subtracted from wall and own times (0: raw).
    #[serde(default)]
    pub calibration_ns: u64,
    /// What one probe hit costs the target, measured at start-up (0 when not calibrated): the
    /// overhead estimate is `probe_hits × probe_cost_per_hit_ns`.
    #[serde(default)]
    pub probe_cost_per_hit_ns: u64,
    /// What the syscall and scheduler tracepoints add to each syscall, measured at start-up on a
    /// cheap syscall of perf-user's own (0: none attached or not calibrated): the overhead
    /// estimate's fixed part is the target's syscalls, and half its switches, times this.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tracepoint_cost_per_syscall_ns: u64,
    /// What a probed call costs on each kind of probe site, measured at start-up, with how many
    /// functions have that kind; empty when not calibrated and in older reports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probe_costs: Vec<ProbeClassCost>,
    /// How the function probes were attached: `uprobe_multi` (one link for all functions) or
    /// `perf_event` (one per probe; kernels before 6.6).
    #[serde(default)]
    pub attach: String,
    /// `attach --sample N`: one outermost call in N was timed (1: every call; 0 in reports from
    /// before sampling existed).
    #[serde(default)]
    pub sample_every: u32,
    /// What the function probes measured: `full` (latency and attribution), `latency` (wall time
    /// only, `--latency-only`) or `entry_only` (call counts); empty in older reports.
    #[serde(default)]
    pub probes: String,
    /// `attach --interference`: own CPU time was split into own compute (`self_oncpu_ns`),
    /// `irq_ns`, `softirq_ns` and `steal_ns`, and faults, switches and migrations were counted.
    /// False (and those fields 0) otherwise.
    #[serde(default)]
    pub interference: bool,
    /// `attach --blocked-syscalls-only`: no syscall tracepoints; a function's `syscalls[]` are those
    /// it left the CPU in (`count`: times switched out in it, `total_ns`: time off-CPU in it, also
    /// in the off-CPU parts) and its `syscalls_ns` is 0, syscalls' on-CPU time being in
    /// `self_oncpu_ns`. False in older reports.
    #[serde(default)]
    pub blocked_syscalls_only: bool,
    /// Where `steal_ns` came from: `kvm_steal_time` (the hypervisor's per-CPU steal clock, ns),
    /// or `not available` (not a VM, or a kernel without it: `steal_ns` is 0, not measured);
    /// empty without `--interference`.
    #[serde(default)]
    pub steal_source: String,
    /// With steal measured, in the final report: each CPU's steal over the run by our reading of
    /// the steal clock and by `/proc/stat`, the cross-check of the source (docs/EXPORT.md).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cpu_steal: Vec<CpuSteal>,
    /// With `--interference`: `not available`. NMI time is not split out of own compute: there
    /// is no NMI to measure on the VMs this was built on (docs/ATTRIBUTION.md); empty without
    /// `--interference`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub nmi_source: String,
    /// With `--interference`, in the final report: NMIs on all CPUs during the run by
    /// `/proc/interrupts`, whose time (if any) stayed in own compute; absent if unreadable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nmi_count: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub threads: Vec<ThreadReport>,
    /// The call tree: one node per call path, depth first, heaviest callee first (docs/EXPORT.md).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub call_tree: Vec<CallNodeReport>,
    /// Notes the user must see with the numbers (probes removed by the overhead guard, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// One node of `call_tree[]`: a traced function reached through one chain of traced callers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallNodeReport {
    /// Its index in `call_tree[]`.
    pub id: usize,
    /// The caller's index; absent for a root (an outermost traced call).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<usize>,
    pub symbol: String,
    /// The ELF object the function is in, as in `functions[].object` (one symbol in two objects
    /// is two nodes); empty in reports from before nodes named it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub object: String,
    pub depth: u32,
    /// `calls`, `total_ns` and the parts, inline in the JSON.
    #[serde(flatten)]
    pub totals: PathTotals,
    /// No call through this path had returned: a stand-in for a caller still running (an event
    /// loop), whose totals are its callees'.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub open: bool,
}

/// `call_tree[]` of a sample, named with the session's functions.
pub fn call_tree_report(session: &Session, sample: &Sample) -> Vec<CallNodeReport> {
    let tree = CallTree::build(&sample.call_paths);
    tree.nodes
        .iter()
        .enumerate()
        .map(|(id, n)| {
            let f = session.functions.get(n.fn_id as usize);
            CallNodeReport {
                id,
                parent: n.parent,
                symbol: f.map(|f| f.symbol.clone()).unwrap_or_default(),
                object: f.map(|f| f.object.clone()).unwrap_or_default(),
                depth: n.depth,
                totals: n.totals,
                open: n.open,
            }
        })
        .collect()
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub pid: u32,
    pub exe: String,
    #[serde(default)]
    pub comm: String,
}

/// A histogram bucket: `count` values `<= le_ns` and above the previous bucket's `le_ns`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketCount {
    pub le_ns: u64,
    pub count: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FunctionReport {
    /// Demangled name without hash.
    pub symbol: String,
    #[serde(default)]
    pub raw_symbol: String,
    #[serde(default)]
    pub address: u64,
    /// The ELF object the function is in, as the target names it (its executable or a shared
    /// library); empty in reports from before objects were named.
    #[serde(default)]
    pub object: String,
    /// A function of a library the target loaded after attach: when its probes went in, ns after
    /// attach (its numbers start there). Absent for functions traced from the start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub added_after_ns: Option<u64>,
    /// Every call that entered, timed or not (`attach --sample N` times one outermost call in N).
    #[serde(default)]
    pub calls: u64,
    /// Wall time per timed call: count, min_ns, mean_ns, p50_ns, p90_ns, p99_ns, p999_ns, max_ns.
    #[serde(flatten)]
    pub latency: LatencySummary,
    /// Sum of the wall time of all calls (equals the sum of the attribution parts).
    #[serde(default)]
    pub total_ns: u64,
    /// Non-empty buckets of the wall-time histogram.
    pub buckets: Vec<BucketCount>,
    /// Own on-CPU time per call (wall minus callees, syscalls and off-CPU).
    #[serde(default)]
    pub self_oncpu: LatencySummary,
    #[serde(default)]
    pub attribution: AttributionReport,
    #[serde(default)]
    pub probe: ProbeReport,
}

impl FunctionReport {
    /// Every call seen (reports written before `calls` existed only have the timed count).
    pub fn calls(&self) -> u64 {
        self.calls.max(self.latency.count)
    }
}

/// One span: latency from its FROM endpoint to its TO endpoint, matched by key.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SpanReport {
    /// `symbol` (the span's name), `calls` (FROM hits), `count` (matched spans), latency summary,
    /// `total_ns` and `buckets`, as for a function.
    #[serde(flatten)]
    pub row: FunctionReport,
    /// The FROM endpoint: `function(key)`.
    pub from: String,
    /// The TO endpoint.
    pub to: String,
    /// Starts never matched: evicted from the bounded map or replaced by a later start under the
    /// same key.
    pub starts_lost: u64,
    /// The part of `starts_lost` the kernel counted exactly: starts stored over one still waiting
    /// under the same key (the rest were evicted from the full map, estimated).
    #[serde(default)]
    pub starts_replaced: u64,
    /// TO hits that found no start under their key.
    pub ends_without_start: u64,
    /// Hits whose key could not be read through its pointer (ignored).
    pub key_faults: u64,
    /// Starts still waiting for their end at the last reading.
    pub pending: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributionReport {
    #[serde(flatten)]
    pub parts: Attribution,
    /// Syscalls made while this function was innermost: count and wall time each.
    pub syscalls: Vec<SyscallUse>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeReport {
    /// First instruction at the probe site, as disassembled.
    pub entry_insn: String,
    /// True when the kernel single-steps it on every hit (its measured cost is in the single-step warning).
    pub single_step: bool,
    /// Its kind of probe site: `emulated`, `nop5` or `single_step` (`probe_costs[]` has the
    /// measured cost of each); empty in older reports and imports.
    #[serde(default)]
    pub site_class: String,
    /// True when the overhead guard removed its probes during the run (see `warnings`).
    #[serde(default)]
    pub detached: bool,
    /// Probe cost subtracted from each call, measured for this kind of probe site (0: raw).
    #[serde(default)]
    pub calibration_ns: u64,
    /// Latencies below this are not credible once the probe cost is subtracted (the
    /// calibration's own spread); the text tables show them as `<floor` (0: raw numbers).
    #[serde(default)]
    pub floor_ns: u64,
}

/// The measured cost of one kind of probe site (`probe_costs[]`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeClassCost {
    /// `emulated`, `nop5` or `single_step`, as in `functions[].probe.site_class`.
    pub class: String,
    /// Traced functions whose probe site is of this kind.
    #[serde(default)]
    pub functions: u64,
    /// What one probed call (entry and return hits) costs the traced thread: the guard's unit,
    /// the larger of `tight_ns` and `sparse_ns`.
    #[serde(default)]
    pub per_call_ns: u64,
    /// The probe cost inside a measured call, subtracted from each call's latency.
    #[serde(default)]
    pub calibration_ns: u64,
    /// `per_call_ns` measured in a tight loop (the probe path hot in the caches).
    #[serde(default)]
    pub tight_ns: u64,
    /// `per_call_ns` measured on sparse calls, each after a short sleep (the probe path cold).
    #[serde(default)]
    pub sparse_ns: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SyscallReport {
    pub name: String,
    pub nr: u32,
    #[serde(flatten)]
    pub latency: LatencySummary,
    pub errors: u64,
    pub total_ns: u64,
    pub buckets: Vec<BucketCount>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ThreadReport {
    pub tid: u32,
    pub thread: String,
    pub symbol: String,
    pub count: u64,
    pub total_ns: u64,
    pub min_ns: u64,
    pub max_ns: u64,
    pub attribution: Attribution,
}

/// Facts about the run that the session does not hold.
#[derive(Clone, Debug, Default)]
pub struct RunInfo {
    pub target: Target,
    pub started_unix_ns: u64,
    pub end_reason: String,
    pub thread_names: Vec<(u32, String)>,
    pub warnings: Vec<String>,
    pub calibration_ns: u64,
    pub probe_cost_per_hit_ns: u64,
    pub tracepoint_cost_per_syscall_ns: u64,
    /// The measured cost per kind of probe site (`functions` is counted when the report is built).
    pub probe_costs: Vec<ProbeClassCost>,
    pub attach: String,
    pub sample_every: u32,
    pub probes: String,
    pub interference: bool,
    /// Without `--syscalls` the kernel follows only syscalls made inside traced calls (what
    /// attribution needs), so the Syscalls view lists those alone.
    pub syscalls_inside_only: bool,
    /// `--blocked-syscalls-only`.
    pub blocked_syscalls_only: bool,
    pub steal_source: String,
    pub cpu_steal: Vec<CpuSteal>,
    pub nmi_source: String,
    pub nmi_count: Option<u64>,
}

/// A row with only wall-time numbers (a span): no attribution, no probe.
/// For serde: a 0 is left out (a field older reports lack, or nothing was measured).
#[expect(clippy::trivially_copy_pass_by_ref, reason = "serde's skip_serializing_if passes a reference")]
fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn row(symbol: String, f: &crate::model::FuncSample) -> FunctionReport {
    let exact = (f.count > 0 && f.max_ns > 0).then(|| f.exact());
    let mut latency = f.total_hist.summary(exact);
    latency.count = f.count;
    latency.mean_ns = f.total_ns.checked_div(f.count).unwrap_or(0);
    FunctionReport {
        symbol,
        calls: f.calls(),
        latency,
        total_ns: f.total_ns,
        buckets: buckets(&f.total_hist),
        ..FunctionReport::default()
    }
}

fn buckets(h: &crate::model::BucketHist) -> Vec<BucketCount> {
    h.buckets.iter().map(|b| BucketCount { le_ns: b.high_ns, count: b.count }).collect()
}

/// The run's measured cost per kind of probe site, each with how many functions have that kind.
fn probe_costs(session: &Session, info: &RunInfo) -> Vec<ProbeClassCost> {
    let count = |class: &str| session.functions.iter().filter(|f| f.site_class.label() == class).count() as u64;
    info.probe_costs.iter().map(|c| ProbeClassCost { functions: count(&c.class), ..c.clone() }).collect()
}

impl Report {
    /// `f`'s name as tables show it: its symbol, or `object:symbol` when another function of this
    /// report has the same symbol in another object (`model::shown_name`).
    pub fn shown_name(&self, f: &FunctionReport) -> String {
        let same: Vec<(&str, &str)> = self
            .functions
            .iter()
            .filter(|g| g.symbol == f.symbol)
            .map(|g| (g.symbol.as_str(), g.object.as_str()))
            .collect();
        crate::model::shown_name(&f.symbol, &f.object, &same)
    }

    /// The function a call-tree node is a path to: same symbol, and same object when the node
    /// names one (reports from before nodes named their object match by symbol).
    pub fn node_function(&self, n: &CallNodeReport) -> Option<&FunctionReport> {
        self.functions.iter().find(|f| f.symbol == n.symbol && (n.object.is_empty() || f.object == n.object))
    }

    /// What pairs `f` with a function of another report (`diff`): its object's file name (empty
    /// for the executable, whatever its path, and in reports from before objects were named) and
    /// its symbol.
    pub fn function_key<'a>(&self, f: &'a FunctionReport) -> (&'a str, &'a str) {
        let object = if f.object == self.target.exe { "" } else { f.object.rsplit('/').next().unwrap_or("") };
        (object, f.symbol.as_str())
    }

    /// The whole run so far (since attach, or since the last reset).
    pub fn build(session: &Session, info: &RunInfo) -> Report {
        let sample = session.window(Window::AllTime).unwrap_or_default();
        Self::from_sample(session, &sample, info)
    }

    fn from_sample(session: &Session, sample: &Sample, info: &RunInfo) -> Report {
        let functions = function_reports(session, sample);
        let syscalls = syscall_reports(sample);
        let threads = thread_reports(session, sample, info);
        let spans = span_reports(session, sample);
        let mut lost = sample.counters.lost;
        lost.exemplars_evicted = session.exemplars_evicted;
        Report {
            schema: SCHEMA.to_string(),
            tool: Tool { name: "perf-user".into(), version: env!("CARGO_PKG_VERSION").into() },
            target: info.target.clone(),
            started_unix_ns: info.started_unix_ns,
            duration_ns: sample.at_ns,
            end_reason: info.end_reason.clone(),
            functions,
            spans,
            syscalls,
            exemplars: session.exemplars.iter().cloned().collect(),
            lost,
            probe_hits: sample.counters.probe_hits,
            calibration_ns: info.calibration_ns,
            probe_cost_per_hit_ns: info.probe_cost_per_hit_ns,
            tracepoint_cost_per_syscall_ns: info.tracepoint_cost_per_syscall_ns,
            probe_costs: probe_costs(session, info),
            attach: info.attach.clone(),
            sample_every: info.sample_every,
            probes: info.probes.clone(),
            interference: info.interference,
            blocked_syscalls_only: info.blocked_syscalls_only,
            steal_source: info.steal_source.clone(),
            cpu_steal: info.cpu_steal.clone(),
            nmi_source: info.nmi_source.clone(),
            nmi_count: info.nmi_count,
            threads,
            call_tree: call_tree_report(session, sample),
            warnings: info.warnings.clone(),
        }
    }
}

/// One row per traced function: latency, attribution with its syscalls, and the probe it sits on.
fn function_reports(session: &Session, sample: &Sample) -> Vec<FunctionReport> {
    session
        .functions
        .iter()
        .map(|fi| {
            let f = sample.functions.iter().find(|f| f.id == fi.id).cloned().unwrap_or_default();
            let exact = (f.count > 0 && f.max_ns > 0).then(|| f.exact());
            let mut sys: Vec<SyscallUse> = sample
                .func_syscalls
                .iter()
                .filter(|s| s.fn_id == fi.id)
                .map(|s| SyscallUse { name: syscalls::display(s.nr), count: s.count, total_ns: s.total_ns })
                .collect();
            sys.sort_by_key(|s| std::cmp::Reverse(s.total_ns));
            let mut latency = f.total_hist.summary(exact);
            // The kernel's exact counters beat the histogram's (read a moment apart).
            latency.count = f.count;
            latency.mean_ns = f.total_ns.checked_div(f.count).unwrap_or(0);
            FunctionReport {
                symbol: fi.symbol.clone(),
                raw_symbol: fi.raw_symbol.clone(),
                address: fi.address,
                object: fi.object.clone(),
                added_after_ns: fi.added_ns,
                calls: f.calls(),
                latency,
                total_ns: f.total_ns,
                buckets: buckets(&f.total_hist),
                self_oncpu: f.self_hist.summary(None),
                attribution: AttributionReport { parts: f.attribution, syscalls: sys },
                probe: ProbeReport {
                    entry_insn: fi.entry_insn.clone(),
                    single_step: fi.single_step,
                    site_class: fi.site_class.label().to_owned(),
                    detached: fi.detached,
                    calibration_ns: fi.calibration_ns,
                    floor_ns: fi.floor_ns,
                },
            }
        })
        .collect()
}

/// The syscalls made, the most total time first; percentiles clamped into [min, max].
fn syscall_reports(sample: &Sample) -> Vec<SyscallReport> {
    let mut syscalls: Vec<SyscallReport> = sample
        .syscalls
        .iter()
        .filter(|s| s.count > 0)
        .map(|s| {
            let mut latency = s.hist.summary(None);
            latency.count = s.count;
            latency.mean_ns = s.total_ns.checked_div(s.completed).unwrap_or(0);
            if s.max_ns > 0 {
                latency.max_ns = s.max_ns;
            }
            let latency = latency.clamped();
            SyscallReport {
                name: syscalls::display(s.nr),
                nr: s.nr,
                latency,
                errors: s.errors,
                total_ns: s.total_ns,
                buckets: buckets(&s.hist),
            }
        })
        .collect();
    syscalls.sort_by_key(|s| std::cmp::Reverse(s.total_ns));
    syscalls
}

/// `--per-thread`: each thread's calls of each function, named by the thread's comm.
fn thread_reports(session: &Session, sample: &Sample, info: &RunInfo) -> Vec<ThreadReport> {
    let name_of =
        |tid: u32| info.thread_names.iter().find(|(t, _)| *t == tid).map(|(_, n)| n.clone()).unwrap_or_default();
    sample
        .threads
        .iter()
        .map(|t| ThreadReport {
            tid: t.tid,
            thread: name_of(t.tid),
            symbol: session.functions.get(t.fn_id as usize).map(|f| f.symbol.clone()).unwrap_or_default(),
            count: t.count,
            total_ns: t.total_ns,
            min_ns: t.min_ns,
            max_ns: t.max_ns,
            attribution: t.attribution,
        })
        .collect()
}

/// `--span`: each span's latency and its matching losses.
fn span_reports(session: &Session, sample: &Sample) -> Vec<SpanReport> {
    session
        .spans
        .iter()
        .map(|si| {
            let s = sample.spans.iter().find(|s| s.row.id == si.id).cloned().unwrap_or_default();
            SpanReport {
                row: row(si.name.clone(), &s.row),
                from: si.from.clone(),
                to: si.to.clone(),
                starts_lost: s.starts_lost(),
                starts_replaced: s.starts_replaced,
                ends_without_start: s.ends_without_start,
                key_faults: s.key_faults,
                pending: s.pending,
            }
        })
        .collect()
}
