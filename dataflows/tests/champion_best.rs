//! The champion and best-prediction operator against its differential
//! oracle: on random histories of current predictions (replaced slots,
//! gaps that retract a whole series, models that never predict) and daily
//! decisions, both give the same collections at every time, on 1, 2 and 4
//! workers.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use differential_dataflow::consolidation::consolidate;
use differential_dataflow::AsCollection;
use timely::dataflow::operators::vec::ToStream;
use timely::dataflow::operators::Inspect;

use dataflows::champion::best::{champions_and_best, Decided};
use dataflows::champion::{best_predictions, champions, Champion, SeriesKey};
use dataflows::num::F64;
use dataflows::predict::Prediction;
use dataflows::sim::Rng;

const MODELS: [&str; 3] = ["persistence", "ema", "rls"];

fn prediction(symbol: &str, h: u32, model: &str, t: u64, r: f64) -> Prediction {
    Prediction {
        symbol: symbol.into(),
        horizon_bars: h,
        model: model.into(),
        horizon_ms: u64::from(h) * 1_000,
        made_at_ms: t,
        target_at_ms: t + u64::from(h) * 1_000,
        base_price: F64(100.0),
        predicted_return: F64(r),
        predicted_price: F64(100.0 * r.exp()),
        direction_prob: None,
        interval_low: None,
        interval_high: None,
        batch: None,
    }
}

type Changes<D> = Vec<(D, u64, isize)>;

/// A random history: current-prediction changes as the predictor makes
/// them (a replaced slot retracts its old prediction at the same time, a
/// gap retracts the whole series) and decisions as the evaluation makes
/// them (one per series and day, days increasing), some at time 0 as a
/// restored run re-emits them.
fn history(seed: u64, times: u64) -> (Changes<Prediction>, Changes<Decided>) {
    let mut rng = Rng::new(seed);
    let series: Vec<SeriesKey> = ["AAA-USD", "BB-USDT", "C-EUR"]
        .iter()
        .flat_map(|s| [1, 5].map(|h| (s.to_string(), h)))
        .collect();
    let mut current: BTreeMap<(SeriesKey, &str), Prediction> = BTreeMap::new();
    let mut day: BTreeMap<SeriesKey, i32> = BTreeMap::new();
    let (mut preds, mut decisions) = (Vec::new(), Vec::new());
    for step in 0..times {
        let t = step * 1_000;
        for key in &series {
            if rng.uniform() < 0.05 {
                for m in MODELS {
                    if let Some(old) = current.remove(&(key.clone(), m)) {
                        preds.push((old, t, -1));
                    }
                }
                continue;
            }
            if rng.uniform() < 0.7 {
                // The last model predicts rarely: a champion may have no
                // current prediction.
                for (i, m) in MODELS.iter().enumerate() {
                    if rng.uniform() < if i == 2 { 0.2 } else { 0.8 } {
                        let p = prediction(&key.0, key.1, m, t, rng.normal() * 1e-3);
                        if let Some(old) = current.insert((key.clone(), m), p.clone()) {
                            preds.push((old, t, -1));
                        }
                        preds.push((p, t, 1));
                    }
                }
            }
            if rng.uniform() < 0.1 {
                let d = day.entry(key.clone()).or_insert(19_000);
                *d += 1;
                let model = MODELS[(rng.next_u64() % 3) as usize];
                let c = Champion {
                    model: model.into(),
                    since_ms: t,
                    day: Some(*d),
                    skill: F64(rng.uniform()),
                    samples: (rng.next_u64() % 1_000) as i64,
                    reason: format!("day {d} {model}"),
                };
                decisions.push(((key.clone(), (*d, c)), t, 1));
            }
        }
    }
    (preds, decisions)
}

type Collected = (
    Changes<(SeriesKey, Champion)>,
    Changes<(Prediction, Champion)>,
);

/// Both formulations' outputs on `workers` workers: (operator, oracle).
fn run(workers: usize, seed: u64) -> (Collected, Collected) {
    let (preds, decisions) = history(seed, 400);
    let got: Arc<Mutex<[Collected; 2]>> = Arc::default();
    let sink = got.clone();
    timely::execute(timely::Config::process(workers), move |worker| {
        let first = worker.index() == 0;
        let (preds, decisions) = if first {
            (preds.clone(), decisions.clone())
        } else {
            (Vec::new(), Vec::new())
        };
        let sink = sink.clone();
        worker.dataflow::<u64, _, _>(move |scope| {
            let current = preds.to_stream(scope).as_collection();
            let decided = decisions.to_stream(scope).as_collection();
            let ours = champions_and_best(current.clone(), decided.clone());
            let (c1, b1) = (ours.champions, ours.best);
            let series = current.clone().map(|p| (p.symbol, p.horizon_bars));
            let c2 = champions(decided, series);
            let b2 = best_predictions(current, c2.clone());
            for (i, (c, b)) in [(c1, b1), (c2, b2)].into_iter().enumerate() {
                let (sc, sb) = (sink.clone(), sink.clone());
                c.inner
                    .inspect(move |x| sc.lock().unwrap()[i].0.push(x.clone()));
                b.inner
                    .inspect(move |x| sb.lock().unwrap()[i].1.push(x.clone()));
            }
        });
    })
    .expect("timely runs");
    let [mut op, mut oracle] = std::mem::take(&mut *got.lock().unwrap());
    for (c, b) in [&mut op, &mut oracle].map(|x| (&mut x.0, &mut x.1)) {
        consolidate_updates(c);
        consolidate_updates(b);
    }
    (op, oracle)
}

/// Changes summed per (data, time), zeros dropped, sorted.
fn consolidate_updates<D: Ord + Clone>(v: &mut Changes<D>) {
    let mut keyed: Vec<((u64, D), isize)> = v.drain(..).map(|(d, t, r)| ((t, d), r)).collect();
    consolidate(&mut keyed);
    v.extend(keyed.into_iter().map(|((t, d), r)| (d, t, r)));
}

#[test]
fn the_operator_keeps_the_oracles_collections_on_1_2_and_4_workers() {
    for seed in [1, 2, 3] {
        let (op, oracle) = run(1, seed);
        assert!(
            oracle.0.iter().any(|(_, _, d)| *d < 0) && oracle.1.iter().any(|(_, _, d)| *d < 0),
            "the history retracts champions and best rows"
        );
        assert!(
            oracle.0.iter().any(|((_, c), _, _)| c.day.is_none()),
            "some series are seeded with persistence"
        );
        assert_eq!(op.0, oracle.0, "champions, seed {seed}");
        assert_eq!(op.1, oracle.1, "best predictions, seed {seed}");
        for workers in [2, 4] {
            let (op_w, oracle_w) = run(workers, seed);
            assert_eq!(op_w, op, "operator on {workers} workers, seed {seed}");
            assert_eq!(oracle_w, oracle, "oracle on {workers} workers, seed {seed}");
        }
    }
}
