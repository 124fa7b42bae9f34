//! The cryptoflow dataflow: tick schema and validation, OHLCV bars, rolling
//! features, online models, prequential scoring, champion selection and the
//! graph that wires them together on timely/differential dataflow.
//!
//! Timely time is event time in epoch milliseconds everywhere. Nothing in
//! this crate does network or disk I/O or reads the wall clock except
//! through the [`source::Clock`] it is handed, so every piece runs under
//! `timely::execute(Config::process(n), …)` in tests, and the same input
//! gives the same output on any number of workers.

pub mod bars;
pub mod calibrate;
pub mod champion;
pub mod deploy;
pub mod features;
pub mod graph;
pub mod harness;
pub mod intervals;
pub mod models;
pub mod num;
pub mod predict;
pub mod progress;
pub mod sim;
pub mod snapshot;
pub mod source;
pub mod tick;

pub use graph::{build, Delivery, Output, OutputSink, PipelineConfig, SnapshotConfig};
pub use tick::{Reject, RejectReason, Side, Tick};
