//! Batch models: how long each linfa model takes to fit per number of
//! training rows, and what serving them costs the dataflow (throughput
//! with the four batch models deployed and swapped on a schedule, versus
//! online models only). Prints one JSON line per result.
//!
//! Training rows are real pipeline output (the simulator's switching
//! market through the in-memory harness, 1-second bars), cut to the
//! requested sizes; each fit is timed as the median of `--repeat` runs.
//! The throughput runs use the same ticks for both settings; with batch
//! models on, a trainer thread answers every scheduled time at once with a
//! fitted model per (symbol, horizon, kind), so the time measured is the
//! dataflow's (the holds included), not training.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use cryptoflow::train::{fit, train_record, FitOutcome, TrainConfig, TrainRows, KINDS};
use dataflows::deploy::{Decision, DeployLink, DeploySetup, ModelStatus};
use dataflows::harness::run_in_memory;
use dataflows::predict::PredictConfig;
use dataflows::sim::{SimConfig, Simulator};
use dataflows::source::{partition_records, Record, SourceConfig};
use dataflows::{Output, PipelineConfig};

#[derive(Parser)]
struct Args {
    /// Training-set sizes, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1000,5000,20000")]
    rows: Vec<usize>,
    /// Fits per measurement (the median is reported).
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Ticks of each throughput run.
    #[arg(long, default_value_t = 500_000)]
    ticks: usize,
    /// Event time between scheduled retrains in the throughput run, ms.
    #[arg(long, default_value_t = 600_000)]
    every_ms: u64,
}

const START: u64 = 1_700_006_400_000;

fn config() -> PipelineConfig {
    PipelineConfig {
        source: SourceConfig::new()
            .with_idle_lag_ms(None)
            .with_clock(Arc::new(|| u64::MAX / 2)),
        ..PipelineConfig::default()
    }
}

fn records(ticks: usize, rate: f64) -> Arc<Vec<Record>> {
    let mut sim = SimConfig::default_market(21, START);
    sim.trades_per_sec = rate;
    let payloads = Simulator::new(sim)
        .take(ticks)
        .map(|t| (t.symbol.clone(), t.to_json().into_bytes()));
    Arc::new(partition_records(payloads, 4))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let max_rows = args.rows.iter().copied().max().unwrap_or(1_000);
    // Enough 1-second bars of one symbol for the largest training set.
    let history = records(max_rows * 5 * 3 + 200_000, 3.0);
    let deliveries = run_in_memory(history, 4, 1, config()).map_err(anyhow::Error::msg)?;
    let rows = TrainRows::from_deliveries(&deliveries);
    let ex_all = rows.examples("BTC-USD", 5, 0, u64::MAX);
    for &n in &args.rows {
        anyhow::ensure!(ex_all.len() >= n, "only {} examples for {n}", ex_all.len());
        let mut ex = ex_all.clone();
        let from = ex.len() - n;
        ex.times.drain(..from);
        ex.targets_at.drain(..from);
        ex.x.drain(..from);
        ex.y.drain(..from);
        let config = TrainConfig {
            max_rows: usize::MAX,
            ..TrainConfig::default()
        };
        for kind in KINDS {
            let mut secs = Vec::new();
            let mut outcome = None;
            for _ in 0..args.repeat.max(1) {
                let t0 = Instant::now();
                outcome = Some(fit(kind, &ex, &config));
                secs.push(t0.elapsed().as_secs_f64());
            }
            let (fitted, skill, reason) = match outcome.expect("ran") {
                FitOutcome::Fitted {
                    validation_skill,
                    fit_samples,
                    ..
                } => (fit_samples, Some(validation_skill), None),
                FitOutcome::Rejected(r) => (0, None, Some(r)),
            };
            println!(
                "{}",
                serde_json::json!({
                    "bench": "train", "model": kind.name(), "rows": n, "fitted_rows": fitted,
                    "seconds": (median(secs) * 1e4).round() / 1e4,
                    "validation_skill": skill, "rejected": reason,
                })
            );
        }
    }

    // Throughput, batch models off and on.
    let input = records(args.ticks, 10.0);
    let template: Vec<_> = KINDS
        .iter()
        .map(|k| train_record(*k, &ex_all, 0, &TrainConfig::default()))
        .collect();
    for on in [false, true] {
        let link = DeployLink::new();
        let mut cfg = config();
        if on {
            cfg.predict = PredictConfig {
                batch_models: KINDS.iter().map(|k| k.name()).collect(),
                ..PredictConfig::default()
            };
            cfg.deploy = Some(DeploySetup {
                every_ms: args.every_ms,
                stall_bound_ms: None,
                clock: Arc::new(|| 0),
                link: link.clone(),
            });
        }
        let done = Arc::new(AtomicBool::new(false));
        let symbols = dataflows::sim::generated_symbols(5);
        let trainer = {
            let (link, done, template) = (link.clone(), done.clone(), template.clone());
            std::thread::spawn(move || {
                let mut decided = BTreeSet::new();
                while !done.load(Ordering::SeqCst) {
                    if let Some(h) = link.hold() {
                        if decided.insert(h.scheduled_ms) {
                            let t = h.scheduled_ms;
                            let mut records = Vec::new();
                            for s in &symbols {
                                for h in dataflows::predict::DEFAULT_HORIZONS {
                                    for r in &template {
                                        let mut r = r.clone();
                                        r.symbol = s.clone();
                                        r.horizon_bars = h;
                                        r.version = t;
                                        r.status = ModelStatus::Candidate;
                                        r.id = dataflows::deploy::model_id(&r.kind, s, h, t);
                                        records.push(r);
                                    }
                                }
                            }
                            link.decide(Decision {
                                scheduled_ms: t,
                                records,
                            });
                        }
                    }
                    std::thread::sleep(std::time::Duration::from_micros(200));
                }
                decided.len()
            })
        };
        let t0 = Instant::now();
        let out = run_in_memory(input.clone(), 4, 1, cfg).map_err(anyhow::Error::msg)?;
        let secs = t0.elapsed().as_secs_f64();
        done.store(true, Ordering::SeqCst);
        let swaps = trainer.join().expect("trainer thread");
        let batch_predictions = out
            .iter()
            .flat_map(|d| d.inserted())
            .filter(|o| matches!(o, Output::Prediction(p) if p.batch.is_some()))
            .count();
        println!(
            "{}",
            serde_json::json!({
                "bench": "serve", "batch_models": on, "ticks": args.ticks, "workers": 1,
                "seconds": (secs * 1e3).round() / 1e3,
                "ticks_per_sec": (args.ticks as f64 / secs).round(),
                "scheduled_swaps": if on { swaps } else { 0 },
                "batch_predictions": batch_predictions,
            })
        );
    }
    Ok(())
}
