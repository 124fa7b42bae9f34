//! Online logistic regression for the direction of the horizon return:
//! P(return > 0) = σ(w·x), trained by stochastic gradient descent with a
//! small L2 penalty when the outcome arrives. Its point forecast is
//! (2p − 1) times the running mean absolute return of the horizon, so it
//! can be scored like the others; the probability itself is reported too.

use serde::{Deserialize, Serialize};

use super::{Forecast, OnlineModel};
use crate::features::{Features, FEATURE_DIM};

const L2: f64 = 1e-4;
const MAX_WEIGHT: f64 = 1e3;

/// Logistic regression with SGD.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Logistic {
    rate: f64,
    w: [f64; FEATURE_DIM],
    mean_abs: f64,
    seen: u64,
}

impl Logistic {
    /// A fresh model with learning rate `rate`.
    pub fn new(rate: f64) -> Self {
        Logistic {
            rate: rate.clamp(1e-6, 1.0),
            w: [0.0; FEATURE_DIM],
            mean_abs: 0.0,
            seen: 0,
        }
    }

    fn prob(&self, x: &[f64; FEATURE_DIM]) -> f64 {
        let z: f64 = self.w.iter().zip(x).map(|(w, x)| w * x).sum();
        1.0 / (1.0 + (-z.clamp(-40.0, 40.0)).exp())
    }
}

impl OnlineModel for Logistic {
    fn name(&self) -> &'static str {
        "logistic"
    }

    fn predict(&self, x: &Features) -> Forecast {
        let v = x.vector();
        if v.iter().any(|a| !a.is_finite()) {
            return Forecast {
                ret: 0.0,
                direction_prob: Some(0.5),
            };
        }
        let p = self.prob(&v);
        Forecast {
            ret: (2.0 * p - 1.0) * self.mean_abs,
            direction_prob: Some(p),
        }
    }

    fn learn(&mut self, x: &Features, y: f64) -> bool {
        let v = x.vector();
        if !y.is_finite() || v.iter().any(|a| !a.is_finite()) {
            return false;
        }
        self.seen += 1;
        let a = (1.0 / self.seen as f64).max(0.02);
        self.mean_abs += a * (y.abs() - self.mean_abs);
        if y == 0.0 {
            return false; // no direction to learn
        }
        let target = if y > 0.0 { 1.0 } else { 0.0 };
        let g = self.prob(&v) - target;
        for (w, x) in self.w.iter_mut().zip(v) {
            *w -= self.rate * (g * x + L2 * *w);
        }
        if self
            .w
            .iter()
            .any(|w| !w.is_finite() || w.abs() > MAX_WEIGHT)
        {
            *self = Logistic::new(self.rate);
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_a_separable_direction() {
        let mut m = Logistic::new(0.1);
        let mut rng = crate::sim::Rng::new(5);
        let f = |ofi: f64| Features {
            rvol30: 1e-3,
            ofi,
            ..Features::default()
        };
        for _ in 0..5_000 {
            let ofi = rng.uniform() * 2.0 - 1.0;
            m.learn(&f(ofi), if ofi > 0.0 { 1e-3 } else { -1e-3 });
        }
        let up = m.predict(&f(0.8));
        let down = m.predict(&f(-0.8));
        assert!(up.direction_prob.unwrap() > 0.9 && up.ret > 0.0, "{up:?}");
        assert!(
            down.direction_prob.unwrap() < 0.1 && down.ret < 0.0,
            "{down:?}"
        );
    }
}
