//! Reading ticks from a JSONL file (one tick per line, the wire format) as a
//! dataflow source, so the same input can be fed to cryptoflow and to other
//! systems. Lines are spread over `partitions` virtual partitions by line
//! number (line i → partition i mod partitions, offset = line number), and
//! each worker keeps the lines of the partitions it owns. An unreadable file
//! is an error up front; a bad line is a reject downstream, like any record.
//! The file helpers here are shared with `cryptoflow replay`.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use dataflows::source::{owns_partition, Record, RecordReader, SourceEvent};
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
            let partition = (n % i64::from(self.partitions)) as i32;
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
