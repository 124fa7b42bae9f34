//! cryptoflow's I/O and wiring around the `dataflows` crate: Kafka source and
//! producer, the broker launcher, the Delta warehouse, the HTTP server, the
//! simulated feed, history replay, and the `run` / `demo` entry points used by the binary,
//! the integration tests and the benchmarks.

pub mod backoff;
pub mod broker;
pub mod cluster;
pub mod commit;
pub mod decimal;
pub mod demo;
pub mod feed;
pub mod files;
pub mod health;
pub mod http;
pub mod ingest;
pub mod jobs;
pub mod kafka;
pub mod pipeline;
pub mod replay;
pub mod shutdown;
pub mod state;
pub mod supervise;
pub mod symbols;
pub mod telemetry;
pub mod train;
pub mod warehouse;

/// The wall clock in epoch ms: for pacing, connection bookkeeping and the
/// "not in the future" bound, never for event time.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// An error and its causes, joined with ": " (what `{:#}` prints for
/// `anyhow`), for log lines that must say what actually went wrong.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
