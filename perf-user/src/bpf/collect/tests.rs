use aya::maps::PerCpuValues;

use super::*;
use crate::{
    bpf::calibrate::perf_user_calibration_target,
    bpf::loader::{AttachMode, LoadSpec, Probe, ProbeMode},
    target::symbols::SymbolTable,
};

/// The batch read sees what key-by-key reads see, on real maps: this process traces its own
/// calibration function and its own syscalls.
#[test]
fn batch_reads_equal_key_by_key_reads() {
    if !crate::bpf::loader::has_bpf_privileges() {
        assert!(std::env::var_os("CI").is_none(), "CI runs as root: BPF must be available");
        eprintln!("skipping batch_reads_equal_key_by_key_reads: no BPF privileges");
        return;
    }
    let exe = &crate::target::proc::exe_link(std::process::id());
    let target = SymbolTable::read(exe).unwrap().select(&["perf_user_calibration_target".to_string()]).unwrap();
    let spec = LoadSpec {
        pid: std::process::id(),
        exe: exe.to_path_buf(),
        probes: vec![Probe {
            fn_id: 0,
            file_offset: target[0].file_offset,
            symbol: target[0].name.clone(),
            object: None,
        }],
        mode: ProbeMode::Full,
        tracepoints: true,
        // The syscall table (`--syscalls`): every syscall of the target, these getppid calls too.
        config: common::Config { syscall_table: 1, ..common::Config::default() },
        max_funcs: 1,
        capacity: 1,
        attach: AttachMode::Auto,
        spans: Vec::new(),
        span_keys: perf_ebpf_common::spans::SPAN_KEYS_DEFAULT,
    };
    let mut tracer = Tracer::load(&spec).unwrap();
    let c = Collector::new(&mut tracer, vec![target[0].name.clone()], Vec::new()).unwrap();
    for i in 0..1000 {
        perf_user_calibration_target(i);
    }
    for _ in 0..100 {
        // SAFETY: getppid(2) has no arguments and cannot fail.
        unsafe { libc::getppid() };
    }
    let funcs = percpu_array_values::<FuncStats>(c.func_stats.map(), 1, c.cpus).expect("batch lookup");
    let one_by_one = c.func_stats.get(&0, 0).unwrap();
    assert_eq!(funcs[0], one_by_one.to_vec());
    assert_eq!(sum_stats(&funcs[0]).count, 1000);
    let sys =
        percpu_array_values::<SyscallStats>(c.syscall_stats.map(), common::MAX_SYSCALLS, c.cpus).expect("batch lookup");
    assert_eq!(sys.len(), common::MAX_SYSCALLS as usize);
    let getppid: u64 = sys[libc::SYS_getppid as usize].iter().map(|s| s.count).sum();
    assert!(getppid >= 100, "{getppid} getppid calls seen");
}

#[test]
fn merge_hist_sums_cpus_and_keeps_bounds() {
    let mut a = Hist { buckets: [0; common::HIST_BUCKETS] };
    let mut b = a;
    let i = common::hist_bucket(1000) as usize;
    a.buckets[i] = 3;
    b.buckets[i] = 4;
    b.buckets[5] = 1;
    let m = merge_hist(&[a, b]);
    assert_eq!(m.count(), 8);
    assert_eq!(m.buckets[0], Bucket { low_ns: 5, high_ns: 5, count: 1 });
    assert!(m.buckets[1].low_ns <= 1000 && 1000 <= m.buckets[1].high_ns);
}

#[test]
fn stats_merge_min_ignores_idle_cpus() {
    let busy = FuncStats { count: 2, min_ns: 50, max_ns: 90, total_ns: 140, ..FuncStats::default() };
    let idle = FuncStats::default();
    let v = PerCpuValues::try_from(vec![idle, busy]).unwrap_or_else(|e| panic!("{e}"));
    let s = sum_stats(&v);
    assert_eq!((s.count, s.min_ns, s.max_ns, s.total_ns), (2, 50, 90, 140));
}
