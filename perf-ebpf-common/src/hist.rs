//! The histogram layout both sides share: log-linear, 32 sub-buckets per power of two.

/// log2 of the sub-buckets per power of two: each bucket is at most 1/32 of its lower bound wide,
/// so a percentile read at the bucket midpoint is within ±1.6 % of the true value.
pub const HIST_SUB_BITS: u32 = 5;
pub const HIST_SUB_COUNT: u32 = 1 << HIST_SUB_BITS;
/// Highest power of two with its own buckets: 2^40 ns ≈ 18 min; longer values land in the last bucket.
pub const HIST_MAX_EXP: u32 = 40;
pub const HIST_BUCKETS: usize = (HIST_SUB_COUNT + (HIST_MAX_EXP - HIST_SUB_BITS + 1) * HIST_SUB_COUNT) as usize;

/// Bucket of a value in nanoseconds. Values below 32 have exact buckets.
#[inline(always)]
pub const fn hist_bucket(value: u64) -> u32 {
    if value < HIST_SUB_COUNT as u64 {
        return value as u32;
    }
    let exp = log2(value);
    if exp > HIST_MAX_EXP {
        return HIST_BUCKETS as u32 - 1;
    }
    let shift = exp - HIST_SUB_BITS;
    let sub = ((value >> shift) as u32) & (HIST_SUB_COUNT - 1);
    HIST_SUB_COUNT + shift * HIST_SUB_COUNT + sub
}

/// Lowest value (inclusive) and highest value (inclusive) of a bucket, in nanoseconds.
pub const fn hist_bucket_bounds(bucket: u32) -> (u64, u64) {
    if bucket < HIST_SUB_COUNT {
        return (bucket as u64, bucket as u64);
    }
    let group = (bucket - HIST_SUB_COUNT) / HIST_SUB_COUNT;
    let sub = (bucket - HIST_SUB_COUNT) % HIST_SUB_COUNT;
    let low = ((HIST_SUB_COUNT + sub) as u64) << group;
    let high = low + (1u64 << group) - 1;
    if bucket as usize == HIST_BUCKETS - 1 { (low, u64::MAX) } else { (low, high) }
}

/// floor(log2(v)) for v > 0, by binary search: BPF has no count-leading-zeros instruction.
#[inline(always)]
const fn log2(mut v: u64) -> u32 {
    let mut r = 0;
    if v >= 1 << 32 {
        v >>= 32;
        r += 32;
    }
    if v >= 1 << 16 {
        v >>= 16;
        r += 16;
    }
    if v >= 1 << 8 {
        v >>= 8;
        r += 8;
    }
    if v >= 1 << 4 {
        v >>= 4;
        r += 4;
    }
    if v >= 1 << 2 {
        v >>= 2;
        r += 2;
    }
    if v >= 1 << 1 {
        r += 1;
    }
    r
}
