//! Online models: predict a horizon's log return from the features at bar t,
//! learn from the realised return only when bar t+h has closed.
//!
//! Every model is a small struct behind [`OnlineModel`], gathered in the
//! [`Online`] enum (plain data, so a snapshot can store it); one instance per
//! (symbol, horizon), a few hundred bytes each (measured by the model
//! benchmark). A model never returns a non-finite prediction: one that
//! diverges resets itself to its prior and the caller logs it (none of the
//! models here can diverge on finite inputs any more: see [`ridge`]).
//!
//! What a model returns is its *raw* forecast. What is served (written,
//! scored, champion-eligible) is that forecast after the shrinkage by the
//! model's own out-of-sample record ([`shrink`]) and the bound, applied to
//! every model alike by [`crate::calibrate`]; a model never sees a
//! realised return before its horizon has passed.

mod baselines;
mod holt;
mod logistic;
pub mod ridge;
mod rls;
pub mod shrink;

pub use baselines::{EwmaDrift, Persistence};
pub use holt::Holt;
pub use logistic::Logistic;
pub use ridge::Ridge;
pub use rls::{per_bar_forgetting, Autoregressive, Rls};

use serde::{Deserialize, Serialize};

use crate::features::Features;

/// The volatility of an h-bar log return as known at bar t: the short
/// realised volatility (floored, [`Features::scale`]) times √h. Models
/// that learn on a unit scale divide targets by it and multiply forecasts
/// back; shrinkage and intervals measure errors in it.
pub fn horizon_scale(x: &Features, h: u32) -> f64 {
    x.scale() * f64::from(h.max(1)).sqrt()
}

/// The name of the persistence baseline (zero return, i.e. last price).
pub const PERSISTENCE: &str = "persistence";

/// One model's forecast for its horizon.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Forecast {
    /// Predicted log return over the horizon.
    pub ret: f64,
    /// Probability that the return is positive, for models that have one.
    pub direction_prob: Option<f64>,
}

impl Forecast {
    /// A point forecast without a direction probability.
    pub fn point(ret: f64) -> Self {
        Forecast {
            ret,
            direction_prob: None,
        }
    }
}

/// A model updated one observation at a time.
pub trait OnlineModel: Send {
    /// Stable name, used in tables and the API.
    fn name(&self) -> &'static str;
    /// Sees every bar's features as it closes (for models of the price path
    /// itself); the default ignores them.
    fn observe(&mut self, _x: &Features) {}
    /// Forecast over the horizon given the features at bar t.
    fn predict(&self, x: &Features) -> Forecast;
    /// Learns from the features at bar t and the realised return to t+h.
    /// Returns true if the model had to reset itself (diverged).
    fn learn(&mut self, x: &Features, y: f64) -> bool;
}

/// One online model of the zoo, as plain data: what a predictor holds per
/// (symbol, horizon), and what a snapshot stores of it. A closed set, so a
/// stored model is read back as the same kind with the same state.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Online {
    /// [`Persistence`].
    Persistence(Persistence),
    /// [`EwmaDrift`].
    EwmaDrift(EwmaDrift),
    /// [`Rls`] (boxed: its 8 × 8 system is three times the next model).
    Rls(Box<Rls>),
    /// [`Autoregressive`].
    Ar(Autoregressive),
    /// [`Holt`].
    Holt(Holt),
    /// [`Logistic`].
    Logistic(Logistic),
}

/// Calls `$body` with `$m` bound to the model inside `$online`.
macro_rules! each_online {
    ($online:expr, $m:ident => $body:expr) => {
        match $online {
            Online::Persistence($m) => $body,
            Online::EwmaDrift($m) => $body,
            Online::Rls($m) => $body,
            Online::Ar($m) => $body,
            Online::Holt($m) => $body,
            Online::Logistic($m) => $body,
        }
    };
}

impl OnlineModel for Online {
    fn name(&self) -> &'static str {
        each_online!(self, m => m.name())
    }
    fn observe(&mut self, x: &Features) {
        each_online!(self, m => m.observe(x))
    }
    fn predict(&self, x: &Features) -> Forecast {
        each_online!(self, m => m.predict(x))
    }
    fn learn(&mut self, x: &Features, y: f64) -> bool {
        each_online!(self, m => m.learn(x, y))
    }
}

/// The online models' hyper-parameters; [`ModelParams::instantiate`] makes
/// one instance of every model, in a fixed order (the order reaches outputs).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ModelParams {
    /// `rls` and `ar` forgetting factor per independent outcome (per bar it
    /// is 1 − (1 − λ)/h: [`per_bar_forgetting`]).
    pub rls_lambda: f64,
    /// `rls` and `ar` ridge penalty, in independent outcomes (×h).
    pub ridge: f64,
    /// EWMA drift smoothing factor per independent outcome (α/h per bar).
    pub drift_alpha: f64,
    /// Holt level and trend smoothing factors and trend damping φ.
    pub holt: (f64, f64, f64),
    /// Logistic regression learning rate.
    pub logistic_rate: f64,
}

impl Default for ModelParams {
    fn default() -> Self {
        ModelParams {
            rls_lambda: 0.995,
            ridge: 20.0,
            drift_alpha: 0.05,
            holt: (0.3, 0.05, 0.9),
            logistic_rate: 0.02,
        }
    }
}

impl ModelParams {
    /// Fresh instances of every model for one (symbol, horizon of `h` bars).
    pub fn instantiate(&self, h: u32) -> Vec<Online> {
        let ModelParams {
            rls_lambda,
            ridge,
            drift_alpha,
            holt: (alpha, beta, phi),
            logistic_rate,
        } = *self;
        vec![
            Online::Persistence(Persistence),
            Online::EwmaDrift(EwmaDrift::new(drift_alpha, h)),
            Online::Rls(Box::new(Rls::new(rls_lambda, ridge, h))),
            Online::Ar(Autoregressive::new(rls_lambda, ridge, h)),
            Online::Holt(Holt::new(alpha, beta, phi, h)),
            Online::Logistic(Logistic::new(logistic_rate)),
        ]
    }

    /// The model names, in order.
    pub fn names(&self) -> Vec<&'static str> {
        self.instantiate(1).iter().map(|m| m.name()).collect()
    }

    /// The online models a user asked for (`run --models`), as names in the
    /// zoo's order. Persistence is always among them: it is the baseline
    /// every champion must beat, and what a series serves until it has one.
    /// An unknown or repeated name is an error that lists the known ones.
    pub fn select<S: AsRef<str>>(&self, wanted: &[S]) -> Result<Vec<&'static str>, String> {
        let known = self.names();
        let mut seen = Vec::new();
        for w in wanted {
            let w = w.as_ref();
            let Some(&name) = known.iter().find(|k| **k == w) else {
                return Err(format!(
                    "unknown model `{w}` (online models: {})",
                    known.join(", ")
                ));
            };
            if seen.contains(&name) {
                return Err(format!("model `{w}` is named twice"));
            }
            seen.push(name);
        }
        Ok(known
            .into_iter()
            .filter(|k| *k == PERSISTENCE || seen.contains(k))
            .collect())
    }
}
