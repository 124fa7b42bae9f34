//! Daily self-evaluation, champion selection and best predictions.
//!
//! Scores are exchanged by symbol to the "DailyEvaluation" operator, which
//! sums them per (symbol, horizon, model, UTC day) as exact integers
//! ([`stats`]). A score belongs to the UTC day of the event time at which
//! it was produced: the day of its target, except outcomes at gap-filled
//! bars, which become known only with the next traded bar. When the
//! frontier passes the end of a day, that day is complete: the operator
//! emits every model's metrics for the day (count, MAE, RMSE, hit rate,
//! skill against persistence on the same scores, interval coverage) and
//! the decision of the champion rule ([`rule`]: a trailing window of
//! days, a Diebold–Mariano test, demotion of a champion that loses to
//! persistence), all at the day's end. Each series' days are processed in
//! order, and every figure is computed from integer sums in a fixed
//! order, so the rows do not depend on the number of workers (tested on 1,
//! 2 and 4 in `dataflows/tests/pipeline.rs`). The decision depends on the
//! previous day's champion (hysteresis), which is why this is a stateful
//! operator in event time rather than a `reduce` over all days: O(1) work
//! per series and day instead of replaying the history every day.
//!
//! The champion of a (symbol, horizon) is the decision of the latest
//! evaluated day; before any day is complete it is persistence. Best
//! predictions are `current predictions ⋈ champion`, maintained
//! incrementally, retractions included, when either side changes. The
//! pipeline keeps both with one operator per worker ([`best`]);
//! [`champions`] and [`best_predictions`] say the same in differential
//! terms and are the oracle its test compares with.
//!
//! Never: judge a model on a score before its day has ended, use anything
//! but model names and their sums, or let a learned model be champion
//! without a significant win over persistence in the window.

pub mod best;
pub mod rule;
pub mod stats;

use std::collections::{BTreeMap, VecDeque};

use differential_dataflow::{AsCollection, VecCollection};
use serde::{Deserialize, Serialize};
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::vec::Map;
use timely::dataflow::operators::Capability;
use timely::dataflow::StreamVec;

pub use rule::{decide, dm, normal_quantile, ChampionConfig, Decision, Dm, MAX_WINDOW_DAYS};
pub use stats::{loss_difference, DayStats, LossLags, LOSS_SCALE};

use crate::models::PERSISTENCE;
use crate::num::{stable_hash, utc_day, DAY_MS, ERR_SCALE, F64};
use crate::predict::{Prediction, Score};
use crate::snapshot::{decode, encode, route, Cuts, Entry, Key, Op, Piece, Restored, StateError};

/// Key of a (symbol, horizon in bars).
pub type SeriesKey = (String, u32);

/// One model's metrics over one UTC day, and whether it is champion after it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Evaluation {
    /// Model name.
    pub model: String,
    /// Scores that day.
    pub samples: i64,
    /// Mean absolute error of the log return.
    pub mae: F64,
    /// Root mean squared error of the log return.
    pub rmse: F64,
    /// Directional hit rate.
    pub hit_rate: F64,
    /// 1 − Σe²/Σy² over the model's scores that day (persistence's errors
    /// on the same scores).
    pub skill: F64,
    /// Share of outcomes inside the 80% interval (None: no intervals yet).
    pub coverage: Option<F64>,
    /// Whether this model is champion from the end of this day (it won or
    /// held the series); exactly one row per series and day has it.
    pub winner: bool,
    /// For the winner, why (with the test's figures); for the others,
    /// their window figures.
    pub reason: String,
}

/// One row of the daily evaluation: a model's metrics on one series and
/// one UTC day.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DayEvaluation {
    /// Symbol.
    pub symbol: String,
    /// Horizon in bars.
    pub horizon_bars: u32,
    /// The UTC day (days since 1970-01-01).
    pub day: i32,
    /// The model's metrics that day.
    pub evaluation: Evaluation,
}

/// The champion of one (symbol, horizon), with the evidence.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Champion {
    /// The model.
    pub model: String,
    /// Champion since (epoch ms): the end of the day it took over; 0 for
    /// the baseline that was never replaced.
    pub since_ms: u64,
    /// The UTC day it took over (days since 1970-01-01), if any.
    pub day: Option<i32>,
    /// Its skill over the window at the latest evaluation.
    pub skill: F64,
    /// Its scores in that window.
    pub samples: i64,
    /// Why (the latest evaluation's reason).
    pub reason: String,
}

/// What a completed day produces for one series: every model's row and
/// the champion from the day's end.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
enum Judged {
    Row(Evaluation),
    Champion(Champion),
}

/// One series' state in the evaluation operator; a snapshot stores it as
/// is ([`crate::snapshot`]).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct SeriesState {
    /// Lag memory per model (for the Newey–West variance).
    lags: BTreeMap<String, LossLags>,
    /// Sums of days not yet complete, per day and model.
    open: BTreeMap<i32, BTreeMap<String, DayStats>>,
    /// Complete days still in the window, oldest first.
    window: VecDeque<(i32, BTreeMap<String, DayStats>)>,
    /// The champion, and the day it took over (None: the initial baseline).
    champion: String,
    since: Option<i32>,
    /// The latest decision (day, champion), which a restored run emits
    /// again so the champion collection holds what it held at the cut.
    last: Option<(i32, Champion)>,
}

impl SeriesState {
    fn new() -> Self {
        SeriesState {
            lags: BTreeMap::new(),
            open: BTreeMap::new(),
            window: VecDeque::new(),
            champion: PERSISTENCE.to_string(),
            since: None,
            last: None,
        }
    }

    /// Adds a score produced on `day`. Scores of one model must come in
    /// the order their predictions were made.
    fn add(&mut self, s: &Score, day: i32) {
        let h = s.horizon_bars.max(1);
        let bar_ms = (s.target_at_ms.saturating_sub(s.made_at_ms)) / u64::from(h);
        let d = loss_difference(s);
        let lag = probe(&mut self.lags, &s.model).push(s.made_at_ms, bar_ms, h, d);
        probe(self.open.entry(day).or_default(), &s.model).add(&DayStats::of(s, d, lag));
    }

    /// Closes `day` (if the series had scores on it): the day's rows and
    /// the champion from its end.
    fn close_day(&mut self, day: i32, h: u32, config: &ChampionConfig) -> Option<Vec<Judged>> {
        let today = self.open.remove(&day)?;
        self.window.push_back((day, today.clone()));
        self.trim(day, config);
        let mut sums: BTreeMap<String, DayStats> = BTreeMap::new();
        for (_, models) in &self.window {
            for (m, s) in models {
                sums.entry(m.clone()).or_default().add(s);
            }
        }
        let days = day - self.window.front().map_or(day, |w| w.0) + 1;
        let decision = decide(
            &sums,
            &self.champion,
            &|m: &str| today.contains_key(m),
            days,
            h,
            config,
        );
        if decision.champion != self.champion {
            self.champion = decision.champion.clone();
            self.since = Some(day);
        }
        let mut out: Vec<Judged> = today
            .iter()
            .map(|(m, s)| Judged::Row(day_row(m, s, &decision)))
            .collect();
        let figures = decision.figures.get(&self.champion);
        let champion = Champion {
            model: self.champion.clone(),
            since_ms: self.since.map_or(0, |d| (d as u64 + 1) * DAY_MS),
            day: self.since,
            skill: F64(figures.map_or(0.0, |f| f.skill)),
            samples: figures.map_or(0, |f| f.n),
            reason: decision.reason,
        };
        self.last = Some((day, champion.clone()));
        out.push(Judged::Champion(champion));
        Some(out)
    }

    /// Drops the oldest days while the rest still spans the configured days
    /// and holds the configured persistence scores (or exceeds the cap).
    fn trim(&mut self, day: i32, config: &ChampionConfig) {
        let base_n =
            |w: &(i32, BTreeMap<String, DayStats>)| w.1.get(PERSISTENCE).map_or(0, |s| s.n);
        let mut held: i64 = self.window.iter().map(base_n).sum();
        while self.window.len() > 1 {
            let oldest = &self.window[0];
            let next_day = self.window[1].0;
            let too_long = day - oldest.0 + 1 > MAX_WINDOW_DAYS;
            let enough = day - next_day + 1 >= config.window_days
                && held - base_n(oldest) >= config.min_samples;
            if !(too_long || enough) {
                break;
            }
            held -= base_n(oldest);
            self.window.pop_front();
        }
    }
}

/// The entry of `model` in `map`, inserted as the default if absent; the
/// name is copied only then (once per model, not once per score).
fn probe<'a, V: Default>(map: &'a mut BTreeMap<String, V>, model: &str) -> &'a mut V {
    if !map.contains_key(model) {
        map.insert(model.to_string(), V::default());
    }
    map.get_mut(model).expect("inserted")
}

/// A model's row for one day, from that day's sums.
fn day_row(model: &str, s: &DayStats, decision: &Decision) -> Evaluation {
    let n = s.n.max(1) as f64;
    let mse = s.sq as f64 / (ERR_SCALE * ERR_SCALE) / n;
    let winner = decision.champion == model;
    let reason = if winner {
        decision.reason.clone()
    } else {
        decision.figures.get(model).map_or(String::new(), |f| {
            format!("window: {} scores, skill {:.4}, z {:.2}", f.n, f.skill, f.z)
        })
    };
    Evaluation {
        model: model.to_string(),
        samples: s.n,
        mae: F64(s.abs as f64 / ERR_SCALE / n),
        rmse: F64(mse.sqrt()),
        hit_rate: F64(s.hits as f64 / n),
        skill: F64(rule::skill_of(s)),
        coverage: (s.with_interval > 0).then(|| F64(s.covered as f64 / s.with_interval as f64)),
        winner,
        reason,
    }
}

/// One judged row as the evaluation emits it: (((series, day), judged), time, diff).
type JudgedRow = (((SeriesKey, i32), Judged), u64, isize);

/// A snapshot's entries for `series`: one per symbol, its series by horizon.
fn series_entries(series: &BTreeMap<SeriesKey, SeriesState>) -> Vec<Entry> {
    let mut by_symbol: BTreeMap<&str, Vec<(u32, &SeriesState)>> = BTreeMap::new();
    for ((symbol, h), st) in series {
        by_symbol.entry(symbol).or_default().push((*h, st));
    }
    by_symbol
        .into_iter()
        .map(|(symbol, of_symbol)| Entry {
            op: Op::Evaluate,
            key: Key::Symbol(symbol.to_string()),
            bytes: encode(&of_symbol),
        })
        .collect()
}

/// Whether `bytes` are a symbol's entry of the evaluation's state.
pub(crate) fn check_entry(bytes: &[u8]) -> Result<(), StateError> {
    decode::<Vec<(u32, SeriesState)>>(bytes).map(|_| ())
}

/// The daily evaluation's two collections.
pub struct Verdicts<'s> {
    /// Every model's row per (symbol, horizon, day).
    pub evaluations: VecCollection<'s, u64, ((SeriesKey, i32), Evaluation), isize>,
    /// The champion decided at the end of each (symbol, horizon, day).
    pub decisions: VecCollection<'s, u64, (SeriesKey, (i32, Champion)), isize>,
    /// Snapshot pieces (none without a snapshot interval).
    pub pieces: StreamVec<'s, u64, Piece>,
}

/// The daily evaluation of `scores` (each with the time it was produced).
/// With `snapshot_every` (ms), `pieces` carries a [`Piece`] whenever the
/// frontier passes cut times: per symbol, its series' state after every
/// score and day end before the cut and none after. `restore` brings the
/// series of a snapshot the run starts from, at time 0; each series'
/// latest decision is emitted again at time 0 (+1), so the decisions
/// downstream pick the champion they held at the cut.
pub fn evaluations<'s>(
    scores: StreamVec<'s, u64, (Score, u64)>,
    restore: StreamVec<'s, u64, Restored>,
    config: ChampionConfig,
    snapshot_every: Option<Cuts>,
) -> Verdicts<'s> {
    let scope = scores.scope();
    let worker = scope.index();
    let mut builder = OperatorBuilder::new("DailyEvaluation".to_owned(), scope);
    let mut input = builder.new_input(
        scores,
        Exchange::new(|(s, _): &(Score, u64)| stable_hash(&s.symbol)),
    );
    let mut restore_input =
        builder.new_input(restore, Exchange::new(|r: &Restored| route(&r.entry.key)));
    let (judged_out, judged) = builder.new_output::<Vec<JudgedRow>>();
    let (piece_out, pieces) = builder.new_output::<Vec<Piece>>();
    let mut judged_out = OutputBuilder::from(judged_out);
    let mut piece_out = OutputBuilder::from(piece_out);
    builder.build(move |mut caps| {
        // Held until the input ends: pieces go out at time 0.
        let mut piece_cap = caps.pop();
        drop(caps);
        // Scores by the time they were produced, until that time is complete.
        let mut stash: BTreeMap<u64, Vec<Score>> = BTreeMap::new();
        // A capability per day end that has scores.
        let mut day_ends: BTreeMap<u64, Capability<u64>> = BTreeMap::new();
        let mut series: BTreeMap<SeriesKey, SeriesState> = BTreeMap::new();
        // Cuts up to here have had their piece.
        let mut pieced: u64 = 0;
        move |frontiers| {
            restore_input.for_each_stamp(|cap, data| {
                let c0 = cap.delayed(&0, 0);
                let mut output = judged_out.activate();
                let mut session = output.session(&c0);
                for r in data.flat_map(|d| d.drain(..)) {
                    let Key::Symbol(symbol) = r.entry.key else {
                        continue;
                    };
                    let of_symbol: Vec<(u32, SeriesState)> =
                        decode(&r.entry.bytes).expect("restored state is checked before the run");
                    for (h, st) in of_symbol {
                        // Open days end at or after the cut (> 0).
                        for day in st.open.keys() {
                            let end = (*day as u64 + 1) * DAY_MS;
                            day_ends.entry(end).or_insert_with(|| cap.delayed(&end, 0));
                        }
                        let key = (symbol.clone(), h);
                        if let Some((day, c)) = &st.last {
                            let row = ((key.clone(), *day), Judged::Champion(c.clone()));
                            session.give((row, 0, 1isize));
                        }
                        series.insert(key, st);
                    }
                }
            });
            input.for_each_stamp(|cap, data| {
                let Some(&time) = cap.least() else { return };
                let end = (utc_day(time) as u64 + 1) * DAY_MS;
                day_ends.entry(end).or_insert_with(|| cap.delayed(&end, 0));
                stash
                    .entry(time)
                    .or_default()
                    .extend(data.flat_map(|d| d.drain(..)).map(|(s, _)| s));
            });
            // Everything before `done` is complete (None: everything is).
            let done = frontiers
                .iter()
                .filter_map(|f| f.frontier().first().copied())
                .min();
            let mut output = judged_out.activate();
            let mut piece =
                |upto: u64, pieced: &mut u64, series: &BTreeMap<SeriesKey, SeriesState>| {
                    if let (Some(cuts), Some(cap)) = (snapshot_every.as_ref(), piece_cap.as_ref()) {
                        if cuts.crosses(*pieced, upto) {
                            let piece = Piece::timed(Op::Evaluate, worker, *pieced, || {
                                (upto, series_entries(series))
                            });
                            piece_out.activate().session(cap).give(piece);
                        }
                    }
                    *pieced = (*pieced).max(upto);
                };
            // Scores and day ends in time order: a score at t once t < done, a
            // day end e once e <= done; cuts see the state before each.
            loop {
                let score_at = stash
                    .first_key_value()
                    .map(|(t, _)| *t)
                    .filter(|t| done.is_none_or(|f| *t < f));
                let day_end = day_ends
                    .first_key_value()
                    .map(|(e, _)| *e)
                    .filter(|e| done.is_none_or(|f| *e <= f));
                let at = match (score_at, day_end) {
                    (Some(t), Some(e)) => t.min(e),
                    (Some(t), None) => t,
                    (None, Some(e)) => e,
                    (None, None) => break,
                };
                piece(at, &mut pieced, &series);
                if score_at == Some(at) {
                    let day = utc_day(at);
                    let mut scores = stash.remove(&at).expect("first key");
                    scores.sort_by(|a, b| {
                        (&a.symbol, a.horizon_bars, &a.model, a.made_at_ms).cmp(&(
                            &b.symbol,
                            b.horizon_bars,
                            &b.model,
                            b.made_at_ms,
                        ))
                    });
                    // Sorted: each series' scores are one run, found once.
                    let same = |a: &Score, b: &Score| {
                        a.horizon_bars == b.horizon_bars && a.symbol == b.symbol
                    };
                    for run in scores.chunk_by(same) {
                        let st = series
                            .entry((run[0].symbol.clone(), run[0].horizon_bars))
                            .or_insert_with(SeriesState::new);
                        for s in run {
                            st.add(s, day);
                        }
                    }
                } else {
                    let cap = day_ends.remove(&at).expect("first key");
                    let day = utc_day(at - 1);
                    let mut session = output.session(&cap);
                    for (key, state) in series.iter_mut() {
                        for j in state.close_day(day, key.1, &config).into_iter().flatten() {
                            session.give((((key.clone(), day), j), at, 1isize));
                        }
                    }
                }
            }
            match done {
                Some(f) => piece(f, &mut pieced, &series),
                None => piece_cap = None,
            }
        }
    });
    let evaluations = judged
        .clone()
        .flat_map(|((k, j), t, d)| match j {
            Judged::Row(e) => Some(((k, e), t, d)),
            Judged::Champion(_) => None,
        })
        .as_collection();
    let decisions = judged
        .flat_map(|(((s, day), j), t, d)| match j {
            Judged::Champion(c) => Some(((s, (day, c)), t, d)),
            Judged::Row(_) => None,
        })
        .as_collection();
    Verdicts {
        evaluations,
        decisions,
        pieces,
    }
}

/// The champion per (symbol, horizon): the decision of the latest evaluated
/// day, or persistence for a series (seen in `series`) with none yet. The
/// differential formulation of [`best::champions_and_best`]'s first half,
/// kept as its oracle.
pub fn champions<'s>(
    decisions: VecCollection<'s, u64, (SeriesKey, (i32, Champion)), isize>,
    series: VecCollection<'s, u64, SeriesKey, isize>,
) -> VecCollection<'s, u64, (SeriesKey, Champion), isize> {
    let seeds = series.map(|key| (key, (i32::MIN, best::seed())));
    decisions
        .concat(seeds)
        .reduce_named("Champion", |_key, input, output| {
            // Values are sorted: the last one is the latest day.
            let ((_, c), _) = input[input.len() - 1];
            output.push((c.clone(), 1));
        })
}

/// Best predictions: the current prediction of each series' champion. The
/// differential formulation of [`best::champions_and_best`]'s second half,
/// kept as its oracle.
pub fn best_predictions<'s>(
    current: VecCollection<'s, u64, Prediction, isize>,
    champions: VecCollection<'s, u64, (SeriesKey, Champion), isize>,
) -> VecCollection<'s, u64, (Prediction, Champion), isize> {
    let current = current
        .map(|p| ((p.symbol.clone(), p.horizon_bars, p.model.clone()), p))
        .arrange_by_key_named("Arrange: current predictions");
    let champs = champions
        .map(|((symbol, h), c)| ((symbol, h, c.model.clone()), c))
        .arrange_by_key_named("Arrange: champions by model");
    current.join_core(champs, |_k, p, c| Some((p.clone(), c.clone())))
}

#[cfg(test)]
mod tests;
