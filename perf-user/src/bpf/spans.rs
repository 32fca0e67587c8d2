//! Reads the span maps (`--span`) into model types: per-span totals and histograms, how many
//! starts wait for their end, and the slow spans the kernel sent as exemplars.

use aya::maps::{Array, HashMap, MapData, PerCpuArray, RingBuf};
use perf_ebpf_common::{
    Hist,
    spans::{SpanExemplar, SpanKey, SpanStart, SpanStats, names},
};

use crate::{
    bpf::{
        collect::merge_hist,
        loader::{LoadError, Tracer},
    },
    model::{Exemplar, FuncSample, SpanEnds, SpanSample},
    target::proc,
};

pub struct SpanReader {
    stats: PerCpuArray<MapData, SpanStats>,
    hist: PerCpuArray<MapData, Hist>,
    starts: HashMap<MapData, SpanKey, SpanStart>,
    slow: Array<MapData, u64>,
    exemplars: RingBuf<MapData>,
    /// Span names by id.
    names: Vec<String>,
    pid: u32,
    /// The start map's size (`--span-keys`): it never holds more.
    capacity: u64,
    /// Last histogram read per span, reused while its count has not moved.
    cache: Vec<(u64, crate::model::BucketHist)>,
    /// Per span, the most starts known lost so far (see `sample`): never goes down.
    lost_floor: Vec<u64>,
}

fn take<T>(tracer: &mut Tracer, name: &str) -> Result<T, LoadError>
where
    T: TryFrom<aya::maps::Map, Error = aya::maps::MapError>,
{
    let map = tracer.ebpf.take_map(name).ok_or_else(|| LoadError::MissingMap { name: name.to_owned() })?;
    T::try_from(map).map_err(|source| LoadError::Map { name: name.to_owned(), source })
}

fn sum(v: &[SpanStats]) -> SpanStats {
    let mut s = SpanStats::default();
    for c in v {
        if c.count > 0 {
            s.min_ns = if s.count == 0 { c.min_ns } else { s.min_ns.min(c.min_ns) };
        }
        s.starts += c.starts;
        s.count += c.count;
        s.total_ns += c.total_ns;
        s.max_ns = s.max_ns.max(c.max_ns);
        s.ends_without_start += c.ends_without_start;
        s.key_faults += c.key_faults;
        s.replaced += c.replaced;
    }
    s
}

impl SpanReader {
    /// Takes the span maps out of the loaded object; `names[id]` names the spans.
    pub fn new(tracer: &mut Tracer, names: Vec<String>, pid: u32, capacity: u32) -> Result<SpanReader, LoadError> {
        Ok(SpanReader {
            stats: take(tracer, names::SPAN_STATS)?,
            hist: take(tracer, names::SPAN_HIST)?,
            starts: take(tracer, names::SPAN_STARTS)?,
            slow: take(tracer, names::SPAN_SLOW)?,
            exemplars: take(tracer, names::SPAN_EXEMPLARS)?,
            cache: vec![(u64::MAX, Default::default()); names.len()],
            lost_floor: vec![0; names.len()],
            names,
            pid,
            capacity: u64::from(capacity.max(1)),
        })
    }

    /// Every span's cumulative totals.
    ///
    /// A start that replaces one still waiting under its key is counted by the kernel, but an LRU
    /// eviction is silent: so lost starts are what is neither matched nor waiting, `starts - count - pending`, from reads at different moments
    /// while the kernel goes on. Starts are read before the walk of waiting keys and matches after
    /// it, so the estimate never exceeds the true lost count at the walk's end (a start after the
    /// first read is in neither `starts` nor, unless still waiting, anything subtracted; a match
    /// during the walk is subtracted once as matched). The largest such lower bound so far is
    /// kept, and never below the kernel's count of replaced starts: the lost count never goes down,
    /// and `pending` is what the identity leaves (at most what the walk found).
    pub fn sample(&mut self) -> Vec<SpanSample> {
        let starts_before: Vec<u64> = (0..self.names.len() as u32)
            .map(|id| self.stats.get(&id, 0).map(|v| sum(&v).starts).unwrap_or_default())
            .collect();
        let pending = self.pending();
        let mut out = Vec::with_capacity(self.names.len());
        for id in 0..self.names.len() as u32 {
            let mut s = self.stats.get(&id, 0).map(|v| sum(&v)).unwrap_or_default();
            let before = starts_before[id as usize];
            let walked = pending.get(id as usize).copied().unwrap_or(0);
            let floor = &mut self.lost_floor[id as usize];
            // Replacements are counted by the kernel, exactly: lost starts are never fewer.
            *floor = (*floor).max(before.saturating_sub(s.count).saturating_sub(walked)).max(s.replaced);
            // Every match and every lost start was a start: never fewer starts than those.
            s.starts = before.max(s.count + *floor);
            let waiting = s.starts - s.count - *floor;
            let cached = &mut self.cache[id as usize];
            if cached.0 != s.count {
                *cached = (s.count, self.hist.get(&id, 0).map(|v| merge_hist(&v)).unwrap_or_default());
            }
            out.push(SpanSample {
                row: FuncSample {
                    id,
                    calls: s.starts,
                    count: s.count,
                    total_ns: s.total_ns,
                    min_ns: s.min_ns,
                    max_ns: s.max_ns,
                    total_hist: cached.1.clone(),
                    ..FuncSample::default()
                },
                starts: s.starts,
                starts_replaced: s.replaced,
                ends_without_start: s.ends_without_start,
                key_faults: s.key_faults,
                pending: waiting,
            });
        }
        out
    }

    /// Starts waiting now, per span: one walk over the bounded map's keys. The kernel changes the
    /// map during the walk, and a walk whose current key was deleted starts over from the first
    /// one, so keys are counted once each and the walk is bounded; no count exceeds the map's size.
    fn pending(&self) -> Vec<u64> {
        let mut per_span = vec![0u64; self.names.len()];
        let mut seen = std::collections::HashSet::new();
        let bound = usize::try_from(self.capacity.saturating_mul(4)).unwrap_or(usize::MAX);
        for k in self.starts.keys().take(bound).filter_map(Result::ok) {
            if !seen.insert((k.span_id, k.key)) {
                continue;
            }
            if let Some(n) = per_span.get_mut(k.span_id as usize) {
                *n += 1;
            }
        }
        for n in &mut per_span {
            *n = (*n).min(self.capacity);
        }
        per_span
    }

    /// Sets a span's exemplar threshold (0: none).
    pub fn set_slow(&mut self, span_id: u32, slow_ns: u64) -> Result<(), LoadError> {
        self.slow
            .set(span_id, slow_ns, 0)
            .map_err(|source| LoadError::Map { name: names::SPAN_SLOW.to_owned(), source })
    }

    /// The slow spans the kernel sent since the last drain, as exemplars named by their span.
    pub fn drain_exemplars(&mut self) -> Vec<Exemplar> {
        let mut out = Vec::new();
        while let Some(item) = self.exemplars.next() {
            if item.len() < size_of::<SpanExemplar>() {
                continue;
            }
            // SAFETY: the kernel wrote a whole `SpanExemplar` (size checked above), plain data.
            let e: SpanExemplar = unsafe { std::ptr::read_unaligned(item.as_ptr().cast()) };
            out.push(Exemplar {
                // Not a function: span exemplars are told apart by `span`, matched to their row by name.
                fn_id: u32::MAX,
                symbol: self.names.get(e.span_id as usize).cloned().unwrap_or_default(),
                tid: e.end_tid,
                thread: proc::thread_comm(self.pid, e.end_tid),
                start_ns: e.start_ns,
                duration_ns: e.duration_ns,
                span: Some(SpanEnds {
                    key: e.key,
                    start_tid: e.start_tid,
                    start_thread: proc::thread_comm(self.pid, e.start_tid),
                }),
                ..Exemplar::default()
            });
        }
        out
    }
}
