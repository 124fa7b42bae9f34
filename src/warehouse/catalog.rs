//! The warehouse's tables, each defined once (see [`super::schema`]): its
//! name, what a row is, and per column the name, type, nullability, meaning
//! and how it is read from the dataflow's output. Every table is a log
//! partitioned by UTC `date`; adding a column or a table is a change here
//! (plus its test).
//!
//! Two writers: the delivery router commits every table's rows from the
//! dataflow's deliveries in epochs (`txn` app `cryptoflow`); the
//! orchestrator writes `job_runs` (which selects nothing from deliveries)
//! and the promotion rows of `models`, each under its own `txn` app id (see
//! `crate::jobs`). `models` rows of deployments come from the dataflow, so
//! they commit exactly once in the same epoch as the predictions they make.

use std::sync::LazyLock;

use dataflows::bars::Bar;
use dataflows::champion::DayEvaluation;
use dataflows::deploy::ModelVersion;
use dataflows::features::FEATURES;
use dataflows::num::DAY_MS;
use dataflows::predict::{FeatureRow, Prediction, Scored};
use dataflows::tick::Reject;
use dataflows::Output;

use super::schema::{Cell, Column, Kind, Table, TableDef};

mod registry;

use registry::{job_runs, models};
pub use registry::{job_runs_table, models_table};

/// The partition column of every table.
pub const DATE: &str = "date";

fn date<R: 'static>(doc: &'static str, ms: fn(&R) -> u64) -> Column<R> {
    Column::new(DATE, Kind::Date, doc, move |r| Cell::Ms(ms(r)))
}

/// The `model_id` and `model_version` columns of a row made by a batch model.
fn version_columns<R: 'static>(batch: fn(&R) -> Option<&ModelVersion>) -> [Column<R>; 2] {
    [
        Column::nullable(
            "model_id",
            Kind::Utf8,
            "registry id of the batch model version that made it (null: an online model)",
            move |r: &R| Cell::opt(batch(r), |v| Cell::Str(&v.id)),
        ),
        Column::nullable(
            "model_version",
            Kind::Int64,
            "that version's number (its scheduled training time, epoch ms)",
            move |r: &R| Cell::opt(batch(r), |v| Cell::I64(v.version as i64)),
        ),
    ]
}

fn bars() -> TableDef<Bar> {
    use Kind::*;
    TableDef {
        name: "bars",
        doc: "one OHLCV bar per symbol and interval, closed in event time",
        columns: vec![
            Column::new("symbol", Utf8, "canonical BASE-QUOTE", |b: &Bar| {
                Cell::Str(&b.symbol)
            }),
            Column::new("interval_ms", Int64, "bar length, ms", |b: &Bar| {
                Cell::I64((b.end_ms - b.start_ms) as i64)
            }),
            Column::new("start", Timestamp, "first instant of the bar", |b: &Bar| {
                Cell::Ms(b.start_ms)
            }),
            Column::new("end", Timestamp, "end of the bar (exclusive)", |b: &Bar| {
                Cell::Ms(b.end_ms)
            }),
            Column::new("open", Float64, "first trade price", |b: &Bar| {
                Cell::F64(b.open.0)
            }),
            Column::new("high", Float64, "highest trade price", |b: &Bar| {
                Cell::F64(b.high.0)
            }),
            Column::new("low", Float64, "lowest trade price", |b: &Bar| {
                Cell::F64(b.low.0)
            }),
            Column::new("close", Float64, "last trade price", |b: &Bar| {
                Cell::F64(b.close.0)
            }),
            Column::new("volume", Float64, "sum of trade sizes", |b: &Bar| {
                Cell::F64(b.volume.0)
            }),
            Column::new(
                "buy_volume",
                Float64,
                "volume where the taker bought",
                |b: &Bar| Cell::F64(b.buy_volume.0),
            ),
            Column::new(
                "vwap",
                Float64,
                "volume-weighted average price",
                |b: &Bar| Cell::F64(b.vwap.0),
            ),
            Column::new("trades", Int32, "number of trades", |b: &Bar| {
                Cell::I32(b.trades as i32)
            }),
            Column::new(
                "filled",
                Bool,
                "a gap-filling flat bar without trades",
                |b: &Bar| Cell::Bool(b.filled),
            ),
            date("UTC date of `start`", |b: &Bar| b.start_ms),
        ],
        partition: DATE,
        select: |o| match o {
            Output::Bar(b) => Some(b),
            _ => None,
        },
    }
}

fn features() -> TableDef<FeatureRow> {
    use Kind::*;
    let mut columns = vec![
        Column::new("symbol", Utf8, "canonical BASE-QUOTE", |f: &FeatureRow| {
            Cell::Str(&f.symbol)
        }),
        Column::new(
            "end",
            Timestamp,
            "close of the bar the features are at",
            |f: &FeatureRow| Cell::Ms(f.end_ms),
        ),
    ];
    columns.extend(FEATURES.iter().enumerate().map(|(k, d)| {
        Column::new(d.name, Float64, d.doc, move |f: &FeatureRow| {
            Cell::F64(f.values[k].0)
        })
    }));
    columns.push(Column::new(
        "bars_since_trade",
        Int32,
        "bars since the last bar with a trade",
        |f: &FeatureRow| Cell::I32(f.bars_since_trade as i32),
    ));
    columns.push(date(
        "UTC date of the bar (`end` − 1 ms)",
        |f: &FeatureRow| f.end_ms - 1,
    ));
    TableDef {
        name: "features",
        doc: "one row per symbol and bar close once the windows are full",
        columns,
        partition: DATE,
        select: |o| match o {
            Output::Features(f) => Some(f),
            _ => None,
        },
    }
}

fn predictions() -> TableDef<Prediction> {
    use Kind::*;
    TableDef {
        name: "predictions",
        doc: "every model's prediction for every horizon at every bar close",
        columns: vec![
            Column::new("symbol", Utf8, "canonical BASE-QUOTE", |p: &Prediction| {
                Cell::Str(&p.symbol)
            }),
            Column::new("model", Utf8, "model name", |p: &Prediction| {
                Cell::Str(&p.model)
            }),
            Column::new(
                "horizon_bars",
                Int32,
                "horizon in bars",
                |p: &Prediction| Cell::I32(p.horizon_bars as i32),
            ),
            Column::new("horizon_ms", Int64, "horizon in ms", |p: &Prediction| {
                Cell::I64(p.horizon_ms as i64)
            }),
            Column::new(
                "made_at",
                Timestamp,
                "close of the bar it was made at",
                |p: &Prediction| Cell::Ms(p.made_at_ms),
            ),
            Column::new(
                "target_at",
                Timestamp,
                "close of the bar it predicts",
                |p: &Prediction| Cell::Ms(p.target_at_ms),
            ),
            Column::new(
                "base_price",
                Float64,
                "close at `made_at`",
                |p: &Prediction| Cell::F64(p.base_price.0),
            ),
            Column::new(
                "predicted_return",
                Float64,
                "predicted log return to `target_at`",
                |p: &Prediction| Cell::F64(p.predicted_return.0),
            ),
            Column::new(
                "predicted_price",
                Float64,
                "base_price · exp(predicted_return)",
                |p: &Prediction| Cell::F64(p.predicted_price.0),
            ),
            Column::nullable(
                "direction_prob",
                Float64,
                "P(return > 0), models that have one",
                |p: &Prediction| Cell::opt(p.direction_prob, |v| Cell::F64(v.0)),
            ),
            Column::nullable(
                "interval_low",
                Float64,
                "lower end of the 80% interval of the return (once 20 residuals are known)",
                |p: &Prediction| Cell::opt(p.interval_low, |v| Cell::F64(v.0)),
            ),
            Column::nullable(
                "interval_high",
                Float64,
                "upper end of the 80% interval of the return",
                |p: &Prediction| Cell::opt(p.interval_high, |v| Cell::F64(v.0)),
            ),
        ]
        .into_iter()
        .chain(version_columns(|p: &Prediction| p.batch.as_ref()))
        .chain([date("UTC date of `made_at`", |p: &Prediction| p.made_at_ms)])
        .collect(),
        partition: DATE,
        select: |o| match o {
            Output::Prediction(p) => Some(p),
            _ => None,
        },
    }
}

fn scores() -> TableDef<Scored> {
    use Kind::*;
    TableDef {
        name: "scores",
        doc: "every prediction scored against its realised outcome, once",
        columns: vec![
            Column::new("symbol", Utf8, "canonical BASE-QUOTE", |s: &Scored| {
                Cell::Str(&s.score.symbol)
            }),
            Column::new("model", Utf8, "model name", |s: &Scored| {
                Cell::Str(&s.score.model)
            }),
            Column::new("horizon_bars", Int32, "horizon in bars", |s: &Scored| {
                Cell::I32(s.score.horizon_bars as i32)
            }),
            Column::new(
                "made_at",
                Timestamp,
                "when the prediction was made",
                |s: &Scored| Cell::Ms(s.score.made_at_ms),
            ),
            Column::new(
                "target_at",
                Timestamp,
                "when its outcome became known",
                |s: &Scored| Cell::Ms(s.score.target_at_ms),
            ),
            Column::new(
                "predicted_return",
                Float64,
                "what the model said",
                |s: &Scored| Cell::F64(s.score.predicted_return.0),
            ),
            Column::new(
                "realized_return",
                Float64,
                "the realised log return",
                |s: &Scored| Cell::F64(s.score.realized_return.0),
            ),
            Column::new("error", Float64, "predicted − realised", |s: &Scored| {
                Cell::F64(s.score.error())
            }),
            Column::new(
                "hit",
                Bool,
                "the prediction had the outcome's sign",
                |s: &Scored| Cell::Bool(s.score.hit()),
            ),
            Column::nullable(
                "covered",
                Bool,
                "the outcome fell inside the 80% interval (null: no interval yet)",
                |s: &Scored| Cell::opt(s.score.covered, Cell::Bool),
            ),
        ]
        .into_iter()
        .chain(version_columns(|s: &Scored| s.batch.as_ref()))
        .chain([date("UTC date of `target_at`", |s: &Scored| {
            s.score.target_at_ms
        })])
        .collect(),
        partition: DATE,
        select: |o| match o {
            Output::Score(s) => Some(s),
            _ => None,
        },
    }
}

fn evaluations() -> TableDef<DayEvaluation> {
    use Kind::*;
    fn day_start(day: i32) -> u64 {
        (day.max(0) as u64) * DAY_MS
    }
    TableDef {
        name: "evaluations",
        doc: "the daily evaluation: every model on every (symbol, horizon, UTC day)",
        columns: vec![
            Column::new(
                "symbol",
                Utf8,
                "canonical BASE-QUOTE",
                |e: &DayEvaluation| Cell::Str(&e.symbol),
            ),
            Column::new(
                "horizon_bars",
                Int32,
                "horizon in bars",
                |e: &DayEvaluation| Cell::I32(e.horizon_bars as i32),
            ),
            Column::new("model", Utf8, "model name", |e: &DayEvaluation| {
                Cell::Str(&e.evaluation.model)
            }),
            Column::new("samples", Int64, "scores that day", |e: &DayEvaluation| {
                Cell::I64(e.evaluation.samples)
            }),
            Column::new(
                "mae",
                Float64,
                "mean absolute error of the log return",
                |e: &DayEvaluation| Cell::F64(e.evaluation.mae.0),
            ),
            Column::new(
                "rmse",
                Float64,
                "root mean squared error",
                |e: &DayEvaluation| Cell::F64(e.evaluation.rmse.0),
            ),
            Column::new(
                "hit_rate",
                Float64,
                "directional hit rate",
                |e: &DayEvaluation| Cell::F64(e.evaluation.hit_rate.0),
            ),
            Column::new(
                "skill",
                Float64,
                "1 − MSE / MSE(persistence)",
                |e: &DayEvaluation| Cell::F64(e.evaluation.skill.0),
            ),
            Column::nullable(
                "coverage",
                Float64,
                "share of outcomes inside the 80% interval",
                |e: &DayEvaluation| Cell::opt(e.evaluation.coverage, |v| Cell::F64(v.0)),
            ),
            Column::new(
                "winner",
                Bool,
                "this model won the day",
                |e: &DayEvaluation| Cell::Bool(e.evaluation.winner),
            ),
            Column::new(
                "reason",
                Utf8,
                "why it won, or why persistence kept it",
                |e: &DayEvaluation| Cell::Str(&e.evaluation.reason),
            ),
            Column::new(
                "evaluated_at",
                Timestamp,
                "end of the day (when it was decided)",
                |e: &DayEvaluation| Cell::Ms(day_start(e.day + 1)),
            ),
            date("the evaluated UTC day", |e: &DayEvaluation| {
                day_start(e.day)
            }),
        ],
        partition: DATE,
        select: |o| match o {
            Output::Evaluation(e) => Some(e),
            _ => None,
        },
    }
}

fn rejects() -> TableDef<Reject> {
    use Kind::*;
    TableDef {
        name: "rejects",
        doc: "every record that did not become a tick, with the reason",
        columns: vec![
            Column::new("reason", Utf8, "reject reason code (README: The tick)", |r: &Reject| {
                Cell::Str(r.reason.code())
            }),
            Column::new("detail", Utf8, "what exactly was wrong", |r: &Reject| {
                Cell::Str(&r.detail)
            }),
            Column::new("payload", Utf8, "the raw record, cut to 4 KiB", |r: &Reject| {
                Cell::Str(&r.payload)
            }),
            Column::new("partition", Int32, "source partition", |r: &Reject| {
                Cell::I32(r.pos.partition)
            }),
            Column::new("offset", Int64, "offset in the partition", |r: &Reject| {
                Cell::I64(r.pos.offset)
            }),
            Column::nullable("symbol", Utf8, "symbol, when it could be read", |r: &Reject| {
                Cell::opt(r.symbol.as_deref(), Cell::Str)
            }),
            Column::nullable("event_time", Timestamp, "`ts`, when it could be read", |r: &Reject| {
                Cell::opt(r.ts_ms, Cell::Ms)
            }),
            Column::new(
                "watermark_at",
                Timestamp,
                "its partition's watermark when read: the event time it belongs to (1970-01-01 before the partition's first valid tick)",
                |r: &Reject| Cell::Ms(r.at_ms),
            ),
            date("UTC date of `watermark_at`", |r: &Reject| r.at_ms),
        ],
        partition: DATE,
        select: |o| match o {
            Output::Reject(r) => Some(r),
            _ => None,
        },
    }
}

static CATALOG: LazyLock<Vec<Box<dyn Table>>> = LazyLock::new(|| {
    vec![
        Box::new(bars()),
        Box::new(features()),
        Box::new(predictions()),
        Box::new(scores()),
        Box::new(evaluations()),
        Box::new(rejects()),
        Box::new(models()),
        Box::new(job_runs()),
    ]
});

/// Every table, in a fixed order.
pub fn tables() -> &'static [Box<dyn Table>] {
    &CATALOG
}

/// The table called `name`.
pub fn table(name: &str) -> Option<&'static dyn Table> {
    tables().iter().find(|t| t.name() == name).map(|t| &**t)
}

/// Every table's name, in order (for messages).
pub fn names() -> Vec<&'static str> {
    tables().iter().map(|t| t.name()).collect()
}

/// The README's description of the tables (`cryptoflow tables schema`
/// prints it; the test below keeps the README in step).
pub fn markdown() -> String {
    let mut out = String::new();
    for t in tables() {
        out.push_str(&format!(
            "**`{}`** — {} (partitioned by `{}`)\n\n| column | type | meaning |\n| --- | --- | --- |\n",
            t.name(),
            t.doc(),
            t.partition()
        ));
        for c in t.columns() {
            let null = if c.nullable { ", nullable" } else { "" };
            out.push_str(&format!(
                "| `{}` | {}{null} | {} |\n",
                c.name,
                c.kind.sql(),
                c.doc
            ));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_shows_the_definitions() {
        let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"));
        let section = readme
            .split_once("<!-- tables:begin -->\n")
            .and_then(|(_, rest)| rest.split_once("<!-- tables:end -->"))
            .map(|(inside, _)| inside)
            .expect("README has the tables markers");
        assert_eq!(
            section,
            markdown(),
            "README out of date: paste `cryptoflow tables schema`"
        );
    }

    #[test]
    fn every_table_is_partitioned_by_a_date_column_it_has() {
        for t in tables() {
            let cols = t.columns();
            let p = cols.iter().find(|c| c.name == t.partition()).unwrap();
            assert_eq!(p.kind, Kind::Date, "{}", t.name());
            assert!(!p.nullable);
            let mut names: Vec<_> = cols.iter().map(|c| c.name).collect();
            names.sort();
            names.dedup();
            assert_eq!(names.len(), cols.len(), "duplicate column in {}", t.name());
        }
    }

    /// Every column of every table is built from real pipeline output with
    /// the type and nullability it declares (a getter that disagrees with
    /// its column is an error, so this fails).
    #[test]
    fn real_output_fills_every_table() {
        let deliveries =
            dataflows::harness::simulated_deliveries(3, 1_764_028_800_000, 240_000, 3.0).unwrap();
        let all: Vec<&dataflows::Delivery> = deliveries.iter().collect();
        for t in tables() {
            let batch = t.batch(&all).unwrap();
            assert_eq!(batch.schema(), t.schema());
            assert_eq!(batch.num_rows(), t.count(&all), "{}", t.name());
            if !["rejects", "evaluations", "models", "job_runs"].contains(&t.name()) {
                assert!(batch.num_rows() > 0, "{} is empty", t.name());
            }
        }
    }
}
