//! The run history: every `job_runs` row, in memory for the API and the
//! scheduler, appended to the Delta table as it happens.
//!
//! Writes go through a [`SideWriter`] under the `txn` app id
//! [`JOBS_APP_ID`], numbered 1, 2, 3, … from the number already committed,
//! so a row is never written twice, even when a commit's acknowledgement is
//! lost. A row that could not be written stays queued and goes with the
//! next write (and is logged at error level); the in-memory history has it
//! at once either way.
//!
//! On start the table is read back: a run's state is its latest row
//! (highest attempt, then end over start); an attempt whose latest row is
//! `running` was cut off by a crash and is closed here as failed, so the
//! scheduler retries it.

use std::collections::BTreeMap;
use std::path::Path;

use tracing::error;

use super::run::{JobRun, RunState};
use crate::warehouse::catalog::job_runs_table;
use crate::warehouse::columns::{self, Columns};
use crate::warehouse::read;
use crate::warehouse::side::SideWriter;

/// The `txn` application id of the orchestrator's `job_runs` appends.
pub const JOBS_APP_ID: &str = "cryptoflow-jobs";

/// The history, and the writer behind it.
pub struct History {
    rows: Vec<JobRun>,
    writer: Option<SideWriter>,
    unwritten: Vec<JobRun>,
    next_version: i64,
}

/// Reading the history failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The table.
    #[error(transparent)]
    Read(#[from] read::Error),
    /// Opening the writer.
    #[error(transparent)]
    Warehouse(#[from] crate::warehouse::Error),
}

fn decode(c: &Columns<'_>, i: usize) -> Result<Option<JobRun>, columns::Error> {
    let (Some(run_id), Some(job), Some(attempt), Some(state), Some(started)) = (
        c.str("run_id", i)?,
        c.str("job", i)?,
        c.i32("attempt", i)?,
        c.str("state", i)?.and_then(RunState::parse),
        c.ms("started_at", i)?,
    ) else {
        return Ok(None);
    };
    Ok(Some(JobRun {
        run_id: run_id.to_string(),
        job: job.to_string(),
        interval_start_ms: c.ms("interval_start", i)?,
        interval_end_ms: c.ms("interval_end", i)?,
        attempt: u32::try_from(attempt).unwrap_or(0),
        state,
        trigger: c.str("trigger", i)?.unwrap_or("schedule").to_string(),
        started_at_ms: started,
        ended_at_ms: c.ms("ended_at", i)?,
        outputs: c.str("outputs", i)?.unwrap_or("{}").to_string(),
        error: c.str("error", i)?.map(str::to_string),
    }))
}

/// Orders the rows of one attempt: its start, then its end.
fn row_order(r: &JobRun) -> (u32, u64, bool) {
    (r.attempt, r.started_at_ms, r.state != RunState::Running)
}

impl History {
    /// Reads the history under `root` (the table must exist: the warehouse
    /// creates it) and opens its writer. Rows that cannot be decoded are
    /// skipped with an error.
    pub async fn open(root: &Path) -> Result<Self, Error> {
        let mut rows = Vec::new();
        for batch in read::batches(root, "job_runs", None).await? {
            let c = Columns::new(&batch);
            for i in 0..c.rows() {
                match decode(&c, i) {
                    Ok(Some(r)) => rows.push(r),
                    Ok(None) => {
                        error!(row = i, "job_runs row without its required fields; skipped")
                    }
                    Err(e) => error!(error = %e, "job_runs row unreadable; skipped"),
                }
            }
        }
        rows.sort_by(|a, b| {
            (a.started_at_ms, &a.run_id, row_order(a)).cmp(&(
                b.started_at_ms,
                &b.run_id,
                row_order(b),
            ))
        });
        let writer = SideWriter::open(root, "job_runs", JOBS_APP_ID).await?;
        let next_version = writer.committed().unwrap_or(0) + 1;
        Ok(History {
            rows,
            writer: Some(writer),
            unwritten: Vec::new(),
            next_version,
        })
    }

    /// A history kept in memory only (no warehouse).
    pub fn in_memory() -> Self {
        History {
            rows: Vec::new(),
            writer: None,
            unwritten: Vec::new(),
            next_version: 1,
        }
    }

    /// Every row, oldest first.
    pub fn rows(&self) -> &[JobRun] {
        &self.rows
    }

    /// The latest row of run `run_id` (its current state).
    pub fn latest(&self, run_id: &str) -> Option<&JobRun> {
        self.rows
            .iter()
            .filter(|r| r.run_id == run_id)
            .max_by_key(|r| row_order(r))
    }

    /// The latest row of every run, by run id.
    pub fn runs(&self) -> BTreeMap<&str, &JobRun> {
        let mut out: BTreeMap<&str, &JobRun> = BTreeMap::new();
        for r in &self.rows {
            let slot = out.entry(&r.run_id).or_insert(r);
            if row_order(r) >= row_order(slot) {
                *slot = r;
            }
        }
        out
    }

    /// Records `row` (in memory at once, in the table as soon as it can).
    pub async fn record(&mut self, row: JobRun) {
        self.rows.push(row.clone());
        self.unwritten.push(row);
        self.flush().await;
    }

    /// Writes the queued rows as one commit.
    pub async fn flush(&mut self) {
        let Some(writer) = self.writer.as_mut() else {
            self.unwritten.clear();
            return;
        };
        if self.unwritten.is_empty() {
            return;
        }
        let def = job_runs_table();
        let refs: Vec<&JobRun> = self.unwritten.iter().collect();
        let result = match def.batch_of(&refs) {
            Ok(batch) => writer.append_once(batch, self.next_version).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(_) => {
                self.next_version += 1;
                self.unwritten.clear();
            }
            Err(e) => {
                error!(error = %e, rows = self.unwritten.len(), "writing job_runs failed; the rows stay queued for the next write")
            }
        }
    }

    /// Closes every attempt a crash left `running` as failed (at `now_ms`);
    /// returns the closed rows.
    pub async fn close_interrupted(&mut self, now_ms: u64) -> Vec<JobRun> {
        let open: Vec<JobRun> = self
            .runs()
            .values()
            .filter(|r| r.state == RunState::Running)
            .map(|r| (*r).clone())
            .collect();
        let mut closed = Vec::new();
        for r in open {
            let row = JobRun {
                state: RunState::Retrying,
                ended_at_ms: Some(now_ms),
                error: Some(
                    "interrupted: cryptoflow stopped during this attempt (crash or kill); retried"
                        .into(),
                ),
                ..r
            };
            error!(run = %row.run_id, attempt = row.attempt, "job attempt was interrupted by a stop; it will be retried");
            closed.push(row.clone());
            self.rows.push(row.clone());
            self.unwritten.push(row);
        }
        self.flush().await;
        closed
    }
}
