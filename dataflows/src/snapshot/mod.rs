//! The binary form of operator state, for snapshots (issue 14; the plan is
//! in `docs/design/snapshots.md`).
//!
//! Every piece of state an operator keeps per key (a symbol's features,
//! models, calibration and pending predictions; a series' evaluation sums)
//! has a serde form, written by [`encode`] with bincode: exact f64 bits, fixed-width
//! integers, little endian, the format timely itself exchanges data in.
//! Decoding is strict: trailing bytes, a short buffer or a length that does
//! not fit is an error, never a misread state.
//!
//! Names (`&'static str` model and slot names) are not stored; they come
//! from the configuration a state is restored under, and a state whose
//! shape does not match that configuration (other horizons, other models,
//! other batch slots) is refused with the difference named.
//!
//! A snapshot is a set of [`Entry`]s, one per (operator, key), gathered
//! from the operators' [`Piece`]s by the [`Assembler`] (the file container
//! is `cryptoflow::state`). A run restored from one ([`Restore`]) hands
//! each entry to the operator instance that owns its key, by [`route`]:
//! the same rule the data itself is exchanged by, so the state lands where
//! its symbol's or partition's data will, on any number of workers and
//! processes.

pub mod arrays;
mod assemble;

pub use assemble::{Assembled, Assembler};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bincode::Options;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::num::stable_hash;

/// The operators whose state a snapshot holds, in the order their entries
/// sort.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Op {
    /// The tick source: per partition, where reading resumes.
    Source,
    /// Bars: per symbol, open bars and the last close.
    Bars,
    /// The predictor: per symbol, [`crate::predict::SymbolSnapshot`].
    Predict,
    /// The daily evaluation: per symbol, its series.
    Evaluate,
    /// The retrain schedule and deployed versions (worker 0).
    Deploy,
    /// The export: outputs read before the cut and delivered after it.
    Export,
}

/// What an entry is keyed by. State is stored by key, never by worker, so
/// a snapshot restores onto any number of workers and processes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Key {
    /// The operator's one global state.
    Global,
    /// A source partition.
    Partition(i32),
    /// A symbol.
    Symbol(String),
}

/// One key's state of one operator, encoded ([`encode`]).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Entry {
    /// Whose state.
    pub op: Op,
    /// Which key.
    pub key: Key,
    /// The state's bytes.
    pub bytes: Vec<u8>,
}

/// One operator instance's state, the same for every cut in
/// `(after, upto]` (see [`Assembler`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Piece {
    /// Which operator.
    pub op: Op,
    /// Which worker's instance.
    pub worker: usize,
    /// The range of cuts this state holds for: after < cut <= upto.
    pub after: u64,
    /// See `after`.
    pub upto: u64,
    /// The state, one entry per key.
    pub entries: Vec<Entry>,
    /// How long making the piece took, ns (what it stalled the operator).
    pub stall_ns: u64,
}

impl Piece {
    /// The piece `make` builds for the cuts after `after`: `make` returns
    /// the range's end and the entries; the time it takes is recorded as
    /// the piece's stall.
    pub fn timed(
        op: Op,
        worker: usize,
        after: u64,
        make: impl FnOnce() -> (u64, Vec<Entry>),
    ) -> Piece {
        let started = Instant::now();
        let (upto, entries) = make();
        Piece {
            op,
            worker,
            after,
            upto,
            entries,
            // Measured only, never an input: the stall a snapshot causes.
            stall_ns: started.elapsed().as_nanos() as u64,
        }
    }
}

/// A snapshot a run starts from: the state at `cut` (every input before
/// it applied, none after), as the [`Assembler`] gathered it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Restore {
    /// The cut, ms of event time.
    pub cut: u64,
    /// Every operator's entries.
    pub entries: Vec<Entry>,
}

/// One entry on its way to the operator instance that owns its key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Restored {
    /// The cut the state is from.
    pub cut: u64,
    /// The state.
    pub entry: Entry,
}

/// The exchange route of a key: a symbol's state goes where the symbol's
/// data goes (`stable_hash`), a partition's to the worker that reads it
/// (timely routes `p` to `p % peers`, as `source::owns_partition` does),
/// the global state to worker 0.
pub fn route(key: &Key) -> u64 {
    match key {
        Key::Global => 0,
        Key::Partition(p) => u64::from(p.unsigned_abs()),
        Key::Symbol(s) => stable_hash(s),
    }
}

/// Cut times while a stop is asked for: every second of event time (or the
/// snapshot interval, if shorter), so the first cut after the stop comes
/// about a second of event time later, not up to a whole interval.
pub const STOP_CUT_EVERY_MS: u64 = 1_000;

/// The switch that asks every operator of a process for the stop cuts
/// ([`STOP_CUT_EVERY_MS`]): shared by all the process's workers (cloning
/// shares it). Raised once, never lowered.
#[derive(Clone, Debug, Default)]
pub struct StopCuts(Arc<AtomicBool>);

impl StopCuts {
    /// Asks for the stop cuts from now on.
    pub fn ask(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    /// Have the stop cuts been asked for?
    pub fn asked(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// One switch is equal only to itself (its clones).
impl PartialEq for StopCuts {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// The cut times an operator pieces at: the multiples of the snapshot
/// interval, and once [`StopCuts::ask`] has been called, the multiples of
/// [`STOP_CUT_EVERY_MS`]. Operators on different workers may switch at
/// slightly different frontiers; that is safe because every piece states
/// the whole range of cuts its state holds for (`after < T <= upto`), and
/// the [`Assembler`] only combines pieces whose ranges hold the cut.
#[derive(Clone, Debug, PartialEq)]
pub struct Cuts {
    every: u64,
    stop: StopCuts,
}

impl Cuts {
    /// Cuts every `every` ms (at least 1), finer once `stop` is asked.
    pub fn new(every: u64, stop: StopCuts) -> Self {
        Cuts {
            every: every.max(1),
            stop,
        }
    }
    /// The interval cuts fall on now.
    pub fn grid(&self) -> u64 {
        if self.stop.asked() {
            self.every.min(STOP_CUT_EVERY_MS)
        } else {
            self.every
        }
    }
    /// Whether a cut lies in `(after, upto]`.
    pub fn crosses(&self, after: u64, upto: u64) -> bool {
        crosses_cut(after, upto, self.grid())
    }
    /// The first cut after `after`.
    pub fn next(&self, after: u64) -> u64 {
        next_cut(after, self.grid())
    }
    /// The newest cut at or before `t` (0 if none).
    pub fn at_or_before(&self, t: u64) -> u64 {
        let grid = self.grid();
        t / grid * grid
    }
}

/// Whether a cut (a positive multiple of `every` ms) lies in `(after, upto]`.
pub fn crosses_cut(after: u64, upto: u64, every: u64) -> bool {
    let every = every.max(1);
    upto / every > after / every
}

/// The first cut after `after`.
pub fn next_cut(after: u64, every: u64) -> u64 {
    let every = every.max(1);
    (after / every).saturating_add(1).saturating_mul(every)
}

/// Why a piece of state could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The bytes are not a valid encoding of the expected type.
    #[error("state does not decode: {0}")]
    Decode(String),
    /// The bytes decode but do not fit the configuration restored under.
    #[error("state does not match the configuration: {0}")]
    Shape(String),
}

fn options() -> impl Options {
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .with_little_endian()
        .reject_trailing_bytes()
}

/// The state's bytes.
pub fn encode<T: Serialize>(state: &T) -> Vec<u8> {
    options()
        .serialize(state)
        .expect("operator state has no map with non-string keys or unsized data")
}

/// The state from its bytes; at most `bytes.len()` bytes are ever
/// allocated for lengths read from the input, so a corrupt length cannot
/// exhaust memory.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StateError> {
    options()
        .with_limit(bytes.len() as u64)
        .deserialize(bytes)
        .map_err(|e| StateError::Decode(e.to_string()))
}

/// Encodes, decodes and re-encodes `state`, checking the two encodings are
/// the same bytes; returns the decoded copy. For tests of each operator's
/// state.
#[cfg(test)]
pub(crate) fn round_trip<T: Serialize + DeserializeOwned>(state: &T) -> T {
    let bytes = encode(state);
    let back: T = decode(&bytes).expect("own encoding decodes");
    assert_eq!(encode(&back), bytes, "re-encoding changed the bytes");
    back
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_or_padded_bytes_are_errors() {
        let v: Vec<f64> = vec![1.0, f64::MIN_POSITIVE, -0.0];
        let bytes = encode(&v);
        assert_eq!(decode::<Vec<f64>>(&bytes).unwrap().len(), 3);
        assert!(decode::<Vec<f64>>(&bytes[..bytes.len() - 1]).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode::<Vec<f64>>(&longer).is_err());
        // A length field claiming far more than the buffer holds.
        let mut huge = bytes;
        huge[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(decode::<Vec<f64>>(&huge).is_err());
    }
}
