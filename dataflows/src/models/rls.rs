//! The two linear models, both fitted by the exponentially weighted ridge
//! estimator ([`super::ridge`]): `rls`, a linear model on the feature
//! vector, and `ar`, an AR(3) on volatility-scaled 1-bar returns with an
//! intercept. (`rls` keeps its name: it is still least squares updated
//! recursively with forgetting, now with a penalty that is not forgotten.)
//!
//! What they see, and why (each point is a cause of the skill of −13.8 /
//! −8.4 these models had on the demo's market before):
//! - **Targets on the inputs' scale.** Inputs are volatility-scaled (~1);
//!   the target is the horizon's log return divided by the horizon's
//!   volatility at bar t (`rvol30 · √h`, known at t), clipped at ±10 like
//!   the inputs, and the forecast is scaled back. Raw targets (~1e-4) next
//!   to unit inputs made the prior δ·I of the old RLS meaningless and let a
//!   single jump dominate the fit.
//! - **Overlapping targets are not independent.** Consecutive h-bar
//!   returns share h − 1 bars, so a window of N bars holds only about N/h
//!   independent outcomes. Memory and penalty therefore grow with h: the
//!   forgetting factor per bar is 1 − (1 − λ)/h and the penalty μ·h, so
//!   every horizon is fitted on the same number of independent outcomes
//!   (1/(1 − λ) = 200 by default) with the same prior weight.
//! - **No wind-up**: see [`super::ridge`]. A one-day replay of the default
//!   market has no reset (tested in `dataflows/tests/model_skill.rs`).
//!
//! What they still cannot do is know when they have no signal: on a random
//! walk a fitted linear model's forecasts are pure estimation noise. That
//! is handled for every model alike by the shrinkage in
//! [`crate::calibrate`], not here.

use serde::{Deserialize, Serialize};

use super::ridge::Ridge;
use super::{horizon_scale, Forecast, OnlineModel};
use crate::features::{winsor, Features, AR_LAGS, FEATURE_DIM};

/// Forgetting per bar for horizon `h`, given λ per independent outcome.
pub fn per_bar_forgetting(lambda: f64, h: u32) -> f64 {
    1.0 - (1.0 - lambda.clamp(0.0, 1.0)) / f64::from(h.max(1))
}

/// Linear model on [`Features::vector`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Rls {
    est: Ridge<FEATURE_DIM>,
    h: u32,
}

impl Rls {
    /// A model for horizon `h` bars, forgetting λ per independent outcome,
    /// ridge penalty `mu` per independent outcome.
    pub fn new(lambda: f64, mu: f64, h: u32) -> Self {
        Rls {
            est: Ridge::new(per_bar_forgetting(lambda, h), mu * f64::from(h.max(1))),
            h,
        }
    }
}

impl OnlineModel for Rls {
    fn name(&self) -> &'static str {
        "rls"
    }
    fn predict(&self, x: &Features) -> Forecast {
        Forecast::point(self.est.predict(&x.vector()) * horizon_scale(x, self.h))
    }
    fn learn(&mut self, x: &Features, y: f64) -> bool {
        self.est
            .learn(&x.vector(), winsor(y / horizon_scale(x, self.h)))
    }
}

/// AR(3) on 1-bar returns scaled by volatility, with an intercept.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Autoregressive {
    est: Ridge<{ AR_LAGS + 1 }>,
    h: u32,
}

impl Autoregressive {
    /// A model for horizon `h` bars (see [`Rls::new`]).
    pub fn new(lambda: f64, mu: f64, h: u32) -> Self {
        Autoregressive {
            est: Ridge::new(per_bar_forgetting(lambda, h), mu * f64::from(h.max(1))),
            h,
        }
    }

    fn inputs(x: &Features) -> [f64; AR_LAGS + 1] {
        let v = x.scale();
        let mut a = [1.0; AR_LAGS + 1];
        for (slot, l) in a[1..].iter_mut().zip(x.lags) {
            *slot = winsor(l / v);
        }
        a
    }
}

impl OnlineModel for Autoregressive {
    fn name(&self) -> &'static str {
        "ar"
    }
    fn predict(&self, x: &Features) -> Forecast {
        Forecast::point(self.est.predict(&Self::inputs(x)) * horizon_scale(x, self.h))
    }
    fn learn(&mut self, x: &Features, y: f64) -> bool {
        self.est
            .learn(&Self::inputs(x), winsor(y / horizon_scale(x, self.h)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ar_finds_autocorrelation() {
        let mut m = Autoregressive::new(0.999, 1.0, 1);
        let mut rng = crate::sim::Rng::new(3);
        let mut lags = [0.0; AR_LAGS];
        for _ in 0..20_000 {
            let r = 0.5 * lags[0] + 1e-3 * rng.normal();
            let x = Features {
                rvol30: 1e-3,
                lags,
                ..Features::default()
            };
            m.learn(&x, r);
            lags.rotate_right(1);
            lags[0] = r;
        }
        let x = Features {
            rvol30: 1e-3,
            lags: [2e-3, 0.0, 0.0],
            ..Features::default()
        };
        assert!(
            (m.predict(&x).ret - 1e-3).abs() < 1e-4,
            "{:?}",
            m.predict(&x)
        );
    }

    /// The target is scaled by the horizon's volatility and the forecast
    /// scaled back: the same relation at a thousand times the volatility
    /// gives a thousand times the forecast, not a different fit.
    #[test]
    fn forecasts_scale_with_volatility() {
        let fit = |vol: f64| {
            let mut m = Rls::new(1.0, 1.0, 5);
            let mut rng = crate::sim::Rng::new(8);
            let mut last = Features::default();
            for _ in 0..5_000 {
                let ofi = rng.uniform() * 2.0 - 1.0;
                last = Features {
                    rvol30: vol,
                    ofi,
                    ..Features::default()
                };
                let y = vol * 5f64.sqrt() * (0.5 * ofi + 0.5 * rng.normal());
                m.learn(&last, y);
            }
            last.ofi = 1.0;
            m.predict(&last).ret / (vol * 5f64.sqrt())
        };
        let (a, b) = (fit(1e-5), fit(1e-2));
        assert!((a - b).abs() < 1e-9 && (a - 0.5).abs() < 0.05, "{a} {b}");
    }
}
