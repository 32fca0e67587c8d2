//! Kernel side of perf-ebpf: times every call of the traced functions of one process and splits it
//! into own CPU, callees, syscalls and off-CPU time (see ATTRIBUTION.md), aggregating in per-CPU maps.
#![no_std]
#![no_main]

mod functions;
mod helpers;
mod interference;
mod maps;
mod record;
mod sampling;
mod sched;
mod spans;
mod syscalls;
mod thread;
mod top;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
