//! What a model's raw forecast becomes before anyone sees it, the same for
//! every model (built-in or registered later): shrunk toward persistence
//! by the model's own out-of-sample record ([`crate::models::shrink`]),
//! bounded, and given an 80% interval ([`crate::intervals`]).
//!
//! Time semantics: [`Calibrator::issue`] at bar t uses only predictions
//! already scored; [`Calibrator::settle`] at bar t + h records the outcome
//! of the forecast issued at t. Nothing here ever sees an outcome before
//! its horizon has passed.
//!
//! The bound: a served forecast is at most [`MAX_MOVE_VOLS`] volatilities
//! of the horizon (the larger of the 30- and 120-bar volatility, × √h).
//! A conditional mean beyond that would mean an R² above 90% for that
//! forecast, which nothing here earns; the old bound of 10 volatilities
//! let a wound-up regression serve forecasts whose squared error was a
//! hundred times the baseline's. With the shrinkage in place the bound is
//! a last guard, not the mechanism.

use serde::{Deserialize, Serialize};

use crate::features::{winsor, Features};
use crate::intervals::AdaptiveInterval;
use crate::models::horizon_scale;
use crate::models::shrink::Shrinkage;

/// Largest served forecast, in volatilities of the horizon.
pub const MAX_MOVE_VOLS: f64 = 3.0;

/// A forecast as issued at bar t: the model's raw forecast, what is served,
/// and the served forecast's 80% interval (once enough is known).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Issued {
    /// The model's own forecast of the log return.
    pub raw: f64,
    /// The served forecast: shrunk and bounded.
    pub ret: f64,
    /// The 80% interval of the return (absolute bounds), if known.
    pub interval: Option<(f64, f64)>,
}

/// One (symbol, horizon, model)'s shrinkage and interval state.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Calibrator {
    h: u32,
    shrink: Shrinkage,
    interval: AdaptiveInterval,
}

impl Calibrator {
    /// No record yet, for horizon `h` bars.
    pub fn new(h: u32) -> Self {
        Calibrator {
            h,
            shrink: Shrinkage::new(h),
            interval: AdaptiveInterval::new(),
        }
    }

    /// The share of a raw forecast currently served, in [0, 1].
    pub fn shrink_factor(&self) -> f64 {
        self.shrink.factor()
    }

    /// What to serve for the model's raw forecast `raw` made at bar t with
    /// features `x`.
    pub fn issue(&self, raw: f64, x: &Features) -> Issued {
        let raw = if raw.is_finite() { raw } else { 0.0 };
        let bound =
            (MAX_MOVE_VOLS * x.rvol120.max(x.rvol30) * f64::from(self.h.max(1)).sqrt()).max(1e-6);
        let ret = (self.shrink.factor() * raw).clamp(-bound, bound);
        let interval = self
            .interval
            .offsets(horizon_scale(x, self.h))
            .map(|(lo, hi)| (ret + lo, ret + hi));
        Issued { raw, ret, interval }
    }

    /// The outcome `y` of `issued`, made at a bar with features `x`.
    /// Returns whether it fell inside the interval (None: there was none).
    pub fn settle(&mut self, issued: &Issued, x: &Features, y: f64) -> Option<bool> {
        if !y.is_finite() {
            return None;
        }
        let s = horizon_scale(x, self.h);
        self.shrink.update(winsor(issued.raw / s), winsor(y / s));
        self.interval.observe(issued.ret, issued.interval, y, s)
    }
}
