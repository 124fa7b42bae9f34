//! Fitting one model kind on one (symbol, horizon)'s examples, checking the
//! result, and reading it off as a [`LinearForecast`] (see the module above
//! for the procedure). linfa can panic on degenerate input; every fit runs
//! under `catch_unwind` after the inputs were checked, and a panic is a
//! rejection with its message.

use std::panic::{catch_unwind, AssertUnwindSafe};

use dataflows::deploy::{standardise, LinearForecast, Link};
use dataflows::features::{FEATURES, FEATURE_COUNT};
use dataflows::num::F64;
use linfa::prelude::*;
use linfa_elasticnet::ElasticNet;
use linfa_logistic::LogisticRegression;
use linfa_pls::PlsRegression;
use linfa_svm::Svm;
use ndarray::{Array1, Array2};

use super::{Examples, TrainConfig, EXCLUDED_COLUMNS};

/// A batch model kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// ElasticNet regression (`linfa-elasticnet`).
    ElasticNet,
    /// ε-SVR with a linear kernel (`linfa-svm`).
    Svr,
    /// PLS regression (`linfa-pls`).
    Pls,
    /// Logistic regression of the direction (`linfa-logistic`).
    Logistic,
}

/// Every kind, in the order their predictions are made.
pub const KINDS: [Kind; 4] = [Kind::ElasticNet, Kind::Svr, Kind::Pls, Kind::Logistic];

impl Kind {
    /// The model name in predictions, scores and the registry.
    pub fn name(self) -> &'static str {
        match self {
            Kind::ElasticNet => "batch_elasticnet",
            Kind::Svr => "batch_svr",
            Kind::Pls => "batch_pls",
            Kind::Logistic => "batch_logistic",
        }
    }

    /// The kind called `name`.
    pub fn parse(name: &str) -> Option<Kind> {
        KINDS.into_iter().find(|k| k.name() == name)
    }

    /// Its hyper-parameters as the registry records them (JSON).
    pub fn hyperparams(self, c: &TrainConfig) -> String {
        let v = match self {
            Kind::ElasticNet => serde_json::json!({
                "penalty": c.elasticnet_penalty, "l1_ratio": c.elasticnet_l1_ratio,
                "max_rows": c.max_rows, "window_ms": c.window_ms, "embargo_ms": c.embargo_ms,
            }),
            Kind::Svr => serde_json::json!({
                "kernel": "linear", "c": c.svr_c, "epsilon": c.svr_epsilon,
                "max_rows": c.svr_max_rows, "window_ms": c.window_ms, "embargo_ms": c.embargo_ms,
            }),
            Kind::Pls => serde_json::json!({
                "components": c.pls_components,
                "max_rows": c.max_rows, "window_ms": c.window_ms, "embargo_ms": c.embargo_ms,
            }),
            Kind::Logistic => serde_json::json!({
                "alpha": c.logistic_alpha, "target": "return > 0",
                "max_rows": c.max_rows, "window_ms": c.window_ms, "embargo_ms": c.embargo_ms,
            }),
        };
        v.to_string()
    }

    fn max_rows(self, c: &TrainConfig) -> usize {
        match self {
            Kind::Svr => c.svr_max_rows.min(c.max_rows),
            _ => c.max_rows,
        }
    }
}

/// What fitting gave.
#[derive(Clone, Debug, PartialEq)]
pub enum FitOutcome {
    /// A checked model and its scores.
    Fitted {
        /// The deployable form.
        model: LinearForecast,
        /// Examples fitted on (after thinning).
        fit_samples: usize,
        /// Examples validated on.
        validation_samples: usize,
        /// Bar close of the first validation example.
        validation_start_ms: u64,
        /// In-sample skill versus persistence.
        fit_skill: f64,
        /// Validation skill versus persistence.
        validation_skill: f64,
        /// Validation hit rate.
        validation_hit_rate: f64,
        /// Constant input columns left out.
        dropped: Vec<String>,
    },
    /// No model, and why.
    Rejected(String),
}

/// The input columns: every feature but the excluded price levels.
fn input_columns() -> Vec<usize> {
    (0..FEATURE_COUNT)
        .filter(|k| !EXCLUDED_COLUMNS.contains(&FEATURES[*k].name))
        .collect()
}

fn mean_std(v: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let n = v.clone().count().max(1) as f64;
    let mean = v.clone().sum::<f64>() / n;
    let var = v.map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// 1 − MSE(pred) / MSE(zero forecast), and the hit rate.
fn skill(pred: &[f64], y: &[f64]) -> (f64, f64) {
    let mse = |p: &dyn Fn(usize) -> f64| {
        (0..y.len()).map(|i| (p(i) - y[i]).powi(2)).sum::<f64>() / y.len().max(1) as f64
    };
    let base = mse(&|_| 0.0);
    let model = mse(&|i| pred[i]);
    let hits = (0..y.len()).filter(|&i| pred[i] * y[i] > 0.0).count();
    let s = if base > 0.0 { 1.0 - model / base } else { 0.0 };
    (s, hits as f64 / y.len().max(1) as f64)
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// Fits `kind` on `ex` under `config`.
pub fn fit(kind: Kind, ex: &Examples, config: &TrainConfig) -> FitOutcome {
    match fit_inner(kind, ex, config) {
        Ok(f) => f,
        Err(reason) => FitOutcome::Rejected(reason),
    }
}

fn fit_inner(kind: Kind, ex: &Examples, config: &TrainConfig) -> Result<FitOutcome, String> {
    let n = ex.len();
    if n < config.min_rows.max(10) {
        return Err(format!(
            "too few rows: {n} examples < {}",
            config.min_rows.max(10)
        ));
    }
    for k in input_columns() {
        if let Some(i) = (0..n).find(|&i| !ex.x[i][k].is_finite()) {
            return Err(format!(
                "non-finite values in feature `{}` (first at {})",
                FEATURES[k].name,
                crate::warehouse::date::iso_ms(ex.times[i])
            ));
        }
    }
    if ex.y.iter().any(|y| !y.is_finite()) {
        return Err("non-finite realised return in the window".into());
    }
    // Time split: validate on the latest share, purge fitted examples whose
    // outcome falls after the first validation row.
    let n_val = ((n as f64) * config.validation_fraction.clamp(0.05, 0.5)).round() as usize;
    let val_from = n - n_val.max(1);
    let val_start = ex.times[val_from];
    let fit_idx: Vec<usize> = (0..val_from)
        .filter(|&i| ex.targets_at[i] <= val_start)
        .collect();
    let val_idx: Vec<usize> = (val_from..n).collect();
    if fit_idx.len() < config.min_rows.max(10) / 2 {
        return Err(format!(
            "too few rows to fit: {} after the split",
            fit_idx.len()
        ));
    }
    let stride = fit_idx.len().div_ceil(kind.max_rows(config).max(10));
    let fit_idx: Vec<usize> = fit_idx.into_iter().step_by(stride.max(1)).collect();

    let (y_mean, y_std) = mean_std(fit_idx.iter().map(|&i| ex.y[i]));
    if !(y_std.is_finite() && y_std > 0.0 && y_mean.is_finite()) {
        return Err(format!(
            "constant target: every realised return in the fitted part is {y_mean}"
        ));
    }
    let mut columns = Vec::new();
    let mut dropped = Vec::new();
    for k in input_columns() {
        let (m, s) = mean_std(fit_idx.iter().map(|&i| ex.x[i][k]));
        if !m.is_finite() || !s.is_finite() {
            return Err(format!(
                "non-finite values in feature `{}`",
                FEATURES[k].name
            ));
        }
        if s <= 1e-12 * m.abs().max(1e-300) || s == 0.0 {
            dropped.push(FEATURES[k].name.to_string());
        } else {
            columns.push((k, m, s));
        }
    }
    if columns.is_empty() {
        return Err("constant features: no input column varies in the fitted part".into());
    }
    let d = columns.len();
    let design = |idx: &[usize]| {
        Array2::from_shape_fn((idx.len(), d), |(r, c)| {
            let (k, m, s) = columns[c];
            standardise(ex.x[idx[r]][k], m, s)
        })
    };
    let x_fit = design(&fit_idx);
    let x_val = design(&val_idx);
    let y_fit: Vec<f64> = fit_idx.iter().map(|&i| ex.y[i]).collect();
    let y_val: Vec<f64> = val_idx.iter().map(|&i| ex.y[i]).collect();
    let z_fit = Array1::from_iter(y_fit.iter().map(|y| (y - y_mean) / y_std));

    // (weights, intercept) in standardised units, and linfa's own
    // prediction of the validation rows (the return, or the probability).
    let fitted = catch_unwind(AssertUnwindSafe(|| {
        fit_kind(kind, &x_fit, &z_fit, &y_fit, &x_val, config)
    }))
    .map_err(|p| format!("{} fit panicked: {}", kind.name(), panic_message(p)))??;
    let Fitted { w, b, link, own } = fitted;
    if w.iter().any(|v| !v.is_finite()) || !b.is_finite() {
        return Err(format!("{} fit gave non-finite weights", kind.name()));
    }
    let (weights, intercept) = match link {
        Link::Identity => (
            w.iter().map(|v| v * y_std).collect::<Vec<_>>(),
            b * y_std + y_mean,
        ),
        Link::Direction { .. } => (w.clone(), b),
    };
    let model = LinearForecast {
        columns: columns
            .iter()
            .map(|(k, _, _)| FEATURES[*k].name.to_string())
            .collect(),
        mean: columns.iter().map(|c| F64(c.1)).collect(),
        scale: columns.iter().map(|c| F64(c.2)).collect(),
        weights: weights.into_iter().map(F64).collect(),
        intercept: F64(intercept),
        link,
    };
    model
        .check()
        .map_err(|e| format!("{} fit is not deployable: {e}", kind.name()))?;
    let index = model.column_index().expect("checked");
    let forecast = |i: usize| model.forecast(model.score(&index, &ex.x[i]));
    // The deployed form must say what linfa says.
    for (r, &i) in val_idx.iter().enumerate() {
        let f = forecast(i);
        let mine = match model.link {
            Link::Identity => f.ret,
            Link::Direction { .. } => f.direction_prob.unwrap_or(f64::NAN),
        };
        let theirs = own[r];
        // Written so that a NaN on either side disagrees.
        let tolerance = 1e-9 * (1.0 + theirs.abs().max(mine.abs()) / y_std.min(1.0));
        let agrees = (mine - theirs).abs() <= tolerance;
        if !agrees {
            return Err(format!(
                "{}: the linear form disagrees with the fitted model ({mine} vs {theirs})",
                kind.name()
            ));
        }
    }
    let pred_fit: Vec<f64> = fit_idx.iter().map(|&i| forecast(i).ret).collect();
    let pred_val: Vec<f64> = val_idx.iter().map(|&i| forecast(i).ret).collect();
    let (fit_skill, _) = skill(&pred_fit, &y_fit);
    let (validation_skill, validation_hit_rate) = skill(&pred_val, &y_val);
    if !fit_skill.is_finite() || !validation_skill.is_finite() {
        return Err(format!("{}: non-finite skill", kind.name()));
    }
    Ok(FitOutcome::Fitted {
        model,
        fit_samples: fit_idx.len(),
        validation_samples: val_idx.len(),
        validation_start_ms: val_start,
        fit_skill,
        validation_skill,
        validation_hit_rate,
        dropped,
    })
}

struct Fitted {
    w: Vec<f64>,
    b: f64,
    link: Link,
    /// linfa's prediction of each validation row (return, or P(up)).
    own: Vec<f64>,
}

fn fit_kind(
    kind: Kind,
    x: &Array2<f64>,
    z: &Array1<f64>,
    y: &[f64],
    x_val: &Array2<f64>,
    c: &TrainConfig,
) -> Result<Fitted, String> {
    let d = x.ncols();
    let err = |e: &dyn std::fmt::Display| format!("{} fit failed: {e}", kind.name());
    let (y_mean, y_std) = mean_std(y.iter().copied());
    let unscale = |v: f64| v * y_std + y_mean;
    match kind {
        Kind::ElasticNet => {
            let data = Dataset::new(x.clone(), z.clone());
            let m = ElasticNet::params()
                .penalty(c.elasticnet_penalty)
                .l1_ratio(c.elasticnet_l1_ratio)
                .max_iterations(1_000)
                .tolerance(1e-6)
                .fit(&data)
                .map_err(|e| err(&e))?;
            let own = m.predict(x_val).iter().map(|v| unscale(*v)).collect();
            Ok(Fitted {
                w: m.hyperplane().to_vec(),
                b: m.intercept(),
                link: Link::Identity,
                own,
            })
        }
        Kind::Svr => {
            let data = Dataset::new(x.clone(), z.clone());
            let m = Svm::<f64, f64>::params()
                .c_svr(c.svr_c, Some(c.svr_epsilon))
                .linear_kernel()
                .fit(&data)
                .map_err(|e| err(&e))?;
            // Linear kernel: f(x) = w·x − ρ; read w off unit vectors.
            let b = -m.rho;
            let w = (0..d)
                .map(|j| {
                    let mut e = Array1::zeros(d);
                    e[j] = 1.0;
                    m.weighted_sum(&e)
                })
                .collect();
            let own = m.predict(x_val).iter().map(|v| unscale(*v)).collect();
            Ok(Fitted {
                w,
                b,
                link: Link::Identity,
                own,
            })
        }
        Kind::Pls => {
            let z2 = z.clone().insert_axis(ndarray::Axis(1));
            let data = Dataset::new(x.clone(), z2);
            let m = PlsRegression::params(c.pls_components.clamp(1, d))
                .fit(&data)
                .map_err(|e| err(&e))?;
            // Affine: read the intercept at 0 and each weight at a unit vector.
            let probe =
                Array2::from_shape_fn(
                    (d + 1, d),
                    |(r, col)| {
                        if r > 0 && r - 1 == col {
                            1.0
                        } else {
                            0.0
                        }
                    },
                );
            let at = m.predict(&probe);
            let b = at[[0, 0]];
            let w = (0..d).map(|j| at[[j + 1, 0]] - b).collect();
            let own = m
                .predict(x_val)
                .column(0)
                .iter()
                .map(|v| unscale(*v))
                .collect();
            Ok(Fitted {
                w,
                b,
                link: Link::Identity,
                own,
            })
        }
        Kind::Logistic => {
            let labels = Array1::from_iter(y.iter().map(|v| *v > 0.0));
            let ups = labels.iter().filter(|u| **u).count();
            if ups == 0 || ups == labels.len() {
                return Err(format!(
                    "{}: one direction only in the fitted part",
                    kind.name()
                ));
            }
            let data = Dataset::new(x.clone(), labels);
            let m = LogisticRegression::default()
                .alpha(c.logistic_alpha)
                .max_iterations(200)
                .fit(&data)
                .map_err(|e| err(&e))?;
            let mean_abs = y.iter().map(|v| v.abs()).sum::<f64>() / y.len().max(1) as f64;
            // linfa's probability is of its "positive" class (the more
            // frequent one); make it P(up).
            let sign = if m.labels().pos.class { 1.0 } else { -1.0 };
            let own = m
                .predict_probabilities(x_val)
                .iter()
                .map(|p| if sign > 0.0 { *p } else { 1.0 - p })
                .collect();
            Ok(Fitted {
                w: m.params().iter().map(|v| sign * v).collect(),
                b: sign * m.intercept(),
                link: Link::Direction {
                    mean_abs: F64(mean_abs),
                },
                own,
            })
        }
    }
}
