//! Counters: what the kernel counts besides calls, each an index into the per-CPU `COUNTERS`
//! array.

/// What the kernel counts besides calls: each variant is its slot in the per-CPU `COUNTERS` array
/// (`counter as u32`). The discriminants are the map layout, so they are written out.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    /// uprobe and uretprobe hits of the target (the overhead estimate's numerator).
    ProbeHits = 0,
    /// Exemplars dropped because the ring buffer was full.
    RingbufFull = 1,
    /// Events dropped because a thread's state could not be allocated (task storage).
    ThreadMapFull = 2,
    /// Calls deeper than `MAX_DEPTH`: counted, not timed.
    DepthOverflow = 3,
    /// Returns without a matching entry.
    OrphanReturn = 4,
    /// Entries that never returned (thread exit, longjmp, unwinding).
    OrphanEntry = 5,
    /// (function, syscall) or (thread, function) attributions dropped because their map was full.
    AttrMapFull = 6,
    /// Exemplars sent.
    Exemplars = 7,
    /// Syscalls of the target seen (excluding `uretprobe`).
    Syscalls = 8,
    /// Context switches of the target's threads seen.
    Switches = 9,
    /// Switch-ins of the target's threads no `sched_switch` reported (this kernel emits none when
    /// the outgoing task is one of the VM agent's threads), closed at the thread's next event.
    SwitchInUnseen = 10,
    /// Every syscall of the target's threads that reached `sys_enter` (the probes' own excluded):
    /// what the tracepoints cost the target whatever it traces (the overhead estimate's fixed part).
    TargetSyscalls = 11,
    /// Every switch-out of a target thread `sched_switch` saw (the same, for the scheduler program).
    TargetSwitches = 12,
}

impl Counter {
    /// Every counter, in slot order.
    pub const ALL: [Counter; 13] = [
        Counter::ProbeHits,
        Counter::RingbufFull,
        Counter::ThreadMapFull,
        Counter::DepthOverflow,
        Counter::OrphanReturn,
        Counter::OrphanEntry,
        Counter::AttrMapFull,
        Counter::Exemplars,
        Counter::Syscalls,
        Counter::Switches,
        Counter::SwitchInUnseen,
        Counter::TargetSyscalls,
        Counter::TargetSwitches,
    ];
    /// Entries of the `COUNTERS` map.
    pub const COUNT: u32 = Counter::ALL.len() as u32;

    /// This counter's slot in `COUNTERS`.
    #[inline(always)]
    pub const fn index(self) -> u32 {
        self as u32
    }
}
// The slots are dense and in order: `ALL[i]` is slot `i`, so `COUNT` covers every variant.
const _: () = {
    let mut i = 0;
    while i < Counter::ALL.len() {
        assert!(Counter::ALL[i].index() == i as u32, "Counter::ALL must list the slots in order");
        i += 1;
    }
};
