//! Prediction intervals: split-conformal on volatility-scaled residuals,
//! with the quantile levels steered by adaptive conformal inference.
//!
//! Each (symbol, horizon, model) keeps its last [`RESIDUAL_WINDOW`]
//! out-of-sample residuals (realised − served forecast, recorded when a
//! prediction is scored, never before), each divided by the horizon's
//! volatility at the time the forecast was made (`rvol30 · √h`). A new
//! interval is the forecast plus the residual quantiles times the current
//! volatility: when volatility doubles the interval doubles at once
//! instead of after a window's worth of wider misses.
//!
//! The quantile levels are not fixed at 10% and 90%: each tail's level
//! follows adaptive conformal inference (Gibbs and Candès, 2021). After
//! every scored prediction that had an interval, a tail's level moves by
//! [`ACI_RATE`] × (10% − miss), where miss is 1 if the outcome fell beyond
//! that end. A run of misses (a regime the window has not caught up with)
//! widens that side; a run of hits narrows it. Whatever the residuals do,
//! the long-run share of misses per tail is 10% ± (1 + rate)/(rate · T)
//! after T scores, so the realised coverage converges to 80%, including
//! after regime changes, without assuming any distribution. Everything is
//! updated only from scored predictions: no look-ahead.

use std::collections::VecDeque;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Central coverage of the prediction intervals.
pub const INTERVAL_COVERAGE: f64 = 0.8;
/// Residuals kept per (symbol, horizon, model) for the intervals.
pub const RESIDUAL_WINDOW: usize = 250;
/// Residuals needed before an interval is reported.
pub const MIN_RESIDUALS: usize = 20;
/// Step of the adaptive conformal update of each tail's level.
pub const ACI_RATE: f64 = 0.005;

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

    /// Adds a residual, evicting the oldest.
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

    /// Residuals held.
    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// Whether none are held.
    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    /// The `q` quantile (q in [0, 1], clamped), interpolating linearly
    /// between order statistics; None when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let n = self.sorted.len();
        if n == 0 {
            return None;
        }
        let pos = q.clamp(0.0, 1.0) * (n - 1) as f64;
        let (i, frac) = (pos.floor() as usize, pos.fract());
        let lo = self.sorted[i.min(n - 1)];
        let hi = self.sorted[(i + 1).min(n - 1)];
        Some(lo + frac * (hi - lo))
    }
}

/// Stored as the window in arrival order and its capacity; the sorted copy
/// is rebuilt on load (it is a function of the window), so a stored state
/// cannot hold a sorted copy that disagrees with its window.
impl Serialize for Residuals {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (&self.ring, self.cap).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Residuals {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (ring, cap): (VecDeque<f64>, usize) = Deserialize::deserialize(d)?;
        if ring.len() > cap {
            return Err(D::Error::custom(format!(
                "{} residuals in a window of {cap}",
                ring.len()
            )));
        }
        if ring.iter().any(|r| !r.is_finite()) {
            return Err(D::Error::custom("a residual is not finite"));
        }
        let mut sorted: Vec<f64> = ring.iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        Ok(Residuals { ring, sorted, cap })
    }
}

/// One (symbol, horizon, model)'s interval state: scaled residuals and
/// the two tails' adaptive levels.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AdaptiveInterval {
    residuals: Residuals,
    /// Target miss rate per tail.
    target: f64,
    /// Current quantile level of the lower and upper tail.
    tails: [f64; 2],
    /// Step of the level updates (0: fixed levels, plain split conformal).
    rate: f64,
}

impl Default for AdaptiveInterval {
    fn default() -> Self {
        Self::new()
    }
}

impl AdaptiveInterval {
    /// No residuals yet; tails start at (1 − [`INTERVAL_COVERAGE`]) / 2
    /// and adapt at [`ACI_RATE`].
    pub fn new() -> Self {
        Self::with_rate(ACI_RATE)
    }

    /// The same with another adaptation step (0 keeps the levels fixed).
    pub fn with_rate(rate: f64) -> Self {
        let target = (1.0 - INTERVAL_COVERAGE) / 2.0;
        AdaptiveInterval {
            residuals: Residuals::new(RESIDUAL_WINDOW),
            target,
            tails: [target; 2],
            rate: rate.clamp(0.0, 0.1),
        }
    }

    /// The interval's offsets from a forecast made when the horizon's
    /// volatility was `scale`, once [`MIN_RESIDUALS`] are known.
    pub fn offsets(&self, scale: f64) -> Option<(f64, f64)> {
        if self.residuals.len() < MIN_RESIDUALS {
            return None;
        }
        let lo = self.residuals.quantile(self.tails[0])?;
        let hi = self.residuals.quantile(1.0 - self.tails[1])?;
        let (lo, hi) = (lo * scale, hi * scale);
        (lo.is_finite() && hi.is_finite()).then_some((lo, hi))
    }

    /// A scored prediction: the served forecast, the interval it was given
    /// (if any), the outcome and the scale at forecast time. Returns
    /// whether the outcome was inside the interval (None: there was none).
    pub fn observe(
        &mut self,
        forecast: f64,
        interval: Option<(f64, f64)>,
        y: f64,
        scale: f64,
    ) -> Option<bool> {
        if scale > 0.0 {
            self.residuals.push((y - forecast) / scale);
        }
        let (lo, hi) = interval?;
        let (below, above) = (y < lo, y > hi);
        for (tail, miss) in self.tails.iter_mut().zip([below, above]) {
            *tail = (*tail + self.rate * (self.target - f64::from(u8::from(miss)))).clamp(0.0, 0.5);
        }
        Some(!below && !above)
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
            for q in [0.0, 0.1, 0.37, 0.9, 1.0] {
                let pos = q * (n - 1) as f64;
                let (k, f) = (pos.floor() as usize, pos - pos.floor());
                let want = last[k] + f * (last[(k + 1).min(n - 1)] - last[k]);
                assert!(
                    (r.quantile(q).unwrap() - want).abs() < 1e-12,
                    "step {i} q {q}"
                );
            }
        }
        assert!(Residuals::new(5).quantile(0.5).is_none());
    }

    /// A window read back from its stored form has the same residuals in
    /// the same order and the same sorted copy, so it evolves identically;
    /// a stored window longer than its capacity is refused.
    #[test]
    fn residuals_round_trip_and_keep_evolving_alike() {
        let mut rng = crate::sim::Rng::new(4);
        let mut a = Residuals::new(30);
        for _ in 0..45 {
            a.push(rng.normal());
        }
        let mut b = crate::snapshot::round_trip(&a);
        assert_eq!(b.sorted, a.sorted);
        for _ in 0..40 {
            let x = rng.normal();
            a.push(x);
            b.push(x);
            assert_eq!(a.ring, b.ring);
            assert_eq!(a.sorted, b.sorted);
        }
        let mut over = a.clone();
        over.cap = 10;
        let bytes = crate::snapshot::encode(&over);
        let err = crate::snapshot::decode::<Residuals>(&bytes).unwrap_err();
        assert!(err.to_string().contains("window of 10"), "{err}");
    }

    /// Residuals whose spread keeps growing in a way the volatility scale
    /// does not capture (e.g. a regime the short volatility window lags):
    /// a fixed 10%/90% rule always holds residuals older (narrower) than
    /// the next one and under-covers; the adaptive levels keep 80% ± 2%.
    #[test]
    fn coverage_holds_through_regime_changes() {
        let run = |rate: f64| {
            let mut rng = crate::sim::Rng::new(21);
            let mut aci = AdaptiveInterval::with_rate(rate);
            let (mut n, mut covered) = (0u32, 0u32);
            for i in 0..30_000 {
                let y = (f64::from(i) / 1_000.0).exp() * rng.normal();
                let interval = aci.offsets(1.0);
                if let Some(c) = aci.observe(0.0, interval, y, 1.0) {
                    n += 1;
                    covered += u32::from(c);
                }
            }
            f64::from(covered) / f64::from(n)
        };
        let (adaptive, fixed) = (run(ACI_RATE), run(0.0));
        assert!((adaptive - 0.8).abs() < 0.02, "adaptive {adaptive}");
        assert!(fixed < 0.78, "fixed {fixed} adaptive {adaptive}");
    }
}
