//! Shrinkage toward persistence by a model's own out-of-sample record.
//!
//! A learned model cannot tell, from its own fit, whether the series it
//! fits has any signal: on a random walk a regression's forecasts are
//! estimation noise, and serving them costs their variance (skill below
//! 0, the more so the more parameters and the longer the horizon). So
//! every model's raw forecast f is served as κ·f, where κ is the
//! through-the-origin regression of realised returns on the model's past
//! raw forecasts, both divided by the horizon's volatility at the time the
//! forecast was made (so calm and wild stretches weigh alike), computed
//! only from predictions already scored (never from one whose outcome is
//! not yet known: no look-ahead), exponentially weighted over about
//! [`SHRINK_MEMORY`] independent outcomes (×h bars, as consecutive h-bar
//! outcomes overlap), lowered by [`SHRINK_Z`] standard errors and clipped
//! to [0, 1]:
//!
//! ```text
//! κ = clip( (Σ w·f·y − z·√(h·Σ w²·f²·y²)) / Σ w·f², 0, 1 )
//! ```
//!
//! The standard error assumes no relation between f and y and inflates the
//! variance by h for the overlap. With no evidence (no scores yet, or
//! forecasts unrelated to outcomes) κ is 0 and the model serves
//! persistence's forecast; a model whose forecasts carry signal earns κ
//! near 1 (κ > 1 is never used: shrinkage only ever moves toward the
//! baseline). So on a series with no signal a model's skill tends to 0 from
//! below instead of to its estimation noise. The rule looks at a number
//! per forecast and nothing else, so it applies to every model, including
//! ones registered later.

use serde::{Deserialize, Serialize};

/// Memory of the shrinkage sums, in independent outcomes (h bars each).
pub const SHRINK_MEMORY: f64 = 500.0;
/// Standard errors the evidence must clear before anything is served.
pub const SHRINK_Z: f64 = 1.0;

/// The running sums behind κ for one (symbol, horizon, model).
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Shrinkage {
    decay: f64,
    h: f64,
    /// Σ w·f·y.
    fy: f64,
    /// Σ w·f².
    ff: f64,
    /// Σ w²·f²·y².
    ffyy: f64,
}

impl Shrinkage {
    /// No evidence yet, for horizon `h` bars.
    pub fn new(h: u32) -> Self {
        let h = f64::from(h.max(1));
        Shrinkage {
            decay: 1.0 - 1.0 / (SHRINK_MEMORY * h),
            h,
            fy: 0.0,
            ff: 0.0,
            ffyy: 0.0,
        }
    }

    /// The share of the raw forecast to serve, in [0, 1].
    pub fn factor(&self) -> f64 {
        if self.ff <= 0.0 {
            return 0.0;
        }
        let k = (self.fy - SHRINK_Z * (self.h * self.ffyy).sqrt()) / self.ff;
        if k.is_finite() {
            k.clamp(0.0, 1.0)
        } else {
            0.0
        }
    }

    /// A scored prediction: raw forecast `f` and outcome `y`, both already
    /// divided by the horizon's volatility at the time of the forecast.
    pub fn update(&mut self, f: f64, y: f64) {
        if !f.is_finite() || !y.is_finite() {
            return;
        }
        let d = self.decay;
        self.fy = d * self.fy + f * y;
        self.ff = d * self.ff + f * f;
        self.ffyy = d * d * self.ffyy + f * f * y * y;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_evidence_serves_nothing_and_signal_earns_its_share() {
        let mut rng = crate::sim::Rng::new(4);
        assert_eq!(Shrinkage::new(1).factor(), 0.0);
        // Forecasts unrelated to outcomes: κ stays near 0.
        let mut noise = Shrinkage::new(1);
        // Half-right forecasts (the outcome is half the forecast plus
        // noise): κ estimates that half.
        let mut half = Shrinkage::new(1);
        // Anti-forecasts never get a negative share.
        let mut wrong = Shrinkage::new(1);
        let mut worst_noise: f64 = 0.0;
        for i in 0..20_000 {
            let f = rng.normal();
            let e = rng.normal();
            noise.update(f, e);
            half.update(f, 0.5 * f + e);
            wrong.update(f, -f + e);
            if i > 1_000 {
                worst_noise = worst_noise.max(noise.factor());
            }
        }
        assert!(worst_noise < 0.1, "{worst_noise}");
        assert!((half.factor() - 0.5).abs() < 0.1, "{}", half.factor());
        assert_eq!(wrong.factor(), 0.0);
        noise.update(f64::NAN, 1.0);
        assert!(noise.factor().is_finite());
    }
}
