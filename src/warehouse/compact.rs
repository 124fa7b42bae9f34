//! Compaction of the small files streaming appends leave behind: every epoch
//! adds one small parquet file per table and date partition, and a reader
//! pays per file. Per table and UTC date partition, once at least
//! `min_files` active files are smaller than the target size, those files
//! are read with the parquet reader and written again through delta-rs's
//! `RecordBatchWriter` (so the new files carry the same statistics as the
//! pipeline's), rolling over at the target size. One Delta commit (operation
//! `OPTIMIZE`) removes the old files and adds the new ones, all with
//! `dataChange = false`: the table holds the same rows, and the `txn`
//! versions exactly-once relies on are untouched (they live in the log,
//! and this commit carries none). Callable by `cryptoflow tables compact`
//! and by a scheduler.
//!
//! Concurrency: the commit is optimistic against the version the files were
//! chosen at. If the table moved on meanwhile (a running pipeline appended an
//! epoch), the table is reloaded and the commit retried, as long as every
//! file being replaced is still active; appended files are never touched, and
//! the pipeline's own commits pass delta-rs's conflict check against ours.
//! If a replaced file is gone (another compaction won), the commit is
//! abandoned with [`Error::Conflict`], the files written are deleted and the
//! table stays as it was. This is stricter than delta-rs's conflict checker,
//! which ignores removes with `dataChange = false` and would let two
//! compactions of the same files both commit, duplicating rows.
//!
//! Never changes a row. Replaced files stay on disk for readers of older
//! versions until `tables vacuum` deletes them after its retention window.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use deltalake::arrow::array::{Date32Array, RecordBatch};
use deltalake::arrow::datatypes::{DataType, Field, Schema};
use deltalake::kernel::transaction::{CommitBuilder, TransactionError};
use deltalake::kernel::{Action, Add, LogicalFileView, Remove};
use deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use deltalake::protocol::DeltaOperation;
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use deltalake::{DeltaTable, DeltaTableError};
use serde::Serialize;
use tracing::{info, warn};

use super::catalog;
use super::read::{self, active_files, local_root, read_err};

/// Errors of compaction.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Opening or reading the table (unknown name, missing table, unreadable file).
    #[error(transparent)]
    Tables(#[from] read::Error),
    /// Writing the new files or committing them failed.
    #[error("delta table `{table}`")]
    Delta {
        /// Which table.
        table: String,
        /// The cause.
        source: Box<DeltaTableError>,
    },
    /// A file being replaced was removed by another writer; nothing was changed.
    #[error("table `{table}` was compacted concurrently (a file being replaced is gone); nothing was changed, run it again")]
    Conflict {
        /// Which table.
        table: String,
    },
    /// Other writers kept committing; nothing was changed.
    #[error("table `{table}` kept changing during {attempts} commit attempts; nothing was changed, run it again")]
    Busy {
        /// Which table.
        table: String,
        /// Attempts made.
        attempts: usize,
    },
    /// A data file without a valid `date` partition value.
    #[error("table `{table}`: file {path} has no valid date partition")]
    Partition {
        /// Which table.
        table: String,
        /// The file.
        path: String,
    },
}

/// Result alias for this module.
pub type Result<T> = std::result::Result<T, Error>;

/// Commit attempts before a table that keeps moving is given up on.
const MAX_ATTEMPTS: usize = 10;

/// What to compact.
#[derive(Clone, Debug)]
pub struct CompactOptions {
    /// Files at least this large are left alone; new files roll over at it.
    pub target_file_bytes: u64,
    /// A partition is rewritten only when it has at least this many small files.
    pub min_files: usize,
}

impl Default for CompactOptions {
    fn default() -> Self {
        CompactOptions {
            target_file_bytes: 128 << 20,
            min_files: 10,
        }
    }
}

/// What compaction did to one table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CompactReport {
    /// Table name.
    pub table: String,
    /// Delta version after compaction (unchanged when nothing was due).
    pub version: u64,
    /// Date partitions rewritten.
    pub partitions: usize,
    /// Active files before.
    pub files_before: usize,
    /// Active files after.
    pub files_after: usize,
    /// Bytes of the active files before.
    pub bytes_before: u64,
    /// Bytes of the active files after.
    pub bytes_after: u64,
    /// Rows read and written again.
    pub rows_rewritten: u64,
}

/// Compacts the named tables under `root` (every existing table when
/// `names` is empty). Names are checked before any table is touched.
pub async fn compact(
    root: &Path,
    names: &[String],
    opts: &CompactOptions,
) -> Result<Vec<CompactReport>> {
    if let Some(bad) = names.iter().find(|n| catalog::table(n).is_none()) {
        return Err(read::Error::UnknownTable(bad.clone()).into());
    }
    let wanted = |name: &str| names.is_empty() || names.iter().any(|n| n == name);
    let mut out = Vec::new();
    for name in catalog::names().into_iter().filter(|n| wanted(n)) {
        let table = match read::open(root, name).await {
            Ok(t) => t,
            // Compacting everything skips tables not written yet.
            Err(read::Error::Missing(_)) if names.is_empty() => continue,
            Err(e) => return Err(e.into()),
        };
        out.push(compact_table(name, table, opts).await?);
    }
    Ok(out)
}

/// Compacts one open table.
pub async fn compact_table(
    name: &str,
    mut table: DeltaTable,
    opts: &CompactOptions,
) -> Result<CompactReport> {
    let before = active_files(&table).await?;
    let groups = plan(name, &before, opts)?;
    let mut report = CompactReport {
        table: name.to_string(),
        version: table.version().unwrap_or(0),
        partitions: groups.len(),
        files_before: before.len(),
        files_after: before.len(),
        bytes_before: total_bytes(&before),
        bytes_after: total_bytes(&before),
        rows_rewritten: 0,
    };
    if groups.is_empty() {
        return Ok(report);
    }
    let rewrite = rewrite(name, &table, &groups, opts).await?;
    report.rows_rewritten = rewrite.rows;
    report.version = commit(name, &mut table, &rewrite, opts).await?;
    let after = active_files(&table).await?;
    report.files_after = after.len();
    report.bytes_after = total_bytes(&after);
    info!(
        table = name,
        version = report.version,
        files_before = report.files_before,
        files_after = report.files_after,
        "compacted"
    );
    Ok(report)
}

fn total_bytes(files: &[LogicalFileView]) -> u64 {
    files.iter().map(|f| f.size().max(0) as u64).sum()
}

/// The small files of one date partition, in the order they were written.
struct Group {
    /// Days since the epoch (the partition's `date`).
    day: i32,
    files: Vec<LogicalFileView>,
}

/// The partitions due for compaction and their small files.
fn plan(name: &str, files: &[LogicalFileView], opts: &CompactOptions) -> Result<Vec<Group>> {
    let mut by_date: BTreeMap<i32, Vec<LogicalFileView>> = BTreeMap::new();
    for f in files
        .iter()
        .filter(|f| (f.size().max(0) as u64) < opts.target_file_bytes)
    {
        let day = f
            .partition_values_map()
            .get("date")
            .cloned()
            .flatten()
            .and_then(|d| super::date::parse_day(&d))
            .ok_or_else(|| Error::Partition {
                table: name.to_string(),
                path: f.path().to_string(),
            })?;
        by_date.entry(day).or_default().push(f.clone());
    }
    Ok(by_date
        .into_iter()
        .filter(|(_, files)| files.len() >= opts.min_files.max(2))
        .map(|(day, mut files)| {
            // Oldest first keeps rows roughly in event-time order in the new files.
            files.sort_by_key(|f| (f.modification_time(), f.path().to_string()));
            Group { day, files }
        })
        .collect())
}

/// New files written but not committed yet, and the files they replace.
struct Rewrite {
    removes: Vec<Remove>,
    adds: Vec<Add>,
    rows: u64,
    /// Where the new files are, to delete them if the commit is abandoned.
    written: Vec<PathBuf>,
}

/// Reads every file of `groups` and writes its rows again, as few files of
/// about the target size per partition.
async fn rewrite(
    name: &str,
    table: &DeltaTable,
    groups: &[Group],
    opts: &CompactOptions,
) -> Result<Rewrite> {
    let delta = |source| Error::Delta {
        table: name.to_string(),
        source: Box::new(source),
    };
    let root = local_root(table)?;
    let mut writer = RecordBatchWriter::for_table(table)
        .map_err(delta)?
        .with_target_file_size(opts.target_file_bytes);
    let mut rows = 0u64;
    let mut removes = Vec::new();
    for group in groups {
        for file in &group.files {
            let path = root.join(file.path().as_ref());
            let f = std::fs::File::open(&path).map_err(|e| read_err(&path, e))?;
            let reader = ParquetRecordBatchReaderBuilder::try_new(f)
                .and_then(|b| b.build())
                .map_err(|e| read_err(&path, e))?;
            for batch in reader {
                let batch = batch.map_err(|e| read_err(&path, e))?;
                rows += batch.num_rows() as u64;
                let batch = with_date(batch, group.day).map_err(|e| read_err(&path, e))?;
                writer.write(batch).await.map_err(delta)?;
            }
            removes.push(file.remove_action(false));
        }
    }
    let mut adds = writer.flush().await.map_err(delta)?;
    for add in &mut adds {
        add.data_change = false;
    }
    let written = adds.iter().map(|a| root.join(&a.path)).collect();
    Ok(Rewrite {
        removes,
        adds,
        rows,
        written,
    })
}

/// `batch` (a data file's columns) with the `date` partition column added,
/// as the writer expects whole rows.
fn with_date(
    batch: RecordBatch,
    day: i32,
) -> std::result::Result<RecordBatch, deltalake::arrow::error::ArrowError> {
    let schema = batch.schema();
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new("date", DataType::Date32, false));
    let mut columns = batch.columns().to_vec();
    columns.push(Arc::new(Date32Array::from_value(day, batch.num_rows())));
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
}

/// Commits `rewrite` as one OPTIMIZE commit; returns the new version.
async fn commit(
    name: &str,
    table: &mut DeltaTable,
    rewrite: &Rewrite,
    opts: &CompactOptions,
) -> Result<u64> {
    let delta = |source| Error::Delta {
        table: name.to_string(),
        source: Box::new(source),
    };
    let operation = DeltaOperation::Optimize {
        predicate: None,
        target_size: opts.target_file_bytes as i64,
    };
    let actions: Vec<Action> = rewrite
        .removes
        .iter()
        .cloned()
        .map(Action::Remove)
        .chain(rewrite.adds.iter().cloned().map(Action::Add))
        .collect();
    for attempt in 1..=MAX_ATTEMPTS {
        if !replaced_files_active(table, &rewrite.removes).await? {
            abandon(rewrite);
            return Err(Error::Conflict {
                table: name.to_string(),
            });
        }
        // No retries inside delta-rs: a newer version sends us back to the
        // check above instead of through its conflict checker.
        let result = CommitBuilder::default()
            .with_actions(actions.clone())
            .with_max_retries(0)
            .build(
                Some(table.snapshot().map_err(delta)?),
                table.log_store(),
                operation.clone(),
            )
            .await;
        match result {
            Ok(done) => {
                table.update_incremental(None).await.map_err(delta)?;
                return Ok(done.version());
            }
            Err(DeltaTableError::Transaction {
                source: TransactionError::MaxCommitAttempts(_),
            }) => {
                warn!(
                    table = name,
                    attempt, "table moved on during compaction; checking again"
                );
                table.update_incremental(None).await.map_err(delta)?;
            }
            Err(e) => return Err(delta(e)),
        }
    }
    abandon(rewrite);
    Err(Error::Busy {
        table: name.to_string(),
        attempts: MAX_ATTEMPTS,
    })
}

/// True when every file in `removes` is still part of the table.
async fn replaced_files_active(table: &DeltaTable, removes: &[Remove]) -> Result<bool> {
    let active: BTreeSet<String> = active_files(table)
        .await?
        .iter()
        .map(|f| f.path().to_string())
        .collect();
    Ok(removes.iter().all(|r| active.contains(&r.path)))
}

/// Deletes the files of an abandoned rewrite: no commit references them.
fn abandon(rewrite: &Rewrite) {
    for path in &rewrite.written {
        if let Err(e) = std::fs::remove_file(path) {
            warn!(path = %path.display(), error = %e, "could not delete an uncommitted file; vacuum will");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::warehouse::read::row_set;
    use crate::warehouse::Warehouse;
    use dataflows::Delivery;

    /// A warehouse in a fresh directory holding the first `committed` of
    /// twelve epochs of simulated output; returns it with all twelve epochs.
    async fn warehouse(tag: &str, committed: usize) -> (Warehouse, Vec<Vec<Delivery>>) {
        let dir = std::env::temp_dir().join(format!(
            "cryptoflow-compact-{tag}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let epochs =
            dataflows::harness::simulated_epochs(5, 1_764_028_800_000, 360_000, 3.0, 12).unwrap();
        let mut wh = Warehouse::open(&dir).await.unwrap();
        for e in &epochs[..committed] {
            wh.commit(e).await.unwrap();
        }
        (wh, epochs)
    }

    async fn bars(root: &Path) -> Vec<String> {
        row_set(root, "bars").await.unwrap()
    }

    fn opts() -> CompactOptions {
        CompactOptions {
            min_files: 2,
            ..CompactOptions::default()
        }
    }

    async fn prepare(root: &Path) -> (DeltaTable, Rewrite) {
        let table = read::open(root, "bars").await.unwrap();
        let groups = plan("bars", &active_files(&table).await.unwrap(), &opts()).unwrap();
        assert!(!groups.is_empty());
        let rewrite = rewrite("bars", &table, &groups, &opts()).await.unwrap();
        (table, rewrite)
    }

    #[tokio::test]
    async fn compaction_commits_over_concurrent_appends_and_appends_continue() {
        let (mut wh, epochs) = warehouse("append", 8).await;
        let root = wh.root().to_path_buf();
        let files_before = active_files(&read::open(&root, "bars").await.unwrap())
            .await
            .unwrap()
            .len();
        let (mut table, rewrite) = prepare(&root).await;
        // The pipeline commits an epoch while the compaction is in flight.
        wh.commit(&epochs[8]).await.unwrap();
        let expected = bars(&root).await;
        commit("bars", &mut table, &rewrite, &opts()).await.unwrap();
        assert_eq!(bars(&root).await, expected);
        let files_after = active_files(&table).await.unwrap().len();
        // The appended file survives next to the compacted ones.
        assert!(
            files_after < files_before,
            "{files_after} vs {files_before}"
        );

        // The pipeline's writer, still at the pre-compaction version, goes on.
        wh.commit(&epochs[9]).await.unwrap();
        let last = epochs[9].last().unwrap().time;
        assert_eq!(wh.committed("bars"), Some(last));
        let info = read::list(&root).await.unwrap();
        let bars_info = info.iter().find(|t| t.name == "bars").unwrap();
        assert_eq!(bars_info.committed_epoch, Some(last as i64));
        assert!(bars(&root).await.len() > expected.len());
        let _ = std::fs::remove_dir_all(&root);
    }

    #[tokio::test]
    async fn racing_compactions_conflict_and_leave_the_table_intact() {
        let (wh, _) = warehouse("race", 8).await;
        let root = wh.root().to_path_buf();
        let expected = bars(&root).await;
        let (mut first, first_rewrite) = prepare(&root).await;
        let (mut second, second_rewrite) = prepare(&root).await;
        commit("bars", &mut first, &first_rewrite, &opts())
            .await
            .unwrap();
        let err = commit("bars", &mut second, &second_rewrite, &opts())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Conflict { .. }), "{err}");
        assert_eq!(bars(&root).await, expected);
        assert!(second_rewrite.written.iter().all(|p| !p.exists()));
        assert!(first_rewrite.written.iter().all(|p| p.exists()));
        let _ = std::fs::remove_dir_all(&root);
    }
}
