//! `gco`: verifiable carbon accounting for AI inference.
//!
//! The binary is thin: it parses the command line into a validated plan, loads the
//! configuration, and calls the library crates. Human output goes to stderr, machine
//! output (`--json`) to stdout. Exit codes: 0 success, 1 the checked thing does not
//! hold, 2 usage, configuration or runtime error.

mod cli;
mod commands;
mod config;
mod demo;
mod error;
mod output;

use std::process::ExitCode;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;

/// The C libraries linked in allocate through glibc's malloc, not mimalloc: zstd
/// above all, which makes a context of a few hundred KiB for every Parquet column
/// chunk read or written. By default glibc maps such blocks afresh each time and
/// returns its heap to the system once 128 KiB are free, so each context costs page
/// faults and zeroed pages (on a 2M-record monthly run, more than half of its minor
/// page faults). Keep freed memory for reuse instead: the heap then holds at most
/// what was in use at once.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_c_heap() {
    // SAFETY: mallopt only sets allocator parameters, before any thread is started.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 512 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_c_heap() {}

/// No transparent huge pages for this process. mimalloc asks for them on its arenas
/// (`MADV_HUGEPAGE`), and a run frees and reuses its column buffers chunk after chunk:
/// each 2 MiB page the kernel hands back is zeroed whole, however little of it is then
/// written. On a 2M-record monthly run that zeroing was 12-18 % of the CPU time;
/// without huge pages that run takes 7-10 % less CPU and 60-80 MiB less memory (no
/// measurable change on 10M and 20M months; docs/benchmarks.md).
#[cfg(target_os = "linux")]
fn no_huge_pages() {
    // SAFETY: prctl(PR_SET_THP_DISABLE) only sets a flag of this process's memory map.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

#[cfg(not(target_os = "linux"))]
fn no_huge_pages() {}

/// mimalloc's `mi_option_purge_delay`: its index in `mi_option_e` of the bundled
/// mimalloc v3 (`libmimalloc-sys` 0.1.49, pinned; the crate names only some options).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// mimalloc returns memory it has not reused for a second to the system; a run frees and
/// reuses its column buffers chunk after chunk, more slowly than that on big months,
/// so the pages were faulted in again and zeroed by the kernel (on a 40M-record
/// monthly run, 2.7M page faults and about 8 % of the CPU). Keep freed memory for
/// five seconds instead, as `keep_c_heap` keeps the C heap: a run reuses it, an idle
/// process still gives it back. Peak memory grows by what the size classes hold
/// apart, about 5-10 % on the 10M-40M months (never purging held 5 % more again for
/// 5 % less CPU; docs/benchmarks.md).
fn keep_freed_memory() {
    // SAFETY: sets one of mimalloc's options (milliseconds), which it reads when it
    // considers a purge; no memory is touched.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 5_000) }
}

fn main() -> ExitCode {
    no_huge_pages();
    keep_c_heap();
    keep_freed_memory();
    let cli = cli::Cli::parse();
    // A server logs each request (the access log) and its audit events by default.
    let server = matches!(cli.command, cli::Command::Serve(_));
    let filter = match (cli.global.verbose, server) {
        (0, false) => "warn",
        (0, true) | (1, _) => "info",
        _ => "debug",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("GCO_LOG")
                .unwrap_or_else(|_| filter.into()),
        )
        .with_writer(std::io::stderr)
        // Colour only on a terminal: a log piped to a file or a collector stays plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let json = cli.global.json;
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            error::report(&e, json);
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    /// The index names the purge delay: v3's default is 1,000 ms, and the options on
    /// either side (`deprecated_eager_commit_delay`, `use_numa_nodes`) default to 1
    /// and 0 (mimalloc v3 `src/options.c`).
    #[test]
    fn purge_delay_option_index() {
        use libmimalloc_sys::mi_option_get;
        // SAFETY: reads options only.
        unsafe {
            assert_eq!(mi_option_get(super::MI_OPTION_PURGE_DELAY - 1), 1);
            assert_eq!(mi_option_get(super::MI_OPTION_PURGE_DELAY), 1000);
            assert_eq!(mi_option_get(super::MI_OPTION_PURGE_DELAY + 1), 0);
            assert_eq!(
                super::MI_OPTION_PURGE_DELAY + 1,
                libmimalloc_sys::mi_option_use_numa_nodes
            );
        }
    }
}
