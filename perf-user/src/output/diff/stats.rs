//! Statistics on bucket histograms: quantile confidence intervals from order statistics, Welch's
//! z-test on bucket moments, the max exceedance test and Kolmogorov–Smirnov, all deterministic.

use super::*;

use crate::output::report::BucketCount;

pub(super) fn hist_count(buckets: &[BucketCount]) -> u64 {
    buckets.iter().map(|b| b.count).sum()
}

/// Disjoint intervals mean the quantiles differ (each interval misses with ≤ 5 %).
pub(super) fn intervals_differ(base: Interval, new: Interval) -> Significance {
    match (base.hi_ns, new.hi_ns) {
        (Some(bh), _) if new.lo_ns > bh => Significance::Slower,
        (_, Some(nh)) if nh < base.lo_ns => Significance::Faster,
        _ => Significance::None,
    }
}

/// Lowest and highest value a bucket can hold: its ladder low end if known, else just above the
/// previous non-empty bucket (or the exact minimum); at most its `le_ns` (and the exact maximum).
pub(super) fn bucket_range(d: &Dist<'_>, i: usize) -> (u64, u64) {
    let (buckets, s) = (d.buckets, d.summary);
    let le = buckets[i].le_ns;
    let lo = match i.checked_sub(1) {
        Some(p) => buckets[p].le_ns.saturating_add(1),
        None if s.min_ns > 0 => s.min_ns.min(le),
        None => 0,
    };
    let lo = match ladder_low(le).filter(|_| d.ladder) {
        Some(ladder) => lo.max(ladder.min(le)),
        None => lo,
    };
    let hi = if s.max_ns > 0 { le.min(s.max_ns.max(lo)) } else { le };
    (lo, hi)
}

/// Index of the bucket holding the `rank`-th smallest value (1-based).
pub(super) fn bucket_of_rank(buckets: &[BucketCount], rank: u64) -> Option<usize> {
    let mut cum = 0u64;
    for (i, b) in buckets.iter().enumerate() {
        cum = cum.saturating_add(b.count);
        if cum >= rank {
            return Some(i);
        }
    }
    None
}

/// 95 % distribution-free confidence interval of the `q`-quantile: the true quantile lies between
/// the order statistics of ranks `l` and `u`, where the number of calls below it is Binomial(n, q).
/// `None` without data; `hi_ns: None` when n is too small to bound it from above.
pub(super) fn quantile_ci(d: &Dist<'_>, q: f64) -> Option<Interval> {
    let buckets = d.buckets;
    let n = hist_count(buckets);
    if n == 0 {
        return None;
    }
    let (l, u) = order_stat_ranks(n, q);
    let lo_ns = match l {
        0 => 0,
        l => bucket_of_rank(buckets, l).map_or(0, |i| bucket_range(d, i).0),
    };
    let hi_ns = u.and_then(|u| bucket_of_rank(buckets, u)).and_then(|i| {
        let (_, hi) = bucket_range(d, i);
        // The open-ended top bucket bounds nothing unless the exact maximum is known.
        (hi != u64::MAX).then_some(hi)
    });
    Some(Interval { lo_ns, hi_ns })
}

/// Ranks (1-based) of the order statistics bounding the q-quantile of n values with 1 - ALPHA_TAIL
/// each: `l` (0: no lower bound) with P(B >= l) >= 1 - α and `u` (None: no upper bound within n)
/// with P(B <= u - 1) >= 1 - α, for B ~ Binomial(n, q).
pub fn order_stat_ranks(n: u64, q: f64) -> (u64, Option<u64>) {
    let nf = n as f64;
    let var = nf * q * (1.0 - q);
    if var >= 1000.0 {
        // Normal approximation with continuity correction: off by far less than one rank here.
        let sd = var.sqrt();
        let l = (nf * q + 0.5 - Z_TAIL * sd).floor().max(0.0) as u64;
        let u = (nf * q + 0.5 + Z_TAIL * sd).ceil() as u64;
        return (l, (u <= n).then_some(u));
    }
    let cdf = BinomialCdf::new(n, q);
    // l: largest with 1 - cdf(l - 1) >= 1 - α, i.e. cdf(l - 1) <= α.
    let mut l = 0;
    while l < n && cdf.at(l) <= ALPHA_TAIL {
        l += 1;
    }
    // u: smallest with cdf(u - 1) >= 1 - α.
    let mut u = l.max(1);
    while u <= n && cdf.at(u - 1) < 1.0 - ALPHA_TAIL {
        u += 1;
    }
    (l, (u <= n).then_some(u))
}

/// Binomial(n, p) CDF, exact, computed over the window of k that carries any mass.
pub(super) struct BinomialCdf {
    first: u64,
    cum: Vec<f64>,
}

impl BinomialCdf {
    pub(super) fn new(n: u64, p: f64) -> Self {
        let ratio = p / (1.0 - p);
        let mode = (((n + 1) as f64) * p).floor().min(n as f64) as u64;
        // Relative weights outward from the mode; pmf(k+1)/pmf(k) = (n-k)/(k+1) * p/(1-p).
        let mut up = vec![1.0_f64];
        let mut k = mode;
        while k < n {
            let w = up[up.len() - 1] * (n - k) as f64 / (k + 1) as f64 * ratio;
            if w < 1e-18 {
                break;
            }
            up.push(w);
            k += 1;
        }
        let mut down = Vec::new();
        let (mut k, mut w) = (mode, 1.0_f64);
        while k > 0 {
            w = w * k as f64 / ((n - k + 1) as f64 * ratio);
            if w < 1e-18 {
                break;
            }
            down.push(w);
            k -= 1;
        }
        let first = mode - down.len() as u64;
        let weights: Vec<f64> = down.into_iter().rev().chain(up).collect();
        let total: f64 = weights.iter().sum();
        let mut acc = 0.0;
        let cum = weights
            .iter()
            .map(|w| {
                acc += w / total;
                acc
            })
            .collect();
        BinomialCdf { first, cum }
    }

    /// P(B <= k).
    pub(super) fn at(&self, k: u64) -> f64 {
        if k < self.first {
            return 0.0;
        }
        self.cum.get((k - self.first) as usize).copied().unwrap_or(1.0)
    }
}

/// Mean and variance of a bucket histogram, each bucket at the middle of its possible range.
pub(super) fn moments(d: &Dist<'_>) -> (f64, f64, u64) {
    let n = hist_count(d.buckets);
    if n == 0 {
        return (0.0, 0.0, 0);
    }
    let mids: Vec<(f64, u64)> = (0..d.buckets.len())
        .map(|i| {
            let (lo, hi) = bucket_range(d, i);
            let hi = if hi == u64::MAX { lo } else { hi };
            ((lo as f64 + hi as f64) / 2.0, d.buckets[i].count)
        })
        .collect();
    let mean = mids.iter().map(|(v, c)| v * *c as f64).sum::<f64>() / n as f64;
    let var = mids.iter().map(|(v, c)| (v - mean).powi(2) * *c as f64).sum::<f64>() / (n.max(2) - 1) as f64;
    (mean, var, n)
}

/// Welch's z-test of the means (two-sided 95 %), and the change's bound nearest to zero.
pub(super) fn mean_test(b: &Dist<'_>, n: &Dist<'_>) -> (Significance, Option<f64>) {
    let (mb, vb, nb) = moments(b);
    let (mn, vn, nn) = moments(n);
    if nb < MIN_CALLS || nn < MIN_CALLS || mb <= 0.0 {
        return (Significance::None, None);
    }
    let se = (vb / nb as f64 + vn / nn as f64).sqrt();
    let diff = mn - mb;
    // With every call in one bucket on each side (se = 0), different buckets are a real difference.
    let sig = if diff > Z_TAIL * se && diff > 0.0 {
        Significance::Slower
    } else if diff < -Z_TAIL * se && diff < 0.0 {
        Significance::Faster
    } else {
        Significance::None
    };
    let bound = match sig {
        Significance::Slower => Some((diff - Z_TAIL * se) / mb * 100.0),
        Significance::Faster => Some((diff + Z_TAIL * se) / mb * 100.0),
        Significance::None => None,
    };
    (sig, bound)
}

/// The maximum is one call: ask instead whether more calls than chance lie beyond the other side's
/// maximum. With no change all n + m calls are exchangeable, so the chance that at least k of the
/// m new ones exceed all n old ones (the top k overall are all new) is C(m, k) / C(n + m, k).
pub(super) fn max_test(b: &Dist<'_>, n: &Dist<'_>) -> Significance {
    let above = |d: &Dist<'_>, limit: u64| -> u64 {
        (0..d.buckets.len()).filter(|&i| bucket_range(d, i).0 > limit).map(|i| d.buckets[i].count).sum()
    };
    let (nb, nn) = (hist_count(b.buckets), hist_count(n.buckets));
    if nb < MIN_CALLS || nn < MIN_CALLS {
        return Significance::None;
    }
    if exceedance_p(above(n, b.summary.max_ns), nn, nb) < ALPHA_TAIL {
        Significance::Slower
    } else if exceedance_p(above(b, n.summary.max_ns), nb, nn) < ALPHA_TAIL {
        Significance::Faster
    } else {
        Significance::None
    }
}

/// P(the k largest of m + n exchangeable values all come from the m) = C(m, k) / C(m + n, k).
pub(super) fn exceedance_p(k: u64, m: u64, n: u64) -> f64 {
    if k > m {
        return 0.0;
    }
    let mut p = 1.0;
    for i in 0..k {
        p *= (m - i) as f64 / (m + n - i) as f64;
        if p < 1e-300 {
            return 0.0;
        }
    }
    p
}

/// Two-sample Kolmogorov–Smirnov on the bucket CDFs (evaluated at every bucket bound of either).
pub fn ks_test(a: &[BucketCount], b: &[BucketCount]) -> KsTest {
    let (na, nb) = (hist_count(a), hist_count(b));
    if na == 0 || nb == 0 {
        return KsTest { d: 0.0, p_value: 1.0 };
    }
    let mut bounds: Vec<u64> = a.iter().chain(b).map(|x| x.le_ns).collect();
    bounds.sort_unstable();
    bounds.dedup();
    let cdf = |h: &[BucketCount], n: u64, x: u64| {
        h.iter().take_while(|k| k.le_ns <= x).map(|k| k.count).sum::<u64>() as f64 / n as f64
    };
    let d = bounds.iter().map(|&x| (cdf(a, na, x) - cdf(b, nb, x)).abs()).fold(0.0, f64::max);
    let ne = (na as f64 * nb as f64) / (na as f64 + nb as f64);
    let lambda = (ne.sqrt() + 0.12 + 0.11 / ne.sqrt()) * d;
    KsTest { d, p_value: kolmogorov_q(lambda) }
}

/// Q_KS(λ) = 2 Σ (-1)^(j-1) exp(-2 j² λ²).
pub(super) fn kolmogorov_q(lambda: f64) -> f64 {
    if lambda < 0.2 {
        return 1.0;
    }
    let mut sum = 0.0;
    let mut sign = 1.0;
    for j in 1..=100 {
        let term = sign * 2.0 * (-2.0 * (j * j) as f64 * lambda * lambda).exp();
        sum += term;
        if term.abs() < 1e-12 {
            break;
        }
        sign = -sign;
    }
    sum.clamp(0.0, 1.0)
}

// ---------------------------------------------------------------------------------------------
