//! Tick-to-trade: every market-data message carries its sequence number to the order it causes,
//! through functions a tracer can key a span on (`perf-user attach --span`), and target-app times
//! feed receive → gateway send itself as the ground truth.
//!
//! The three hooks are `extern "C"` so their arguments sit in the System V registers a span key
//! names (`arg0` …), and `#[inline(never)]` so they exist to be probed.

use serde::Serialize;

use crate::latency::{LatencyRecord, LatencySummary};

/// What the gateway thread hands to `order_sent`: the order and the message that caused it.
/// `#[repr(C)]`: `md_seq` is at byte 8, so a span keys on it as `order_sent(arg0+8)`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderTicket {
    pub order_id: u64,
    /// The sequence number of the market-data message this order answers.
    pub md_seq: u64,
}

/// Byte offset of `OrderTicket::md_seq`, for span keys.
pub const TICKET_SEQ_OFFSET: usize = std::mem::offset_of!(OrderTicket, md_seq);

/// The demangled names of the hooks, for tracers and tests.
pub const FEED_RECEIVE: &str = "target_app::tick::feed_receive";
pub const NEXT_SEQ: &str = "target_app::tick::next_seq";
pub const ORDER_SENT: &str = "target_app::tick::order_sent";

/// CLOCK_MONOTONIC in ns: the clock the kernel's `bpf_ktime_get_ns` reads.
pub fn now_ns() -> u64 {
    // SAFETY: an all-zero timespec is valid, and clock_gettime only writes it.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to `ts`; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64).wrapping_mul(1_000_000_000).wrapping_add(ts.tv_nsec as u64)
}

/// The feed hands out the next sequence number (a key as a return value: `next_seq(ret)`).
#[inline(never)]
pub extern "C" fn next_seq(counter: &mut u64) -> u64 {
    *counter += 1;
    std::hint::black_box(*counter)
}

/// A market-data message arrives at the feed (the key as an argument: `feed_receive(arg0)`);
/// returns when, the start of its tick-to-trade.
#[inline(never)]
pub extern "C" fn feed_receive(seq: u64) -> u64 {
    std::hint::black_box(seq);
    now_ns()
}

/// The gateway has sent the order a message caused (the key through a pointer:
/// `order_sent(arg0+8)`); returns when, the end of that message's tick-to-trade.
#[inline(never)]
pub extern "C" fn order_sent(ticket: &OrderTicket) -> u64 {
    std::hint::black_box(ticket.md_seq);
    now_ns()
}

/// A message's sequence number and arrival time, carried with it to its order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    pub seq: u64,
    pub received_ns: u64,
}

/// The gateway thread's record of tick-to-trade latencies.
#[derive(Debug, Clone)]
pub struct TickStats(LatencyRecord);

impl TickStats {
    pub fn new() -> Result<TickStats, hdrhistogram::CreationError> {
        LatencyRecord::new().map(TickStats)
    }

    pub fn record(&mut self, ns: u64) {
        self.0.record(ns.max(1));
    }

    pub fn summary(&self) -> TickToTrade {
        let t = TickToTrade { from: FEED_RECEIVE, to: ORDER_SENT, ..TickToTrade::default() };
        if self.0.count() == 0 {
            return t;
        }
        let buckets = self
            .0
            .histogram()
            .iter_log(1024, 2.0)
            .filter(|v| v.count_since_last_iteration() > 0)
            .map(|v| Bucket { le_ns: v.value_iterated_to(), count: v.count_since_last_iteration() })
            .collect();
        TickToTrade { latency: self.0.summary(), buckets, ..t }
    }
}

/// One bucket of the truth's tick-to-trade histogram (powers of two from 1 µs): `count` values
/// above the previous bucket's `le_ns`, up to this one's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Bucket {
    pub le_ns: u64,
    pub count: u64,
}

/// Tick-to-trade in the truth file: from `feed_receive` to `order_sent`, one per order sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TickToTrade {
    pub from: &'static str,
    pub to: &'static str,
    /// `count` (orders sent: spans, one per order), `min_ns` … `max_ns`, `sum_ns`, inline.
    #[serde(flatten)]
    pub latency: LatencySummary,
    pub buckets: Vec<Bucket>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sequence_number_sits_where_span_keys_say() {
        assert_eq!(TICKET_SEQ_OFFSET, 8);
        let mut seq = 41;
        assert_eq!(next_seq(&mut seq), 42);
        let (a, b) = (feed_receive(42), order_sent(&OrderTicket { order_id: 1, md_seq: 42 }));
        assert!(b >= a);
    }

    #[test]
    fn summary_counts_and_buckets_add_up() {
        let mut s = TickStats::new().unwrap_or_else(|e| panic!("{e}"));
        for ns in [5_000, 10_000, 20_000, 1_000_000] {
            s.record(ns);
        }
        let t = s.summary();
        assert_eq!((t.latency.count, t.latency.min_ns, t.latency.max_ns), (4, 5_000, 1_000_000));
        assert_eq!(t.buckets.iter().map(|b| b.count).sum::<u64>(), 4);
        assert_eq!(TickStats::new().map(|s| s.summary().latency.count).ok(), Some(0));
    }
}
