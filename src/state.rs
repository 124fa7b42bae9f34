//! The live view the HTTP server reads: current best prediction and champion
//! per (symbol, horizon), and counters. It is updated only from complete
//! dataflow deliveries (see `dataflows::graph`), so a reader always sees the
//! state as of one event time, never half of one.

use std::collections::BTreeMap;
use std::sync::RwLock;

use dataflows::champion::Champion;
use dataflows::predict::Prediction;
use dataflows::{Delivery, Output};
use serde::Serialize;

/// Counters shown by `/api/health`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Stats {
    /// Ticks accepted into closed bars.
    pub ticks: u64,
    /// Bars closed (including gap-filled ones).
    pub bars: u64,
    /// Predictions made.
    pub predictions: u64,
    /// Predictions scored.
    pub scores: u64,
    /// Rejects by reason code.
    pub rejects: BTreeMap<String, u64>,
    /// Latest event time fully processed (ms), if any.
    pub event_time_ms: Option<u64>,
}

/// One best prediction with its champion.
#[derive(Clone, Debug, PartialEq)]
pub struct BestEntry {
    /// The champion's current prediction.
    pub prediction: Prediction,
    /// Why that model is champion.
    pub champion: Champion,
}

#[derive(Default)]
struct View {
    best: BTreeMap<(String, u32), BestEntry>,
    stats: Stats,
}

/// Shared between the delivery router (writer) and HTTP handlers (readers).
#[derive(Default)]
pub struct AppState {
    view: RwLock<View>,
}

impl AppState {
    /// An empty view.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one complete delivery.
    pub fn apply(&self, d: &Delivery) {
        let mut v = self.view.write().unwrap_or_else(|e| e.into_inner());
        // Retractions first: a delivery may replace a key's best entry.
        for o in &d.outputs {
            if let Output::Best(p, c, diff) = o {
                if *diff < 0 {
                    let key = (p.symbol.clone(), p.horizon_bars);
                    if v.best
                        .get(&key)
                        .is_some_and(|e| &e.prediction == p && &e.champion == c)
                    {
                        v.best.remove(&key);
                    }
                }
            }
        }
        for o in &d.outputs {
            match o {
                Output::Best(p, c, diff) if *diff > 0 => {
                    let key = (p.symbol.clone(), p.horizon_bars);
                    v.best.insert(
                        key,
                        BestEntry {
                            prediction: p.clone(),
                            champion: c.clone(),
                        },
                    );
                }
                Output::Bar(b) => {
                    v.stats.bars += 1;
                    v.stats.ticks += u64::from(b.trades);
                }
                Output::Prediction(_) => v.stats.predictions += 1,
                Output::Score(_) => v.stats.scores += 1,
                Output::Reject(r) => {
                    *v.stats
                        .rejects
                        .entry(r.reason.code().to_string())
                        .or_default() += 1
                }
                _ => {}
            }
        }
        if d.time > 0 {
            v.stats.event_time_ms = Some(v.stats.event_time_ms.map_or(d.time, |t| t.max(d.time)));
        }
    }

    /// All best predictions, by (symbol, horizon).
    pub fn best(&self) -> Vec<BestEntry> {
        let v = self.view.read().unwrap_or_else(|e| e.into_inner());
        v.best.values().cloned().collect()
    }

    /// Best predictions of one symbol.
    pub fn best_for(&self, symbol: &str) -> Vec<BestEntry> {
        let v = self.view.read().unwrap_or_else(|e| e.into_inner());
        v.best
            .range((symbol.to_string(), 0)..=(symbol.to_string(), u32::MAX))
            .map(|(_, e)| e.clone())
            .collect()
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        self.view
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .stats
            .clone()
    }
}
