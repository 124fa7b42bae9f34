//! The whole dataflow, assembled: source → validate → bars → predict →
//! score → daily evaluation → champion → best predictions, and one exit for everything that
//! leaves it.
//!
//! Every output goes through a single "Export" sink on worker 0, which hands
//! a [`Delivery`] to an [`OutputSink`] once the frontier has passed its time,
//! in increasing time order. A delivery is therefore complete: it holds every
//! bar, prediction, score, reject and collection change at that time, which
//! is what the warehouse (epochs) and the HTTP view (consistent snapshots)
//! need. This module does no I/O itself.

use std::collections::BTreeMap;

use differential_dataflow::AsCollection;
use serde::{Deserialize, Serialize};
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::vec::Map;
use timely::dataflow::operators::{Concatenate, Probe};
use timely::dataflow::{ProbeHandle, Scope, StreamVec};

use crate::bars::{bars, Bar, BarConfig};
use crate::champion::{
    best_predictions, champions, daily_sums, evaluations, Champion, ChampionConfig, Evaluation,
    SeriesKey,
};
use crate::predict::{predictor, FeatureRow, ModelEvent, PredictConfig, Prediction, Score};
use crate::source::{tick_source, RecordReader, SourceConfig};
use crate::tick::Reject;

/// Everything that leaves the dataflow.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Output {
    /// A closed bar.
    Bar(Bar),
    /// A new prediction (the predictions log).
    Prediction(Prediction),
    /// A scored prediction.
    Score(Score),
    /// A symbol's features at a bar close.
    Features(FeatureRow),
    /// A rejected record.
    Reject(Reject),
    /// A change to the daily-evaluation collection: (series, UTC day, row).
    Evaluation(SeriesKey, i32, Evaluation, isize),
    /// A change to the champion collection.
    Champion(SeriesKey, Champion, isize),
    /// A change to the best-prediction collection.
    Best(Prediction, Champion, isize),
}

/// All outputs at one time, complete.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Delivery {
    /// The (event) time these outputs belong to.
    pub time: u64,
    /// The outputs, in a deterministic order (sorted).
    pub outputs: Vec<Output>,
}

/// Receives complete deliveries on worker 0.
pub trait OutputSink: 'static {
    /// Called once per completed time that has outputs, in increasing time order.
    fn deliver(&mut self, delivery: Delivery);
    /// Called when the export frontier advances (None: the dataflow is done).
    fn progress(&mut self, _frontier: Option<u64>) {}
}

/// The whole pipeline's settings.
#[derive(Clone, Default)]
pub struct PipelineConfig {
    /// Source and validation.
    pub source: SourceConfig,
    /// Bars.
    pub bars: BarConfig,
    /// Features and models.
    pub predict: PredictConfig,
    /// Champion selection.
    pub champion: ChampionConfig,
}

/// Builds the dataflow in `scope`, reading with `reader` (this worker's
/// partitions) and exporting to `sink` (used on worker 0 only). Returns a
/// probe at the export.
pub fn build<'s, R: RecordReader, S: OutputSink>(
    scope: Scope<'s, u64>,
    reader: R,
    config: PipelineConfig,
    sink: S,
) -> ProbeHandle<u64> {
    let PipelineConfig {
        source,
        bars: bar_config,
        predict,
        champion,
    } = config;
    let predict = PredictConfig {
        interval_ms: bar_config.interval_ms,
        ..predict
    };

    let (ticks, rejects) = tick_source(scope, "KafkaSource(ticks)", reader, source);
    let bars = bars(ticks, bar_config);
    let events = predictor(bars.clone(), predict);

    let scores = events.clone().flat_map(|(e, t)| match e {
        ModelEvent::Score(s) => Some((s, t)),
        ModelEvent::Current(..) | ModelEvent::Features(_) => None,
    });
    let current = events
        .clone()
        .flat_map(|(e, t)| match e {
            ModelEvent::Current(p, d) => Some((p, t, d)),
            ModelEvent::Score(_) | ModelEvent::Features(_) => None,
        })
        .as_collection();
    let evals = evaluations(daily_sums(scores.clone()), champion);
    let series = current.clone().map(|p| (p.symbol, p.horizon_bars));
    let champs = champions(evals.clone(), series);
    let best = best_predictions(current.clone(), champs.clone());

    let outputs: Vec<StreamVec<'s, u64, (Output, u64)>> = vec![
        bars.map(|b| {
            let t = b.end_ms;
            (Output::Bar(b), t)
        }),
        current
            .inner
            .flat_map(|(p, t, d)| (d > 0).then_some((Output::Prediction(p), t))),
        scores.map(|(s, t)| (Output::Score(s), t)),
        events.clone().flat_map(|(e, t)| match e {
            ModelEvent::Features(f) => Some((Output::Features(f), t)),
            _ => None,
        }),
        rejects.map(|r| {
            let t = r.at_ms;
            (Output::Reject(r), t)
        }),
        evals
            .inner
            .map(|(((k, day), e), t, d)| (Output::Evaluation(k, day, e, d), t)),
        champs
            .inner
            .map(|((k, c), t, d)| (Output::Champion(k, c, d), t)),
        best.inner.map(|((p, c), t, d)| (Output::Best(p, c, d), t)),
    ];
    let probe = ProbeHandle::new();
    let mut sink = sink;
    let mut stash: BTreeMap<u64, Vec<Output>> = BTreeMap::new();
    let mut last_frontier: Option<Option<u64>> = None;
    scope.concatenate(outputs).probe_with(&probe).sink(
        Exchange::new(|_: &(Output, u64)| 0),
        "Export",
        move |(input, frontier)| {
            input.for_each_stamp(|cap, data| {
                let Some(&msg_time) = cap.least() else { return };
                for (out, t) in data.flat_map(|d| d.drain(..)) {
                    // Never earlier than the message (rejects carry their watermark,
                    // which is at or after it).
                    stash.entry(t.max(msg_time)).or_default().push(out);
                }
            });
            while let Some(entry) = stash.first_entry() {
                if frontier.less_equal(entry.key()) {
                    break;
                }
                let time = *entry.key();
                let outputs = consolidate(entry.remove());
                if !outputs.is_empty() {
                    sink.deliver(Delivery { time, outputs });
                }
            }
            let f = frontier.frontier().first().copied();
            if last_frontier != Some(f) {
                last_frontier = Some(f);
                sink.progress(f);
            }
        },
    );
    probe
}

/// Sorts outputs and sums the differences of identical collection records,
/// dropping those that cancel: differential promises the same accumulated
/// collection, not the same update stream, so a delivery is made canonical
/// here and does not depend on batching or worker count.
pub fn consolidate(mut outputs: Vec<Output>) -> Vec<Output> {
    fn split(o: Output) -> (Output, isize) {
        match o {
            Output::Champion(k, c, d) => (Output::Champion(k, c, 0), d),
            Output::Evaluation(k, day, e, d) => (Output::Evaluation(k, day, e, 0), d),
            Output::Best(p, c, d) => (Output::Best(p, c, 0), d),
            other => (other, 0),
        }
    }
    fn join(o: Output, d: isize) -> Output {
        match o {
            Output::Champion(k, c, _) => Output::Champion(k, c, d),
            Output::Evaluation(k, day, e, _) => Output::Evaluation(k, day, e, d),
            Output::Best(p, c, _) => Output::Best(p, c, d),
            other => other,
        }
    }
    outputs.sort();
    let mut result: Vec<Output> = Vec::with_capacity(outputs.len());
    let mut pending: Option<(Output, isize)> = None;
    for o in outputs {
        let is_update = matches!(
            o,
            Output::Champion(..) | Output::Best(..) | Output::Evaluation(..)
        );
        if !is_update {
            if let Some((p, d)) = pending.take() {
                if d != 0 {
                    result.push(join(p, d));
                }
            }
            result.push(o);
            continue;
        }
        let (key, d) = split(o);
        match pending.as_mut() {
            Some((p, acc)) if *p == key => *acc += d,
            _ => {
                if let Some((p, acc)) = pending.replace((key, d)) {
                    if acc != 0 {
                        result.push(join(p, acc));
                    }
                }
            }
        }
    }
    if let Some((p, d)) = pending {
        if d != 0 {
            result.push(join(p, d));
        }
    }
    result
}
