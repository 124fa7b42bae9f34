//! Running one job run: attempts with a timeout each, jittered exponential
//! backoff between them, every start and end recorded in the history, and
//! failures logged at error level. The caller records the success row
//! (a retrain adds where its models were deployed first).

use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Mutex;
use tracing::{error, info, warn};

use super::history::History;
use super::run::{JobRun, RunState};
use super::{JobsOptions, INJECT_FAILURE_ENV};
use crate::backoff::Backoff;
use crate::now_ms;

/// What every run task shares.
#[derive(Clone)]
pub(super) struct Ctx {
    pub history: Arc<Mutex<History>>,
    pub rows: Arc<RwLock<Vec<JobRun>>>,
    pub opts: JobsOptions,
}

/// One attempt's identity.
#[derive(Clone, Debug)]
pub(super) struct Attempt {
    pub run_id: String,
    pub job: &'static str,
    pub interval: Option<(u64, u64)>,
    pub attempt: u32,
    pub trigger: &'static str,
    pub started_at_ms: u64,
}

impl Ctx {
    async fn record(&self, row: JobRun) {
        self.rows
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(row.clone());
        self.history.lock().await.record(row).await;
    }

    fn row(a: &Attempt, state: RunState, outputs: &Value, error: Option<String>) -> JobRun {
        JobRun {
            run_id: a.run_id.clone(),
            job: a.job.to_string(),
            interval_start_ms: a.interval.map(|i| i.0),
            interval_end_ms: a.interval.map(|i| i.1),
            attempt: a.attempt,
            state,
            trigger: a.trigger.to_string(),
            started_at_ms: a.started_at_ms,
            ended_at_ms: (state != RunState::Running).then(now_ms),
            outputs: outputs.to_string(),
            error,
        }
    }

    /// Records the end of an attempt.
    pub async fn end(&self, a: &Attempt, state: RunState, outputs: &Value, error: Option<String>) {
        self.record(Self::row(a, state, outputs, error)).await;
    }

    /// Runs `body` until it succeeds or `max_attempts` attempts have failed;
    /// records every start and every failure (the success row is the
    /// caller's: [`Ctx::end`] with the returned attempt).
    pub async fn run<T, F, Fut>(
        &self,
        mut a: Attempt,
        max_attempts: u32,
        mut body: F,
    ) -> Result<(T, Value, Attempt), String>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<(T, Value), String>>,
    {
        let mut backoff = Backoff::with_base(
            Duration::from_millis(self.opts.backoff_ms.max(1)),
            Duration::from_millis(self.opts.backoff_max_ms.max(1)),
        );
        let timeout = Duration::from_millis(self.opts.timeout_ms.max(1));
        let last = max_attempts.max(a.attempt);
        loop {
            a.started_at_ms = now_ms();
            self.record(Self::row(&a, RunState::Running, &Value::Null, None))
                .await;
            info!(run = %a.run_id, attempt = a.attempt, trigger = a.trigger, "job attempt started");
            let result = if self.opts.inject_failure.as_deref() == Some(a.job) {
                Err(format!("injected failure ({INJECT_FAILURE_ENV}={})", a.job))
            } else {
                match tokio::time::timeout(timeout, body()).await {
                    Ok(r) => r,
                    Err(_) => Err(format!("timed out after {} s", timeout.as_secs_f64())),
                }
            };
            match result {
                Ok((value, outputs)) => return Ok((value, outputs, a)),
                Err(e) if a.attempt < last => {
                    let delay = backoff.next_delay();
                    warn!(run = %a.run_id, attempt = a.attempt, error = %e, retry_in_ms = delay.as_millis() as u64, "job attempt failed; retrying");
                    let outputs = serde_json::json!({ "retry_in_ms": delay.as_millis() as u64 });
                    self.end(&a, RunState::Retrying, &outputs, Some(e)).await;
                    tokio::time::sleep(delay).await;
                    a.attempt += 1;
                }
                Err(e) => {
                    error!(run = %a.run_id, attempts = a.attempt, error = %e, "job failed");
                    self.end(&a, RunState::Failed, &Value::Null, Some(e.clone()))
                        .await;
                    return Err(e);
                }
            }
        }
    }
}
