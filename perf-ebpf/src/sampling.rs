//! `--sample N`: which calls are timed. One outermost call in N at random, with everything nested
//! in it; the calls nested in an untimed outermost call stay untimed (docs/ATTRIBUTION.md).

use aya_ebpf::helpers::{bpf_probe_read_user, generated::bpf_get_prandom_u32};
use perf_ebpf_common::{ThreadState, xorshift64};

use crate::maps::{FUNC_NESTS, SAMPLE_RNG, config};

/// True for about one draw in `sample_every`. A per-CPU xorshift64 generator (seeded once per CPU
/// from `bpf_get_prandom_u32`) compared with the precomputed `sample_below`: no helper call and
/// no division per draw, which a sampled-out call would otherwise pay for nothing. Two threads
/// preempting each other mid-draw on one CPU at worst repeat a draw.
#[inline(always)]
pub(crate) fn sample_draw() -> bool {
    let Some(state) = SAMPLE_RNG.get_ptr_mut(0) else {
        return true;
    };
    // SAFETY: a valid per-CPU map value.
    let mut x = unsafe { *state };
    if x == 0 {
        // SAFETY: no arguments.
        x = (u64::from(unsafe { bpf_get_prandom_u32() }) << 1) | 1;
    }
    x = xorshift64(x);
    // SAFETY: as above.
    unsafe { *state = x };
    ((x >> 32) as u32) < config().sample_below
}

/// Sampling: whether this call is timed. Every call nested in a timed one is, so attribution
/// inside a timed call stays exact; an outermost call is drawn, one in `sample_every`, and the
/// calls nested in an untimed one stay untimed (each function is then timed one call in N).
#[inline(always)]
pub(crate) fn sampled_in(st: &mut ThreadState, fn_id: u32, sp: u64) -> bool {
    if st.depth != 0 {
        return true;
    }
    if st.untimed_root_sp != 0 && sp < st.untimed_root_sp {
        match untimed_root_running(st) {
            Some(true) => return false,
            Some(false) => {}
            // Not known: this is the first call seen below one of that function's calls. From now
            // on its untimed calls keep their return address; this call is drawn as a root.
            None => {
                if let Some(n) = FUNC_NESTS.get_ptr_mut(st.untimed_root_fn) {
                    // SAFETY: a valid map value; racing writers all store 1.
                    unsafe { *n = 1 };
                }
            }
        }
    }
    // Random, not a counter: a counter aliases with the order of roots (with two roots per
    // message, one of them would never be picked by an even N).
    if sample_draw() {
        st.untimed_root_sp = 0;
        return true;
    }
    st.untimed_root_sp = sp;
    st.untimed_root_fn = fn_id;
    st.untimed_root_ret = match FUNC_NESTS.get(fn_id) {
        // SAFETY: bpf_probe_read_user checks the address; a failed read gives an error.
        Some(&n) if n != 0 => unsafe { bpf_probe_read_user(sp as *const u64) }.unwrap_or(0),
        _ => 0,
    };
    false
}

/// Whether the untimed outermost call is still running, if that can be told. A deeper entry alone
/// does not say so: the call may have returned unseen (its return probe was skipped) and the
/// thread since gone deeper through another path; then its return-address slot has been
/// overwritten. Without the return address (a function not yet seen enclosing traced calls) it
/// cannot be told.
#[inline(always)]
fn untimed_root_running(st: &ThreadState) -> Option<bool> {
    if st.untimed_root_ret == 0 {
        return None;
    }
    // SAFETY: bpf_probe_read_user checks the address; a failed read gives an error.
    let ret = unsafe { bpf_probe_read_user(st.untimed_root_sp as *const u64) };
    Some(ret == Ok(st.untimed_root_ret))
}
