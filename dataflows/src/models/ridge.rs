//! Exponentially weighted ridge regression, the estimator behind `rls` and
//! `ar`: after every observation the weights solve
//!
//! ```text
//! (Σₛ λ^(t−s) xₛxₛᵀ + μ·I) w = Σₛ λ^(t−s) xₛyₛ
//! ```
//!
//! by a Cholesky factorisation of the `D × D` system (D ≤ 8 here, a few
//! hundred flops per update).
//!
//! Why not classic recursive least squares (what this replaced): RLS with
//! forgetting carries the inverse P = (Σ λ^(t−s) x xᵀ)⁻¹ and divides it by
//! λ every step. Its prior δ·I is forgotten like everything else, so after
//! a few hundred bars there is no regularisation left, and in any direction
//! the inputs do not excite (a bias next to a slow RSI, a flat imbalance) P
//! grows as λ^(−t): covariance wind-up. The next input with a component in
//! that direction then gets a huge gain and the weights jump. On the demo's
//! market this showed up as forecasts at the 10-volatility clamp and skill
//! of −13.8, and as `ar`'s `model reset after divergence` warnings (its P
//! trace passed 10¹⁰). Here the penalty μ is not forgotten, so the system
//! matrix keeps every eigenvalue ≥ μ: the solution is bounded by
//! |b|/μ, nothing winds up, nothing can diverge on finite bounded inputs.
//! A non-finite state (only reachable through non-finite inputs, which are
//! skipped) still resets the estimator, and [`Ridge::resets`] counts it.

use serde::{Deserialize, Serialize};

/// The estimator on `D` inputs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Ridge<const D: usize> {
    lambda: f64,
    mu: f64,
    #[serde(with = "crate::snapshot::arrays::matrix")]
    a: [[f64; D]; D],
    #[serde(with = "crate::snapshot::arrays::vector")]
    b: [f64; D],
    #[serde(with = "crate::snapshot::arrays::vector")]
    w: [f64; D],
    resets: u64,
}

impl<const D: usize> Ridge<D> {
    /// A fresh estimator with forgetting factor `lambda` (clamped to
    /// [0.9, 1]) and ridge penalty `mu` (> 0; in units of observations with
    /// unit-scale inputs).
    pub fn new(lambda: f64, mu: f64) -> Self {
        Ridge {
            lambda: lambda.clamp(0.9, 1.0),
            mu: if mu.is_finite() { mu.max(1e-12) } else { 1.0 },
            a: [[0.0; D]; D],
            b: [0.0; D],
            w: [0.0; D],
            resets: 0,
        }
    }

    /// wᵀx, or 0 when that is not finite.
    pub fn predict(&self, x: &[f64; D]) -> f64 {
        let y: f64 = self.w.iter().zip(x).map(|(w, x)| w * x).sum();
        if y.is_finite() {
            y
        } else {
            0.0
        }
    }

    /// One observation; non-finite ones are skipped. True if the state
    /// stopped being finite and the estimator was reset.
    pub fn learn(&mut self, x: &[f64; D], y: f64) -> bool {
        if !y.is_finite() || x.iter().any(|v| !v.is_finite()) {
            return false;
        }
        for i in 0..D {
            for j in 0..D {
                self.a[i][j] = self.lambda * self.a[i][j] + x[i] * x[j];
            }
            self.b[i] = self.lambda * self.b[i] + x[i] * y;
        }
        match self.solve() {
            Some(w) => {
                self.w = w;
                false
            }
            None => {
                *self = Ridge {
                    resets: self.resets + 1,
                    ..Ridge::new(self.lambda, self.mu)
                };
                true
            }
        }
    }

    /// Solves (A + μI) w = b by Cholesky; None if anything is not finite.
    fn solve(&self) -> Option<[f64; D]> {
        let mut l = [[0.0; D]; D];
        for i in 0..D {
            for j in 0..=i {
                let mut s = self.a[i][j] + if i == j { self.mu } else { 0.0 };
                for (a, b) in l[i][..j].iter().zip(&l[j][..j]) {
                    s -= a * b;
                }
                if i == j {
                    if !s.is_finite() || s <= 0.0 {
                        return None;
                    }
                    l[i][i] = s.sqrt();
                } else {
                    l[i][j] = s / l[j][j];
                }
            }
        }
        let mut z = [0.0; D];
        for i in 0..D {
            let s: f64 = (0..i).map(|k| l[i][k] * z[k]).sum();
            z[i] = (self.b[i] - s) / l[i][i];
        }
        let mut w = [0.0; D];
        for i in (0..D).rev() {
            let s: f64 = (i + 1..D).map(|k| l[k][i] * w[k]).sum();
            w[i] = (z[i] - s) / l[i][i];
        }
        w.iter().all(|v| v.is_finite()).then_some(w)
    }

    /// How often the estimator had to reset.
    pub fn resets(&self) -> u64 {
        self.resets
    }

    /// The weights.
    pub fn weights(&self) -> &[f64; D] {
        &self.w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With no forgetting and a negligible penalty this is least squares:
    /// after many noisy samples it must agree with a batch OLS fit (linfa).
    #[test]
    fn agrees_with_batch_least_squares() {
        use linfa::traits::Fit;
        use linfa::Dataset;
        const DIM: usize = 5;
        let mut rng = crate::sim::Rng::new(17);
        let n = 5_000;
        let mut xs = Vec::with_capacity(n * DIM);
        let mut ys = Vec::with_capacity(n);
        let mut m = Ridge::<DIM>::new(1.0, 1e-9);
        for _ in 0..n {
            let x = [
                1.0,
                rng.normal(),
                rng.normal(),
                rng.uniform() * 2.0 - 1.0,
                rng.normal(),
            ];
            let y = 1e-4 + 3e-4 * x[1] - 2e-4 * x[2] + 5e-4 * x[3] + 1e-3 * rng.normal();
            m.learn(&x, y);
            xs.extend_from_slice(&x);
            ys.push(y);
        }
        let records = ndarray::Array2::from_shape_vec((n, DIM), xs).unwrap();
        let ols = linfa_linear::LinearRegression::new()
            .with_intercept(false)
            .fit(&Dataset::new(records, ndarray::Array1::from(ys)))
            .unwrap();
        for (a, b) in m.weights().iter().zip(ols.params().iter()) {
            assert!((a - b).abs() < 1e-8, "ridge {a} vs ols {b}");
        }
    }

    /// The penalty is the closed form's: one observation x = 1, y = 1 with
    /// μ = 1 gives w = 1/(1 + 1), and forgetting does not erode it.
    #[test]
    fn penalty_is_never_forgotten() {
        let mut m = Ridge::<1>::new(0.9, 1.0);
        m.learn(&[1.0], 1.0);
        assert!((m.weights()[0] - 0.5).abs() < 1e-12);
        // An unexcited direction stays at its prior however long it waits:
        // the failure of forgetting RLS (covariance wind-up) cannot happen.
        let mut m = Ridge::<2>::new(0.9, 1.0);
        for _ in 0..100_000 {
            assert!(!m.learn(&[1.0, 0.0], 0.0));
        }
        assert!(!m.learn(&[1.0, 1.0], 1.0));
        assert!(m.weights()[1] < 1.0, "{:?}", m.weights());
        assert_eq!(m.resets(), 0);
        assert!(!m.learn(&[f64::INFINITY, 1.0], 1.0));
        assert!(m.predict(&[1.0, 1.0]).is_finite());
    }
}
