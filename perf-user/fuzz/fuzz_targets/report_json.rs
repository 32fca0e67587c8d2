//! Arbitrary bytes given to `report`/`diff`: a clear error or a report, never a panic; a report that
//! parses must also survive every output format and a diff against itself.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use perf_user::{output::diff, output::export};

fuzz_target!(|data: &[u8]| {
    if let Ok(report) = export::parse_report(Path::new("fuzz.json"), data) {
        for format in [export::Format::Text, export::Format::Json, export::Format::Csv, export::Format::Markdown] {
            let _ = export::serialize(&report, format);
        }
        let t = diff::Thresholds { warn_pct: 5.0, fail_pct: 20.0 };
        let _ = diff::compare(&report, "a", &report, "b", diff::Metric::P99, t);
    }
});
