//! Statistical checks of the simulator: determinism, regimes, correlation
//! and intraday seasonality, each against its configured value.

use super::*;

const START: u64 = 1_700_000_000_000;

/// Log returns of the last price in consecutive `bar_ms` buckets, per symbol.
fn bar_returns(ticks: &[Tick], bar_ms: u64) -> BTreeMap<String, BTreeMap<u64, f64>> {
    let mut closes: BTreeMap<String, BTreeMap<u64, f64>> = BTreeMap::new();
    for t in ticks {
        closes
            .entry(t.symbol.clone())
            .or_default()
            .insert(t.ts_ms / bar_ms, t.price.0.ln());
    }
    closes
        .into_iter()
        .map(|(s, c)| {
            let r = c
                .iter()
                .zip(c.iter().skip(1))
                .filter(|((b0, _), (b1, _))| *b1 - *b0 == 1)
                .map(|((_, p0), (b1, p1))| (*b1, p1 - p0))
                .collect();
            (s, r)
        })
        .collect()
}

fn correlation(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let cov: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let vx: f64 = x.iter().map(|a| (a - mx) * (a - mx)).sum();
    let vy: f64 = y.iter().map(|b| (b - my) * (b - my)).sum();
    cov / (vx * vy).sqrt()
}

fn lag1_autocorrelation(regime: Regime) -> f64 {
    let mut cfg = SimConfig::default_market(3, START).with_regime(regime);
    cfg.symbols.truncate(1);
    let ticks: Vec<Tick> = Simulator::new(cfg).take(200_000).collect();
    let r: Vec<f64> = bar_returns(&ticks, 5_000)["BTC-USD"]
        .values()
        .copied()
        .collect();
    correlation(&r[..r.len() - 1], &r[1..])
}

#[test]
fn deterministic_and_ordered() {
    let rich = |seed| {
        SimConfig::default_market(seed, START)
            .with_symbols(&generated_symbols(12))
            .with_correlation(0.5)
            .with_seasonality(0.5)
    };
    let a: Vec<Tick> = Simulator::new(rich(7)).take(20_000).collect();
    let b: Vec<Tick> = Simulator::new(rich(7)).take(20_000).collect();
    assert_eq!(a, b);
    assert!(a.windows(2).all(|w| w[0].ts_ms <= w[1].ts_ms));
    assert!(a
        .iter()
        .all(|t| t.price.0.is_finite() && t.price.0 > 0.0 && t.size.0 > 0.0));
    let symbols: std::collections::BTreeSet<&str> = a.iter().map(|t| t.symbol.as_str()).collect();
    assert_eq!(symbols.len(), 12);
    assert!(symbols.iter().all(|s| crate::tick::is_canonical_symbol(s)));
    let c: Vec<Tick> = Simulator::new(rich(8)).take(10).collect();
    assert_ne!(a[..10], c[..]);
}

#[test]
fn symbol_names_and_prices() {
    assert_eq!(
        generated_symbols(7),
        ["BTC-USD", "ETH-USD", "SOL-USD", "XRP-USD", "DOGE-USD", "SIM6-USD", "SIM7-USD"]
    );
    assert_eq!(starting_price("ETH-USD"), 3_400.0);
    let p = starting_price("SIM42-USD");
    assert!((0.1..=10_000.0).contains(&p), "{p}");
    assert_eq!(p, starting_price("SIM42-USD"));
    assert_ne!(p, starting_price("SIM43-USD"));
}

#[test]
fn momentum_and_mean_reversion_show_in_the_autocorrelation() {
    let mom = lag1_autocorrelation(Regime::Momentum);
    let rev = lag1_autocorrelation(Regime::MeanReversion);
    let rw = lag1_autocorrelation(Regime::RandomWalk);
    assert!(mom > 0.1, "momentum autocorrelation {mom}");
    // 15 s reversion seen on 5 s bars: −(1 − e^(−1/3))/2 ≈ −0.14 for a pure OU.
    assert!(rev < -0.08, "mean-reversion autocorrelation {rev}");
    assert!(rw.abs() < 0.1, "random walk autocorrelation {rw}");
}

#[test]
fn switching_rotates_through_every_regime() {
    let mut cfg = SimConfig::default_market(11, START);
    cfg.symbols.truncate(1);
    let mut sim = Simulator::new(cfg);
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..100_000 {
        sim.next();
        seen.insert(format!("{:?}", sim.regime("BTC-USD").unwrap()));
    }
    assert_eq!(seen.len(), 3, "{seen:?}");
}

/// Kendall's tau turned into a correlation (`sin(πτ/2)`, exact for any
/// elliptical distribution), so the rare jumps do not swamp the estimate.
fn rank_correlation(x: &[f64], y: &[f64]) -> f64 {
    let mut concordant = 0i64;
    let mut pairs = 0i64;
    for i in 0..x.len() {
        for j in i + 1..x.len() {
            let s = ((x[i] - x[j]) * (y[i] - y[j])).signum();
            concordant += s as i64;
            pairs += 1;
        }
    }
    let tau = concordant as f64 / pairs as f64;
    (std::f64::consts::FRAC_PI_2 * tau).sin()
}

#[test]
fn returns_are_correlated_as_configured() {
    for rho in [0.0, 0.3, 0.8] {
        let cfg = SimConfig::default_market(5, START)
            .with_symbols(&["BTC-USD", "ETH-USD", "SOL-USD"])
            .with_regime(Regime::RandomWalk)
            .with_correlation(rho);
        // About 2,000 half-minute bars per symbol.
        let ticks: Vec<Tick> = Simulator::new(cfg).take(1_800_000).collect();
        let r = bar_returns(&ticks, 30_000);
        for (a, b) in [("BTC-USD", "ETH-USD"), ("ETH-USD", "SOL-USD")] {
            let (x, y): (Vec<f64>, Vec<f64>) = r[a]
                .iter()
                .filter_map(|(bar, ra)| Some((*ra, *r[b].get(bar)?)))
                .unzip();
            assert!(x.len() > 1_900, "{}", x.len());
            let c = rank_correlation(&x, &y);
            assert!(
                (c - rho).abs() < 0.07,
                "{a}/{b}: correlation {c}, configured {rho}"
            );
        }
    }
}

#[test]
fn trade_rate_follows_the_time_of_day() {
    let day0 = START / DAY_MS * DAY_MS + DAY_MS;
    let mut cfg = SimConfig::default_market(9, day0).with_seasonality(0.5);
    cfg.symbols.truncate(2);
    cfg.trades_per_sec = 2.0;
    let mut per_hour = [0u64; 24];
    for t in Simulator::new(cfg).take_while(|t| t.ts_ms < day0 + 3 * DAY_MS) {
        per_hour[((t.ts_ms % DAY_MS) / 3_600_000) as usize] += 1;
    }
    for (h, n) in per_hour.iter().enumerate() {
        // Expected: 2 symbols × 2/s × 3 days × ∫ over the hour of the multiplier.
        let steps = 60;
        let mean: f64 = (0..steps)
            .map(|k| {
                let ts = h as u64 * 3_600_000 + (k * 60_000 + 30_000);
                intraday_multiplier(ts, 0.5)
            })
            .sum::<f64>()
            / steps as f64;
        let expected = 2.0 * 2.0 * 3.0 * 3_600.0 * mean;
        let rel = (*n as f64 - expected) / expected;
        assert!(
            rel.abs() < 0.05,
            "hour {h}: {n} trades, expected {expected:.0}"
        );
    }
    let ratio = per_hour[14] as f64 / per_hour[2] as f64;
    assert!((2.6..3.4).contains(&ratio), "peak/trough {ratio}");
}
