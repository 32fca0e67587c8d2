//! The bench's statistics: medians of repetitions, and how sure a ratio of two added costs is.
//! Runs on this kind of VM swing by ±20 % while the goals compare costs 10 % apart, so a goal is
//! judged on a bootstrap interval of its ratio rather than on the medians alone.

/// Every repetition's value of one measurement (ns per call), or why there is none.
pub type Runs = Result<Vec<f64>, String>;

/// A measured number, or why there is none (`skipped: …`, `failed: …`).
pub type Cell = Result<f64, String>;

/// A measured number with its 95 % interval, or why there is none.
pub type Estimate = Result<RatioCi, String>;

/// A traced measurement's added cost over its `base`.
pub fn added(traced: &Cell, base: &Cell) -> Cell {
    match (traced, base) {
        (Ok(t), Ok(b)) => Ok(t - b),
        (Err(e), _) | (_, Err(e)) => Err(e.clone()),
    }
}

/// Medians' difference: a measurement's added cost over `base`.
pub fn added_runs(traced: &Runs, base: &Runs) -> Cell {
    added(&med(traced), &med(base))
}

pub fn ratio(a: &Cell, b: &Cell) -> Cell {
    match (a, b) {
        (Ok(a), Ok(b)) if *b > 0.0 => Ok(a / b),
        (Ok(_), Ok(_)) => Err("n/a (divisor ≤ 0)".into()),
        (Err(e), _) | (_, Err(e)) => Err(e.clone()),
    }
}

pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => v[n / 2],
        _ => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The median of a measurement's runs (the number the tables show).
pub fn med(runs: &Runs) -> Result<f64, String> {
    ok_runs(runs).map(median)
}

/// A ratio of medians (or another function of medians, or a median) with its 95 % bootstrap
/// interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RatioCi {
    pub ratio: f64,
    pub lo: f64,
    pub hi: f64,
}

const RESAMPLES: usize = 2000;

/// `(a − base) / (b − base)` on medians, where each is a measurement's runs (added costs over the
/// untraced `base`), with a percentile bootstrap interval: each measurement's runs are resampled
/// on their own, `RESAMPLES` times, with a fixed seed so a report can be regenerated exactly.
/// With one run each (`--quick`) the interval is the point itself.
pub fn ratio_ci(a: &Runs, b: &Runs, base: &Runs) -> Result<RatioCi, String> {
    medians_ci(&[a, b, base], |m| {
        let den = m[1] - m[2];
        if den > 0.0 { Some((m[0] - m[2]) / den) } else { None }
    })
}

/// `f` of the measurements' medians (in the order given), with the same percentile bootstrap
/// interval as [`ratio_ci`]; `f` gives `None` where it has no value (a divisor ≤ 0).
pub fn medians_ci(runs: &[&Runs], f: impl Fn(&[f64]) -> Option<f64>) -> Result<RatioCi, String> {
    let runs: Vec<&[f64]> = runs.iter().map(|r| ok_runs(r)).collect::<Result<_, _>>()?;
    let medians: Vec<f64> = runs.iter().map(|r| median(r)).collect();
    let point = f(&medians).ok_or("n/a (divisor ≤ 0)")?;
    let mut resampler = Resampler::new();
    let resampled: Vec<f64> = (0..RESAMPLES)
        .filter_map(|_| {
            let medians: Vec<f64> = runs.iter().map(|r| resampler.median(r)).collect();
            f(&medians)
        })
        .collect();
    Ok(interval(point, resampled))
}

/// The median of per-run ratios (paired runs: each run measured both sides at once, so each
/// gives its own ratio) with its 95 % percentile bootstrap interval, seeded as in [`ratio_ci`].
pub fn median_ci(ratios: &Runs) -> Result<RatioCi, String> {
    let ratios = ok_runs(ratios)?;
    let mut resampler = Resampler::new();
    let medians = (0..RESAMPLES).map(|_| resampler.median(ratios)).collect();
    Ok(interval(median(ratios), medians))
}

/// The 2.5th and 97.5th percentiles of resampled ratios around `ratio`; unbounded when most
/// resamples had no ratio.
fn interval(ratio: f64, mut ratios: Vec<f64>) -> RatioCi {
    if ratios.len() < RESAMPLES / 2 {
        return RatioCi { ratio, lo: f64::NEG_INFINITY, hi: f64::INFINITY };
    }
    ratios.sort_by(f64::total_cmp);
    let at = |q: f64| ratios[((ratios.len() - 1) as f64 * q).round() as usize];
    RatioCi { ratio, lo: at(0.025), hi: at(0.975) }
}

/// Draws with replacement from a fixed-seed xorshift generator.
struct Resampler(u64);

impl Resampler {
    fn new() -> Resampler {
        Resampler(0x9e37_79b9_7f4a_7c15)
    }

    /// The median of `v.len()` values drawn from `v` with replacement.
    fn median(&mut self, v: &[f64]) -> f64 {
        let picked: Vec<f64> = (0..v.len())
            .map(|_| {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                v[(self.0 % v.len() as u64) as usize]
            })
            .collect();
        median(&picked)
    }
}

fn ok_runs(r: &Runs) -> Result<&[f64], String> {
    match r {
        Ok(v) if !v.is_empty() => Ok(v),
        Ok(_) => Err("failed: no value measured".into()),
        Err(e) => Err(e.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(med(&Ok(vec![])).is_err());
    }

    #[test]
    fn the_interval_holds_the_ratio_and_widens_with_noise() {
        let base = Ok(vec![2.0; 11]);
        let steady_b = Ok(vec![1002.0; 11]);
        let steady_a = Ok(vec![1102.0; 11]);
        let ci = ratio_ci(&steady_a, &steady_b, &base).expect("measured");
        assert_eq!((ci.ratio, ci.lo, ci.hi), (1.1, 1.1, 1.1), "no noise, no width");

        // ±20 % swings around the same medians.
        let swing = |m: f64| Ok((0..11).map(|i| m * (0.8 + 0.04 * f64::from(i))).collect::<Vec<_>>());
        let ci = ratio_ci(&swing(1100.0), &swing(1000.0), &Ok(vec![0.0; 11])).expect("measured");
        assert!((ci.ratio - 1.1).abs() < 1e-9, "{ci:?}");
        assert!(ci.lo < 1.0 && ci.hi > 1.2, "a 10 % difference is not resolved by such runs: {ci:?}");
        assert_eq!(ratio_ci(&swing(1100.0), &swing(1000.0), &Ok(vec![0.0; 11])), Ok(ci), "seeded: repeatable");
    }

    #[test]
    fn paired_ratios_give_their_median_and_a_narrow_interval() {
        let ratios = Ok(vec![1.12, 1.11, 1.13, 1.12, 1.10]);
        let ci = median_ci(&ratios).expect("measured");
        assert_eq!(ci.ratio, 1.12);
        assert!(ci.lo >= 1.10 && ci.hi <= 1.13 && ci.lo <= ci.ratio && ci.ratio <= ci.hi, "{ci:?}");
        assert_eq!(median_ci(&ratios), Ok(ci), "seeded: repeatable");
        assert!(median_ci(&Ok(vec![])).is_err());
    }

    #[test]
    fn one_run_each_gives_the_point_and_errors_pass_through() {
        let ci = ratio_ci(&Ok(vec![550.0]), &Ok(vec![500.0]), &Ok(vec![0.0])).expect("measured");
        assert_eq!((ci.lo, ci.hi), (ci.ratio, ci.ratio));
        assert_eq!(ratio_ci(&Err("skipped: x".into()), &Ok(vec![1.0]), &Ok(vec![0.0])), Err("skipped: x".into()));
        assert!(ratio_ci(&Ok(vec![5.0]), &Ok(vec![1.0]), &Ok(vec![2.0])).is_err(), "no added cost to divide by");
    }
}
