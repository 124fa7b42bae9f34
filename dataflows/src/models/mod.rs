//! Online models: predict a horizon's log return from the features at bar t,
//! learn from the realised return only when bar t+h has closed.
//!
//! Every model is a small struct behind [`OnlineModel`]; one instance per
//! (symbol, horizon), a few hundred bytes each (measured by the model
//! benchmark). A model never returns a non-finite prediction: one that
//! diverges resets itself to its prior and the caller logs it.

mod baselines;
mod holt;
mod logistic;
mod rls;

pub use baselines::{EwmaDrift, Persistence};
pub use holt::Holt;
pub use logistic::Logistic;
pub use rls::{Autoregressive, Rls, RlsCore};

use crate::features::Features;

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

/// The online models' hyper-parameters; [`ModelParams::instantiate`] makes
/// one instance of every model, in a fixed order (the order reaches outputs).
#[derive(Clone, Debug, PartialEq)]
pub struct ModelParams {
    /// RLS and AR forgetting factor.
    pub rls_lambda: f64,
    /// EWMA drift smoothing factor.
    pub drift_alpha: f64,
    /// Holt level and trend smoothing factors.
    pub holt: (f64, f64),
    /// Logistic regression learning rate.
    pub logistic_rate: f64,
}

impl Default for ModelParams {
    fn default() -> Self {
        ModelParams {
            rls_lambda: 0.995,
            drift_alpha: 0.05,
            holt: (0.3, 0.05),
            logistic_rate: 0.02,
        }
    }
}

impl ModelParams {
    /// Fresh instances of every model for one (symbol, horizon of `h` bars).
    pub fn instantiate(&self, h: u32) -> Vec<Box<dyn OnlineModel>> {
        vec![
            Box::new(Persistence),
            Box::new(EwmaDrift::new(self.drift_alpha)),
            Box::new(Rls::new(self.rls_lambda)),
            Box::new(Autoregressive::new(self.rls_lambda)),
            Box::new(Holt::new(self.holt.0, self.holt.1, h)),
            Box::new(Logistic::new(self.logistic_rate)),
        ]
    }

    /// The model names, in order.
    pub fn names(&self) -> Vec<&'static str> {
        self.instantiate(1).iter().map(|m| m.name()).collect()
    }
}
