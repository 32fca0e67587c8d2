//! Reads bpftrace's `-f json` histogram output (one JSON object a line) as a `perf-ebpf/v1`
//! report with one function per map and key, so `report` and `diff` work on bpftrace runs too.
//!
//! bpftrace does not record units: a map named like `@usecs`, `@lat_us` or `@x_ms` is taken as µs
//! or ms, anything else as ns.

use serde_json::Value;

use crate::{
    model::{Bucket, BucketHist},
    output::report::{BucketCount, FunctionReport, Report, SCHEMA, Target, Tool},
};

fn unit_ns(map: &str) -> u64 {
    let n = map.trim_start_matches('@').to_ascii_lowercase();
    let ends = |s: &str| n == s || n.ends_with(&format!("_{s}"));
    if n.contains("usec") || ends("us") {
        1_000
    } else if n.contains("msec") || ends("ms") {
        1_000_000
    } else {
        1
    }
}

/// One histogram: bpftrace buckets `{"min", "max", "count"}` (inclusive bounds; the lowest may
/// lack `min`, the open top lacks `max`).
fn histogram(buckets: &[Value], unit: u64) -> Result<BucketHist, String> {
    let mut out = Vec::new();
    for b in buckets {
        let count = b.get("count").and_then(Value::as_u64).ok_or("histogram bucket without a count")?;
        if count == 0 {
            continue;
        }
        let min = b.get("min").and_then(Value::as_i64).unwrap_or(0).max(0) as u64;
        let low_ns = min.saturating_mul(unit);
        let high_ns = match b.get("max").and_then(Value::as_i64) {
            Some(max) => (max.max(0) as u64).saturating_mul(unit).saturating_add(unit - 1).max(low_ns),
            None => u64::MAX,
        };
        out.push(Bucket { low_ns, high_ns, count });
    }
    out.sort_by_key(|b| b.low_ns);
    Ok(BucketHist { buckets: out })
}

fn function(symbol: String, h: &BucketHist) -> FunctionReport {
    // The model's summary takes an open-ended top bucket as reaching twice its low end.
    FunctionReport {
        symbol,
        latency: h.summary(None),
        buckets: h.buckets.iter().map(|b| BucketCount { le_ns: b.high_ns, count: b.count }).collect(),
        ..FunctionReport::default()
    }
}

/// Converts bpftrace `-f json` text. `source` names the file in the report's `target.exe`.
pub fn import(text: &str, source: &str) -> Result<Report, String> {
    // Later prints of the same map replace earlier ones (bpftrace `interval` probes print repeatedly).
    let mut maps: Vec<(String, Vec<FunctionReport>)> = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).map_err(|e| format!("line {}: {e}", i + 1))?;
        let kind = v.get("type").and_then(Value::as_str).unwrap_or("");
        if kind != "hist" && kind != "lhist" {
            continue;
        }
        let Some(data) = v.get("data").and_then(Value::as_object) else {
            return Err(format!("line {}: a {kind} without a data object", i + 1));
        };
        for (name, value) in data {
            let unit = unit_ns(name);
            let mut fns = Vec::new();
            match value {
                Value::Array(buckets) => fns.push(function(name.clone(), &histogram(buckets, unit)?)),
                Value::Object(keys) => {
                    for (key, buckets) in keys {
                        let buckets =
                            buckets.as_array().ok_or_else(|| format!("line {}: {name}[{key}] is not a list", i + 1))?;
                        fns.push(function(format!("{name}[{key}]"), &histogram(buckets, unit)?));
                    }
                }
                _ => return Err(format!("line {}: {name} is not a histogram", i + 1)),
            }
            match maps.iter_mut().find(|(n, _)| n == name) {
                Some(entry) => entry.1 = fns,
                None => maps.push((name.clone(), fns)),
            }
        }
    }
    if maps.is_empty() {
        return Err("no histogram (\"type\": \"hist\") in the bpftrace output".into());
    }
    Ok(Report {
        schema: SCHEMA.into(),
        tool: Tool { name: "bpftrace".into(), version: String::new() },
        target: Target { pid: 0, exe: source.into(), comm: "bpftrace".into() },
        end_reason: "imported".into(),
        functions: maps.into_iter().flat_map(|(_, f)| f).collect(),
        ..Report::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUT: &str = r#"{"type": "attached_probes", "data": {"probes": 1}}
{"type": "hist", "data": {"@usecs": [{"min": 0, "max": 0, "count": 0}, {"min": 2, "max": 3, "count": 10}, {"min": 4, "max": 7, "count": 90}, {"min": 8, "count": 1}]}}
{"type": "hist", "data": {"@ns": {"read": [{"min": 512, "max": 1023, "count": 4}], "write": [{"min": 1024, "max": 2047, "count": 2}]}}}
"#;

    #[test]
    fn histograms_become_functions_with_buckets() {
        let r = import(OUT, "bt.json").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.schema, SCHEMA);
        let names: Vec<&str> = r.functions.iter().map(|f| f.symbol.as_str()).collect();
        assert_eq!(names, ["@usecs", "@ns[read]", "@ns[write]"]);
        let us = &r.functions[0];
        assert_eq!(us.latency.count, 101);
        assert_eq!(us.buckets[0], BucketCount { le_ns: 3_999, count: 10 });
        assert_eq!(us.buckets[1], BucketCount { le_ns: 7_999, count: 90 });
        assert!(us.latency.p50_ns >= 4_000 && us.latency.p50_ns <= 7_999, "{:?}", us.latency);
        assert_eq!(us.latency.max_ns, 16_000);
        assert_eq!(r.functions[1].buckets, vec![BucketCount { le_ns: 1023, count: 4 }]);
    }

    #[test]
    fn no_histogram_or_bad_lines_are_errors() {
        let err = |text: &str| import(text, "x").err().unwrap_or_default();
        assert!(err("{\"type\": \"attached_probes\", \"data\": {}}\n").contains("no histogram"));
        assert!(err("{\"type\": \"hist\"}\n").contains("data"));
        assert!(err("{\"type\": \"hist\", \"data\": {\"@a\": [{\"min\": 1}]}}\n").contains("count"));
        assert!(err("{\"type\": \"hist\" \n").starts_with("line 1"));
        assert_eq!(unit_ns("@lat_ms"), 1_000_000);
        assert_eq!(unit_ns("@x"), 1);
    }
}
