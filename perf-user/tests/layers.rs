//! The layer rules of docs/ARCHITECTURE.md, checked on the source: the model knows no kernel, the
//! terminal UI and the output never touch BPF. A `use` that breaks one fails here, naming the line.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests panic with context")]

use std::path::{Path, PathBuf};

/// Paths that reach the kernel side: aya (and its object parser), the shared kernel types and
/// perf-user's own `bpf` layer.
const KERNEL_PATHS: &[&str] = &["aya", "aya_obj", "aya_log", "perf_ebpf_common", "bpf"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The kernel paths `source` names outside comments: `aya::…`, `perf_ebpf_common::…`,
/// `crate::bpf::…`, and inside `use crate::{ …, bpf::… }` groups too (any `bpf::` that is a whole
/// path segment), each with its line number.
fn kernel_paths(source: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (n, line) in source.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        for name in KERNEL_PATHS {
            let mut from = 0;
            while let Some(at) = code[from..].find(name).map(|i| i + from) {
                let before = code[..at].chars().next_back();
                let after = &code[at + name.len()..];
                // A whole segment: not the tail of `perf_ebpf_common` or `ebpf`, followed by `::`
                // (a path) or used as a crate name (`use aya;`, `extern crate`).
                let starts = before.is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
                let is_path = after.starts_with("::") || after.starts_with(';') || after.starts_with(" as ");
                if starts && is_path {
                    found.push((n + 1, line.trim().to_string()));
                }
                from = at + name.len();
            }
        }
    }
    found
}

#[test]
fn the_checker_sees_every_form_of_import() {
    let bad = "use aya::maps::Map;\nuse crate::{\n    bpf::loader,\n    model::Sample,\n};\nlet x = perf_ebpf_common::MAX_FUNCS;\n";
    assert_eq!(kernel_paths(bad).iter().map(|f| f.0).collect::<Vec<_>>(), [1, 3, 6]);
    let fine = "// aya::maps in a comment\nuse crate::model::ebpf_free;\nlet bpf = 1; let a = bpf + 1;\nlet s = \"x\"; // bpf::loader\n";
    assert!(kernel_paths(fine).is_empty(), "{:?}", kernel_paths(fine));
}

#[test]
fn model_tui_and_output_import_nothing_of_the_kernel() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut broken = Vec::new();
    for layer in ["model", "tui", "output"] {
        let mut files = Vec::new();
        rust_files(&src.join(layer), &mut files);
        assert!(!files.is_empty(), "no sources under src/{layer}");
        for file in files {
            // Test inputs may build kernel-shaped data (histograms in the kernel's bucket layout);
            // the rule is about what the layer does when perf-user runs.
            if file.file_name().is_some_and(|n| n == "tests.rs" || n == "fixtures.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&file).unwrap();
            let runtime = text.split("#[cfg(test)]").next().unwrap_or("");
            for (line, code) in kernel_paths(runtime) {
                broken.push(format!("{}:{line}: {code}", file.strip_prefix(&src).unwrap_or(&file).display()));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "model, tui and output must not reach the kernel side (docs/ARCHITECTURE.md):\n{}",
        broken.join("\n")
    );
}
