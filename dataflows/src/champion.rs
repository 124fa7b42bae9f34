//! Daily self-evaluation, champion selection and best predictions, as
//! differential collections.
//!
//! Scores become a collection keyed by (symbol, horizon, UTC day of the
//! target) whose values are model names and whose *differences* carry the
//! day's error sums in fixed point ([`DayStats`]). Differential consolidates
//! the sums; because they are integers the result is exact whatever the
//! merge order, so whatever the number of workers. Every update is stamped
//! at the end of its day (or later, if it arrives later), so a day's
//! evaluation appears exactly when the frontier passes the end of that day.
//!
//! The `DailyEvaluation` reduce scores every model of a (symbol, horizon,
//! day): count, MAE, RMSE, hit rate, skill versus persistence and interval
//! coverage, and marks the winner: the best skill among models with at least
//! `min_samples` scores that beat persistence by `min_skill`; ties and thin
//! data fall back to the simpler model, persistence stays champion otherwise.
//! The `Champion` reduce takes, per (symbol, horizon), the winner of the
//! latest evaluated day, champion from the end of that day on; before any
//! day is complete the champion is persistence. Best predictions are
//! `current predictions ⋈ champion`, maintained incrementally, retractions
//! included, when either side changes.

use differential_dataflow::difference::{Abelian, IsZero, Monoid, Semigroup};
use differential_dataflow::{AsCollection, VecCollection};
use serde::{Deserialize, Serialize};
use timely::dataflow::operators::vec::Map;
use timely::dataflow::StreamVec;

use crate::models::PERSISTENCE;
use crate::num::{to_fixed, utc_day, DAY_MS, ERR_SCALE, F64};
use crate::predict::{Prediction, Score};

/// Error sums of one model over one day, carried as a differential
/// difference. Errors are in units of 1/[`ERR_SCALE`].
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct DayStats {
    /// Scores.
    pub n: i64,
    /// Σ |error|.
    pub abs: i128,
    /// Σ error².
    pub sq: i128,
    /// Scores whose sign matched the outcome.
    pub hits: i64,
    /// Scores that had a prediction interval.
    pub with_interval: i64,
    /// Of those, outcomes inside the interval.
    pub covered: i64,
}

impl DayStats {
    /// The contribution of one score.
    pub fn of(s: &Score) -> Self {
        let e = to_fixed(s.error()) as i128;
        DayStats {
            n: 1,
            abs: e.abs(),
            sq: e * e,
            hits: i64::from(s.hit()),
            with_interval: i64::from(s.covered.is_some()),
            covered: i64::from(s.covered == Some(true)),
        }
    }
}

impl IsZero for DayStats {
    fn is_zero(&self) -> bool {
        *self == DayStats::default()
    }
}

impl Semigroup for DayStats {
    fn plus_equals(&mut self, rhs: &Self) {
        self.n += rhs.n;
        self.abs += rhs.abs;
        self.sq += rhs.sq;
        self.hits += rhs.hits;
        self.with_interval += rhs.with_interval;
        self.covered += rhs.covered;
    }
}

impl Monoid for DayStats {
    fn zero() -> Self {
        DayStats::default()
    }
}

impl Abelian for DayStats {
    fn negate(&mut self) {
        *self = DayStats {
            n: -self.n,
            abs: -self.abs,
            sq: -self.sq,
            hits: -self.hits,
            with_interval: -self.with_interval,
            covered: -self.covered,
        };
    }
}

/// Champion settings.
#[derive(Clone, Copy, Debug)]
pub struct ChampionConfig {
    /// Fewer scores than this in a day and a model cannot win it.
    pub min_samples: i64,
    /// A challenger must reach at least this skill versus persistence, so
    /// noise-level wins on a random walk do not crown it.
    pub min_skill: f64,
}

impl Default for ChampionConfig {
    fn default() -> Self {
        ChampionConfig {
            min_samples: 100,
            min_skill: 0.005,
        }
    }
}

/// Key of a (symbol, horizon in bars).
pub type SeriesKey = (String, u32);

/// One model's metrics over one UTC day, and whether it won the day.
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
    /// 1 − MSE / MSE(persistence) on the same day.
    pub skill: F64,
    /// Share of outcomes inside the 80% interval (None: no intervals yet).
    pub coverage: Option<F64>,
    /// Whether this model won the day (becomes champion for the next).
    pub winner: bool,
    /// Why it won, or why persistence kept it.
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
    /// Champion since (epoch ms): the end of the day it won; 0 before any day.
    pub since_ms: u64,
    /// The UTC day it won (days since 1970-01-01), if any.
    pub day: Option<i32>,
    /// Its skill that day.
    pub skill: F64,
    /// Its scores that day.
    pub samples: i64,
    /// Why.
    pub reason: String,
}

/// A model's statistics, as seen by the winner rule.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelStats {
    /// Model name.
    pub model: String,
    /// Scores.
    pub n: i64,
    /// Mean squared error.
    pub mse: f64,
}

/// Simpler models win ties: persistence, then drift, then the rest by name.
fn simplicity(model: &str) -> (u8, &str) {
    match model {
        PERSISTENCE => (0, model),
        "ewma_drift" => (1, model),
        _ => (2, model),
    }
}

/// The winner rule on plain statistics: (winning model, reason).
pub fn choose(stats: &[ModelStats], min_samples: i64, min_skill: f64) -> (String, String) {
    let base = stats.iter().find(|s| s.model == PERSISTENCE);
    let (base_mse, base_n) = base.map_or((f64::NAN, 0), |b| (b.mse, b.n));
    if base_n < min_samples {
        return (
            PERSISTENCE.into(),
            format!("thin data: {base_n} scores < {min_samples}"),
        );
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
        None => (
            PERSISTENCE.into(),
            format!("no model beat persistence by {min_skill} skill over {base_n} scores"),
        ),
        Some(s) => {
            let skill = if base_mse > 0.0 {
                1.0 - s.mse / base_mse
            } else {
                0.0
            };
            (
                s.model.clone(),
                format!("best skill {skill:.4} vs persistence over {} scores", s.n),
            )
        }
    }
}

fn mse_of(d: &DayStats) -> f64 {
    (d.sq as f64) / (ERR_SCALE * ERR_SCALE) / d.n.max(1) as f64
}

/// The evaluation rows of one (symbol, horizon, day) from its models' sums.
pub fn evaluate(
    input: &[(&String, DayStats)],
    min_samples: i64,
    min_skill: f64,
) -> Vec<Evaluation> {
    let stats: Vec<ModelStats> = input
        .iter()
        .map(|(m, d)| ModelStats {
            model: (*m).clone(),
            n: d.n,
            mse: mse_of(d),
        })
        .collect();
    let (winner, reason) = choose(&stats, min_samples, min_skill);
    let base_mse = stats
        .iter()
        .find(|s| s.model == PERSISTENCE)
        .map_or(f64::NAN, |s| s.mse);
    input
        .iter()
        .map(|(m, d)| {
            let n = d.n.max(1) as f64;
            let mse = mse_of(d);
            let skill = if base_mse > 0.0 {
                1.0 - mse / base_mse
            } else {
                0.0
            };
            let is_winner = **m == winner;
            Evaluation {
                model: (*m).clone(),
                samples: d.n,
                mae: F64(d.abs as f64 / ERR_SCALE / n),
                rmse: F64(mse.sqrt()),
                hit_rate: F64(d.hits as f64 / n),
                skill: F64(if skill.is_finite() { skill } else { 0.0 }),
                coverage: (d.with_interval > 0)
                    .then(|| F64(d.covered as f64 / d.with_interval as f64)),
                winner: is_winner,
                reason: if is_winner {
                    reason.clone()
                } else {
                    String::new()
                },
            }
        })
        .collect()
}

/// Scores as per-day error sums per model, stamped at the end of their day.
pub fn daily_sums<'s>(
    scores: StreamVec<'s, u64, (Score, u64)>,
) -> VecCollection<'s, u64, ((SeriesKey, i32), String), DayStats> {
    scores
        .map(|(s, at)| {
            let day = utc_day(s.target_at_ms);
            let day_end = (day as u64 + 1) * DAY_MS;
            let stats = DayStats::of(&s);
            (
                (((s.symbol, s.horizon_bars), day), s.model),
                at.max(day_end),
                stats,
            )
        })
        .as_collection()
}

/// The daily evaluation: every model of every (symbol, horizon, day).
pub fn evaluations<'s>(
    daily: VecCollection<'s, u64, ((SeriesKey, i32), String), DayStats>,
    config: ChampionConfig,
) -> VecCollection<'s, u64, ((SeriesKey, i32), Evaluation), isize> {
    let ChampionConfig {
        min_samples,
        min_skill,
    } = config;
    daily.reduce_named("DailyEvaluation", move |_key, input, output| {
        let rows: Vec<(&String, DayStats)> = input.iter().map(|(m, d)| (*m, *d)).collect();
        output.extend(
            evaluate(&rows, min_samples, min_skill)
                .into_iter()
                .map(|e| (e, 1)),
        );
    })
}

/// The champion per (symbol, horizon): the winner of the latest evaluated
/// day, or persistence for a series (seen in `series`) with none yet.
pub fn champions<'s>(
    evaluations: VecCollection<'s, u64, ((SeriesKey, i32), Evaluation), isize>,
    series: VecCollection<'s, u64, SeriesKey, isize>,
) -> VecCollection<'s, u64, (SeriesKey, Champion), isize> {
    let winners = evaluations.flat_map(|((key, day), e)| {
        e.winner.then(|| {
            let c = Champion {
                model: e.model,
                since_ms: (day as u64 + 1) * DAY_MS,
                day: Some(day),
                skill: e.skill,
                samples: e.samples,
                reason: e.reason,
            };
            (key, (day, c))
        })
    });
    let seeds = series.map(|key| {
        let c = Champion {
            model: PERSISTENCE.into(),
            since_ms: 0,
            day: None,
            skill: F64(0.0),
            samples: 0,
            reason: "no completed day yet: the baseline is champion".into(),
        };
        (key, (i32::MIN, c))
    });
    winners
        .concat(seeds)
        .reduce_named("Champion", |_key, input, output| {
            // Values are sorted: the last one is the latest day.
            let ((_, c), _) = input[input.len() - 1];
            output.push((c.clone(), 1));
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
        }
    }

    #[test]
    fn rule() {
        let win = |s: &[ModelStats], skill: f64| choose(s, 30, skill).0;
        assert_eq!(
            win(&[st(PERSISTENCE, 5, 1.0), st("rls", 50, 0.1)], 0.0),
            PERSISTENCE
        );
        assert_eq!(
            win(&[st(PERSISTENCE, 50, 1.0), st("rls", 50, 0.5)], 0.0),
            "rls"
        );
        assert_eq!(
            win(&[st(PERSISTENCE, 50, 1.0), st("rls", 50, 1.0)], 0.0),
            PERSISTENCE
        );
        assert_eq!(
            win(
                &[
                    st(PERSISTENCE, 50, 1.0),
                    st("rls", 50, 0.5),
                    st("ewma_drift", 50, 0.5)
                ],
                0.0
            ),
            "ewma_drift"
        );
        assert_eq!(
            win(&[st(PERSISTENCE, 50, 1.0), st("rls", 20, 0.1)], 0.0),
            PERSISTENCE
        );
        assert_eq!(
            win(&[st(PERSISTENCE, 50, 1.0), st("rls", 50, 0.999)], 0.01),
            PERSISTENCE
        );
        assert_eq!(win(&[], 0.0), PERSISTENCE);
    }

    #[test]
    fn evaluation_metrics_match_direct_formulas() {
        let score = |model: &str, p: f64, y: f64, covered: Option<bool>| Score {
            symbol: "A-B".into(),
            horizon_bars: 1,
            model: model.into(),
            made_at_ms: 0,
            target_at_ms: 1,
            predicted_return: F64(p),
            realized_return: F64(y),
            covered,
        };
        let ys = [0.01, -0.02, 0.005, 0.0, 0.03];
        let mut base = DayStats::default();
        let mut model = DayStats::default();
        for (i, y) in ys.iter().enumerate() {
            base.plus_equals(&DayStats::of(&score(PERSISTENCE, 0.0, *y, None)));
            model.plus_equals(&DayStats::of(&score("rls", y * 0.5, *y, Some(i % 2 == 0))));
        }
        let (p, r) = (PERSISTENCE.to_string(), "rls".to_string());
        let rows = evaluate(&[(&p, base), (&r, model)], 1, 0.0);
        let rls = rows.iter().find(|e| e.model == "rls").unwrap();
        let mse_b: f64 = ys.iter().map(|y| y * y).sum::<f64>() / 5.0;
        let mse_m: f64 = ys.iter().map(|y| (y * 0.5 - y).powi(2)).sum::<f64>() / 5.0;
        assert!((rls.rmse.0 - mse_m.sqrt()).abs() < 1e-9);
        assert!((rls.mae.0 - ys.iter().map(|y| (y * 0.5).abs()).sum::<f64>() / 5.0).abs() < 1e-9);
        assert!((rls.skill.0 - (1.0 - mse_m / mse_b)).abs() < 1e-6);
        assert_eq!(rls.hit_rate.0, 4.0 / 5.0);
        assert_eq!(rls.coverage, Some(F64(3.0 / 5.0)));
        assert!(rls.winner && !rows.iter().find(|e| e.model == PERSISTENCE).unwrap().winner);
        let mut zero = model;
        zero.negate();
        zero.plus_equals(&model);
        assert!(zero.is_zero());
    }
}
