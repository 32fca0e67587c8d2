//! Spans (`--span NAME=FROM..TO`): the latency from one function to another on any thread, matched
//! by a key. The endpoint's whole description travels in its probe's attach cookie, so a hit needs no lookup to know what to do.

use core::mem::size_of;

/// Most spans one run may define.
pub const MAX_SPANS: u32 = 16;
/// Default capacity of `SPAN_STARTS` (starts waiting for their end, all spans together).
pub const SPAN_KEYS_DEFAULT: u32 = 16384;
/// `SPAN_EXEMPLARS` ring buffer size.
pub const SPAN_EXEMPLAR_RING_BYTES: u32 = 1 << 16;

pub mod names {
    pub const SPAN_STARTS: &str = "SPAN_STARTS";
    pub const SPAN_STATS: &str = "SPAN_STATS";
    pub const SPAN_HIST: &str = "SPAN_HIST";
    pub const SPAN_SLOW: &str = "SPAN_SLOW";
    pub const SPAN_EXEMPLARS: &str = "SPAN_EXEMPLARS";
    pub const PROG_SPAN_ENTRY: &str = "span_entry";
    pub const PROG_SPAN_RETURN: &str = "span_return";
}

/// Where an endpoint's key comes from.
pub const SPAN_KEY_ARG: u64 = 0;
/// The return value (`rax`), at a return endpoint.
pub const SPAN_KEY_RET: u64 = 1;
/// A u64 read from user memory at `arg + offset`.
pub const SPAN_KEY_PTR: u64 = 2;

/// One endpoint of a span, as its probe's attach cookie carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpanEndpoint {
    pub span_id: u32,
    /// 1: the span's end (TO); 0: its start (FROM).
    pub is_end: u32,
    /// `SPAN_KEY_ARG`, `SPAN_KEY_RET` or `SPAN_KEY_PTR`.
    pub kind: u64,
    /// Argument register index, 0..=5 (System V: rdi, rsi, rdx, rcx, r8, r9).
    pub arg: u32,
    /// Byte offset through the pointer argument (`SPAN_KEY_PTR` only).
    pub offset: u32,
}

// Cookie layout: bits 0..8 span id, 8 end flag, 9..11 key kind, 11..14 argument, 32..64 offset.
impl SpanEndpoint {
    #[inline(always)]
    pub const fn cookie(self) -> u64 {
        (self.span_id as u64 & 0xff)
            | ((self.is_end as u64 & 1) << 8)
            | ((self.kind & 3) << 9)
            | ((self.arg as u64 & 7) << 11)
            | ((self.offset as u64) << 32)
    }

    #[inline(always)]
    pub const fn from_cookie(c: u64) -> SpanEndpoint {
        SpanEndpoint {
            span_id: (c & 0xff) as u32,
            is_end: ((c >> 8) & 1) as u32,
            kind: (c >> 9) & 3,
            arg: ((c >> 11) & 7) as u32,
            offset: (c >> 32) as u32,
        }
    }
}

/// `SPAN_STARTS` key: which span, and the key both endpoints read.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq, Hash)]
pub struct SpanKey {
    pub span_id: u32,
    pub _pad: u32,
    pub key: u64,
}
const _: () = assert!(size_of::<SpanKey>() == 16);

/// `SPAN_STARTS` value: when and on which thread the span started.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct SpanStart {
    pub start_ns: u64,
    pub tid: u32,
    pub _pad: u32,
}
const _: () = assert!(size_of::<SpanStart>() == 16);

/// Per-CPU totals of one span (`SPAN_STATS[span_id]`).
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct SpanStats {
    /// FROM hits: starts stored (a start under a key already waiting replaces it).
    pub starts: u64,
    /// Matched ends: spans timed.
    pub count: u64,
    pub total_ns: u64,
    pub min_ns: u64,
    pub max_ns: u64,
    /// TO hits that found no start under their key.
    pub ends_without_start: u64,
    /// Pointer keys that could not be read (the pointer was bad): the hit is ignored.
    pub key_faults: u64,
    /// Starts stored over a start still waiting under the same key: the older one is lost, and
    /// counted here exactly (an LRU eviction is silent, so only these can be counted in the kernel).
    pub replaced: u64,
}
const _: () = assert!(size_of::<SpanStats>() == 64);

/// A slow span, sent through `SPAN_EXEMPLARS`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpanExemplar {
    pub span_id: u32,
    pub start_tid: u32,
    pub end_tid: u32,
    pub _pad: u32,
    pub key: u64,
    pub start_ns: u64,
    pub duration_ns: u64,
}
const _: () = assert!(size_of::<SpanExemplar>() == 40);

#[cfg(feature = "user")]
mod pod {
    use super::*;
    // SAFETY: #[repr(C)] integers only, padding written out: every bit pattern is valid.
    unsafe impl aya::Pod for SpanKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for SpanStart {}
    // SAFETY: as above.
    unsafe impl aya::Pod for SpanStats {}
    // SAFETY: as above.
    unsafe impl aya::Pod for SpanExemplar {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_cookie_round_trips() {
        for ep in [
            SpanEndpoint { span_id: 0, is_end: 0, kind: SPAN_KEY_ARG, arg: 0, offset: 0 },
            SpanEndpoint { span_id: 15, is_end: 1, kind: SPAN_KEY_PTR, arg: 5, offset: u32::MAX },
            SpanEndpoint { span_id: 3, is_end: 1, kind: SPAN_KEY_RET, arg: 0, offset: 16 },
        ] {
            assert_eq!(SpanEndpoint::from_cookie(ep.cookie()), ep);
        }
    }
}
