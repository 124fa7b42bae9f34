//! Recursive least squares with exponential forgetting, and the two models
//! built on it: a linear model on the feature vector (`rls`) and an online
//! AR(3) on volatility-scaled 1-bar returns (`ar`).
//!
//! Classic RLS: gain k = P x / (λ + xᵀ P x), w += k (y − wᵀx),
//! P = (P − k xᵀ P) / λ. P starts at δ·I. If the state stops being finite or
//! P's trace explodes, the model resets to its prior and reports it.

use ndarray::{Array1, Array2, ArrayView1, Axis};

use super::{Forecast, OnlineModel};
use crate::features::{Features, AR_LAGS};

// Inputs are clipped (see `features::winsor`), so a quiet stretch cannot
// feed the estimator absurd values.

const DELTA: f64 = 10.0;
const MAX_TRACE: f64 = 1e10;

/// The RLS estimator on `dim` inputs.
#[derive(Clone, Debug)]
pub struct RlsCore {
    lambda: f64,
    w: Array1<f64>,
    p: Array2<f64>,
    resets: u64,
}

impl RlsCore {
    /// A fresh estimator; λ is clamped to [0.9, 1].
    pub fn new(dim: usize, lambda: f64) -> Self {
        RlsCore {
            lambda: lambda.clamp(0.9, 1.0),
            w: Array1::zeros(dim),
            p: Array2::eye(dim) * DELTA,
            resets: 0,
        }
    }

    /// wᵀx, or 0 when that is not finite.
    pub fn predict(&self, x: ArrayView1<f64>) -> f64 {
        let y = self.w.dot(&x);
        if y.is_finite() {
            y
        } else {
            0.0
        }
    }

    /// One update; true if the estimator diverged and was reset.
    pub fn learn(&mut self, x: ArrayView1<f64>, y: f64) -> bool {
        if !y.is_finite() || x.iter().any(|v| !v.is_finite()) {
            return false;
        }
        let px = self.p.dot(&x);
        let denom = self.lambda + x.dot(&px);
        let err = y - self.w.dot(&x);
        let k = &px / denom;
        self.w.scaled_add(err, &k);
        let kxp = k
            .view()
            .insert_axis(Axis(1))
            .dot(&px.view().insert_axis(Axis(0)));
        self.p = (&self.p - &kxp) / self.lambda;
        let trace: f64 = self.p.diag().sum();
        if !denom.is_finite()
            || !trace.is_finite()
            || trace > MAX_TRACE
            || self.w.iter().any(|v| !v.is_finite())
        {
            let dim = self.w.len();
            self.w = Array1::zeros(dim);
            self.p = Array2::eye(dim) * DELTA;
            self.resets += 1;
            return true;
        }
        false
    }

    /// How often the estimator diverged and reset.
    pub fn resets(&self) -> u64 {
        self.resets
    }

    /// The weights.
    pub fn weights(&self) -> ArrayView1<'_, f64> {
        self.w.view()
    }
}

/// Linear model on [`Features::vector`].
#[derive(Clone, Debug)]
pub struct Rls(RlsCore);

impl Rls {
    /// A fresh model with forgetting factor λ.
    pub fn new(lambda: f64) -> Self {
        Rls(RlsCore::new(crate::features::FEATURE_DIM, lambda))
    }
}

impl OnlineModel for Rls {
    fn name(&self) -> &'static str {
        "rls"
    }
    fn predict(&self, x: &Features) -> Forecast {
        Forecast::point(self.0.predict(ArrayView1::from(&x.vector())))
    }
    fn learn(&mut self, x: &Features, y: f64) -> bool {
        self.0.learn(ArrayView1::from(&x.vector()), y)
    }
}

/// AR(3) on 1-bar returns scaled by volatility, with an intercept.
#[derive(Clone, Debug)]
pub struct Autoregressive(RlsCore);

impl Autoregressive {
    /// A fresh model with forgetting factor λ.
    pub fn new(lambda: f64) -> Self {
        Autoregressive(RlsCore::new(AR_LAGS + 1, lambda))
    }

    fn inputs(x: &Features) -> Array1<f64> {
        let v = x.scale();
        let mut a = Vec::with_capacity(AR_LAGS + 1);
        a.push(1.0);
        a.extend(x.lags.iter().map(|l| crate::features::winsor(l / v)));
        Array1::from(a)
    }
}

impl OnlineModel for Autoregressive {
    fn name(&self) -> &'static str {
        "ar"
    }
    fn predict(&self, x: &Features) -> Forecast {
        Forecast::point(self.0.predict(Self::inputs(x).view()))
    }
    fn learn(&mut self, x: &Features, y: f64) -> bool {
        self.0.learn(Self::inputs(x).view(), y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With no forgetting, RLS is recursive least squares: after many noisy
    /// samples it must agree with a batch OLS fit (linfa) on the same data.
    #[test]
    fn agrees_with_batch_least_squares() {
        use linfa::traits::Fit;
        use linfa::Dataset;
        let dim = 5;
        let mut rng = crate::sim::Rng::new(17);
        let n = 5_000;
        let mut xs = Vec::with_capacity(n * dim);
        let mut ys = Vec::with_capacity(n);
        let mut m = RlsCore::new(dim, 1.0);
        for _ in 0..n {
            let x = [
                1.0,
                rng.normal(),
                rng.normal(),
                rng.uniform() * 2.0 - 1.0,
                rng.normal(),
            ];
            let y = 1e-4 + 3e-4 * x[1] - 2e-4 * x[2] + 5e-4 * x[3] + 1e-3 * rng.normal();
            m.learn(ndarray::ArrayView1::from(&x), y);
            xs.extend_from_slice(&x);
            ys.push(y);
        }
        let records = ndarray::Array2::from_shape_vec((n, dim), xs).unwrap();
        let ols = linfa_linear::LinearRegression::new()
            .with_intercept(false)
            .fit(&Dataset::new(records, ndarray::Array1::from(ys)))
            .unwrap();
        for (a, b) in m.weights().iter().zip(ols.params().iter()) {
            assert!((a - b).abs() < 1e-6, "rls {a} vs ols {b}");
        }
    }

    #[test]
    fn ar_finds_autocorrelation() {
        let mut m = Autoregressive::new(1.0);
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

    #[test]
    fn divergence_resets() {
        let mut m = RlsCore::new(2, 0.9);
        assert!(!m.learn(ndarray::ArrayView1::from(&[f64::INFINITY, 1.0]), 1.0));
        let mut diverged = false;
        for _ in 0..2000 {
            diverged |= m.learn(ndarray::ArrayView1::from(&[1.0, 0.0]), 0.0);
        }
        // With λ = 0.9 and an unexcited direction, P grows until the guard fires.
        assert!(diverged && m.resets() >= 1);
        assert!(m
            .predict(ndarray::ArrayView1::from(&[1.0, 1.0]))
            .is_finite());
    }
}
