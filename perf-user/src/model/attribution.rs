//! Where a function's wall time went (docs/ATTRIBUTION.md): five disjoint parts that sum to the
//! wall time, per function, per syscall and per slow call.

use serde::{Deserialize, Serialize};

/// Where a function's wall time went (ATTRIBUTION.md): disjoint parts summing to the wall time.
/// `self_oncpu_ns` is own compute: with `--interference` the time hard interrupts, softirqs and
/// hypervisor steal took while the function ran is in `irq_ns`, `softirq_ns` and `steal_ns`
/// instead (0 without it, when it stays in `self_oncpu_ns`, or in `syscalls_ns` inside a syscall).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attribution {
    pub self_oncpu_ns: u64,
    pub callees_ns: u64,
    pub syscalls_ns: u64,
    pub offcpu_blocked_ns: u64,
    pub offcpu_runqueue_ns: u64,
    #[serde(default)]
    pub irq_ns: u64,
    #[serde(default)]
    pub softirq_ns: u64,
    #[serde(default)]
    pub steal_ns: u64,
    /// Counts of what interfered (`--interference`; all 0 without it).
    #[serde(default)]
    pub interference: InterfCounts,
}

/// How often something interfered with the calls (`--interference`), while the function was the
/// innermost traced frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfCounts {
    /// Hard interrupts, local-timer interrupts included.
    pub irq_count: u64,
    /// Local-timer interrupts (scheduler tick, hrtimers).
    pub timer_count: u64,
    /// User page faults (`exceptions:page_fault_user`).
    pub page_faults: u64,
    pub switches_voluntary: u64,
    pub switches_involuntary: u64,
    /// Came back on another CPU than the one it left.
    pub migrations: u64,
    /// Major faults (the page had to be read) among `page_faults`, by the thread's `maj_flt`.
    #[serde(default)]
    pub major_faults: u64,
}

impl InterfCounts {
    pub fn since(&self, base: &InterfCounts) -> InterfCounts {
        InterfCounts {
            irq_count: self.irq_count.saturating_sub(base.irq_count),
            timer_count: self.timer_count.saturating_sub(base.timer_count),
            page_faults: self.page_faults.saturating_sub(base.page_faults),
            switches_voluntary: self.switches_voluntary.saturating_sub(base.switches_voluntary),
            switches_involuntary: self.switches_involuntary.saturating_sub(base.switches_involuntary),
            migrations: self.migrations.saturating_sub(base.migrations),
            major_faults: self.major_faults.saturating_sub(base.major_faults),
        }
    }
}

impl Attribution {
    pub fn total_ns(&self) -> u64 {
        self.self_oncpu_ns
            + self.callees_ns
            + self.syscalls_ns
            + self.offcpu_blocked_ns
            + self.offcpu_runqueue_ns
            + self.interference_ns()
    }

    /// Takes `ns` of probe cost (calibration) out of the parts: from own compute, where it sits,
    /// and what own compute cannot give from the interference parts (the calibration's own calls
    /// were hit by interrupts and steal too, on a busy host), so the parts still sum to the wall
    /// time less `ns`. Returns what could not be taken (only when the parts hold less than `ns`).
    pub fn take_probe_cost(&mut self, ns: u64) -> u64 {
        let mut left = ns;
        for part in [&mut self.self_oncpu_ns, &mut self.irq_ns, &mut self.softirq_ns, &mut self.steal_ns] {
            let t = left.min(*part);
            *part -= t;
            left -= t;
        }
        left
    }

    /// On-CPU time taken by interrupts, softirqs and the hypervisor (`--interference`).
    pub fn interference_ns(&self) -> u64 {
        self.irq_ns + self.softirq_ns + self.steal_ns
    }

    /// The slowest-call summary of what interfered, e.g. "steal 296 µs, irq ×2 38 µs"; empty
    /// when nothing did (or `--interference` was off).
    pub fn interference_text(&self, fmt_ns: impl Fn(u64) -> String) -> String {
        let mut parts = Vec::new();
        if self.steal_ns > 0 {
            parts.push(format!("steal {}", fmt_ns(self.steal_ns)));
        }
        if self.irq_ns > 0 {
            let c = &self.interference;
            let timers = if c.timer_count > 0 { format!(" (local timer ×{})", c.timer_count) } else { String::new() };
            parts.push(format!("irq ×{}{timers} {}", c.irq_count, fmt_ns(self.irq_ns)));
        }
        if self.softirq_ns > 0 {
            parts.push(format!("softirq {}", fmt_ns(self.softirq_ns)));
        }
        let c = &self.interference;
        if c.major_faults > 0 {
            parts.push(format!("{} page faults ({} major)", c.page_faults, c.major_faults));
        } else if c.page_faults > 0 {
            parts.push(format!("{} page faults", c.page_faults));
        }
        if c.migrations > 0 {
            parts.push(format!("{} migrations", c.migrations));
        }
        parts.join(", ")
    }

    pub fn offcpu_ns(&self) -> u64 {
        self.offcpu_blocked_ns + self.offcpu_runqueue_ns
    }

    pub fn since(&self, base: &Attribution) -> Attribution {
        Attribution {
            self_oncpu_ns: self.self_oncpu_ns.saturating_sub(base.self_oncpu_ns),
            callees_ns: self.callees_ns.saturating_sub(base.callees_ns),
            syscalls_ns: self.syscalls_ns.saturating_sub(base.syscalls_ns),
            offcpu_blocked_ns: self.offcpu_blocked_ns.saturating_sub(base.offcpu_blocked_ns),
            offcpu_runqueue_ns: self.offcpu_runqueue_ns.saturating_sub(base.offcpu_runqueue_ns),
            irq_ns: self.irq_ns.saturating_sub(base.irq_ns),
            softirq_ns: self.softirq_ns.saturating_sub(base.softirq_ns),
            steal_ns: self.steal_ns.saturating_sub(base.steal_ns),
            interference: self.interference.since(&base.interference),
        }
    }

    /// Shares of the total in [0, 1]: (own CPU, callees, syscalls, off-CPU). Own CPU here is all
    /// on-CPU time not in callees or syscalls: own compute and interference together.
    pub fn shares(&self) -> Shares {
        let total = self.total_ns();
        if total == 0 {
            return Shares::default();
        }
        let f = |v: u64| v as f64 / total as f64;
        Shares {
            self_oncpu: f(self.self_oncpu_ns),
            callees: f(self.callees_ns),
            syscalls: f(self.syscalls_ns),
            offcpu: f(self.offcpu_ns()),
            interference: f(self.interference_ns()),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Shares {
    pub self_oncpu: f64,
    pub callees: f64,
    pub syscalls: f64,
    pub offcpu: f64,
    /// `--interference`: irq, softirq and steal, split out of own CPU and syscalls (0 without).
    pub interference: f64,
}
