//! The contract's arithmetic: sampling draws, latency cookies and the histogram bucket layout.

use super::*;

#[test]
fn sampling_draws_time_one_call_in_n() {
    assert_eq!((sample_below(0), sample_below(1)), (u32::MAX, u32::MAX));
    for n in [2u32, 10, 100] {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let draws = 1_000_000;
        let mut hits = 0;
        for _ in 0..draws {
            x = xorshift64(x);
            hits += u32::from(((x >> 32) as u32) < sample_below(n));
        }
        let share = f64::from(hits) / f64::from(draws) * f64::from(n);
        assert!((0.97..1.03).contains(&share), "1 in {n}: {hits} of {draws}");
    }
}

#[test]
fn latency_cookie_round_trips_and_is_never_zero() {
    let boot = 3_600_000_000_000u64; // an hour after boot
    for (entry, wall, fn_id) in [(boot, 0, 0), (boot, 537, 7), (1, 12_345, 65_535), (u64::MAX - 10, 20, 3)] {
        let c = latency_cookie(entry, fn_id);
        assert_ne!(c, 0, "a zero cookie would read as an entry");
        assert_eq!(latency_cookie_read(c, entry.wrapping_add(wall)), (fn_id, wall));
    }
    // Calls up to 2^47 ns are exact, across the clock's low bits wrapping.
    let long = (1u64 << 47) - 1;
    let entry = (1u64 << 47) - 5;
    assert_eq!(latency_cookie_read(latency_cookie(entry, 1), entry + long), (1, long));
}

#[test]
fn small_values_have_exact_buckets() {
    for v in 0..32u64 {
        assert_eq!(hist_bucket_bounds(hist_bucket(v)), (v, v));
    }
}

#[test]
fn every_value_lies_within_its_bucket_and_buckets_are_narrow() {
    let mut v = 1u64;
    while v < (1u64 << 41) {
        for probe in [v, v + 1, v + v / 3, v * 2 - 1] {
            let b = hist_bucket(probe);
            let (lo, hi) = hist_bucket_bounds(b);
            assert!(lo <= probe && probe <= hi, "{probe} not in bucket {b} [{lo},{hi}]");
            // The last bucket also takes everything above 2^41 ns.
            if b as usize != HIST_BUCKETS - 1 {
                assert!((hi - lo) as f64 <= lo as f64 / 32.0 + 1.0, "bucket {b} too wide");
            }
        }
        v *= 2;
    }
}

#[test]
fn buckets_are_contiguous_and_cover_u64() {
    let mut next = 0u64;
    for b in 0..HIST_BUCKETS as u32 {
        let (lo, hi) = hist_bucket_bounds(b);
        assert_eq!(lo, next, "gap before bucket {b}");
        next = hi.wrapping_add(1);
    }
    assert_eq!(next, 0, "last bucket ends at u64::MAX");
    assert_eq!(hist_bucket(u64::MAX), HIST_BUCKETS as u32 - 1);
}

#[test]
fn call_path_ids_differ_by_caller_and_are_never_zero() {
    let root = call_path_id(0, 3);
    assert_ne!(root, 0);
    assert_eq!(root, call_path_id(0, 3), "the same chain has the same id everywhere");
    let a = call_path_id(root, 5);
    let b = call_path_id(call_path_id(0, 4), 5);
    assert_ne!(a, b, "one callee under two callers: two paths");
    assert_ne!(call_path_id(0, 5), a, "an outermost call is not the nested one");
    // Recursion: each level its own path.
    assert_ne!(call_path_id(root, 3), root);
}

#[test]
fn epoch_copies_never_share_a_slot() {
    // Function totals: copies side by side, each (function, copy) its own index.
    let mut seen = [false; 64 * EPOCHS as usize];
    for fn_id in 0..64 {
        for epoch in 0..EPOCHS {
            let i = func_stats_index(fn_id, epoch) as usize;
            assert!(i < seen.len() && !seen[i], "function {fn_id}, copy {epoch}: index {i}");
            seen[i] = true;
        }
    }
    // Call paths: ids never carry the epoch bit, and a key gives back its id and copy.
    let mut id = 0;
    for fn_id in 0..10_000 {
        id = call_path_id(id, fn_id);
        assert_ne!(id, 0);
        assert_eq!(id & CALL_PATH_EPOCH_BIT, 0, "path {id:#x}");
        for epoch in 0..EPOCHS {
            assert_eq!(call_path_key_parts(call_path_key(id, epoch)), (id, epoch));
        }
        assert_ne!(call_path_key(id, 0), call_path_key(id, 1));
    }
}
