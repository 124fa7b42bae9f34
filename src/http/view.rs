//! The live view the HTTP server reads: current best prediction and champion
//! per (symbol, horizon), the daily evaluations, rolling metrics per model,
//! and counters. It is updated only from complete dataflow deliveries (see
//! `dataflows::graph`), so a reader always sees the state as of one event
//! time, never half of one.
//!
//! Rolling metrics are a view-side convenience over the last
//! [`ROLLING_WINDOW_MS`] of event time of scores; the champion itself comes
//! from the dataflow's daily evaluation. The view also keeps the bounded
//! recent history the charts read ([`History`]) and publishes every
//! delivery's visible changes to the SSE [`Hub`], serialised outside its
//! lock. `apply` runs on the delivery router's hot path: it does O(changes)
//! work per delivery and never waits on a reader or a client.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use dataflows::champion::{Champion, DayEvaluation, Evaluation};
use dataflows::deploy::ModelRecord;
use dataflows::predict::{Prediction, Score};
use dataflows::{Delivery, Output};
use serde::Serialize;
use utoipa::ToSchema;

use super::history::{BarPoint, History};
use super::stream::{Hub, StreamConfig};
use super::types::{ChampionView, EvaluationView, PredictionView};
use crate::warehouse::date::day_string;

/// Wall time between two `stats` events on the stream at the most.
const STATS_EVERY: Duration = Duration::from_millis(500);

/// Event-time span of the rolling metrics.
pub const ROLLING_WINDOW_MS: u64 = 15 * 60 * 1_000;

/// Counters shown by `/api/health` (and `/metrics`).
#[derive(Clone, Debug, Default, Serialize, ToSchema)]
pub struct Stats {
    /// Ticks accepted into closed bars.
    pub ticks: u64,
    /// Bars closed (including gap-filled ones).
    pub bars: u64,
    /// Of those, gap-filling flat bars.
    pub bars_filled: u64,
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
#[derive(Clone, Debug, Default, Serialize, PartialEq, ToSchema)]
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
    history: History,
    /// The registry: every model version's latest row.
    registry: BTreeMap<String, ModelRecord>,
    stats: Stats,
}

/// Everything `/api/models` shows for one (symbol, horizon).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SeriesModels {
    /// Symbol.
    pub symbol: String,
    /// Horizon in bars.
    pub horizon_bars: u32,
    /// Current champion, since when and why.
    pub champion: Option<ChampionView>,
    /// The last evaluated UTC day (YYYY-MM-DD), if any.
    pub last_day: Option<String>,
    /// Every model's metrics on that day.
    pub last_day_metrics: Vec<EvaluationView>,
    /// Every model's rolling metrics (last 15 minutes of event time).
    pub rolling: BTreeMap<String, Rolling>,
}

/// One evaluation row, as `/api/evaluations` lists them.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct EvaluationRow {
    /// Symbol.
    pub symbol: String,
    /// Horizon in bars.
    pub horizon_bars: u32,
    /// UTC day, YYYY-MM-DD.
    pub day: String,
    /// The row.
    #[serde(flatten)]
    pub evaluation: EvaluationView,
}

/// A change the stream publishes, built under the view's lock and
/// serialised after it is released.
enum Change {
    Bar(String, BarPoint),
    Best(&'static str, PredictionView),
    Champion(&'static str, String, u32, ChampionView),
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
pub struct LiveView {
    view: RwLock<View>,
    hub: Arc<Hub>,
    last_stats: Mutex<Option<Instant>>,
}

impl Default for LiveView {
    fn default() -> Self {
        LiveView::with_stream(StreamConfig::default())
    }
}

impl LiveView {
    /// An empty view.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty view whose SSE hub uses `config`.
    pub fn with_stream(config: StreamConfig) -> Self {
        LiveView {
            view: RwLock::default(),
            hub: Arc::new(Hub::new(config)),
            last_stats: Mutex::new(None),
        }
    }

    /// The SSE hub the view publishes its changes to.
    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// Applies one complete delivery and publishes its visible changes.
    pub fn apply(&self, d: &Delivery) {
        let mut changes: Vec<Change> = Vec::new();
        let stats_due = {
            let mut last = self.last_stats.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let due = last.is_none_or(|t| now.duration_since(t) >= STATS_EVERY);
            if due {
                *last = Some(now);
            }
            due
        };
        let stats = self.apply_locked(d, &mut changes, stats_due);
        if changes.is_empty() && stats.is_none() {
            return;
        }
        let mut events: Vec<(&'static str, String)> = changes
            .iter()
            .map(|c| match c {
                Change::Bar(symbol, b) => ("bar", json(&BarEvent { symbol, bar: b })),
                Change::Best(op, p) => ("best", json(&BestEvent { op, prediction: p })),
                Change::Champion(op, symbol, horizon_bars, champion) => (
                    "champion",
                    json(&ChampionEvent {
                        op,
                        symbol,
                        horizon_bars: *horizon_bars,
                        at_ms: d.time,
                        champion,
                    }),
                ),
            })
            .collect();
        if let Some(s) = stats {
            events.push(("stats", json(&s)));
        }
        self.hub.publish(events);
    }

    fn apply_locked(&self, d: &Delivery, changes: &mut Vec<Change>, stats: bool) -> Option<Stats> {
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
                        if let Some(old) = v.best.remove(&key) {
                            changes.push(Change::Best("retract", PredictionView::from(&old)));
                        }
                    }
                }
                Output::Champion(k, c) if v.champions.get(k) == Some(c) => {
                    v.champions.remove(k);
                    changes.push(Change::Champion(
                        "retract",
                        k.0.clone(),
                        k.1,
                        ChampionView::from(c),
                    ));
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
                    let entry = BestEntry {
                        prediction: p.clone(),
                        champion: c.clone(),
                    };
                    changes.push(Change::Best("insert", PredictionView::from(&entry)));
                    v.best.insert(key, entry);
                }
                Output::Champion(k, c) => {
                    v.history.champion(&k.0, k.1, d.time, c);
                    changes.push(Change::Champion(
                        "insert",
                        k.0.clone(),
                        k.1,
                        ChampionView::from(c),
                    ));
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
                    v.stats.bars_filled += u64::from(b.filled);
                    v.stats.ticks += u64::from(b.trades);
                    v.history.bar(b);
                    changes.push(Change::Bar(b.symbol.clone(), BarPoint::from(b)));
                }
                Output::Prediction(_) => v.stats.predictions += 1,
                Output::Model(m) => upsert(&mut v.registry, m),
                Output::Score(s) => {
                    let s = &s.score;
                    v.stats.scores += 1;
                    v.history.score(s);
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
        stats.then(|| v.stats.clone())
    }

    /// Reads the recent history under the view's lock.
    pub fn with_history<T>(&self, f: impl FnOnce(&History) -> T) -> T {
        let v = self.view.read().unwrap_or_else(|e| e.into_inner());
        f(&v.history)
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
                    champion: v.champions.get(&(s.clone(), h)).map(ChampionView::from),
                    last_day: last.as_ref().map(|(d, _)| day_string(*d)),
                    last_day_metrics: last
                        .map(|(_, rows)| rows.iter().map(EvaluationView::from).collect())
                        .unwrap_or_default(),
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
                    evaluation: EvaluationView::from(e),
                })
            })
            .collect()
    }

    /// Is this symbol known (has a bar, a champion or a score)?
    pub fn knows_symbol(&self, symbol: &str) -> bool {
        let v = self.view.read().unwrap_or_else(|e| e.into_inner());
        v.history.last_bars(symbol, 1).len() == 1
            || v.champions.keys().any(|(s, _)| s == symbol)
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

#[derive(Serialize)]
struct BarEvent<'a> {
    symbol: &'a str,
    #[serde(flatten)]
    bar: &'a BarPoint,
}

#[derive(Serialize)]
struct BestEvent<'a> {
    op: &'a str,
    #[serde(flatten)]
    prediction: &'a PredictionView,
}

#[derive(Serialize)]
struct ChampionEvent<'a> {
    op: &'a str,
    symbol: &'a str,
    horizon_bars: u32,
    at_ms: u64,
    champion: &'a ChampionView,
}

/// An event body as JSON; these types always serialise, and a failure
/// would become `null` rather than a panic.
fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}
