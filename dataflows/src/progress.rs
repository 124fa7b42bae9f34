//! What the source has read, per partition, for whoever watches the
//! pipeline (metrics, health): records read, the next offset, the newest
//! event time and the watermark, and when (by the source's [`Clock`]) the
//! last record arrived.
//!
//! The source only writes here, once per activation and only for the
//! partitions it touched; nothing in the dataflow ever reads it back, so it
//! cannot change an output (the dataflow stays deterministic). It is a
//! shared map, not I/O: the binary reads it when `/metrics` or `/api/health`
//! is asked.
//!
//! [`Clock`]: crate::source::Clock

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

/// One partition's progress.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionProgress {
    /// Records read (ticks and rejects alike).
    pub records: u64,
    /// The offset after the last record read (None: nothing read yet).
    pub next_offset: Option<i64>,
    /// Newest event time accepted (ms).
    pub max_event_ms: Option<u64>,
    /// The partition's watermark (ms): newest event time − allowed lateness.
    pub watermark_ms: Option<u64>,
    /// Clock time (ms) the last record arrived.
    pub last_record_at_ms: Option<u64>,
}

/// The progress of every partition a process reads, shared between its
/// workers' sources and the watcher. Cloning shares it.
#[derive(Clone, Debug, Default)]
pub struct SourceProgress(Arc<Mutex<BTreeMap<i32, PartitionProgress>>>);

impl SourceProgress {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Merges what one activation read: `(partition, progress delta)` with
    /// the records counted in the delta and the rest the newest values.
    pub fn update(&self, changes: &BTreeMap<i32, PartitionProgress>) {
        if changes.is_empty() {
            return;
        }
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for (p, c) in changes {
            let e = map.entry(*p).or_default();
            e.records += c.records;
            e.next_offset = c.next_offset.or(e.next_offset);
            e.max_event_ms = c.max_event_ms.max(e.max_event_ms);
            e.watermark_ms = c.watermark_ms.max(e.watermark_ms);
            e.last_record_at_ms = c.last_record_at_ms.max(e.last_record_at_ms);
        }
    }

    /// A copy of every partition's progress.
    pub fn snapshot(&self) -> BTreeMap<i32, PartitionProgress> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_add_records_and_keep_the_newest_values() {
        let p = SourceProgress::new();
        let step = |records, off, ts| {
            BTreeMap::from([(
                3,
                PartitionProgress {
                    records,
                    next_offset: Some(off),
                    max_event_ms: Some(ts),
                    watermark_ms: Some(ts - 10),
                    last_record_at_ms: Some(ts),
                },
            )])
        };
        p.update(&step(5, 5, 100));
        p.update(&step(2, 7, 90));
        let got = p.snapshot()[&3];
        assert_eq!(got.records, 7);
        assert_eq!(got.next_offset, Some(7));
        assert_eq!(got.max_event_ms, Some(100));
        assert_eq!(got.watermark_ms, Some(90));
    }
}
