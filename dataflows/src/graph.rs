//! The whole dataflow, assembled: source → validate → bars → predict →
//! score → daily evaluation → champion → best predictions, and one exit for everything that
//! leaves it. With a [`DeploySetup`], batch-model deployments enter the
//! predictor at scheduled event times and their registry rows leave with
//! the rest (see [`crate::deploy`]).
//!
//! Every output goes through a single "Export" sink on worker 0, which hands
//! a [`Delivery`] to an [`OutputSink`] once the frontier has passed its time,
//! in increasing time order. A delivery is therefore complete: it holds every
//! bar, prediction, score, reject and collection change at that time, which
//! is what the warehouse (epochs) and the HTTP view (consistent snapshots)
//! need. This module does no I/O itself.

use std::collections::BTreeMap;

use differential_dataflow::consolidation::consolidate;
use serde::{Deserialize, Serialize};
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::operator::empty;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::vec::Map;
use timely::dataflow::operators::{Concatenate, Probe};
use timely::dataflow::{ProbeHandle, Scope, StreamVec};

use crate::bars::{bars, Bar, BarConfig, PartialBar};
use crate::champion::{
    best_predictions, champions, evaluations, Champion, ChampionConfig, DayEvaluation, SeriesKey,
    Verdicts,
};
use crate::deploy::{deployments, DeploySetup, ModelRecord};
use crate::predict::{predictor, FeatureRow, PredictConfig, Prediction, PredictorStreams, Scored};
use crate::source::{tick_source, RecordReader, SourceConfig};
use crate::tick::Reject;

/// Everything that leaves the dataflow. Every output travels as a change
/// `(output, diff)`: the logs (bars, predictions, scores, features, rejects)
/// are only ever inserted (+1); the collections (evaluations, champions,
/// best predictions) also retract (−1) the rows they replace.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Output {
    /// A closed bar.
    Bar(Bar),
    /// A new prediction (the predictions log).
    Prediction(Prediction),
    /// A scored prediction.
    Score(Scored),
    /// A symbol's features at a bar close.
    Features(FeatureRow),
    /// A rejected record.
    Reject(Reject),
    /// A row of the daily-evaluation collection.
    Evaluation(DayEvaluation),
    /// A row of the champion collection.
    Champion(SeriesKey, Champion),
    /// A row of the best-prediction collection.
    Best(Prediction, Champion),
    /// A row of the model registry (a batch model version's status change).
    Model(ModelRecord),
}

/// All changes at one time, complete.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Delivery {
    /// The (event) time these changes belong to.
    pub time: u64,
    /// The changes, consolidated and sorted: each output at most once, with
    /// a non-zero diff.
    pub changes: Vec<(Output, isize)>,
}

impl Delivery {
    /// The outputs inserted at this time (positive diffs), each once.
    pub fn inserted(&self) -> impl Iterator<Item = &Output> {
        self.changes.iter().filter(|(_, d)| *d > 0).map(|(o, _)| o)
    }
}

/// Receives complete deliveries on worker 0.
pub trait OutputSink: 'static {
    /// Called once per completed time that has changes, in increasing time order.
    fn deliver(&mut self, delivery: Delivery);
    /// Called after the deliveries when the export's frontier moved: every
    /// delivery before `frontier` has been made (None: all of them, the
    /// dataflow is done). Lets a writer know how far its output is complete
    /// even when no delivery came (the orchestrator's sensors need it).
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
    /// Batch-model deployments (None: online models only, nothing waits).
    pub deploy: Option<DeploySetup>,
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
        deploy,
    } = config;

    let probe = ProbeHandle::new();
    let (ticks, rejects) = paced_source(scope, reader, source, bar_config.interval_ms, &probe);
    let bars = bars(ticks, bar_config);
    let (deploys, records) = match deploy {
        Some(setup) => deployments(bars.clone(), setup),
        None => (empty(scope), empty(scope)),
    };
    let PredictorStreams {
        current,
        scores,
        features,
    } = predictor(bars.clone(), deploys, predict);
    let Verdicts {
        evaluations: evals,
        decisions,
    } = evaluations(scores.clone().map(|(s, t)| (s.score, t)), champion);
    let series = current.clone().map(|p| (p.symbol, p.horizon_bars));
    let champs = champions(decisions, series);
    let best = best_predictions(current.clone(), champs.clone());

    // Every output as a change (output, time, diff). Logs carry the time of
    // their own event; the export never places anything before the message
    // that carries it.
    let changes: Vec<StreamVec<'s, u64, (Output, u64, isize)>> = vec![
        bars.map(|b| {
            let t = b.end_ms;
            (Output::Bar(b), t, 1)
        }),
        current
            .inner
            .flat_map(|(p, t, d)| (d > 0).then_some((Output::Prediction(p), t, 1))),
        scores.map(|(s, t)| (Output::Score(s), t, 1)),
        features.map(|f| {
            let t = f.end_ms;
            (Output::Features(f), t, 1)
        }),
        rejects.map(|r| {
            let t = r.at_ms;
            (Output::Reject(r), t, 1)
        }),
        evals
            .inner
            .map(|((((symbol, horizon_bars), day), evaluation), t, d)| {
                let row = DayEvaluation {
                    symbol,
                    horizon_bars,
                    day,
                    evaluation,
                };
                (Output::Evaluation(row), t, d)
            }),
        champs
            .inner
            .map(|((k, c), t, d)| (Output::Champion(k, c), t, d)),
        best.inner.map(|((p, c), t, d)| (Output::Best(p, c), t, d)),
        records.map(|r| {
            let t = r.status_at_ms;
            (Output::Model(r), t, 1)
        }),
    ];
    export(scope, changes, &probe, sink);
    probe
}

/// Source → validate → bars → export, nothing else: the tick path alone,
/// for benchmarks ("bars only"). Same source, pacing and export as [`build`].
pub fn build_bars<'s, R: RecordReader, S: OutputSink>(
    scope: Scope<'s, u64>,
    reader: R,
    config: PipelineConfig,
    sink: S,
) -> ProbeHandle<u64> {
    let probe = ProbeHandle::new();
    let interval_ms = config.bars.interval_ms;
    let (ticks, rejects) = paced_source(scope, reader, config.source, interval_ms, &probe);
    let changes = vec![
        bars(ticks, config.bars).map(|b| {
            let t = b.end_ms;
            (Output::Bar(b), t, 1)
        }),
        rejects.map(|r| {
            let t = r.at_ms;
            (Output::Reject(r), t, 1)
        }),
    ];
    export(scope, changes, &probe, sink);
    probe
}

/// The single exit: every change goes to worker 0, is stashed by time and
/// handed to `sink` as one consolidated [`Delivery`] per time once the
/// frontier has passed it; `probe` watches the exit.
fn export<'s, S: OutputSink>(
    scope: Scope<'s, u64>,
    changes: Vec<StreamVec<'s, u64, (Output, u64, isize)>>,
    probe: &ProbeHandle<u64>,
    mut sink: S,
) {
    let mut stash: BTreeMap<u64, Vec<(Output, isize)>> = BTreeMap::new();
    let mut reported: Option<Option<u64>> = None;
    let leader = scope.index() == 0;
    scope.concatenate(changes).probe_with(probe).sink(
        Exchange::new(|_: &(Output, u64, isize)| 0),
        "Export",
        move |(input, frontier)| {
            input.for_each_stamp(|cap, data| {
                let Some(&msg_time) = cap.least() else { return };
                for (out, t, d) in data.flat_map(|d| d.drain(..)) {
                    // Never earlier than the message (rejects carry their watermark,
                    // which is at or after it).
                    stash.entry(t.max(msg_time)).or_default().push((out, d));
                }
            });
            while let Some(entry) = stash.first_entry() {
                if frontier.less_equal(entry.key()) {
                    break;
                }
                let time = *entry.key();
                // Differential promises the same accumulated collection, not the
                // same update stream: consolidating makes a delivery canonical,
                // independent of batching and worker count.
                let mut changes = entry.remove();
                consolidate(&mut changes);
                if !changes.is_empty() {
                    sink.deliver(Delivery { time, changes });
                }
            }
            let now = frontier.frontier().first().copied();
            if leader && reported != Some(now) {
                reported = Some(now);
                sink.progress(now);
            }
        },
    );
}

/// The tick source, paced by the export's `probe` (see `source`'s flow
/// control), never closer than two bars and the lateness: the Deploy hold
/// at `T` waits for a bar at or after `T`, which the source must be able
/// to close.
fn paced_source<'s, R: RecordReader>(
    scope: Scope<'s, u64>,
    reader: R,
    mut source: SourceConfig,
    bar_ms: u64,
    probe: &ProbeHandle<u64>,
) -> (StreamVec<'s, u64, PartialBar>, StreamVec<'s, u64, Reject>) {
    let least_ahead = 2 * bar_ms + source.lateness_ms;
    source.max_ahead_ms = source.max_ahead_ms.map(|ms| ms.max(least_ahead));
    tick_source(
        scope,
        "KafkaSource(ticks)",
        reader,
        source,
        bar_ms,
        Some(probe.clone()),
    )
}
