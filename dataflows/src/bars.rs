//! OHLCV bars per symbol per fixed interval, closed by the frontier.
//!
//! A bar covers event times `[start, start + interval)`. It is emitted, at
//! timely time `end`, once the input frontier has passed `end`, so no tick
//! that belongs to it can still arrive.
//!
//! Ticks do not travel to the bars one by one. The source folds each
//! accepted tick into a [`PartialBar`] for its (symbol, partition, bar) in
//! the partition's offset order, and emits the partial once its capability
//! has passed the bar's end (a later tick of that bar would be late and is
//! rejected there). Only partials are exchanged, by symbol; [`merge`] joins a
//! bar's partials in partition order. A partition is always read whole, in
//! offset order, by one worker, so every field (including the floating-point
//! sums) is independent of arrival timing and of the number of workers and
//! processes. The exact definition, which [`aggregate`] implements directly
//! from ticks (the tests' oracle): open and close are the trades first and
//! last by (event time, partition, offset); high and low are exact; volume,
//! buy volume and the notional behind the VWAP are summed per partition in
//! offset order, then those sums are added in partition order.
//!
//! Intervals with no trade between two traded bars of a symbol are filled
//! with flat bars (open = high = low = close = previous close, zero volume,
//! `filled = true`), up to `max_fill` bars; a longer silence starts the
//! symbol afresh (`after_gap = true` on the next bar) so models never see a
//! fake flat hour.
//!
//! Never emits a bar before its end has passed; never drops an accepted tick.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Capability;
use timely::dataflow::StreamVec;

use crate::num::{stable_hash, F64};
use crate::tick::{Side, Tick};

/// One closed bar.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Bar {
    /// Symbol.
    pub symbol: String,
    /// Inclusive start, epoch ms.
    pub start_ms: u64,
    /// Exclusive end, epoch ms (the bar's timely time).
    pub end_ms: u64,
    /// First trade price.
    pub open: F64,
    /// Highest trade price.
    pub high: F64,
    /// Lowest trade price.
    pub low: F64,
    /// Last trade price.
    pub close: F64,
    /// Sum of sizes.
    pub volume: F64,
    /// Sum of sizes where the taker bought.
    pub buy_volume: F64,
    /// Volume-weighted average price (close for a flat bar).
    pub vwap: F64,
    /// Number of trades.
    pub trades: u32,
    /// True for a gap-filling flat bar with no trades.
    pub filled: bool,
    /// True when the previous bar of this symbol is too far back to fill.
    pub after_gap: bool,
}

/// Bar length unless configured, ms.
pub const DEFAULT_BAR_MS: u64 = 1_000;

/// Bar settings.
#[derive(Clone, Copy, Debug)]
pub struct BarConfig {
    /// Bar length in ms.
    pub interval_ms: u64,
    /// Longest run of flat bars filled between two traded bars.
    pub max_fill: u64,
}

impl Default for BarConfig {
    fn default() -> Self {
        BarConfig {
            interval_ms: DEFAULT_BAR_MS,
            max_fill: 300,
        }
    }
}

/// The bar a tick at `ts` belongs to: (start, end).
pub fn bar_bounds(ts_ms: u64, interval_ms: u64) -> (u64, u64) {
    let start = ts_ms - ts_ms % interval_ms;
    (start, start + interval_ms)
}

/// The ticks of one symbol in one bar that one partition holds, folded in
/// the partition's offset order: what the source sends to the bars.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PartialBar {
    /// Symbol.
    pub symbol: String,
    /// The bar's end (exclusive), epoch ms.
    pub end_ms: u64,
    /// The partition the ticks came from.
    pub partition: i32,
    /// (event time, offset, price) of the first trade by (event time, offset).
    pub first: (u64, i64, F64),
    /// (event time, offset, price) of the last trade by (event time, offset).
    pub last: (u64, i64, F64),
    /// Highest price.
    pub high: F64,
    /// Lowest price.
    pub low: F64,
    /// Sum of sizes, in offset order.
    pub volume: F64,
    /// Sum of sizes where the taker bought, in offset order.
    pub buy_volume: F64,
    /// Sum of price × size, in offset order.
    pub notional: F64,
    /// Number of trades.
    pub trades: u32,
}

impl PartialBar {
    /// A partial of the bar ending at `end_ms` holding `tick` alone.
    pub fn new(tick: &Tick, end_ms: u64) -> Self {
        let at = (tick.ts_ms, tick.pos.offset, tick.price);
        let mut p = PartialBar {
            symbol: tick.symbol.clone(),
            end_ms,
            partition: tick.pos.partition,
            first: at,
            last: at,
            high: tick.price,
            low: tick.price,
            volume: F64(0.0),
            buy_volume: F64(0.0),
            notional: F64(0.0),
            trades: 0,
        };
        p.sum(tick);
        p
    }

    /// Folds in the next tick of the same (symbol, partition, bar), in offset order.
    pub fn add(&mut self, tick: &Tick) {
        let at = (tick.ts_ms, tick.pos.offset, tick.price);
        if (at.0, at.1) < (self.first.0, self.first.1) {
            self.first = at;
        }
        if (at.0, at.1) > (self.last.0, self.last.1) {
            self.last = at;
        }
        self.high.0 = self.high.0.max(tick.price.0);
        self.low.0 = self.low.0.min(tick.price.0);
        self.sum(tick);
    }

    fn sum(&mut self, tick: &Tick) {
        let (p, s) = (tick.price.0, tick.size.0);
        self.volume.0 += s;
        if tick.side == Side::Buy {
            self.buy_volume.0 += s;
        }
        self.notional.0 += p * s;
        self.trades += 1;
    }
}

/// The bar of `symbol` over `[start_ms, end_ms)` from its partials (at least
/// one; any order: they are put in partition order here).
pub fn merge(symbol: &str, start_ms: u64, end_ms: u64, parts: &mut [PartialBar]) -> Bar {
    parts.sort_by_key(|p| p.partition);
    let key = |(ts, offset, _): (u64, i64, F64), partition: i32| (ts, partition, offset);
    let open = parts
        .iter()
        .min_by_key(|p| key(p.first, p.partition))
        .expect("a bar has a partial")
        .first
        .2;
    let close = parts
        .iter()
        .max_by_key(|p| key(p.last, p.partition))
        .expect("a bar has a partial")
        .last
        .2;
    let mut bar = Bar {
        symbol: symbol.to_string(),
        start_ms,
        end_ms,
        open,
        high: open,
        low: open,
        close,
        volume: F64(0.0),
        buy_volume: F64(0.0),
        vwap: open,
        trades: 0,
        filled: false,
        after_gap: false,
    };
    let mut notional = 0.0;
    for p in parts.iter() {
        bar.high.0 = bar.high.0.max(p.high.0);
        bar.low.0 = bar.low.0.min(p.low.0);
        bar.volume.0 += p.volume.0;
        bar.buy_volume.0 += p.buy_volume.0;
        notional += p.notional.0;
        bar.trades += p.trades;
    }
    if bar.volume.0 > 0.0 && (notional / bar.volume.0).is_finite() {
        bar.vwap.0 = notional / bar.volume.0;
    }
    bar
}

/// Aggregates the ticks of one symbol in one bar straight from the
/// definition (module doc), without partials: the reference the dataflow's
/// bars are tested against. `ticks` must be non-empty; they are sorted
/// here, so the caller's order does not matter.
pub fn aggregate(symbol: &str, start_ms: u64, end_ms: u64, ticks: &mut [Tick]) -> Bar {
    ticks.sort_by_key(|t| (t.ts_ms, t.pos));
    let (first, last) = (ticks[0].price, ticks[ticks.len() - 1].price);
    let mut bar = Bar {
        symbol: symbol.to_string(),
        start_ms,
        end_ms,
        open: first,
        high: first,
        low: first,
        close: last,
        volume: F64(0.0),
        buy_volume: F64(0.0),
        vwap: first,
        trades: ticks.len() as u32,
        filled: false,
        after_gap: false,
    };
    for t in ticks.iter() {
        bar.high.0 = bar.high.0.max(t.price.0);
        bar.low.0 = bar.low.0.min(t.price.0);
    }
    // Sums: per partition in offset order, then across partitions in order.
    ticks.sort_by_key(|t| (t.pos.partition, t.pos.offset));
    let mut notional = 0.0;
    for group in ticks.chunk_by(|a, b| a.pos.partition == b.pos.partition) {
        let (mut v, mut b, mut n) = (0.0, 0.0, 0.0);
        for t in group {
            v += t.size.0;
            if t.side == Side::Buy {
                b += t.size.0;
            }
            n += t.price.0 * t.size.0;
        }
        bar.volume.0 += v;
        bar.buy_volume.0 += b;
        notional += n;
    }
    if bar.volume.0 > 0.0 && (notional / bar.volume.0).is_finite() {
        bar.vwap.0 = notional / bar.volume.0;
    }
    bar
}

/// A flat bar continuing `prev_close` over `[start, start + interval)`.
pub fn flat_bar(symbol: &str, start_ms: u64, interval_ms: u64, prev_close: F64) -> Bar {
    Bar {
        symbol: symbol.to_string(),
        start_ms,
        end_ms: start_ms + interval_ms,
        open: prev_close,
        high: prev_close,
        low: prev_close,
        close: prev_close,
        volume: F64(0.0),
        buy_volume: F64(0.0),
        vwap: prev_close,
        trades: 0,
        filled: true,
        after_gap: false,
    }
}

/// Gap handling between the last emitted bar of a symbol and a new one:
/// returns the flat bars to insert and whether the new bar follows a gap.
pub fn fill_gap(
    symbol: &str,
    last: Option<(u64, F64)>,
    next_start: u64,
    config: BarConfig,
) -> (Vec<Bar>, bool) {
    let Some((last_end, last_close)) = last else {
        return (Vec::new(), false);
    };
    if next_start <= last_end {
        return (Vec::new(), false);
    }
    let missing = (next_start - last_end) / config.interval_ms;
    if missing > config.max_fill {
        return (Vec::new(), true);
    }
    let bars = (0..missing)
        .map(|k| {
            flat_bar(
                symbol,
                last_end + k * config.interval_ms,
                config.interval_ms,
                last_close,
            )
        })
        .collect();
    (bars, false)
}

struct OpenBar {
    cap: Capability<u64>,
    by_symbol: BTreeMap<String, Vec<PartialBar>>,
}

/// Builds the bars operator: partial bars (from the source) are exchanged
/// by symbol, bars come out at their end time on the worker that owns the
/// symbol.
pub fn bars<'s>(
    partials: StreamVec<'s, u64, PartialBar>,
    config: BarConfig,
) -> StreamVec<'s, u64, Bar> {
    let interval = config.interval_ms.max(1);
    let config = BarConfig {
        interval_ms: interval,
        ..config
    };
    partials.unary_frontier(
        Exchange::new(|p: &PartialBar| stable_hash(&p.symbol)),
        "Bars",
        move |_cap, _info| {
            // Open bars by end time; each holds a capability for its end.
            let mut open: BTreeMap<u64, OpenBar> = BTreeMap::new();
            // Last emitted (end, close) per symbol, for gap filling.
            let mut last: BTreeMap<String, (u64, F64)> = BTreeMap::new();
            move |(input, frontier), output| {
                input.for_each_stamp(|cap, data| {
                    for part in data.flat_map(|d| d.drain(..)) {
                        let end = part.end_ms;
                        let slot = open.entry(end).or_insert_with(|| OpenBar {
                            cap: cap.delayed(&end, output.output_index()),
                            by_symbol: BTreeMap::new(),
                        });
                        match slot.by_symbol.get_mut(part.symbol.as_str()) {
                            Some(parts) => parts.push(part),
                            None => {
                                slot.by_symbol.insert(part.symbol.clone(), vec![part]);
                            }
                        }
                    }
                });
                while let Some(entry) = open.first_entry() {
                    let end = *entry.key();
                    if frontier.less_than(&end) {
                        break;
                    }
                    let OpenBar { cap, by_symbol } = entry.remove();
                    let mut session = output.session(&cap);
                    for (symbol, mut parts) in by_symbol {
                        let bar = merge(&symbol, end - interval, end, &mut parts);
                        let (fill, after_gap) =
                            fill_gap(&symbol, last.get(&symbol).copied(), bar.start_ms, config);
                        session.give_iterator(fill.into_iter());
                        last.insert(symbol, (bar.end_ms, bar.close));
                        session.give(Bar { after_gap, ..bar });
                    }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
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
                    Some(p) => p.add(t),
                    None => {
                        partials.insert(t.pos.partition, PartialBar::new(t, 2_000));
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
}
