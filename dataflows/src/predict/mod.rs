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
//! it replaces with −1, at the same time. A horizon in ms is the horizon in
//! bars times the bar's own length, so nothing here is configured twice.
//!
//! Batch models (trained outside, see [`crate::deploy`]) arrive on a second
//! input as deployments, each in a slot per configured batch-model name.
//! Deployments at a time are applied before the bars at that time, so a
//! version deployed at T makes the prediction at the bar closing at T and
//! after; an empty slot makes no prediction. Batch models are predicted,
//! calibrated ([`crate::calibrate`]: shrunk by their own record, bounded,
//! given intervals) and scored exactly like the online ones (they only
//! never learn), and every prediction and score of one names the version
//! that made it.

use std::collections::{BTreeMap, VecDeque};

use differential_dataflow::{AsCollection, VecCollection};
use serde::{Deserialize, Serialize};
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::Capability;
use timely::dataflow::StreamVec;
use tracing::warn;

use crate::bars::Bar;
use crate::calibrate::{Calibrator, Issued};
use crate::deploy::{BatchModel, Deployment, ModelVersion};
use crate::features::{FeatureState, Features, FEATURES, FEATURE_COUNT};
use crate::models::{ModelParams, Online, OnlineModel};
use crate::num::{stable_hash, F64};
use crate::snapshot::{decode, encode, route, Cuts, Entry, Key, Op, Piece, Restored};

mod snapshot;

pub use snapshot::SymbolSnapshot;

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
    /// Lower end of the 80% prediction interval of the return (adaptive
    /// conformal on this model's recent scaled residuals on this series,
    /// [`crate::intervals`]), once known.
    pub interval_low: Option<F64>,
    /// Upper end of the 80% prediction interval of the return.
    pub interval_high: Option<F64>,
    /// The batch model version that made it (None: an online model).
    pub batch: Option<ModelVersion>,
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

/// A scored prediction with the batch model version that made it (None:
/// an online model): a row of the scores table.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Scored {
    /// The score.
    pub score: Score,
    /// The batch model version that made the prediction.
    pub batch: Option<ModelVersion>,
}

/// What the predictor produces for one or more bars, by kind.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Predicted {
    /// Changes to the current-prediction collection (+1 new, −1 replaced).
    pub current: Vec<(Prediction, isize)>,
    /// Scored predictions.
    pub scores: Vec<Scored>,
    /// The features of a symbol at a bar close (once warmed up).
    pub features: Vec<FeatureRow>,
}

/// One symbol's features at one bar close, as a warehouse row.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FeatureRow {
    /// Symbol.
    pub symbol: String,
    /// Bar close (epoch ms).
    pub end_ms: u64,
    /// The feature values, in [`FEATURES`] order.
    pub values: [F64; FEATURE_COUNT],
    /// Bars since the last trade.
    pub bars_since_trade: u32,
}

impl FeatureRow {
    fn of(symbol: &str, end_ms: u64, f: &Features) -> Self {
        FeatureRow {
            symbol: symbol.to_string(),
            end_ms,
            values: f.values().map(F64),
            bars_since_trade: f.bars_since_trade,
        }
    }

    /// The value of the feature called `name`, if there is one.
    pub fn get(&self, name: &str) -> Option<f64> {
        let k = FEATURES.iter().position(|d| d.name == name)?;
        Some(self.values[k].0)
    }
}

/// Horizons (bars) predicted unless configured otherwise.
pub const DEFAULT_HORIZONS: [u32; 3] = [1, 5, 15];

/// Predictor settings.
#[derive(Clone, Debug)]
pub struct PredictConfig {
    /// Horizons in bars.
    pub horizons: Vec<u32>,
    /// The models' hyper-parameters.
    pub params: ModelParams,
    /// The online models run per (symbol, horizon), in the zoo's order
    /// ([`ModelParams::select`]; default: all of them).
    pub models: Vec<&'static str>,
    /// Names of the batch-model slots per (symbol, horizon), in output
    /// order; a deployment fills the slot of its kind.
    pub batch_models: Vec<&'static str>,
}

impl Default for PredictConfig {
    fn default() -> Self {
        PredictConfig {
            horizons: DEFAULT_HORIZONS.to_vec(),
            params: ModelParams::default(),
            models: ModelParams::default().names(),
            batch_models: Vec::new(),
        }
    }
}

/// One model's prediction awaiting its outcome.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Made {
    issued: Issued,
    batch: Option<ModelVersion>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Pending {
    made_at: u64,
    base: f64,
    x: Features,
    /// Per slot (online models, then batch slots); None: an empty slot.
    preds: Vec<Option<Made>>,
}

struct HorizonState {
    h: u32,
    models: Vec<Online>,
    /// One slot per configured batch-model name.
    batch: Vec<(&'static str, Option<BatchModel>)>,
    /// Per slot (online models, then batch slots, as in `current`): what
    /// its raw forecasts become when served.
    calibrators: Vec<Calibrator>,
    pending: VecDeque<Pending>,
    current: Vec<Option<Prediction>>,
}

/// Everything the predictor keeps for one symbol: features, and per horizon
/// the models, their calibration (shrinkage, intervals) and the predictions
/// awaiting outcomes.
pub struct SymbolState {
    features: FeatureState,
    horizons: Vec<HorizonState>,
}

impl SymbolState {
    /// Fresh state for `config`.
    pub fn new(config: &PredictConfig) -> Self {
        SymbolState {
            features: FeatureState::new(),
            horizons: config
                .horizons
                .iter()
                .map(|&h| {
                    let models: Vec<_> = config
                        .params
                        .instantiate(h)
                        .into_iter()
                        .filter(|m| config.models.contains(&m.name()))
                        .collect();
                    let n = models.len() + config.batch_models.len();
                    HorizonState {
                        h,
                        models,
                        batch: config.batch_models.iter().map(|k| (*k, None)).collect(),
                        calibrators: vec![Calibrator::new(h); n],
                        pending: VecDeque::new(),
                        current: vec![None; n],
                    }
                })
                .collect(),
        }
    }
}

/// Processes one bar of one symbol, appending what it produces to `out`.
pub fn on_bar(state: &mut SymbolState, bar: &Bar, out: &mut Predicted) {
    if bar.after_gap {
        for hs in state.horizons.iter_mut() {
            for cur in hs.current.iter_mut() {
                if let Some(p) = cur.take() {
                    out.current.push((p, -1));
                }
            }
            hs.pending.clear();
        }
        state.features = FeatureState::new();
    }
    let x = state.features.update(bar);
    if let Some(f) = &x {
        out.features
            .push(FeatureRow::of(&bar.symbol, bar.end_ms, f));
    }
    let close = bar.close.0;
    let interval_ms = bar.end_ms - bar.start_ms;
    for hs in state.horizons.iter_mut() {
        let horizon_ms = u64::from(hs.h) * interval_ms;
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
            let online = hs.models.len();
            for (m, made) in p.preds.into_iter().enumerate() {
                let Some(Made { issued, batch }) = made else {
                    continue;
                };
                let covered = hs.calibrators[m].settle(&issued, &p.x, y);
                let name = match hs.models.get(m) {
                    Some(model) => model.name(),
                    None => hs.batch[m - online].0,
                };
                out.scores.push(Scored {
                    score: Score {
                        symbol: bar.symbol.clone(),
                        horizon_bars: hs.h,
                        model: name.to_string(),
                        made_at_ms: p.made_at,
                        target_at_ms: bar.end_ms,
                        predicted_return: F64(issued.ret),
                        realized_return: F64(y),
                        covered,
                    },
                    batch,
                });
                if let Some(model) = hs.models.get_mut(m) {
                    if model.learn(&p.x, y) {
                        warn!(symbol = %bar.symbol, model = model.name(), horizon = hs.h, "model reset after divergence");
                    }
                }
            }
        }
        let Some(x) = x else { continue };
        let online = hs.models.len();
        let mut preds = Vec::with_capacity(online + hs.batch.len());
        for m in 0..online + hs.batch.len() {
            let (model, batch): (&mut dyn OnlineModel, Option<ModelVersion>) = if m < online {
                (&mut hs.models[m], None)
            } else {
                match &mut hs.batch[m - online].1 {
                    Some(b) => {
                        let version = Some(b.version().clone());
                        (b, version)
                    }
                    None => {
                        preds.push(None);
                        continue;
                    }
                }
            };
            model.observe(&x);
            let f = model.predict(&x);
            // Served: shrunk by the model's own record, bounded, with an interval.
            let issued = hs.calibrators[m].issue(f.ret, &x);
            let (r, interval) = (issued.ret, issued.interval);
            preds.push(Some(Made {
                issued,
                batch: batch.clone(),
            }));
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
                batch,
            };
            if let Some(old) = hs.current[m].replace(pred.clone()) {
                out.current.push((old, -1));
            }
            out.current.push((pred, 1));
        }
        hs.pending.push_back(Pending {
            made_at: bar.end_ms,
            base: close,
            x,
            preds,
        });
    }
}

/// Puts a deployed batch model version into its slot of `state`. The
/// slot's calibration (shrinkage record and interval) carries over from
/// the version it replaces: a slot is one forecaster whose parameters
/// change at schedule points, as an online model's change every bar, and a
/// slot retrained every hour would otherwise never hold the few hundred
/// outcomes its shrinkage needs to serve anything.
pub fn deploy(state: &mut SymbolState, d: &Deployment) -> Result<(), String> {
    let hs = state
        .horizons
        .iter_mut()
        .find(|hs| hs.h == d.horizon_bars)
        .ok_or_else(|| format!("horizon {} is not predicted", d.horizon_bars))?;
    let slot = hs
        .batch
        .iter()
        .position(|(name, _)| *name == d.kind)
        .ok_or_else(|| format!("no batch-model slot named `{}`", d.kind))?;
    let name = hs.batch[slot].0;
    let model = BatchModel::new(name, d.version.clone(), d.model.clone())?;
    hs.batch[slot].1 = Some(model);
    Ok(())
}

/// The predictor's outputs, as typed streams.
pub struct PredictorStreams<'s> {
    /// The current prediction per (symbol, horizon, model), as a collection.
    pub current: VecCollection<'s, u64, Prediction, isize>,
    /// Scored predictions, each with the time it was scored at.
    pub scores: StreamVec<'s, u64, (Scored, u64)>,
    /// Feature rows.
    pub features: StreamVec<'s, u64, FeatureRow>,
    /// Snapshot pieces (none without a snapshot interval).
    pub pieces: StreamVec<'s, u64, Piece>,
}

/// Builds the predictor. Bars must already be partitioned by symbol (they
/// are, coming from [`crate::bars::bars`]), so this is pipelined;
/// deployments are exchanged to the worker of their symbol (the same hash).
/// Everything a bar produces is emitted at the time of the bar's message
/// (the close of the real bar that triggered it; gap-filled bars ride on
/// the next real bar), once the frontier of both inputs has passed it, on
/// one output per kind.
///
/// With `snapshot_every` (ms), `pieces` carries a [`Piece`] whenever the
/// frontier passes cut times: per symbol, its [`SymbolSnapshot`] after
/// every time before the cut was processed and none after. `restore`
/// brings the [`SymbolSnapshot`]s of a snapshot the run starts from, at
/// time 0; each restored current prediction is emitted again at time 0
/// (+1), so the `current` collection downstream holds what it held at the
/// cut.
pub fn predictor<'s>(
    bars: StreamVec<'s, u64, Bar>,
    deployments: StreamVec<'s, u64, Deployment>,
    restore: StreamVec<'s, u64, Restored>,
    config: PredictConfig,
    snapshot_every: Option<Cuts>,
) -> PredictorStreams<'s> {
    let worker = bars.scope().index();
    let mut builder = OperatorBuilder::new("Predict".to_owned(), bars.scope());
    let mut input = builder.new_input(bars, Pipeline);
    let mut deploy_input = builder.new_input(
        deployments,
        Exchange::new(|d: &Deployment| stable_hash(&d.symbol)),
    );
    let mut restore_input =
        builder.new_input(restore, Exchange::new(|r: &Restored| route(&r.entry.key)));
    let (current_out, current) = builder.new_output::<Vec<(Prediction, u64, isize)>>();
    let (scores_out, scores) = builder.new_output::<Vec<(Scored, u64)>>();
    let (features_out, features) = builder.new_output::<Vec<FeatureRow>>();
    let (piece_out, pieces) = builder.new_output::<Vec<Piece>>();
    let mut piece_out = OutputBuilder::from(piece_out);
    let mut current_out = OutputBuilder::from(current_out);
    let mut scores_out = OutputBuilder::from(scores_out);
    let mut features_out = OutputBuilder::from(features_out);
    builder.build(move |mut initial| {
        // Held until the inputs end: pieces go out at time 0.
        let mut piece_cap = initial.pop();
        drop(initial);
        // Cuts up to here have had their piece.
        let mut pieced: u64 = 0;
        // Per time: one capability per output, the bars and the deployments at that time.
        type Slot = ([Capability<u64>; 3], Vec<Bar>, Vec<Deployment>);
        let mut stash: BTreeMap<u64, Slot> = BTreeMap::new();
        let mut symbols: BTreeMap<String, SymbolState> = BTreeMap::new();
        let mut out = Predicted::default();
        move |frontiers| {
            restore_input.for_each_stamp(|cap, data| {
                let c0 = cap.delayed(&0, 0);
                let mut current = current_out.activate();
                let mut session = current.session(&c0);
                for r in data.flat_map(|d| d.drain(..)) {
                    let Key::Symbol(symbol) = r.entry.key else {
                        continue;
                    };
                    let st = decode(&r.entry.bytes)
                        .and_then(|snap| SymbolState::restore(&config, snap))
                        .expect("restored state is checked before the run");
                    session.give_iterator(st.current().map(|p| (p.clone(), 0, 1)));
                    symbols.insert(symbol, st);
                }
            });
            input.for_each_stamp(|cap, data| {
                let Some(&time) = cap.least() else { return };
                let slot = stash.entry(time).or_insert_with(|| {
                    (
                        [0, 1, 2].map(|port| cap.delayed(&time, port)),
                        Vec::new(),
                        Vec::new(),
                    )
                });
                slot.1.extend(data.flat_map(|d| d.drain(..)));
            });
            deploy_input.for_each_stamp(|cap, data| {
                let Some(&time) = cap.least() else { return };
                let slot = stash.entry(time).or_insert_with(|| {
                    (
                        [0, 1, 2].map(|port| cap.delayed(&time, port)),
                        Vec::new(),
                        Vec::new(),
                    )
                });
                slot.2.extend(data.flat_map(|d| d.drain(..)));
            });
            let (mut current, mut scores, mut features) = (
                current_out.activate(),
                scores_out.activate(),
                features_out.activate(),
            );
            // Everything before `done` is complete (None: everything is).
            let done = frontiers
                .iter()
                .filter_map(|f| f.frontier().first().copied())
                .min();
            let mut piece = |upto: u64, pieced: &mut u64, symbols: &BTreeMap<String, SymbolState>| {
                if let (Some(cuts), Some(cap)) = (snapshot_every.as_ref(), piece_cap.as_ref()) {
                    if cuts.crosses(*pieced, upto) {
                        let piece = Piece::timed(Op::Predict, worker, *pieced, || {
                            let entries = symbols
                                .iter()
                                .map(|(symbol, st)| Entry {
                                    op: Op::Predict,
                                    key: Key::Symbol(symbol.clone()),
                                    bytes: encode(&st.snapshot()),
                                })
                                .collect();
                            (upto, entries)
                        });
                        piece_out.activate().session(cap).give(piece);
                    }
                }
                *pieced = (*pieced).max(upto);
            };
            while let Some(entry) = stash.first_entry() {
                if frontiers.iter().any(|f| f.less_equal(entry.key())) {
                    break;
                }
                let time = *entry.key();
                // Cuts up to this time see the state before it.
                piece(time, &mut pieced, &symbols);
                let ([c0, c1, c2], mut bars, mut deploys) = entry.remove();
                deploys.sort();
                for d in &deploys {
                    let st = symbols
                        .entry(d.symbol.clone())
                        .or_insert_with(|| SymbolState::new(&config));
                    if let Err(e) = deploy(st, d) {
                        warn!(symbol = %d.symbol, model = %d.kind, id = %d.version.id, error = %e, "deployment not applied");
                    }
                }
                bars.sort_by(|a, b| (a.end_ms, &a.symbol).cmp(&(b.end_ms, &b.symbol)));
                for bar in &bars {
                    if !symbols.contains_key(&bar.symbol) {
                        symbols.insert(bar.symbol.clone(), SymbolState::new(&config));
                    }
                    let st = symbols.get_mut(&bar.symbol).expect("inserted");
                    on_bar(st, bar, &mut out);
                }
                current
                    .session(&c0)
                    .give_iterator(out.current.drain(..).map(|(p, d)| (p, time, d)));
                scores
                    .session(&c1)
                    .give_iterator(out.scores.drain(..).map(|s| (s, time)));
                features.session(&c2).give_iterator(out.features.drain(..));
            }
            match done {
                Some(f) => piece(f, &mut pieced, &symbols),
                None => piece_cap = None,
            }
        }
    });
    PredictorStreams {
        current: current.as_collection(),
        scores,
        features,
        pieces,
    }
}

#[cfg(test)]
mod tests;
