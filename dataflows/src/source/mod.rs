//! The tick source: raw records from partitioned storage (Kafka, a file, a
//! vector in a test) become timestamped ticks and rejects.
//!
//! Time semantics. Each accepted tick is folded into its (symbol,
//! partition, bar)'s [`PartialBar`], which is emitted at a timely time at
//! or before its first tick's event time (the source's capability), before
//! the capability passes the bar's end (see [`crate::bars`]). Each partition
//! keeps a watermark, `max event time seen − allowed lateness`; a tick below
//! its partition's watermark (or below the worker's capability) is rejected
//! as `late`. Because the lateness decision depends only on the order of
//! records inside a partition, it is the same whichever worker owns the
//! partition. The worker's capability follows the least watermark of its
//! partitions that are not idle; a partition is idle once the reader reported
//! its end and nothing arrived for `idle_timeout` (by the [`Clock`]). When every
//! owned partition is idle the capability may follow the wall clock minus
//! `idle_lag` so that a quiet worker does not stall the others in live mode
//! (disable with `idle_lag = None` for backtests produced while consumed).
//!
//! Flow control. A timely source has no backpressure of its own: a replay
//! would read the whole topic into the dataflow's queues long before the
//! bars and models get through it. Given a probe at the export, the source
//! therefore pauses while the export's frontier is more than
//! `max_ahead_ms` of event time behind its own capability, and reads on
//! once the rest has caught up. The capability is the least watermark of
//! the owned partitions, so a paused source never holds the frontier: what
//! holds it is another worker's source (which is then not paused) or an
//! operator that releases without more input (bars and evaluations at a
//! future time once their input passes it; the Deploy hold once models
//! trained from committed data arrive). Pausing changes only the pace, never
//! an output: lateness depends on the order inside a partition, and the
//! idle clock stops while paused (a partition does not turn idle because
//! the source chose not to read it).
//!
//! Reading is not the only flood. A partition that holds time back (empty,
//! or ended but not idle for `idle_timeout` yet) leaves the capability where
//! it is while the other partitions are read to their ends: in the demo's
//! catch-up, a day and a half of history is read in under a second. So
//! the capability follows the time the watermarks allow in steps of at
//! most `max_ahead_ms` past the oldest bar still open, each step subject
//! to the pause above, and so does the end of a bounded input; otherwise
//! every bar read so far would leave at once and the whole history would
//! be in flight downstream (9.6 GB resident in the demo). Lateness is still
//! judged against the time the watermarks allow, not the stepped
//! capability, so the steps change the pace and nothing else.
//!
//! Which worker reads which partition is decided by the caller with
//! [`owns_partition`], a pure function of (partition, worker index, peers).
//!
//! Restore. Started from a snapshot, the source takes each of its
//! partitions' [`PartitionSnapshot`] (the offset reading resumes at, the
//! watermark, the idle flag, the partial bars not sent yet) before it reads
//! anything, asks the reader to seek, and starts its capability at the
//! cut. A record at an offset before its partition's next one (a reader
//! that could not seek, or one that went back) was read already, and is
//! skipped.
//! An idle flag is restored as "idle since the timeout" (idleness is
//! wall-clock time).
//!
//! This operator never panics on input; a reader error is logged and retried.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::probe::Handle as ProbeHandle;
use timely::dataflow::operators::OkErr;
use timely::dataflow::{Scope, StreamVec};
use tracing::{debug, error, warn};

use crate::bars::{bar_bounds, PartialBar};
use crate::progress::{PartitionProgress, SourceProgress};
use crate::snapshot::{self, encode, route, Cuts, Entry, Key, Op, Piece, Restored};
use crate::tick::{
    decode_fast_ref, decode_reference, Position, Reject, RejectReason, ValidationLimits,
};

mod memory;

pub use memory::{partition_of_key, partition_records, VecReader};

/// Does worker `index` of `peers` own `partition`?
pub fn owns_partition(partition: i32, index: usize, peers: usize) -> bool {
    partition >= 0 && (partition as usize) % peers == index
}

/// One raw record.
#[derive(Clone, Debug)]
pub struct Record {
    /// Where it came from.
    pub pos: Position,
    /// The payload bytes (JSON for the tick schema).
    pub payload: Vec<u8>,
}

/// What a reader reports.
#[derive(Clone, Debug)]
pub enum SourceEvent {
    /// A record.
    Record(Record),
    /// The reader has consumed everything currently in this partition.
    PartitionEof(i32),
}

/// A per-worker reader of the partitions this worker owns.
pub trait RecordReader: 'static {
    /// The partitions this reader owns.
    fn partitions(&self) -> Vec<i32>;
    /// Appends up to `max` events that are available now; must not block long.
    fn poll(&mut self, max: usize, out: &mut Vec<SourceEvent>) -> Result<(), String>;
    /// True once the reader will never produce anything again (bounded input).
    fn finished(&self) -> bool;
    /// Continues `partition` at `offset` (a restored snapshot's): records
    /// before it need not be produced. A reader that cannot seek keeps
    /// reading where it is; the source skips what lies before `offset`.
    fn seek(&mut self, _partition: i32, _offset: i64) {}
}

/// Where the source's wall clock comes from (epoch ms; a fixed or simulated
/// clock in tests). The source reads time only through it.
pub type Clock = std::sync::Arc<dyn Fn() -> u64 + Send + Sync>;

/// The system wall clock in epoch ms.
pub fn system_clock() -> Clock {
    std::sync::Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    })
}

/// Allowed lateness behind a partition's newest event time unless configured, ms.
pub const DEFAULT_LATENESS_MS: u64 = 2_000;
/// Allowed event-time skew ahead of the wall clock unless configured, ms.
pub const DEFAULT_MAX_FUTURE_MS: u64 = 60_000;
/// How far the source may read ahead of the export's frontier unless
/// configured, ms of event time.
pub const DEFAULT_MAX_AHEAD_MS: u64 = 10_000;

/// Source settings.
#[derive(Clone)]
pub struct SourceConfig {
    /// Allowed lateness behind the partition's max event time, ms.
    pub lateness_ms: u64,
    /// Allowed clock skew into the future, ms.
    pub max_future_ms: u64,
    /// Wall time after a partition's end before it stops holding back time.
    pub idle_timeout: Duration,
    /// When all owned partitions are idle, hold time at `now − idle_lag`
    /// (None: hold it where it is).
    pub idle_lag_ms: Option<u64>,
    /// Records per activation, so one worker cannot starve the others.
    pub batch: usize,
    /// Event time the source may run ahead of the export's frontier before
    /// it pauses (None: never pauses; see the module doc).
    pub max_ahead_ms: Option<u64>,
    /// The wall clock for the future-timestamp check and idle advance.
    pub clock: Clock,
    /// Where to report what was read per partition (None: nowhere). Written
    /// only, never read by the dataflow.
    pub progress: Option<SourceProgress>,
}

impl SourceConfig {
    /// Defaults: [`DEFAULT_LATENESS_MS`], [`DEFAULT_MAX_FUTURE_MS`], 1 s
    /// idle timeout, idle lag of 10 s, the system clock.
    pub fn new() -> Self {
        SourceConfig {
            lateness_ms: DEFAULT_LATENESS_MS,
            max_future_ms: DEFAULT_MAX_FUTURE_MS,
            idle_timeout: Duration::from_secs(1),
            idle_lag_ms: Some(10_000),
            batch: 4096,
            max_ahead_ms: Some(DEFAULT_MAX_AHEAD_MS),
            clock: system_clock(),
            progress: None,
        }
    }

    /// Sets the allowed lateness.
    pub fn with_lateness_ms(mut self, ms: u64) -> Self {
        self.lateness_ms = ms;
        self
    }

    /// Sets the allowed future skew.
    pub fn with_max_future_ms(mut self, ms: u64) -> Self {
        self.max_future_ms = ms;
        self
    }

    /// Sets (or disables, with None) the idle advance lag.
    pub fn with_idle_lag_ms(mut self, ms: Option<u64>) -> Self {
        self.idle_lag_ms = ms;
        self
    }

    /// Sets (or disables, with None) the read-ahead bound.
    pub fn with_max_ahead_ms(mut self, ms: Option<u64>) -> Self {
        self.max_ahead_ms = ms;
        self
    }

    /// Sets the clock.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Reports per-partition progress into `progress`.
    pub fn with_progress(mut self, progress: SourceProgress) -> Self {
        self.progress = Some(progress);
        self
    }
}

impl Default for SourceConfig {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Default)]
struct PartitionState {
    max_ts: Option<u64>,
    /// Clock time (ms) the reader reported the partition's end, if nothing came since.
    eof_since: Option<u64>,
    /// Offset of the first record not read yet (None: none read).
    next_offset: Option<i64>,
}

/// A partition's reading state in a snapshot: where reading resumes, its
/// watermark, and the partial bars of ticks already read that have not been
/// sent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PartitionSnapshot {
    /// Offset of the first record the state does not reflect (None: none
    /// read yet; reading starts where the reader starts).
    pub next_offset: Option<i64>,
    /// Newest event time accepted.
    pub max_ts: Option<u64>,
    /// Whether the partition was idle (ended, and nothing came for the
    /// idle timeout).
    pub idle: bool,
    /// Partial bars not yet sent, by (end, symbol).
    pub partials: Vec<PartialBar>,
}

/// Builds the source operator; returns (partial bars of `bar_ms`, rejects,
/// snapshot pieces).
/// Accepted ticks are folded into a [`PartialBar`] per (symbol, partition,
/// bar) in offset order; a partial leaves once the source's capability has
/// passed its bar's end, at the capability it held before (at or before
/// its first tick's time), so nothing downstream can close the bar without
/// it. `export` is a probe at the end of the dataflow the source paces
/// itself by (see the module doc); None reads as fast as the reader allows.
///
/// With `snapshot_every` (ms), each time the capability moves past cut
/// times it sends a [`Piece`] on the third stream: per owned partition, a
/// [`PartitionSnapshot`] of the state as it was when the capability
/// crossed them. The pieces go out at time 0, on a capability held until
/// the source ends, so they never hold back the data. `restore` brings the
/// [`PartitionSnapshot`]s of a snapshot the run starts from (see the module
/// doc); nothing is read before they are in.
#[allow(clippy::too_many_arguments)]
pub fn tick_source<'s, R: RecordReader>(
    scope: Scope<'s, u64>,
    name: &str,
    mut reader: R,
    restore: StreamVec<'s, u64, Restored>,
    config: SourceConfig,
    bar_ms: u64,
    export: Option<ProbeHandle<u64>>,
    snapshot_every: Option<Cuts>,
) -> (
    StreamVec<'s, u64, PartialBar>,
    StreamVec<'s, u64, Reject>,
    StreamVec<'s, u64, Piece>,
) {
    let bar_ms = bar_ms.max(1);
    let SourceConfig {
        lateness_ms,
        max_future_ms,
        idle_timeout,
        idle_lag_ms,
        batch,
        max_ahead_ms,
        clock,
        progress,
    } = config;
    let pace = export.zip(max_ahead_ms);
    let worker = scope.index();
    let mut builder = OperatorBuilder::new(name.to_owned(), scope);
    let info = builder.operator_info();
    let mut restore_input =
        builder.new_input(restore, Exchange::new(|r: &Restored| route(&r.entry.key)));
    let (data_out, both) = builder.new_output::<Vec<Result<PartialBar, Reject>>>();
    let (piece_out, pieces) = builder.new_output::<Vec<Piece>>();
    let mut data_out = OutputBuilder::from(data_out);
    let mut piece_out = OutputBuilder::from(piece_out);
    builder.build(|mut caps| {
        let activator = scope.activator_for(info.address);
        let piece_cap = caps.pop().expect("a capability per output");
        let cap = caps.pop().expect("a capability per output");
        let mut partitions: BTreeMap<i32, PartitionState> = reader
            .partitions()
            .into_iter()
            .map(|p| (p, PartitionState::default()))
            .collect();
        // Every owned partition is listed from the start, read or not.
        if let Some(progress) = &progress {
            progress.update(
                &partitions
                    .keys()
                    .map(|p| (*p, PartitionProgress::default()))
                    .collect(),
            );
        }
        // A worker that owns nothing can never emit: release time at once
        // (once it knows a restore brings it nothing).
        let mut cap = Some((cap, piece_cap));
        // While restoring: the cut.
        let mut restored: Option<u64> = None;
        let mut restoring = true;
        // Restored partitions not read from yet: the offset they resume at.
        let mut resumed: BTreeMap<i32, i64> = BTreeMap::new();
        // Records skipped because their offset was read already.
        let mut redelivered: u64 = 0;
        let mut redelivered_reported: u64 = 0;
        let mut events = Vec::with_capacity(batch);
        let mut last_error: Option<String> = None;
        let mut read: BTreeMap<i32, PartitionProgress> = BTreeMap::new();
        // Clock time the source paused at, while it is paused.
        let mut paused_at: Option<u64> = None;
        // Partial bars not yet sent, by (bar end, partition), then symbol.
        let mut open: Open = BTreeMap::new();
        // The time the partitions' watermarks allow (lateness is judged
        // against it); the capability follows it in paced steps.
        let mut allowed: u64 = 0;
        move |frontiers| {
            if restoring {
                let now = clock();
                restore_input.for_each_stamp(|_, data| {
                    for r in data.flat_map(|d| d.drain(..)) {
                        let Key::Partition(p) = r.entry.key else {
                            continue;
                        };
                        let snap: PartitionSnapshot = snapshot::decode(&r.entry.bytes)
                            .expect("restored state is checked before the run");
                        restored = Some(restored.map_or(r.cut, |c| c.max(r.cut)));
                        let idle_ms = idle_timeout.as_millis() as u64;
                        let st = partitions.entry(p).or_default();
                        st.next_offset = snap.next_offset;
                        st.max_ts = snap.max_ts;
                        st.eof_since = snap.idle.then(|| now.saturating_sub(idle_ms));
                        if let Some(o) = snap.next_offset {
                            reader.seek(p, o);
                            resumed.insert(p, o);
                        }
                        for part in snap.partials {
                            open.entry((part.end_ms, p))
                                .or_default()
                                .insert(part.symbol.clone(), part);
                        }
                    }
                });
                if !frontiers[0].frontier().is_empty() {
                    return;
                }
                restoring = false;
                if partitions.is_empty() {
                    cap = None;
                    return;
                }
                // At the cut, not at the partitions' least watermark: a
                // partial kept by the snapshot ends after the watermark of
                // the worker that read it, which another grouping of the
                // partitions may not reach. The next activation sends every
                // partial the watermarks have passed, at the cut (before
                // their ends), and moves on.
                if let (Some(cut), Some((c, _))) = (restored, cap.as_mut()) {
                    c.downgrade(&cut);
                    allowed = cut;
                }
            }
            let Some((c, piece_cap)) = cap.as_mut() else {
                return;
            };
            let mut output = data_out.activate();
            if let Some((probe, ahead)) = &pace {
                let behind = c.time().saturating_sub(*ahead);
                if probe.less_than(&behind) {
                    paused_at.get_or_insert_with(|| clock());
                    activator.activate_after(Duration::from_millis(1));
                    return;
                }
            }
            if let Some(since) = paused_at.take() {
                // The idle clock stood still while the source was paused.
                let paused = clock().saturating_sub(since);
                for st in partitions.values_mut() {
                    if let Some(t) = st.eof_since.as_mut() {
                        *t = t.saturating_add(paused);
                    }
                }
            }
            events.clear();
            match reader.poll(batch, &mut events) {
                Ok(()) => last_error = None,
                Err(e) => {
                    if last_error.as_ref() != Some(&e) {
                        warn!(error = %e, "source read failed; retrying");
                    }
                    last_error = Some(e);
                }
            }
            let now = clock();
            let limits = ValidationLimits {
                now_ms: now,
                max_future_ms,
            };
            let got_records = events.iter().any(|e| matches!(e, SourceEvent::Record(_)));
            for event in events.drain(..) {
                match event {
                    SourceEvent::PartitionEof(p) => {
                        if let Some(st) = partitions.get_mut(&p) {
                            st.eof_since.get_or_insert(now);
                        }
                    }
                    SourceEvent::Record(rec) => {
                        let seen = partitions
                            .get(&rec.pos.partition)
                            .and_then(|st| st.next_offset)
                            .is_some_and(|next| rec.pos.offset < next);
                        if !resumed.is_empty() {
                            if let Some(at) = resumed.remove(&rec.pos.partition) {
                                if rec.pos.offset > at {
                                    error!(
                                        partition = rec.pos.partition,
                                        resumed_at = at,
                                        first_read = rec.pos.offset,
                                        "the records between where the snapshot resumes and the \
                                         first one read were never delivered"
                                    );
                                }
                            }
                        }
                        if seen {
                            // Read already (or in the restored state): a
                            // reader that goes back delivers it twice.
                            redelivered += 1;
                            continue;
                        }
                        partitions.entry(rec.pos.partition).or_default().next_offset =
                            Some(rec.pos.offset + 1);
                        if progress.is_some() {
                            let r = read.entry(rec.pos.partition).or_default();
                            r.records += 1;
                            r.next_offset = Some(rec.pos.offset + 1);
                            r.last_record_at_ms = Some(now);
                        }
                        let st = partitions.entry(rec.pos.partition).or_default();
                        st.eof_since = None;
                        // The partition's watermark places rejects in event time.
                        let wm = st.max_ts.map_or(0, |m| m.saturating_sub(lateness_ms));
                        let at = wm.max(allowed);
                        // Borrowed from the payload when the scanner is sure
                        // of it; only a tick the reference decoder had to
                        // read, a new partial bar or a reject allocates.
                        let reference;
                        let tick = match decode_fast_ref(&rec.payload, rec.pos, limits) {
                            Some(tick) => tick,
                            None => match decode_reference(&rec.payload, rec.pos, limits) {
                                Ok(tick) => {
                                    reference = tick;
                                    reference.view()
                                }
                                Err(mut reject) => {
                                    reject.at_ms = at;
                                    output.session(&*c).give(Err(*reject));
                                    continue;
                                }
                            },
                        };
                        if tick.ts_ms < wm || tick.ts_ms < allowed {
                            let detail = format!(
                                "ts {} is behind the watermark {} (allowed lateness {} ms)",
                                tick.ts_ms,
                                wm.max(allowed),
                                lateness_ms
                            );
                            let mut reject =
                                Reject::of_tick(&tick.to_tick(), RejectReason::Late, detail);
                            reject.at_ms = at;
                            output.session(&*c).give(Err(reject));
                        } else {
                            st.max_ts = Some(st.max_ts.map_or(tick.ts_ms, |m| m.max(tick.ts_ms)));
                            // Sent at a capability <= ts before the capability passes
                            // the bar's end (below), so bars cannot close without it.
                            let (_, end) = bar_bounds(tick.ts_ms, bar_ms);
                            let bucket = open.entry((end, tick.pos.partition)).or_default();
                            match bucket.get_mut(tick.symbol) {
                                Some(p) => p.add(&tick),
                                None => {
                                    bucket.insert(
                                        tick.symbol.to_string(),
                                        PartialBar::new(&tick, end),
                                    );
                                }
                            }
                        }
                    }
                }
            }
            if redelivered > redelivered_reported {
                // Expected after a restore: a reader that cannot seek reads
                // the partition from its start.
                if restored.is_some() {
                    debug!(records = redelivered, "skipped records the snapshot holds");
                } else {
                    warn!(
                        records = redelivered,
                        "the reader delivered records at offsets already read; skipped"
                    );
                }
                redelivered_reported = redelivered;
            }
            if let Some(progress) = &progress {
                if !read.is_empty() {
                    for (p, r) in read.iter_mut() {
                        let st = &partitions[p];
                        r.max_event_ms = st.max_ts;
                        r.watermark_ms = st.max_ts.map(|m| m.saturating_sub(lateness_ms));
                    }
                    progress.update(&read);
                    read.clear();
                }
            }
            // Time may advance to the least watermark of the partitions that
            // are not idle; to the end of time once the reader has finished.
            let finished = reader.finished();
            let idle_ms = idle_timeout.as_millis() as u64;
            let idle = |st: &PartitionState| {
                finished
                    || st
                        .eof_since
                        .is_some_and(|t| now.saturating_sub(t) >= idle_ms)
            };
            let active_min = partitions
                .values()
                .filter(|st| !idle(st))
                .map(|st| st.max_ts.map_or(0, |m| m.saturating_sub(lateness_ms)))
                .min();
            allowed = allowed.max(match (active_min, idle_lag_ms) {
                _ if finished => u64::MAX,
                (Some(wm), _) => wm,
                (None, Some(lag)) => now.saturating_sub(lag),
                (None, None) => allowed,
            });
            // The capability follows in steps of `max_ahead_ms` past the
            // oldest open bar, so what a long jump releases is paced like
            // reading is: a partition that held time back (empty, or ended
            // but not idle yet) while the others were read far ahead, or the
            // end of the input, would otherwise send every bar read so far
            // at once, and the whole history would be in flight downstream.
            let step = match (&pace, open.keys().next()) {
                (Some((_, ahead)), Some(&(end, _))) => {
                    allowed.min(end.max(*c.time()).saturating_add((*ahead).max(1)))
                }
                _ => allowed,
            };
            if step > *c.time() {
                let mut session = output.session(&*c);
                send_partials(&mut open, step, |p| session.give(Ok(p)));
                drop(session);
                if finished && open.is_empty() {
                    // Nothing more will be read: the state now holds for
                    // every later cut (how far one completes is up to the
                    // operators downstream, which piece no cut past their
                    // last frontier).
                    if snapshot_every.is_some() {
                        let piece = Piece::timed(Op::Source, worker, *c.time(), || {
                            (u64::MAX, source_entries(&partitions, &open, idle))
                        });
                        piece_out.activate().session(&*piece_cap).give(piece);
                    }
                    cap = None;
                    return;
                }
                if snapshot_every
                    .as_ref()
                    .is_some_and(|cuts| cuts.crosses(*c.time(), step))
                {
                    let piece = Piece::timed(Op::Source, worker, *c.time(), || {
                        (step, source_entries(&partitions, &open, idle))
                    });
                    piece_out.activate().session(&*piece_cap).give(piece);
                }
                c.downgrade(&step);
            }
            if step < allowed {
                // More to release: at once, unless the pace says wait.
                activator.activate();
                return;
            }
            if got_records {
                activator.activate();
            } else {
                activator.activate_after(Duration::from_millis(5));
            }
        }
    });
    let (partials, rejects) = both.ok_err(|r| r);
    (partials, rejects, pieces)
}

/// Partial bars not yet sent, by (bar end, partition), then symbol
/// (probed once per tick: a fast hash).
type Open = BTreeMap<(u64, i32), foldhash::HashMap<String, PartialBar>>;

/// The source's state for a piece: per partition, its [`PartitionSnapshot`].
fn source_entries(
    partitions: &BTreeMap<i32, PartitionState>,
    open: &Open,
    idle: impl Fn(&PartitionState) -> bool,
) -> Vec<Entry> {
    partitions
        .iter()
        .map(|(&p, st)| Entry {
            op: Op::Source,
            key: Key::Partition(p),
            bytes: encode(&PartitionSnapshot {
                next_offset: st.next_offset,
                max_ts: st.max_ts,
                idle: idle(st),
                partials: partials_of(open, p),
            }),
        })
        .collect()
}

/// Partition `p`'s partial bars not yet sent, by (end, symbol).
fn partials_of(open: &Open, p: i32) -> Vec<PartialBar> {
    let mut out: Vec<PartialBar> = open
        .iter()
        .filter(|((_, q), _)| *q == p)
        .flat_map(|(_, by_symbol)| by_symbol.values().cloned())
        .collect();
    out.sort_by(|a, b| (a.end_ms, &a.symbol).cmp(&(b.end_ms, &b.symbol)));
    out
}

/// Sends every partial bar that ends at or before `upto` (no tick of it can
/// be accepted once the capability is there).
fn send_partials(open: &mut Open, upto: u64, mut give: impl FnMut(PartialBar)) {
    while let Some(entry) = open.first_entry() {
        if entry.key().0 > upto {
            break;
        }
        for (_, p) in entry.remove() {
            give(p);
        }
    }
}

#[cfg(test)]
mod tests;
