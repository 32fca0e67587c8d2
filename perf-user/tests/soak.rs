//! Soak: target-app at a high rate under full tracing for a while. perf-user's memory stays flat,
//! its counts keep matching the app's truth, nothing is lost, and the CPU the target loses stays
//! within perf-user's own overhead estimate. CI runs a short version; `cargo xtask soak` the long one
//! (PERF_EBPF_SOAK_SECS=600).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests panic with context")]

mod common;

use std::time::{Duration, Instant};

use common::*;

const RATE: u64 = 20_000;

fn soak_secs() -> u64 {
    std::env::var("PERF_EBPF_SOAK_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(20)
}

fn rss_kib(pid: u32) -> u64 {
    perf_user::target::proc::status(pid).and_then(|s| s.vm_rss_kib).unwrap_or(0)
}

/// target-app feeding `messages` at RATE, traced or not; returns (truth, perf-user report, RSS samples).
fn run(name: &str, messages: u64, traced: bool) -> (serde_json::Value, Option<serde_json::Value>, Vec<u64>) {
    let dir = TempDir::new(name);
    let msgs = messages.to_string();
    let rate = RATE.to_string();
    let mut app = TargetApp::start(&dir, &["--hold", "--rate", &rate, "--messages", &msgs]);
    let export = dir.join("report.json");
    let mut pu = traced.then(|| {
        let mut args = vec!["--export", export.to_str().unwrap(), "--max-overhead", "1000"];
        for s in STAGES {
            args.extend(["--func", s]);
        }
        PerfUser::attach(app.pid, &args)
    });
    app.signal(libc::SIGUSR2);
    let mut rss = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(messages / RATE * 3 + 60);
    while app.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "target-app did not finish");
        if let Some(pu) = &pu {
            rss.push(rss_kib(pu.child.id()));
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    let truth = app.wait_truth(Duration::from_secs(10));
    let report = pu.as_mut().map(|pu| {
        pu.wait(Duration::from_secs(30));
        read_json(&export)
    });
    (truth, report, rss)
}

#[test]
fn soak_memory_flat_counts_exact_nothing_lost_overhead_as_estimated() {
    if !bpf_available("soak_memory_flat_counts_exact_nothing_lost_overhead_as_estimated") {
        return;
    }
    let messages = RATE * soak_secs();
    let (base, _, _) = run("soak-base", messages, false);
    let (truth, report, rss) = run("soak-traced", messages, true);
    let report = report.unwrap();

    for stage in STAGES {
        assert_eq!(u(&function(&report, stage)["count"]), u(&function(&truth, stage)["count"]), "{stage}");
    }
    // Nothing the kernel saw was lost. (`exemplars_evicted` is by design: only the newest slow
    // calls are kept in memory, and `--slow auto` sends 0.1 % of all calls. `switch_in_unseen` is
    // the kernel's: switch-ins it never reported, closed at the thread's next event; nothing lost.)
    let by_design = ["exemplars_evicted", "switch_in_unseen"];
    for (k, v) in report["lost"].as_object().unwrap().iter().filter(|(k, _)| !by_design.contains(&k.as_str())) {
        assert_eq!(u(v), 0, "lost.{k}");
    }

    // Regression (--slow auto compared raw kernel times with calibrated percentiles, so nearly
    // every call became an exemplar): about 0.1 % of calls are above their function's p99.9.
    let calls: u64 = STAGES.iter().map(|s| u(&function(&report, s)["count"])).sum();
    let sent = report["exemplars"].as_array().unwrap().len() as u64 + u(&report["lost"]["exemplars_evicted"]);
    assert!(sent * 100 <= calls, "{sent} exemplars for {calls} calls: --slow auto is not at p99.9");

    // Memory: after a few seconds of warm-up, flat (allow 20 % + 2 MiB of allocator noise).
    let warm = rss.len().min(5);
    let (after_warmup, last) = (rss[warm - 1].max(1), *rss.last().unwrap());
    assert!(last <= after_warmup + after_warmup / 5 + 2048, "perf-user RSS grew: {rss:?} KiB");

    // The target's extra CPU stays within perf-user's estimate (probe hits × cost per hit measured
    // at start-up, the number the UI shows as overhead and the guard uses). Regression: the cost
    // per hit came from a tight loop only, where the probe path stays in the caches; target-app
    // meets its probes in bursts after sleeping and paid 1.4–2.3× that, beyond this check's 2×
    // on a loaded CI machine. The cost is now the larger of the tight loop's and of sparse calls
    // after a sleep (cold caches). On the 2-vCPU VM five runs of this test printed added/estimate
    // 1.10, 1.11, 1.10, 1.17, 1.28 (and 10 s runs by hand 0.55–0.7): the rest is what the estimate
    // leaves out, the syscall and scheduler programs and the slower pipeline's extra wake-ups.
    // The estimate must hold within a factor of two, never off by an order of magnitude.
    let added = u(&truth["cpu_ns"]).saturating_sub(u(&base["cpu_ns"])) as f64;
    let estimate = u(&report["probe_hits"]) as f64 * u(&report["probe_cost_per_hit_ns"]).max(250) as f64;
    let slack = 0.05 * u(&base["cpu_ns"]) as f64;
    assert!(
        added <= 2.0 * estimate + slack,
        "target lost {:.0} ms of CPU, perf-user estimated {:.0} ms",
        added / 1e6,
        estimate / 1e6
    );
    eprintln!(
        "soak: {messages} messages, target +{:.0} ms CPU vs estimate {:.0} ms (added/estimate {:.2}), perf-user RSS {rss:?} KiB",
        added / 1e6,
        estimate / 1e6,
        added / estimate
    );
}
