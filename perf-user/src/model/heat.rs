//! Latency over time for the heatmap: per function, one column per tick of how many calls took
//! 2^k..2^(k+1) ns, kept sparse (a function's calls span a few rows) for the last `HEAT_COLUMNS` ticks.

use std::collections::VecDeque;

use super::{BucketHist, FuncSample};

/// Ticks kept per function (a minute at 4 ticks a second, the default interval).
pub const HEAT_COLUMNS: usize = 240;

/// One tick of one function: (row, calls) with row `k` holding calls of 2^k..2^(k+1) ns, rows ascending.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeatColumn {
    pub cells: Vec<(u8, u64)>,
}

impl HeatColumn {
    /// The calls a histogram holds, by power of two (each bucket by its midpoint).
    pub fn of(hist: &BucketHist) -> HeatColumn {
        let mut cells: Vec<(u8, u64)> = Vec::new();
        for b in &hist.buckets {
            let row = heat_row(b.mid_ns());
            match cells.last_mut() {
                Some(last) if last.0 == row => last.1 += b.count,
                _ => cells.push((row, b.count)),
            }
        }
        HeatColumn { cells }
    }
}

/// The row of a latency: ⌊log2 ns⌋ (0 for 0 and 1 ns).
pub fn heat_row(ns: u64) -> u8 {
    (63 - ns.max(1).leading_zeros()) as u8
}

/// Appends each function's calls since `prev` (the previous cumulative reading) as a column.
pub(super) fn push_columns(heat: &mut [VecDeque<HeatColumn>], now: &[FuncSample], prev: Option<&[FuncSample]>) {
    for (i, col) in heat.iter_mut().enumerate() {
        let cur = now.get(i).filter(|f| f.id as usize == i).or_else(|| now.iter().find(|f| f.id as usize == i));
        let before = prev
            .and_then(|p| p.get(i).filter(|f| f.id as usize == i).or_else(|| p.iter().find(|f| f.id as usize == i)));
        let column = match (cur, before) {
            (Some(c), Some(b)) if c.count == b.count => HeatColumn::default(),
            (Some(c), Some(b)) => HeatColumn::of(&c.total_hist.since(&b.total_hist)),
            (Some(c), None) => HeatColumn::of(&c.total_hist),
            (None, _) => HeatColumn::default(),
        };
        col.push_back(column);
        if col.len() > HEAT_COLUMNS {
            col.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Bucket;

    #[test]
    fn columns_hold_each_ticks_calls_by_power_of_two() {
        assert_eq!((heat_row(0), heat_row(1), heat_row(1023), heat_row(1024)), (0, 0, 9, 10));
        let h = |pts: &[(u64, u64)]| BucketHist {
            buckets: pts.iter().map(|&(v, count)| Bucket { low_ns: v, high_ns: v, count }).collect(),
        };
        let f = |count, hist| FuncSample { id: 0, count, total_hist: hist, ..FuncSample::default() };
        let first = [f(3, h(&[(1_000, 2), (1_010, 1)]))];
        let second = [f(5, h(&[(1_000, 2), (1_010, 1), (200_000, 2)]))];
        let mut heat = vec![VecDeque::new()];
        push_columns(&mut heat, &first, None);
        push_columns(&mut heat, &second, Some(&first));
        push_columns(&mut heat, &second, Some(&second));
        let cols: Vec<_> = heat[0].iter().map(|c| c.cells.clone()).collect();
        assert_eq!(cols, [vec![(9, 3)], vec![(17, 2)], vec![]]);
    }
}
