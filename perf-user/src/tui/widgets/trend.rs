//! The functions table's per-row trend: the last few p99 points as a one-line sparkline, scaled to
//! the row's own range so that a function's change shows whatever its size.

use std::collections::VecDeque;

const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// The newest `width` points of `history` (p99 per tick; 0: no calls that tick, drawn blank).
pub(crate) fn trend(history: Option<&VecDeque<u64>>, width: usize) -> String {
    let Some(h) = history else { return String::new() };
    let points: Vec<u64> = h.iter().skip(h.len().saturating_sub(width)).copied().collect();
    let (lo, hi) = points.iter().filter(|&&v| v > 0).fold((u64::MAX, 0), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    points
        .iter()
        .map(|&v| {
            if v == 0 {
                ' '
            } else if hi <= lo {
                BARS[3]
            } else {
                BARS[((v - lo) as f64 / (hi - lo) as f64 * 7.0).round() as usize]
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trend_scales_to_the_rows_own_range() {
        let h: VecDeque<u64> = [5, 0, 1_000, 1_500, 2_000].into_iter().collect();
        assert_eq!(trend(Some(&h), 4), " ▁▅█");
        let flat: VecDeque<u64> = [7, 7, 7].into_iter().collect();
        assert_eq!(trend(Some(&flat), 8), "▄▄▄");
        assert_eq!(trend(None, 8), "");
    }
}
