//! Names what a slower function's extra time was made of, when both reports measured interference
//! (`--interference`): hypervisor steal, interrupts, page faults or migrations that grew per call.

use serde::Serialize;

use super::{Entry, Verdict};
use crate::output::report::{FunctionReport, Report};

/// A per-call amount that grew enough between base and new to be named as the regression's cause.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Cause {
    /// `steal`, `interrupts` (hard + soft), `major_faults`, `page_faults` or `migrations`.
    pub kind: &'static str,
    /// Per call: ns for `steal` and `interrupts`, a count for the others.
    pub base_per_call: f64,
    pub new_per_call: f64,
}

/// Time parts named when their growth per call is at least this share of the wall-time growth
/// per call (or of the new wall time per call, when the mean did not grow: a tail regression).
const TIME_SHARE: f64 = 0.25;
const TIME_SHARE_OF_WALL: f64 = 0.05;
/// Counts named when they at least doubled and grew by one in this many calls.
const COUNT_MIN_GROWTH: f64 = 0.01;

fn per_call(f: &FunctionReport, v: u64) -> f64 {
    v as f64 / f.latency.count.max(1) as f64
}

/// The causes of one function's change, base → new.
pub fn causes(b: &FunctionReport, n: &FunctionReport) -> Vec<Cause> {
    if b.latency.count == 0 || n.latency.count == 0 {
        return Vec::new();
    }
    let (pb, pn) = (&b.attribution.parts, &n.attribution.parts);
    let (wall_b, wall_n) = (per_call(b, pb.total_ns()), per_call(n, pn.total_ns()));
    let wall_growth = wall_n - wall_b;
    let time_floor = if wall_growth > 0.0 { TIME_SHARE * wall_growth } else { TIME_SHARE_OF_WALL * wall_n };
    let mut out = Vec::new();
    let mut time = |kind, base: u64, new: u64| {
        let (base_per_call, new_per_call) = (per_call(b, base), per_call(n, new));
        if new_per_call - base_per_call >= time_floor.max(1.0) {
            out.push(Cause { kind, base_per_call, new_per_call });
        }
    };
    time("steal", pb.steal_ns, pn.steal_ns);
    time("interrupts", pb.irq_ns + pb.softirq_ns, pn.irq_ns + pn.softirq_ns);
    let (cb, cn) = (&pb.interference, &pn.interference);
    for (kind, base, new) in [
        ("major_faults", cb.major_faults, cn.major_faults),
        ("page_faults", cb.page_faults, cn.page_faults),
        ("migrations", cb.migrations, cn.migrations),
    ] {
        let (base_per_call, new_per_call) = (per_call(b, base), per_call(n, new));
        if new_per_call >= 2.0 * base_per_call && new_per_call - base_per_call >= COUNT_MIN_GROWTH {
            out.push(Cause { kind, base_per_call, new_per_call });
        }
    }
    out
}

/// Fills in the causes of the slower functions, when both reports split interference out.
pub fn name_causes(entries: &mut [Entry], base: &Report, new: &Report) {
    if !(base.interference && new.interference) {
        return;
    }
    for e in entries.iter_mut().filter(|e| matches!(e.verdict, Verdict::Regressed | Verdict::Slower)) {
        let find = |r: &'_ Report| {
            r.functions.iter().find(|f| r.function_key(f) == (e.object.as_str(), e.symbol.as_str())).cloned()
        };
        if let (Some(b), Some(n)) = (find(base), find(new)) {
            e.causes = causes(&b, &n);
        }
    }
}
