//! Formatting: every number fits its column, whatever its size.

use ratatui::{layout::Alignment, text::Text, widgets::Cell};

use crate::units::{fmt_count, fmt_ns, fmt_rate};

/// `fmt_ns`, but beyond 1000 s in minutes, hours or days, so that even the unbounded top bucket
/// (≥ 36 min) or a garbage maximum fits a 7-column cell.
pub fn fit_ns(ns: u64) -> String {
    let s = ns as f64 / 1e9;
    if s < 1000.0 {
        fmt_ns(ns)
    } else if s < 6000.0 {
        format!("{:.0}min", s / 60.0)
    } else if s < 36_000.0 {
        format!("{:.1}h", s / 3600.0)
    } else if s < 360_000.0 {
        format!("{:.0}h", s / 3600.0)
    } else if s < 86_400.0 * 100_000.0 {
        format!("{:.0}d", s / 86_400.0)
    } else {
        ">1e5d".into()
    }
}

/// 3 significant digits with k/M/G/T/P/E.
pub(crate) fn si(v: f64) -> String {
    const UNITS: [&str; 7] = ["", "k", "M", "G", "T", "P", "E"];
    let mut v = v.max(0.0);
    let mut u = 0;
    while v >= 999.5 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    let unit = UNITS[u];
    if u == 0 {
        format!("{v:.0}")
    } else if v < 10.0 {
        format!("{v:.2}{unit}")
    } else if v < 100.0 {
        format!("{v:.1}{unit}")
    } else {
        format!("{v:.0}{unit}")
    }
}

/// `fmt_count` up to 10M (`9999.9k`), then `12.3M`, `4.56G`, … (at most 7 characters).
pub fn fit_count(n: u64) -> String {
    if n < 10_000_000 { fmt_count(n) } else { si(n as f64) }
}

/// `fmt_rate` up to 10M/s, then `12.3M/s`, `4.56G/s`, … (at most 9 characters).
pub fn fit_rate(per_s: f64) -> String {
    if per_s < 1e7 { fmt_rate(per_s) } else { format!("{}/s", si(per_s)) }
}

pub(crate) fn pct(share: f64) -> String {
    format!("{:.0}%", share * 100.0)
}

/// What a cell shows when nothing was measured (the same mark as the text tables).
pub(crate) const UNTIMED: &str = crate::output::export::UNTIMED;

/// A latency cell: `—` when nothing was timed (`count` is the timed calls, not all calls).
pub(crate) fn lat(ns: u64, count: u64) -> String {
    if count == 0 { UNTIMED.into() } else { fit_ns(ns) }
}

/// A latency cell after calibration: `<floor` below what the probe-cost correction can tell
/// from zero (`FuncInfo::floor_ns`; 0: raw numbers).
pub(crate) fn lat_floor(ns: u64, count: u64, floor_ns: u64) -> String {
    if count > 0 && ns < floor_ns { format!("<{}", fit_ns(floor_ns)) } else { lat(ns, count) }
}

/// `12.3s`, `4m05s`, `2h07m`.
pub fn fmt_uptime(ns: u64) -> String {
    let s = ns / 1_000_000_000;
    if s < 60 {
        format!("{:.1}s", ns as f64 / 1e9)
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    }
}

/// Keeps the end of a long name (`…book::OrderBook::apply`): the tail tells functions apart.
pub fn ellipsize_left(s: &str, width: usize) -> String {
    let n = s.chars().count();
    if n <= width {
        return s.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut out = String::with_capacity(width + 2);
    out.push('…');
    out.extend(s.chars().skip(n - (width - 1)));
    out
}

pub(crate) fn right(s: String) -> Cell<'static> {
    Cell::from(Text::from(s).alignment(Alignment::Right))
}
