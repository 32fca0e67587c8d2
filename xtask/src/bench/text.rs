//! How the bench writes numbers, in the report and in its progress lines: thousands separators,
//! times in their natural unit, ratios with their intervals.

use super::stats::{Cell, RatioCi};

pub fn thousands(x: f64) -> String {
    let n = x.round().max(0.0) as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// A criterion time in its natural unit.
pub fn duration(ns: f64) -> String {
    match ns {
        x if x >= 1e6 => format!("{:.2} ms", x / 1e6),
        x if x >= 1e3 => format!("{:.2} µs", x / 1e3),
        x => format!("{x:.0} ns"),
    }
}

/// ns with one decimal, or why there is no number.
pub fn ns(c: &Cell) -> String {
    match c {
        Ok(v) => format!("{v:.1}"),
        Err(e) => e.clone(),
    }
}

/// A ratio as `1.08×`, or why there is none.
pub fn times(c: &Cell) -> String {
    match c {
        Ok(v) => format!("{v:.2}×"),
        Err(e) => e.clone(),
    }
}

/// `1.08× (95 % CI 1.01–1.16)`; one run gives no interval to show.
pub fn ci_text(ci: &RatioCi) -> String {
    if ci.lo == ci.hi {
        format!("{:.2}×", ci.ratio)
    } else {
        format!("{:.2}× (95 % CI {:.2}–{:.2})", ci.ratio, ci.lo, ci.hi)
    }
}

/// A percentage with its interval: `19.2 % (95 % CI 12.1–26.4)`; one run gives no interval.
pub fn pct_ci(ci: &RatioCi) -> String {
    if ci.lo == ci.hi {
        format!("{:.1} %", ci.ratio)
    } else {
        format!("{:.1} % (95 % CI {:.1}–{:.1})", ci.ratio, ci.lo, ci.hi)
    }
}

/// A median with its interval, signed, in `unit`: `+19.0 µs (95 % CI +17.2 to +21.0)`, without
/// decimals from 100 on; one run gives no interval to show.
pub fn signed_ci(ci: &RatioCi, unit: &str) -> String {
    let d = if ci.ratio.abs() >= 100.0 { 0 } else { 1 };
    if ci.lo == ci.hi {
        format!("{:+.d$}{unit}", ci.ratio)
    } else {
        format!("{:+.d$}{unit} (95 % CI {:+.d$} to {:+.d$})", ci.ratio, ci.lo, ci.hi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_get_separators_and_units() {
        assert_eq!(thousands(1_234_567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(
            (duration(12_345.0), duration(2.5e6), duration(40.0)),
            ("12.35 µs".into(), "2.50 ms".into(), "40 ns".into())
        );
        let ci = RatioCi { ratio: 1.08, lo: 1.01, hi: 1.16 };
        assert_eq!(ci_text(&ci), "1.08× (95 % CI 1.01–1.16)");
        assert_eq!(ci_text(&RatioCi { ratio: 1.0, lo: 1.0, hi: 1.0 }), "1.00×");
        let shift = RatioCi { ratio: 19.04, lo: -0.5, hi: 21.0 };
        assert_eq!(signed_ci(&shift, " µs"), "+19.0 µs (95 % CI -0.5 to +21.0)");
        assert_eq!(signed_ci(&RatioCi { ratio: -2.0, lo: -2.0, hi: -2.0 }, " pp"), "-2.0 pp");
        assert_eq!(signed_ci(&RatioCi { ratio: 3290.0, lo: 3290.0, hi: 3290.0 }, " µs"), "+3290 µs");
    }
}
