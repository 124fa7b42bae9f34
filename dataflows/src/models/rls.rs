//! Recursive least squares with exponential forgetting on the feature vector.
//!
//! Classic RLS: gain k = P x / (λ + xᵀ P x), w += k (y − wᵀx),
//! P = (P − k xᵀ P) / λ. P starts at δ·I. If the state stops being finite or
//! P's trace explodes, the model resets to its prior and reports it.

use ndarray::{Array1, Array2};
use tracing::warn;

use super::OnlineModel;
use crate::features::{Features, FEATURE_DIM};

const DELTA: f64 = 10.0;
const MAX_TRACE: f64 = 1e10;

/// RLS with forgetting factor λ.
#[derive(Clone, Debug)]
pub struct Rls {
    lambda: f64,
    w: Array1<f64>,
    p: Array2<f64>,
    resets: u64,
}

impl Rls {
    /// A fresh model; λ is clamped to [0.9, 1].
    pub fn new(lambda: f64) -> Self {
        Rls {
            lambda: lambda.clamp(0.9, 1.0),
            w: Array1::zeros(FEATURE_DIM),
            p: Array2::eye(FEATURE_DIM) * DELTA,
            resets: 0,
        }
    }

    /// How often the model diverged and reset.
    pub fn resets(&self) -> u64 {
        self.resets
    }

    fn reset(&mut self) {
        self.w.fill(0.0);
        self.p = Array2::eye(FEATURE_DIM) * DELTA;
        self.resets += 1;
    }
}

impl OnlineModel for Rls {
    fn name(&self) -> &'static str {
        "rls"
    }

    fn predict(&self, x: &Features) -> f64 {
        let x = Array1::from(x.vector().to_vec());
        let y = self.w.dot(&x);
        if y.is_finite() {
            y
        } else {
            0.0
        }
    }

    fn learn(&mut self, x: &Features, y: f64) -> bool {
        let xv = x.vector();
        if !y.is_finite() || xv.iter().any(|v| !v.is_finite()) {
            return false;
        }
        let x = Array1::from(xv.to_vec());
        let px = self.p.dot(&x);
        let denom = self.lambda + x.dot(&px);
        let err = y - self.w.dot(&x);
        let k = &px / denom;
        self.w.scaled_add(err, &k);
        let kxp = k
            .view()
            .insert_axis(ndarray::Axis(1))
            .dot(&px.view().insert_axis(ndarray::Axis(0)));
        self.p = (&self.p - &kxp) / self.lambda;
        let trace: f64 = self.p.diag().sum();
        if !denom.is_finite()
            || !trace.is_finite()
            || trace > MAX_TRACE
            || self.w.iter().any(|v| !v.is_finite())
        {
            warn!(model = "rls", trace, "rls diverged; resetting to its prior");
            self.reset();
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_a_linear_relation() {
        let mut m = Rls::new(1.0);
        // y = 0.002 + 0.0005 * (r1/vol) exactly.
        for i in 0..2000 {
            let r1 = ((i * 37 % 19) as f64 - 9.0) * 1e-4;
            let f = Features {
                r1,
                r5: ((i * 13 % 7) as f64 - 3.0) * 1e-4,
                vol: 1e-3,
                ofi: 0.1 * ((i % 5) as f64 - 2.0),
            };
            m.learn(&f, 0.002 + 0.0005 * r1 / 1e-3);
        }
        let f = Features {
            r1: 5e-4,
            r5: 0.0,
            vol: 1e-3,
            ofi: 0.0,
        };
        assert!(
            (m.predict(&f) - (0.002 + 0.0005 * 0.5)).abs() < 1e-6,
            "{}",
            m.predict(&f)
        );
    }

    /// With no forgetting, RLS is recursive least squares: after many noisy
    /// samples it must agree with a batch OLS fit (linfa) on the same data.
    #[test]
    fn agrees_with_batch_least_squares() {
        use linfa::traits::Fit;
        use linfa::Dataset;
        let mut rng = crate::sim::Rng::new(17);
        let n = 5_000;
        let mut xs = Vec::with_capacity(n * FEATURE_DIM);
        let mut ys = Vec::with_capacity(n);
        let mut m = Rls::new(1.0);
        for _ in 0..n {
            let f = Features {
                r1: 1e-3 * rng.normal(),
                r5: 2e-3 * rng.normal(),
                vol: 1e-3 * (1.0 + rng.uniform()),
                ofi: rng.uniform() * 2.0 - 1.0,
            };
            let x = f.vector();
            let y = 1e-4 + 3e-4 * x[1] - 2e-4 * x[2] + 5e-4 * x[3] + 1e-3 * rng.normal();
            m.learn(&f, y);
            xs.extend_from_slice(&x);
            ys.push(y);
        }
        let records = ndarray::Array2::from_shape_vec((n, FEATURE_DIM), xs).unwrap();
        let ols = linfa_linear::LinearRegression::new()
            .with_intercept(false)
            .fit(&Dataset::new(records, ndarray::Array1::from(ys)))
            .unwrap();
        for (rls_w, ols_w) in m.w.iter().zip(ols.params().iter()) {
            assert!(
                (rls_w - ols_w).abs() < 1e-6,
                "rls {} vs ols {}",
                rls_w,
                ols_w
            );
        }
    }

    #[test]
    fn divergence_resets() {
        let mut m = Rls::new(0.9);
        let f = Features {
            r1: f64::INFINITY,
            r5: 1.0,
            vol: 1e-8,
            ofi: 0.0,
        };
        // Non-finite inputs are ignored, not learned.
        assert!(!m.learn(&f, 1.0));
        let f = Features {
            r1: 1e-3,
            r5: 0.0,
            vol: 1e-3,
            ofi: 0.0,
        };
        assert!(m.predict(&f).is_finite());
        let mut diverged = false;
        for _ in 0..2000 {
            diverged |= m.learn(
                &Features {
                    r1: 0.0,
                    r5: 0.0,
                    vol: 1.0,
                    ofi: 0.0,
                },
                0.0,
            );
        }
        // With λ = 0.9 and an unexcited direction, P grows until the guard fires.
        assert!(diverged && m.resets() >= 1);
    }
}
