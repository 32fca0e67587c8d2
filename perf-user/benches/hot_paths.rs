//! Userspace work done on every tick, per function: merging a per-CPU histogram read from the
//! kernel, turning it into percentiles (now, and as it was done through hdrhistogram), windowing,
//! and the one-off symbol resolution of a real binary at attach.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use perf_ebpf_common::{HIST_BUCKETS, Hist, hist_bucket};
use perf_user::{bpf::collect::merge_hist, model::BucketHist, target::symbols::SymbolTable};

/// A realistic latency distribution spread over two CPUs: ~300 non-empty buckets.
fn per_cpu_hists() -> Vec<Hist> {
    let mut cpus = vec![Hist { buckets: [0; HIST_BUCKETS] }; 2];
    let mut v = 300u64;
    for i in 0..20_000u64 {
        v = v.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let ns = 500 + (v >> 40) % 200_000;
        cpus[(i % 2) as usize].buckets[hist_bucket(ns) as usize] += 1;
    }
    cpus
}

fn benches(c: &mut Criterion) {
    let cpus = per_cpu_hists();
    c.bench_function("merge_hist: 2 CPUs x 1184 buckets -> sparse", |b| b.iter(|| merge_hist(black_box(&cpus))));
    let merged: BucketHist = merge_hist(&cpus);
    c.bench_function("summary: sparse buckets -> percentiles in one walk", |b| {
        b.iter(|| black_box(&merged).summary(None))
    });
    // What `summary` did until it learnt to walk the buckets (and still the reference its unit
    // test holds it to): build an hdrhistogram per call, then ask it. Kept to show the ratio.
    c.bench_function("summary before: a new hdrhistogram per call, then percentiles", |b| {
        b.iter(|| {
            let h = black_box(&merged).to_hdr();
            (h.mean(), [0.5, 0.9, 0.99, 0.999].map(|q| h.value_at_quantile(q)))
        })
    });
    let half = BucketHist {
        buckets: merged.buckets.iter().map(|b| perf_user::model::Bucket { count: b.count / 2, ..*b }).collect(),
    };
    c.bench_function("window: cumulative histogram difference", |b| b.iter(|| black_box(&merged).since(&half)));
    let exe = std::env::current_exe().unwrap_or_default();
    c.bench_function("symbols: read and demangle this benchmark binary", |b| {
        b.iter(|| SymbolTable::read(black_box(&exe)).map(|t| t.functions.len()))
    });
    if let Ok(table) = SymbolTable::read(&exe) {
        c.bench_function("symbols: glob over every function", |b| {
            b.iter(|| table.select(&["*merge_hist*".to_string()]).map(|f| f.len()))
        });
    }
}

criterion_group!(hot_paths, benches);
criterion_main!(hot_paths);
