//! Reading ticks from a JSONL file (one tick per line, the wire format) as a
//! dataflow source, so the same input can be fed to cryptoflow and to other
//! systems. Lines are spread over `partitions` virtual partitions by their
//! symbol, as a Kafka producer keys them: a line whose `"symbol"` string is
//! found by a cheap scan (no escapes) goes to partition
//! `stable_hash(symbol) mod partitions`, the same as
//! [`dataflows::source::partition_of_key`] for the in-memory source; any
//! other line (no symbol, an escaped one, not JSON at all) goes to
//! `line mod partitions`. The offset is the line number either way, so a
//! partition's offsets increase in file order. Keeping a symbol in one
//! partition keeps the source's partial bars at one per (symbol, bar).
//! Which partition a line lands in changes no result: the scan only routes,
//! the decoder downstream validates (a line whose first `"symbol"` is not the
//! one the decoder keeps is still decoded and checked in full). Each worker
//! keeps the lines of the partitions it owns. An unreadable file is an error
//! up front; a bad line is a reject downstream, like any record. The file
//! helpers here are shared with `cryptoflow replay`.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use dataflows::source::{owns_partition, partition_of_key, Record, RecordReader, SourceEvent};
use dataflows::tick::Position;

/// A JSONL reader for one worker.
pub struct JsonlReader {
    lines: std::io::Split<BufReader<File>>,
    partitions: i32,
    index: usize,
    peers: usize,
    line: i64,
    done: bool,
}

/// Opens `path` for buffered reading with a large buffer.
pub fn open_buffered(path: &Path) -> std::io::Result<BufReader<File>> {
    Ok(BufReader::with_capacity(1 << 20, File::open(path)?))
}

/// Lines in `path` (a last line without a newline counts): a quick pass for
/// progress totals, reading raw bytes.
pub fn count_lines(path: &Path) -> std::io::Result<u64> {
    let mut reader = open_buffered(path)?;
    let (mut lines, mut last) = (0u64, b'\n');
    loop {
        let buf = reader.fill_buf()?;
        let Some(&end) = buf.last() else { break };
        lines += buf.iter().filter(|b| **b == b'\n').count() as u64;
        last = end;
        let n = buf.len();
        reader.consume(n);
    }
    Ok(lines + u64::from(last != b'\n'))
}

impl JsonlReader {
    /// Opens `path` for worker `index` of `peers`.
    pub fn open(path: &Path, partitions: i32, index: usize, peers: usize) -> std::io::Result<Self> {
        let reader = open_buffered(path)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        Ok(JsonlReader {
            lines: reader.split(b'\n'),
            partitions: partitions.max(1),
            index,
            peers,
            line: 0,
            done: false,
        })
    }
}

/// The partition of line number `line` with bytes `payload` (see the module
/// doc): by its symbol, as the in-memory source keys it, or by line number
/// without one.
fn partition_of(payload: &[u8], line: i64, partitions: i32) -> i32 {
    match symbol_of(payload) {
        Some(symbol) => partition_of_key(symbol, partitions),
        None => line.rem_euclid(i64::from(partitions.max(1))) as i32,
    }
}

/// The first `"symbol": "…"` string of a JSON line, if it holds no escape:
/// a routing key only, never validated here.
fn symbol_of(payload: &[u8]) -> Option<&str> {
    const KEY: &[u8] = b"\"symbol\"";
    let at = memchr::memmem::find(payload, KEY)?;
    let rest = &payload[at + KEY.len()..];
    let rest = rest.trim_ascii_start().strip_prefix(b":")?;
    let rest = rest.trim_ascii_start().strip_prefix(b"\"")?;
    let end = rest.iter().position(|b| *b == b'"' || *b == b'\\')?;
    if rest[end] != b'"' {
        return None;
    }
    std::str::from_utf8(&rest[..end]).ok()
}

impl RecordReader for JsonlReader {
    fn partitions(&self) -> Vec<i32> {
        (0..self.partitions)
            .filter(|p| owns_partition(*p, self.index, self.peers))
            .collect()
    }

    fn poll(&mut self, max: usize, out: &mut Vec<SourceEvent>) -> Result<(), String> {
        let mut taken = 0;
        while taken < max {
            let Some(line) = self.lines.next() else {
                self.done = true;
                break;
            };
            let line = line.map_err(|e| e.to_string())?;
            let n = self.line;
            self.line += 1;
            let partition = partition_of(&line, n, self.partitions);
            if line.is_empty() || !owns_partition(partition, self.index, self.peers) {
                continue;
            }
            out.push(SourceEvent::Record(Record {
                pos: Position {
                    partition,
                    offset: n,
                },
                payload: line,
            }));
            taken += 1;
        }
        Ok(())
    }

    fn finished(&self) -> bool {
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataflows::source::partition_records;

    #[test]
    fn a_line_is_routed_by_its_symbol_as_the_memory_source_routes_it() {
        let line = br#"{"symbol":"BTC-USD","ts":1,"price":1.0}"#;
        let spaced = br#"{ "ts":1, "symbol" :  "BTC-USD" }"#;
        let memory = partition_records([("BTC-USD".to_string(), line.to_vec())], 8);
        for n in 0..20 {
            assert_eq!(partition_of(line, n, 8), memory[0].pos.partition);
            assert_eq!(partition_of(spaced, n, 8), memory[0].pos.partition);
        }
    }

    #[test]
    fn a_line_without_a_plain_symbol_is_routed_by_its_number() {
        let lines: [&[u8]; 5] = [
            b"",
            b"not json",
            br#"{"symbol":"BTC\u002dUSD"}"#,
            br#"{"symbol":42}"#,
            br#"{"symbol":"unterminated"#,
        ];
        for line in lines {
            assert_eq!(symbol_of(line), None, "{}", String::from_utf8_lossy(line));
            for n in 0..16 {
                assert_eq!(partition_of(line, n, 8), (n % 8) as i32);
            }
        }
        assert_eq!(partition_of(b"x", -3, 8), 5);
        assert_eq!(partition_of(b"x", 7, 0), 0);
    }

    #[test]
    fn every_line_is_read_by_exactly_one_of_the_workers_in_file_order() {
        let dir = std::env::temp_dir().join(format!("cf-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ticks.jsonl");
        let mut text = String::new();
        for i in 0..500 {
            match i % 7 {
                0 => text.push_str("garbage\n"),
                3 => text.push('\n'),
                _ => text.push_str(&format!("{{\"symbol\":\"S{}-USD\",\"ts\":{i}}}\n", i % 11)),
            }
        }
        std::fs::write(&path, &text).unwrap();
        let mut seen = Vec::new();
        for index in 0..3 {
            let mut reader = JsonlReader::open(&path, 8, index, 3).unwrap();
            let mut out = Vec::new();
            while !reader.finished() {
                reader.poll(64, &mut out).unwrap();
            }
            let mut last = std::collections::BTreeMap::new();
            for event in out {
                let SourceEvent::Record(r) = event else {
                    continue;
                };
                assert!(reader.partitions().contains(&r.pos.partition));
                let prev = last.insert(r.pos.partition, r.pos.offset);
                assert!(prev.is_none_or(|p| p < r.pos.offset), "offsets increase");
                seen.push((r.pos.offset, r.payload));
            }
        }
        seen.sort();
        let expected: Vec<(i64, Vec<u8>)> = text
            .split('\n')
            .enumerate()
            .filter(|(_, l)| !l.is_empty())
            .map(|(i, l)| (i as i64, l.as_bytes().to_vec()))
            .collect();
        assert_eq!(seen, expected);
        std::fs::remove_dir_all(&dir).ok();
    }
}
