//! Online models: predict a horizon's log return from the features at bar t,
//! learn from the realised return only when bar t+h has closed.
//!
//! Every model is a small struct behind [`OnlineModel`]; its state is per
//! (symbol, horizon) and a few hundred bytes. A model must never return a
//! non-finite prediction: one that diverges resets itself and says so.

mod baselines;
mod rls;

pub use baselines::{EwmaDrift, Persistence};
pub use rls::Rls;

use crate::features::Features;

/// The name of the persistence baseline (zero return, i.e. last price).
pub const PERSISTENCE: &str = "persistence";

/// A model updated one observation at a time.
pub trait OnlineModel: Send {
    /// Stable name, used in tables and the API.
    fn name(&self) -> &'static str;
    /// Predicted log return over the horizon given the features at bar t.
    fn predict(&self, x: &Features) -> f64;
    /// Learns from the features at bar t and the realised return to t+h.
    /// Returns true if the model had to reset itself (diverged).
    fn learn(&mut self, x: &Features, y: f64) -> bool;
}

/// Which models to run, in a fixed order (the order reaches outputs).
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSet {
    /// RLS forgetting factor.
    pub rls_lambda: f64,
    /// EWMA drift smoothing factor.
    pub drift_alpha: f64,
}

impl Default for ModelSet {
    fn default() -> Self {
        ModelSet {
            rls_lambda: 0.995,
            drift_alpha: 0.05,
        }
    }
}

impl ModelSet {
    /// Fresh instances of every model for one (symbol, horizon).
    pub fn instantiate(&self) -> Vec<Box<dyn OnlineModel>> {
        vec![
            Box::new(Persistence),
            Box::new(EwmaDrift::new(self.drift_alpha)),
            Box::new(Rls::new(self.rls_lambda)),
        ]
    }

    /// The model names, in order.
    pub fn names(&self) -> Vec<&'static str> {
        self.instantiate().iter().map(|m| m.name()).collect()
    }
}
