//! `cargo xtask bench`: measures perf-user against the kernel's floor and bpftrace in one run.
//! Writes the table to stdout and docs/BENCHMARKS.md.

use anyhow::{Result, bail};

#[derive(clap::Args)]
pub struct BenchArgs {}

pub fn run(_args: &BenchArgs) -> Result<()> {
    bail!("benchmarks are not written yet")
}
