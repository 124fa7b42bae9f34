//! Per-symbol prediction: features, online models, prequential scoring.
//!
//! Bars arrive on the worker that owns their symbol. Once the frontier has
//! passed a time, the bars at that time are processed in (end, symbol)
//! order. For each bar t of a symbol and each horizon h:
//!   1. predictions made at bar t−h are scored against the realised log
//!      return from t−h to t, exactly once, and each model then learns from
//!      (features at t−h, realised return) — prequential, no look-ahead;
//!   2. each model predicts the return from t to t+h from the features at t.
//!
//! The current prediction per (symbol, horizon, model) is maintained as a
//! differential collection: a new prediction is emitted with +1 and the one
//! it replaces with −1, at the same time.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Capability;
use timely::dataflow::StreamVec;
use tracing::warn;

use crate::bars::Bar;
use crate::features::{FeatureState, Features};
use crate::models::{ModelSet, OnlineModel};
use crate::num::F64;

/// One model's prediction for one (symbol, horizon) made at a bar close.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Prediction {
    /// Symbol.
    pub symbol: String,
    /// Horizon in bars.
    pub horizon_bars: u32,
    /// Model name.
    pub model: String,
    /// Horizon in ms.
    pub horizon_ms: u64,
    /// Close time of the bar the prediction was made at (epoch ms).
    pub made_at_ms: u64,
    /// Close time of the bar it predicts (epoch ms).
    pub target_at_ms: u64,
    /// Close price at `made_at_ms`.
    pub base_price: F64,
    /// Predicted log return from `made_at_ms` to `target_at_ms`.
    pub predicted_return: F64,
    /// `base_price · exp(predicted_return)`.
    pub predicted_price: F64,
    /// Probability that the return is positive (models that have one).
    pub direction_prob: Option<F64>,
    /// Lower end of the 80% prediction interval of the return (conformal:
    /// this model's recent residual quantiles on this series), once known.
    pub interval_low: Option<F64>,
    /// Upper end of the 80% prediction interval of the return.
    pub interval_high: Option<F64>,
}

/// A prediction scored against its realised outcome.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Score {
    /// Symbol.
    pub symbol: String,
    /// Horizon in bars.
    pub horizon_bars: u32,
    /// Model name.
    pub model: String,
    /// When the prediction was made.
    pub made_at_ms: u64,
    /// When its outcome became known.
    pub target_at_ms: u64,
    /// What the model said.
    pub predicted_return: F64,
    /// What happened.
    pub realized_return: F64,
    /// Whether the outcome fell inside the prediction interval (None: no interval yet).
    pub covered: Option<bool>,
}

impl Score {
    /// Prediction error (predicted − realised).
    pub fn error(&self) -> f64 {
        self.predicted_return.0 - self.realized_return.0
    }
    /// True when the prediction had the sign of the outcome (zero is no call).
    pub fn hit(&self) -> bool {
        self.predicted_return.0 * self.realized_return.0 > 0.0
    }
}

/// What the predictor emits.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ModelEvent {
    /// A change to the current-prediction collection (+1 new, −1 replaced).
    Current(Prediction, isize),
    /// A scored prediction.
    Score(Score),
    /// The features of a symbol at a bar close (once warmed up).
    Features(FeatureRow),
}

/// One symbol's features at one bar close, as a warehouse row.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FeatureRow {
    /// Symbol.
    pub symbol: String,
    /// Bar close (epoch ms).
    pub end_ms: u64,
    /// ret1, ret5, ret15, ret60, rvol30, rvol120, parkinson, ema_fast,
    /// ema_slow, macd, rsi, vwap_dev, volume_z, ofi (see [`FEATURE_COLUMNS`]).
    pub values: Vec<F64>,
    /// Bars since the last trade.
    pub bars_since_trade: u32,
}

/// Names of [`FeatureRow::values`], in order.
pub const FEATURE_COLUMNS: [&str; 14] = [
    "ret1",
    "ret5",
    "ret15",
    "ret60",
    "rvol30",
    "rvol120",
    "parkinson",
    "ema_fast",
    "ema_slow",
    "macd",
    "rsi",
    "vwap_dev",
    "volume_z",
    "ofi",
];

impl FeatureRow {
    fn of(symbol: &str, end_ms: u64, f: &Features) -> Self {
        let v = [
            f.ret[0],
            f.ret[1],
            f.ret[2],
            f.ret[3],
            f.rvol30,
            f.rvol120,
            f.parkinson,
            f.ema_fast,
            f.ema_slow,
            f.macd,
            f.rsi,
            f.vwap_dev,
            f.volume_z,
            f.ofi,
        ];
        FeatureRow {
            symbol: symbol.to_string(),
            end_ms,
            values: v.iter().map(|x| F64(*x)).collect(),
            bars_since_trade: f.bars_since_trade,
        }
    }
}

/// Predictor settings.
#[derive(Clone, Debug)]
pub struct PredictConfig {
    /// Horizons in bars.
    pub horizons: Vec<u32>,
    /// Bars of history before the first prediction.
    pub warmup: u64,
    /// Bar length (to turn horizons into ms).
    pub interval_ms: u64,
    /// The models to run.
    pub models: ModelSet,
}

impl Default for PredictConfig {
    fn default() -> Self {
        PredictConfig {
            horizons: vec![1, 5, 15],
            warmup: 0,
            interval_ms: 1_000,
            models: ModelSet::default(),
        }
    }
}

struct Pending {
    made_at: u64,
    base: f64,
    x: Features,
    preds: Vec<(f64, Option<(f64, f64)>)>,
}

/// Largest forecast, in volatilities of the horizon (√h · realised vol).
pub const MAX_MOVE_VOLS: f64 = 10.0;

/// Central coverage of the prediction intervals.
pub const INTERVAL_COVERAGE: f64 = 0.8;
/// Residuals kept per (symbol, horizon, model) for the intervals.
pub const RESIDUAL_WINDOW: usize = 250;
/// Residuals needed before an interval is reported.
pub const MIN_RESIDUALS: usize = 20;

/// The last `cap` residuals of a model, kept sorted for quantiles: O(log n)
/// search plus a short memmove per update, no re-sorting.
#[derive(Clone, Debug, Default)]
pub struct Residuals {
    ring: VecDeque<f64>,
    sorted: Vec<f64>,
    cap: usize,
}

impl Residuals {
    /// An empty window of `cap` residuals.
    pub fn new(cap: usize) -> Self {
        Residuals {
            ring: VecDeque::with_capacity(cap + 1),
            sorted: Vec::with_capacity(cap + 1),
            cap,
        }
    }

    /// Adds a residual (realised − predicted), evicting the oldest.
    pub fn push(&mut self, r: f64) {
        if !r.is_finite() {
            return;
        }
        self.ring.push_back(r);
        let at = self.sorted.partition_point(|x| x.total_cmp(&r).is_lt());
        self.sorted.insert(at, r);
        if self.ring.len() > self.cap {
            let old = self.ring.pop_front().expect("non-empty");
            let at = self.sorted.partition_point(|x| x.total_cmp(&old).is_lt());
            self.sorted.remove(at);
        }
    }

    /// The (lower, upper) residual quantiles of a central `coverage`
    /// interval, once at least `min` residuals are known.
    pub fn interval(&self, coverage: f64, min: usize) -> Option<(f64, f64)> {
        let n = self.sorted.len();
        if n < min.max(1) {
            return None;
        }
        let tail = (1.0 - coverage) / 2.0;
        let idx = |q: f64| ((q * (n - 1) as f64).round() as usize).min(n - 1);
        Some((self.sorted[idx(tail)], self.sorted[idx(1.0 - tail)]))
    }
}

struct HorizonState {
    h: u32,
    models: Vec<Box<dyn OnlineModel>>,
    residuals: Vec<Residuals>,
    pending: VecDeque<Pending>,
    current: Vec<Option<Prediction>>,
}

/// Everything the predictor keeps for one symbol: features, and per horizon
/// the models, their residual windows and the predictions awaiting outcomes.
pub struct SymbolState {
    features: FeatureState,
    horizons: Vec<HorizonState>,
}

impl SymbolState {
    /// Fresh state for `config`.
    pub fn new(config: &PredictConfig) -> Self {
        SymbolState {
            features: FeatureState::new(config.warmup),
            horizons: config
                .horizons
                .iter()
                .map(|&h| {
                    let models = config.models.instantiate(h);
                    let n = models.len();
                    HorizonState {
                        h,
                        models,
                        residuals: vec![Residuals::new(RESIDUAL_WINDOW); n],
                        pending: VecDeque::new(),
                        current: vec![None; n],
                    }
                })
                .collect(),
        }
    }
}

/// Processes one bar of one symbol, appending what it produces to `out`.
pub fn on_bar(
    state: &mut SymbolState,
    bar: &Bar,
    config: &PredictConfig,
    out: &mut Vec<ModelEvent>,
) {
    if bar.after_gap {
        for hs in state.horizons.iter_mut() {
            for cur in hs.current.iter_mut() {
                if let Some(p) = cur.take() {
                    out.push(ModelEvent::Current(p, -1));
                }
            }
            hs.pending.clear();
        }
        state.features = FeatureState::new(config.warmup);
    }
    let x = state.features.update(bar);
    if let Some(f) = &x {
        out.push(ModelEvent::Features(FeatureRow::of(
            &bar.symbol,
            bar.end_ms,
            f,
        )));
    }
    let close = bar.close.0;
    for hs in state.horizons.iter_mut() {
        let horizon_ms = u64::from(hs.h) * config.interval_ms;
        while let Some(front) = hs.pending.front() {
            let due = front.made_at + horizon_ms;
            if due > bar.end_ms {
                break;
            }
            let p = hs.pending.pop_front().expect("front exists");
            if due < bar.end_ms {
                continue; // unreachable with gap filling; never score against the wrong bar
            }
            let y = (close / p.base).ln();
            for (m, model) in hs.models.iter_mut().enumerate() {
                let (pred, interval) = p.preds[m];
                hs.residuals[m].push(y - pred);
                out.push(ModelEvent::Score(Score {
                    symbol: bar.symbol.clone(),
                    horizon_bars: hs.h,
                    model: model.name().to_string(),
                    made_at_ms: p.made_at,
                    target_at_ms: bar.end_ms,
                    predicted_return: F64(pred),
                    realized_return: F64(y),
                    covered: interval.map(|(lo, hi)| lo <= y && y <= hi),
                }));
                if model.learn(&p.x, y) {
                    warn!(symbol = %bar.symbol, model = model.name(), horizon = hs.h, "model reset after divergence");
                }
            }
        }
        let Some(x) = x else { continue };
        let mut preds = Vec::with_capacity(hs.models.len());
        for (m, model) in hs.models.iter_mut().enumerate() {
            model.observe(&x);
            let f = model.predict(&x);
            // A forecast beyond 10 volatilities of the horizon is a model
            // out of its depth (e.g. just after a reset): cap it.
            let bound =
                (MAX_MOVE_VOLS * x.rvol120.max(x.rvol30) * f64::from(hs.h).sqrt()).max(1e-6);
            let r = if f.ret.is_finite() {
                f.ret.clamp(-bound, bound)
            } else {
                0.0
            };
            let interval = hs.residuals[m]
                .interval(INTERVAL_COVERAGE, MIN_RESIDUALS)
                .map(|(lo, hi)| (r + lo, r + hi));
            preds.push((r, interval));
            let pred = Prediction {
                symbol: bar.symbol.clone(),
                horizon_bars: hs.h,
                model: model.name().to_string(),
                horizon_ms,
                made_at_ms: bar.end_ms,
                target_at_ms: bar.end_ms + horizon_ms,
                base_price: bar.close,
                predicted_return: F64(r),
                predicted_price: F64(close * r.exp()),
                direction_prob: f.direction_prob.filter(|p| p.is_finite()).map(F64),
                interval_low: interval.map(|i| F64(i.0)),
                interval_high: interval.map(|i| F64(i.1)),
            };
            if let Some(old) = hs.current[m].replace(pred.clone()) {
                out.push(ModelEvent::Current(old, -1));
            }
            out.push(ModelEvent::Current(pred, 1));
        }
        hs.pending.push_back(Pending {
            made_at: bar.end_ms,
            base: close,
            x,
            preds,
        });
    }
}

/// Builds the predictor. Bars must already be partitioned by symbol (they
/// are, coming from [`crate::bars::bars`]), so this is pipelined. Each event
/// is paired with the timely time it is emitted at (the close of the real bar
/// that triggered it; gap-filled bars ride on the next real bar), which is
/// the time to use for collection updates derived from it.
pub fn predictor<'s>(
    bars: StreamVec<'s, u64, Bar>,
    config: PredictConfig,
) -> StreamVec<'s, u64, (ModelEvent, u64)> {
    bars.unary_frontier(Pipeline, "Predict", move |_cap, _info| {
        let mut stash: BTreeMap<u64, (Capability<u64>, Vec<Bar>)> = BTreeMap::new();
        let mut symbols: BTreeMap<String, SymbolState> = BTreeMap::new();
        let mut out = Vec::new();
        move |(input, frontier), output| {
            input.for_each_stamp(|cap, data| {
                let Some(&time) = cap.least() else { return };
                let slot = stash
                    .entry(time)
                    .or_insert_with(|| (cap.delayed(&time, output.output_index()), Vec::new()));
                slot.1.extend(data.flat_map(|d| d.drain(..)));
            });
            while let Some(entry) = stash.first_entry() {
                if frontier.less_equal(entry.key()) {
                    break;
                }
                let time = *entry.key();
                let (cap, mut bars) = entry.remove();
                bars.sort_by(|a, b| (a.end_ms, &a.symbol).cmp(&(b.end_ms, &b.symbol)));
                for bar in &bars {
                    let st = symbols
                        .entry(bar.symbol.clone())
                        .or_insert_with(|| SymbolState::new(&config));
                    on_bar(st, bar, &config, &mut out);
                }
                output
                    .session(&cap)
                    .give_iterator(out.drain(..).map(|e| (e, time)));
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bars::flat_bar;

    #[test]
    fn scores_each_prediction_once_at_its_target() {
        let config = PredictConfig {
            horizons: vec![1, 3],
            warmup: 0,
            interval_ms: 1_000,
            models: ModelSet::default(),
        };
        let mut st = SymbolState::new(&config);
        let mut out = Vec::new();
        let n = 200usize;
        let w = crate::features::WARMUP_BARS as usize;
        let closes: Vec<f64> = (0..n).map(|i| 100.0 + (i as f64 * 0.7).sin()).collect();
        for (i, c) in closes.iter().enumerate() {
            let bar = flat_bar("A-B", i as u64 * 1_000, 1_000, F64(*c));
            on_bar(&mut st, &bar, &config, &mut out);
        }
        let scores: Vec<&Score> = out
            .iter()
            .filter_map(|e| {
                if let ModelEvent::Score(s) = e {
                    Some(s)
                } else {
                    None
                }
            })
            .collect();
        let models = config.models.names().len();
        // Predictions start at bar index w-1 (after warm-up); horizon h scores bars w-1..n-h.
        assert_eq!(
            scores.iter().filter(|s| s.horizon_bars == 1).count(),
            (n - (w - 1) - 1) * models
        );
        assert_eq!(
            scores.iter().filter(|s| s.horizon_bars == 3).count(),
            (n - (w - 1) - 3) * models
        );
        for s in &scores {
            assert_eq!(
                s.target_at_ms - s.made_at_ms,
                u64::from(s.horizon_bars) * 1_000
            );
            let t = (s.target_at_ms / 1_000 - 1) as usize;
            let m = (s.made_at_ms / 1_000 - 1) as usize;
            assert!((s.realized_return.0 - (closes[t] / closes[m]).ln()).abs() < 1e-12);
        }
        // The current collection nets to one prediction per (horizon, model).
        let mut net: BTreeMap<(u32, String), isize> = BTreeMap::new();
        for e in &out {
            if let ModelEvent::Current(p, d) = e {
                *net.entry((p.horizon_bars, p.model.clone())).or_default() += d;
            }
        }
        assert_eq!(net.len(), 2 * models);
        assert!(net.values().all(|d| *d == 1));
    }
}

#[cfg(test)]
mod residual_tests {
    use super::*;

    #[test]
    fn residual_quantiles_match_a_sort() {
        let mut rng = crate::sim::Rng::new(9);
        let mut r = Residuals::new(50);
        let mut all = Vec::new();
        for i in 0..500 {
            let x = rng.normal();
            r.push(x);
            all.push(x);
            let mut last: Vec<f64> = all[all.len().saturating_sub(50)..].to_vec();
            last.sort_by(f64::total_cmp);
            let n = last.len();
            let got = r.interval(0.8, 1).unwrap();
            let idx = |q: f64| ((q * (n - 1) as f64).round() as usize).min(n - 1);
            let tail = (1.0 - 0.8) / 2.0;
            assert_eq!(got, (last[idx(tail)], last[idx(1.0 - tail)]), "step {i}");
        }
        assert!(Residuals::new(5).interval(0.8, 1).is_none());
    }
}
