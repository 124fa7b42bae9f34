//! Rolling features per symbol, updated once per closed bar in O(1).
//!
//! Each symbol keeps fixed-size rings (closes, squared returns, high-low
//! ranges, notional, volume) with running sums, plus a few exponential
//! averages; nothing rescans a window. Features are produced only once every
//! window is full ([`WARMUP_BARS`] bars: no prediction from a half-filled
//! window). Features at bar t use bars up to and including t and nothing
//! later. Every feature is checked against a naive recomputation over the
//! full history in the tests below.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::bars::Bar;

/// Number of entries in [`Features::vector`].
pub const FEATURE_DIM: usize = 8;
/// Return horizons (bars) of [`Features::ret`].
pub const RETURN_BARS: [usize; 4] = [1, 5, 15, 60];
/// Short and long realised-volatility windows (bars).
pub const RVOL_BARS: [usize; 2] = [30, 120];
/// Window of the Parkinson volatility, VWAP and volume statistics (bars).
pub const RANGE_BARS: usize = 30;
/// EMA spans (bars): fast, slow.
pub const EMA_SPANS: [f64; 2] = [12.0, 26.0];
/// RSI period (Wilder).
pub const RSI_BARS: usize = 14;
/// Lags of 1-bar returns kept for autoregressive models.
pub const AR_LAGS: usize = 3;
/// Bars needed before the first feature vector: the longest window plus one.
pub const WARMUP_BARS: u64 = 121;

/// Features of one symbol at one bar close.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Features {
    /// Log returns over 1, 5, 15 and 60 bars.
    pub ret: [f64; 4],
    /// Realised volatility: √(mean of squared 1-bar log returns) over 30 bars.
    pub rvol30: f64,
    /// The same over 120 bars.
    pub rvol120: f64,
    /// Parkinson high-low volatility over 30 bars: √(Σ ln(H/L)² / (4 ln 2 · n)).
    pub parkinson: f64,
    /// EMA of close, span 12.
    pub ema_fast: f64,
    /// EMA of close, span 26.
    pub ema_slow: f64,
    /// MACD as a fraction of price: (ema_fast − ema_slow) / close.
    pub macd: f64,
    /// RSI(14) with Wilder's smoothing, in [0, 100].
    pub rsi: f64,
    /// ln(close / VWAP over 30 bars).
    pub vwap_dev: f64,
    /// Z-score of this bar's volume against the last 30 bars.
    pub volume_z: f64,
    /// Order-flow imbalance of this bar: (buy − sell) / volume, in [-1, 1].
    pub ofi: f64,
    /// Bars since the last bar with a trade (0 when this bar traded).
    pub bars_since_trade: u32,
    /// 1-bar log returns at t, t−1, t−2.
    pub lags: [f64; AR_LAGS],
}

/// One feature as the warehouse and the API name it: the single list of
/// feature columns (the `features` table, [`crate::predict::FeatureRow`],
/// batch training inputs and the tests all read it).
#[derive(Clone, Copy)]
pub struct FeatureDef {
    /// Column name.
    pub name: &'static str,
    /// What it means (the README's table and the table's column comment).
    pub doc: &'static str,
    /// How it is read from [`Features`].
    pub get: fn(&Features) -> f64,
}

impl std::fmt::Debug for FeatureDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// Number of feature columns.
pub const FEATURE_COUNT: usize = 14;

/// Every feature column, in table order.
pub const FEATURES: [FeatureDef; FEATURE_COUNT] = [
    FeatureDef {
        name: "ret1",
        doc: "log return over 1 bar",
        get: |f| f.ret[0],
    },
    FeatureDef {
        name: "ret5",
        doc: "log return over 5 bars",
        get: |f| f.ret[1],
    },
    FeatureDef {
        name: "ret15",
        doc: "log return over 15 bars",
        get: |f| f.ret[2],
    },
    FeatureDef {
        name: "ret60",
        doc: "log return over 60 bars",
        get: |f| f.ret[3],
    },
    FeatureDef {
        name: "rvol30",
        doc: "realised volatility: root mean squared 1-bar log return over 30 bars",
        get: |f| f.rvol30,
    },
    FeatureDef {
        name: "rvol120",
        doc: "realised volatility over 120 bars",
        get: |f| f.rvol120,
    },
    FeatureDef {
        name: "parkinson",
        doc: "Parkinson high-low volatility over 30 bars",
        get: |f| f.parkinson,
    },
    FeatureDef {
        name: "ema_fast",
        doc: "EMA of the close, span 12 bars",
        get: |f| f.ema_fast,
    },
    FeatureDef {
        name: "ema_slow",
        doc: "EMA of the close, span 26 bars",
        get: |f| f.ema_slow,
    },
    FeatureDef {
        name: "macd",
        doc: "(ema_fast − ema_slow) / close",
        get: |f| f.macd,
    },
    FeatureDef {
        name: "rsi",
        doc: "RSI(14), Wilder's smoothing, 0..100",
        get: |f| f.rsi,
    },
    FeatureDef {
        name: "vwap_dev",
        doc: "ln(close / VWAP over 30 bars)",
        get: |f| f.vwap_dev,
    },
    FeatureDef {
        name: "volume_z",
        doc: "z-score of the bar's volume against the last 30 bars",
        get: |f| f.volume_z,
    },
    FeatureDef {
        name: "ofi",
        doc: "order-flow imbalance (buy − sell) / volume, −1..1",
        get: |f| f.ofi,
    },
];

impl Features {
    /// The feature columns' values, in [`FEATURES`] order.
    pub fn values(&self) -> [f64; FEATURE_COUNT] {
        FEATURES.map(|d| (d.get)(self))
    }
}

/// Volatility floor, so scaled features stay finite on a flat market.
pub const MIN_VOL: f64 = 1e-8;
/// Scaled inputs are clipped to ±this many volatilities: after a quiet
/// stretch the volatility is tiny and one trade would otherwise hand the
/// linear models an input of thousands.
pub const MAX_SCALED: f64 = 10.0;

/// Clips a volatility-scaled input to ±[`MAX_SCALED`].
pub fn winsor(x: f64) -> f64 {
    if x.is_finite() {
        x.clamp(-MAX_SCALED, MAX_SCALED)
    } else {
        0.0
    }
}

impl Features {
    /// Volatility used to scale returns: the short realised volatility, floored.
    pub fn scale(&self) -> f64 {
        self.rvol30.max(MIN_VOL)
    }

    /// The regression vector shared by the linear models: a bias, returns
    /// scaled by volatility (so weights are comparable across symbols) and
    /// clipped, MACD and VWAP deviation scaled the same way, RSI centred,
    /// imbalance.
    pub fn vector(&self) -> [f64; FEATURE_DIM] {
        let v = self.scale();
        [
            1.0,
            winsor(self.ret[0] / v),
            winsor(self.ret[1] / (v * 5f64.sqrt())),
            winsor(self.ret[2] / (v * 15f64.sqrt())),
            winsor(self.macd / v),
            winsor(self.vwap_dev / v),
            (self.rsi - 50.0) / 50.0,
            self.ofi,
        ]
    }
}

/// A running sum with Neumaier compensation, so adding and removing values
/// for hours does not drift away from the exact window sum.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
struct Sum {
    sum: f64,
    comp: f64,
}

impl Sum {
    fn add(&mut self, x: f64) {
        let t = self.sum + x;
        if self.sum.abs() >= x.abs() {
            self.comp += (self.sum - t) + x;
        } else {
            self.comp += (x - t) + self.sum;
        }
        self.sum = t;
    }
    fn value(&self) -> f64 {
        self.sum + self.comp
    }
}

/// A ring with running sums of values and squares.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct RollingSum {
    cap: usize,
    values: VecDeque<f64>,
    acc: Sum,
    acc_sq: Sum,
}

impl RollingSum {
    fn new(cap: usize) -> Self {
        RollingSum {
            cap,
            values: VecDeque::with_capacity(cap + 1),
            acc: Sum::default(),
            acc_sq: Sum::default(),
        }
    }
    fn push(&mut self, x: f64) {
        self.values.push_back(x);
        self.acc.add(x);
        self.acc_sq.add(x * x);
        if self.values.len() > self.cap {
            let old = self.values.pop_front().expect("non-empty");
            self.acc.add(-old);
            self.acc_sq.add(-old * old);
        }
    }
    fn sum(&self) -> f64 {
        self.acc.value()
    }
    fn sumsq(&self) -> f64 {
        self.acc_sq.value()
    }
    fn full(&self) -> bool {
        self.values.len() == self.cap
    }
    fn mean(&self) -> f64 {
        self.sum() / self.values.len().max(1) as f64
    }
}

/// Rolling state of one symbol: a few kilobytes, constant in time.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FeatureState {
    closes: VecDeque<f64>,
    sq_ret: [RollingSum; 2],
    hl_sq: RollingSum,
    notional: RollingSum,
    volume: RollingSum,
    ema: [Option<f64>; 2],
    gain: f64,
    loss: f64,
    rsi_seen: usize,
    lags: [f64; AR_LAGS],
    since_trade: u32,
}

impl Default for FeatureState {
    fn default() -> Self {
        Self::new()
    }
}

impl FeatureState {
    /// Fresh state; produces features after [`WARMUP_BARS`] bars (when the
    /// longest window is full).
    pub fn new() -> Self {
        FeatureState {
            closes: VecDeque::with_capacity(62),
            sq_ret: [RollingSum::new(RVOL_BARS[0]), RollingSum::new(RVOL_BARS[1])],
            hl_sq: RollingSum::new(RANGE_BARS),
            notional: RollingSum::new(RANGE_BARS),
            volume: RollingSum::new(RANGE_BARS),
            ema: [None, None],
            gain: 0.0,
            loss: 0.0,
            rsi_seen: 0,
            lags: [0.0; AR_LAGS],
            since_trade: 0,
        }
    }

    /// Adds a closed bar; returns features once warmed up.
    pub fn update(&mut self, bar: &Bar) -> Option<Features> {
        let close = bar.close.0;
        let prev = self.closes.back().copied();
        self.closes.push_back(close);
        if self.closes.len() > RETURN_BARS[3] + 1 {
            self.closes.pop_front();
        }
        self.since_trade = if bar.trades > 0 {
            0
        } else {
            self.since_trade.saturating_add(1)
        };

        let hl = (bar.high.0 / bar.low.0).ln();
        self.hl_sq.push(hl * hl);
        self.notional.push(bar.vwap.0 * bar.volume.0);
        self.volume.push(bar.volume.0);
        for (k, span) in EMA_SPANS.iter().enumerate() {
            let a = 2.0 / (span + 1.0);
            self.ema[k] = Some(self.ema[k].map_or(close, |e| e + a * (close - e)));
        }
        if let Some(p) = prev {
            let r = (close / p).ln();
            for w in self.sq_ret.iter_mut() {
                w.push(r * r);
            }
            self.lags.rotate_right(1);
            self.lags[0] = r;
            // Wilder's RSI: simple mean of the first 14 moves, then smoothing.
            let (g, l) = (r.max(0.0), (-r).max(0.0));
            self.rsi_seen += 1;
            if self.rsi_seen <= RSI_BARS {
                self.gain += g / RSI_BARS as f64;
                self.loss += l / RSI_BARS as f64;
            } else {
                let n = RSI_BARS as f64;
                self.gain = (self.gain * (n - 1.0) + g) / n;
                self.loss = (self.loss * (n - 1.0) + l) / n;
            }
        }
        let ready = self.closes.len() > RETURN_BARS[3]
            && self.sq_ret.iter().all(RollingSum::full)
            && self.hl_sq.full();
        if !ready {
            return None;
        }
        let n = self.closes.len();
        let ret = RETURN_BARS.map(|k| (close / self.closes[n - 1 - k]).ln());
        let vwap = if self.volume.sum() > 0.0 {
            self.notional.sum() / self.volume.sum()
        } else {
            close
        };
        let vol_std = (self.volume.sumsq() / RANGE_BARS as f64 - self.volume.mean().powi(2))
            .max(0.0)
            .sqrt();
        let volume_z = if vol_std > 1e-12 {
            (bar.volume.0 - self.volume.mean()) / vol_std
        } else {
            0.0
        };
        let (ema_fast, ema_slow) = (self.ema[0].unwrap_or(close), self.ema[1].unwrap_or(close));
        let rsi = if self.loss + self.gain <= 0.0 {
            50.0
        } else {
            100.0 * self.gain / (self.gain + self.loss)
        };
        Some(Features {
            ret,
            rvol30: self.sq_ret[0].mean().max(0.0).sqrt(),
            rvol120: self.sq_ret[1].mean().max(0.0).sqrt(),
            parkinson: (self.hl_sq.sum().max(0.0)
                / (4.0 * std::f64::consts::LN_2 * RANGE_BARS as f64))
                .sqrt(),
            ema_fast,
            ema_slow,
            macd: (ema_fast - ema_slow) / close,
            rsi,
            vwap_dev: if vwap > 0.0 { (close / vwap).ln() } else { 0.0 },
            volume_z,
            ofi: if bar.volume.0 > 0.0 {
                (2.0 * bar.buy_volume.0 - bar.volume.0) / bar.volume.0
            } else {
                0.0
            },
            bars_since_trade: self.since_trade,
            lags: self.lags,
        })
    }
}

/// Recomputes the features at the last bar of `bars` from scratch, by
/// direct formulas over the whole history (the test oracle). Needs at least
/// [`WARMUP_BARS`] bars.
pub fn naive(bars: &[Bar]) -> Features {
    let n = bars.len();
    let close: Vec<f64> = bars.iter().map(|b| b.close.0).collect();
    let r: Vec<f64> = (1..n).map(|i| (close[i] / close[i - 1]).ln()).collect();
    let last = &bars[n - 1];
    let rv = |w: usize| (r[r.len() - w..].iter().map(|x| x * x).sum::<f64>() / w as f64).sqrt();
    let tail = &bars[n - RANGE_BARS..];
    let hl: f64 = tail.iter().map(|b| (b.high.0 / b.low.0).ln().powi(2)).sum();
    let vol: f64 = tail.iter().map(|b| b.volume.0).sum();
    let notional: f64 = tail.iter().map(|b| b.vwap.0 * b.volume.0).sum();
    let vmean = vol / RANGE_BARS as f64;
    let vstd = (tail
        .iter()
        .map(|b| (b.volume.0 - vmean).powi(2))
        .sum::<f64>()
        / RANGE_BARS as f64)
        .sqrt();
    let ema = |span: f64| {
        let a = 2.0 / (span + 1.0);
        close[1..].iter().fold(close[0], |e, c| e + a * (c - e))
    };
    let (mut gain, mut loss) = (0.0, 0.0);
    for (i, x) in r.iter().enumerate() {
        let (g, l) = (x.max(0.0), (-x).max(0.0));
        let k = RSI_BARS as f64;
        if i < RSI_BARS {
            gain += g / k;
            loss += l / k;
        } else {
            gain = (gain * (k - 1.0) + g) / k;
            loss = (loss * (k - 1.0) + l) / k;
        }
    }
    let since = bars.iter().rev().take_while(|b| b.trades == 0).count() as u32;
    let c = close[n - 1];
    Features {
        ret: RETURN_BARS.map(|k| (c / close[n - 1 - k]).ln()),
        rvol30: rv(30),
        rvol120: rv(120),
        parkinson: (hl / (4.0 * std::f64::consts::LN_2 * RANGE_BARS as f64)).sqrt(),
        ema_fast: ema(EMA_SPANS[0]),
        ema_slow: ema(EMA_SPANS[1]),
        macd: (ema(EMA_SPANS[0]) - ema(EMA_SPANS[1])) / c,
        rsi: if gain + loss <= 0.0 {
            50.0
        } else {
            100.0 * gain / (gain + loss)
        },
        vwap_dev: if vol > 0.0 {
            (c / (notional / vol)).ln()
        } else {
            0.0
        },
        volume_z: if vstd > 1e-12 {
            (last.volume.0 - vmean) / vstd
        } else {
            0.0
        },
        ofi: if last.volume.0 > 0.0 {
            (2.0 * last.buy_volume.0 - last.volume.0) / last.volume.0
        } else {
            0.0
        },
        bars_since_trade: since,
        lags: [r[r.len() - 1], r[r.len() - 2], r[r.len() - 3]],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::num::F64;

    fn rel_close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1e-12)
    }

    #[test]
    fn every_feature_matches_a_naive_recomputation() {
        for seed in [1, 2, 3] {
            let bars = crate::sim::random_bars(seed, 600);
            let mut st = FeatureState::new();
            for (i, bar) in bars.iter().enumerate() {
                let f = st.update(bar);
                assert_eq!(
                    f.is_some(),
                    i + 1 >= WARMUP_BARS as usize,
                    "warm-up at bar {i}"
                );
                let Some(f) = f else { continue };
                let g = naive(&bars[..=i]);
                let mut pairs: Vec<(&str, f64, f64)> = FEATURES
                    .iter()
                    .map(|d| (d.name, (d.get)(&f), (d.get)(&g)))
                    .collect();
                pairs.extend((0..AR_LAGS).map(|k| ("lag", f.lags[k], g.lags[k])));
                for (name, a, b) in pairs {
                    assert!(rel_close(a, b), "seed {seed} bar {i} {name}: {a} vs {b}");
                }
                assert_eq!(f.bars_since_trade, g.bars_since_trade, "bar {i}");
                assert!(f.vector().iter().all(|x| x.is_finite()));
                assert!((0.0..=100.0).contains(&f.rsi));
            }
        }
    }

    #[test]
    fn a_flat_market_gives_finite_features() {
        let mut st = FeatureState::new();
        let mut last = None;
        for i in 0..200 {
            last = st.update(&crate::bars::flat_bar("A-B", i * 1_000, 1_000, F64(5.0)));
        }
        let f = last.unwrap();
        assert!(f.vector().iter().all(|x| x.is_finite()));
        assert_eq!(f.rsi, 50.0);
        assert_eq!(f.bars_since_trade, 200);
    }
}
