//! The span endpoint probes (`--span`): one perf-event uprobe or uretprobe per endpoint, its
//! attach cookie saying which span, which end and where the key is. A function that is also in
//! `--func` simply carries both probes.

use std::{num::NonZeroU32, path::PathBuf};

use aya::{
    Ebpf,
    programs::{
        UProbe,
        uprobe::{UProbeAttachLocation, UProbeAttachPoint, UProbeScope},
    },
};
use perf_ebpf_common::spans::names;

use super::{LoadError, attach_error, program};

/// One endpoint to probe.
#[derive(Clone, Debug)]
pub struct SpanProbe {
    /// `SpanEndpoint::cookie()`: span id, end, key.
    pub cookie: u64,
    /// The ELF object holding the function, and its entry's offset there.
    pub object: PathBuf,
    pub file_offset: u64,
    /// True: a uretprobe (the key is the return value).
    pub at_return: bool,
    /// For error messages: `span NAME FROM symbol`.
    pub what: String,
}

/// Loads the span programs and attaches every endpoint; returns how many probes. Nothing is
/// loaded without spans, so a run without `--span` pays nothing for them.
pub(super) fn attach_spans(ebpf: &mut Ebpf, pid: u32, probes: &[SpanProbe]) -> Result<usize, LoadError> {
    if probes.is_empty() {
        return Ok(0);
    }
    let pid =
        NonZeroU32::new(pid).ok_or(LoadError::Unsupported { what: "--span", needs: "a pid other than 0".into() })?;
    for name in [names::PROG_SPAN_ENTRY, names::PROG_SPAN_RETURN] {
        let prog: &mut UProbe = program(ebpf, name)?;
        prog.load().map_err(|e| attach_error(name, e))?;
    }
    // Ends first: a span whose start is probed before its end exists only as an unmatched start.
    let mut ordered: Vec<&SpanProbe> = probes.iter().collect();
    ordered.sort_by_key(|p| perf_ebpf_common::spans::SpanEndpoint::from_cookie(p.cookie).is_end == 0);
    for p in ordered {
        let name = if p.at_return { names::PROG_SPAN_RETURN } else { names::PROG_SPAN_ENTRY };
        let prog: &mut UProbe = program(ebpf, name)?;
        let point =
            UProbeAttachPoint { location: UProbeAttachLocation::AbsoluteOffset(p.file_offset), cookie: Some(p.cookie) };
        // The link lives as long as the program, which lives as long as the tracer's object.
        prog.attach(point, &p.object, UProbeScope::OneProcess(pid)).map_err(|e| attach_error(p.what.clone(), e))?;
    }
    Ok(probes.len())
}
