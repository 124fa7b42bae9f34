//! The champion and best-prediction collections, kept by one operator per
//! worker instead of a differential `reduce` and `join`.
//!
//! Both are functions of two collections that already live on the worker
//! of their symbol: the current predictions (from the predictor) and the
//! daily decisions (from the evaluation). Per (symbol, horizon) the
//! operator keeps the current predictions and the latest decision; once
//! the frontier passes a time it applies that time's changes to the
//! series they touch and emits, per series, the difference between the
//! rows before and after: the champion row ([`seed`] until the first
//! decision, while the series has a current prediction) and the best
//! rows (each current prediction of the champion's model, paired with the
//! champion). The accumulated collections are exactly those of
//! [`super::champions`] and [`super::best_predictions`], the differential
//! formulation, which a test keeps as the oracle; the updates within a
//! time may differ, and the export consolidates them.
//!
//! Why not differential: per bar the predictor changes about twice as
//! many current predictions as it has slots, and the two arrangements,
//! the reduce and the join moved each of them through a sort, a merge
//! and a String-keyed exchange (docs/design/hot-path.md, section 2.2).
//! Here a change costs a short linear probe in its series.
//!
//! Decisions are only ever inserted (the evaluation emits each day's
//! decision once, and a restored run its latest again at time 0), so a
//! series keeps only the latest one: the champion is the decision with
//! the greatest (day, champion), as the reduce picks the last of its
//! sorted values.

use std::collections::BTreeMap;

use differential_dataflow::{AsCollection, VecCollection};
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::Capability;

use super::{Champion, SeriesKey};
use crate::models::PERSISTENCE;
use crate::num::{stable_hash, F64};
use crate::predict::Prediction;

/// The champion of a series that has no decision yet: persistence.
pub fn seed() -> Champion {
    Champion {
        model: PERSISTENCE.into(),
        since_ms: 0,
        day: None,
        skill: F64(0.0),
        samples: 0,
        reason: "no completed day yet: the baseline is champion".into(),
    }
}

/// A decision as the evaluation emits it: the series, and the day with
/// the champion from its end.
pub type Decided = (SeriesKey, (i32, Champion));

/// One (symbol, horizon): its current predictions (with multiplicity, at
/// most one per model in practice) and its latest decision.
#[derive(Default)]
struct Series {
    current: Vec<(Prediction, isize)>,
    /// Σ multiplicities of `current`: the seed holds while it is positive.
    count: isize,
    decision: Option<(i32, Champion)>,
    /// The last time whose changes touched it.
    touched_at: Option<u64>,
}

impl Series {
    fn champion<'a>(&'a self, seed: &'a Champion) -> Option<&'a Champion> {
        match &self.decision {
            Some((_, c)) => Some(c),
            None => (self.count > 0).then_some(seed),
        }
    }

    /// The best rows of champion `c`: the current predictions of its model.
    fn best<'a>(&'a self, c: &'a Champion) -> impl Iterator<Item = &'a (Prediction, isize)> {
        self.current.iter().filter(move |(p, _)| p.model == c.model)
    }

    fn change(&mut self, p: Prediction, d: isize) {
        self.count += d;
        match self.current.iter().position(|(q, _)| *q == p) {
            Some(i) => {
                self.current[i].1 += d;
                if self.current[i].1 == 0 {
                    self.current.swap_remove(i);
                }
            }
            None => self.current.push((p, d)),
        }
    }

    fn decide(&mut self, day: i32, c: Champion) {
        let newer = match &self.decision {
            Some((d0, c0)) => (day, &c) > (*d0, c0),
            None => true,
        };
        if newer {
            self.decision = Some((day, c));
        }
    }
}

/// One time's changes, waiting for the frontier to pass it.
struct Pending {
    caps: [Capability<u64>; 2],
    current: Vec<(Prediction, isize)>,
    decisions: Vec<(Decided, isize)>,
}

impl Pending {
    fn new(caps: [Capability<u64>; 2]) -> Self {
        Pending {
            caps,
            current: Vec::new(),
            decisions: Vec::new(),
        }
    }
}

type Rows = (
    Vec<((SeriesKey, Champion), u64, isize)>,
    Vec<((Prediction, Champion), u64, isize)>,
);

/// The two collections [`champions_and_best`] keeps.
pub struct ChampionsAndBest<'s> {
    /// The champion per (symbol, horizon).
    pub champions: VecCollection<'s, u64, (SeriesKey, Champion), isize>,
    /// The current prediction of each series' champion, with the champion.
    pub best: VecCollection<'s, u64, (Prediction, Champion), isize>,
}

/// The champion per (symbol, horizon) and the best predictions, from the
/// current predictions and the decisions (see the module's doc).
pub fn champions_and_best<'s>(
    current: VecCollection<'s, u64, Prediction, isize>,
    decisions: VecCollection<'s, u64, Decided, isize>,
) -> ChampionsAndBest<'s> {
    let mut builder = OperatorBuilder::new("ChampionAndBest".to_owned(), current.scope());
    let mut current_in = builder.new_input(
        current.inner,
        Exchange::new(|(p, _, _): &(Prediction, u64, isize)| stable_hash(&p.symbol)),
    );
    let mut decisions_in = builder.new_input(
        decisions.inner,
        Exchange::new(|(((s, _), _), _, _): &(Decided, u64, isize)| stable_hash(s)),
    );
    let (champ_out, champs) = builder.new_output::<Vec<((SeriesKey, Champion), u64, isize)>>();
    let (best_out, best) = builder.new_output::<Vec<((Prediction, Champion), u64, isize)>>();
    let mut champ_out = OutputBuilder::from(champ_out);
    let mut best_out = OutputBuilder::from(best_out);
    builder.build(move |initial| {
        drop(initial);
        let seed = seed();
        let mut stash: BTreeMap<u64, Pending> = BTreeMap::new();
        let mut table = Table::default();
        let mut rows: Rows = (Vec::new(), Vec::new());
        move |frontiers| {
            // Each change waits at its own time (at or after its message's:
            // differential never sends a change in a later message).
            current_in.for_each_stamp(|cap, data| {
                for (x, t, d) in data.flat_map(|d| d.drain(..)) {
                    let caps = || [0, 1].map(|port| cap.delayed(&t, port));
                    let p = stash.entry(t).or_insert_with(|| Pending::new(caps()));
                    p.current.push((x, d));
                }
            });
            decisions_in.for_each_stamp(|cap, data| {
                for (x, t, d) in data.flat_map(|d| d.drain(..)) {
                    let caps = || [0, 1].map(|port| cap.delayed(&t, port));
                    let p = stash.entry(t).or_insert_with(|| Pending::new(caps()));
                    p.decisions.push((x, d));
                }
            });
            while let Some(entry) = stash.first_entry() {
                if frontiers.iter().any(|f| f.less_equal(entry.key())) {
                    break;
                }
                let time = *entry.key();
                let Pending {
                    caps: [c0, c1],
                    current,
                    decisions,
                } = entry.remove();
                apply(&mut table, &seed, time, current, decisions, &mut rows);
                champ_out
                    .activate()
                    .session(&c0)
                    .give_iterator(rows.0.drain(..));
                best_out
                    .activate()
                    .session(&c1)
                    .give_iterator(rows.1.drain(..));
            }
        }
    });
    ChampionsAndBest {
        champions: champs.as_collection(),
        best: best.as_collection(),
    }
}

/// Every series, by symbol then horizon.
#[derive(Default)]
struct Table {
    index: foldhash::HashMap<String, usize>,
    symbols: Vec<(String, Vec<(u32, Series)>)>,
}

impl Table {
    /// The (symbol, horizon position) of (`symbol`, `h`), created empty if new.
    fn find(&mut self, symbol: &str, h: u32) -> (usize, usize) {
        let i = match self.index.get(symbol) {
            Some(i) => *i,
            None => {
                self.index.insert(symbol.to_string(), self.symbols.len());
                self.symbols.push((symbol.to_string(), Vec::new()));
                self.symbols.len() - 1
            }
        };
        let of_symbol = &mut self.symbols[i].1;
        let j = match of_symbol.iter().position(|(k, _)| *k == h) {
            Some(j) => j,
            None => {
                of_symbol.push((h, Series::default()));
                of_symbol.len() - 1
            }
        };
        (i, j)
    }

    fn get(&mut self, (i, j): (usize, usize)) -> &mut Series {
        &mut self.symbols[i].1[j].1
    }
}

/// Applies one time's changes to the series they touch and appends the
/// rows that changed to `rows`: first the decisions (a new champion
/// retracts the best rows of the old one and inserts its own), then the
/// current predictions (a change of the champion's model is a change of
/// its best row), then the seeded champion rows of undecided series whose
/// current predictions appeared or all went.
fn apply(
    table: &mut Table,
    seed: &Champion,
    time: u64,
    current: Vec<(Prediction, isize)>,
    decisions: Vec<(Decided, isize)>,
    rows: &mut Rows,
) {
    let (champs, best) = rows;
    for (((symbol, h), (day, c)), d) in decisions {
        let at = table.find(&symbol, h);
        let s = table.get(at);
        // Decisions are only inserted (see the module's doc).
        debug_assert!(d > 0, "a retracted decision");
        if d <= 0 {
            continue;
        }
        let before = s.champion(seed).cloned();
        s.decide(day, c);
        let after = s.champion(seed).expect("decided");
        if before.as_ref() == Some(after) {
            continue;
        }
        let key = (symbol, h);
        if let Some(b) = before {
            for (p, n) in s.best(&b) {
                best.push(((p.clone(), b.clone()), time, -n));
            }
            champs.push(((key.clone(), b), time, -1));
        }
        for (p, n) in s.best(after) {
            best.push(((p.clone(), after.clone()), time, *n));
        }
        champs.push(((key, after.clone()), time, 1));
    }
    // Undecided series touched at this time, with their count before.
    let mut seeded: Vec<((usize, usize), isize)> = Vec::new();
    let mut last: Option<(u32, usize, usize)> = None;
    for (p, d) in current {
        // A symbol's changes come in runs: probe the table once per run.
        let at = match last {
            Some((h, i, j)) if h == p.horizon_bars && table.symbols[i].0 == p.symbol => (i, j),
            _ => table.find(&p.symbol, p.horizon_bars),
        };
        last = Some((p.horizon_bars, at.0, at.1));
        let s = table.get(at);
        if s.decision.is_none() && s.touched_at != Some(time) {
            s.touched_at = Some(time);
            seeded.push((at, s.count));
        }
        // The champion whatever the count: a seeded series without current
        // predictions has no best rows, so its changes are its best rows'.
        let c = s.decision.as_ref().map_or(seed, |(_, c)| c);
        if p.model == c.model {
            best.push(((p.clone(), c.clone()), time, d));
        }
        s.change(p, d);
    }
    for (at, before) in seeded {
        let (symbol, of_symbol) = &table.symbols[at.0];
        let (h, s) = &of_symbol[at.1];
        if s.decision.is_some() || (before > 0) == (s.count > 0) {
            continue;
        }
        let d = if s.count > 0 { 1 } else { -1 };
        champs.push((((symbol.clone(), *h), seed.clone()), time, d));
    }
}
