//! The baselines: persistence (the price stays where it is: zero return),
//! the one every model must beat to be champion, and drift (an EWMA of
//! realised horizon returns).
//!
//! Drift averages realised h-bar returns, which overlap by h − 1 bars: its
//! smoothing factor is α/h, so its memory holds the same number of
//! independent outcomes (1/α) at every horizon. With α per observation
//! (the old rule) the h = 15 average rested on about one independent
//! outcome and its skill was −0.32.

use serde::{Deserialize, Serialize};

use super::{Forecast, OnlineModel};
use crate::features::Features;

/// Predicts no change.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct Persistence;

impl OnlineModel for Persistence {
    fn name(&self) -> &'static str {
        super::PERSISTENCE
    }
    fn predict(&self, _x: &Features) -> Forecast {
        Forecast::point(0.0)
    }
    fn learn(&mut self, _x: &Features, _y: f64) -> bool {
        false
    }
}

/// Predicts the exponentially weighted mean of past realised returns.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct EwmaDrift {
    alpha: f64,
    mean: f64,
}

impl EwmaDrift {
    /// A drift model for horizon `h` bars with smoothing factor `alpha` in
    /// (0, 1] per independent outcome (α/h per observation).
    pub fn new(alpha: f64, h: u32) -> Self {
        EwmaDrift {
            alpha: alpha.clamp(1e-6, 1.0) / f64::from(h.max(1)),
            mean: 0.0,
        }
    }
}

impl OnlineModel for EwmaDrift {
    fn name(&self) -> &'static str {
        "ewma_drift"
    }
    fn predict(&self, _x: &Features) -> Forecast {
        Forecast::point(self.mean)
    }
    fn learn(&mut self, _x: &Features, y: f64) -> bool {
        if !y.is_finite() {
            return false;
        }
        self.mean += self.alpha * (y - self.mean);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drift_tracks_the_mean() {
        let mut m = EwmaDrift::new(0.5, 1);
        let x = Features::default();
        m.learn(&x, 1.0);
        assert_eq!(m.predict(&x).ret, 0.5);
        m.learn(&x, 1.0);
        assert_eq!(m.predict(&x).ret, 0.75);
        m.learn(&x, f64::NAN);
        assert_eq!(m.predict(&x).ret, 0.75);
        assert_eq!(Persistence.predict(&x).ret, 0.0);
    }
}
