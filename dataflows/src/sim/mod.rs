//! A seeded, deterministic market simulator producing ticks in event time,
//! for any number of symbols.
//!
//! Each symbol's log price moves by `σ(t)·(√ρ·dF + √(1−ρ)·dG)` plus a
//! regime term. `F` (one market factor) and `G` (one per symbol) are
//! independent jump-diffusions with unit diffusive variance per second and
//! rare jumps (about one an hour, 20 seconds' worth of volatility), so the
//! shocks of any two symbols have correlation `ρ` ([`SimConfig::correlation`]).
//! `σ(t)` is a market-wide stochastic volatility (mean-reverting log-vol,
//! ~10 minutes), scaled per symbol. Regimes, per symbol:
//! - `Momentum`: a persistent drift (an Ornstein–Uhlenbeck process with a
//!   one-minute memory), so past returns predict future returns;
//! - `MeanReversion`: the price is pulled back towards a slowly moving anchor
//!   (its 10-minute average) with a 15-second time constant, so returns over
//!   seconds to a minute are negatively autocorrelated;
//! - `RandomWalk`: nothing beats persistence;
//! - `Switching`: each symbol rotates momentum → mean reversion → random
//!   walk → momentum, spending an exponential time (mean 4 minutes) in each.
//!
//! Trade arrivals are Poisson per symbol at `trades_per_sec` times an
//! intraday multiplier `1 + a·cos(2π(t − 14:00 UTC)/24 h)`
//! ([`SimConfig::seasonality`] = `a`, busiest at 14:00 UTC, quietest at
//! 02:00), realised by thinning a Poisson stream of rate `(1 + a)·rate`. The
//! taker side leans with the drift, so order flow carries information.
//!
//! The same seed and config always give the same ticks: the simulator never
//! reads a clock (callers pace it against one if they want), and parts that
//! are switched off (ρ = 0, a = 0) draw no random numbers.

use std::collections::BTreeMap;

use crate::num::{stable_hash, DAY_MS, F64};
use crate::tick::{Position, Side, Tick};

/// Which dynamics the simulated prices follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Regime {
    /// Persistent drift: past returns predict future returns.
    Momentum,
    /// Pull towards a slowly moving anchor: returns reverse.
    MeanReversion,
    /// Pure random walk: nothing beats persistence.
    RandomWalk,
    /// Rotates among the three, per symbol, every few minutes.
    Switching,
}

/// Correlation the CLI and the demo use unless told otherwise.
pub const MARKET_CORRELATION: f64 = 0.6;
/// Intraday seasonality amplitude the CLI and the demo use unless told otherwise.
pub const MARKET_SEASONALITY: f64 = 0.5;

/// Simulator settings.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// (symbol, starting price).
    pub symbols: Vec<(String, f64)>,
    /// RNG seed.
    pub seed: u64,
    /// Event time of the first tick, epoch ms.
    pub start_ms: u64,
    /// Mean trades per second per symbol (averaged over a UTC day).
    pub trades_per_sec: f64,
    /// Volatility of log price per √second.
    pub vol_per_sqrt_sec: f64,
    /// Dynamics.
    pub regime: Regime,
    /// Exchange name on the ticks.
    pub exchange: String,
    /// Correlation of any two symbols' shocks, in [0, 1].
    pub correlation: f64,
    /// Amplitude of the intraday trade-rate cycle, in [0, 1).
    pub seasonality: f64,
}

/// The well-known symbols and plausible starting prices.
const KNOWN: [(&str, f64); 5] = [
    ("BTC-USD", 64_000.0),
    ("ETH-USD", 3_400.0),
    ("SOL-USD", 150.0),
    ("XRP-USD", 0.6),
    ("DOGE-USD", 0.15),
];

/// A starting price for `symbol`: the known ones at plausible levels, any
/// other at a level between 0.1 and 10,000 fixed by its name.
pub fn starting_price(symbol: &str) -> f64 {
    if let Some((_, p)) = KNOWN.iter().find(|(s, _)| *s == symbol) {
        return *p;
    }
    let u = (stable_hash(symbol) >> 11) as f64 / (1u64 << 53) as f64;
    let p = 10f64.powf(-1.0 + 5.0 * u);
    // Four significant digits, like a price someone would quote.
    let unit = 10f64.powf(p.log10().floor() - 3.0);
    (p / unit).round() * unit
}

/// `n` symbol names: the five well-known ones first, then `SIM6-USD`, `SIM7-USD`, ….
pub fn generated_symbols(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| match KNOWN.get(i) {
            Some((s, _)) => s.to_string(),
            None => format!("SIM{}-USD", i + 1),
        })
        .collect()
}

impl SimConfig {
    /// Five well-known symbols at plausible prices, switching regime,
    /// independent shocks and a flat trade rate.
    pub fn default_market(seed: u64, start_ms: u64) -> Self {
        SimConfig {
            symbols: KNOWN.iter().map(|(s, p)| (s.to_string(), *p)).collect(),
            seed,
            start_ms,
            trades_per_sec: 10.0,
            vol_per_sqrt_sec: 2e-4,
            regime: Regime::Switching,
            exchange: "sim".into(),
            correlation: 0.0,
            seasonality: 0.0,
        }
    }

    /// Replaces the symbols, each at its [`starting_price`].
    pub fn with_symbols<S: AsRef<str>>(mut self, symbols: &[S]) -> Self {
        self.symbols = symbols
            .iter()
            .map(|s| (s.as_ref().to_string(), starting_price(s.as_ref())))
            .collect();
        self
    }

    /// Sets the correlation of the symbols' shocks (clamped to [0, 1]).
    pub fn with_correlation(mut self, correlation: f64) -> Self {
        self.correlation = correlation.clamp(0.0, 1.0);
        self
    }

    /// Sets the intraday seasonality amplitude (clamped to [0, 0.95]).
    pub fn with_seasonality(mut self, amplitude: f64) -> Self {
        self.seasonality = amplitude.clamp(0.0, 0.95);
        self
    }

    /// Sets the regime.
    pub fn with_regime(mut self, regime: Regime) -> Self {
        self.regime = regime;
        self
    }
}

/// The trade-rate multiplier at `ts_ms`: `1 + a·cos(2π(t − 14:00 UTC)/24 h)`.
/// Its average over a UTC day is 1.
pub fn intraday_multiplier(ts_ms: u64, amplitude: f64) -> f64 {
    let peak = ts_ms as f64 - PEAK_MS as f64;
    1.0 + amplitude * (2.0 * std::f64::consts::PI * peak / DAY_MS as f64).cos()
}

/// Busiest time of the UTC day (14:00, when Europe and the US overlap).
const PEAK_MS: u64 = 14 * 3_600_000;

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
    /// The increment over `dt_s` seconds of a jump-diffusion with unit
    /// diffusive variance per second and [`JUMPS_PER_SEC`] jumps of standard
    /// deviation [`JUMP_STD`] (at most one per increment).
    fn shock(&mut self, dt_s: f64) -> f64 {
        let diffusion = dt_s.sqrt() * self.normal();
        if self.uniform() < JUMPS_PER_SEC * dt_s {
            diffusion + JUMP_STD * self.normal()
        } else {
            diffusion
        }
    }
}

/// The dynamics a symbol is in right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Momentum,
    MeanReversion,
    RandomWalk,
}

impl Phase {
    fn next(self) -> Phase {
        match self {
            Phase::Momentum => Phase::MeanReversion,
            Phase::MeanReversion => Phase::RandomWalk,
            Phase::RandomWalk => Phase::Momentum,
        }
    }

    fn regime(self) -> Regime {
        match self {
            Phase::Momentum => Regime::Momentum,
            Phase::MeanReversion => Regime::MeanReversion,
            Phase::RandomWalk => Regime::RandomWalk,
        }
    }
}

struct SymbolSim {
    symbol: String,
    log_price: f64,
    /// Drift per second: the momentum state, or the mean-reversion pull.
    drift: f64,
    /// Where a mean-reverting price is pulled to (its slow moving average).
    anchor: f64,
    phase: Phase,
    next_switch_ms: u64,
    /// Event time of the symbol's previous trade (or the start).
    last_ms: u64,
    /// The market factor's value at the previous trade.
    factor_seen: f64,
    trade_seq: u64,
    offset: i64,
}

/// Drift mean reversion time, seconds.
const DRIFT_TAU_S: f64 = 60.0;
/// Stationary drift standard deviation, in units of per-second volatility.
const DRIFT_STD: f64 = 0.6;
/// Mean-reversion time constant of the price in that regime, seconds.
const REVERSION_TAU_S: f64 = 15.0;
/// Time constant of the anchor (the price's moving average), seconds.
const ANCHOR_TAU_S: f64 = 600.0;
/// Mean regime length, ms.
const REGIME_MS: f64 = 240_000.0;
/// Jump intensity of each shock process, per second (one an hour).
const JUMPS_PER_SEC: f64 = 1.0 / 3_600.0;
/// Jump size standard deviation, in seconds' worth of volatility.
const JUMP_STD: f64 = 20.0;
/// Mean reversion time of the market log-volatility, seconds.
const VOL_TAU_S: f64 = 600.0;
/// Volatility of the market log-volatility, per √second.
const VOL_OF_VOL: f64 = 0.02;

/// The simulator: an iterator of ticks in non-decreasing event time.
pub struct Simulator {
    config: SimConfig,
    rng: Rng,
    syms: Vec<SymbolSim>,
    /// Next candidate arrival per symbol: (ts, symbol index).
    queue: BTreeMap<(u64, usize), ()>,
    /// The market factor `F` and log-volatility deviation, as of `market_ms`.
    factor: f64,
    log_vol_dev: f64,
    market_ms: u64,
}

impl Simulator {
    /// A simulator for `config`.
    pub fn new(config: SimConfig) -> Self {
        let mut rng = Rng::new(config.seed);
        let mut syms = Vec::new();
        let mut queue = BTreeMap::new();
        let rate = Self::candidate_rate(&config);
        for (i, (symbol, price)) in config.symbols.iter().enumerate() {
            let phase = match config.regime {
                Regime::Momentum => Phase::Momentum,
                Regime::MeanReversion => Phase::MeanReversion,
                Regime::RandomWalk => Phase::RandomWalk,
                Regime::Switching => [Phase::Momentum, Phase::MeanReversion, Phase::RandomWalk]
                    [((rng.uniform() * 3.0) as usize).min(2)],
            };
            let log_price = price.max(1e-12).ln();
            syms.push(SymbolSim {
                symbol: symbol.clone(),
                log_price,
                drift: 0.0,
                anchor: log_price,
                phase,
                next_switch_ms: config.start_ms + (rng.uniform() * 2.0 * REGIME_MS) as u64,
                last_ms: config.start_ms,
                factor_seen: 0.0,
                trade_seq: 0,
                offset: 0,
            });
            queue.insert(
                (config.start_ms + (rng.uniform() * 1000.0 / rate) as u64, i),
                (),
            );
        }
        let market_ms = config.start_ms;
        Simulator {
            config,
            rng,
            syms,
            queue,
            factor: 0.0,
            log_vol_dev: 0.0,
            market_ms,
        }
    }

    /// Candidate arrivals per second per symbol: the peak rate, thinned later.
    fn candidate_rate(config: &SimConfig) -> f64 {
        config.trades_per_sec.max(1e-3) * (1.0 + config.seasonality)
    }

    /// Changes the mean trade rate (per symbol per second) from the next
    /// arrival on, e.g. a sparse history followed by a busy live market.
    pub fn set_rate(&mut self, trades_per_sec: f64) {
        self.config.trades_per_sec = trades_per_sec;
    }

    /// Whether a symbol is currently in its momentum regime.
    pub fn is_momentum(&self, symbol: &str) -> bool {
        self.regime(symbol) == Some(Regime::Momentum)
    }

    /// The regime a symbol is in right now (never `Switching`).
    pub fn regime(&self, symbol: &str) -> Option<Regime> {
        self.syms
            .iter()
            .find(|s| s.symbol == symbol)
            .map(|s| s.phase.regime())
    }

    /// Brings the market factor and volatility forward to `ts`.
    fn advance_market(&mut self, ts: u64) {
        if ts <= self.market_ms {
            return;
        }
        let dt_s = (ts - self.market_ms) as f64 / 1000.0;
        self.market_ms = ts;
        let decay = (-dt_s / VOL_TAU_S).exp();
        let std = VOL_OF_VOL * (VOL_TAU_S / 2.0 * (1.0 - decay * decay)).sqrt();
        self.log_vol_dev = self.log_vol_dev * decay + std * self.rng.normal();
        if self.config.correlation > 0.0 {
            self.factor += self.rng.shock(dt_s);
        }
    }
}

impl Iterator for Simulator {
    type Item = Tick;

    fn next(&mut self) -> Option<Tick> {
        // Thinning: candidates arrive at the peak rate and are kept with
        // probability multiplier / peak multiplier.
        let (ts, i) = loop {
            let ((ts, i), ()) = self.queue.pop_first()?;
            let rate = Self::candidate_rate(&self.config);
            let gap_s = -self.rng.uniform().ln() / rate;
            let next_ts = ts + ((gap_s * 1000.0).round() as u64).max(1);
            self.queue.insert((next_ts, i), ());
            let a = self.config.seasonality;
            if a <= 0.0 || self.rng.uniform() * (1.0 + a) < intraday_multiplier(ts, a) {
                break (ts, i);
            }
        };
        self.advance_market(ts);

        let rho = self.config.correlation;
        let sigma = self.config.vol_per_sqrt_sec * self.log_vol_dev.exp();
        let (factor, rng) = (self.factor, &mut self.rng);
        let s = &mut self.syms[i];
        let dt_s = (ts - s.last_ms).max(1) as f64 / 1000.0;
        s.last_ms = ts;
        if self.config.regime == Regime::Switching && ts >= s.next_switch_ms {
            s.phase = s.phase.next();
            s.anchor = s.log_price;
            s.next_switch_ms = ts + (-rng.uniform().ln() * REGIME_MS) as u64 + 1;
        }
        let pull = match s.phase {
            Phase::Momentum => {
                let decay = (-dt_s / DRIFT_TAU_S).exp();
                let std = DRIFT_STD * sigma * (1.0 - decay * decay).sqrt();
                s.drift = s.drift * decay + std * rng.normal();
                s.drift * dt_s
            }
            Phase::MeanReversion => {
                let deviation = s.log_price - s.anchor;
                s.drift = -deviation / REVERSION_TAU_S;
                -deviation * (1.0 - (-dt_s / REVERSION_TAU_S).exp())
            }
            Phase::RandomWalk => {
                s.drift = 0.0;
                0.0
            }
        };
        let common = if rho > 0.0 {
            rho.sqrt() * (factor - s.factor_seen)
        } else {
            0.0
        };
        s.factor_seen = factor;
        let own = (1.0 - rho).sqrt() * rng.shock(dt_s);
        s.log_price += pull + sigma * (common + own);
        s.anchor += (s.log_price - s.anchor) * (1.0 - (-dt_s / ANCHOR_TAU_S).exp());
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

/// Seeded random bars of one symbol (`A-B`, 1 s): a random walk with random
/// ranges, volumes, VWAPs and flow, and one bar in ten with no trade (flat,
/// zero volume). Input for feature and model tests and benchmarks that need
/// bars without running the whole dataflow.
pub fn random_bars(seed: u64, n: usize) -> Vec<crate::bars::Bar> {
    use crate::bars::flat_bar;
    let mut rng = Rng::new(seed);
    let mut price = 100.0;
    (0..n)
        .map(|i| {
            let start = i as u64 * 1_000;
            if rng.uniform() < 0.1 {
                return flat_bar("A-B", start, 1_000, F64(price));
            }
            let open = price;
            price *= (2e-3 * rng.normal()).exp();
            let high = open.max(price) * (1.0 + 1e-3 * rng.uniform());
            let low = open.min(price) * (1.0 - 1e-3 * rng.uniform());
            let volume = 0.1 + 5.0 * rng.uniform();
            let mut b = flat_bar("A-B", start, 1_000, F64(price));
            b.open = F64(open);
            b.high = F64(high);
            b.low = F64(low);
            b.volume = F64(volume);
            b.buy_volume = F64(volume * rng.uniform());
            b.vwap = F64(low + (high - low) * rng.uniform());
            b.trades = 1 + (rng.uniform() * 20.0) as u32;
            b.filled = false;
            b
        })
        .collect()
}

#[cfg(test)]
mod tests;
