//! The probed functions. Their paths (`bench_target::funcs::push_rbp`, `…::nop5`, `…::spin`, the twins,
//! `bench_target::many::f0000`… in main.rs) are what the harness passes to `perf-user --func` and, mangled,
//! to bpftrace; renaming one breaks the benchmark.

use std::{
    hint::black_box,
    time::{Duration, Instant},
};

/// Empty function whose first instruction is `push rbp` (the workspace forces frame pointers),
/// which the kernel emulates on a uprobe hit.
#[inline(never)]
pub fn push_rbp(x: u64) -> u64 {
    black_box(x)
}

/// Empty function whose first instruction is the 5-byte nop `0f 1f 44 00 00`: the probe site that
/// kernels with optimized x86-64 uprobes turn into a call instead of a trap.
#[cfg(target_arch = "x86_64")]
#[unsafe(naked)]
pub extern "sysv64" fn nop5(x: u64) -> u64 {
    core::arch::naked_asm!(".byte 0x0f, 0x1f, 0x44, 0x00, 0x00", "mov rax, rdi", "ret")
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(never)]
pub extern "C" fn nop5(x: u64) -> u64 {
    black_box(x)
}

/// `push_rbp`'s twin for paired runs (`bench-target pair`): the same code under another name and
/// address, so one tracer can probe each. The body differs by one instruction: rustc merges
/// identical functions into one address.
#[inline(never)]
pub fn push_rbp_twin(x: u64) -> u64 {
    black_box(x) ^ 1
}

/// `nop5`'s twin for paired runs, starting with the same 5-byte nop (`lea` instead of `mov`).
#[cfg(target_arch = "x86_64")]
#[unsafe(naked)]
pub extern "sysv64" fn nop5_twin(x: u64) -> u64 {
    core::arch::naked_asm!(".byte 0x0f, 0x1f, 0x44, 0x00, 0x00", "lea rax, [rdi]", "ret")
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(never)]
pub extern "C" fn nop5_twin(x: u64) -> u64 {
    black_box(x) ^ 1
}

/// Busy-waits `ns` nanoseconds on the monotonic clock (vDSO, no syscall): a call of known length
/// for the accuracy check. Returns the iterations spun.
#[inline(never)]
pub fn spin(ns: u64) -> u64 {
    let start = Instant::now();
    let want = Duration::from_nanos(ns);
    let mut spins = 0u64;
    while start.elapsed() < want {
        std::hint::spin_loop();
        spins += 1;
    }
    spins
}

/// The probe sites whose first instruction matters, with their runtime addresses.
pub fn probe_sites() -> [(&'static str, usize); 4] {
    [
        ("push_rbp", push_rbp as fn(u64) -> u64 as usize),
        ("nop5", nop5 as extern "sysv64" fn(u64) -> u64 as usize),
        ("push_rbp_twin", push_rbp_twin as fn(u64) -> u64 as usize),
        ("nop5_twin", nop5_twin as extern "sysv64" fn(u64) -> u64 as usize),
    ]
}

/// The first `n` bytes of code at `addr`, an address from [`probe_sites`].
pub fn first_bytes(addr: usize, n: usize) -> Vec<u8> {
    // SAFETY: `addr` is the start of a function of this executable; its mapping is readable (r-x)
    // and every probed function is longer than the 8 bytes read here.
    unsafe { std::slice::from_raw_parts(addr as *const u8, n) }.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn probe_sites_start_with_the_promised_instruction() {
        let [(_, push), (_, nop), (_, push_twin), (_, nop_twin)] = probe_sites();
        assert_eq!(first_bytes(push, 1), [0x55], "push_rbp must start with push rbp (frame pointers off?)");
        assert_eq!(first_bytes(nop, 5), [0x0f, 0x1f, 0x44, 0x00, 0x00], "nop5 must start with a 5-byte nop");
        // Twins: the same first instruction at another address (not merged into the original).
        assert_eq!(first_bytes(push_twin, 1), first_bytes(push, 1));
        assert_eq!(first_bytes(nop_twin, 5), first_bytes(nop, 5));
        assert!(push_twin != push && nop_twin != nop, "twins must be functions of their own");
    }

    #[test]
    fn functions_compute_what_they_say() {
        assert_eq!(push_rbp(7), 7);
        assert_eq!(nop5(7), 7);
        assert_eq!(push_rbp_twin(7), 6);
        assert_eq!(crate::many::ALL.len(), 1000);
        assert_eq!(crate::many::ALL[0](7), 8);
        assert_eq!(crate::many::ALL[999](7), 1007);
        let t = Instant::now();
        spin(20_000);
        assert!(t.elapsed() >= Duration::from_micros(20));
    }
}
