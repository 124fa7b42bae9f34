//! OHLCV bars per symbol per fixed interval, closed by the frontier.
//!
//! A bar covers event times `[start, start + interval)`. It is emitted, at
//! timely time `end`, once the input frontier has passed `end`, so no tick
//! that belongs to it can still arrive. Ticks inside a bar are ordered by
//! (event time, partition, offset) before aggregation, which makes every
//! field (including floating-point sums) independent of arrival order and of
//! the number of workers. Intervals with no trade between two traded bars of
//! a symbol are filled with flat bars (open = high = low = close = previous
//! close, zero volume, `filled = true`), up to `max_fill` bars; a longer
//! silence starts the symbol afresh (`after_gap = true` on the next bar) so
//! models never see a fake flat hour.
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

/// Aggregates the ticks of one symbol in one bar. `ticks` must be non-empty;
/// they are sorted here, so the caller's order does not matter.
pub fn aggregate(symbol: &str, start_ms: u64, end_ms: u64, ticks: &mut [Tick]) -> Bar {
    ticks.sort_by_key(|t| (t.ts_ms, t.pos));
    let first = ticks[0].price.0;
    let mut bar = Bar {
        symbol: symbol.to_string(),
        start_ms,
        end_ms,
        open: F64(first),
        high: F64(first),
        low: F64(first),
        close: F64(first),
        volume: F64(0.0),
        buy_volume: F64(0.0),
        vwap: F64(first),
        trades: 0,
        filled: false,
        after_gap: false,
    };
    let mut notional = 0.0;
    for t in ticks.iter() {
        let (p, s) = (t.price.0, t.size.0);
        bar.high.0 = bar.high.0.max(p);
        bar.low.0 = bar.low.0.min(p);
        bar.close.0 = p;
        bar.volume.0 += s;
        if t.side == Side::Buy {
            bar.buy_volume.0 += s;
        }
        notional += p * s;
        bar.trades += 1;
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
    by_symbol: BTreeMap<String, Vec<Tick>>,
}

/// Builds the bars operator: ticks are exchanged by symbol, bars come out
/// at their end time on the worker that owns the symbol.
pub fn bars<'s>(ticks: StreamVec<'s, u64, Tick>, config: BarConfig) -> StreamVec<'s, u64, Bar> {
    let interval = config.interval_ms.max(1);
    let config = BarConfig {
        interval_ms: interval,
        ..config
    };
    ticks.unary_frontier(
        Exchange::new(|t: &Tick| stable_hash(&t.symbol)),
        "Bars",
        move |_cap, _info| {
            // Open bars by end time; each holds a capability for its end.
            let mut open: BTreeMap<u64, OpenBar> = BTreeMap::new();
            // Last emitted (end, close) per symbol, for gap filling.
            let mut last: BTreeMap<String, (u64, F64)> = BTreeMap::new();
            move |(input, frontier), output| {
                input.for_each_stamp(|cap, data| {
                    for tick in data.flat_map(|d| d.drain(..)) {
                        let (_, end) = bar_bounds(tick.ts_ms, interval);
                        let slot = open.entry(end).or_insert_with(|| OpenBar {
                            cap: cap.delayed(&end, output.output_index()),
                            by_symbol: BTreeMap::new(),
                        });
                        slot.by_symbol
                            .entry(tick.symbol.clone())
                            .or_default()
                            .push(tick);
                    }
                });
                while let Some(entry) = open.first_entry() {
                    let end = *entry.key();
                    if frontier.less_than(&end) {
                        break;
                    }
                    let OpenBar { cap, by_symbol } = entry.remove();
                    let mut session = output.session(&cap);
                    for (symbol, mut ticks) in by_symbol {
                        let bar = aggregate(&symbol, end - interval, end, &mut ticks);
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
}
