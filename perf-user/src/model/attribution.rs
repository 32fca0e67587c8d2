//! Where a function's wall time went (docs/ATTRIBUTION.md): five disjoint parts that sum to the
//! wall time, per function, per syscall and per slow call.

use serde::{Deserialize, Serialize};

/// Where a function's wall time went (ATTRIBUTION.md): five disjoint parts summing to the wall time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attribution {
    pub self_oncpu_ns: u64,
    pub callees_ns: u64,
    pub syscalls_ns: u64,
    pub offcpu_blocked_ns: u64,
    pub offcpu_runqueue_ns: u64,
}

impl Attribution {
    pub fn total_ns(&self) -> u64 {
        self.self_oncpu_ns + self.callees_ns + self.syscalls_ns + self.offcpu_blocked_ns + self.offcpu_runqueue_ns
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
        }
    }

    /// Shares of the total in [0, 1]: (own CPU, callees, syscalls, off-CPU).
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
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Shares {
    pub self_oncpu: f64,
    pub callees: f64,
    pub syscalls: f64,
    pub offcpu: f64,
}
