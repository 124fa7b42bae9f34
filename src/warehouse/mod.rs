//! The Delta Lake warehouse: typed tables under one root, partitioned by UTC
//! date, written with `deltalake`'s RecordBatchWriter and readable by any
//! Delta reader.
//!
//! Tables: `bars`, `features`, `predictions`, `scores`, `evaluations`,
//! `rejects`, `models`, `job_runs`, each defined once in [`catalog`] (see
//! [`schema`] for how).
//! Prices and returns are doubles (IEEE-754, what the models compute with);
//! instants are `timestamp` (µs, UTC); `date` is the UTC date partition.
//!
//! The parts: [`schema`] and [`catalog`] (what the tables are), this module
//! (opening them and committing epochs), [`side`] (the orchestrator's own
//! appends, idempotent under their own `txn` app ids), [`read`] and
//! [`columns`] (listing, showing, scanning and decoding rows without a
//! query engine), [`maintain`] (checkpoints, vacuum), [`compact`]
//! (rewriting small files) and [`date`] (UTC day names).
//!
//! Exactly once: the pipeline commits whole epochs — every complete delivery
//! up to an event time T — with one Delta commit per table that also carries
//! the application transaction `txn(cryptoflow, T)`. On start the warehouse
//! reads each table's `txn` version; the dataflow is rebuilt by replaying
//! the topic (it is deterministic), and deliveries at or before a table's
//! version are not written to it again. A crash between the commits of two
//! tables is therefore harmless: each table resumes from its own epoch.
//!
//! Checkpoints: every `checkpoint_every` versions of a table (default 100;
//! 0 never) the commit path writes a Delta checkpoint, deletes log entries
//! older than the table's `delta.logRetentionDuration` (30 days by default)
//! that the checkpoint makes unnecessary, and reopens the table from the
//! checkpoint. Opening a table then reads one parquet file plus at most
//! N − 1 commits however long the pipeline has run, and none after a clean
//! stop, which checkpoints every table the run wrote to
//! ([`Warehouse::checkpoint_written`]; the tables open side by side, so a
//! restart's warehouse open does not grow with history). A commit stays as
//! cheap as the first: delta-rs's in-memory snapshot otherwise grows by a
//! batch of file actions per commit and every commit pays for all of them.
//! This schedule replaces delta-rs's post-commit hook, which would also list
//! the whole `_delta_log` directory on every commit to look for expired
//! entries. A failed checkpoint is logged and never fails the epoch: the
//! data commit has already landed with its `txn`, and reporting it as failed
//! would have the epoch written again.
//!
//! A failed commit (a full disk, an unreachable store) leaves the table at
//! its last version: a Delta commit is one log entry, written whole or not
//! at all, and data files it would have added are unreferenced (`tables
//! vacuum` removes them). Because a failure can also come after the log
//! entry landed, the table is reloaded from storage before it is written
//! again, and its committed epoch is taken from the log rather than from
//! memory: a retry never writes an epoch twice.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use dataflows::Delivery;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::kernel::StructType;
use deltalake::kernel::Transaction;
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use deltalake::DeltaTable;
use tracing::warn;

pub mod catalog;
pub mod columns;
pub mod compact;
pub mod date;
pub mod maintain;
pub mod read;
pub mod schema;
pub mod side;

pub use catalog::{table, tables};
pub use maintain::checkpoint;

/// Errors of the warehouse.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Delta or object-store failure.
    #[error("delta table `{table}`")]
    Delta {
        /// Which table.
        table: String,
        /// The cause.
        source: Box<deltalake::DeltaTableError>,
    },
    /// Building a batch failed (a bug: schemas are fixed here).
    #[error("building an arrow batch")]
    Arrow(#[from] deltalake::arrow::error::ArrowError),
    /// A column's getter gave a value its definition does not allow (a bug
    /// in [`catalog`]).
    #[error("table `{table}`, column `{column}`: {detail}")]
    Column {
        /// Which table.
        table: &'static str,
        /// Which column.
        column: &'static str,
        /// What it got.
        detail: String,
    },
    /// The root is not usable.
    #[error("warehouse root {path}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Not a valid location.
    #[error("bad table location {0}")]
    Location(String),
    /// A `_delta_log` without any table version in it.
    #[error("{path} has a _delta_log but no table version")]
    NoVersion {
        /// The table directory.
        path: PathBuf,
    },
}

/// Result alias for this module.
pub type Result<T> = std::result::Result<T, Error>;

/// The open warehouse.
pub struct Warehouse {
    root: PathBuf,
    tables: BTreeMap<&'static str, DeltaTable>,
    committed: BTreeMap<&'static str, Option<u64>>,
    /// Tables whose last commit failed: reloaded before the next write.
    stale: std::collections::BTreeSet<&'static str>,
    checkpoint_every: u64,
    checkpoints: Vec<Checkpointed>,
    /// Tables committed to since they were opened or last checkpointed.
    unchecked: std::collections::BTreeSet<&'static str>,
}

/// A checkpoint the commit path wrote (or tried to), for the Jobs page.
#[derive(Clone, Debug)]
pub struct Checkpointed {
    /// Table.
    pub table: &'static str,
    /// Table version checkpointed.
    pub version: u64,
    /// Wall time it started (epoch ms).
    pub started_ms: u64,
    /// How long it took, reopening included (ms).
    pub duration_ms: f64,
    /// Why it failed.
    pub error: Option<String>,
}

/// Opens (creating when missing) the table `def` under `root`: the table
/// and the epoch of its last `txn`, if any.
async fn open_table(
    root: PathBuf,
    def: &'static dyn schema::Table,
) -> Result<(&'static str, DeltaTable, Option<u64>)> {
    let name = def.name();
    let path = root.join(name);
    std::fs::create_dir_all(&path).map_err(|source| Error::Io {
        path: path.clone(),
        source,
    })?;
    let delta = |source| Error::Delta {
        table: name.to_string(),
        source: Box::new(source),
    };
    let url = table_url(&path)?;
    let opening = std::time::Instant::now();
    // Only load what exists: loading an empty directory is reported as an error by the kernel.
    let table = if path.join("_delta_log").is_dir() {
        DeltaTable::try_from_url(url).await.map_err(delta)?
    } else {
        let table = deltalake::DeltaTableBuilder::from_url(url)
            .map_err(delta)?
            .build()
            .map_err(delta)?;
        let kernel: StructType = def
            .schema()
            .as_ref()
            .try_into_kernel()
            .map_err(|e| delta(deltalake::DeltaTableError::Generic(e.to_string())))?;
        table
            .create()
            .with_table_name(name)
            .with_columns(kernel.fields().cloned())
            .with_partition_columns([def.partition()])
            .await
            .map_err(delta)?
    };
    if table.version().is_none() {
        return Err(Error::NoVersion { path });
    }
    let loaded_ms = opening.elapsed().as_millis() as u64;
    let version = txn_version(&table, name, APP_ID).await?;
    tracing::debug!(
        table = name,
        version = table.version(),
        loaded_ms,
        txn_ms = opening.elapsed().as_millis() as u64 - loaded_ms,
        "opened"
    );
    Ok((name, table, version.and_then(|v| u64::try_from(v).ok())))
}

/// The application id of cryptoflow's `txn` actions.
pub const APP_ID: &str = "cryptoflow";

/// Table versions between automatic checkpoints unless configured otherwise
/// (Delta's own default interval).
pub const DEFAULT_CHECKPOINT_EVERY: u64 = 100;

fn table_url(path: &Path) -> Result<url::Url> {
    url::Url::from_directory_path(path).map_err(|_| Error::Location(path.display().to_string()))
}

impl Warehouse {
    /// Opens (creating when missing) every table under `root`.
    pub async fn open(root: &Path) -> Result<Self> {
        let io = |source| Error::Io {
            path: root.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(root).map_err(io)?;
        let root = std::fs::canonicalize(root).map_err(io)?;
        // Each table on a task of its own: loading a Delta log is mostly
        // parsing, so the tables load side by side, and opening takes as
        // long as the longest log, not the sum of them (restart time).
        let tasks: Vec<_> = tables()
            .iter()
            .map(|def| tokio::spawn(open_table(root.clone(), def.as_ref())))
            .collect();
        let mut opened = BTreeMap::new();
        let mut committed = BTreeMap::new();
        for task in tasks {
            // A panic while opening is a bug: it stays a panic.
            let opened_table = task
                .await
                .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
            let (name, table, version) = opened_table?;
            committed.insert(name, version);
            opened.insert(name, table);
        }
        Ok(Warehouse {
            root,
            tables: opened,
            committed,
            stale: std::collections::BTreeSet::new(),
            checkpoint_every: DEFAULT_CHECKPOINT_EVERY,
            checkpoints: Vec::new(),
            unchecked: std::collections::BTreeSet::new(),
        })
    }

    /// Writes a checkpoint after every `every` versions of each table (at
    /// versions that are multiples of `every`); 0 never does.
    pub fn with_checkpoint_every(mut self, every: u64) -> Self {
        self.checkpoint_every = every;
        self
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The newest epoch committed to any table.
    pub fn newest_committed(&self) -> Option<u64> {
        self.committed.values().copied().flatten().max()
    }

    /// The checkpoints written since the last call.
    pub fn take_checkpoints(&mut self) -> Vec<Checkpointed> {
        std::mem::take(&mut self.checkpoints)
    }

    /// The last epoch committed to `table` (its `txn` version), if any.
    pub fn committed(&self, table: &str) -> Option<u64> {
        self.committed.get(table).copied().flatten()
    }

    /// Commits one epoch: every delivery given, which must be complete and
    /// in increasing time order. Each table gets at most one Delta commit
    /// carrying the application transaction (`txn`) `cryptoflow` = epoch (the
    /// last delivery's time), and only rows of deliveries after the epoch it
    /// already holds: a replay after a crash writes nothing twice. Returns
    /// the rows written.
    pub async fn commit(&mut self, deliveries: &[Delivery]) -> Result<usize> {
        let Some(epoch) = deliveries.last().map(|d| d.time) else {
            return Ok(0);
        };
        let mut written = 0;
        for def in tables() {
            let name = def.name();
            if self.stale.contains(name) {
                self.reload(name).await?;
            }
            let after = self.committed(name);
            let due: Vec<&Delivery> = deliveries
                .iter()
                .filter(|d| after.is_none_or(|c| d.time > c))
                .collect();
            let rows = def.count(&due);
            if rows == 0 {
                continue;
            }
            let batch = def.batch(&due)?;
            let table = self.tables.get_mut(name).expect("every table is open");
            let version = match append(table, name, batch, APP_ID, epoch as i64).await {
                Ok(v) => v,
                Err(e) => {
                    self.stale.insert(name);
                    return Err(e);
                }
            };
            self.committed.insert(name, Some(epoch));
            self.unchecked.insert(name);
            written += rows;
            if self.checkpoint_every > 0 && version % self.checkpoint_every == 0 {
                self.checkpoint(name).await;
            }
        }
        Ok(written)
    }

    /// Checkpoints every table committed to since it was opened or last
    /// checkpointed, at a clean stop: the next start then reads one
    /// checkpoint per table instead of up to `checkpoint_every` − 1
    /// commits, which is most of what opening the warehouse costs (restart
    /// time). Failures are logged and listed like the periodic ones'. With
    /// `checkpoint_every` 0 (never checkpoint) it does nothing.
    pub async fn checkpoint_written(&mut self) {
        if self.checkpoint_every == 0 {
            return;
        }
        for name in std::mem::take(&mut self.unchecked) {
            self.checkpoint(name).await;
        }
    }

    /// Checkpoints `name` at its current version and reopens it from the
    /// checkpoint, keeping the outcome for [`Warehouse::take_checkpoints`].
    async fn checkpoint(&mut self, name: &'static str) {
        let table = self.tables.get_mut(name).expect("every table is open");
        let version = table.version().unwrap_or(0);
        let started_ms = crate::now_ms();
        let start = std::time::Instant::now();
        let error = checkpoint_and_reload(name, table, version).await.err();
        if error.is_none() {
            self.unchecked.remove(name);
        }
        self.checkpoints.push(Checkpointed {
            table: name,
            version,
            started_ms,
            duration_ms: start.elapsed().as_secs_f64() * 1e3,
            error,
        });
    }

    /// Reopens `name` from storage and takes its committed epoch from the
    /// log: after a failed commit, what memory says may be wrong.
    async fn reload(&mut self, name: &'static str) -> Result<()> {
        let delta = |source| Error::Delta {
            table: name.to_string(),
            source: Box::new(source),
        };
        let url = self.tables[name].table_url().clone();
        let fresh = DeltaTable::try_from_url(url).await.map_err(delta)?;
        let version = txn_version(&fresh, name, APP_ID).await?;
        let committed = version.and_then(|v| u64::try_from(v).ok());
        if committed != self.committed(name) {
            warn!(
                table = name,
                ?committed,
                "a commit reported as failed had landed"
            );
        }
        self.committed.insert(name, committed);
        self.tables.insert(name, fresh);
        self.stale.remove(name);
        Ok(())
    }
}

/// The version of application transaction `app_id` recorded in `table`.
pub(crate) async fn txn_version(
    table: &DeltaTable,
    name: &str,
    app_id: &str,
) -> Result<Option<i64>> {
    let delta = |source| Error::Delta {
        table: name.to_string(),
        source: Box::new(source),
    };
    table
        .snapshot()
        .map_err(delta)?
        .transaction_version(table.log_store().as_ref(), app_id)
        .await
        .map_err(delta)
}

/// Appends `batch` to `table` in one Delta commit that also records the
/// application transaction `txn(app_id, version)`; returns the new table
/// version. The one write path of every table.
pub(crate) async fn append(
    table: &mut DeltaTable,
    name: &str,
    batch: deltalake::arrow::array::RecordBatch,
    app_id: &str,
    version: i64,
) -> Result<u64> {
    let delta = |source| Error::Delta {
        table: name.to_string(),
        source: Box::new(source),
    };
    let txn = Transaction::new(app_id, version);
    let properties = CommitProperties::default()
        .with_application_transaction(txn)
        .with_create_checkpoint(false)
        .with_cleanup_expired_logs(Some(false));
    let mut writer = RecordBatchWriter::for_table(table)
        .map_err(delta)?
        .with_commit_properties(properties);
    writer.write(batch).await.map_err(delta)?;
    writer.flush_and_commit(table).await.map_err(delta)
}

/// Checkpoints `table` and reopens it from that checkpoint: the in-memory
/// snapshot grows by one batch of file actions per commit and every later
/// commit pays for all of them, while a reopened table starts again from
/// the checkpoint's single batch. Failures only cost speed, so they are logged.
async fn checkpoint_and_reload(
    name: &str,
    table: &mut DeltaTable,
    version: u64,
) -> std::result::Result<(), String> {
    if let Err(e) = checkpoint(table).await {
        warn!(table = name, version, error = %e, "checkpoint failed; the next one will cover it");
        return Err(e.to_string());
    }
    match DeltaTable::try_from_url(table.table_url().clone()).await {
        Ok(fresh) => *table = fresh,
        Err(e) => {
            warn!(table = name, version, error = %e, "reopening after a checkpoint failed");
            return Err(format!("reopening after the checkpoint: {e}"));
        }
    }
    Ok(())
}
