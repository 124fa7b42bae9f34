//! Gathering the pieces of one cut into a snapshot, on worker 0.
//!
//! Every stateful operator instance sends, whenever its frontier moves
//! past one or more cut times (the multiples of the snapshot interval), a
//! [`Piece`]: its state, valid for every cut in a range `(after, upto]`.
//! Within such a range the instance applied no input, so one piece serves
//! all of its cuts: a replay that jumps a day of silence sends one piece,
//! not 1,440. No instance waits for another and no worker coordinates:
//! each knows the cut times in advance.
//!
//! The [`Assembler`] keeps the pieces per instance and hands out the newest
//! cut every expected instance has covered, once, in increasing order of
//! cuts. Older cuts that were never handed out are skipped: a snapshot
//! replaces the previous one, so only the newest complete cut matters. The
//! entries of a snapshot are sorted by (operator, key), never by worker.
//! The predictor's and the evaluation's entries at a cut are the same bytes
//! on any number of workers; the source's are not (where each partition's
//! reading stands when the source's capability crosses a cut depends on
//! which partitions it owns and how its reads were batched), nor are the
//! bars' partials that arrived before it, but they always account for
//! the same ticks between them.

use std::collections::{BTreeMap, BTreeSet};

use super::{Cuts, Entry, Op, Piece};

/// One complete cut: every expected instance's state at `cut`.
#[derive(Clone, Debug, PartialEq)]
pub struct Assembled {
    /// The cut (event time, ms): the state reflects every input before it.
    pub cut: u64,
    /// Every instance's entries, sorted by (operator, key).
    pub entries: Vec<Entry>,
    /// The longest time one instance spent making its piece, ns.
    pub stall_max_ns: u64,
}

/// Collects pieces until a cut is complete (see the module doc).
pub struct Assembler {
    cuts: Cuts,
    /// Per expected instance, its pieces by `upto`.
    pieces: BTreeMap<(Op, usize), BTreeMap<u64, Piece>>,
    /// The last cut handed out.
    last: Option<u64>,
}

impl Assembler {
    /// An assembler for the cuts `cuts` gives, waiting for the instances
    /// `expected` ((operator, worker) pairs).
    pub fn new(cuts: Cuts, expected: impl IntoIterator<Item = (Op, usize)>) -> Self {
        Assembler {
            cuts,
            pieces: expected.into_iter().map(|k| (k, BTreeMap::new())).collect(),
            last: None,
        }
    }

    /// The cut times.
    pub fn cuts(&self) -> &Cuts {
        &self.cuts
    }

    /// Adds a piece. A piece from an instance that is not expected is
    /// returned as an error (a wiring bug, never input).
    pub fn add(&mut self, piece: Piece) -> Result<(), String> {
        match self.pieces.get_mut(&(piece.op, piece.worker)) {
            Some(by_upto) => {
                by_upto.insert(piece.upto, piece);
                Ok(())
            }
            None => Err(format!(
                "a snapshot piece from {:?} on worker {}, which is not expected",
                piece.op, piece.worker
            )),
        }
    }

    /// The newest cut not handed out yet that every instance has covered,
    /// if there is one; pieces no later cut can need are dropped.
    pub fn complete(&mut self) -> Option<Assembled> {
        let covered = self
            .pieces
            .values()
            .map(|by_upto| by_upto.last_key_value().map_or(0, |(upto, _)| *upto))
            .min()?;
        let cut = self.cuts.at_or_before(covered);
        if cut == 0 || self.last.is_some_and(|last| cut <= last) {
            return None;
        }
        // The piece of each instance whose range holds the cut: its first
        // with upto >= cut. None if one has no such piece (it covered the cut
        // with no piece, which pieces sent for every crossed cut rule out).
        let holding: Option<Vec<u64>> = self
            .pieces
            .values()
            .map(|by_upto| {
                let (&upto, piece) = by_upto.range(cut..).next()?;
                (piece.after < cut).then_some(upto)
            })
            .collect();
        let holding = holding?;
        let mut entries = Vec::new();
        let mut stall_max_ns = 0;
        for (by_upto, upto) in self.pieces.values_mut().zip(holding) {
            let piece = &by_upto[&upto];
            entries.extend(piece.entries.iter().cloned());
            stall_max_ns = stall_max_ns.max(piece.stall_ns);
            // Later cuts need this piece or newer ones, never older ones.
            *by_upto = by_upto.split_off(&upto);
        }
        entries.sort_by(|a, b| (a.op, &a.key).cmp(&(b.op, &b.key)));
        let keys: BTreeSet<_> = entries.iter().map(|e| (e.op, &e.key)).collect();
        debug_assert_eq!(keys.len(), entries.len(), "two instances hold one key");
        self.last = Some(cut);
        Some(Assembled {
            cut,
            entries,
            stall_max_ns,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{Key, StopCuts};

    fn cuts(every: u64) -> Cuts {
        Cuts::new(every, StopCuts::default())
    }

    fn piece(op: Op, worker: usize, after: u64, upto: u64, symbols: &[&str]) -> Piece {
        Piece {
            op,
            worker,
            after,
            upto,
            entries: symbols
                .iter()
                .map(|s| Entry {
                    op,
                    key: Key::Symbol(s.to_string()),
                    bytes: format!("{s}@{upto}").into_bytes(),
                })
                .collect(),
            stall_ns: upto,
        }
    }

    #[test]
    fn the_newest_cut_every_instance_covered_comes_out_once_sorted() {
        let mut a = Assembler::new(cuts(60), [(Op::Bars, 0), (Op::Bars, 1), (Op::Predict, 0)]);
        a.add(piece(Op::Bars, 1, 0, 130, &["B"])).unwrap();
        a.add(piece(Op::Predict, 0, 0, 500, &["A", "B"])).unwrap();
        assert_eq!(a.complete(), None, "Bars on worker 0 has sent nothing");
        a.add(piece(Op::Bars, 0, 0, 90, &["A"])).unwrap();
        // Covered: min(90, 130, 500) = 90, so the cut at 60.
        let got = a.complete().unwrap();
        assert_eq!(got.cut, 60);
        let keys: Vec<(Op, String)> = got
            .entries
            .iter()
            .map(|e| (e.op, String::from_utf8(e.bytes.clone()).unwrap()))
            .collect();
        assert_eq!(
            keys,
            [
                (Op::Bars, "A@90".to_string()),
                (Op::Bars, "B@130".into()),
                (Op::Predict, "A@500".into()),
                (Op::Predict, "B@500".into()),
            ]
        );
        assert_eq!(got.stall_max_ns, 500);
        assert_eq!(a.complete(), None, "a cut comes out once");
        // Bars 0 jumps far ahead with one piece: the newest common cut is 120
        // (Bars 1 covers up to 130); 180..=480 wait for Bars 1.
        a.add(piece(Op::Bars, 0, 90, 1_000, &["A"])).unwrap();
        assert_eq!(a.complete().unwrap().cut, 120);
        a.add(piece(Op::Bars, 1, 130, 700, &["B"])).unwrap();
        let got = a.complete().unwrap();
        assert_eq!(got.cut, 480, "cuts 180..=420 are skipped, not queued");
        assert_eq!(got.entries[0].bytes, b"A@1000");
        assert_eq!(got.entries[1].bytes, b"B@700");
    }

    #[test]
    fn pieces_from_unknown_instances_are_refused() {
        let mut a = Assembler::new(cuts(60), [(Op::Bars, 0)]);
        assert!(a.add(piece(Op::Bars, 3, 0, 60, &[])).is_err());
        assert!(a.add(piece(Op::Predict, 0, 0, 60, &[])).is_err());
        a.add(piece(Op::Bars, 0, 0, 59, &[])).unwrap();
        assert_eq!(a.complete(), None, "no cut before 60 exists");
    }
}
