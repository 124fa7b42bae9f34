//! Batch training: four linfa models per (symbol, horizon), fitted on the
//! warehouse's `features` rows against realised returns from `bars`, and
//! handed to the dataflow as plain linear forms
//! ([`dataflows::deploy::LinearForecast`]).
//!
//! | model | crate | what is fitted | deployed as |
//! | --- | --- | --- | --- |
//! | `batch_elasticnet` | `linfa-elasticnet` | ElasticNet (L1 + L2) regression of the return | its weights |
//! | `batch_svr` | `linfa-svm` | ε-SVR with a linear kernel (on at most `svr_max_rows` rows) | w = Σ (αᵢ − αᵢ*) xᵢ, read off the fitted model |
//! | `batch_pls` | `linfa-pls` | PLS regression with `pls_components` components | its coefficients |
//! | `batch_logistic` | `linfa-logistic` | L2 logistic regression of the direction (return > 0) | log-odds weights; forecast (2p − 1) × mean absolute return |
//!
//! Time semantics: a model scheduled at `T` trains on the examples whose
//! outcome is known strictly before `T − embargo`: feature rows at `t`
//! with `t + h·bar ≤ T − embargo` and `t ≥ T − embargo − window`. The
//! window is split in time: the first part is fitted, the last
//! `validation_fraction` validated, with the examples whose outcome falls
//! after the first validation row purged. Inputs are the feature columns
//! except the price levels (`ema_fast`, `ema_slow`), standardised with the
//! fitted part's mean and deviation and clipped to ±5 deviations (the
//! deployed model does exactly the same), the target is standardised with
//! the fitted part's statistics too. What is validated is what is deployed
//! (no refit on the validation part).
//!
//! Bad windows never panic and never deploy: too few rows, a constant
//! target, no varying input, a fit that fails, panics (contained) or gives
//! non-finite weights, or a linear form that disagrees with linfa's own
//! prediction, each make a `Rejected` record with its reason; so does a
//! validation skill versus persistence below `validation_floor`.
//!
//! Everything here is deterministic: the same rows give bit-identical
//! models (tested), which is what makes a replay's registry the same on any
//! number of workers and after a restart.

mod data;
mod fit;

pub use data::{Examples, TrainRows};
pub use fit::{fit, FitOutcome, Kind, KINDS};

use dataflows::deploy::{feature_schema, model_id, ModelRecord, ModelStatus};
use dataflows::num::F64;
use serde::Serialize;

/// Event time between scheduled retrains unless configured (6 h).
pub const DEFAULT_RETRAIN_EVERY_MS: u64 = 6 * 3_600_000;
/// Training window unless configured (3 days).
pub const DEFAULT_TRAIN_WINDOW_MS: u64 = 3 * 86_400_000;
/// Gap between the last training outcome and the deploy time unless configured.
pub const DEFAULT_EMBARGO_MS: u64 = 60_000;
/// Validation skill a model needs to be deployed unless configured.
pub const DEFAULT_VALIDATION_FLOOR: f64 = 0.0;

/// Feature columns batch models never read: price levels, not stationary.
pub const EXCLUDED_COLUMNS: [&str; 2] = ["ema_fast", "ema_slow"];

/// Training settings.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrainConfig {
    /// Window of examples, ms of event time ending at `T − embargo`.
    pub window_ms: u64,
    /// Gap between the last training outcome and `T`, ms.
    pub embargo_ms: u64,
    /// Share of the window's examples (the latest) used for validation.
    pub validation_fraction: f64,
    /// Validation skill below this: rejected.
    pub validation_floor: f64,
    /// Fewer examples than this in the window: rejected.
    pub min_rows: usize,
    /// At most this many examples are fitted (evenly spaced over the fitted part).
    pub max_rows: usize,
    /// At most this many for the SVR (its kernel matrix is n²).
    pub svr_max_rows: usize,
    /// ElasticNet penalty (on standardised inputs and target).
    pub elasticnet_penalty: f64,
    /// ElasticNet L1 share.
    pub elasticnet_l1_ratio: f64,
    /// SVR C.
    pub svr_c: f64,
    /// SVR ε (standardised target units).
    pub svr_epsilon: f64,
    /// PLS components.
    pub pls_components: usize,
    /// Logistic L2 penalty.
    pub logistic_alpha: f64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            window_ms: DEFAULT_TRAIN_WINDOW_MS,
            embargo_ms: DEFAULT_EMBARGO_MS,
            validation_fraction: 0.2,
            validation_floor: DEFAULT_VALIDATION_FLOOR,
            min_rows: 200,
            max_rows: 20_000,
            svr_max_rows: 1_000,
            elasticnet_penalty: 0.01,
            elasticnet_l1_ratio: 0.5,
            svr_c: 0.1,
            svr_epsilon: 0.1,
            pls_components: 2,
            logistic_alpha: 1.0,
        }
    }
}

/// The registry record of training `kind` on `examples` for a schedule
/// time `scheduled_ms`: a candidate, or rejected with the reason.
pub fn train_record(
    kind: Kind,
    examples: &Examples,
    scheduled_ms: u64,
    config: &TrainConfig,
) -> ModelRecord {
    let outcome = fit(kind, examples, config);
    let train_end_ms = scheduled_ms.saturating_sub(config.embargo_ms);
    let mut record = ModelRecord {
        id: model_id(
            kind.name(),
            &examples.symbol,
            examples.horizon_bars,
            scheduled_ms,
        ),
        kind: kind.name().to_string(),
        symbol: examples.symbol.clone(),
        horizon_bars: examples.horizon_bars,
        version: scheduled_ms,
        status: ModelStatus::Rejected,
        status_at_ms: scheduled_ms,
        deployed_at_ms: None,
        train_start_ms: train_end_ms.saturating_sub(config.window_ms),
        train_end_ms,
        validation_start_ms: train_end_ms,
        fit_samples: 0,
        validation_samples: 0,
        fit_skill: None,
        validation_skill: None,
        validation_hit_rate: None,
        hyperparams: kind.hyperparams(config),
        model: None,
        feature_schema: feature_schema(),
        reason: String::new(),
    };
    match outcome {
        FitOutcome::Rejected(reason) => record.reason = reason,
        FitOutcome::Fitted {
            model,
            fit_samples,
            validation_samples,
            validation_start_ms,
            fit_skill,
            validation_skill,
            validation_hit_rate,
            dropped,
        } => {
            record.fit_samples = fit_samples as u64;
            record.validation_samples = validation_samples as u64;
            record.validation_start_ms = validation_start_ms;
            record.fit_skill = Some(F64(fit_skill));
            record.validation_skill = Some(F64(validation_skill));
            record.validation_hit_rate = Some(F64(validation_hit_rate));
            let dropped = if dropped.is_empty() {
                String::new()
            } else {
                format!("; constant columns left out: {}", dropped.join(", "))
            };
            record.model = Some(model);
            if validation_skill < config.validation_floor {
                record.reason = format!(
                    "validation skill {validation_skill:.4} below the floor {}{dropped}",
                    config.validation_floor
                );
            } else {
                record.status = ModelStatus::Candidate;
                record.reason = format!(
                    "validation skill {validation_skill:.4} ≥ floor {} over {validation_samples} examples{dropped}",
                    config.validation_floor
                );
            }
        }
    }
    record
}

#[cfg(test)]
mod tests;
