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
pub fn function_field(export: &serde_json::Value, symbol: &str, field: &str) -> Option<f64> {
    export_function(export, symbol)?.get(field)?.as_f64()
}

/// The same, from a run's outcome.
pub fn export_field(o: &Outcome, symbol: &str, field: &str) -> Option<f64> {
    function_field(o.export.as_ref()?, symbol, field)
}

/// bpftrace's `@h` histogram as (count, bucket) pairs, e.g. `(296418, "[512, 1K)")`.
pub fn bpftrace_hist(o: &Outcome) -> Vec<(u64, String)> {
    bpftrace_map_hist(&o.tracer_output, "@h")
}

/// The histogram bpftrace printed for `map` at exit, as (count, bucket) pairs: the lines after
/// `MAP:` up to the next map.
pub fn bpftrace_map_hist(output: &[String], map: &str) -> Vec<(u64, String)> {
    let header = format!("{map}:");
    output
        .iter()
        .skip_while(|l| !l.starts_with(&header))
        .skip(1)
        .take_while(|l| !l.starts_with('@'))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_bpftrace_map_is_read_up_to_the_next() {
        let output: Vec<String> =
            "Attaching 5 probes...\nREADY\n\n@h0: \n[8K, 16K)   44 |@@@|\n[16K, 32K)  40 |@@|\n\n\
             @h1: \n[512, 1K)   119 |@@@@|\n\n@s0[123]: 456"
                .lines()
                .map(str::to_string)
                .collect();
        let h0 = bpftrace_map_hist(&output, "@h0");
        assert_eq!(h0, vec![(44, "[8K, 16K)".to_string()), (40, "[16K, 32K)".to_string())]);
        assert_eq!(bpftrace_map_hist(&output, "@h1"), vec![(119, "[512, 1K)".to_string())]);
        assert!(bpftrace_map_hist(&output, "@h").is_empty(), "`@h:` is not `@h0:`");
    }
}
