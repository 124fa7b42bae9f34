//! Recent history the dashboard's charts need, kept in memory by the live
//! view: bars per symbol, scores per (symbol, horizon, model) and champion
//! changes per (symbol, horizon). Each window is bounded (the constants
//! below), so memory per symbol is fixed however long the pipeline runs;
//! older ranges are read from the Delta tables (see `charts.rs`).
//!
//! Time semantics: every entry carries its event time; windows are ordered
//! by it because deliveries arrive in increasing event time. Pushing is O(1)
//! (it runs on the delivery router's hot path); never rescans a window.

use std::collections::{BTreeMap, VecDeque};

use dataflows::bars::Bar;
use dataflows::champion::Champion;
use dataflows::predict::Score;
use serde::Serialize;
use utoipa::ToSchema;

use super::types::ChampionView;

/// Bars kept in memory per symbol.
pub const BARS_PER_SYMBOL: usize = 2_000;
/// Scores kept in memory per (symbol, horizon, model).
pub const SCORES_PER_MODEL: usize = 1_000;
/// Champion changes kept in memory per (symbol, horizon).
pub const CHAMPIONS_PER_SERIES: usize = 100;

/// One bar as the API serves it.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct BarPoint {
    /// First instant of the bar (epoch ms).
    pub start_ms: u64,
    /// End of the bar, exclusive (epoch ms).
    pub end_ms: u64,
    /// First trade price.
    pub open: f64,
    /// Highest trade price.
    pub high: f64,
    /// Lowest trade price.
    pub low: f64,
    /// Last trade price.
    pub close: f64,
    /// Sum of trade sizes.
    pub volume: f64,
    /// Number of trades.
    pub trades: u32,
    /// A gap-filling flat bar without trades.
    pub filled: bool,
}

impl From<&Bar> for BarPoint {
    fn from(b: &Bar) -> Self {
        BarPoint {
            start_ms: b.start_ms,
            end_ms: b.end_ms,
            open: b.open.0,
            high: b.high.0,
            low: b.low.0,
            close: b.close.0,
            volume: b.volume.0,
            trades: b.trades,
            filled: b.filled,
        }
    }
}

/// One scored prediction as the API serves it.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct ScorePoint {
    /// Model name.
    pub model: String,
    /// When the prediction was made (bar close, epoch ms).
    pub made_at_ms: u64,
    /// When its outcome became known (epoch ms).
    pub target_at_ms: u64,
    /// Predicted log return.
    pub predicted_return: f64,
    /// Realised log return.
    pub realized_return: f64,
    /// Whether the outcome fell in the 80% interval (null: no interval yet).
    pub covered: Option<bool>,
}

/// A score without its series key (the key is the window's).
#[derive(Clone, Copy, Debug)]
struct Scored {
    made_at_ms: u64,
    target_at_ms: u64,
    predicted: f64,
    realized: f64,
    covered: Option<bool>,
}

/// One champion change: who became champion of a series, when (event
/// time of the change), since when and why.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct ChampionChange {
    /// Horizon in bars.
    pub horizon_bars: u32,
    /// Event time the dataflow made the change (ms).
    pub at_ms: u64,
    /// The champion.
    pub champion: ChampionView,
}

/// The windows.
#[derive(Default)]
pub struct History {
    bars: BTreeMap<String, VecDeque<BarPoint>>,
    /// (symbol, horizon) → model → scores by target time.
    scores: BTreeMap<(String, u32), BTreeMap<String, VecDeque<Scored>>>,
    champions: BTreeMap<String, VecDeque<ChampionChange>>,
    /// Per symbol, the end of the last bar that had trades (event ms).
    last_trade_bar: BTreeMap<String, u64>,
}

fn push_bounded<T>(q: &mut VecDeque<T>, cap: usize, v: T) {
    if q.len() == cap {
        q.pop_front();
    }
    q.push_back(v);
}

impl History {
    /// Records a closed bar.
    pub fn bar(&mut self, b: &Bar) {
        if !b.filled {
            self.last_trade_bar.insert(b.symbol.clone(), b.end_ms);
        }
        let q = match self.bars.get_mut(&b.symbol) {
            Some(q) => q,
            None => self.bars.entry(b.symbol.clone()).or_default(),
        };
        push_bounded(q, BARS_PER_SYMBOL, BarPoint::from(b));
    }

    /// Records a score.
    pub fn score(&mut self, s: &Score) {
        let key = (s.symbol.clone(), s.horizon_bars);
        let models = self.scores.entry(key).or_default();
        let q = match models.get_mut(&s.model) {
            Some(q) => q,
            None => models.entry(s.model.clone()).or_default(),
        };
        push_bounded(
            q,
            SCORES_PER_MODEL,
            Scored {
                made_at_ms: s.made_at_ms,
                target_at_ms: s.target_at_ms,
                predicted: s.predicted_return.0,
                realized: s.realized_return.0,
                covered: s.covered,
            },
        );
    }

    /// Records a new champion of (symbol, horizon) at event time `at_ms`.
    pub fn champion(&mut self, symbol: &str, horizon_bars: u32, at_ms: u64, c: &Champion) {
        let q = self.champions.entry(symbol.to_string()).or_default();
        push_bounded(
            q,
            CHAMPIONS_PER_SERIES * 4,
            ChampionChange {
                horizon_bars,
                at_ms,
                champion: ChampionView::from(c),
            },
        );
    }

    /// Symbols with bars, in order.
    pub fn symbols(&self) -> impl Iterator<Item = &String> {
        self.bars.keys()
    }

    /// Bars of `symbol` ending after `since_ms`, at most `limit`, oldest
    /// first; and the start of the oldest bar held (None: none held).
    pub fn bars(&self, symbol: &str, since_ms: u64, limit: usize) -> (Vec<BarPoint>, Option<u64>) {
        let Some(q) = self.bars.get(symbol) else {
            return (Vec::new(), None);
        };
        let from = q.partition_point(|b| b.end_ms <= since_ms);
        let out = q.range(from..).take(limit).cloned().collect();
        (out, q.front().map(|b| b.start_ms))
    }

    /// The last `n` bars of `symbol`, oldest first.
    pub fn last_bars(&self, symbol: &str, n: usize) -> Vec<BarPoint> {
        self.bars.get(symbol).map_or_else(Vec::new, |q| {
            q.range(q.len().saturating_sub(n)..).cloned().collect()
        })
    }

    /// End of the last bar of `symbol` that had trades.
    pub fn last_trade_bar(&self, symbol: &str) -> Option<u64> {
        self.last_trade_bar.get(symbol).copied()
    }

    /// Scores of (symbol, horizon) with outcomes after `since_ms` (None:
    /// the latest), of one model or all, at most `limit` per model, by
    /// (target time, model); and the oldest target time held.
    pub fn scores(
        &self,
        symbol: &str,
        horizon_bars: u32,
        model: Option<&str>,
        since_ms: Option<u64>,
        limit: usize,
    ) -> (Vec<ScorePoint>, Option<u64>) {
        let Some(models) = self.scores.get(&(symbol.to_string(), horizon_bars)) else {
            return (Vec::new(), None);
        };
        let mut out = Vec::new();
        let mut oldest: Option<u64> = None;
        for (name, q) in models.iter().filter(|(m, _)| model.is_none_or(|x| x == *m)) {
            if let Some(f) = q.front() {
                oldest = Some(oldest.map_or(f.target_at_ms, |o| o.min(f.target_at_ms)));
            }
            let from = match since_ms {
                Some(t) => q.partition_point(|s| s.target_at_ms <= t),
                None => q.len().saturating_sub(limit),
            };
            out.extend(q.range(from..).take(limit).map(|s| ScorePoint {
                model: name.clone(),
                made_at_ms: s.made_at_ms,
                target_at_ms: s.target_at_ms,
                predicted_return: s.predicted,
                realized_return: s.realized,
                covered: s.covered,
            }));
        }
        out.sort_by(|a, b| (a.target_at_ms, &a.model).cmp(&(b.target_at_ms, &b.model)));
        (out, oldest)
    }

    /// Horizons with scores for `symbol`.
    pub fn score_horizons(&self, symbol: &str) -> Vec<u32> {
        self.scores
            .range((symbol.to_string(), 0)..=(symbol.to_string(), u32::MAX))
            .map(|((_, h), _)| *h)
            .collect()
    }

    /// Champion changes of `symbol`, oldest first.
    pub fn champions(&self, symbol: &str) -> Vec<ChampionChange> {
        self.champions
            .get(symbol)
            .map_or_else(Vec::new, |q| q.iter().cloned().collect())
    }
}
