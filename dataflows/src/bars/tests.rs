use super::*;
use crate::tick::Position;

fn tick(ts: u64, price: f64, size: f64, side: Side, off: i64) -> Tick {
    Tick {
        symbol: "BTC-USD".into(),
        exchange: "test".into(),
        ts_ms: ts,
        price: F64(price),
        size: F64(size),
        side,
        trade_id: None,
        pos: Position {
            partition: 0,
            offset: off,
        },
    }
}

#[test]
fn aggregate_is_order_independent_and_exact() {
    let mut a = vec![
        tick(1_500, 10.0, 1.0, Side::Buy, 0),
        tick(1_100, 12.0, 2.0, Side::Sell, 1),
        tick(1_900, 9.0, 1.0, Side::Buy, 2),
        tick(1_100, 11.0, 1.0, Side::Buy, 3),
    ];
    let mut b = a.clone();
    b.reverse();
    let bar = aggregate("BTC-USD", 1_000, 2_000, &mut a);
    assert_eq!(bar, aggregate("BTC-USD", 1_000, 2_000, &mut b));
    // ts 1100 twice: offset 1 comes first.
    assert_eq!(bar.open.0, 12.0);
    assert_eq!(bar.close.0, 9.0);
    assert_eq!(bar.high.0, 12.0);
    assert_eq!(bar.low.0, 9.0);
    assert_eq!(bar.volume.0, 5.0);
    assert_eq!(bar.buy_volume.0, 3.0);
    assert_eq!(bar.trades, 4);
    assert!((bar.vwap.0 - (10.0 + 24.0 + 9.0 + 11.0) / 5.0).abs() < 1e-12);
}

#[test]
fn gaps_are_filled_or_flagged() {
    let cfg = BarConfig {
        interval_ms: 1_000,
        max_fill: 3,
    };
    let (fill, gap) = fill_gap("X-Y", Some((5_000, F64(7.0))), 8_000, cfg);
    assert!(!gap);
    assert_eq!(
        fill.iter().map(|b| b.start_ms).collect::<Vec<_>>(),
        vec![5_000, 6_000, 7_000]
    );
    assert!(fill
        .iter()
        .all(|b| b.filled && b.close.0 == 7.0 && b.volume.0 == 0.0));
    let (fill, gap) = fill_gap("X-Y", Some((5_000, F64(7.0))), 9_000, cfg);
    assert!(gap && fill.is_empty());
    assert_eq!(fill_gap("X-Y", None, 9_000, cfg).0.len(), 0);
    assert_eq!(bar_bounds(1_999, 1_000), (1_000, 2_000));
    assert_eq!(bar_bounds(2_000, 1_000), (2_000, 3_000));
}

#[test]
fn partials_merged_in_any_order_equal_the_definition() {
    let mut rng = crate::sim::Rng::new(3);
    for round in 0..200 {
        let n = 1 + (rng.next_u64() % 40) as usize;
        let parts_n = 1 + (rng.next_u64() % 4) as i32;
        let mut offsets = [0i64; 4];
        let ticks: Vec<Tick> = (0..n)
            .map(|_| {
                let partition = (rng.next_u64() % parts_n as u64) as i32;
                offsets[partition as usize] += 1 + (rng.next_u64() % 3) as i64;
                let side = if rng.uniform() < 0.5 {
                    Side::Buy
                } else {
                    Side::Sell
                };
                let mut t = tick(
                    1_000 + rng.next_u64() % 1_000,
                    100.0 + rng.normal(),
                    rng.uniform() * 3.0,
                    side,
                    offsets[partition as usize],
                );
                t.pos.partition = partition;
                t
            })
            .collect();
        // Each partition folded in offset order (the order it was read in).
        let mut partials: BTreeMap<i32, PartialBar> = BTreeMap::new();
        for t in &ticks {
            match partials.get_mut(&t.pos.partition) {
                Some(p) => p.add(&t.view()),
                None => {
                    partials.insert(t.pos.partition, PartialBar::new(&t.view(), 2_000));
                }
            }
        }
        let mut parts: Vec<PartialBar> = partials.into_values().collect();
        if round % 2 == 1 {
            parts.reverse();
        }
        let mut all = ticks.clone();
        assert_eq!(
            merge("BTC-USD", 1_000, 2_000, &mut parts),
            aggregate("BTC-USD", 1_000, 2_000, &mut all)
        );
    }
}
