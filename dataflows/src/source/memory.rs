//! Records held in memory, for tests and benchmarks: a reader over them,
//! and the partitioning by key that stands in for a producer's.

use std::collections::BTreeMap;

use super::{owns_partition, Record, RecordReader, SourceEvent};
use crate::tick::Position;

/// A reader over records held in memory, for tests and benchmarks: it hands
/// out the records of its partitions in order and then finishes.
pub struct VecReader {
    partitions: Vec<i32>,
    records: std::collections::VecDeque<Record>,
}

impl VecReader {
    /// A reader for worker `index` of `peers` over all records of a topic;
    /// keeps those in partitions it owns, in their order.
    pub fn for_worker(all: &[Record], num_partitions: i32, index: usize, peers: usize) -> Self {
        let partitions: Vec<i32> = (0..num_partitions)
            .filter(|p| owns_partition(*p, index, peers))
            .collect();
        let records = all
            .iter()
            .filter(|r| owns_partition(r.pos.partition, index, peers))
            .cloned()
            .collect();
        VecReader {
            partitions,
            records,
        }
    }
}

impl RecordReader for VecReader {
    fn partitions(&self) -> Vec<i32> {
        self.partitions.clone()
    }

    fn poll(&mut self, max: usize, out: &mut Vec<SourceEvent>) -> Result<(), String> {
        let n = max.min(self.records.len());
        out.extend(self.records.drain(..n).map(SourceEvent::Record));
        Ok(())
    }

    fn finished(&self) -> bool {
        self.records.is_empty()
    }

    fn seek(&mut self, partition: i32, offset: i64) {
        self.records
            .retain(|r| r.pos.partition != partition || r.pos.offset >= offset);
    }
}

/// The partition, among `num_partitions` (at least one), of a record keyed
/// `key`: FNV-1a ([`crate::num::stable_hash`]) modulo the count. Shared by
/// the in-memory and the JSONL file sources, so both key a symbol alike.
pub fn partition_of_key(key: &str, num_partitions: i32) -> i32 {
    (crate::num::stable_hash(key) % num_partitions.max(1) as u64) as i32
}

/// Assigns payloads to in-memory partitions by a stable hash of the key
/// (FNV-1a, [`crate::num::stable_hash`]) and numbers offsets per partition.
/// This is not the Kafka producer's partitioner (murmur2): records keyed
/// alike share a partition here as there, but not the same partition
/// number. Nothing may depend on which partition a symbol lands in.
pub fn partition_records(
    payloads: impl IntoIterator<Item = (String, Vec<u8>)>,
    num_partitions: i32,
) -> Vec<Record> {
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    payloads
        .into_iter()
        .map(|(key, payload)| {
            let partition = partition_of_key(&key, num_partitions);
            let off = next.entry(partition).or_insert(0);
            let pos = Position {
                partition,
                offset: *off,
            };
            *off += 1;
            Record { pos, payload }
        })
        .collect()
}
