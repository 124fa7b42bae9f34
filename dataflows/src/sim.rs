//! A seeded, deterministic market simulator producing ticks in event time.
//!
//! Per symbol: log price follows a random walk whose drift is itself an
//! Ornstein–Uhlenbeck process (persistent drift = short-term momentum) in the
//! `Momentum` regime, and is zero in the `RandomWalk` regime; `Switching`
//! alternates between the two every few minutes of event time. Volatility
//! is stochastic (mean-reverting log-vol), rare jumps occur, trade arrivals
//! are Poisson, and the taker side leans with the drift so order flow carries
//! information. The same seed and config always give the same ticks; the
//! simulator never reads a clock (callers pace it against one if they want).

use std::collections::BTreeMap;

use crate::num::F64;
use crate::tick::{Position, Side, Tick};

/// Which dynamics the simulated prices follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Regime {
    /// Persistent drift: past returns predict future returns.
    Momentum,
    /// Pure random walk: nothing beats persistence.
    RandomWalk,
    /// Alternates between the two, per symbol, every few minutes.
    Switching,
}

/// Simulator settings.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// (symbol, starting price).
    pub symbols: Vec<(String, f64)>,
    /// RNG seed.
    pub seed: u64,
    /// Event time of the first tick, epoch ms.
    pub start_ms: u64,
    /// Mean trades per second per symbol.
    pub trades_per_sec: f64,
    /// Volatility of log price per √second.
    pub vol_per_sqrt_sec: f64,
    /// Dynamics.
    pub regime: Regime,
    /// Exchange name on the ticks.
    pub exchange: String,
}

impl SimConfig {
    /// Five well-known symbols at plausible prices, momentum-switching regime.
    pub fn default_market(seed: u64, start_ms: u64) -> Self {
        SimConfig {
            symbols: vec![
                ("BTC-USD".into(), 64_000.0),
                ("ETH-USD".into(), 3_400.0),
                ("SOL-USD".into(), 150.0),
                ("XRP-USD".into(), 0.6),
                ("DOGE-USD".into(), 0.15),
            ],
            seed,
            start_ms,
            trades_per_sec: 10.0,
            vol_per_sqrt_sec: 2e-4,
            regime: Regime::Switching,
            exchange: "sim".into(),
        }
    }
}

/// SplitMix64: tiny, fast, good enough for simulation, fully reproducible.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// Seeds the generator.
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in (0, 1).
    pub fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let (u1, u2) = (self.uniform(), self.uniform());
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

struct SymbolSim {
    symbol: String,
    log_price: f64,
    drift: f64,
    log_vol_dev: f64,
    momentum: bool,
    next_switch_ms: u64,
    trade_seq: u64,
    offset: i64,
}

/// Drift mean reversion time, seconds.
const DRIFT_TAU_S: f64 = 60.0;
/// Stationary drift standard deviation, in units of per-second volatility.
const DRIFT_STD: f64 = 0.6;
/// Mean regime length, ms.
const REGIME_MS: f64 = 240_000.0;

/// The simulator: an iterator of ticks in non-decreasing event time.
pub struct Simulator {
    config: SimConfig,
    rng: Rng,
    syms: Vec<SymbolSim>,
    /// Next arrival per symbol: (ts, symbol index).
    queue: BTreeMap<(u64, usize), ()>,
}

impl Simulator {
    /// A simulator for `config`.
    pub fn new(config: SimConfig) -> Self {
        let mut rng = Rng::new(config.seed);
        let mut syms = Vec::new();
        let mut queue = BTreeMap::new();
        for (i, (symbol, price)) in config.symbols.iter().enumerate() {
            let momentum = match config.regime {
                Regime::Momentum => true,
                Regime::RandomWalk => false,
                Regime::Switching => rng.uniform() < 0.5,
            };
            syms.push(SymbolSim {
                symbol: symbol.clone(),
                log_price: price.max(1e-12).ln(),
                drift: 0.0,
                log_vol_dev: 0.0,
                momentum,
                next_switch_ms: config.start_ms + (rng.uniform() * 2.0 * REGIME_MS) as u64,
                trade_seq: 0,
                offset: 0,
            });
            queue.insert(
                (
                    config.start_ms + (rng.uniform() * 1000.0 / config.trades_per_sec) as u64,
                    i,
                ),
                (),
            );
        }
        Simulator {
            config,
            rng,
            syms,
            queue,
        }
    }

    /// Changes the mean trade rate (per symbol per second) from the next
    /// arrival on, e.g. a sparse history followed by a busy live market.
    pub fn set_rate(&mut self, trades_per_sec: f64) {
        self.config.trades_per_sec = trades_per_sec;
    }

    /// Whether a symbol is currently in its momentum regime.
    pub fn is_momentum(&self, symbol: &str) -> bool {
        self.syms.iter().any(|s| s.symbol == symbol && s.momentum)
    }
}

impl Iterator for Simulator {
    type Item = Tick;

    fn next(&mut self) -> Option<Tick> {
        let ((ts, i), ()) = self.queue.pop_first()?;
        let rate = self.config.trades_per_sec.max(1e-3);
        let rng = &mut self.rng;
        let dt_s = -rng.uniform().ln() / rate;
        let next_ts = ts + ((dt_s * 1000.0).round() as u64).max(1);
        self.queue.insert((next_ts, i), ());

        let sigma0 = self.config.vol_per_sqrt_sec;
        let s = &mut self.syms[i];
        if self.config.regime == Regime::Switching && ts >= s.next_switch_ms {
            s.momentum = !s.momentum;
            s.next_switch_ms = ts + (-rng.uniform().ln() * REGIME_MS) as u64 + 1;
        }
        // Stochastic volatility: log-vol deviation mean-reverts over ~10 minutes.
        s.log_vol_dev += -s.log_vol_dev * dt_s / 600.0 + 0.02 * dt_s.sqrt() * rng.normal();
        let sigma = sigma0 * s.log_vol_dev.exp();
        if s.momentum {
            let decay = (-dt_s / DRIFT_TAU_S).exp();
            let std = DRIFT_STD * sigma * (1.0 - decay * decay).sqrt();
            s.drift = s.drift * decay + std * rng.normal();
        } else {
            s.drift = 0.0;
        }
        let jump = if rng.uniform() < 1e-4 {
            20.0 * sigma * rng.normal()
        } else {
            0.0
        };
        s.log_price += s.drift * dt_s + sigma * dt_s.sqrt() * rng.normal() + jump;
        let lean = if sigma > 0.0 {
            (s.drift / sigma).tanh() * 0.3
        } else {
            0.0
        };
        let side = if rng.uniform() < 0.5 + lean {
            Side::Buy
        } else {
            Side::Sell
        };
        let size = (0.1 * (0.8 * rng.normal()).exp() * 1e6).round() / 1e6 + 1e-6;
        s.trade_seq += 1;
        s.offset += 1;
        Some(Tick {
            symbol: s.symbol.clone(),
            exchange: self.config.exchange.clone(),
            ts_ms: ts,
            price: F64(s.log_price.exp()),
            size: F64(size),
            side,
            trade_id: Some(s.trade_seq.to_string()),
            pos: Position {
                partition: i as i32,
                offset: s.offset - 1,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_ordered() {
        let a: Vec<Tick> = Simulator::new(SimConfig::default_market(7, 1_700_000_000_000))
            .take(5_000)
            .collect();
        let b: Vec<Tick> = Simulator::new(SimConfig::default_market(7, 1_700_000_000_000))
            .take(5_000)
            .collect();
        assert_eq!(a, b);
        assert!(a.windows(2).all(|w| w[0].ts_ms <= w[1].ts_ms));
        assert!(a
            .iter()
            .all(|t| t.price.0.is_finite() && t.price.0 > 0.0 && t.size.0 > 0.0));
        let c: Vec<Tick> = Simulator::new(SimConfig::default_market(8, 1_700_000_000_000))
            .take(10)
            .collect();
        assert_ne!(a[..10], c[..]);
    }

    #[test]
    fn momentum_regime_has_positive_autocorrelation() {
        let mut cfg = SimConfig::default_market(3, 1_700_000_000_000);
        cfg.symbols.truncate(1);
        let mut autocorr = |regime| {
            cfg.regime = regime;
            let mut closes = BTreeMap::new();
            for t in Simulator::new(cfg.clone()).take(200_000) {
                closes.insert(t.ts_ms / 5_000, t.price.0.ln());
            }
            let lp: Vec<f64> = closes.values().copied().collect();
            let r: Vec<f64> = lp.windows(2).map(|w| w[1] - w[0]).collect();
            let m = r.iter().sum::<f64>() / r.len() as f64;
            let v: f64 = r.iter().map(|x| (x - m) * (x - m)).sum();
            let c: f64 = r.windows(2).map(|w| (w[0] - m) * (w[1] - m)).sum();
            c / v
        };
        let mom = autocorr(Regime::Momentum);
        let rw = autocorr(Regime::RandomWalk);
        assert!(mom > 0.1, "momentum autocorrelation {mom}");
        assert!(rw.abs() < 0.1, "random walk autocorrelation {rw}");
    }
}
