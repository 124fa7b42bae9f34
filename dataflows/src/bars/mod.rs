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
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::Capability;
use timely::dataflow::StreamVec;

use crate::num::{stable_hash, F64};
use crate::snapshot::{decode, encode, route, Cuts, Entry, Key, Op, Piece, Restored};
use crate::tick::{Side, Tick, TickRef};

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
    pub fn new(tick: &TickRef<'_>, end_ms: u64) -> Self {
        let at = (tick.ts_ms, tick.pos.offset, tick.price);
        let mut p = PartialBar {
            symbol: tick.symbol.to_string(),
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
    pub fn add(&mut self, tick: &TickRef<'_>) {
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

    fn sum(&mut self, tick: &TickRef<'_>) {
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
    /// Per symbol, its partials and the time of the message each came in.
    by_symbol: BTreeMap<String, (Vec<PartialBar>, Vec<u64>)>,
}

/// One symbol's bar state in a snapshot: the partials of its open bars
/// that came before the cut, and its last close (for gap filling).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BarsSnapshot {
    /// The last emitted bar's (end, close).
    pub last: Option<(u64, F64)>,
    /// Partials of bars not closed at the cut, by (end, partition).
    pub open: Vec<PartialBar>,
}

/// Builds the bars operator: partial bars (from the source) are exchanged
/// by symbol, bars come out at their end time on the worker that owns the
/// symbol. With `snapshot_every` (ms), the second stream carries a
/// [`Piece`] whenever the frontier passes cut times: per symbol, a
/// [`BarsSnapshot`] of the state at the cut (bars ending before it closed,
/// partials from messages before it held), one piece per range of cuts the
/// state does not change across. `restore` brings the [`BarsSnapshot`]s
/// of a snapshot the run starts from, at time 0; no bar closes before they
/// are in.
pub fn bars<'s>(
    partials: StreamVec<'s, u64, PartialBar>,
    restore: StreamVec<'s, u64, Restored>,
    config: BarConfig,
    snapshot_every: Option<Cuts>,
) -> (StreamVec<'s, u64, Bar>, StreamVec<'s, u64, Piece>) {
    let interval = config.interval_ms.max(1);
    let config = BarConfig {
        interval_ms: interval,
        ..config
    };
    let scope = partials.scope();
    let worker = scope.index();
    let mut builder = OperatorBuilder::new("Bars".to_owned(), scope);
    let mut input = builder.new_input(
        partials,
        Exchange::new(|p: &PartialBar| stable_hash(&p.symbol)),
    );
    let mut restore_input =
        builder.new_input(restore, Exchange::new(|r: &Restored| route(&r.entry.key)));
    let (bars_out, bars) = builder.new_output::<Vec<Bar>>();
    let (piece_out, pieces) = builder.new_output::<Vec<Piece>>();
    let mut bars_out = OutputBuilder::from(bars_out);
    let mut piece_out = OutputBuilder::from(piece_out);
    builder.build(move |mut caps| {
        // Held until the input ends: pieces go out at time 0.
        let mut piece_cap = caps.pop();
        drop(caps);
        // Open bars by end time; each holds a capability for its end.
        let mut open: BTreeMap<u64, OpenBar> = BTreeMap::new();
        // Last emitted (end, close) per symbol, for gap filling.
        let mut last: BTreeMap<String, (u64, F64)> = BTreeMap::new();
        // Cuts up to here have had their piece.
        let mut pieced: u64 = 0;
        move |frontiers| {
            // Restored partials came before the cut: message time 0.
            restore_input.for_each_stamp(|cap, data| {
                for r in data.flat_map(|d| d.drain(..)) {
                    let Key::Symbol(symbol) = r.entry.key else {
                        continue;
                    };
                    let snap: BarsSnapshot =
                        decode(&r.entry.bytes).expect("restored state is checked before the run");
                    if let Some(l) = snap.last {
                        last.insert(symbol, l);
                    }
                    for part in snap.open {
                        add_partial(&mut open, part, 0, |end| cap.delayed(&end, 0));
                    }
                }
            });
            input.for_each_stamp(|cap, data| {
                let Some(&time) = cap.least() else { return };
                for part in data.flat_map(|d| d.drain(..)) {
                    add_partial(&mut open, part, time, |end| cap.delayed(&end, 0));
                }
            });
            let mut output = bars_out.activate();
            // Closes the bars that end before `upto_excl`.
            let mut close = |upto_excl: u64,
                             open: &mut BTreeMap<u64, OpenBar>,
                             last: &mut BTreeMap<String, (u64, F64)>| {
                while let Some(entry) = open.first_entry() {
                    let end = *entry.key();
                    if end >= upto_excl {
                        break;
                    }
                    let OpenBar { cap, by_symbol } = entry.remove();
                    let mut session = output.session(&cap);
                    for (symbol, (mut parts, _)) in by_symbol {
                        let bar = merge(&symbol, end - interval, end, &mut parts);
                        let (fill, after_gap) =
                            fill_gap(&symbol, last.get(&symbol).copied(), bar.start_ms, config);
                        session.give_iterator(fill.into_iter());
                        last.insert(symbol, (bar.end_ms, bar.close));
                        session.give(Bar { after_gap, ..bar });
                    }
                }
            };
            let frontier = frontiers
                .iter()
                .filter_map(|f| f.frontier().first().copied())
                .min();
            let Some(f) = frontier else {
                close(u64::MAX, &mut open, &mut last);
                piece_cap = None;
                return;
            };
            if let (Some(cuts), Some(pc)) = (snapshot_every.as_ref(), piece_cap.as_ref()) {
                while cuts.crosses(pieced, f) {
                    let cut = cuts.next(pieced);
                    close(cut, &mut open, &mut last);
                    // Valid from the cut on: bars ending before it are
                    // closed, which is too many for an earlier cut.
                    let piece = Piece::timed(Op::Bars, worker, cut - 1, || {
                        bars_piece(cut, f, &open, &last)
                    });
                    pieced = piece.upto;
                    piece_out.activate().session(pc).give(piece);
                }
            }
            close(f.saturating_add(1), &mut open, &mut last);
            pieced = pieced.max(f);
        }
    });
    (bars, pieces)
}

/// Adds `part`, which came in a message at `time`, to its open bar,
/// opening the bar with the capability `cap_at` gives for its end.
fn add_partial(
    open: &mut BTreeMap<u64, OpenBar>,
    part: PartialBar,
    time: u64,
    cap_at: impl FnOnce(u64) -> Capability<u64>,
) {
    let end = part.end_ms;
    let slot = open.entry(end).or_insert_with(|| OpenBar {
        cap: cap_at(end),
        by_symbol: BTreeMap::new(),
    });
    match slot.by_symbol.get_mut(part.symbol.as_str()) {
        Some((parts, times)) => {
            parts.push(part);
            times.push(time);
        }
        None => {
            slot.by_symbol
                .insert(part.symbol.clone(), (vec![part], vec![time]));
        }
    }
}

/// The state at `cut` once every bar ending before it has closed, with the
/// range it holds for: until the next bar end or message time at or after
/// the cut, at most `frontier`.
fn bars_piece(
    cut: u64,
    frontier: u64,
    open: &BTreeMap<u64, OpenBar>,
    last: &BTreeMap<String, (u64, F64)>,
) -> (u64, Vec<Entry>) {
    let mut upto = frontier;
    let mut by_symbol: BTreeMap<&str, BarsSnapshot> = last
        .iter()
        .map(|(s, l)| {
            (
                s.as_str(),
                BarsSnapshot {
                    last: Some(*l),
                    open: Vec::new(),
                },
            )
        })
        .collect();
    for (&end, bar) in open {
        upto = upto.min(end);
        for (symbol, (parts, times)) in &bar.by_symbol {
            for (part, time) in parts.iter().zip(times) {
                if *time >= cut {
                    upto = upto.min(*time);
                    continue;
                }
                by_symbol
                    .entry(symbol.as_str())
                    .or_insert_with(|| BarsSnapshot {
                        last: None,
                        open: Vec::new(),
                    })
                    .open
                    .push(part.clone());
            }
        }
    }
    let entries = by_symbol
        .into_iter()
        .map(|(symbol, mut snap)| {
            snap.open.sort_by_key(|p| (p.end_ms, p.partition));
            Entry {
                op: Op::Bars,
                key: Key::Symbol(symbol.to_string()),
                bytes: encode(&snap),
            }
        })
        .collect();
    (upto, entries)
}

#[cfg(test)]
mod tests;
