//! The orchestrator's own appends, beside the router's epochs: `job_runs`
//! rows and the promotion rows of `models`. Each writer has its own `txn`
//! application id and numbers its commits; a commit whose version is at or
//! below the id's recorded `txn` version has already landed (before a crash,
//! or by a commit whose acknowledgement was lost) and is not written again.
//! That is what makes these writes exactly-once: the version is decided
//! before the write (a sequence number, or the event time a promotion is
//! for), never by whether the last write seemed to succeed.
//!
//! Appends only ever add files, so they commit alongside the router's
//! epochs (Delta's conflict check lets concurrent blind appends through);
//! the router's own `txn` (app `cryptoflow`) is untouched by them.

use std::path::Path;

use deltalake::arrow::array::RecordBatch;
use deltalake::DeltaTable;
use tracing::warn;

use super::{append, read, txn_version, Error, Result};

/// An append-only writer of one table under one `txn` application id.
pub struct SideWriter {
    name: &'static str,
    app_id: &'static str,
    table: DeltaTable,
    committed: Option<i64>,
}

impl SideWriter {
    /// Opens table `name` under `root` (created by [`super::Warehouse::open`])
    /// and reads `app_id`'s committed version.
    pub async fn open(root: &Path, name: &'static str, app_id: &'static str) -> Result<Self> {
        let table = read::open(root, name).await.map_err(|e| Error::Delta {
            table: name.to_string(),
            source: Box::new(deltalake::DeltaTableError::Generic(e.to_string())),
        })?;
        let committed = txn_version(&table, name, app_id).await?;
        Ok(SideWriter {
            name,
            app_id,
            table,
            committed,
        })
    }

    /// The last version committed under this writer's app id.
    pub fn committed(&self) -> Option<i64> {
        self.committed
    }

    /// Appends `batch` as `version` unless that version is already
    /// committed; true if it wrote. After a failed commit the table is
    /// re-read, so an append that landed despite the error is not repeated.
    pub async fn append_once(&mut self, batch: RecordBatch, version: i64) -> Result<bool> {
        if self.committed.is_some_and(|c| c >= version) {
            return Ok(false);
        }
        match append(&mut self.table, self.name, batch, self.app_id, version).await {
            Ok(_) => {
                self.committed = Some(version);
                Ok(true)
            }
            Err(e) => {
                if let Err(reload) = self.table.update_state().await {
                    warn!(table = self.name, error = %reload, "re-reading the table after a failed append failed");
                } else if let Ok(v) = txn_version(&self.table, self.name, self.app_id).await {
                    self.committed = v;
                    if v.is_some_and(|c| c >= version) {
                        return Ok(false);
                    }
                }
                Err(e)
            }
        }
    }
}
