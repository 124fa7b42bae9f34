//! Training on real pipeline output (the in-memory harness over the
//! simulator): skill where there is something to learn, no harm where there
//! is not, rejections with reasons on bad windows, determinism.

use std::sync::Arc;

use dataflows::bars::BarConfig;
use dataflows::features::FEATURE_COUNT;
use dataflows::harness::run_in_memory;
use dataflows::sim::{Regime, SimConfig, Simulator};
use dataflows::source::{partition_records, SourceConfig};
use dataflows::{Delivery, PipelineConfig};

use super::*;

const START: u64 = 1_700_006_400_000; // 2023-11-15 00:00 UTC
const HOUR: u64 = 3_600_000;

fn market(regime: Regime, seed: u64, hours: u64) -> Vec<Delivery> {
    let mut sim = SimConfig::default_market(seed, START)
        .with_symbols(&["BTC-USD", "ETH-USD"])
        .with_regime(regime);
    sim.trades_per_sec = 1.0;
    let end = START + hours * HOUR;
    let payloads = Simulator::new(sim)
        .take_while(|t| t.ts_ms < end)
        .map(|t| (t.symbol.clone(), t.to_json().into_bytes()));
    let records = Arc::new(partition_records(payloads, 2));
    let clock_end = end + 86_400_000;
    let config = PipelineConfig {
        source: SourceConfig::new()
            .with_idle_lag_ms(None)
            .with_clock(Arc::new(move || clock_end)),
        bars: BarConfig {
            interval_ms: 10_000,
            ..BarConfig::default()
        },
        ..PipelineConfig::default()
    };
    run_in_memory(records, 2, 1, config).unwrap()
}

/// Out-of-sample skill of a deployed form on `ex`, as the dataflow would
/// score it (1 − MSE / MSE of persistence).
fn oos_skill(model: &dataflows::deploy::LinearForecast, ex: &Examples) -> f64 {
    let index = model.column_index().unwrap();
    let (mut e, mut e0) = (0.0, 0.0);
    for (x, y) in ex.x.iter().zip(&ex.y) {
        let p = model.forecast(model.score(&index, x)).ret;
        e += (p - y).powi(2);
        e0 += y * y;
    }
    1.0 - e / e0
}

fn fitted(outcome: FitOutcome) -> (dataflows::deploy::LinearForecast, f64) {
    match outcome {
        FitOutcome::Fitted {
            model,
            validation_skill,
            ..
        } => (model, validation_skill),
        FitOutcome::Rejected(r) => panic!("rejected: {r}"),
    }
}

#[test]
fn momentum_gives_positive_validation_and_out_of_sample_skill_and_random_walk_does_no_harm() {
    let config = TrainConfig::default();
    let t = START + 24 * HOUR;
    for (regime, seed) in [(Regime::Momentum, 11), (Regime::RandomWalk, 12)] {
        let rows = TrainRows::from_deliveries(&market(regime, seed, 32));
        let mut best = f64::NEG_INFINITY;
        for symbol in rows.symbols() {
            for h in [1, 5] {
                let train = rows.examples(&symbol, h, START, t - config.embargo_ms);
                let later = rows.examples(&symbol, h, t, START + 32 * HOUR);
                assert!(
                    train.len() > 5_000 && later.len() > 2_000,
                    "{}",
                    train.len()
                );
                for kind in KINDS {
                    let (model, val) = fitted(fit(kind, &train, &config));
                    let oos = oos_skill(&model, &later);
                    eprintln!(
                        "{regime:?} {symbol} h{h} {}: validation {val:.4}, out of sample {oos:.4}",
                        kind.name()
                    );
                    match regime {
                        Regime::Momentum if val > 0.0 => best = best.max(oos),
                        Regime::RandomWalk => assert!(
                            oos >= -0.05,
                            "{} on a random walk: out-of-sample skill {oos}",
                            kind.name()
                        ),
                        _ => {}
                    }
                }
            }
        }
        if regime == Regime::Momentum {
            assert!(
                best > 0.1,
                "no batch model learned momentum: best out-of-sample skill {best}"
            );
        }
    }
}

fn synthetic(n: usize, f: impl Fn(usize) -> ([f64; FEATURE_COUNT], f64)) -> Examples {
    let mut ex = Examples {
        symbol: "A-B".into(),
        horizon_bars: 1,
        ..Examples::default()
    };
    for i in 0..n {
        let (x, y) = f(i);
        ex.times.push(START + i as u64 * 1_000);
        ex.targets_at.push(START + (i as u64 + 1) * 1_000);
        ex.x.push(x);
        ex.y.push(y);
    }
    ex
}

#[test]
fn bad_windows_are_rejected_with_a_reason_never_a_panic() {
    let config = TrainConfig::default();
    let mut rng = dataflows::sim::Rng::new(3);
    let noise: Vec<([f64; FEATURE_COUNT], f64)> = (0..2_000)
        .map(|_| {
            let mut x = [0.0; FEATURE_COUNT];
            for v in x.iter_mut() {
                *v = rng.normal();
            }
            (x, 1e-3 * rng.normal())
        })
        .collect();
    let cases: Vec<(&str, Examples)> = vec![
        ("too few rows", synthetic(50, |i| noise[i])),
        ("constant target", synthetic(2_000, |i| (noise[i].0, 0.0))),
        (
            "constant features",
            synthetic(2_000, |i| ([1.0; FEATURE_COUNT], noise[i].1)),
        ),
        (
            "non-finite",
            synthetic(2_000, |i| {
                let mut x = noise[i].0;
                if i == 7 {
                    x[0] = f64::INFINITY;
                }
                (x, noise[i].1)
            }),
        ),
    ];
    for (why, ex) in &cases {
        for kind in KINDS {
            match fit(kind, ex, &config) {
                FitOutcome::Rejected(r) => {
                    assert!(r.contains(why), "{why}: {} said `{r}`", kind.name())
                }
                FitOutcome::Fitted { .. } => panic!("{why}: {} fitted", kind.name()),
            }
            let record = train_record(kind, ex, START + 10 * HOUR, &config);
            assert_eq!(record.status, dataflows::deploy::ModelStatus::Rejected);
            assert!(record.model.is_none() && !record.reason.is_empty());
        }
    }
    // One direction only: the classifier cannot be fitted, the others can.
    let up = synthetic(2_000, |i| (noise[i].0, 1e-3 + noise[i].1.abs()));
    match fit(Kind::Logistic, &up, &config) {
        FitOutcome::Rejected(r) => assert!(r.contains("one direction"), "{r}"),
        FitOutcome::Fitted { .. } => panic!("a classifier of one class"),
    }
    // A floor nobody reaches: registered, with the fitted model, not a candidate.
    let strict = TrainConfig {
        validation_floor: 0.9,
        ..TrainConfig::default()
    };
    let r = train_record(
        Kind::ElasticNet,
        &synthetic(2_000, |i| noise[i]),
        START,
        &strict,
    );
    assert_eq!(r.status, dataflows::deploy::ModelStatus::Rejected);
    assert!(r.reason.contains("below the floor 0.9"), "{}", r.reason);
    assert!(r.validation_skill.is_some() && r.model.is_some());
}

#[test]
fn training_is_deterministic() {
    let config = TrainConfig::default();
    let rows = TrainRows::from_deliveries(&market(Regime::Switching, 5, 6));
    let ex = rows.examples("BTC-USD", 1, START, START + 6 * HOUR);
    for kind in KINDS {
        let a = train_record(kind, &ex, START + 6 * HOUR, &config);
        let b = train_record(kind, &ex, START + 6 * HOUR, &config);
        assert_eq!(a, b, "{}", kind.name());
        assert!(a.model.is_some(), "{}: {}", kind.name(), a.reason);
    }
}
