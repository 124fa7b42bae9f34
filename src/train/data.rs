//! Training examples: feature rows joined with the realised return that
//! followed them, read from the warehouse (`features` and `bars`) or, in
//! tests and benchmarks, from dataflow deliveries (the same rows).
//!
//! An example of (symbol, horizon h) is the feature row at bar close `t`
//! and the log return from the close at `t` to the close at
//! `t + h·interval` (the bar's own interval). It is in the window
//! [`start`, `end`) of a training only if that outcome is known by `end`:
//! `t ≥ start` and `t + h·interval ≤ end`. Rows are sorted by time, so the
//! examples do not depend on file or delivery order.

use std::collections::BTreeMap;
use std::path::Path;

use crate::warehouse::columns::{self, Columns};
use crate::warehouse::read;
use dataflows::features::{FEATURES, FEATURE_COUNT};
use dataflows::num::utc_day;
use dataflows::{Delivery, Output};

/// Feature rows and closes of every symbol over a span of event time.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TrainRows {
    /// Per symbol: (bar close, feature values), sorted by time.
    features: BTreeMap<String, Vec<(u64, [f64; FEATURE_COUNT])>>,
    /// Per symbol: bar end → (close, interval ms).
    closes: BTreeMap<String, BTreeMap<u64, (f64, u64)>>,
}

/// The examples of one (symbol, horizon), in time order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Examples {
    /// Symbol.
    pub symbol: String,
    /// Horizon in bars.
    pub horizon_bars: u32,
    /// Bar close of each feature row.
    pub times: Vec<u64>,
    /// When each outcome became known.
    pub targets_at: Vec<u64>,
    /// Feature values, in [`FEATURES`] order.
    pub x: Vec<[f64; FEATURE_COUNT]>,
    /// Realised log returns.
    pub y: Vec<f64>,
}

impl Examples {
    /// Number of examples.
    pub fn len(&self) -> usize {
        self.y.len()
    }

    /// True without examples.
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }
}

/// Reading the warehouse failed, or a table's columns are not what the
/// catalog says.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The table could not be read.
    #[error(transparent)]
    Read(#[from] read::Error),
    /// A column is missing or of another type.
    #[error("table `{table}`: {source}")]
    Column {
        /// Table.
        table: &'static str,
        /// What is wrong.
        source: columns::Error,
    },
}

impl TrainRows {
    /// The rows of `deliveries` (their features and bars).
    pub fn from_deliveries<'d>(deliveries: impl IntoIterator<Item = &'d Delivery>) -> Self {
        let mut rows = TrainRows::default();
        for d in deliveries {
            for o in d.inserted() {
                match o {
                    Output::Features(f) => rows
                        .features
                        .entry(f.symbol.clone())
                        .or_default()
                        .push((f.end_ms, f.values.map(|v| v.0))),
                    Output::Bar(b) => {
                        rows.closes
                            .entry(b.symbol.clone())
                            .or_default()
                            .insert(b.end_ms, (b.close.0, b.end_ms - b.start_ms));
                    }
                    _ => {}
                }
            }
        }
        rows.sort();
        rows
    }

    /// The feature rows and bars of the warehouse under `root` whose bar
    /// closes are in [`from_ms`, `to_ms`] (read by date partition, then
    /// filtered exactly).
    pub async fn read(root: &Path, from_ms: u64, to_ms: u64) -> Result<Self, Error> {
        let days = (utc_day(from_ms.saturating_sub(1)) - 1)..=(utc_day(to_ms) + 1);
        let mut rows = TrainRows::default();
        for batch in read::batches(root, "features", Some(days.clone())).await? {
            let c = Columns::new(&batch);
            let bad = |source| Error::Column {
                table: "features",
                source,
            };
            for i in 0..c.rows() {
                let (Some(symbol), Some(t)) = (
                    c.str("symbol", i).map_err(bad)?,
                    c.ms("end", i).map_err(bad)?,
                ) else {
                    continue;
                };
                if t < from_ms || t > to_ms {
                    continue;
                }
                let mut v = [0.0; FEATURE_COUNT];
                for (k, d) in FEATURES.iter().enumerate() {
                    v[k] = c.f64(d.name, i).map_err(bad)?.unwrap_or(f64::NAN);
                }
                rows.features
                    .entry(symbol.to_string())
                    .or_default()
                    .push((t, v));
            }
        }
        for batch in read::batches(root, "bars", Some(days)).await? {
            let c = Columns::new(&batch);
            let bad = |source| Error::Column {
                table: "bars",
                source,
            };
            for i in 0..c.rows() {
                let row = (
                    c.str("symbol", i).map_err(bad)?,
                    c.ms("end", i).map_err(bad)?,
                    c.f64("close", i).map_err(bad)?,
                    c.i64("interval_ms", i).map_err(bad)?,
                );
                let (Some(symbol), Some(t), Some(close), Some(interval)) = row else {
                    continue;
                };
                if t < from_ms || t > to_ms {
                    continue;
                }
                rows.closes
                    .entry(symbol.to_string())
                    .or_default()
                    .insert(t, (close, u64::try_from(interval).unwrap_or(0)));
            }
        }
        rows.sort();
        Ok(rows)
    }

    fn sort(&mut self) {
        for v in self.features.values_mut() {
            v.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| cmp_values(&a.1, &b.1)));
            v.dedup_by(|a, b| a.0 == b.0);
        }
    }

    /// The symbols that have feature rows.
    pub fn symbols(&self) -> Vec<String> {
        self.features.keys().cloned().collect()
    }

    /// Feature rows held, over all symbols.
    pub fn len(&self) -> usize {
        self.features.values().map(Vec::len).sum()
    }

    /// True without feature rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The examples of (`symbol`, `horizon_bars`) with feature rows at or
    /// after `start_ms` whose outcome is known by `end_ms`.
    pub fn examples(
        &self,
        symbol: &str,
        horizon_bars: u32,
        start_ms: u64,
        end_ms: u64,
    ) -> Examples {
        let mut ex = Examples {
            symbol: symbol.to_string(),
            horizon_bars,
            ..Examples::default()
        };
        let (Some(rows), Some(closes)) = (self.features.get(symbol), self.closes.get(symbol))
        else {
            return ex;
        };
        let from = rows.partition_point(|(t, _)| *t < start_ms);
        for (t, values) in &rows[from..] {
            let Some(&(base, interval)) = closes.get(t) else {
                continue;
            };
            let target_at = t + u64::from(horizon_bars) * interval;
            if interval == 0 || target_at > end_ms {
                continue;
            }
            let Some(&(later, _)) = closes.get(&target_at) else {
                continue;
            };
            let y = (later / base).ln();
            if !y.is_finite() {
                continue;
            }
            ex.times.push(*t);
            ex.targets_at.push(target_at);
            ex.x.push(*values);
            ex.y.push(y);
        }
        ex
    }
}

fn cmp_values(a: &[f64; FEATURE_COUNT], b: &[f64; FEATURE_COUNT]) -> std::cmp::Ordering {
    a.iter()
        .zip(b)
        .map(|(x, y)| x.total_cmp(y))
        .find(|o| o.is_ne())
        .unwrap_or(std::cmp::Ordering::Equal)
}
