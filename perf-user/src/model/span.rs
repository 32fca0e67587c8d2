//! Spans (`--span`): latency between two functions on any threads, matched by a key. A span's
//! numbers are a `FuncSample` (rows everywhere reuse the function code) plus what matching lost.

use serde::{Deserialize, Serialize};

use super::FuncSample;

/// What a span is, as the user defined it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpanInfo {
    pub id: u32,
    pub name: String,
    /// The FROM endpoint as resolved: `symbol(key)`.
    pub from: String,
    /// The TO endpoint as resolved.
    pub to: String,
}

/// Cumulative totals of one span since attach.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SpanSample {
    /// `row.id` is the span id; `count`/`total_ns`/`min_ns`/`max_ns`/`total_hist` are matched spans;
    /// `calls` is the FROM hits; attribution and the own-time histogram stay empty.
    pub row: FuncSample,
    /// FROM hits (starts stored).
    pub starts: u64,
    /// Starts stored over one still waiting under the same key, counted by the kernel: the part of
    /// `starts_lost` known exactly (the rest were evicted from the full map).
    pub starts_replaced: u64,
    /// TO hits that found no start under their key.
    pub ends_without_start: u64,
    /// Hits whose pointer key could not be read.
    pub key_faults: u64,
    /// Starts waiting for their end now (a gauge, not cumulative).
    pub pending: u64,
}

impl SpanSample {
    /// Starts that will never be matched: evicted from the bounded map or replaced by a later
    /// start under the same key (what neither ended nor still waits).
    pub fn starts_lost(&self) -> u64 {
        self.starts.saturating_sub(self.row.count).saturating_sub(self.pending)
    }

    /// `lost.span_unmatched`: lost starts plus ends without a start.
    pub fn unmatched(&self) -> u64 {
        self.starts_lost() + self.ends_without_start
    }

    pub fn since(&self, base: &SpanSample) -> SpanSample {
        SpanSample {
            row: self.row.since(&base.row),
            starts: self.starts.saturating_sub(base.starts),
            starts_replaced: self.starts_replaced.saturating_sub(base.starts_replaced),
            ends_without_start: self.ends_without_start.saturating_sub(base.ends_without_start),
            key_faults: self.key_faults.saturating_sub(base.key_faults),
            pending: self.pending,
        }
    }
}

/// What a span's exemplar adds to `Exemplar` (whose `tid`/`thread` are where the span ended).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpanEnds {
    /// The key both endpoints read.
    pub key: u64,
    pub start_tid: u32,
    pub start_thread: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unmatched_counts_lost_starts_and_lonely_ends() {
        let s = SpanSample {
            row: FuncSample { count: 60, ..FuncSample::default() },
            starts: 100,
            ends_without_start: 3,
            pending: 30,
            ..SpanSample::default()
        };
        assert_eq!(s.starts_lost(), 10);
        assert_eq!(s.unmatched(), 13);
        // Read a moment apart, ends may pass starts: never negative.
        let racing = SpanSample { row: FuncSample { count: 5, ..FuncSample::default() }, starts: 4, ..s };
        assert_eq!(racing.starts_lost(), 0);
    }
}
