//! Rolling features per symbol, updated once per closed bar in O(1).
//!
//! Each symbol keeps a small ring of recent closes and a few exponentially
//! weighted moments; nothing rescans a window. A feature vector is only
//! produced after `warmup` bars (no prediction from a half-filled window).
//! Features at bar t use bars up to and including t and nothing later.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::bars::Bar;

/// Number of entries in [`Features::vector`].
pub const FEATURE_DIM: usize = 4;

/// Features of one symbol at one bar close.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Features {
    /// Log return of the last bar.
    pub r1: f64,
    /// Log return over the last 5 bars.
    pub r5: f64,
    /// EWMA volatility of 1-bar log returns (span 30 bars), never below 1e-8.
    pub vol: f64,
    /// Order-flow imbalance of the last bar: (buy − sell) / volume, in [-1, 1].
    pub ofi: f64,
}

impl Features {
    /// The regression vector: bias, volatility-scaled returns, imbalance.
    pub fn vector(&self) -> [f64; FEATURE_DIM] {
        [
            1.0,
            self.r1 / self.vol,
            self.r5 / (self.vol * 5f64.sqrt()),
            self.ofi,
        ]
    }
}

/// Rolling state of one symbol.
#[derive(Clone, Debug)]
pub struct FeatureState {
    closes: VecDeque<f64>,
    ewm_var: f64,
    bars_seen: u64,
    warmup: u64,
}

const VOL_ALPHA: f64 = 2.0 / 31.0;
const MIN_VOL: f64 = 1e-8;

impl FeatureState {
    /// Fresh state needing `warmup` bars (at least 6) before producing features.
    pub fn new(warmup: u64) -> Self {
        FeatureState {
            closes: VecDeque::with_capacity(6),
            ewm_var: 0.0,
            bars_seen: 0,
            warmup: warmup.max(6),
        }
    }

    /// Bars seen since the last reset.
    pub fn bars_seen(&self) -> u64 {
        self.bars_seen
    }

    /// Adds a closed bar; returns features once warmed up.
    pub fn update(&mut self, bar: &Bar) -> Option<Features> {
        let close = bar.close.0;
        let prev = self.closes.back().copied();
        self.closes.push_back(close);
        if self.closes.len() > 6 {
            self.closes.pop_front();
        }
        self.bars_seen += 1;
        let r1 = prev.map_or(0.0, |p| (close / p).ln());
        if prev.is_some() {
            self.ewm_var = if self.bars_seen == 2 {
                r1 * r1
            } else {
                (1.0 - VOL_ALPHA) * self.ewm_var + VOL_ALPHA * r1 * r1
            };
        }
        if self.bars_seen < self.warmup || self.closes.len() < 6 {
            return None;
        }
        let r5 = (close / self.closes[0]).ln();
        let ofi = if bar.volume.0 > 0.0 {
            (2.0 * bar.buy_volume.0 - bar.volume.0) / bar.volume.0
        } else {
            0.0
        };
        Some(Features {
            r1,
            r5,
            vol: self.ewm_var.sqrt().max(MIN_VOL),
            ofi,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::num::F64;

    fn bar(close: f64, buy: f64, vol: f64) -> Bar {
        let mut b = crate::bars::flat_bar("A-B", 0, 1000, F64(close));
        b.volume = F64(vol);
        b.buy_volume = F64(buy);
        b
    }

    #[test]
    fn matches_naive_recomputation() {
        let closes: Vec<f64> = (0..40)
            .map(|i| 100.0 * (1.0 + 0.01 * ((i * 7 % 11) as f64 - 5.0) / 5.0))
            .collect();
        let mut st = FeatureState::new(10);
        let mut last = None;
        for (i, c) in closes.iter().enumerate() {
            let f = st.update(&bar(*c, 3.0, 4.0));
            assert_eq!(f.is_some(), i + 1 >= 10, "bar {i}");
            last = f;
        }
        let f = last.unwrap();
        let n = closes.len();
        assert!((f.r1 - (closes[n - 1] / closes[n - 2]).ln()).abs() < 1e-12);
        assert!((f.r5 - (closes[n - 1] / closes[n - 6]).ln()).abs() < 1e-12);
        assert!((f.ofi - 0.5).abs() < 1e-12);
        // Naive EWMA over all returns.
        let mut v = 0.0;
        for i in 1..n {
            let r = (closes[i] / closes[i - 1]).ln();
            v = if i == 1 {
                r * r
            } else {
                (1.0 - VOL_ALPHA) * v + VOL_ALPHA * r * r
            };
        }
        assert!((f.vol - v.sqrt()).abs() < 1e-12 * v.sqrt().max(1.0));
    }
}
