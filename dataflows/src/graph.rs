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
use std::sync::Arc;

use differential_dataflow::consolidation::consolidate;
use serde::{Deserialize, Serialize};
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::operator::empty;
use timely::dataflow::operators::vec::{Filter, Map, ToStream};
use timely::dataflow::operators::{Concatenate, Probe};
use timely::dataflow::{ProbeHandle, Scope, StreamVec};
use tracing::warn;

use crate::bars::{bars, Bar, BarConfig, BarsSnapshot, PartialBar};
use crate::champion::{
    best::{champions_and_best, ChampionsAndBest},
    evaluations, Champion, ChampionConfig, DayEvaluation, SeriesKey, Verdicts,
};
use crate::deploy::{deployments, DeploySetup, DeploySnapshot, ModelRecord};
use crate::predict::{
    predictor, FeatureRow, PredictConfig, Prediction, PredictorStreams, Scored, SymbolSnapshot,
    SymbolState,
};
use crate::snapshot::{
    decode, encode, Assembled, Assembler, Cuts, Entry, Key, Op, Piece, Restore, Restored,
    StateError, StopCuts,
};
use crate::source::{tick_source, PartitionSnapshot, RecordReader, SourceConfig};
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
    /// Called with each completed snapshot (see [`SnapshotConfig`]), after
    /// every delivery before its cut and before any delivery at or after
    /// it.
    fn snapshot(&mut self, _snapshot: Assembled) {}
    /// In a run restored from a snapshot at cut T, called instead of
    /// [`OutputSink::deliver`] for the changes at times before T: the
    /// restored collections (current, champion and best predictions) as
    /// they stood at the cut, and the predictions re-emitted with them.
    /// They were delivered by the run that took the snapshot; a writer
    /// must not write them again (the live view takes them).
    fn restored(&mut self, _delivery: Delivery) {}
}

/// When the dataflow takes state snapshots (issue 14), and the one it
/// starts from.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SnapshotConfig {
    /// Cut every this many ms of event time (None: no snapshots). Every
    /// stateful operator sends its state for the cuts its frontier passes,
    /// and the export hands each newest complete cut to the sink.
    pub every_ms: Option<u64>,
    /// Asked at a clean stop: from then on, cuts every
    /// [`crate::snapshot::STOP_CUT_EVERY_MS`] (see [`Cuts`]), so the run
    /// can end with a snapshot of its latest state.
    pub stop: StopCuts,
    /// The snapshot to start from (None: from the beginning). Given on
    /// worker 0 of process 0 only; every operator instance receives the
    /// entries of the keys it owns (see [`crate::snapshot::route`]). Check
    /// it first with [`check_restore`].
    pub restore: Option<Arc<Restore>>,
}

/// Whether every entry of `restore` is a state the operators of a
/// pipeline built with `config` can take: each decodes, and the
/// predictor's fit the configured horizons, models and batch slots. The
/// operators rely on it; an error names the first entry that does not.
pub fn check_restore(restore: &Restore, config: &PipelineConfig) -> Result<(), StateError> {
    for e in &restore.entries {
        let checked = match e.op {
            Op::Source => decode::<PartitionSnapshot>(&e.bytes).map(|_| ()),
            Op::Bars => decode::<BarsSnapshot>(&e.bytes).map(|_| ()),
            Op::Predict => decode::<SymbolSnapshot>(&e.bytes)
                .and_then(|snap| SymbolState::restore(&config.predict, snap))
                .map(|_| ()),
            Op::Evaluate => crate::champion::check_entry(&e.bytes),
            Op::Export => decode::<Vec<(u64, Output, isize)>>(&e.bytes).map(|_| ()),
            Op::Deploy => decode::<DeploySnapshot>(&e.bytes).map(|_| ()),
        };
        checked.map_err(|err| match err {
            StateError::Decode(m) => StateError::Decode(format!("{:?} {:?}: {m}", e.op, e.key)),
            StateError::Shape(m) => StateError::Shape(format!("{:?} {:?}: {m}", e.op, e.key)),
        })?;
    }
    let has_deploy = restore.entries.iter().any(|e| e.op == Op::Deploy);
    if has_deploy != config.deploy.is_some() {
        return Err(StateError::Shape(format!(
            "the snapshot {} a retrain schedule and the run {}",
            if has_deploy { "has" } else { "has no" },
            if config.deploy.is_some() {
                "retrains"
            } else {
                "does not retrain"
            }
        )));
    }
    Ok(())
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
    /// State snapshots.
    pub snapshot: SnapshotConfig,
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
        snapshot,
    } = config;
    let every = snapshot
        .every_ms
        .map(|e| Cuts::new(e, snapshot.stop.clone()));

    let probe = ProbeHandle::new();
    let restore = restore_stream(scope, snapshot.restore.as_deref());
    let (ticks, rejects, source_pieces) = paced_source(
        scope,
        reader,
        restore_of(&restore, Op::Source),
        source,
        bar_config.interval_ms,
        &probe,
        every.clone(),
    );
    let (bars, bar_pieces) = bars(
        ticks,
        restore_of(&restore, Op::Bars),
        bar_config,
        every.clone(),
    );
    let retrains = deploy.is_some();
    let (deploys, records, deploy_pieces) = match deploy {
        Some(setup) => deployments(
            bars.clone(),
            restore_of(&restore, Op::Deploy),
            setup,
            every.clone(),
        ),
        None => (empty(scope), empty(scope), empty(scope)),
    };
    let PredictorStreams {
        current,
        scores,
        features,
        pieces: predict_pieces,
    } = predictor(
        bars.clone(),
        deploys,
        restore_of(&restore, Op::Predict),
        predict,
        every.clone(),
    );
    let Verdicts {
        evaluations: evals,
        decisions,
        pieces: evaluate_pieces,
    } = evaluations(
        scores.clone().map(|(s, t)| (s.score, t)),
        restore_of(&restore, Op::Evaluate),
        champion,
        every.clone(),
    );
    let ChampionsAndBest {
        champions: champs,
        best,
    } = champions_and_best(current.clone(), decisions);

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
    let pieces = vec![
        source_pieces,
        bar_pieces,
        predict_pieces,
        evaluate_pieces,
        deploy_pieces,
    ];
    let ops = [Op::Source, Op::Bars, Op::Predict, Op::Evaluate];
    let global: &[Op] = if retrains { &[Op::Deploy] } else { &[] };
    export(
        scope,
        changes,
        pieces,
        snapshot_plan(scope, every, &ops, global),
        snapshot.restore.as_deref(),
        &probe,
        sink,
    );
    probe
}

/// The entries of `restore` as a stream at time 0, from worker 0 (empty
/// without one, and on every other worker).
fn restore_stream<'s>(
    scope: Scope<'s, u64>,
    restore: Option<&Restore>,
) -> StreamVec<'s, u64, Restored> {
    let items: Vec<Restored> = restore
        .filter(|_| scope.index() == 0)
        .map(|r| {
            r.entries
                .iter()
                .filter(|e| e.op != Op::Export)
                .map(|e| Restored {
                    cut: r.cut,
                    entry: e.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    items.to_stream(scope)
}

/// The restored entries of `op`.
fn restore_of<'s>(restore: &StreamVec<'s, u64, Restored>, op: Op) -> StreamVec<'s, u64, Restored> {
    restore.clone().filter(move |r| r.entry.op == op)
}

/// The instances a snapshot waits for: each of `ops` on every worker, and
/// the export and each of `global` on worker 0 (None: no snapshots).
fn snapshot_plan(
    scope: Scope<'_, u64>,
    every: Option<Cuts>,
    ops: &[Op],
    global: &[Op],
) -> Option<Assembler> {
    let peers = scope.peers();
    every.map(|every| {
        let workers = ops.iter().flat_map(|op| (0..peers).map(move |w| (*op, w)));
        let leader = global.iter().chain([&Op::Export]).map(|op| (*op, 0));
        Assembler::new(every, workers.chain(leader))
    })
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
    let every = config
        .snapshot
        .every_ms
        .map(|e| Cuts::new(e, config.snapshot.stop.clone()));
    let restore = restore_stream(scope, config.snapshot.restore.as_deref());
    let (ticks, rejects, source_pieces) = paced_source(
        scope,
        reader,
        restore_of(&restore, Op::Source),
        config.source,
        interval_ms,
        &probe,
        every.clone(),
    );
    let (bars, bar_pieces) = bars(
        ticks,
        restore_of(&restore, Op::Bars),
        config.bars,
        every.clone(),
    );
    let changes = vec![
        bars.map(|b| {
            let t = b.end_ms;
            (Output::Bar(b), t, 1)
        }),
        rejects.map(|r| {
            let t = r.at_ms;
            (Output::Reject(r), t, 1)
        }),
    ];
    let plan = snapshot_plan(scope, every, &[Op::Source, Op::Bars], &[]);
    export(
        scope,
        changes,
        vec![source_pieces, bar_pieces],
        plan,
        config.snapshot.restore.as_deref(),
        &probe,
        sink,
    );
    probe
}

/// The single exit: every change goes to worker 0, is stashed by time and
/// handed to `sink` as one consolidated [`Delivery`] per time once the
/// frontier has passed it; `probe` watches the exit. With a snapshot
/// `plan`, the pieces of every operator instance come here too, and each
/// newest complete cut is handed to the sink once every delivery before it
/// has been. The export's own state at a cut is what was read before the
/// cut and is delivered after it: rejects placed at their partition's
/// watermark, ahead of the message that carried them (not the changes of
/// the differential collections, whose messages may also be earlier than
/// their times: a restored run makes those again). Restored from a
/// snapshot at cut T, it stashes that state again and hands every change
/// at a time before T to [`OutputSink::restored`].
#[allow(clippy::too_many_arguments)]
fn export<'s, S: OutputSink>(
    scope: Scope<'s, u64>,
    changes: Vec<StreamVec<'s, u64, (Output, u64, isize)>>,
    pieces: Vec<StreamVec<'s, u64, Piece>>,
    plan: Option<Assembler>,
    restore: Option<&Restore>,
    probe: &ProbeHandle<u64>,
    mut sink: S,
) {
    let leader = scope.index() == 0;
    let mut stash: BTreeMap<u64, Vec<(Output, isize)>> = BTreeMap::new();
    // Changes delivered later than the message that carried them, by
    // delivery time: (message time, change). The export's snapshot state.
    let mut ahead: BTreeMap<u64, Vec<(u64, Output, isize)>> = BTreeMap::new();
    let mut reported: Option<Option<u64>> = None;
    // Changes of the last time delivered (before consolidation).
    let mut last_len: usize = 0;
    // Times before the cut were delivered by the run the state comes from.
    let resume_at = restore.filter(|_| leader).map_or(0, |r| r.cut);
    let mut pieced: u64 = resume_at;
    for e in restore.iter().flat_map(|r| &r.entries) {
        if e.op != Op::Export || !leader {
            continue;
        }
        let held: Vec<(u64, Output, isize)> =
            decode(&e.bytes).expect("restored state is checked before the run");
        for (at, out, d) in held {
            // Read before the cut: message time 0.
            if plan.is_some() {
                ahead.entry(at).or_default().push((0, out.clone(), d));
            }
            stash.entry(at).or_default().push((out, d));
        }
    }
    // Only worker 0 receives anything.
    let mut plan = plan.filter(|_| leader);
    let data = scope.concatenate(changes).probe_with(probe);
    let pieces = scope.concatenate(pieces);
    let mut builder = OperatorBuilder::new("Export".to_owned(), scope);
    let mut input = builder.new_input(data, Exchange::new(|_: &(Output, u64, isize)| 0));
    let mut piece_input = builder.new_input(pieces, Exchange::new(|_: &Piece| 0));
    builder.build(move |_caps| {
        move |frontiers| {
            input.for_each_stamp(|cap, data| {
                let Some(&msg_time) = cap.least() else { return };
                for (out, t, d) in data.flat_map(|d| d.drain(..)) {
                    // Never earlier than the message (rejects carry their watermark,
                    // which is at or after it).
                    let at = t.max(msg_time);
                    // A reject read before a cut and placed after it is the
                    // export's to keep: the restored source reads on after
                    // its record. Differential's changes also travel in
                    // messages earlier than their times, but a restored run
                    // produces those again.
                    let kept = matches!(out, Output::Reject(_));
                    if kept && at > msg_time && plan.is_some() {
                        ahead
                            .entry(at)
                            .or_default()
                            .push((msg_time, out.clone(), d));
                    }
                    // A time that fills up grows at once to the size of the
                    // last delivery (times are alike) instead of doubling,
                    // which copies its outputs again each time.
                    let v = stash.entry(at).or_default();
                    if v.len() == v.capacity() && v.len() >= 64 {
                        v.reserve(last_len.saturating_sub(v.len()).max(v.len()));
                    }
                    v.push((out, d));
                }
            });
            piece_input.for_each_stamp(|_cap, data| {
                for piece in data.flat_map(|d| d.drain(..)) {
                    if let Some(plan) = plan.as_mut() {
                        if let Err(e) = plan.add(piece) {
                            warn!(error = %e, "snapshot piece dropped");
                        }
                    }
                }
            });
            let frontier = frontiers[0].frontier().first().copied();
            let mut piece = |upto: u64, ahead: &BTreeMap<u64, Vec<(u64, Output, isize)>>| {
                if let Some(plan) = plan.as_mut() {
                    while let Some(p) = export_piece(pieced, upto, plan.cuts(), ahead) {
                        pieced = p.upto;
                        plan.add(p).expect("the export is expected");
                    }
                    pieced = pieced.max(upto);
                }
            };
            while let Some(entry) = stash.first_entry() {
                let time = *entry.key();
                if frontier.is_some_and(|f| f <= time) {
                    break;
                }
                piece(time, &ahead);
                ahead.remove(&time);
                // Differential promises the same accumulated collection, not the
                // same update stream: consolidating makes a delivery canonical,
                // independent of batching and worker count.
                let mut changes = entry.remove();
                last_len = changes.len();
                consolidate_outputs(&mut changes);
                if changes.is_empty() {
                    continue;
                }
                let delivery = Delivery { time, changes };
                if time < resume_at {
                    sink.restored(delivery);
                } else {
                    sink.deliver(delivery);
                }
            }
            if let Some(f) = frontier {
                piece(f, &ahead);
            }
            if let Some(plan) = plan.as_mut() {
                if let Some(snapshot) = plan.complete() {
                    tracing::debug!(cut = snapshot.cut, frontier = ?frontier, "cut complete");
                    sink.snapshot(snapshot);
                }
            }
            if leader && reported != Some(frontier) {
                reported = Some(frontier);
                sink.progress(frontier);
            }
        }
    });
}

impl Output {
    /// The variant's position in the declaration: where `Ord` puts it.
    fn rank(&self) -> u64 {
        match self {
            Output::Bar(_) => 0,
            Output::Prediction(_) => 1,
            Output::Score(_) => 2,
            Output::Features(_) => 3,
            Output::Reject(_) => 4,
            Output::Evaluation(_) => 5,
            Output::Champion(..) => 6,
            Output::Best(..) => 7,
            Output::Model(_) => 8,
        }
    }

    /// The symbol, for the variants whose first field (what `Ord` compares
    /// right after the variant) it is.
    fn lead_symbol(&self) -> Option<&str> {
        match self {
            Output::Bar(b) => Some(&b.symbol),
            Output::Prediction(p) | Output::Best(p, _) => Some(&p.symbol),
            Output::Score(s) => Some(&s.score.symbol),
            Output::Features(f) => Some(&f.symbol),
            Output::Evaluation(e) => Some(&e.symbol),
            Output::Champion((symbol, _), _) => Some(symbol),
            Output::Reject(_) | Output::Model(_) => None,
        }
    }
}

/// Sorts `changes` in `Output`'s order, sums the diffs of equal outputs
/// and drops zeros: differential's `consolidate`, with fewer deep
/// comparisons and moves. One time's changes are thousands of outputs of
/// a few hundred bytes whose comparisons start with String compares of
/// the symbol; this sorts indices by (variant, rank of the symbol among
/// the time's symbols), which orders exactly as `Output`'s own `Ord`
/// does on that prefix, compares whole outputs only within a (variant,
/// symbol), and moves each output once.
pub fn consolidate_outputs(changes: &mut Vec<(Output, isize)>) {
    if changes.len() < 32 {
        consolidate(changes);
        return;
    }
    let mut ranks: foldhash::HashMap<&str, u64> = foldhash::HashMap::default();
    for (o, _) in changes.iter() {
        if let Some(s) = o.lead_symbol() {
            ranks.entry(s).or_insert(0);
        }
    }
    let mut symbols: Vec<&str> = ranks.keys().copied().collect();
    symbols.sort_unstable();
    for (i, s) in symbols.into_iter().enumerate() {
        ranks.insert(s, i as u64);
    }
    let mut order: Vec<(u64, u32)> = changes
        .iter()
        .enumerate()
        .map(|(i, (o, _))| {
            let symbol = o.lead_symbol().map_or(0, |s| ranks[s]);
            ((o.rank() << 40) | symbol, i as u32)
        })
        .collect();
    drop(ranks);
    order.sort_unstable_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| changes[a.1 as usize].0.cmp(&changes[b.1 as usize].0))
    });
    let mut slots: Vec<Option<(Output, isize)>> = changes.drain(..).map(Some).collect();
    for (_, i) in order {
        let (o, d) = slots[i as usize].take().expect("each index once");
        match changes.last_mut() {
            Some((last, sum)) if *last == o => *sum += d,
            _ => {
                if changes.last().is_some_and(|(_, sum)| *sum == 0) {
                    changes.pop();
                }
                changes.push((o, d));
            }
        }
    }
    if changes.last().is_some_and(|(_, sum)| *sum == 0) {
        changes.pop();
    }
}

/// The export's piece for the cuts in `(after, upto]` if one lies there:
/// the changes read before the first of them and delivered at or after it,
/// valid until the next delivery or message time among them.
fn export_piece(
    after: u64,
    upto: u64,
    cuts: &Cuts,
    ahead: &BTreeMap<u64, Vec<(u64, Output, isize)>>,
) -> Option<Piece> {
    if !cuts.crosses(after, upto) {
        return None;
    }
    let cut = cuts.next(after);
    // Valid from the cut on (not from `after`): it holds what was read
    // before `cut`, which is too much for an earlier cut.
    Some(Piece::timed(Op::Export, 0, cut - 1, || {
        let mut held: Vec<(u64, &Output, isize)> = Vec::new();
        let mut until = upto;
        for (&at, changes) in ahead.range(cut..) {
            until = until.min(at);
            for (msg, out, d) in changes {
                if *msg < cut {
                    held.push((at, out, *d));
                } else {
                    until = until.min(*msg);
                }
            }
        }
        held.sort();
        let entries = if held.is_empty() {
            Vec::new()
        } else {
            vec![Entry {
                op: Op::Export,
                key: Key::Global,
                bytes: encode(&held),
            }]
        };
        (until, entries)
    }))
}

/// The tick source, paced by the export's `probe` (see `source`'s flow
/// control), never closer than two bars and the lateness: the Deploy hold
/// at `T` waits for a bar at or after `T`, which the source must be able
/// to close.
fn paced_source<'s, R: RecordReader>(
    scope: Scope<'s, u64>,
    reader: R,
    restore: StreamVec<'s, u64, Restored>,
    mut source: SourceConfig,
    bar_ms: u64,
    probe: &ProbeHandle<u64>,
    snapshot_every: Option<Cuts>,
) -> (
    StreamVec<'s, u64, PartialBar>,
    StreamVec<'s, u64, Reject>,
    StreamVec<'s, u64, Piece>,
) {
    let least_ahead = 2 * bar_ms + source.lateness_ms;
    source.max_ahead_ms = source.max_ahead_ms.map(|ms| ms.max(least_ahead));
    tick_source(
        scope,
        "KafkaSource(ticks)",
        reader,
        restore,
        source,
        bar_ms,
        Some(probe.clone()),
        snapshot_every,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::champion::best::seed;
    use crate::num::F64;
    use crate::predict::{Prediction, Score, Scored};
    use crate::sim::{random_bars, Rng};

    fn prediction(symbol: &str, horizon_bars: u32, model: &str, made: u64) -> Prediction {
        Prediction {
            symbol: symbol.to_string(),
            horizon_bars,
            model: model.to_string(),
            horizon_ms: u64::from(horizon_bars) * 1_000,
            made_at_ms: made * 1_000,
            target_at_ms: (made + u64::from(horizon_bars)) * 1_000,
            base_price: F64(1.0),
            predicted_return: F64(made as f64 * 1e-4),
            predicted_price: F64(1.0),
            direction_prob: None,
            interval_low: None,
            interval_high: None,
            batch: None,
        }
    }

    /// On a time's worth of mixed outputs (several variants, symbols,
    /// horizons and models, some equal with opposite or repeated diffs),
    /// in shuffled order, the fast consolidation gives differential's
    /// result, order included.
    #[test]
    fn consolidating_outputs_matches_differential() {
        let mut rng = Rng::new(7);
        let symbols = ["ZZ-USD", "A-B", "BTC-USDT", "AB-C", "A-BB"];
        let models = ["ar", "ar2", "AR", "b", "persistence"];
        for n in [0, 1, 31, 33, 500, 3_000] {
            let mut changes: Vec<(Output, isize)> = Vec::new();
            for (i, mut bar) in random_bars(n as u64, n).into_iter().enumerate() {
                let symbol = symbols[(rng.next_u64() % 5) as usize];
                bar.symbol = symbol.to_string();
                bar.end_ms = 1_000 * (i as u64 % 7);
                let d = if rng.uniform() < 0.5 { 1 } else { -1 };
                let champion = Output::Champion((symbol.to_string(), i as u32 % 3), seed());
                changes.push((champion, d));
                let model = models[(rng.next_u64() % 5) as usize];
                let p = prediction(symbol, (rng.next_u64() % 3) as u32, model, i as u64 % 4);
                let score = Scored {
                    score: Score {
                        symbol: symbol.to_string(),
                        horizon_bars: p.horizon_bars,
                        model: model.to_string(),
                        made_at_ms: p.made_at_ms,
                        target_at_ms: p.target_at_ms,
                        predicted_return: p.predicted_return,
                        realized_return: F64(0.0),
                        covered: None,
                    },
                    batch: None,
                };
                changes.push((Output::Score(score), 1));
                changes.push((Output::Best(p.clone(), seed()), d));
                changes.push((Output::Prediction(p), 1));
                if rng.uniform() < 0.3 {
                    changes.push((Output::Bar(bar.clone()), -d));
                }
                changes.push((Output::Bar(bar), d));
            }
            for i in (1..changes.len()).rev() {
                changes.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
            }
            let mut want = changes.clone();
            consolidate(&mut want);
            consolidate_outputs(&mut changes);
            assert_eq!(changes, want, "{n} bars");
        }
    }
}
