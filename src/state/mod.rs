//! Snapshot files: the on-disk container of a state snapshot (issue 14;
//! the protocol is in `docs/design/snapshots.md`).
//!
//! A file holds one snapshot: a header a person or another tool can read
//! (JSON: the epoch, the kind, per-partition offsets, the symbols, the
//! warehouse versions it was written after) and a payload of operator
//! state ([`dataflows::snapshot`], bincode). The layout is
//!
//! ```text
//! magic "CFSTATE\n" | format version u32 | header length u32 | header
//! | payload length u64 | payload | SHA-256 of everything before it
//! ```
//!
//! all integers little endian. Reading checks, in this order, the magic,
//! the lengths against the file's size, the checksum and only then the
//! version: a flipped bit or a truncated file is *corrupt* (and the
//! previous snapshot is used), while a file that is intact but written by a
//! format this build does not know is *refused* with an error, never
//! misread. Writes are atomic: a temporary file in the same directory,
//! fsync, rename, fsync of the directory; a crash leaves either the old set
//! of files or the new one, plus at most a temporary file that listing
//! ignores and [`clean`] removes. The newest `keep` snapshots are kept.
//!
//! Nothing here decides *when* a snapshot is written; [`select`] decides
//! which one a restart continues from.

mod file;
mod select;

pub use file::{clean, file_name, list, prune, read, write, Listed, Status};
pub use select::{of_cut, select, settings, Chosen, FromSnapshot, SelectError};

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The format this build writes and the only one it reads.
pub const FORMAT_VERSION: u32 = 1;

/// Snapshots kept unless configured otherwise.
pub const DEFAULT_KEEP: usize = 3;

/// Why a snapshot file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading, writing or listing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Not a snapshot at all (wrong magic), a truncated file or a checksum
    /// mismatch: the bytes are not what was written.
    #[error("{path}: corrupt snapshot: {why}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What check failed.
        why: String,
    },
    /// Intact, but in a format this build does not know.
    #[error(
        "{path}: snapshot format {found} is not known to this build (it reads format {FORMAT_VERSION}); \
         use the cryptoflow that wrote it, or start with --from-snapshot none to rebuild state from the topic"
    )]
    UnknownVersion {
        /// The file.
        path: PathBuf,
        /// The version it says it has.
        found: u32,
    },
}

/// Result of this module.
pub type Result<T> = std::result::Result<T, Error>;

/// Why a snapshot was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// At a multiple of the snapshot interval of event time.
    Cadence,
    /// When the run stopped (a signal, or the end of a bounded input).
    Stop,
}

/// What a snapshot says about itself: everything `state list` and a
/// restart need without decoding the operator state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// The cut: the state reflects every input before this event time
    /// (ms) and nothing at or after it.
    pub epoch: u64,
    /// Why it was taken.
    pub kind: Kind,
    /// Wall-clock time it was written at (epoch ms), for people.
    pub written_at_ms: u64,
    /// Hash of the configuration that shapes the state (bar length,
    /// horizons, models, batch slots, partitions): a restart under another
    /// configuration does not use it.
    pub fingerprint: String,
    /// Per source partition, the offset of the first record the state does
    /// not reflect: where reading resumes.
    pub offsets: BTreeMap<i32, i64>,
    /// The symbols that have state in it.
    pub symbols: Vec<String>,
    /// Per warehouse table, its committed epoch when the snapshot was
    /// written (None: nothing committed yet). A warehouse behind these is
    /// older than the snapshot and cannot be continued from it.
    pub committed: BTreeMap<String, Option<u64>>,
    /// The longest time (ns) one operator spent serialising its state for
    /// this snapshot: how long the snapshot stalled the dataflow.
    pub stall_max_ns: u64,
    /// Event time of the first delivery of the history the state covers
    /// (None: none yet): where the daily jobs of a restored run begin.
    #[serde(default)]
    pub first_delivery_ms: Option<u64>,
}

/// One snapshot: its header and the operator state.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    /// What it says about itself.
    pub header: Header,
    /// The operator state, as the dataflow encoded it.
    pub payload: Vec<u8>,
}
