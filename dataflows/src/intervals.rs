//! Conformal prediction intervals: each (symbol, horizon, model) keeps its
//! last [`RESIDUAL_WINDOW`] out-of-sample residuals (realised − predicted,
//! recorded when a prediction is scored, never before), and the interval of
//! a new prediction is the prediction plus the residuals' central quantiles.
//! No distribution is assumed; coverage holds as long as the recent
//! residuals are representative of the next one.

use std::collections::VecDeque;

/// Central coverage of the prediction intervals.
pub const INTERVAL_COVERAGE: f64 = 0.8;
/// Residuals kept per (symbol, horizon, model) for the intervals.
pub const RESIDUAL_WINDOW: usize = 250;
/// Residuals needed before an interval is reported.
pub const MIN_RESIDUALS: usize = 20;

/// The last `cap` residuals of a model, kept sorted for quantiles: O(log n)
/// search plus a short memmove per update, no re-sorting.
#[derive(Clone, Debug, Default)]
pub struct Residuals {
    ring: VecDeque<f64>,
    sorted: Vec<f64>,
    cap: usize,
}

impl Residuals {
    /// An empty window of `cap` residuals.
    pub fn new(cap: usize) -> Self {
        Residuals {
            ring: VecDeque::with_capacity(cap + 1),
            sorted: Vec::with_capacity(cap + 1),
            cap,
        }
    }

    /// Adds a residual (realised − predicted), evicting the oldest.
    pub fn push(&mut self, r: f64) {
        if !r.is_finite() {
            return;
        }
        self.ring.push_back(r);
        let at = self.sorted.partition_point(|x| x.total_cmp(&r).is_lt());
        self.sorted.insert(at, r);
        if self.ring.len() > self.cap {
            let old = self.ring.pop_front().expect("non-empty");
            let at = self.sorted.partition_point(|x| x.total_cmp(&old).is_lt());
            self.sorted.remove(at);
        }
    }

    /// The (lower, upper) residual quantiles of a central `coverage`
    /// interval, once at least `min` residuals are known.
    pub fn interval(&self, coverage: f64, min: usize) -> Option<(f64, f64)> {
        let n = self.sorted.len();
        if n < min.max(1) {
            return None;
        }
        let tail = (1.0 - coverage) / 2.0;
        let idx = |q: f64| ((q * (n - 1) as f64).round() as usize).min(n - 1);
        Some((self.sorted[idx(tail)], self.sorted[idx(1.0 - tail)]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn residual_quantiles_match_a_sort() {
        let mut rng = crate::sim::Rng::new(9);
        let mut r = Residuals::new(50);
        let mut all = Vec::new();
        for i in 0..500 {
            let x = rng.normal();
            r.push(x);
            all.push(x);
            let mut last: Vec<f64> = all[all.len().saturating_sub(50)..].to_vec();
            last.sort_by(f64::total_cmp);
            let n = last.len();
            let got = r.interval(0.8, 1).unwrap();
            let idx = |q: f64| ((q * (n - 1) as f64).round() as usize).min(n - 1);
            let tail = (1.0 - 0.8) / 2.0;
            assert_eq!(got, (last[idx(tail)], last[idx(1.0 - tail)]), "step {i}");
        }
        assert!(Residuals::new(5).interval(0.8, 1).is_none());
    }
}
