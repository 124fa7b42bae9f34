//! Bad input never loses accepted data (property tests, `proptest`).
//!
//! Valid ticks of three symbols are interleaved with arbitrary garbage
//! (random bytes, broken JSON, ticks with a bad field, from the future or
//! in seconds), duplicates (the same payload again, later: a distinct
//! record, so a second trade unless it is late — the dataflow does not
//! deduplicate; the connectors do, by trade id), out-of-order records
//! (neighbours swapped) and late records (copies moved back in time).
//!
//! What "late" means, precisely: a record whose tick decodes but whose
//! event time is below its partition's watermark — the newest event time
//! accepted from that partition so far minus the lateness — is rejected
//! as `late` (and goes to the rejects table). So the reference is the
//! *accepted* set: the decodable records that are not late, computed here
//! sequentially per partition in offset order. The properties, on 2
//! workers:
//!
//! 1. the bars of the mixed input are exactly the bars of the accepted
//!    records alone (same partitions and offsets, everything else removed);
//! 2. those bars are the plain per-(symbol, interval) aggregate of the
//!    accepted ticks, with the gap rule;
//! 3. every other record is a reject: the garbage with its decode reason,
//!    the late ones as `late`, each exactly once, at its own position.

use std::collections::BTreeMap;
use std::sync::Arc;

use dataflows::bars::{aggregate, bar_bounds, fill_gap, Bar, BarConfig};
use dataflows::harness::run_in_memory;
use dataflows::source::{partition_records, Record, SourceConfig};
use dataflows::tick::{decode, Position, RejectReason, Tick, ValidationLimits};
use dataflows::{Delivery, Output, PipelineConfig};
use proptest::prelude::*;

const START: u64 = 1_700_000_000_000;
const NOW: u64 = START + 86_400_000;
const LATENESS: u64 = 1_500;
const PARTITIONS: i32 = 3;
const SYMBOLS: [&str; 3] = ["BTC-USD", "ETH-USD", "SOL-USD"];
const LIMITS: ValidationLimits = ValidationLimits {
    now_ms: NOW,
    max_future_ms: 60_000,
};

fn config() -> PipelineConfig {
    PipelineConfig {
        source: SourceConfig::new()
            .with_lateness_ms(LATENESS)
            .with_idle_lag_ms(None)
            .with_clock(Arc::new(|| NOW)),
        ..PipelineConfig::default()
    }
}

/// One generated record before partitioning.
#[derive(Clone, Debug)]
enum Item {
    /// A valid tick: symbol index, ms after the previous valid tick, price in cents.
    Tick(usize, u64, u32, bool),
    /// Bytes that are not a tick.
    Garbage(Vec<u8>),
    /// A tick with one bad field (0..6 picks which).
    Broken(usize, u8),
    /// The payload of the n-th valid tick so far, again.
    Duplicate(usize),
    /// The n-th valid tick so far, moved back by this many ms.
    Late(usize, u64),
    /// Swap with the next item.
    Swap,
}

fn item() -> impl Strategy<Value = Item> {
    prop_oneof![
        12 => (0..3usize, 0..400u64, 100..100_000u32, any::<bool>())
            .prop_map(|(s, dt, p, b)| Item::Tick(s, dt, p, b)),
        2 => proptest::collection::vec(any::<u8>(), 0..48).prop_map(Item::Garbage),
        2 => (0..3usize, 0..7u8).prop_map(|(s, k)| Item::Broken(s, k)),
        1 => any::<usize>().prop_map(Item::Duplicate),
        1 => (any::<usize>(), 1..20_000u64).prop_map(|(n, back)| Item::Late(n, back)),
        1 => Just(Item::Swap),
    ]
}

fn tick_json(symbol: &str, ts: u64, cents: u32, buy: bool) -> String {
    format!(
        r#"{{"symbol":"{symbol}","exchange":"prop","ts":{ts},"price":"{}.{:02}","size":"0.{:03}","side":"{}"}}"#,
        cents / 100,
        cents % 100,
        1 + cents % 997,
        if buy { "buy" } else { "sell" }
    )
}

/// The records (key, payload) the items stand for, in topic order.
fn records(items: &[Item]) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    let mut valid: Vec<(String, String, u64, u32, bool)> = Vec::new();
    let mut ts = START;
    let mut swap_next = false;
    for item in items {
        let rec = match item {
            Item::Tick(s, dt, cents, buy) => {
                ts += dt;
                let json = tick_json(SYMBOLS[*s], ts, *cents, *buy);
                valid.push((SYMBOLS[*s].to_string(), json.clone(), ts, *cents, *buy));
                (SYMBOLS[*s].to_string(), json.into_bytes())
            }
            Item::Garbage(bytes) => ("BTC-USD".to_string(), bytes.clone()),
            Item::Broken(s, k) => {
                let sym = SYMBOLS[*s];
                let bad = match k {
                    0 => format!(
                        r#"{{"symbol":"{sym}","exchange":"prop","ts":{ts},"size":"1","side":"buy"}}"#
                    ),
                    1 => format!(
                        r#"{{"symbol":"{sym}","exchange":"prop","ts":{ts},"price":"abc","size":"1","side":"buy"}}"#
                    ),
                    2 => format!(
                        r#"{{"symbol":"{sym}","exchange":"prop","ts":{ts},"price":"-3","size":"1","side":"buy"}}"#
                    ),
                    3 => format!(
                        r#"{{"symbol":"btc","exchange":"prop","ts":{ts},"price":"3","size":"1","side":"buy"}}"#
                    ),
                    4 => format!(
                        r#"{{"symbol":"{sym}","exchange":"prop","ts":{},"price":"3","size":"1","side":"buy"}}"#,
                        ts / 1000
                    ),
                    5 => format!(
                        r#"{{"symbol":"{sym}","exchange":"prop","ts":{},"price":"3","size":"1","side":"buy"}}"#,
                        NOW + 3_600_000
                    ),
                    _ => format!(
                        r#"{{"symbol":"{sym}","exchange":"prop","ts":{ts},"price":"NaN","size":"1","side":"hold"}}"#
                    ),
                };
                (sym.to_string(), bad.into_bytes())
            }
            Item::Duplicate(n) if !valid.is_empty() => {
                let (sym, json, ..) = &valid[n % valid.len()];
                (sym.clone(), json.clone().into_bytes())
            }
            Item::Late(n, back) if !valid.is_empty() => {
                let (sym, _, t, cents, buy) = &valid[n % valid.len()];
                let late = tick_json(sym, t.saturating_sub(*back).max(START), *cents, !*buy);
                (sym.clone(), late.into_bytes())
            }
            Item::Swap => {
                swap_next = true;
                continue;
            }
            Item::Duplicate(_) | Item::Late(..) => continue,
        };
        out.push(rec);
        if swap_next && out.len() >= 2 {
            let n = out.len();
            out.swap(n - 1, n - 2);
            swap_next = false;
        }
    }
    out
}

/// Accepted ticks and rejected positions, by the rule in the module doc.
fn reference(records: &[Record]) -> (Vec<Tick>, BTreeMap<Position, RejectReason>) {
    let mut by_part: BTreeMap<i32, Vec<&Record>> = BTreeMap::new();
    for r in records {
        by_part.entry(r.pos.partition).or_default().push(r);
    }
    let (mut accepted, mut rejected) = (Vec::new(), BTreeMap::new());
    for recs in by_part.values_mut() {
        recs.sort_by_key(|r| r.pos.offset);
        let mut max_ts: Option<u64> = None;
        for r in recs.iter() {
            match decode(&r.payload, r.pos, LIMITS) {
                Err(reject) => {
                    rejected.insert(r.pos, reject.reason);
                }
                Ok(t) if max_ts.is_some_and(|m| t.ts_ms < m.saturating_sub(LATENESS)) => {
                    rejected.insert(r.pos, RejectReason::Late);
                }
                Ok(t) => {
                    max_ts = Some(max_ts.map_or(t.ts_ms, |m| m.max(t.ts_ms)));
                    accepted.push(t);
                }
            }
        }
    }
    (accepted, rejected)
}

/// Bars of `ticks`: per (symbol, interval), with the gap rule.
fn reference_bars(ticks: &[Tick]) -> Vec<Bar> {
    let cfg = BarConfig::default();
    let mut groups: BTreeMap<(String, u64), Vec<Tick>> = BTreeMap::new();
    for t in ticks {
        let (_, end) = bar_bounds(t.ts_ms, cfg.interval_ms);
        groups
            .entry((t.symbol.clone(), end))
            .or_default()
            .push(t.clone());
    }
    let mut out = Vec::new();
    let mut last = BTreeMap::new();
    for ((symbol, end), mut group) in groups {
        let bar = aggregate(&symbol, end - cfg.interval_ms, end, &mut group);
        let (fill, after_gap) = fill_gap(&symbol, last.get(&symbol).copied(), bar.start_ms, cfg);
        out.extend(fill);
        last.insert(symbol, (bar.end_ms, bar.close));
        out.push(Bar { after_gap, ..bar });
    }
    out.sort();
    out
}

fn bars(d: &[Delivery]) -> Vec<Bar> {
    let mut b: Vec<Bar> = d
        .iter()
        .flat_map(|d| d.inserted())
        .filter_map(|o| match o {
            Output::Bar(b) => Some(b.clone()),
            _ => None,
        })
        .collect();
    b.sort();
    b
}

fn rejects(d: &[Delivery]) -> Vec<(Position, RejectReason)> {
    let mut r: Vec<_> = d
        .iter()
        .flat_map(|d| d.inserted())
        .filter_map(|o| match o {
            Output::Reject(r) => Some((r.pos, r.reason)),
            _ => None,
        })
        .collect();
    r.sort();
    r
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn bad_input_never_changes_the_bars_of_the_accepted_ticks(
        items in proptest::collection::vec(item(), 1..300)
    ) {
        let mixed = partition_records(records(&items), PARTITIONS);
        let (accepted, rejected) = reference(&mixed);
        let alone: Vec<Record> = mixed
            .iter()
            .filter(|r| !rejected.contains_key(&r.pos))
            .cloned()
            .collect();
        prop_assert_eq!(alone.len(), accepted.len());

        let got = run_in_memory(Arc::new(mixed.clone()), PARTITIONS, 2, config()).unwrap();
        let clean = run_in_memory(Arc::new(alone), PARTITIONS, 2, config()).unwrap();
        // 1. Same bars with or without the bad records.
        prop_assert_eq!(bars(&got), bars(&clean));
        // 2. They are the accepted ticks' bars.
        prop_assert_eq!(bars(&got), reference_bars(&accepted));
        // 3. Everything else is rejected once, with its reason.
        let want: Vec<(Position, RejectReason)> = rejected.into_iter().collect();
        prop_assert_eq!(rejects(&got), want);
        prop_assert!(rejects(&clean).is_empty());
        let traded: u32 = bars(&got).iter().map(|b| b.trades).sum();
        prop_assert_eq!(traded as usize, accepted.len());
    }
}

#[test]
fn a_duplicate_after_the_watermark_passed_is_late_and_before_it_a_second_trade() {
    let items = [
        Item::Tick(0, 0, 10_000, true),
        Item::Duplicate(0),
        Item::Tick(0, 5_000, 10_100, false),
        Item::Duplicate(0),
    ];
    let mixed = partition_records(records(&items), PARTITIONS);
    let (accepted, rejected) = reference(&mixed);
    assert_eq!(accepted.len(), 3, "the first duplicate counts as a trade");
    assert_eq!(
        rejected.values().copied().collect::<Vec<_>>(),
        [RejectReason::Late]
    );
    let got = run_in_memory(Arc::new(mixed), PARTITIONS, 1, config()).unwrap();
    assert_eq!(bars(&got), reference_bars(&accepted));
    assert_eq!(bars(&got)[0].trades, 2);
    assert_eq!(rejects(&got).len(), 1);
}
