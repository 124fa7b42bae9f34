//! The "Deploy" operator and its link to the orchestrator (see the module
//! above for the time semantics).
//!
//! Only worker 0 holds capabilities; the others drop theirs at once. Worker
//! 0 watches the times of all bars (exchanged to it as empty records): the
//! first bar fixes the schedule (`T₁` is the first multiple of `every_ms`
//! after it), a bar at or after the held `T` makes `T` due. Decisions wait
//! in the [`DeployLink`] until their `T` is due, so whether one is applied
//! depends only on the data, never on when it arrived.
//!
//! Snapshots. The schedule's state ([`DeploySnapshot`]: the held `T` and
//! the version deployed per (kind, symbol, horizon)) changes only when the
//! schedule starts (at the first bar) and when a decision is applied, at
//! the held time. So the state before the next change holds for every cut
//! up to the time the capability is held at, and one piece covers them.
//! Restored, the operator holds the stored `T` (at the cut at the
//! earliest) and the orchestrator is asked for it again, as after a replay.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::vec::Map;
use timely::dataflow::StreamVec;
use timely::scheduling::SyncActivator;
use tracing::{info, warn};

use super::{Decision, Deployment, ModelRecord, ModelStatus};
use crate::bars::Bar;
use crate::snapshot::{decode, encode, route, Cuts, Entry, Key, Op, Piece, Restored};
use crate::source::Clock;

/// How the Deploy operator is wired.
#[derive(Clone)]
pub struct DeploySetup {
    /// Event time between scheduled retrains, ms (> 0).
    pub every_ms: u64,
    /// Live mode: the longest wall time (ms) data may wait at a scheduled
    /// time for its decision; None (replays): wait as long as it takes.
    pub stall_bound_ms: Option<u64>,
    /// The wall clock, for the stall bound only.
    pub clock: Clock,
    /// Where decisions come from.
    pub link: DeployLink,
}

/// What the dataflow is waiting for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hold {
    /// The scheduled time not decided yet.
    pub scheduled_ms: u64,
    /// Some bar at or after it exists, so its decision will be applied.
    pub due: bool,
    /// Live mode only: the stall bound passed and the hold follows the data;
    /// a decision now is applied at this event time (or later).
    pub released_at_ms: Option<u64>,
}

/// What became of a decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Applied {
    /// The scheduled time it decided.
    pub scheduled_ms: u64,
    /// The event time it took effect at; None: the data ended before the
    /// scheduled time, so it never did.
    pub at_ms: Option<u64>,
}

#[derive(Default)]
struct LinkState {
    activator: Option<SyncActivator>,
    decisions: BTreeMap<u64, Decision>,
    hold: Option<Hold>,
    applied: Vec<Applied>,
    finished: bool,
}

/// The channel between the orchestrator (any thread) and the Deploy
/// operator on worker 0. Cloning shares it.
#[derive(Clone, Default)]
pub struct DeployLink {
    inner: Arc<Mutex<LinkState>>,
}

impl DeployLink {
    /// A fresh link.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, LinkState> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The scheduled time the dataflow waits for, if any.
    pub fn hold(&self) -> Option<Hold> {
        self.state().hold
    }

    /// True once the input has ended and nothing more will be scheduled.
    pub fn finished(&self) -> bool {
        self.state().finished
    }

    /// Hands over the decision for one scheduled time and wakes the operator.
    pub fn decide(&self, decision: Decision) {
        let mut s = self.state();
        s.decisions.insert(decision.scheduled_ms, decision);
        if let Some(a) = &s.activator {
            // Fails only once the dataflow is gone; nothing waits then.
            let _ = a.activate();
        }
    }

    /// Decisions applied (or discarded) since the last call.
    pub fn take_applied(&self) -> Vec<Applied> {
        std::mem::take(&mut self.state().applied)
    }
}

/// Per-worker-0 state of the schedule.
struct Schedule {
    every_ms: u64,
    /// Earliest and latest bar times seen.
    seen: Option<(u64, u64)>,
    /// The held, undecided scheduled time (None before the first bar).
    hold: Option<u64>,
    /// Wall time (ms) the data first waited at the held time.
    stalled_since: Option<u64>,
    released: bool,
    /// The version currently deployed per (kind, symbol, horizon).
    current: BTreeMap<(String, String, u32), ModelRecord>,
}

impl Schedule {
    fn after(&self, t: u64) -> u64 {
        (t / self.every_ms + 1) * self.every_ms
    }

    fn snapshot(&self) -> DeploySnapshot {
        DeploySnapshot {
            hold: self.hold,
            current: self.current.values().cloned().collect(),
        }
    }
}

/// The schedule's state in a snapshot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeploySnapshot {
    /// The scheduled time held, undecided (None: no bar yet).
    pub hold: Option<u64>,
    /// The version deployed per (kind, symbol, horizon).
    pub current: Vec<ModelRecord>,
}

/// The Deploy operator: returns the deployments (to be exchanged by symbol
/// into the predictor) and the registry rows, each at the event time it
/// takes effect, and with `snapshot_every` its snapshot pieces (see the
/// module doc). `restore` brings a snapshot's [`DeploySnapshot`] at time 0.
pub fn deployments<'s>(
    bars: StreamVec<'s, u64, Bar>,
    restore: StreamVec<'s, u64, Restored>,
    setup: DeploySetup,
    snapshot_every: Option<Cuts>,
) -> (
    StreamVec<'s, u64, Deployment>,
    StreamVec<'s, u64, ModelRecord>,
    StreamVec<'s, u64, Piece>,
) {
    let DeploySetup {
        every_ms,
        stall_bound_ms,
        clock,
        link,
    } = setup;
    let scope = bars.scope();
    let units = bars.map(|_| ());
    let mut builder = OperatorBuilder::new("Deploy".to_owned(), scope);
    let info = builder.operator_info();
    let mut input = builder.new_input(units, Exchange::new(|_: &()| 0));
    let mut restore_input =
        builder.new_input(restore, Exchange::new(|r: &Restored| route(&r.entry.key)));
    let (deploy_out, deploy_stream) = builder.new_output::<Vec<Deployment>>();
    let (records_out, records_stream) = builder.new_output::<Vec<ModelRecord>>();
    let (piece_out, pieces) = builder.new_output::<Vec<Piece>>();
    let mut deploy_out = OutputBuilder::from(deploy_out);
    let mut records_out = OutputBuilder::from(records_out);
    let mut piece_out = OutputBuilder::from(piece_out);
    let leader = scope.index() == 0 && every_ms > 0;
    let activator = scope.activator_for(info.address.clone());
    if leader {
        let sync = scope.worker().sync_activator_for(info.address.to_vec());
        link.state().activator = Some(sync);
    }
    builder.build(move |mut caps| {
        // Held until the input ends: pieces go out at time 0.
        let mut piece_cap = caps.pop().filter(|_| leader);
        let mut caps = leader.then_some(caps);
        // Cuts up to here have had their piece.
        let mut pieced: u64 = 0;
        let mut sched = Schedule {
            every_ms: every_ms.max(1),
            seen: None,
            hold: None,
            stalled_since: None,
            released: false,
            current: BTreeMap::new(),
        };
        move |frontiers| {
            let frontier = &frontiers[0];
            restore_input.for_each_stamp(|_, data| {
                for r in data.flat_map(|d| d.drain(..)) {
                    let snap: DeploySnapshot =
                        decode(&r.entry.bytes).expect("restored state is checked before the run");
                    sched.current = snap
                        .current
                        .into_iter()
                        .map(|m| ((m.kind.clone(), m.symbol.clone(), m.horizon_bars), m))
                        .collect();
                    sched.hold = snap.hold;
                    // Cuts up to the restored one are the run's it came from.
                    pieced = r.cut;
                    if let (Some(h), Some(held)) = (snap.hold, caps.as_mut()) {
                        let at = h.max(r.cut);
                        for c in held.iter_mut() {
                            c.downgrade(&at);
                        }
                    }
                }
            });
            if !frontiers[1].frontier().is_empty() {
                return;
            }
            input.for_each_stamp(|cap, data| {
                data.for_each(|d| d.clear());
                if let Some(&t) = cap.least() {
                    let (lo, hi) = sched.seen.unwrap_or((t, t));
                    sched.seen = Some((lo.min(t), hi.max(t)));
                }
            });
            let Some(held) = caps.as_mut() else {
                piece_cap = None;
                return;
            };
            let done = frontier.is_empty();
            // The state holds for every cut up to the next change: the
            // first bar (before the schedule starts), else the held time.
            let mut piece = |upto: u64, pieced: &mut u64, sched: &Schedule| {
                if let (Some(cuts), Some(pc)) = (snapshot_every.as_ref(), piece_cap.as_ref()) {
                    if cuts.crosses(*pieced, upto) {
                        let piece = Piece::timed(Op::Deploy, 0, *pieced, || {
                            let entry = Entry {
                                op: Op::Deploy,
                                key: Key::Global,
                                bytes: encode(&sched.snapshot()),
                            };
                            (upto, vec![entry])
                        });
                        piece_out.activate().session(pc).give(piece);
                    }
                }
                *pieced = (*pieced).max(upto);
            };
            if sched.hold.is_none() {
                match sched.seen {
                    Some((first, _)) if done || !frontier.less_equal(&first) => {
                        piece(first, &mut pieced, &sched);
                        let t1 = sched.after(first);
                        for c in held.iter_mut() {
                            c.downgrade(&t1);
                        }
                        sched.hold = Some(t1);
                        info!(first_bar_ms = first, scheduled_ms = t1, "retrain schedule starts");
                    }
                    _ if done => {
                        caps = None;
                        piece_cap = None;
                        link.state().finished = true;
                        return;
                    }
                    _ => {
                        // Before the first bar the hold follows the input,
                        // so it never waits for more than the bars do (the
                        // source's flow control relies on that).
                        if let Some(&f) = frontier.frontier().first() {
                            let upto = sched.seen.map_or(f, |(first, _)| first.min(f));
                            piece(upto, &mut pieced, &sched);
                            if f > *held[0].time() {
                                for c in held.iter_mut() {
                                    c.downgrade(&f);
                                }
                            }
                        }
                        return;
                    }
                }
            }
            while let Some(t) = sched.hold {
                let due = sched.seen.is_some_and(|(_, last)| last >= t);
                if !due && done {
                    let mut s = link.state();
                    if s.decisions.remove(&t).is_some() {
                        s.applied.push(Applied {
                            scheduled_ms: t,
                            at_ms: None,
                        });
                    }
                    s.hold = None;
                    s.finished = true;
                    drop(s);
                    caps = None;
                    piece_cap = None;
                    return;
                }
                let decision = if due {
                    link.state().decisions.remove(&t)
                } else {
                    None
                };
                let Some(decision) = decision else {
                    // Not decided yet: live mode bounds the wait.
                    if let Some(bound) = stall_bound_ms {
                        if done || !frontier.less_equal(&t) {
                            let now = clock();
                            let since = *sched.stalled_since.get_or_insert(now);
                            if !sched.released && now.saturating_sub(since) >= bound {
                                sched.released = true;
                                warn!(scheduled_ms = t, waited_ms = now - since, "no retrain decision within the stall bound; data moves on and the swap will happen later");
                            }
                            if !sched.released {
                                let left = bound - now.saturating_sub(since);
                                activator.activate_after(Duration::from_millis(left.max(1)));
                            }
                        }
                        if sched.released {
                            if let Some(&f) = frontier.frontier().first() {
                                if f > *held[0].time() {
                                    for c in held.iter_mut() {
                                        c.downgrade(&f);
                                    }
                                }
                            }
                        }
                    }
                    let at = *held[0].time();
                    piece(at, &mut pieced, &sched);
                    link.state().hold = Some(Hold {
                        scheduled_ms: t,
                        due,
                        released_at_ms: sched.released.then_some(at),
                    });
                    return;
                };
                let at = *held[0].time();
                // Cuts up to `at` see the state before the decision.
                piece(at, &mut pieced, &sched);
                let (deploys, records) = apply(&mut sched.current, decision, at);
                deploy_out
                    .activate()
                    .session(&held[0])
                    .give_iterator(deploys.into_iter());
                records_out
                    .activate()
                    .session(&held[1])
                    .give_iterator(records.into_iter());
                if at != t {
                    warn!(scheduled_ms = t, applied_ms = at, "retrain decision applied late");
                }
                link.state().applied.push(Applied {
                    scheduled_ms: t,
                    at_ms: Some(at),
                });
                let next = sched.after(at);
                for c in held.iter_mut() {
                    c.downgrade(&next);
                }
                sched.hold = Some(next);
                sched.stalled_since = None;
                sched.released = false;
            }
        }
    });
    (deploy_stream, records_stream, pieces)
}

/// Applies one decision at event time `at`: the deployments of its
/// candidates and the registry rows (candidates, rejections, and the
/// retirement of every version a candidate replaces).
fn apply(
    current: &mut BTreeMap<(String, String, u32), ModelRecord>,
    decision: Decision,
    at: u64,
) -> (Vec<Deployment>, Vec<ModelRecord>) {
    let mut deploys = Vec::new();
    let mut records = Vec::new();
    for r in decision.records {
        let deployable = r.status == ModelStatus::Candidate
            && r.model.as_ref().is_some_and(|m| m.check().is_ok());
        if !deployable {
            let reason = if r.status == ModelStatus::Candidate {
                "the fitted model failed its check at deployment".to_string()
            } else {
                r.reason.clone()
            };
            records.push(ModelRecord {
                deployed_at_ms: None,
                ..r.with_status(ModelStatus::Rejected, at, reason)
            });
            continue;
        }
        let key = (r.kind.clone(), r.symbol.clone(), r.horizon_bars);
        let new = ModelRecord {
            deployed_at_ms: Some(at),
            ..r.with_status(ModelStatus::Candidate, at, r.reason.clone())
        };
        if let Some(old) = current.insert(key, new.clone()) {
            records.push(old.with_status(
                ModelStatus::Retired,
                at,
                format!("replaced by {}", new.id),
            ));
        }
        deploys.push(Deployment {
            symbol: new.symbol.clone(),
            horizon_bars: new.horizon_bars,
            kind: new.kind.clone(),
            version: new.version_ref(),
            model: new.model.clone().expect("checked above"),
        });
        records.push(new);
    }
    (deploys, records)
}
