//! `cargo xtask`: everything a fresh machine needs, from toolchain bootstrap to the demo.
//! Each subcommand runs the ones it depends on, and each step is idempotent.

mod bench;
mod stress;
// perf-user's /proc reader, compiled here from its one source file: depending on perf-user
// would need the eBPF object that xtask itself builds.
#[path = "../../perf-user/src/target/proc.rs"]
#[allow(dead_code, reason = "xtask uses a few of the reader's functions")]
mod proc;

use std::{
    env,
    ffi::OsString,
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use target_app::stage::Stage;

/// The nightly the project is tested with; installed only if the machine has no `nightly` at all.
const PINNED_NIGHTLY: &str = "nightly-2026-05-20";
const BPF_LINKER_VERSION: &str = "0.13.0";
/// Environment variable naming a `rust-src` archive to unpack when rustup cannot download it.
const RUST_SRC_ARCHIVE_ENV: &str = "PERF_EBPF_RUST_SRC_ARCHIVE";
pub const BPF_TARGET: &str = "bpfel-unknown-none";

#[derive(Parser)]
#[command(about = "perf-ebpf project automation")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install what the eBPF build needs: nightly rust-src and bpf-linker (idempotent).
    Setup,
    /// Build the eBPF object (release, with BTF) that perf-user embeds.
    BuildEbpf,
    /// Clippy on the eBPF crate (nightly, bpfel target), warnings as errors: the host
    /// `cargo clippy` cannot build it.
    LintEbpf,
    /// setup + build-ebpf + all unit and integration tests (integration tests need root).
    Test {
        /// Extra arguments passed to `cargo test` (after `--`).
        #[arg(trailing_var_arg = true)]
        args: Vec<String>,
    },
    /// Build everything, start target-app and trace it live with perf-user.
    Demo {
        /// Messages per second target-app generates.
        #[arg(long, default_value_t = 10_000)]
        rate: u64,
        /// Stop after this many seconds (default: until you quit).
        #[arg(long)]
        duration: Option<f64>,
        /// Print refreshing text instead of the terminal UI.
        #[arg(long)]
        no_tui: bool,
    },
    /// Measure perf-user against the kernel's floor and bpftrace; writes docs/BENCHMARKS.md.
    Bench(bench::BenchArgs),
    /// Fuzz the readers of untrusted input (ELF symbols, JSON reports, the loader's cache and
    /// dynamic sections) for a bounded time each.
    Fuzz {
        /// Seconds per fuzz target.
        #[arg(long, default_value_t = 60)]
        secs: u64,
        /// Only this target (symbols, report_json, loader); default: all.
        #[arg(long)]
        only: Option<String>,
    },
    /// The attribution and interference tests RUNS times in a row with `stress-ng --cpu CPUS`
    /// alongside: the busy machine they must hold on (CI runs 2).
    StressTests {
        #[arg(long, default_value_t = 20)]
        runs: u32,
        /// stress-ng's CPU workers.
        #[arg(long, default_value_t = 2)]
        cpus: u32,
        /// The integration test files to loop (perf-user/tests/NAME.rs), comma-separated.
        #[arg(long, value_delimiter = ',', default_values_t = stress::DEFAULT_TESTS.map(String::from))]
        tests: Vec<String>,
    },
    /// The long soak: target-app at 20k msgs/s under full tracing (default 10 minutes; CI runs 20 s).
    Soak {
        /// Seconds of feeding.
        #[arg(long, default_value_t = 600)]
        secs: u64,
    },
}

fn main() {
    if let Err(e) = run(Cli::parse()) {
        eprintln!("xtask: error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Setup => setup().map(|_| ()),
        Cmd::BuildEbpf => build_ebpf(&setup()?),
        Cmd::LintEbpf => lint_ebpf(&setup()?),
        Cmd::Test { args } => test(&args),
        Cmd::Demo { rate, duration, no_tui } => demo(rate, duration, no_tui),
        Cmd::Bench(args) => bench::run(&args),
        Cmd::Soak { secs } => soak(secs),
        Cmd::StressTests { runs, cpus, tests } => stress::run(runs, cpus, &tests),
        Cmd::Fuzz { secs, only } => fuzz(secs, only.as_deref()),
    }
}

pub fn workspace_root() -> PathBuf {
    // xtask lives one level below the workspace root.
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

fn tools_dir() -> PathBuf {
    workspace_root().join(".tools")
}

fn cargo() -> OsString {
    env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// What `setup` established, for the build steps.
pub struct Toolchain {
    /// rustup toolchain name to pass as `+name`.
    pub nightly: String,
    /// Directory holding `bpf-linker`.
    pub bin_dir: PathBuf,
}

fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd.stderr(Stdio::inherit()).output().with_context(|| format!("cannot run {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed with {}", out.status);
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn status(cmd: &mut Command) -> Result<()> {
    let st = cmd.status().with_context(|| format!("cannot run {cmd:?}"))?;
    if !st.success() {
        bail!("{cmd:?} failed with {st}");
    }
    Ok(())
}

fn setup() -> Result<Toolchain> {
    let nightly = ensure_nightly()?;
    ensure_rust_src(&nightly)?;
    let bin_dir = ensure_bpf_linker(&nightly)?;
    Ok(Toolchain { nightly, bin_dir })
}

fn rustc_vv(toolchain: &str) -> Result<String> {
    output(Command::new("rustc").arg(format!("+{toolchain}")).arg("-vV"))
}

fn ensure_nightly() -> Result<String> {
    let Ok(list) = output(Command::new("rustup").args(["toolchain", "list"])) else {
        bail!("rustup not found: install rustup (https://rustup.rs) with a nightly toolchain");
    };
    let names: Vec<&str> = list.lines().filter_map(|l| l.split_whitespace().next()).collect();
    let chosen = if names.iter().any(|n| n.starts_with("nightly-x86_64") || *n == "nightly") {
        "nightly".to_string()
    } else if let Some(n) = names.iter().find(|n| n.starts_with(PINNED_NIGHTLY)) {
        (*n).to_string()
    } else {
        eprintln!("xtask: no nightly toolchain; installing {PINNED_NIGHTLY}");
        status(Command::new("rustup").args([
            "toolchain",
            "install",
            PINNED_NIGHTLY,
            "--profile",
            "minimal",
            "--component",
            "rust-src",
        ]))
        .context("installing the nightly toolchain (needs the rustup download server)")?;
        PINNED_NIGHTLY.to_string()
    };
    rustc_vv(&chosen).with_context(|| format!("toolchain {chosen} does not run"))?;
    Ok(chosen)
}

fn sysroot(toolchain: &str) -> Result<PathBuf> {
    let s = output(Command::new("rustc").arg(format!("+{toolchain}")).args(["--print", "sysroot"]))?;
    Ok(PathBuf::from(s.trim()))
}

fn ensure_rust_src(toolchain: &str) -> Result<()> {
    let rustlib = sysroot(toolchain)?.join("lib/rustlib");
    let has_src = || rustlib.join("src/rust/library/core/Cargo.toml").exists();
    if has_src() {
        return Ok(());
    }
    let added = Command::new("rustup")
        .args(["component", "add", "rust-src", "--toolchain", toolchain])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if added && has_src() {
        return Ok(());
    }
    let Some(archive) = env::var_os(RUST_SRC_ARCHIVE_ENV) else {
        bail!(
            "rust-src for {toolchain} is missing and rustup could not download it; \
             set {RUST_SRC_ARCHIVE_ENV} to a rust-src .tar.xz for this exact nightly"
        );
    };
    let commit = rustc_vv(toolchain)?
        .lines()
        .find_map(|l| l.strip_prefix("commit-hash: ").map(|h| h.chars().take(9).collect::<String>()))
        .unwrap_or_default();
    if !archive.to_string_lossy().contains(&commit) {
        eprintln!("xtask: warning: {archive:?} does not name commit {commit}; unpacking anyway");
    }
    status(Command::new("tar").arg("-xJf").arg(&archive).arg("-C").arg(&rustlib))
        .with_context(|| format!("unpacking {archive:?}"))?;
    if !has_src() {
        bail!("{archive:?} did not contain rust-src (expected {})", rustlib.join("src").display());
    }
    Ok(())
}

fn llvm_major(toolchain: &str) -> Result<u32> {
    let vv = rustc_vv(toolchain)?;
    let ver = vv
        .lines()
        .find_map(|l| l.strip_prefix("LLVM version: "))
        .context("rustc -vV does not print an LLVM version")?;
    ver.split('.').next().and_then(|m| m.trim().parse().ok()).context("unparseable LLVM version")
}

fn ensure_bpf_linker(toolchain: &str) -> Result<PathBuf> {
    let tools = tools_dir();
    let bin_dir = tools.join("bin");
    let linker = bin_dir.join("bpf-linker");
    let want = format!("bpf-linker {BPF_LINKER_VERSION}");
    let have = Command::new(&linker).arg("--version").output().ok().filter(|o| o.status.success());
    if have.is_some_and(|o| String::from_utf8_lossy(&o.stdout).trim() == want) {
        return Ok(bin_dir);
    }
    // bpf-linker links against LLVM; the only LLVM of exactly the nightly's version on the machine
    // is the nightly's own libLLVM, which its build script finds under $LLVM_PREFIX/lib.
    let major = llvm_major(toolchain)?;
    let lib = sysroot(toolchain)?.join("lib");
    let so = fs::read_dir(&lib)
        .with_context(|| format!("reading {}", lib.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("libLLVM.so."))
        .with_context(|| format!("no libLLVM.so.* in {} (is this a rustup nightly?)", lib.display()))?;
    let prefix = tools.join(format!("llvm-{major}"));
    let prefix_lib = prefix.join("lib");
    fs::create_dir_all(&prefix_lib)?;
    for name in ["libLLVM.so", so.as_str()] {
        let link = prefix_lib.join(name);
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink(lib.join(&so), &link).with_context(|| format!("linking {}", link.display()))?;
    }
    eprintln!("xtask: building bpf-linker {BPF_LINKER_VERSION} against LLVM {major} (about a minute)");
    status(
        Command::new(cargo())
            .args(["install", "--locked", "--force"])
            .arg(format!("bpf-linker@{BPF_LINKER_VERSION}"))
            .args(["--no-default-features", "--features"])
            .arg(format!("llvm-{major}"))
            .arg("--root")
            .arg(&tools)
            .env("LLVM_PREFIX", &prefix)
            // The install must not inherit the workspace's host rustflags or target dir.
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("CARGO_TARGET_DIR")
            .current_dir(env::temp_dir()),
    )
    .context("building bpf-linker from crates.io")?;
    Ok(bin_dir)
}

/// Where `build-ebpf` puts the object; perf-user's build script looks for it here.
pub fn ebpf_object() -> PathBuf {
    workspace_root().join("target/ebpf").join(BPF_TARGET).join("release/perf-ebpf")
}

/// `cargo SUBCOMMAND -p perf-ebpf` with nightly for the bpfel target, bpf-linker on `PATH`.
fn ebpf_cargo(tc: &Toolchain, subcommand: &str) -> Result<Command> {
    let root = workspace_root();
    let path = env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![tc.bin_dir.clone()];
    paths.extend(env::split_paths(&path));
    let mut cmd = Command::new("rustup");
    cmd.args(["run", &tc.nightly, "cargo", subcommand, "--release", "-p", "perf-ebpf"])
        .args(["--target", BPF_TARGET, "-Z", "build-std=core"])
        .arg("--target-dir")
        .arg(root.join("target/ebpf"))
        .env("PATH", env::join_paths(paths)?)
        .env("CARGO_ENCODED_RUSTFLAGS", "-Cdebuginfo=2\x1f-Clink-arg=--btf")
        .env_remove("RUSTFLAGS")
        .env_remove("RUSTC")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("CARGO")
        .current_dir(&root);
    Ok(cmd)
}

fn lint_ebpf(tc: &Toolchain) -> Result<()> {
    status(Command::new("rustup").args(["component", "add", "clippy", "--toolchain", &tc.nightly]))
        .context("installing clippy for the nightly toolchain")?;
    status(ebpf_cargo(tc, "clippy")?.args(["--", "-D", "warnings"])).context("clippy on the eBPF crate")
}

fn build_ebpf(tc: &Toolchain) -> Result<()> {
    status(&mut ebpf_cargo(tc, "build")?).context("building the eBPF object")?;
    let obj = ebpf_object();
    if !obj.exists() {
        bail!("the eBPF build succeeded but {} is missing", obj.display());
    }
    eprintln!("xtask: eBPF object at {}", obj.display());
    Ok(())
}

fn build_host_release() -> Result<()> {
    status(
        Command::new(cargo())
            .args(["build", "--release", "-p", "perf-user", "-p", "target-app", "-p", "bench-target"])
            .current_dir(workspace_root()),
    )
}

fn test(extra: &[String]) -> Result<()> {
    let tc = setup()?;
    build_ebpf(&tc)?;
    // The integration tests run the release binaries (traced code should look like production),
    // and a panic=unwind target-app for the unwind-safety test.
    build_host_release()?;
    status(
        Command::new(cargo())
            .args(["build", "--profile", "release-unwind", "-p", "target-app"])
            .current_dir(workspace_root()),
    )?;
    status(
        Command::new(cargo())
            .args(["test", "--workspace", "--exclude", "perf-ebpf", "--release"])
            .args(extra)
            .current_dir(workspace_root()),
    )
    .context("tests failed")
}

const CARGO_FUZZ_VERSION: &str = "0.13.2";
/// `loader` is `ld.so.cache` and ELF dynamic sections in one target (`perf-user run`'s readers),
/// so CI's fuzzing time grows by one run, not two.
const FUZZ_TARGETS: [&str; 3] = ["symbols", "report_json", "loader"];

fn fuzz(secs: u64, only: Option<&str>) -> Result<()> {
    if let Some(t) = only
        && !FUZZ_TARGETS.contains(&t)
    {
        bail!("no fuzz target {t}; there are {}", FUZZ_TARGETS.join(", "));
    }
    let tc = setup()?;
    // perf-user embeds the eBPF object, so the fuzz build needs it too.
    build_ebpf(&tc)?;
    let tools = tools_dir();
    let cargo_fuzz = tools.join("bin/cargo-fuzz");
    let have = Command::new(&cargo_fuzz).arg("--version").output().ok().filter(|o| o.status.success());
    if !have.is_some_and(|o| String::from_utf8_lossy(&o.stdout).contains(CARGO_FUZZ_VERSION)) {
        eprintln!("xtask: installing cargo-fuzz {CARGO_FUZZ_VERSION}");
        status(
            Command::new(cargo())
                .args(["install", "--locked", "--force"])
                .arg(format!("cargo-fuzz@{CARGO_FUZZ_VERSION}"))
                .arg("--root")
                .arg(&tools)
                .env_remove("RUSTFLAGS")
                .env_remove("CARGO_TARGET_DIR")
                .current_dir(env::temp_dir()),
        )
        .context("installing cargo-fuzz from crates.io")?;
    }
    let path = env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![tools.join("bin")];
    paths.extend(env::split_paths(&path));
    let corpus_root = workspace_root().join("target/fuzz-corpus");
    for target in FUZZ_TARGETS.into_iter().filter(|t| only.is_none_or(|o| o == *t)) {
        // A fresh corpus dir under target/: nothing fuzzed is ever committed.
        let corpus = corpus_root.join(target);
        fs::create_dir_all(&corpus)?;
        eprintln!("xtask: fuzzing {target} for {secs} s");
        status(
            Command::new("rustup")
                .args(["run", &tc.nightly, "cargo", "fuzz", "run", target])
                .arg(&corpus)
                .arg("--")
                .arg(format!("-max_total_time={secs}"))
                .arg("-rss_limit_mb=4096")
                .env("PATH", env::join_paths(&paths)?)
                .env_remove("RUSTFLAGS")
                .env_remove("CARGO")
                .env_remove("RUSTC")
                .current_dir(workspace_root().join("perf-user")),
        )
        .with_context(|| format!("fuzz target {target} found a crash (see perf-user/fuzz/artifacts/{target})"))?;
    }
    Ok(())
}

fn soak(secs: u64) -> Result<()> {
    let tc = setup()?;
    build_ebpf(&tc)?;
    build_host_release()?;
    status(
        Command::new(cargo())
            .args(["test", "--release", "-p", "perf-user", "--test", "soak", "--", "--nocapture"])
            .env("PERF_EBPF_SOAK_SECS", secs.to_string())
            .current_dir(workspace_root()),
    )
    .context("soak failed")
}

fn demo(rate: u64, duration: Option<f64>, no_tui: bool) -> Result<()> {
    let tc = setup()?;
    build_ebpf(&tc)?;
    build_host_release()?;
    let bin = workspace_root().join("target/release");
    let mut app = Command::new(bin.join("target-app"));
    // A few known causes of slowness, so the attribution has something to show: a sleeping risk
    // check (off-CPU), a spinning signal (own CPU), a chatty gateway (syscalls), journal fsyncs.
    app.args(["--rate", &rate.to_string()])
        .args(["--inject", "risk_check=sleep:200us:every:500"])
        .args(["--inject", "signal=spin:30us:every:2000"])
        .args(["--inject", "gateway=syscalls:2"])
        .args(["--inject", "journal=fsync:every:200"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(d) = duration {
        app.args(["--duration", &(d + 1.0).to_string()]);
    }
    let mut app = app.spawn().context("starting target-app")?;
    let pid = app.id();
    eprintln!("xtask: target-app running as pid {pid}");
    let mut tracer = Command::new(bin.join("perf-user"));
    tracer.args(["attach", "--pid", &pid.to_string(), "--syscalls", "--slow", "auto"]);
    // Every pipeline stage: the engine's caller and its callees, and the I/O stages.
    for f in Stage::ALL.map(Stage::symbol) {
        tracer.args(["--func", f]);
    }
    if let Some(d) = duration {
        tracer.args(["--duration", &d.to_string()]);
    }
    if no_tui {
        tracer.arg("--no-tui");
    }
    let result = status(&mut tracer);
    let _ = app.kill();
    let _ = app.wait();
    result
}
