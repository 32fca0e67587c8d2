//! Arbitrary bytes as what `perf-user run` reads before CMD starts, as root: `/etc/ld.so.cache`
//! and a command's or library's ELF dynamic section (`DT_NEEDED`, `DT_RPATH`, `DT_RUNPATH`).
//! Both readers must skip what they cannot use, never panic, and end in time linear in the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use perf_user::target::{ld_cache::LdCache, needed};

fuzz_target!(|data: &[u8]| {
    let cache = LdCache::parse(data);
    let legacy = ["tls/x86_64".to_owned(), "tls".to_owned(), "x86_64".to_owned()];
    let _ = cache.lookup("libc.so.6", &["x86-64-v3", "x86-64-v2"], &legacy);
    let _ = needed::parse_dynamic(data);
});
