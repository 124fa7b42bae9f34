//! Whole-pipeline properties on seeded input: the answer does not depend on
//! the number of workers, bars match a plain sequential computation, every
//! reject reason is produced and counted, no prediction looks ahead, and
//! the champion rule behaves on momentum versus random-walk markets.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use dataflows::bars::{aggregate, bar_bounds, fill_gap, Bar, BarConfig};
use dataflows::harness::run_in_memory;
use dataflows::num::{DAY_MS, F64};
use dataflows::sim::{Regime, SimConfig, Simulator};
use dataflows::source::{partition_records, Record, SourceConfig};
use dataflows::tick::{decode, Position, RejectReason, Tick, ValidationLimits};
use dataflows::{Delivery, Output, PipelineConfig};

const START: u64 = 1_700_000_000_000;
const PARTITIONS: i32 = 8;
const NOW: u64 = START + 86_400_000;

fn config() -> PipelineConfig {
    let clock: dataflows::source::Clock = Arc::new(|| NOW);
    PipelineConfig {
        source: SourceConfig::new()
            .with_lateness_ms(1_500)
            .with_idle_lag_ms(None)
            .with_clock(clock),
        ..PipelineConfig::default()
    }
}

/// Simulated ticks with defects mixed in: out-of-order within lateness,
/// late ticks, and one record for each decode failure.
fn seeded_input(seed: u64, minutes: u64) -> Vec<(String, Vec<u8>)> {
    let mut cfg = SimConfig::default_market(seed, START);
    cfg.trades_per_sec = 4.0;
    let ticks: Vec<Tick> = Simulator::new(cfg)
        .take_while(|t| t.ts_ms < START + minutes * 60_000)
        .collect();
    let mut rng = dataflows::sim::Rng::new(seed ^ 0xabc);
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    let mut i = 0;
    while i < ticks.len() {
        let u = rng.uniform();
        if u < 0.05 && i + 1 < ticks.len() {
            // Swap two neighbours: out of order but within lateness.
            out.push((
                ticks[i + 1].symbol.clone(),
                ticks[i + 1].to_json().into_bytes(),
            ));
            out.push((ticks[i].symbol.clone(), ticks[i].to_json().into_bytes()));
            i += 2;
            continue;
        }
        let t = &ticks[i];
        out.push((t.symbol.clone(), t.to_json().into_bytes()));
        if u > 0.995 {
            let mut late = t.clone();
            late.ts_ms -= 10_000;
            out.push((late.symbol.clone(), late.to_json().into_bytes()));
        }
        i += 1;
    }
    let bad = [
        "{oops".to_string(),
        r#"{"symbol":"BTC-USD","exchange":"x","ts":1700000001000,"size":1,"side":"buy"}"#.to_string(),
        r#"{"symbol":"BTC-USD","exchange":"x","ts":1700000001000,"price":"abc","size":1,"side":"buy"}"#.to_string(),
        r#"{"symbol":"btc","exchange":"x","ts":1700000001000,"price":1,"size":1,"side":"buy"}"#.to_string(),
        r#"{"symbol":"BTC-USD","exchange":"x","ts":1700000001000,"price":"NaN","size":1,"side":"buy"}"#.to_string(),
        r#"{"symbol":"BTC-USD","exchange":"x","ts":1700000001000,"price":-5,"size":1,"side":"buy"}"#.to_string(),
        r#"{"symbol":"BTC-USD","exchange":"x","ts":1700000001,"price":5,"size":1,"side":"buy"}"#.to_string(),
        format!(r#"{{"symbol":"BTC-USD","exchange":"x","ts":{},"price":5,"size":1,"side":"buy"}}"#, NOW + 3_600_000),
    ];
    for (k, b) in bad.iter().enumerate() {
        let at = (k + 1) * out.len() / (bad.len() + 1);
        out.insert(at, ("BTC-USD".to_string(), b.clone().into_bytes()));
    }
    out
}

fn run(records: &[Record], workers: usize, config: PipelineConfig) -> Vec<Delivery> {
    run_in_memory(Arc::new(records.to_vec()), PARTITIONS, workers, config).expect("pipeline runs")
}

/// Everything a run produced, as comparable sets: every output with its
/// delivery time (rejects included: they carry their partition's watermark),
/// and the rejects on their own for a clearer failure message.
/// A change with the time it was delivered at.
type Timed = (u64, (Output, isize));

fn normalise(d: &[Delivery]) -> (Vec<Timed>, Vec<Output>) {
    let mut timed = Vec::new();
    let mut rejects = Vec::new();
    for del in d {
        for change in &del.changes {
            if let (Output::Reject(_), _) = change {
                rejects.push(change.0.clone());
            }
            timed.push((del.time, change.clone()));
        }
    }
    timed.sort();
    rejects.sort();
    (timed, rejects)
}

fn assert_same(a: &[Delivery], b: &[Delivery], what: &str) {
    let (ta, ra) = normalise(a);
    let (tb, rb) = normalise(b);
    assert_eq!(ra.len(), rb.len(), "{what}: reject counts differ");
    assert!(ra == rb, "{what}: rejects differ");
    if let Some(i) = (0..ta.len().min(tb.len())).find(|&i| ta[i] != tb[i]) {
        panic!(
            "{what}: first difference at #{i}:\n  {:?}\n  {:?}",
            ta[i], tb[i]
        );
    }
    assert_eq!(ta.len(), tb.len(), "{what}: output counts differ");
}

fn bars_of(d: &[Delivery]) -> Vec<Bar> {
    let mut v: Vec<Bar> = d
        .iter()
        .flat_map(|d| d.changes.iter().map(|(o, _)| o))
        .filter_map(|o| {
            if let Output::Bar(b) = o {
                Some(b.clone())
            } else {
                None
            }
        })
        .collect();
    v.sort();
    v
}

/// The sequential oracle: per partition in offset order, a tick is late if
/// it is more than the lateness behind that partition's max event time.
fn reference_bars(records: &[Record], lateness: u64, bar_cfg: BarConfig) -> Vec<Bar> {
    let limits = ValidationLimits {
        now_ms: NOW,
        max_future_ms: 60_000,
    };
    let mut by_part: BTreeMap<i32, Vec<&Record>> = BTreeMap::new();
    for r in records {
        by_part.entry(r.pos.partition).or_default().push(r);
    }
    let mut groups: BTreeMap<(String, u64), Vec<Tick>> = BTreeMap::new();
    for recs in by_part.values_mut() {
        recs.sort_by_key(|r| r.pos.offset);
        let mut max_ts: Option<u64> = None;
        for r in recs.iter() {
            let Ok(t) = decode(&r.payload, r.pos, limits) else {
                continue;
            };
            if max_ts.is_some_and(|m| t.ts_ms < m.saturating_sub(lateness)) {
                continue;
            }
            max_ts = Some(max_ts.map_or(t.ts_ms, |m| m.max(t.ts_ms)));
            let (_, end) = bar_bounds(t.ts_ms, bar_cfg.interval_ms);
            groups.entry((t.symbol.clone(), end)).or_default().push(t);
        }
    }
    let mut out = Vec::new();
    let mut last: BTreeMap<String, (u64, F64)> = BTreeMap::new();
    for ((symbol, end), mut ticks) in groups {
        let bar = aggregate(&symbol, end - bar_cfg.interval_ms, end, &mut ticks);
        let (fill, after_gap) =
            fill_gap(&symbol, last.get(&symbol).copied(), bar.start_ms, bar_cfg);
        out.extend(fill);
        last.insert(symbol, (bar.end_ms, bar.close));
        out.push(Bar { after_gap, ..bar });
    }
    out.sort();
    out
}

#[test]
fn same_answer_on_1_2_and_4_workers_with_or_without_flow_control_and_bars_match_the_oracle() {
    let records = partition_records(seeded_input(11, 12), PARTITIONS);
    let one = run(&records, 1, config());
    let two = run(&records, 2, config());
    let four = run(&records, 4, config());
    assert!(!one.is_empty());
    assert_same(&one, &two, "1 vs 2 workers");
    assert_same(&one, &four, "1 vs 4 workers");
    // The source's flow control changes the pace, never the answer.
    let mut unpaced = config();
    unpaced.source = unpaced.source.with_max_ahead_ms(None);
    assert_same(&one, &run(&records, 2, unpaced), "paced vs unpaced source");

    let bars = bars_of(&one);
    let expected = reference_bars(&records, 1_500, BarConfig::default());
    assert!(bars.len() > 1_000, "{} bars", bars.len());
    assert_eq!(bars.len(), expected.len());
    assert_eq!(bars, expected);

    // Predictions, scores, champions and best predictions all flowed.
    let count = |f: &dyn Fn(&Output) -> bool| {
        one.iter()
            .flat_map(|d| d.changes.iter().map(|(o, _)| o))
            .filter(|o| f(o))
            .count()
    };
    assert!(count(&|o| matches!(o, Output::Prediction(_))) > 1_000);
    assert!(count(&|o| matches!(o, Output::Score(_))) > 1_000);
    assert!(count(&|o| matches!(o, Output::Champion(..))) > 0);
    assert!(count(&|o| matches!(o, Output::Best(..))) > 0);
}

#[test]
fn every_reject_reason_is_produced_and_nothing_accepted_is_lost() {
    let input = seeded_input(5, 4);
    let records = partition_records(input.clone(), PARTITIONS);
    let out = run(&records, 2, config());
    let mut reasons: BTreeMap<RejectReason, usize> = BTreeMap::new();
    let mut rejected: BTreeSet<Position> = BTreeSet::new();
    for o in out.iter().flat_map(|d| d.changes.iter().map(|(o, _)| o)) {
        if let Output::Reject(r) = o {
            *reasons.entry(r.reason).or_default() += 1;
            assert!(!r.payload.is_empty() && !r.detail.is_empty());
            rejected.insert(r.pos);
        }
    }
    for reason in RejectReason::ALL {
        assert!(
            reasons.contains_key(&reason),
            "no {reason:?} reject; got {reasons:?}"
        );
    }
    // Every record is either rejected or counted in exactly one bar.
    let traded: u64 = bars_of(&out).iter().map(|b| u64::from(b.trades)).sum();
    assert_eq!(traded as usize + rejected.len(), records.len());
}

#[test]
fn no_look_ahead_changing_the_future_changes_no_past_prediction() {
    let input = seeded_input(21, 6);
    let cut = START + 3 * 60_000;
    // Rewrite every tick after the cut: different prices and sizes.
    let altered: Vec<(String, Vec<u8>)> = input
        .iter()
        .map(|(k, p)| {
            let limits = ValidationLimits {
                now_ms: NOW,
                max_future_ms: 60_000,
            };
            match decode(p, Position::default(), limits) {
                Ok(mut t) if t.ts_ms > cut => {
                    t.price = F64(t.price.0 * 1.37);
                    t.size = F64(t.size.0 * 3.0);
                    (k.clone(), t.to_json().into_bytes())
                }
                _ => (k.clone(), p.clone()),
            }
        })
        .collect();
    let predictions_until = |d: &[Delivery]| -> Vec<Output> {
        d.iter()
            .flat_map(|d| d.changes.iter().map(|(o, _)| o))
            .filter(|o| matches!(o, Output::Prediction(p) if p.made_at_ms <= cut))
            .cloned()
            .collect()
    };
    let a = run(&partition_records(input, PARTITIONS), 2, config());
    let b = run(&partition_records(altered, PARTITIONS), 2, config());
    let (pa, pb) = (predictions_until(&a), predictions_until(&b));
    assert!(pa.len() > 500);
    assert_eq!(pa, pb);
    // And the change did reach later predictions (the test can fail).
    let later = |d: &[Delivery]| -> Vec<Output> {
        d.iter()
            .flat_map(|d| d.changes.iter().map(|(o, _)| o))
            .filter(|o| matches!(o, Output::Prediction(p) if p.made_at_ms > cut + 60_000))
            .cloned()
            .collect()
    };
    assert_ne!(later(&a), later(&b));
}

/// The champion of each (symbol, horizon) at the end of the run.
fn final_champions(d: &[Delivery]) -> BTreeMap<(String, u32), dataflows::champion::Champion> {
    let mut net: BTreeMap<((String, u32), dataflows::champion::Champion), isize> = BTreeMap::new();
    for (o, diff) in d.iter().flat_map(|d| d.changes.iter()) {
        if let Output::Champion(k, c) = o {
            *net.entry((k.clone(), c.clone())).or_default() += diff;
        }
    }
    net.into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|((k, c), _)| (k, c))
        .collect()
}

fn market(regime: Regime, seed: u64) -> Vec<(String, Vec<u8>)> {
    let mut cfg = SimConfig::default_market(seed, START);
    cfg.symbols.truncate(2);
    cfg.regime = regime;
    cfg.trades_per_sec = 1.0;
    // The rest of START's UTC day, all of the next, and an hour more.
    let end = (START / DAY_MS + 2) * DAY_MS + 3_600_000;
    Simulator::new(cfg)
        .take_while(|t| t.ts_ms < end)
        .map(|t| (t.symbol.clone(), t.to_json().into_bytes()))
        .collect()
}

#[test]
fn daily_champion_is_learned_on_momentum_and_persistence_on_a_random_walk() {
    let mut cfg = config();
    cfg.bars.interval_ms = 10_000;
    let run_market = |regime| {
        let d = run(
            &partition_records(market(regime, 3), PARTITIONS),
            2,
            cfg.clone(),
        );
        // Evaluations of the last complete day, and the champions at the end.
        let last_day = (START / DAY_MS + 1) as i32;
        let mut evals: BTreeMap<(String, u32, String), dataflows::champion::Evaluation> =
            BTreeMap::new();
        for o in d.iter().flat_map(|d| d.inserted()) {
            if let Output::Evaluation(e) = o {
                if e.day == last_day {
                    let key = (e.symbol.clone(), e.horizon_bars, e.evaluation.model.clone());
                    evals.insert(key, e.evaluation.clone());
                }
            }
        }
        (final_champions(&d), evals)
    };

    let (mom, evals) = run_market(Regime::Momentum);
    assert_eq!(mom.len(), 2 * 3, "{mom:#?}");
    let learned: Vec<_> = mom
        .iter()
        .filter(|(_, c)| c.model != "persistence")
        .collect();
    assert!(
        learned.len() >= mom.len() / 2,
        "momentum champions: {mom:#?}"
    );
    assert!(learned
        .iter()
        .all(|(_, c)| c.skill.0 > 0.0 && c.day.is_some() && c.since_ms % DAY_MS == 0));
    // Every model was evaluated on the full day, exactly one winner per series.
    assert_eq!(evals.len(), 2 * 3 * 6, "{}", evals.len());
    for ((s, h, _), e) in &evals {
        assert!(e.samples > 8_000, "{s} {h} {e:?}");
        assert!(e.coverage.is_some_and(|c| c.0 > 0.5), "{e:?}");
    }
    let winners = evals.values().filter(|e| e.winner).count();
    assert_eq!(winners, 2 * 3);

    let (rw, _) = run_market(Regime::RandomWalk);
    let not_base: Vec<_> = rw
        .iter()
        .filter(|(_, c)| c.model != "persistence")
        .collect();
    assert!(not_base.is_empty(), "random-walk champions: {rw:#?}");
}
