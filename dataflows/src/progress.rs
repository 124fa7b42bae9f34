//! Where each partition's reading stands, for health reports: the tick
//! source of every worker writes it, the process's health endpoint reads it.
//!
//! Time semantics: `max_event_ms` and `watermark_ms` are event time (the
//! partition's newest accepted tick and that minus the allowed lateness,
//! the same watermark the source rejects late ticks against); nothing here
//! is wall clock. It is written once per source activation, not per
//! record, and never feeds back into the dataflow: outputs cannot depend on
//! it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

/// One partition's reading position.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionProgress {
    /// The partition.
    pub partition: i32,
    /// Records read from it by this run.
    pub records: u64,
    /// Offset of the last record read, if any.
    pub last_offset: Option<i64>,
    /// Newest event time accepted from it, ms.
    pub max_event_ms: Option<u64>,
    /// Its watermark (newest event time − lateness), ms; 0 before any tick.
    pub watermark_ms: u64,
    /// Whether the reader was at its end when last polled.
    pub at_end: bool,
}

/// The progress of every partition the workers of one process read,
/// shared between the sources (writers) and the health endpoint (reader).
#[derive(Clone, Debug, Default)]
pub struct ProgressBoard(Arc<Mutex<BTreeMap<i32, PartitionProgress>>>);

impl ProgressBoard {
    /// An empty board.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every partition, in partition order.
    pub fn snapshot(&self) -> Vec<PartitionProgress> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Applies `f` to the entries of `partitions` (created when missing).
    pub fn update(&self, partitions: &[i32], mut f: impl FnMut(&mut PartitionProgress)) {
        let mut board = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for p in partitions {
            let entry = board.entry(*p).or_insert_with(|| PartitionProgress {
                partition: *p,
                ..PartitionProgress::default()
            });
            f(entry);
        }
    }
}
