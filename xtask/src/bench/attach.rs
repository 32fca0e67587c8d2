//! Section 5: perf-user start to `attached N probes` for N of bench-target's 1,000 functions, and
//! SIGINT to exit (the detach).

use std::time::Duration;

use super::{
    readings::median_of,
    results::{Attach, AttachRow},
    rounds::{Config, Ctx, repeated, strings},
    run::Outcome,
    tracer::Tracer,
};

const ATTACH_COUNTS: [u32; 4] = [1, 10, 100, 1000];
/// The kernel unregisters uprobes one RCU grace period at a time (~0.1 s each on a busy VM): 100
/// functions take ~20 s to detach, 1,000 minutes. Runs wait this long, then move on.
const DETACH_CAP: Duration = Duration::from_secs(60);
/// The 1,000-function run comes last and is not repeated; its detach finishes in the background.
const DETACH_CAP_1000: Duration = Duration::from_secs(10);

/// One row per function count. The 1,000-function run leaves the kernel detaching for minutes,
/// so --quick skips it (and the 100-function run, whose detach alone takes ~20 s).
pub fn measure(ctx: &mut Ctx, quick: bool) -> Vec<AttachRow> {
    ATTACH_COUNTS
        .iter()
        .map(|&n| match n {
            100.. if quick => AttachRow { functions: n, result: Err("skipped with --quick".into()) },
            _ => attach_row(ctx, n),
        })
        .collect()
}

fn attach_row(ctx: &mut Ctx, n: u32) -> AttachRow {
    // f0000 … f0999: "f0000" is one function, "f000" ten, "f00" a hundred, "f" all. The trailing
    // `*` also takes in ThinLTO's `.llvm.NNN` suffix, which these symbols may carry.
    let glob = match n {
        1 => "bench_target::many::f0000*",
        10 => "bench_target::many::f000*",
        100 => "bench_target::many::f00*",
        _ => "bench_target::many::f*",
    };
    let mut config = Config::new(
        format!("attach {n} function{}", if n == 1 { "" } else { "s" }),
        strings(&["calls", "--func", "many"]),
        Ok(Tracer::PerfUser(strings(&["--func", glob]))),
    );
    config.go = false;
    config.detach_cap = Some(if n >= 1000 { DETACH_CAP_1000 } else { DETACH_CAP });
    // Detaching 100 functions takes ~20 s: three runs are enough for attach times.
    let reps = if n >= 1000 { 1 } else { ctx.plan.reps.min(3) };
    let out = repeated(ctx, &[config], reps).remove(0);
    let result = attach_of(&out);
    if let Ok(a) = &result
        && a.probes != 4 + u64::from(n)
    {
        ctx.notes.push(format!(
            "attach {n}: {} probes, expected {} (4 tracepoints + one session probe per function)",
            a.probes,
            4 + n
        ));
    }
    AttachRow { functions: n, result }
}

/// The medians of the runs that attached.
fn attach_of(out: &[Result<Outcome, String>]) -> Result<Attach, String> {
    let probes = out.iter().flatten().find_map(|o| o.probes).ok_or("no `attached N probes` line")?;
    let detach_over_s = out.iter().flatten().find_map(|o| o.detach_over_s);
    Ok(Attach {
        probes,
        attach_s: median_of(out, |o| o.attach_s)?,
        detach_s: if detach_over_s.is_some() { None } else { median_of(out, |o| o.detach_s).ok() },
        detach_over_s,
        runs: out.iter().flatten().count(),
    })
}
