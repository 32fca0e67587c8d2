//! One keeper of a call's heaviest few items (syscall numbers, traced callees): a fixed array of
//! slots, each an id with a count and total wall time, for the exemplar of a slow call.

use perf_ebpf_common::{CalleeSlot, SyscallSlot};

/// A slot of a top-N array: an id (syscall number, function id) with its calls and wall time.
pub(crate) trait TopSlot {
    fn id(&self) -> u32;
    /// Calls counted in the slot; 0 when it is empty.
    fn count(&self) -> u32;
    fn total_ns(&self) -> u64;
    /// One more call of the slot's id.
    fn add(&mut self, wall_ns: u64);
    /// A slot holding one call of `id`.
    fn first(id: u32, wall_ns: u64) -> Self;
}

/// `TopSlot` for a slot type whose id is in field `$id` (the slots differ only in its name).
macro_rules! top_slot {
    ($slot:ty, $id:ident) => {
        impl TopSlot for $slot {
            #[inline(always)]
            fn id(&self) -> u32 {
                self.$id
            }
            #[inline(always)]
            fn count(&self) -> u32 {
                self.count
            }
            #[inline(always)]
            fn total_ns(&self) -> u64 {
                self.total_ns
            }
            #[inline(always)]
            fn add(&mut self, wall_ns: u64) {
                self.count += 1;
                self.total_ns += wall_ns;
            }
            #[inline(always)]
            fn first($id: u32, wall_ns: u64) -> Self {
                Self { $id, count: 1, total_ns: wall_ns }
            }
        }
    };
}

top_slot!(SyscallSlot, nr);
top_slot!(CalleeSlot, fn_id);

/// Adds one call of `id` taking `wall_ns` to the `N` slots with the most wall time: its own slot if
/// it has one, else the lightest slot (an empty one first) when the call outweighs it (an id pushed
/// out by a heavier one starts over if it comes back).
#[inline(always)]
pub(crate) fn note_top<S: TopSlot, const N: usize>(slots: &mut [S; N], id: u32, wall_ns: u64) {
    let mut victim = 0;
    let mut victim_ns = u64::MAX;
    for (i, slot) in slots.iter_mut().enumerate() {
        if slot.count() != 0 && slot.id() == id {
            slot.add(wall_ns);
            return;
        }
        let ns = if slot.count() == 0 { 0 } else { slot.total_ns() };
        if ns < victim_ns {
            victim = i;
            victim_ns = ns;
        }
    }
    if let Some(slot) = slots.get_mut(victim)
        && (slot.count() == 0 || wall_ns > slot.total_ns())
    {
        *slot = S::first(id, wall_ns);
    }
}
