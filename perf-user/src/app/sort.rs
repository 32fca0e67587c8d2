//! The columns the functions table sorts by.

use std::cmp::Ordering;

use super::FunctionRow;

/// Columns of the functions table that it can be sorted by, in the order `s` cycles them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SortKey {
    Name,
    Calls,
    Rate,
    P50,
    P90,
    #[default]
    P99,
    P999,
    Max,
    OwnCpu,
    Callees,
    Syscalls,
    OffCpu,
}

impl SortKey {
    pub const ALL: [SortKey; 12] = [
        SortKey::Name,
        SortKey::Calls,
        SortKey::Rate,
        SortKey::P50,
        SortKey::P90,
        SortKey::P99,
        SortKey::P999,
        SortKey::Max,
        SortKey::OwnCpu,
        SortKey::Callees,
        SortKey::Syscalls,
        SortKey::OffCpu,
    ];

    pub fn next(self) -> SortKey {
        let i = Self::ALL.iter().position(|k| *k == self).unwrap_or(0);
        Self::ALL[(i + 1) % Self::ALL.len()]
    }

    /// Names sort A→Z, numbers biggest first.
    pub fn descending_by_default(self) -> bool {
        self != SortKey::Name
    }

    pub fn label(self) -> &'static str {
        match self {
            SortKey::Name => "name",
            SortKey::Calls => "calls",
            SortKey::Rate => "calls/s",
            SortKey::P50 => "p50",
            SortKey::P90 => "p90",
            SortKey::P99 => "p99",
            SortKey::P999 => "p99.9",
            SortKey::Max => "max",
            SortKey::OwnCpu => "own CPU",
            SortKey::Callees => "callees",
            SortKey::Syscalls => "syscalls",
            SortKey::OffCpu => "off-CPU",
        }
    }

    /// Ascending order of two rows by this key.
    pub fn compare(self, a: &FunctionRow, b: &FunctionRow, a_name: &str, b_name: &str) -> Ordering {
        let (la, lb) = (&a.latency, &b.latency);
        match self {
            SortKey::Name => a_name.cmp(b_name),
            SortKey::Calls => a.calls.cmp(&b.calls),
            SortKey::Rate => a.calls_per_s.total_cmp(&b.calls_per_s),
            SortKey::P50 => la.p50_ns.cmp(&lb.p50_ns),
            SortKey::P90 => la.p90_ns.cmp(&lb.p90_ns),
            SortKey::P99 => la.p99_ns.cmp(&lb.p99_ns),
            SortKey::P999 => la.p999_ns.cmp(&lb.p999_ns),
            SortKey::Max => la.max_ns.cmp(&lb.max_ns),
            SortKey::OwnCpu => a.shares.self_oncpu.total_cmp(&b.shares.self_oncpu),
            SortKey::Callees => a.shares.callees.total_cmp(&b.shares.callees),
            SortKey::Syscalls => a.shares.syscalls.total_cmp(&b.shares.syscalls),
            SortKey::OffCpu => a.shares.offcpu.total_cmp(&b.shares.offcpu),
        }
    }
}
