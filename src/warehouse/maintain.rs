//! Table maintenance: Delta checkpoints (so opening a table and committing
//! to it stay cheap however long the pipeline runs) and vacuum (deleting
//! data files no longer referenced). Compaction, which rewrites data, is
//! [`super::compact`]. `cryptoflow tables checkpoint | vacuum` and the
//! commit path call these.

use std::path::Path;

use deltalake::{DeltaResult, DeltaTable};

use super::read::{existing, Result};

/// Writes a checkpoint of `table` at its current version, then deletes the
/// log entries it makes unnecessary that are older than the table's log
/// retention. Returns how many log files were deleted.
pub async fn checkpoint(table: &DeltaTable) -> DeltaResult<usize> {
    deltalake::checkpoints::create_checkpoint(table, None).await?;
    deltalake::checkpoints::cleanup_metadata(table, None).await
}

/// Writes a checkpoint of every table and deletes the log entries it makes
/// unnecessary (older than the log retention); returns (table, version).
pub async fn checkpoint_all(root: &Path) -> Result<Vec<(String, u64)>> {
    let mut out = Vec::new();
    for (name, table) in existing(root).await? {
        checkpoint(&table).await.map_err(Box::new)?;
        out.push((name.to_string(), table.version().unwrap_or(0)));
    }
    Ok(out)
}

/// Deletes unreferenced files older than `retention_hours`; returns (table, files deleted).
pub async fn vacuum(root: &Path, retention_hours: u64) -> Result<Vec<(String, usize)>> {
    let mut out = Vec::new();
    for (name, table) in existing(root).await? {
        let (_, metrics) = table
            .vacuum()
            .with_retention_period(chrono::Duration::hours(retention_hours as i64))
            .with_enforce_retention_duration(false)
            .await
            .map_err(Box::new)?;
        out.push((name.to_string(), metrics.files_deleted.len()));
    }
    Ok(out)
}
