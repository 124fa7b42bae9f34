//! The API's JSON shapes, each with its OpenAPI schema (`utoipa::ToSchema`)
//! derived from the same struct that is serialised, so the document cannot
//! drift from what is served. The dataflow's own types stay free of HTTP
//! concerns; conversions from them are here. No time semantics of their
//! own: every `*_ms` field is the event time (epoch ms) it came with, unless
//! its doc says wall time.

use dataflows::champion::{Champion, Evaluation};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::view::BestEntry;

/// The error body of every 4xx/5xx answer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// The HTTP status, repeated.
    pub status: u16,
    /// A sentence for a person.
    pub message: String,
}

/// One entry of `/api/predictions`: the champion's current prediction of
/// one (symbol, horizon).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct PredictionView {
    /// Symbol.
    pub symbol: String,
    /// Horizon in bars.
    pub horizon_bars: u32,
    /// Horizon in ms.
    pub horizon_ms: u64,
    /// The champion model that made it.
    pub model: String,
    /// Predicted log return to the target time.
    pub predicted_return: f64,
    /// Predicted price at the target time.
    pub predicted_price: f64,
    /// Last close when the prediction was made.
    pub base_price: f64,
    /// Bar close the prediction was made at (epoch ms).
    pub made_at_ms: u64,
    /// Bar close it predicts (epoch ms).
    pub target_at_ms: u64,
    /// Probability that the return is positive (models that have one).
    pub direction_prob: Option<f64>,
    /// Lower end of the 80% prediction interval, as a price.
    pub interval_low: Option<f64>,
    /// Upper end of the 80% prediction interval, as a price.
    pub interval_high: Option<f64>,
    /// Since when this model is champion (epoch ms; 0: baseline before any evaluated day).
    pub champion_since_ms: u64,
    /// The champion's skill versus persistence on the day it won.
    pub champion_skill: f64,
    /// Why this model is champion.
    pub champion_reason: String,
}

impl From<&BestEntry> for PredictionView {
    fn from(e: &BestEntry) -> Self {
        let BestEntry {
            prediction: p,
            champion: c,
        } = e;
        let base = p.base_price.0;
        PredictionView {
            symbol: p.symbol.clone(),
            horizon_bars: p.horizon_bars,
            horizon_ms: p.horizon_ms,
            model: p.model.clone(),
            predicted_return: p.predicted_return.0,
            predicted_price: p.predicted_price.0,
            base_price: base,
            made_at_ms: p.made_at_ms,
            target_at_ms: p.target_at_ms,
            direction_prob: p.direction_prob.map(|x| x.0),
            interval_low: p.interval_low.map(|r| base * r.0.exp()),
            interval_high: p.interval_high.map(|r| base * r.0.exp()),
            champion_since_ms: c.since_ms,
            champion_skill: c.skill.0,
            champion_reason: c.reason.clone(),
        }
    }
}

impl From<BestEntry> for PredictionView {
    fn from(e: BestEntry) -> Self {
        PredictionView::from(&e)
    }
}

/// The champion of one (symbol, horizon), with the evidence.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct ChampionView {
    /// The model.
    pub model: String,
    /// Champion since (epoch ms): the end of the day it won; 0 before any day.
    pub since_ms: u64,
    /// The UTC day it won (days since 1970-01-01), if any.
    pub day: Option<i32>,
    /// Its skill versus persistence that day.
    pub skill: f64,
    /// Its scores that day.
    pub samples: i64,
    /// Why.
    pub reason: String,
}

impl From<&Champion> for ChampionView {
    fn from(c: &Champion) -> Self {
        ChampionView {
            model: c.model.clone(),
            since_ms: c.since_ms,
            day: c.day,
            skill: c.skill.0,
            samples: c.samples,
            reason: c.reason.clone(),
        }
    }
}

/// One model's metrics over one UTC day, and whether it won the day.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct EvaluationView {
    /// Model name.
    pub model: String,
    /// Scores that day.
    pub samples: i64,
    /// Mean absolute error of the log return.
    pub mae: f64,
    /// Root mean squared error of the log return.
    pub rmse: f64,
    /// Directional hit rate.
    pub hit_rate: f64,
    /// 1 − MSE / MSE(persistence) on the same day.
    pub skill: f64,
    /// Share of outcomes inside the 80% interval (null: no intervals yet).
    pub coverage: Option<f64>,
    /// Whether this model won the day (becomes champion for the next).
    pub winner: bool,
    /// Why it won, or why persistence kept it.
    pub reason: String,
}

impl From<&Evaluation> for EvaluationView {
    fn from(e: &Evaluation) -> Self {
        EvaluationView {
            model: e.model.clone(),
            samples: e.samples,
            mae: e.mae.0,
            rmse: e.rmse.0,
            hit_rate: e.hit_rate.0,
            skill: e.skill.0,
            coverage: e.coverage.map(|c| c.0),
            winner: e.winner,
            reason: e.reason.clone(),
        }
    }
}
