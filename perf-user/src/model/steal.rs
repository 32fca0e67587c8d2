//! The steal cross-check: each CPU's steal over the run by the hypervisor's clock as our programs
//! read it at the local timer, beside `/proc/stat`'s steal column over the same two reads.

use serde::{Deserialize, Serialize};

/// Both readings of every CPU at one moment, indexed by CPU number. `None`: no local-timer reading
/// of that CPU yet (idle since attach) or no `/proc/stat` line for it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StealReading {
    pub clock_ns: Vec<Option<u64>>,
    pub proc_stat_ns: Vec<Option<u64>>,
}

/// One CPU's steal between the start and end readings, by both sources.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuSteal {
    pub cpu: u32,
    /// Growth of the CPU's `kvm_steal_time.steal` between its last local-timer interrupts before
    /// the two reads.
    pub steal_ns: u64,
    /// Growth of `/proc/stat`'s steal column (USER_HZ ticks, as ns) between the same two reads.
    pub proc_stat_steal_ns: u64,
}

/// The CPUs both sources saw at both ends, in CPU order. A counter that went backwards (a CPU
/// unplugged and back) is left out rather than subtracted.
pub fn steal_check(start: &StealReading, end: &StealReading) -> Vec<CpuSteal> {
    let at = |v: &[Option<u64>], cpu: usize| v.get(cpu).copied().flatten();
    let cpus = end.clock_ns.len().min(end.proc_stat_ns.len());
    (0..cpus)
        .filter_map(|cpu| {
            let steal_ns = at(&end.clock_ns, cpu)?.checked_sub(at(&start.clock_ns, cpu)?)?;
            let proc_stat_steal_ns = at(&end.proc_stat_ns, cpu)?.checked_sub(at(&start.proc_stat_ns, cpu)?)?;
            Some(CpuSteal { cpu: u32::try_from(cpu).ok()?, steal_ns, proc_stat_steal_ns })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_of_cpus_seen_at_both_ends() {
        let start = StealReading {
            clock_ns: vec![Some(1_000), None, Some(50)],
            proc_stat_ns: vec![Some(0), Some(0), Some(10)],
        };
        let end = StealReading {
            clock_ns: vec![Some(21_000), Some(7), Some(40)],
            proc_stat_ns: vec![Some(10_000), Some(0), Some(10)],
        };
        // cpu1 had no reading at the start; cpu2's clock went backwards.
        assert_eq!(steal_check(&start, &end), [CpuSteal { cpu: 0, steal_ns: 20_000, proc_stat_steal_ns: 10_000 }]);
        assert!(steal_check(&StealReading::default(), &end).is_empty());
    }
}
