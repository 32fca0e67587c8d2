//! The span programs (`--span NAME=FROM..TO`): a FROM hit stores its time under (span, key) in a
//! bounded LRU map; a TO hit on any thread looks it up, deletes it and records the latency.
//! Only the endpoint functions carry these probes, so nothing else pays for spans.

use aya_ebpf::{
    EbpfContext,
    bindings::pt_regs,
    helpers::{bpf_probe_read_user, generated::bpf_get_attach_cookie},
    macros::{map, uprobe, uretprobe},
    maps::{Array, LruHashMap, PerCpuArray, RingBuf},
    programs::{ProbeContext, RetProbeContext},
};
use perf_ebpf_common::{
    Hist,
    spans::{
        MAX_SPANS, SPAN_EXEMPLAR_RING_BYTES, SPAN_KEY_PTR, SPAN_KEY_RET, SPAN_KEYS_DEFAULT, SpanEndpoint, SpanExemplar,
        SpanKey, SpanStart, SpanStats,
    },
};

use crate::helpers::{current_tid, hist_add, now_ns};

/// Starts waiting for their end. LRU: a start whose end never comes is evicted by newer ones, so
/// the map never grows past its size (perf-user sets it, `--span-keys`); userspace counts them.
#[map(name = "SPAN_STARTS")]
static SPAN_STARTS: LruHashMap<SpanKey, SpanStart> = LruHashMap::with_max_entries(SPAN_KEYS_DEFAULT, 0);
#[map(name = "SPAN_STATS")]
static SPAN_STATS: PerCpuArray<SpanStats> = PerCpuArray::with_max_entries(MAX_SPANS, 0);
/// One log-linear histogram of span latency per span.
#[map(name = "SPAN_HIST")]
static SPAN_HIST: PerCpuArray<Hist> = PerCpuArray::with_max_entries(MAX_SPANS, 0);
/// Per-span exemplar threshold in ns (0: none yet), kept at the span's p99.9 by perf-user.
#[map(name = "SPAN_SLOW")]
static SPAN_SLOW: Array<u64> = Array::with_max_entries(MAX_SPANS, 0);
#[map(name = "SPAN_EXEMPLARS")]
static SPAN_EXEMPLARS: RingBuf = RingBuf::with_byte_size(SPAN_EXEMPLAR_RING_BYTES, 0);

/// `bpf_ringbuf_submit` flag: do not wake the reader; userspace drains on a timer.
const BPF_RB_NO_WAKEUP: u64 = 1;
/// `bpf_map_update_elem` flags: create or replace; create only.
const BPF_ANY: u64 = 0;
const BPF_NOEXIST: u64 = 1;
/// The update's error when BPF_NOEXIST finds the key (any other error: the start was not stored,
/// and userspace's estimate counts it lost).
const EEXIST: i32 = 17;

/// An endpoint at a function's entry (keyed by an argument, or a u64 through one).
#[uprobe]
pub fn span_entry(ctx: ProbeContext) -> u32 {
    span_hit(ctx.as_ptr(), ctx.regs);
    0
}

/// An endpoint at a function's return (keyed by the return value).
#[uretprobe]
pub fn span_return(ctx: RetProbeContext) -> u32 {
    span_hit(ctx.as_ptr(), ctx.regs);
    0
}

#[inline(always)]
fn span_hit(ctx: *mut core::ffi::c_void, regs: *mut pt_regs) {
    let now = now_ns();
    // SAFETY: the helper only reads the attach cookie of the running program's link.
    let ep = SpanEndpoint::from_cookie(unsafe { bpf_get_attach_cookie(ctx) });
    let Some(stats) = SPAN_STATS.get_ptr_mut(ep.span_id) else {
        return;
    };
    // SAFETY: `stats` is this CPU's value of a per-CPU array, only this program run writes it.
    let stats = unsafe { &mut *stats };
    let Some(key) = read_key(regs, &ep) else {
        stats.key_faults += 1;
        return;
    };
    let key = SpanKey { span_id: ep.span_id, _pad: 0, key };
    if ep.is_end == 0 {
        stats.starts += 1;
        let start = SpanStart { start_ns: now, tid: current_tid(), _pad: 0 };
        // BPF_NOEXIST first, so a start under a key already waiting is seen and counted; then it
        // replaces the older one (BPF_ANY). The common case costs the one update it always did.
        if SPAN_STARTS.insert(key, start, BPF_NOEXIST) == Err(-EEXIST) {
            stats.replaced += 1;
            let _ = SPAN_STARTS.insert(key, start, BPF_ANY);
        }
        return;
    }
    let Some(start) = SPAN_STARTS.get_ptr(key) else {
        stats.ends_without_start += 1;
        return;
    };
    // SAFETY: a value of our LRU map, read at once; a concurrent delete may recycle it, which the
    // delete below then reports as not found.
    let start = unsafe { *start };
    // Two ends racing for one start: only the one whose delete succeeds records the span.
    if SPAN_STARTS.remove(key).is_err() {
        stats.ends_without_start += 1;
        return;
    }
    let wall_ns = now.saturating_sub(start.start_ns);
    if stats.count == 0 || wall_ns < stats.min_ns {
        stats.min_ns = wall_ns;
    }
    if wall_ns > stats.max_ns {
        stats.max_ns = wall_ns;
    }
    stats.count += 1;
    stats.total_ns += wall_ns;
    hist_add(&SPAN_HIST, ep.span_id, wall_ns);
    if let Some(&slow) = SPAN_SLOW.get(ep.span_id)
        && slow != 0
        && wall_ns >= slow
    {
        send_exemplar(&key, &start, wall_ns);
    }
}

/// The endpoint's key from the trapped registers; `None` when a pointer key cannot be read.
#[inline(always)]
fn read_key(regs: *mut pt_regs, ep: &SpanEndpoint) -> Option<u64> {
    // SAFETY: a uprobe's context is the trapped task's saved registers.
    let r = unsafe { &*regs };
    if ep.kind == SPAN_KEY_RET {
        // SAFETY: as below.
        return Some(unsafe { core::ptr::read_volatile(&r.rax) });
    }
    // Every register read at its own fixed offset: the verifier refuses a context load at a
    // computed one, which a plain `match` on the index compiles to.
    // SAFETY: volatile reads of fields of the saved registers (see above).
    let [a0, a1, a2, a3, a4, a5] = unsafe {
        [
            core::ptr::read_volatile(&r.rdi),
            core::ptr::read_volatile(&r.rsi),
            core::ptr::read_volatile(&r.rdx),
            core::ptr::read_volatile(&r.rcx),
            core::ptr::read_volatile(&r.r8),
            core::ptr::read_volatile(&r.r9),
        ]
    };
    let arg = match ep.arg {
        0 => a0,
        1 => a1,
        2 => a2,
        3 => a3,
        4 => a4,
        _ => a5,
    };
    if ep.kind != SPAN_KEY_PTR {
        return Some(arg);
    }
    let at = arg.wrapping_add(u64::from(ep.offset)) as *const u64;
    // SAFETY: the helper reads user memory safely; a bad address is an error, not a fault.
    unsafe { bpf_probe_read_user(at) }.ok()
}

#[inline(always)]
fn send_exemplar(key: &SpanKey, start: &SpanStart, duration_ns: u64) {
    let Some(mut entry) = SPAN_EXEMPLARS.reserve::<SpanExemplar>(0) else {
        return;
    };
    entry.write(SpanExemplar {
        span_id: key.span_id,
        start_tid: start.tid,
        end_tid: current_tid(),
        _pad: 0,
        key: key.key,
        start_ns: start.start_ns,
        duration_ns,
    });
    entry.submit(BPF_RB_NO_WAKEUP);
}
