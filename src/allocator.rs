//! The process allocator's settings. The binary and the benchmarks run on
//! mimalloc (see the dependency's note in `Cargo.toml`).
//!
//! mimalloc returns freed pages to the operating system 10 ms after they
//! fall empty (its `purge_delay`). A worker frees and allocates the same
//! few hundred megabytes of buffers over and over (a time's outputs, the
//! operators' batches), so most of them were handed back and faulted in
//! again, zeroed by the kernel: `clear_page_erms` was 17% of the full
//! model zoo's profile (README, Performance). [`keep_freed_pages`] turns
//! purging off: the resident size stays at its high-water mark instead of
//! shrinking after a peak, which is what a long-running service with a
//! steady load does anyway, and the peak (what the memory figures quote)
//! is unchanged.

use std::ffi::{c_int, c_long};

// Links mimalloc's static library into every program of this crate, so
// the declaration below always resolves.
use mimalloc as _;

extern "C" {
    /// mimalloc's option setter (`mimalloc.h`), linked through the
    /// `mimalloc` crate's static library.
    fn mi_option_set(option: c_int, value: c_long);
}

/// `mi_option_purge_delay` in mimalloc 3's `mi_option_t`.
const MI_OPTION_PURGE_DELAY: c_int = 15;

/// Never hand freed pages back to the OS (purge delay −1), unless the
/// environment chose a delay (`MIMALLOC_PURGE_DELAY`, in ms, which mimalloc
/// reads itself). Call it first thing in `main` of a program whose global
/// allocator is `mimalloc::MiMalloc`.
pub fn keep_freed_pages() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: a plain setter of a process-wide option, valid at any time
    // and from any thread; both arguments are integers.
    unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
}
