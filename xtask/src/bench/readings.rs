//! What a run's outcome says, read one way in one place: the target's numbers across rounds,
//! fields of perf-user's export, bpftrace's histogram, and the checks that a tracer saw every call.

use super::{
    rounds::Check,
    run::Outcome,
    stats::{self, Cell},
};

/// `f` of every outcome that has it; the first error if none does.
pub fn runs_of(outcomes: &[Result<Outcome, String>], f: impl Fn(&Outcome) -> Option<f64>) -> stats::Runs {
    let values: Vec<f64> = outcomes.iter().filter_map(|o| o.as_ref().ok().and_then(&f)).collect();
    if values.is_empty() {
        return Err(first_error(outcomes).unwrap_or_else(|| "failed: no value measured".into()));
    }
    Ok(values)
}

/// The first failed outcome's reason.
pub fn first_error<T>(outcomes: &[Result<T, String>]) -> Option<String> {
    outcomes.iter().find_map(|o| o.as_ref().err().cloned())
}

/// The median of `f` over the outcomes that have it; the first error if none does.
pub fn median_of(outcomes: &[Result<Outcome, String>], f: impl Fn(&Outcome) -> Option<f64>) -> Cell {
    stats::med(&runs_of(outcomes, f))
}

pub fn ns_per_call(o: &Outcome) -> Option<f64> {
    o.target.map(|t| t.ns_per_call)
}

/// `functions[]` entry of perf-user's report for `symbol`.
fn export_function<'a>(export: &'a serde_json::Value, symbol: &str) -> Option<&'a serde_json::Value> {
    export.get("functions")?.as_array()?.iter().find(|f| f.get("symbol").and_then(|s| s.as_str()) == Some(symbol))
}

/// A number of perf-user's report for `symbol` (`count`, `calls`, `p99_ns`, …).
pub fn export_field(o: &Outcome, symbol: &str, field: &str) -> Option<f64> {
    export_function(o.export.as_ref()?, symbol)?.get(field)?.as_f64()
}

/// bpftrace's `@h` histogram as (count, bucket) pairs, e.g. `(296418, "[512, 1K)")`.
pub fn bpftrace_hist(o: &Outcome) -> Vec<(u64, String)> {
    o.tracer_output
        .iter()
        .skip_while(|l| !l.starts_with("@h:"))
        .filter_map(|l| {
            let (bucket, rest) = l.split_once(')')?;
            let count: u64 = rest.split_whitespace().next()?.parse().ok()?;
            Some((count, format!("{bucket})")))
        })
        .collect()
}

/// bpftrace's fullest `@h` bucket.
pub fn bpftrace_mode_bucket(o: &Outcome) -> Option<String> {
    bpftrace_hist(o).into_iter().max_by_key(|(count, _)| *count).map(|(_, b)| b)
}

/// perf-user's kernel counter for `symbol` must equal the calls the target made of it (half of
/// them in a paired run).
pub fn counted_every_call(symbol: String) -> Check {
    Box::new(move |o| {
        let calls = o.target.map_or(0, |t| if t.pair_ns.is_some() { t.calls / 2 } else { t.calls });
        let counted = export_field(o, &symbol, "count").ok_or_else(|| format!("no {symbol} in the report"))?;
        if counted as u64 == calls {
            Ok(())
        } else {
            Err(format!("perf-user counted {counted} of {calls} calls of {symbol}"))
        }
    })
}

/// bpftrace's histogram must hold (nearly) every call.
pub fn bpftrace_saw_every_call(o: &Outcome) -> Result<(), String> {
    let calls = o.target.map_or(0, |t| t.calls);
    let seen = bpftrace_hist(o).iter().map(|(count, _)| count).sum::<u64>();
    if seen as f64 >= calls as f64 * 0.99 {
        Ok(())
    } else {
        Err(format!("bpftrace's histogram holds {seen} of {calls} calls: its probes did not fire"))
    }
}
