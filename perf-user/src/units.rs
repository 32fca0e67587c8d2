//! Human-readable durations and rates, the same in the UI, the text tables and the CLI parser.

/// `842ns`, `12.3µs`, `4.56ms`, `1.20s`: three significant digits, unit chosen per value.
pub fn fmt_ns(ns: u64) -> String {
    let v = ns as f64;
    let (value, unit) = if ns < 1_000 {
        return format!("{ns}ns");
    } else if ns < 1_000_000 {
        (v / 1e3, "µs")
    } else if ns < 1_000_000_000 {
        (v / 1e6, "ms")
    } else {
        (v / 1e9, "s")
    };
    if value < 10.0 {
        format!("{value:.2}{unit}")
    } else if value < 100.0 {
        format!("{value:.1}{unit}")
    } else {
        format!("{value:.0}{unit}")
    }
}

/// `950/s`, `12.3k/s`, `1.20M/s`.
pub fn fmt_rate(per_s: f64) -> String {
    if per_s < 1_000.0 {
        format!("{per_s:.0}/s")
    } else if per_s < 1_000_000.0 {
        format!("{:.1}k/s", per_s / 1e3)
    } else {
        format!("{:.2}M/s", per_s / 1e6)
    }
}

/// `12`, `12.3k`, `4.56M` for counts.
pub fn fmt_count(n: u64) -> String {
    if n < 10_000 {
        n.to_string()
    } else if n < 10_000_000 {
        format!("{:.1}k", n as f64 / 1e3)
    } else {
        format!("{:.2}M", n as f64 / 1e6)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid duration '{0}': expected a number with a unit, e.g. 500ns, 200us, 1.5ms, 10s, 2m")]
pub struct DurationError(pub String);

/// Parses `500ns`, `200us`/`200µs`, `1.5ms`, `10s`, `2m`, `1h`; a bare number means seconds.
pub fn parse_duration_ns(s: &str) -> Result<u64, DurationError> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num.parse().map_err(|_| DurationError(s.to_string()))?;
    let scale = match unit.trim() {
        "" | "s" => 1e9,
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "m" | "min" => 60e9,
        "h" => 3600e9,
        _ => return Err(DurationError(s.to_string())),
    };
    let ns = value * scale;
    if !ns.is_finite() || ns < 0.0 || ns > u64::MAX as f64 / 2.0 {
        return Err(DurationError(s.to_string()));
    }
    Ok(ns.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_pick_units() {
        assert_eq!(fmt_ns(842), "842ns");
        assert_eq!(fmt_ns(12_345), "12.3µs");
        assert_eq!(fmt_ns(4_560_000), "4.56ms");
        assert_eq!(fmt_ns(1_200_000_000), "1.20s");
        assert_eq!(fmt_ns(250_000), "250µs");
        assert_eq!(fmt_rate(12_345.0), "12.3k/s");
        assert_eq!(fmt_count(12_345), "12.3k");
    }

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration_ns("500ns"), Ok(500));
        assert_eq!(parse_duration_ns("200us"), Ok(200_000));
        assert_eq!(parse_duration_ns("200µs"), Ok(200_000));
        assert_eq!(parse_duration_ns("1.5ms"), Ok(1_500_000));
        assert_eq!(parse_duration_ns("10"), Ok(10_000_000_000));
        assert_eq!(parse_duration_ns("2m"), Ok(120_000_000_000));
        assert!(parse_duration_ns("abc").is_err());
        assert!(parse_duration_ns("10 parsecs").is_err());
        assert!(parse_duration_ns("-1s").is_err());
        assert!(parse_duration_ns("").is_err());
    }
}
