//! Batch-model deployment inside the dataflow: the Deploy operator holds
//! event time at each scheduled retrain until a decision arrives, the
//! predictor uses the deployed version from that time on, and the outcome
//! does not depend on how long decisions took or on the number of workers.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dataflows::bars::BarConfig;
use dataflows::deploy::{
    model_id, Decision, DeployLink, DeploySetup, LinearForecast, Link, ModelRecord, ModelStatus,
};
use dataflows::harness::run_in_memory;
use dataflows::num::F64;
use dataflows::predict::PredictConfig;
use dataflows::sim::{Rng, SimConfig, Simulator};
use dataflows::source::{partition_records, SourceConfig};
use dataflows::{Delivery, Output, PipelineConfig};

const START: u64 = 1_700_006_400_000;
const EVERY: u64 = 1_800_000; // 30 minutes
const HOURS: u64 = 2;

fn record(symbol: &str, h: u32, t: u64, weight: f64, status: ModelStatus) -> ModelRecord {
    ModelRecord {
        id: model_id("batch_test", symbol, h, t),
        kind: "batch_test".into(),
        symbol: symbol.into(),
        horizon_bars: h,
        version: t,
        status,
        status_at_ms: t,
        deployed_at_ms: None,
        train_start_ms: START,
        train_end_ms: t,
        validation_start_ms: t,
        fit_samples: 1,
        validation_samples: 1,
        fit_skill: None,
        validation_skill: None,
        validation_hit_rate: None,
        hyperparams: "{}".into(),
        model: Some(LinearForecast {
            columns: vec!["ret1".into()],
            mean: vec![F64(0.0)],
            scale: vec![F64(1e-3)],
            weights: vec![F64(weight)],
            intercept: F64(0.0),
            link: Link::Identity,
        }),
        feature_schema: "test".into(),
        reason: "test".into(),
    }
}

/// Runs two hours of a two-symbol market on `workers` workers while a
/// "trainer" thread decides every scheduled time after `delay(T)` of
/// wall time: one model per symbol, plus a rejected one.
fn run(workers: usize, delay: impl Fn(u64) -> Duration + Send + 'static) -> Vec<Delivery> {
    let mut sim = SimConfig::default_market(4, START).with_symbols(&["BTC-USD", "ETH-USD"]);
    sim.trades_per_sec = 2.0;
    let payloads = Simulator::new(sim)
        .take_while(|t| t.ts_ms < START + HOURS * 3_600_000)
        .map(|t| (t.symbol.clone(), t.to_json().into_bytes()));
    let records = Arc::new(partition_records(payloads, 4));
    let link = DeployLink::new();
    let clock_end = START + 86_400_000;
    let config = PipelineConfig {
        source: SourceConfig::new()
            .with_idle_lag_ms(None)
            .with_clock(Arc::new(move || clock_end)),
        bars: BarConfig {
            interval_ms: 10_000,
            ..BarConfig::default()
        },
        predict: PredictConfig {
            horizons: vec![1],
            batch_models: vec!["batch_test"],
            ..PredictConfig::default()
        },
        deploy: Some(DeploySetup {
            every_ms: EVERY,
            stall_bound_ms: None,
            clock: Arc::new(move || clock_end),
            link: link.clone(),
        }),
        ..PipelineConfig::default()
    };
    let done = Arc::new(AtomicBool::new(false));
    let trainer = {
        let (link, done) = (link.clone(), done.clone());
        std::thread::spawn(move || {
            let mut decided = BTreeSet::new();
            while !done.load(Ordering::SeqCst) {
                if let Some(h) = link.hold() {
                    let t = h.scheduled_ms;
                    if decided.insert(t) {
                        std::thread::sleep(delay(t));
                        let w = 1e-4 * (t / EVERY % 7) as f64;
                        link.decide(Decision {
                            scheduled_ms: t,
                            records: vec![
                                record("BTC-USD", 1, t, w, ModelStatus::Candidate),
                                record("ETH-USD", 1, t, -w, ModelStatus::Candidate),
                                ModelRecord {
                                    id: "rejected".into(),
                                    ..record("ETH-USD", 1, t, 0.0, ModelStatus::Rejected)
                                },
                            ],
                        });
                    }
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            decided
        })
    };
    let out = run_in_memory(records, 4, workers, config).unwrap();
    done.store(true, Ordering::SeqCst);
    let decided = trainer.join().unwrap();
    // Schedule points after the first bar, up to the last one with data after it.
    assert_eq!(
        decided.len() as u64,
        HOURS * 3_600_000 / EVERY,
        "{decided:?}"
    );
    out
}

#[test]
fn deployments_take_effect_at_their_scheduled_time_whatever_the_workers_and_delays() {
    let reference = run(1, |_| Duration::ZERO);
    let mut rng = Rng::new(8);
    let delays: Vec<u64> = (0..16).map(|_| (rng.uniform() * 150.0) as u64).collect();
    let slow = run(2, move |t| {
        Duration::from_millis(delays[(t / EVERY % 16) as usize])
    });
    assert_eq!(
        reference, slow,
        "worker count or decision delays changed the output"
    );

    let batch: Vec<_> = reference
        .iter()
        .flat_map(|d| d.inserted())
        .filter_map(|o| match o {
            Output::Prediction(p) if p.model == "batch_test" => Some(p),
            _ => None,
        })
        .collect();
    assert!(!batch.is_empty());
    for p in &batch {
        let v = p
            .batch
            .as_ref()
            .expect("a batch prediction names its version");
        // Made by the version deployed at the latest schedule point at or before it.
        assert_eq!(v.version, p.made_at_ms / EVERY * EVERY, "{p:?}");
        assert_eq!(v.id, model_id("batch_test", &p.symbol, 1, v.version));
    }
    let first_t = (START / EVERY + 1) * EVERY;
    assert_eq!(batch.iter().map(|p| p.made_at_ms).min(), Some(first_t));

    let registry: Vec<&ModelRecord> = reference
        .iter()
        .flat_map(|d| d.inserted())
        .filter_map(|o| match o {
            Output::Model(m) => Some(m),
            _ => None,
        })
        .collect();
    let n = (HOURS * 3_600_000 / EVERY) as usize;
    let count = |s: ModelStatus| registry.iter().filter(|m| m.status == s).count();
    assert_eq!(count(ModelStatus::Candidate), 2 * n);
    assert_eq!(count(ModelStatus::Rejected), n);
    assert_eq!(count(ModelStatus::Retired), 2 * (n - 1));
    for m in &registry {
        match m.status {
            ModelStatus::Candidate => assert_eq!(m.deployed_at_ms, Some(m.version)),
            ModelStatus::Retired => assert_eq!(m.status_at_ms, m.version + EVERY),
            _ => assert_eq!(m.deployed_at_ms, None),
        }
    }
}
