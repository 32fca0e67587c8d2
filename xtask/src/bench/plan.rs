//! How long and how often each kind of run is: the full plan, the `--quick` smoke plan, and the
//! line of the report that states it.

use anyhow::{Result, bail};

use super::text::thousands;

#[derive(Clone, Copy, Debug)]
pub struct Plan {
    pub reps: usize,
    /// Calls per traced run of an empty function (~2 µs each when traced).
    pub traced_calls: u64,
    /// Calls per untraced run (~2 ns each).
    pub untraced_calls: u64,
    /// getppid calls per run (strace makes each one ~20 µs).
    pub syscalls: u64,
    /// Length of each throughput run.
    pub load_ms: u64,
    /// Calls of the 20 µs spin.
    pub spin_calls: u64,
    /// Repetitions of section 1's per-call runs: their differences are tens of ns against
    /// run-to-run swings of ±20 % on this kind of VM, so their medians need more runs.
    pub call_reps: usize,
    /// Repetitions of the paired runs (section 1's, and section 12's target-app ones), each
    /// measured under one machine state.
    pub pair_reps: usize,
    /// Section 9: rounds of every mode; its runs swing with the machine's load more than any.
    pub workload_rounds: usize,
    /// Section 9: seconds of load per run of the real server.
    pub server_secs: u64,
    /// Section 9: how long each target-app run should last, its messages sized from a first run
    /// of each mode; `None`: a fixed number of messages, no sizing run.
    pub app_ms: Option<u64>,
}

const FULL: Plan = Plan {
    reps: 5,
    traced_calls: 300_000,
    untraced_calls: 20_000_000,
    syscalls: 100_000,
    load_ms: 3000,
    spin_calls: 20_000,
    call_reps: 11,
    pair_reps: 5,
    workload_rounds: 7,
    server_secs: 5,
    app_ms: Some(3000),
};
const QUICK: Plan = Plan {
    reps: 1,
    traced_calls: 30_000,
    untraced_calls: 2_000_000,
    syscalls: 10_000,
    load_ms: 1000,
    spin_calls: 2000,
    call_reps: 1,
    pair_reps: 1,
    workload_rounds: 1,
    server_secs: 2,
    app_ms: None,
};

impl Plan {
    /// The full or the quick plan, with `--reps` overriding the repetitions.
    pub fn choose(quick: bool, reps: Option<usize>) -> Result<Plan> {
        let mut plan = if quick { QUICK } else { FULL };
        if let Some(reps) = reps {
            if reps == 0 {
                bail!("--reps must be at least 1");
            }
            plan.reps = reps;
            plan.call_reps = reps;
            plan.workload_rounds = reps;
        }
        Ok(plan)
    }

    /// The report's description of the plan.
    pub fn describe(&self) -> String {
        format!(
            "section 1: median of {}, paired runs {} (section 12's target-app pairs too); {} calls per traced run, {} untraced, {} getppid, {} ms per throughput run, {} spins; section 9: {} rounds, {} s of load per server run, {}",
            self.call_reps,
            self.pair_reps,
            thousands(self.traced_calls as f64),
            thousands(self.untraced_calls as f64),
            thousands(self.syscalls as f64),
            self.load_ms,
            thousands(self.spin_calls as f64),
            self.workload_rounds,
            self.server_secs,
            match self.app_ms {
                Some(ms) => format!("target-app runs of ~{ms} ms"),
                None => "target-app runs of a fixed number of messages".into(),
            }
        )
    }
}
