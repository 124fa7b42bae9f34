//! Batch-model deployments: the plain-data form of a model trained outside
//! the dataflow (by the orchestrator, from the warehouse), the registry rows
//! that describe it, and the "Deploy" operator that hands deployments to the
//! predictor at known event times.
//!
//! Time semantics. Retraining is scheduled in **event time**: at every
//! multiple `T` of `every_ms` after the first bar. The Deploy operator (on
//! worker 0) holds a capability at the next undecided `T` (before the first
//! bar, at its input's frontier: it never waits for more input than the
//! bars do, which the source's flow control relies on), so the predictor
//! and everything after it wait there until the orchestrator has *decided*
//! `T` — new models, or explicitly none because the job failed — through a
//! [`DeployLink`]. Everything before `T` keeps flowing (bars, features and
//! predictions before `T` are exported and committed, which is what the
//! trainer reads). A decision is applied at `T` (the new version predicts
//! from the bar closing at `T` on; the version it replaces is retired at
//! `T`), so a replay gives the same predictions whatever the training took.
//! In live mode a `stall_bound_ms` of wall time (by the [`Clock`]) caps the
//! wait once data has reached `T`: past it the hold follows the data and a
//! late decision is applied at the event time it arrives at (reported back
//! through the link). A `T` is due only if some bar at or after it exists:
//! at the end of a bounded input, later `T`s are never decided.
//!
//! This module never trains, reads files or looks at the wall clock except
//! through the clock it is handed.

mod linear;
mod operator;

pub use linear::{sigmoid, standardise, BatchModel, LinearForecast, Link, MAX_Z};
pub use operator::{deployments, Applied, DeployLink, DeploySetup, DeploySnapshot, Hold};

use serde::{Deserialize, Serialize};

use crate::features::FEATURES;
use crate::num::{stable_hash, F64};

/// The life of a registered model version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelStatus {
    /// Deployed: predicting and scored next to every other model, competing
    /// in the daily evaluation.
    Candidate,
    /// Promoted: its model won the last daily evaluation of its series, so
    /// it serves as champion.
    Active,
    /// Trained but not deployed (validation below the floor, or a bad
    /// training window); `reason` says why.
    Rejected,
    /// Replaced by a newer version of the same model.
    Retired,
}

impl ModelStatus {
    /// The name stored in the registry.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelStatus::Candidate => "candidate",
            ModelStatus::Active => "active",
            ModelStatus::Rejected => "rejected",
            ModelStatus::Retired => "retired",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            ModelStatus::Candidate,
            ModelStatus::Active,
            ModelStatus::Rejected,
            ModelStatus::Retired,
        ]
        .into_iter()
        .find(|m| m.as_str() == s)
    }

    /// Order of rows of one model with the same `status_at`: deployment
    /// first, then a promotion, then a retirement or rejection.
    pub fn rank(self) -> u8 {
        match self {
            ModelStatus::Candidate => 0,
            ModelStatus::Active => 1,
            ModelStatus::Rejected | ModelStatus::Retired => 2,
        }
    }
}

/// Which model version made a prediction.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ModelVersion {
    /// Registry id of the version.
    pub id: String,
    /// Version number: the event time its training was scheduled at (ms).
    pub version: u64,
}

/// One row of the model registry: a model version's description and one
/// status it entered at `status_at_ms`. The registry is a log; a version's
/// current status is its row with the largest (`status_at_ms`, rank).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ModelRecord {
    /// `<kind>.<symbol>.h<horizon>.<version>`: unique per version.
    pub id: String,
    /// The model's name in predictions and scores (e.g. `batch_pls`).
    pub kind: String,
    /// Symbol.
    pub symbol: String,
    /// Horizon in bars.
    pub horizon_bars: u32,
    /// The scheduled time of its training, epoch ms.
    pub version: u64,
    /// The status this row records.
    pub status: ModelStatus,
    /// Since when (event time, ms).
    pub status_at_ms: u64,
    /// When it entered the dataflow (None: never deployed).
    pub deployed_at_ms: Option<u64>,
    /// First feature row of the training window (epoch ms).
    pub train_start_ms: u64,
    /// Every training example's outcome is known before this (T − embargo).
    pub train_end_ms: u64,
    /// First feature row of the validation part.
    pub validation_start_ms: u64,
    /// Examples the model was fitted on.
    pub fit_samples: u64,
    /// Examples it was validated on.
    pub validation_samples: u64,
    /// In-sample skill versus persistence (1 − MSE/MSE₀), if fitted.
    pub fit_skill: Option<F64>,
    /// Out-of-sample skill on the validation part, if fitted.
    pub validation_skill: Option<F64>,
    /// Directional hit rate on the validation part, if fitted.
    pub validation_hit_rate: Option<F64>,
    /// Hyper-parameters, JSON.
    pub hyperparams: String,
    /// The fitted model (None when there is none to deploy).
    pub model: Option<LinearForecast>,
    /// Feature schema the model reads ([`feature_schema`]).
    pub feature_schema: String,
    /// Why it has this status.
    pub reason: String,
}

impl ModelRecord {
    /// This record with another status.
    pub fn with_status(&self, status: ModelStatus, at_ms: u64, reason: impl Into<String>) -> Self {
        ModelRecord {
            status,
            status_at_ms: at_ms,
            reason: reason.into(),
            ..self.clone()
        }
    }

    /// The version reference predictions carry.
    pub fn version_ref(&self) -> ModelVersion {
        ModelVersion {
            id: self.id.clone(),
            version: self.version,
        }
    }
}

/// The registry id of a model version.
pub fn model_id(kind: &str, symbol: &str, horizon_bars: u32, version: u64) -> String {
    format!("{kind}.{symbol}.h{horizon_bars}.{version}")
}

/// The orchestrator's decision for one scheduled time: the versions it
/// trained (candidates are deployed, rejected ones only registered), or
/// none (the job failed or had nothing to train on).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// The scheduled time decided.
    pub scheduled_ms: u64,
    /// Registry rows: `Candidate` (deploy) or `Rejected`.
    pub records: Vec<ModelRecord>,
}

/// A model version entering the predictor of its symbol.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Deployment {
    /// Symbol.
    pub symbol: String,
    /// Horizon in bars.
    pub horizon_bars: u32,
    /// Model name (its predictions' `model`).
    pub kind: String,
    /// Which version.
    pub version: ModelVersion,
    /// Its parameters.
    pub model: LinearForecast,
}

/// The feature schema batch models are trained against: a hash of the
/// [`FEATURES`] column names in order, so a model trained before a feature
/// change is recognisably stale.
pub fn feature_schema() -> String {
    let names: Vec<&str> = FEATURES.iter().map(|d| d.name).collect();
    format!("features-{:016x}", stable_hash(&names.join(",")))
}
