//! The live view the HTTP server reads: current best prediction and champion
//! per (symbol, horizon), the daily evaluations, rolling metrics per model,
//! and counters. It is updated only from complete dataflow deliveries (see
//! `dataflows::graph`), so a reader always sees the state as of one event
//! time, never half of one.
//!
//! Rolling metrics are a view-side convenience over the last
//! [`ROLLING_WINDOW_MS`] of event time of scores; the champion itself comes
//! from the dataflow's daily evaluation.

use std::collections::{BTreeMap, VecDeque};
use std::sync::RwLock;

use dataflows::champion::{Champion, DayEvaluation, Evaluation};
use dataflows::deploy::ModelRecord;
use dataflows::predict::{Prediction, Score};
use dataflows::{Delivery, Output};
use serde::Serialize;

use crate::warehouse::date::day_string;

/// Event-time span of the rolling metrics.
pub const ROLLING_WINDOW_MS: u64 = 15 * 60 * 1_000;

/// Counters shown by `/api/health`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Stats {
    /// Ticks accepted into closed bars.
    pub ticks: u64,
    /// Bars closed (including gap-filled ones).
    pub bars: u64,
    /// Predictions made.
    pub predictions: u64,
    /// Predictions scored.
    pub scores: u64,
    /// Rejects by reason code.
    pub rejects: BTreeMap<String, u64>,
    /// Latest event time fully processed (ms), if any.
    pub event_time_ms: Option<u64>,
    /// Job runs that failed for good (see `/api/jobs`).
    pub job_failures: u64,
    /// Jobs whose latest finished run failed.
    pub jobs_failing: Vec<String>,
}

/// One best prediction with its champion.
#[derive(Clone, Debug, PartialEq)]
pub struct BestEntry {
    /// The champion's current prediction.
    pub prediction: Prediction,
    /// Why that model is champion.
    pub champion: Champion,
}

/// Rolling metrics of one model on one series.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Rolling {
    /// Scores in the window.
    pub samples: u64,
    /// Mean absolute error of the log return.
    pub mae: f64,
    /// Root mean squared error.
    pub rmse: f64,
    /// Directional hit rate.
    pub hit_rate: f64,
    /// Share of outcomes inside the 80% interval, where there was one.
    pub coverage: Option<f64>,
    /// 1 − MSE / MSE(persistence) over the same window (None without persistence scores).
    pub skill: Option<f64>,
}

/// The scores of one model on one series over the rolling window.
#[derive(Default)]
struct ScoreWindow {
    scores: VecDeque<(u64, f64, bool, Option<bool>)>,
}

impl ScoreWindow {
    fn push(&mut self, s: &Score) {
        self.scores
            .push_back((s.target_at_ms, s.error(), s.hit(), s.covered));
    }
    fn expire(&mut self, now: u64) {
        while self
            .scores
            .front()
            .is_some_and(|(t, ..)| t + ROLLING_WINDOW_MS <= now)
        {
            self.scores.pop_front();
        }
    }
    fn metrics(&self) -> Rolling {
        let n = self.scores.len();
        if n == 0 {
            return Rolling::default();
        }
        let nf = n as f64;
        let intervals: Vec<bool> = self.scores.iter().filter_map(|s| s.3).collect();
        Rolling {
            samples: n as u64,
            mae: self.scores.iter().map(|s| s.1.abs()).sum::<f64>() / nf,
            rmse: (self.scores.iter().map(|s| s.1 * s.1).sum::<f64>() / nf).sqrt(),
            hit_rate: self.scores.iter().filter(|s| s.2).count() as f64 / nf,
            coverage: (!intervals.is_empty())
                .then(|| intervals.iter().filter(|c| **c).count() as f64 / intervals.len() as f64),
            skill: None,
        }
    }
}

type Series = (String, u32);

#[derive(Default)]
struct View {
    best: BTreeMap<Series, BestEntry>,
    champions: BTreeMap<Series, Champion>,
    evaluations: BTreeMap<(String, u32, i32), BTreeMap<String, Evaluation>>,
    rolling: BTreeMap<(String, u32, String), ScoreWindow>,
    /// The registry: every model version's latest row.
    registry: BTreeMap<String, ModelRecord>,
    stats: Stats,
}

/// Everything `/api/models` shows for one (symbol, horizon).
#[derive(Clone, Debug, Serialize)]
pub struct SeriesModels {
    /// Symbol.
    pub symbol: String,
    /// Horizon in bars.
    pub horizon_bars: u32,
    /// Current champion, since when and why.
    pub champion: Option<Champion>,
    /// The last evaluated UTC day (YYYY-MM-DD), if any.
    pub last_day: Option<String>,
    /// Every model's metrics on that day.
    pub last_day_metrics: Vec<Evaluation>,
    /// Every model's rolling metrics (last 15 minutes of event time).
    pub rolling: BTreeMap<String, Rolling>,
}

/// One evaluation row, as `/api/evaluations` lists them.
#[derive(Clone, Debug, Serialize)]
pub struct EvaluationRow {
    /// Symbol.
    pub symbol: String,
    /// Horizon in bars.
    pub horizon_bars: u32,
    /// UTC day, YYYY-MM-DD.
    pub day: String,
    /// The row.
    #[serde(flatten)]
    pub evaluation: Evaluation,
}

/// Keeps `m` if it is the version's latest row (by status time, then rank).
fn upsert(registry: &mut BTreeMap<String, ModelRecord>, m: &ModelRecord) {
    let newer = registry.get(&m.id).is_none_or(|old| {
        (old.status_at_ms, old.status.rank()) <= (m.status_at_ms, m.status.rank())
    });
    if newer {
        registry.insert(m.id.clone(), m.clone());
    }
}

/// Shared between the delivery router (writer) and HTTP handlers (readers).
#[derive(Default)]
pub struct LiveView {
    view: RwLock<View>,
}

impl LiveView {
    /// An empty view.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one complete delivery.
    pub fn apply(&self, d: &Delivery) {
        let mut v = self.view.write().unwrap_or_else(|e| e.into_inner());
        // Retractions first: a delivery may replace a key's entry.
        for (o, _) in d.changes.iter().filter(|(_, diff)| *diff < 0) {
            match o {
                Output::Best(p, c) => {
                    let key = (p.symbol.clone(), p.horizon_bars);
                    if v.best
                        .get(&key)
                        .is_some_and(|e| &e.prediction == p && &e.champion == c)
                    {
                        v.best.remove(&key);
                    }
                }
                Output::Champion(k, c) if v.champions.get(k) == Some(c) => {
                    v.champions.remove(k);
                }
                Output::Evaluation(e) => {
                    let key = (e.symbol.clone(), e.horizon_bars, e.day);
                    if let Some(rows) = v.evaluations.get_mut(&key) {
                        if rows.get(&e.evaluation.model) == Some(&e.evaluation) {
                            rows.remove(&e.evaluation.model);
                        }
                    }
                }
                _ => {}
            }
        }
        for o in d.inserted() {
            match o {
                Output::Best(p, c) => {
                    let key = (p.symbol.clone(), p.horizon_bars);
                    v.best.insert(
                        key,
                        BestEntry {
                            prediction: p.clone(),
                            champion: c.clone(),
                        },
                    );
                }
                Output::Champion(k, c) => {
                    v.champions.insert(k.clone(), c.clone());
                }
                Output::Evaluation(DayEvaluation {
                    symbol,
                    horizon_bars,
                    day,
                    evaluation,
                }) => {
                    v.evaluations
                        .entry((symbol.clone(), *horizon_bars, *day))
                        .or_default()
                        .insert(evaluation.model.clone(), evaluation.clone());
                }
                Output::Bar(b) => {
                    v.stats.bars += 1;
                    v.stats.ticks += u64::from(b.trades);
                }
                Output::Prediction(_) => v.stats.predictions += 1,
                Output::Model(m) => upsert(&mut v.registry, m),
                Output::Score(s) => {
                    let s = &s.score;
                    v.stats.scores += 1;
                    v.rolling
                        .entry((s.symbol.clone(), s.horizon_bars, s.model.clone()))
                        .or_default()
                        .push(s);
                }
                Output::Reject(r) => {
                    *v.stats
                        .rejects
                        .entry(r.reason.code().to_string())
                        .or_default() += 1
                }
                Output::Features(_) => {}
            }
        }
        v.evaluations.retain(|_, rows| !rows.is_empty());
        if d.time > 0 {
            let now = v.stats.event_time_ms.map_or(d.time, |t| t.max(d.time));
            v.stats.event_time_ms = Some(now);
            for w in v.rolling.values_mut() {
                w.expire(now);
            }
        }
    }

    /// All best predictions, by (symbol, horizon).
    pub fn best(&self) -> Vec<BestEntry> {
        let v = self.view.read().unwrap_or_else(|e| e.into_inner());
        v.best.values().cloned().collect()
    }

    /// Best predictions of one symbol.
    pub fn best_for(&self, symbol: &str) -> Vec<BestEntry> {
        let v = self.view.read().unwrap_or_else(|e| e.into_inner());
        v.best
            .range((symbol.to_string(), 0)..=(symbol.to_string(), u32::MAX))
            .map(|(_, e)| e.clone())
            .collect()
    }

    /// Champion, last day's evaluation and rolling metrics per series
    /// (optionally of one symbol).
    pub fn models(&self, symbol: Option<&str>) -> Vec<SeriesModels> {
        let v = self.view.read().unwrap_or_else(|e| e.into_inner());
        let mut series: Vec<Series> = v.champions.keys().cloned().collect();
        series.extend(v.rolling.keys().map(|(s, h, _)| (s.clone(), *h)));
        series.sort();
        series.dedup();
        series
            .into_iter()
            .filter(|(s, _)| symbol.is_none_or(|x| x == s))
            .map(|(s, h)| {
                let last = v
                    .evaluations
                    .range((s.clone(), h, i32::MIN)..=(s.clone(), h, i32::MAX))
                    .next_back()
                    .map(|((_, _, day), rows)| (*day, rows.values().cloned().collect::<Vec<_>>()));
                let mut rolling: BTreeMap<String, Rolling> = v
                    .rolling
                    .range((s.clone(), h, String::new())..)
                    .take_while(|((s2, h2, _), _)| *s2 == s && *h2 == h)
                    .map(|((_, _, m), w)| (m.clone(), w.metrics()))
                    .collect();
                let base = rolling
                    .get(dataflows::models::PERSISTENCE)
                    .map(|r| r.rmse * r.rmse);
                for r in rolling.values_mut() {
                    r.skill = base
                        .filter(|b| *b > 0.0 && r.samples > 0)
                        .map(|b| 1.0 - r.rmse * r.rmse / b);
                }
                SeriesModels {
                    champion: v.champions.get(&(s.clone(), h)).cloned(),
                    last_day: last.as_ref().map(|(d, _)| day_string(*d)),
                    last_day_metrics: last.map(|(_, rows)| rows).unwrap_or_default(),
                    rolling,
                    symbol: s,
                    horizon_bars: h,
                }
            })
            .collect()
    }

    /// Evaluation rows, optionally of one symbol and/or one day.
    pub fn evaluations(&self, symbol: Option<&str>, day: Option<i32>) -> Vec<EvaluationRow> {
        let v = self.view.read().unwrap_or_else(|e| e.into_inner());
        v.evaluations
            .iter()
            .filter(|((s, _, d), _)| symbol.is_none_or(|x| x == s) && day.is_none_or(|x| x == *d))
            .flat_map(|((s, h, d), rows)| {
                rows.values().map(move |e| EvaluationRow {
                    symbol: s.clone(),
                    horizon_bars: *h,
                    day: day_string(*d),
                    evaluation: e.clone(),
                })
            })
            .collect()
    }

    /// Is this symbol known (has a champion or a score)?
    pub fn knows_symbol(&self, symbol: &str) -> bool {
        let v = self.view.read().unwrap_or_else(|e| e.into_inner());
        v.champions.keys().any(|(s, _)| s == symbol)
            || v.rolling.keys().any(|(s, _, _)| s == symbol)
    }

    /// Applies registry rows written outside the dataflow (promotions).
    pub fn apply_registry(&self, rows: &[ModelRecord]) {
        let mut v = self.view.write().unwrap_or_else(|e| e.into_inner());
        for m in rows {
            upsert(&mut v.registry, m);
        }
    }

    /// Every model version's current row, by id (optionally only those
    /// matching `filter`).
    pub fn registry(&self, filter: impl Fn(&ModelRecord) -> bool) -> Vec<ModelRecord> {
        let v = self.view.read().unwrap_or_else(|e| e.into_inner());
        v.registry.values().filter(|m| filter(m)).cloned().collect()
    }

    /// Sets the orchestrator's failure counters shown by `/api/health`.
    pub fn set_jobs_health(&self, failures: u64, failing: Vec<String>) {
        let mut v = self.view.write().unwrap_or_else(|e| e.into_inner());
        v.stats.job_failures = failures;
        v.stats.jobs_failing = failing;
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        self.view
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .stats
            .clone()
    }
}
