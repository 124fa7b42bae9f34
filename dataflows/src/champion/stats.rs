//! Exact sums of one model's scores over one UTC day ([`DayStats`]), and
//! the per-model lag memory ([`LossLags`]) that gives the Diebold–Mariano
//! test its autocovariances.
//!
//! Everything is an integer: errors in units of 1/[`ERR_SCALE`] (as in
//! every metric), loss differences in units of 1/[`LOSS_SCALE`]. Integer
//! sums do not depend on the order they are added in, so no metric and no
//! test statistic depends on how scores were spread over workers. Sums
//! wrap (two's complement) instead of panicking: wrapping addition is
//! associative and commutative, so a sum that fits is exact whatever the
//! order, and realistic sums are many orders of magnitude inside i128.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::num::{to_fixed, ERR_SCALE};
use crate::predict::Score;

/// Fixed-point scale of loss differences (squared log returns) in the
/// Diebold–Mariano sums: 1e-14, so a squared-error difference of one
/// 1-second bar's variance (~1e-8) is carried to six digits.
pub const LOSS_SCALE: f64 = 1e14;
/// Loss differences are clipped to ±this many units (a squared log-return
/// difference of 1,000), so one absurd outcome cannot overflow the sums.
const MAX_LOSS_UNITS: i64 = 100_000_000_000_000_000;

/// One model's sums over one day (or a window of days).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayStats {
    /// Scores.
    pub n: i64,
    /// Σ |error|.
    pub abs: i128,
    /// Σ error².
    pub sq: i128,
    /// Σ realised²: persistence's squared errors on the same scores, so a
    /// model's skill compares it with the baseline on its own samples.
    pub base_sq: i128,
    /// Scores whose sign matched the outcome.
    pub hits: i64,
    /// Scores that had a prediction interval.
    pub with_interval: i64,
    /// Of those, outcomes inside the interval.
    pub covered: i64,
    /// Σ d, d = error² − realised² (the loss difference against
    /// persistence), in units of 1/[`LOSS_SCALE`].
    pub d_sum: i128,
    /// Σ d².
    pub d_sq: i128,
    /// Σₜ dₜ · Σₖ₌₁..ₕ₋₁ (h − k)·dₜ₋ₖ: the lag products of overlapping
    /// h-bar outcomes with Bartlett weights (× h), see [`LossLags`].
    pub d_lag: i128,
}

/// A score's loss difference against persistence, in 1/[`LOSS_SCALE`]:
/// (predicted − realised)² − realised², exact in fixed point, then scaled.
pub fn loss_difference(s: &Score) -> i64 {
    let e = i128::from(to_fixed(s.error()));
    let y = i128::from(to_fixed(s.realized_return.0));
    // Both squares are in 1/ERR_SCALE² = 1e-18; LOSS_SCALE is 1e-14.
    let per_unit = (ERR_SCALE * ERR_SCALE / LOSS_SCALE) as i128;
    let d = (e * e - y * y) / per_unit;
    d.clamp(-i128::from(MAX_LOSS_UNITS), i128::from(MAX_LOSS_UNITS)) as i64
}

impl DayStats {
    /// The contribution of one score whose loss difference is `d` and
    /// whose lag product (from [`LossLags::push`]) is `lag`.
    pub fn of(s: &Score, d: i64, lag: i128) -> Self {
        let e = i128::from(to_fixed(s.error()));
        let y = i128::from(to_fixed(s.realized_return.0));
        let d = i128::from(d);
        DayStats {
            n: 1,
            abs: e.abs(),
            sq: e * e,
            base_sq: y * y,
            hits: i64::from(s.hit()),
            with_interval: i64::from(s.covered.is_some()),
            covered: i64::from(s.covered == Some(true)),
            d_sum: d,
            d_sq: d * d,
            d_lag: lag,
        }
    }

    /// Adds `rhs` (wrapping: see the module doc).
    pub fn add(&mut self, rhs: &Self) {
        self.n = self.n.wrapping_add(rhs.n);
        self.abs = self.abs.wrapping_add(rhs.abs);
        self.sq = self.sq.wrapping_add(rhs.sq);
        self.base_sq = self.base_sq.wrapping_add(rhs.base_sq);
        self.hits = self.hits.wrapping_add(rhs.hits);
        self.with_interval = self.with_interval.wrapping_add(rhs.with_interval);
        self.covered = self.covered.wrapping_add(rhs.covered);
        self.d_sum = self.d_sum.wrapping_add(rhs.d_sum);
        self.d_sq = self.d_sq.wrapping_add(rhs.d_sq);
        self.d_lag = self.d_lag.wrapping_add(rhs.d_lag);
    }
}

/// The last h − 1 loss differences of one (symbol, horizon, model), in the
/// order the predictions were made. Two outcomes h bars long that start
/// fewer than h bars apart share bars, so their loss differences are
/// correlated; the Newey–West variance needs Σ dₜdₜ₋ₖ for k < h. A score
/// that does not follow the previous one by exactly one bar (a gap, a
/// restart) starts the memory afresh: lag products never span a gap.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LossLags {
    last_made_at: Option<u64>,
    /// Most recent first.
    recent: VecDeque<i64>,
}

impl LossLags {
    /// Records the loss difference `d` of the prediction made at
    /// `made_at_ms` for a horizon of `h` bars of `bar_ms`, and returns its
    /// lag product dₜ · Σₖ₌₁..ₕ₋₁ (h − k)·dₜ₋ₖ.
    pub fn push(&mut self, made_at_ms: u64, bar_ms: u64, h: u32, d: i64) -> i128 {
        let follows = self
            .last_made_at
            .is_some_and(|t| bar_ms > 0 && t.checked_add(bar_ms) == Some(made_at_ms));
        if !follows {
            self.recent.clear();
        }
        self.last_made_at = Some(made_at_ms);
        let h = i128::from(h.max(1));
        let weighted: i128 = self
            .recent
            .iter()
            .zip(1i128..)
            .map(|(&past, k)| (h - k) * i128::from(past))
            .fold(0i128, i128::wrapping_add);
        let lag = i128::from(d).wrapping_mul(weighted);
        self.recent.push_front(d);
        self.recent.truncate((h - 1) as usize);
        lag
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::num::F64;

    fn score(p: f64, y: f64) -> Score {
        Score {
            symbol: "A-B".into(),
            horizon_bars: 1,
            model: "m".into(),
            made_at_ms: 0,
            target_at_ms: 1,
            predicted_return: F64(p),
            realized_return: F64(y),
            covered: None,
        }
    }

    #[test]
    fn loss_difference_is_the_squared_error_gap() {
        assert_eq!(loss_difference(&score(0.0, 0.01)), 0);
        let d = loss_difference(&score(0.002, 0.001)) as f64 / LOSS_SCALE;
        assert!((d - (0.001f64.powi(2) - 0.001f64.powi(2))).abs() < 1e-13);
        let d = loss_difference(&score(0.003, -0.001)) as f64 / LOSS_SCALE;
        assert!(
            (d - (0.004f64.powi(2) - 0.001f64.powi(2))).abs() < 1e-13,
            "{d}"
        );
        // Absurd values saturate instead of overflowing.
        assert_eq!(loss_difference(&score(1e9, 0.0)), MAX_LOSS_UNITS);
    }

    #[test]
    fn lag_products_match_a_direct_sum_and_stop_at_gaps() {
        let h = 4u32;
        let ds = [3i64, -1, 4, 1, -5, 9, 2, -6];
        let mut lags = LossLags::default();
        let mut got = 0i128;
        for (t, d) in ds.iter().enumerate() {
            got += lags.push(t as u64 * 10, 10, h, *d);
        }
        let mut want = 0i128;
        for t in 0..ds.len() {
            for k in 1..h as usize {
                if t >= k {
                    want += i128::from(ds[t]) * i128::from(ds[t - k]) * (h as usize - k) as i128;
                }
            }
        }
        assert_eq!(got, want);
        // A missing bar: the next product starts from nothing.
        assert_eq!(lags.push(1_000, 10, h, 7), 0);
        assert_eq!(lags.push(1_010, 10, h, 2), 2 * 7 * 3);
    }
}
