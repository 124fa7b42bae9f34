//! The scheduler loop: every tick (and on every command) it looks at the
//! dataflow's hold, the router's progress and the wall clock, and starts
//! what is due, at most one run per job (see the module above for the
//! rules). Runs are tokio tasks; their rows go to the history as they
//! happen, and the loop publishes every job's state for the API.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use dataflows::deploy::{Decision, DeployLink};
use dataflows::num::{utc_day, DAY_MS};
use serde::Serialize;
use serde_json::json;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::sync::{watch, Mutex, Notify};
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use super::attempt::{Attempt, Ctx};
use super::history::History;
use super::registry::{past_decision, read_registry};
use super::run::{run_id, JobRun, RunState};
use super::{work, JobsHandle, JobsOptions, Progress, JOBS};
use crate::http::LiveView;
use crate::now_ms;
use crate::shutdown::Stop;
use crate::warehouse::date::iso_ms;

/// How often the loop looks, at most.
const TICK: Duration = Duration::from_millis(50);
/// How long a retrain waits to see its decision applied, when it is due.
const APPLY_WAIT: Duration = Duration::from_secs(5);

/// A request from the API.
#[derive(Debug)]
pub(crate) struct Command {
    job: &'static str,
    interval: Option<(u64, u64)>,
}

/// Why a manual run was not queued.
#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    /// No such job.
    #[error("unknown job `{0}` (jobs: retrain, evaluate, promote, maintain)")]
    Unknown(String),
    /// The interval is empty or reversed.
    #[error("bad data interval: start must be before end")]
    BadInterval,
    /// The orchestrator has stopped.
    #[error("the orchestrator is not running")]
    Stopped,
}

pub(super) fn trigger(
    tx: &UnboundedSender<Command>,
    job: &str,
    interval: Option<(u64, u64)>,
) -> Result<String, TriggerError> {
    let job = JOBS
        .iter()
        .copied()
        .find(|j| *j == job)
        .ok_or_else(|| TriggerError::Unknown(job.to_string()))?;
    if interval.is_some_and(|(s, e)| s >= e) {
        return Err(TriggerError::BadInterval);
    }
    tx.send(Command { job, interval })
        .map_err(|_| TriggerError::Stopped)?;
    Ok(format!("{job}:manual (queued)"))
}

/// One job's state, as `/api/jobs` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct JobStatus {
    /// Job name.
    pub name: &'static str,
    /// When it runs.
    pub schedule: String,
    /// `disabled`, `running`, `waiting` or `idle`.
    pub state: &'static str,
    /// What it runs or waits for.
    pub detail: String,
    /// Runs recorded (distinct run ids).
    pub runs: u64,
    /// Runs that ended well.
    pub succeeded: u64,
    /// Runs that failed for good.
    pub failed: u64,
    /// Its latest finished run failed.
    pub failing: bool,
    /// Manual runs queued.
    pub queued: usize,
    /// Its latest history row.
    pub last: Option<JobRun>,
}

/// The orchestrator (see the module docs).
pub struct Orchestrator {
    ctx: Ctx,
    horizons: Vec<u32>,
    root: PathBuf,
    link: Option<DeployLink>,
    live: bool,
    progress: watch::Receiver<Progress>,
    flush: Arc<Notify>,
    view: Arc<LiveView>,
    status: Arc<RwLock<Vec<JobStatus>>>,
    commands: UnboundedReceiver<Command>,
    queue: BTreeMap<&'static str, VecDeque<Option<(u64, u64)>>>,
    active: BTreeMap<&'static str, JoinHandle<()>>,
    waiting: BTreeMap<&'static str, String>,
    decided: BTreeSet<u64>,
    next_evaluate: Option<i32>,
    next_promote: Option<i32>,
    last_maintain_ms: u64,
}

/// Where the orchestrator's inputs come from.
pub struct Wiring {
    /// The dataflow's deployment link (None: retraining is off).
    pub link: Option<DeployLink>,
    /// Live input (the stall bound applies); false for a bounded replay.
    pub live: bool,
    /// The router's progress.
    pub progress: watch::Receiver<Progress>,
    /// Asks the router to commit what it holds now.
    pub flush: Arc<Notify>,
    /// The live view (registry rows, health counters).
    pub view: Arc<LiveView>,
}

impl Orchestrator {
    /// An orchestrator over the warehouse at `root` with `history`; returns
    /// it with the handle the API uses.
    pub fn new(
        opts: JobsOptions,
        horizons: Vec<u32>,
        root: PathBuf,
        history: History,
        wiring: Wiring,
    ) -> (Self, JobsHandle) {
        let Wiring {
            link,
            live,
            progress,
            flush,
            view,
        } = wiring;
        let rows = Arc::new(RwLock::new(history.rows().to_vec()));
        let last_maintain_ms = history
            .rows()
            .iter()
            .filter(|r| r.job == "maintain")
            .map(|r| r.started_at_ms)
            .max()
            .unwrap_or(0)
            .max(now_ms());
        let (tx, commands) = tokio::sync::mpsc::unbounded_channel();
        let status = Arc::new(RwLock::new(Vec::new()));
        let handle = JobsHandle {
            status: status.clone(),
            history: rows.clone(),
            commands: tx,
        };
        let orchestrator = Orchestrator {
            ctx: Ctx {
                history: Arc::new(Mutex::new(history)),
                rows,
                opts,
            },
            horizons,
            root,
            link,
            live,
            progress,
            flush,
            view,
            status,
            commands,
            queue: BTreeMap::new(),
            active: BTreeMap::new(),
            waiting: BTreeMap::new(),
            decided: BTreeSet::new(),
            next_evaluate: None,
            next_promote: None,
            last_maintain_ms,
        };
        orchestrator.publish();
        (orchestrator, handle)
    }

    /// Runs until `stop`, or until the dataflow has finished and nothing
    /// is left to run. Attempts a crash left open are closed first.
    pub async fn run(mut self, stop: Stop) {
        let closed = self
            .ctx
            .history
            .lock()
            .await
            .close_interrupted(now_ms())
            .await;
        if !closed.is_empty() {
            self.ctx
                .rows
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .extend(closed);
        }
        loop {
            tokio::select! {
                Some(cmd) = self.commands.recv() => {
                    info!(job = cmd.job, interval = ?cmd.interval, "manual run queued");
                    self.queue.entry(cmd.job).or_default().push_back(cmd.interval);
                }
                _ = tokio::time::sleep(TICK) => {}
                _ = stop.wait() => break,
            }
            self.active.retain(|_, h| !h.is_finished());
            let started = self.step();
            self.publish();
            let p = *self.progress.borrow();
            if p.finished
                && !started
                && self.active.is_empty()
                && self.queue.values().all(VecDeque::is_empty)
            {
                info!("dataflow finished and no job is due: orchestrator done");
                break;
            }
        }
        for (job, h) in std::mem::take(&mut self.active) {
            if !h.is_finished() {
                warn!(
                    job,
                    "stopping with a job running; its attempt will be retried on restart"
                );
                h.abort();
            }
        }
        self.ctx.history.lock().await.flush().await;
        self.publish();
    }

    fn latest(&self, run: &str) -> Option<JobRun> {
        let rows = self.ctx.rows.read().unwrap_or_else(|e| e.into_inner());
        rows.iter()
            .filter(|r| r.run_id == run)
            .max_by_key(|r| (r.attempt, r.started_at_ms, r.state != RunState::Running))
            .cloned()
    }

    /// Starts what is due; true if anything started.
    fn step(&mut self) -> bool {
        let p = *self.progress.borrow();
        let mut started = self.step_retrain(&p);
        started |= self.step_day(&p, "evaluate");
        started |= self.step_day(&p, "promote");
        started |= self.step_maintain();
        started |= self.step_manual(&p);
        started
    }

    fn spawn(
        &mut self,
        job: &'static str,
        task: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        self.waiting.remove(job);
        self.active.insert(job, tokio::spawn(task));
    }

    fn need_committed(&mut self, p: &Progress, job: &'static str, below: u64) -> bool {
        if p.complete_below >= below {
            return true;
        }
        if p.delivered_below >= below {
            self.flush.notify_one();
        }
        self.waiting.insert(
            job,
            format!("the warehouse to hold every row before {}", iso_ms(below)),
        );
        false
    }

    fn step_retrain(&mut self, p: &Progress) -> bool {
        let Some(link) = self.link.clone() else {
            return false;
        };
        if self.active.contains_key("retrain") {
            return false;
        }
        let Some(hold) = link.hold() else {
            self.waiting
                .insert("retrain", "the first bar (it fixes the schedule)".into());
            return false;
        };
        let t = hold.scheduled_ms;
        if self.decided.contains(&t) {
            self.waiting.insert(
                "retrain",
                format!("the data to reach {} (models decided)", iso_ms(t)),
            );
            return false;
        }
        let (embargo, window_ms) = (
            self.ctx.opts.train.embargo_ms,
            self.ctx.opts.train.window_ms,
        );
        let end = t.saturating_sub(embargo);
        if !self.need_committed(p, "retrain", end) {
            return false;
        }
        if !self.live && !hold.due {
            self.waiting
                .insert("retrain", format!("the data to reach {}", iso_ms(t)));
            return false;
        }
        let window = (end.saturating_sub(window_ms), end);
        let prior = self.latest(&run_id("retrain", t));
        let (ctx, root, horizons) = (self.ctx.clone(), self.root.clone(), self.horizons.clone());
        self.decided.insert(t);
        self.spawn("retrain", async move {
            retrain_task(ctx, root, horizons, link, t, window, prior).await
        });
        true
    }

    fn step_day(&mut self, p: &Progress, job: &'static str) -> bool {
        if self.active.contains_key(job) {
            return false;
        }
        let (Some(first), Some(last)) = (p.first_ms, p.last_ms) else {
            self.waiting.insert(job, "the first delivery".into());
            return false;
        };
        let last_day = utc_day(last.saturating_sub(1));
        loop {
            let next = match job {
                "evaluate" => &mut self.next_evaluate,
                _ => &mut self.next_promote,
            };
            let day = *next.get_or_insert(utc_day(first));
            let day_end = (day as u64 + 1) * DAY_MS;
            if day > last_day {
                self.waiting.insert(
                    job,
                    format!("data of {}", crate::warehouse::date::day_string(day)),
                );
                return false;
            }
            if !self.need_committed(p, job, day_end + 1) {
                return false;
            }
            let id = run_id(job, day_end);
            let prior = self.latest(&id);
            if prior.as_ref().is_some_and(|r| r.state.is_final()) {
                match job {
                    "evaluate" => self.next_evaluate = Some(day + 1),
                    _ => self.next_promote = Some(day + 1),
                }
                continue;
            }
            if job == "promote" {
                match self.latest(&run_id("evaluate", day_end)).map(|r| r.state) {
                    Some(RunState::Success) => {}
                    Some(RunState::Failed) => {}
                    _ => {
                        self.waiting.insert(
                            job,
                            format!("evaluate of {}", crate::warehouse::date::day_string(day)),
                        );
                        return false;
                    }
                }
            }
            let (attempt, trigger) = resume(prior.as_ref());
            let a = Attempt {
                run_id: id,
                job,
                interval: Some((day_end - DAY_MS, day_end)),
                attempt,
                trigger,
                started_at_ms: 0,
            };
            let (ctx, root, view) = (self.ctx.clone(), self.root.clone(), self.view.clone());
            let upstream_failed = job == "promote"
                && self.latest(&run_id("evaluate", day_end)).map(|r| r.state)
                    == Some(RunState::Failed);
            self.spawn(job, async move {
                day_task(ctx, root, view, a, day, upstream_failed).await
            });
            return true;
        }
    }

    fn step_maintain(&mut self) -> bool {
        let every = self.ctx.opts.maintain_every_ms;
        if every == 0 || self.active.contains_key("maintain") {
            return false;
        }
        let now = now_ms();
        if now < self.last_maintain_ms + every {
            self.waiting.insert(
                "maintain",
                format!("{} (wall clock)", iso_ms(self.last_maintain_ms + every)),
            );
            return false;
        }
        self.last_maintain_ms = now;
        self.spawn_maintain("schedule");
        true
    }

    fn spawn_maintain(&mut self, trigger: &'static str) {
        let a = Attempt {
            run_id: run_id("maintain", now_ms()),
            job: "maintain",
            interval: None,
            attempt: 1,
            trigger,
            started_at_ms: 0,
        };
        let (ctx, root) = (self.ctx.clone(), self.root.clone());
        self.spawn("maintain", async move {
            let max = ctx.opts.attempts;
            let r = ctx
                .run(a, max, || async { Ok(((), work::maintain(&root).await?)) })
                .await;
            if let Ok(((), outputs, a)) = r {
                ctx.end(&a, RunState::Success, &outputs, None).await;
            }
        });
    }

    fn step_manual(&mut self, p: &Progress) -> bool {
        let mut started = false;
        for job in JOBS {
            if self.active.contains_key(job) {
                continue;
            }
            let Some(interval) = self.queue.get_mut(job).and_then(VecDeque::pop_front) else {
                continue;
            };
            started = true;
            if job == "maintain" {
                self.spawn_maintain("manual");
                continue;
            }
            let opts = &self.ctx.opts;
            let complete = p.complete_below.min(now_ms());
            let interval = interval.unwrap_or(match job {
                "retrain" => {
                    let end = complete.saturating_sub(opts.train.embargo_ms);
                    (end.saturating_sub(opts.train.window_ms), end)
                }
                _ => {
                    let day_end = (complete / DAY_MS) * DAY_MS;
                    (day_end.saturating_sub(DAY_MS), day_end)
                }
            });
            let a = Attempt {
                run_id: format!("{job}:manual@{}", iso_ms(now_ms())),
                job,
                interval: Some(interval),
                attempt: 1,
                trigger: "manual",
                started_at_ms: 0,
            };
            let (ctx, root, view, horizons) = (
                self.ctx.clone(),
                self.root.clone(),
                self.view.clone(),
                self.horizons.clone(),
            );
            self.spawn(job, async move {
                manual_task(ctx, root, view, horizons, a).await
            });
        }
        started
    }

    fn publish(&self) {
        let rows = self.ctx.rows.read().unwrap_or_else(|e| e.into_inner());
        let mut latest: BTreeMap<&str, &JobRun> = BTreeMap::new();
        for r in rows.iter() {
            let slot = latest.entry(&r.run_id).or_insert(r);
            if (r.attempt, r.started_at_ms, r.state != RunState::Running)
                >= (
                    slot.attempt,
                    slot.started_at_ms,
                    slot.state != RunState::Running,
                )
            {
                *slot = r;
            }
        }
        let opts = &self.ctx.opts;
        let mut all_failed = 0;
        let mut failing_jobs = Vec::new();
        let status: Vec<JobStatus> = JOBS
            .iter()
            .map(|&name| {
                let runs: Vec<&&JobRun> = latest.values().filter(|r| r.job == name).collect();
                let failed = runs.iter().filter(|r| r.state == RunState::Failed).count() as u64;
                let last_final = rows
                    .iter()
                    .rev()
                    .find(|r| r.job == name && r.state.is_final());
                let failing = last_final.is_some_and(|r| r.state == RunState::Failed);
                all_failed += failed;
                if failing {
                    failing_jobs.push(name.to_string());
                }
                let disabled = match name {
                    "retrain" | "promote" => self.link.is_none(),
                    "maintain" => opts.maintain_every_ms == 0,
                    _ => false,
                };
                let (state, detail) = if self.active.contains_key(name) {
                    (
                        "running",
                        rows.iter()
                            .rev()
                            .find(|r| r.job == name)
                            .map_or(String::new(), |r| r.run_id.clone()),
                    )
                } else if disabled {
                    ("disabled", "switched off by its settings".to_string())
                } else if let Some(w) = self.waiting.get(name) {
                    ("waiting", format!("waiting for {w}"))
                } else {
                    ("idle", String::new())
                };
                JobStatus {
                    name,
                    schedule: schedule(name, opts),
                    state,
                    detail,
                    runs: runs.len() as u64,
                    succeeded: runs.iter().filter(|r| r.state == RunState::Success).count() as u64,
                    failed,
                    failing,
                    queued: self.queue.get(name).map_or(0, VecDeque::len),
                    last: rows.iter().rev().find(|r| r.job == name).cloned(),
                }
            })
            .collect();
        drop(rows);
        self.view.set_jobs_health(all_failed, failing_jobs);
        *self.status.write().unwrap_or_else(|e| e.into_inner()) = status;
    }
}

fn schedule(job: &str, o: &JobsOptions) -> String {
    match job {
        "retrain" if o.retrain_every_ms == 0 => "off".into(),
        "retrain" => format!(
            "every {} h of event time; window {} h, embargo {} s, validation floor {}",
            o.retrain_every_ms as f64 / 3.6e6,
            o.train.window_ms as f64 / 3.6e6,
            o.train.embargo_ms / 1_000,
            o.train.validation_floor
        ),
        "evaluate" => "every UTC day of data, once the day is committed".into(),
        "promote" => "after evaluate, every day".into(),
        _ if o.maintain_every_ms == 0 => "off".into(),
        _ => format!(
            "every {} min of wall-clock time",
            o.maintain_every_ms / 60_000
        ),
    }
}

/// The attempt number and trigger of a run resumed after `prior`.
fn resume(prior: Option<&JobRun>) -> (u32, &'static str) {
    match prior {
        Some(r) => (r.attempt + 1, "recovery"),
        None => (1, "schedule"),
    }
}

async fn retrain_task(
    ctx: Ctx,
    root: PathBuf,
    horizons: Vec<u32>,
    link: DeployLink,
    t: u64,
    window: (u64, u64),
    prior: Option<JobRun>,
) {
    match prior.as_ref().map(|r| r.state) {
        Some(RunState::Failed) => {
            warn!(scheduled = %iso_ms(t), "retrain failed before a restart: no new models at this time");
            link.decide(Decision {
                scheduled_ms: t,
                records: Vec::new(),
            });
            return;
        }
        Some(RunState::Success) => match read_registry(&root).await {
            Ok(registry) => {
                if let Some(d) = past_decision(&registry, t) {
                    info!(scheduled = %iso_ms(t), models = d.records.len(), "retrain decided before a restart: its decision is read back from the registry");
                    link.decide(d);
                    return;
                }
            }
            Err(e) => error!(error = %e, "reading the registry failed; training again"),
        },
        _ => {}
    }
    let (attempt, trigger) = resume(prior.as_ref());
    let a = Attempt {
        run_id: run_id("retrain", t),
        job: "retrain",
        interval: Some(window),
        attempt,
        trigger,
        started_at_ms: 0,
    };
    let train = ctx.opts.train.clone();
    let max = ctx.opts.attempts;
    let result = ctx
        .run(a, max, || {
            work::retrain(&root, &train, &horizons, t, window)
        })
        .await;
    match result {
        Ok((decision, mut outputs, a)) => {
            link.decide(decision);
            let due = link.hold().is_none_or(|h| h.scheduled_ms != t || h.due);
            let applied = if due {
                wait_applied(&link, t).await
            } else {
                None
            };
            outputs["scheduled_at"] = json!(iso_ms(t));
            outputs["deployed_at"] = json!(applied.map(iso_ms));
            outputs["late_ms"] = json!(applied.map(|at| at - t));
            if let Some(at) = applied.filter(|at| *at != t) {
                warn!(scheduled = %iso_ms(t), deployed = %iso_ms(at), "models deployed later than scheduled (live stall bound)");
            }
            ctx.end(&a, RunState::Success, &outputs, None).await;
        }
        Err(e) => {
            error!(scheduled = %iso_ms(t), error = %e, "retrain failed: no new models; the previous versions keep serving");
            link.decide(Decision {
                scheduled_ms: t,
                records: Vec::new(),
            });
        }
    }
}

/// The event time the decision for `t` took effect at, if it does within
/// [`APPLY_WAIT`].
async fn wait_applied(link: &DeployLink, t: u64) -> Option<u64> {
    let deadline = tokio::time::Instant::now() + APPLY_WAIT;
    while tokio::time::Instant::now() < deadline {
        for a in link.take_applied() {
            if a.scheduled_ms == t {
                return a.at_ms;
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    None
}

async fn day_task(
    ctx: Ctx,
    root: PathBuf,
    view: Arc<LiveView>,
    a: Attempt,
    day: i32,
    upstream_failed: bool,
) {
    let max = if upstream_failed {
        1
    } else {
        ctx.opts.attempts
    };
    let job = a.job;
    let r = ctx
        .run(a, max, || {
            let (root, view) = (root.clone(), view.clone());
            async move {
                if upstream_failed {
                    return Err("evaluate of this day failed".to_string());
                }
                let out = if job == "evaluate" {
                    work::evaluate(&root, day).await?
                } else {
                    work::promote(&root, day, &view).await?
                };
                Ok(((), out))
            }
        })
        .await;
    if let Ok(((), outputs, a)) = r {
        ctx.end(&a, RunState::Success, &outputs, None).await;
    }
}

async fn manual_task(ctx: Ctx, root: PathBuf, view: Arc<LiveView>, horizons: Vec<u32>, a: Attempt) {
    let (start, end) = a.interval.unwrap_or((0, 0));
    let job = a.job;
    let train = ctx.opts.train.clone();
    let max = ctx.opts.attempts;
    let r = ctx
        .run(a, max, || {
            let (root, view, horizons, train) =
                (root.clone(), view.clone(), horizons.clone(), train.clone());
            async move {
                let out = match job {
                    "retrain" => {
                        let t = end + train.embargo_ms;
                        let (_, mut out) =
                            work::retrain(&root, &train, &horizons, t, (start, end)).await?;
                        out["dry_run"] = json!(
                            "trained and validated only: deployments happen at scheduled times"
                        );
                        out
                    }
                    _ => {
                        let mut days = Vec::new();
                        for day in utc_day(start)..=utc_day(end.saturating_sub(1)) {
                            days.push(if job == "evaluate" {
                                work::evaluate(&root, day).await?
                            } else {
                                work::promote(&root, day, &view).await?
                            });
                        }
                        json!({ "days": days })
                    }
                };
                Ok(((), out))
            }
        })
        .await;
    if let Ok(((), outputs, a)) = r {
        ctx.end(&a, RunState::Success, &outputs, None).await;
    }
}
