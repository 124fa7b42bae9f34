//! Champion selection and best predictions, as differential collections.
//!
//! Scores become a collection keyed by (symbol, horizon) whose values are
//! model names and whose *differences* carry the error sums in fixed point:
//! `(count, Σ err², hits)`. Differential consolidates those sums for us, and
//! because they are integers the result is exact whatever the merge order
//! (so whatever the number of workers). Each score enters at its target time
//! and leaves again `window_ms` later, so the collection is a sliding window
//! of recent scores. A `reduce` picks the champion per (symbol, horizon):
//! the lowest MSE among models with at least `min_samples` scores that
//! beat persistence by at least `min_skill`; ties and thin data fall back to the simpler
//! model and persistence stays champion unless something beat it.
//!
//! Best predictions are `current predictions ⋈ champion`, maintained
//! incrementally, retractions included, when either side changes.

use differential_dataflow::{AsCollection, VecCollection};
use serde::{Deserialize, Serialize};
use timely::dataflow::operators::vec::Map;
use timely::dataflow::StreamVec;

use crate::models::PERSISTENCE;
use crate::num::{to_fixed, ERR_SCALE, F64};
use crate::predict::{Prediction, Score};

/// Error sums carried as a differential difference: (count, Σ err², hits),
/// errors in units of 1/[`ERR_SCALE`].
pub type ErrSums = (i64, i128, i64);

/// Champion settings.
#[derive(Clone, Copy, Debug)]
pub struct ChampionConfig {
    /// Scores older than this (event time) leave the window.
    pub window_ms: u64,
    /// Fewer scores than this in the window and a model cannot be champion.
    pub min_samples: i64,
    /// A challenger must reach at least this skill versus persistence, so
    /// noise-level wins on a random walk do not crown it.
    pub min_skill: f64,
}

impl Default for ChampionConfig {
    fn default() -> Self {
        ChampionConfig {
            window_ms: 15 * 60 * 1_000,
            min_samples: 30,
            min_skill: 0.005,
        }
    }
}

/// The champion of one (symbol, horizon), with the evidence.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Champion {
    /// The winning model.
    pub model: String,
    /// Its scores in the window.
    pub samples: i64,
    /// Its MSE of log returns in the window.
    pub mse: F64,
    /// Persistence's MSE over the same window.
    pub persistence_mse: F64,
    /// Skill versus persistence: 1 − mse / persistence_mse.
    pub skill: F64,
    /// Why it won.
    pub reason: String,
}

/// A model's window statistics, as seen by the champion reduce.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelStats {
    /// Model name.
    pub model: String,
    /// Scores in the window.
    pub n: i64,
    /// Mean squared error.
    pub mse: f64,
    /// Directional hit rate.
    pub hit_rate: f64,
}

/// Simpler models win ties: persistence, then drift, then the rest by name.
fn simplicity(model: &str) -> (u8, &str) {
    match model {
        PERSISTENCE => (0, model),
        "ewma_drift" => (1, model),
        _ => (2, model),
    }
}

/// The champion rule on plain statistics (also used by tests as the oracle).
pub fn choose(stats: &[ModelStats], min_samples: i64, min_skill: f64) -> Champion {
    let base = stats.iter().find(|s| s.model == PERSISTENCE);
    let (base_mse, base_n) = base.map_or((f64::NAN, 0), |b| (b.mse, b.n));
    let fallback = |reason: String| Champion {
        model: PERSISTENCE.to_string(),
        samples: base_n,
        mse: F64(base_mse),
        persistence_mse: F64(base_mse),
        skill: F64(0.0),
        reason,
    };
    if base_n < min_samples {
        return fallback(format!("thin data: {base_n} scores < {min_samples}"));
    }
    let best = stats
        .iter()
        .filter(|s| {
            s.model != PERSISTENCE && s.n >= min_samples && s.mse < base_mse * (1.0 - min_skill)
        })
        .min_by(|a, b| {
            a.mse
                .total_cmp(&b.mse)
                .then_with(|| simplicity(&a.model).cmp(&simplicity(&b.model)))
        });
    match best {
        None => fallback(format!("no model beat persistence by {min_skill} skill (mse {base_mse:.3e} over {base_n} scores)")),
        Some(s) => {
            let skill = if base_mse > 0.0 { 1.0 - s.mse / base_mse } else { 0.0 };
            Champion {
                model: s.model.clone(),
                samples: s.n,
                mse: F64(s.mse),
                persistence_mse: F64(base_mse),
                skill: F64(skill),
                reason: format!("lowest mse over {} scores, skill {:.4} vs persistence", s.n, skill),
            }
        }
    }
}

/// Turns consolidated sums into statistics.
pub fn stats_of(model: &str, sums: &ErrSums) -> ModelStats {
    let (n, sq, hits) = *sums;
    let n_f = n.max(1) as f64;
    ModelStats {
        model: model.to_string(),
        n,
        mse: (sq as f64) / (ERR_SCALE * ERR_SCALE) / n_f,
        hit_rate: hits as f64 / n_f,
    }
}

/// Key of a (symbol, horizon).
pub type SeriesKey = (String, u32);

/// Scores as a sliding-window collection of error sums per model. Each
/// score enters at `at` (the time it was emitted, >= its target time) and
/// leaves at `at + window_ms`.
pub fn score_window<'s>(
    scores: StreamVec<'s, u64, (Score, u64)>,
    window_ms: u64,
) -> VecCollection<'s, u64, (SeriesKey, String), ErrSums> {
    scores
        .flat_map(move |(s, at)| {
            let e = to_fixed(s.error()) as i128;
            let sums: ErrSums = (1, e * e, i64::from(s.hit()));
            let neg: ErrSums = (-sums.0, -sums.1, -sums.2);
            let key = ((s.symbol, s.horizon_bars), s.model);
            [(key.clone(), at, sums), (key, at + window_ms, neg)]
        })
        .as_collection()
}

/// The champion per (symbol, horizon).
pub fn champions<'s>(
    window: VecCollection<'s, u64, (SeriesKey, String), ErrSums>,
    min_samples: i64,
    min_skill: f64,
) -> VecCollection<'s, u64, (SeriesKey, Champion), isize> {
    window.reduce_named("Champion", move |_key, input, output| {
        let stats: Vec<ModelStats> = input
            .iter()
            .map(|(model, sums)| stats_of(model, sums))
            .collect();
        output.push((choose(&stats, min_samples, min_skill), 1));
    })
}

/// Best predictions: the current prediction of each series' champion.
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
mod tests {
    use super::*;

    fn st(model: &str, n: i64, mse: f64) -> ModelStats {
        ModelStats {
            model: model.into(),
            n,
            mse,
            hit_rate: 0.5,
        }
    }

    #[test]
    fn rule() {
        assert_eq!(
            choose(&[st(PERSISTENCE, 5, 1.0), st("rls", 50, 0.1)], 30, 0.0).model,
            PERSISTENCE
        );
        assert_eq!(
            choose(&[st(PERSISTENCE, 50, 1.0), st("rls", 50, 0.5)], 30, 0.0).model,
            "rls"
        );
        assert_eq!(
            choose(&[st(PERSISTENCE, 50, 1.0), st("rls", 50, 1.0)], 30, 0.0).model,
            PERSISTENCE
        );
        assert_eq!(
            choose(
                &[
                    st(PERSISTENCE, 50, 1.0),
                    st("rls", 50, 0.5),
                    st("ewma_drift", 50, 0.5)
                ],
                30,
                0.0
            )
            .model,
            "ewma_drift"
        );
        assert_eq!(
            choose(&[st(PERSISTENCE, 50, 1.0), st("rls", 20, 0.1)], 30, 0.0).model,
            PERSISTENCE
        );
        let c = choose(&[st(PERSISTENCE, 50, 1.0), st("rls", 50, 0.25)], 30, 0.0);
        assert!((c.skill.0 - 0.75).abs() < 1e-12);
        assert_eq!(choose(&[], 1, 0.0).model, PERSISTENCE);
    }
}
