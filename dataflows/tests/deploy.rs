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
use dataflows::harness::{run_collect_all, Exported};
use dataflows::num::F64;
use dataflows::predict::PredictConfig;
use dataflows::sim::{Rng, SimConfig, Simulator};
use dataflows::snapshot::{Op, Restore};
use dataflows::source::{partition_of_key, partition_records, SourceConfig, VecReader};
use dataflows::{Delivery, Output, PipelineConfig, SnapshotConfig};

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
    let (out, decided) = run_with(
        &["BTC-USD", "ETH-USD"],
        4,
        workers,
        delay,
        SnapshotConfig::default(),
    );
    // Schedule points after the first bar, up to the last one with data after it.
    assert_eq!(
        decided.len() as u64,
        HOURS * 3_600_000 / EVERY,
        "{decided:?}"
    );
    out.deliveries
}

/// [`run`] over `symbols` in `partitions` partitions, with snapshots as
/// `snapshot` says; returns what was exported and the scheduled times
/// the trainer decided.
fn run_with(
    symbols: &[&str],
    partitions: i32,
    workers: usize,
    delay: impl Fn(u64) -> Duration + Send + 'static,
    snapshot: SnapshotConfig,
) -> (Exported, BTreeSet<u64>) {
    let mut sim = SimConfig::default_market(4, START).with_symbols(symbols);
    sim.trades_per_sec = 2.0;
    let payloads = Simulator::new(sim)
        .take_while(|t| t.ts_ms < START + HOURS * 3_600_000)
        .map(|t| (t.symbol.clone(), t.to_json().into_bytes()));
    let records = Arc::new(partition_records(payloads, partitions));
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
        snapshot,
        ..PipelineConfig::default()
    };
    let done = Arc::new(AtomicBool::new(false));
    let (first, second) = (symbols[0].to_string(), symbols[1].to_string());
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
                                record(&first, 1, t, w, ModelStatus::Candidate),
                                record(&second, 1, t, -w, ModelStatus::Candidate),
                                ModelRecord {
                                    id: "rejected".into(),
                                    ..record(&second, 1, t, 0.0, ModelStatus::Rejected)
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
    let out = run_collect_all(
        workers,
        move |index, peers| Ok(VecReader::for_worker(&records, partitions, index, peers)),
        config,
    )
    .unwrap();
    done.store(true, Ordering::SeqCst);
    (out, trainer.join().unwrap())
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

#[test]
fn a_run_restored_from_a_snapshot_keeps_the_retrain_schedule_and_deployed_versions() {
    // Two symbols in two partitions of their own: no partition is empty,
    // so cuts complete during the run.
    let symbols = ["BTC-USD", "ETH-USD", "SOL-USD", "XRP-USD", "ADA-USD"];
    let (a, b) = symbols
        .iter()
        .flat_map(|a| symbols.iter().map(move |b| (*a, *b)))
        .find(|(a, b)| partition_of_key(a, 2) == 0 && partition_of_key(b, 2) == 1)
        .expect("two of the symbols fall in different partitions");
    let every = Some(600_000);
    let snapshots = |restore: Option<Restore>| SnapshotConfig {
        every_ms: every,
        restore: restore.map(Arc::new),
        ..SnapshotConfig::default()
    };
    let (whole, decided) = run_with(&[a, b], 2, 2, |_| Duration::ZERO, snapshots(None));
    assert!(decided.len() >= 3, "{decided:?}");
    let cuts: Vec<u64> = whole.snapshots.iter().map(|s| s.cut).collect();
    // How many cuts complete depends on the pace of the workers; a few do.
    assert!(cuts.len() >= 3, "{cuts:?}");
    for (i, workers) in [(0, 1), (cuts.len() / 2, 4), (cuts.len() - 1, 2)] {
        let snap = &whole.snapshots[i];
        assert!(
            snap.entries.iter().any(|e| e.op == Op::Deploy),
            "cut {}: no schedule state",
            snap.cut
        );
        let restore = Restore {
            cut: snap.cut,
            entries: snap.entries.clone(),
        };
        let (restored, _) = run_with(
            &[a, b],
            2,
            workers,
            |_| Duration::ZERO,
            snapshots(Some(restore)),
        );
        let expected: Vec<&Delivery> = whole
            .deliveries
            .iter()
            .filter(|d| d.time >= snap.cut)
            .collect();
        let got: Vec<&Delivery> = restored.deliveries.iter().collect();
        assert!(
            got == expected,
            "restored at {} on {workers} workers: the deliveries differ from never stopping",
            snap.cut
        );
    }
}
