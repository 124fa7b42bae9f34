//! Which trade ids a connector has seen, per symbol: exact duplicates are
//! dropped (the last 10,000 ids per symbol are remembered, across
//! reconnects), and where a venue's ids are consecutive a jump is a gap and
//! a lower id is out of order.

use std::collections::{BTreeSet, HashMap};

/// Trade ids remembered per symbol for duplicate detection.
const SEEN_IDS: usize = 10_000;

/// Duplicate and gap tracking of trade ids per symbol.
#[derive(Default)]
pub struct Tracker {
    // Looked up by symbol only; its order never reaches output.
    series: HashMap<String, Series>,
}

#[derive(Default)]
struct Series {
    last: Option<u64>,
    seen: BTreeSet<u64>,
}

/// What the tracker made of one trade id.
#[derive(Debug, PartialEq, Eq)]
pub enum Seen {
    /// Not seen before; `missing` ids were skipped since the previous one.
    New {
        /// Ids jumped over (0 when consecutive).
        missing: u64,
        /// The id is lower than one already seen.
        out_of_order: bool,
    },
    /// Seen before: drop it.
    Duplicate,
}

impl Tracker {
    /// Records `id` for `symbol`. `consecutive` says whether the venue's ids
    /// increase by one per trade (only then are jumps gaps).
    pub fn observe(&mut self, symbol: &str, id: u64, consecutive: bool) -> Seen {
        let s = self.series.entry(symbol.to_string()).or_default();
        if !s.seen.insert(id) {
            return Seen::Duplicate;
        }
        if s.seen.len() > SEEN_IDS {
            s.seen.pop_first();
        }
        // An id at or below the newest known one arrives late: below it, a
        // higher id came first; equal to it, a heartbeat announced it.
        let (missing, out_of_order) = match s.last {
            Some(last) if id <= last => (0, true),
            Some(last) if consecutive => (id - last - 1, false),
            _ => (0, false),
        };
        s.last = Some(s.last.map_or(id, |l| l.max(id)));
        Seen::New {
            missing,
            out_of_order,
        }
    }

    /// A heartbeat saying the newest trade of `symbol` is `last_id`: the
    /// number of trades announced but never received (and now given up).
    pub fn heartbeat(&mut self, symbol: &str, last_id: u64) -> u64 {
        let Some(s) = self.series.get_mut(symbol) else {
            return 0;
        };
        match s.last {
            Some(last) if last_id > last => {
                s.last = Some(last_id);
                last_id - last
            }
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracker_drops_duplicates_and_finds_gaps() {
        let mut t = Tracker::default();
        let new = |missing, out_of_order| Seen::New {
            missing,
            out_of_order,
        };
        assert_eq!(t.observe("A-B", 10, true), new(0, false));
        assert_eq!(t.observe("A-B", 11, true), new(0, false));
        assert_eq!(t.observe("A-B", 11, true), Seen::Duplicate);
        assert_eq!(t.observe("A-B", 15, true), new(3, false));
        assert_eq!(t.observe("A-B", 13, true), new(0, true));
        assert_eq!(t.observe("A-B", 13, true), Seen::Duplicate);
        assert_eq!(t.observe("C-D", 11, true), new(0, false));
        // Not consecutive: jumps are normal.
        assert_eq!(t.observe("E-F", 100, false), new(0, false));
        assert_eq!(t.observe("E-F", 160, false), new(0, false));
        assert_eq!(t.heartbeat("A-B", 15), 0);
        assert_eq!(t.heartbeat("A-B", 18), 3);
        assert_eq!(t.observe("A-B", 19, true), new(0, false));
        // A trade a heartbeat announced, arriving after all (e.g. Coinbase's
        // `last_match` after a reconnect): late, not a gap, no underflow.
        assert_eq!(t.heartbeat("A-B", 21), 2);
        assert_eq!(t.observe("A-B", 21, true), new(0, true));
        assert_eq!(t.observe("A-B", 22, true), new(0, false));
    }
}
