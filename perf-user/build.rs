//! Finds the eBPF object built by `cargo xtask build-ebpf` so main.rs can embed it; without it the
//! crate stops with one line naming the command to run instead of an include_bytes! error.
use std::{env, path::PathBuf};

fn main() {
    println!("cargo::rustc-check-cfg=cfg(perf_ebpf_object_missing)");
    println!("cargo::rerun-if-env-changed=PERF_EBPF_OBJECT");
    let path = match env::var_os("PERF_EBPF_OBJECT") {
        Some(p) => PathBuf::from(p),
        None => {
            let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
            manifest.join("../target/ebpf/bpfel-unknown-none/release/perf-ebpf")
        }
    };
    println!("cargo::rerun-if-changed={}", path.display());
    if path.is_file() {
        println!("cargo::rustc-env=PERF_EBPF_OBJECT={}", path.display());
    } else {
        println!("cargo::rustc-cfg=perf_ebpf_object_missing");
    }
}
