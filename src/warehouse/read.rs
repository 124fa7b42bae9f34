//! Reading the warehouse without a query engine (`cryptoflow tables list |
//! show`, benchmarks, tests): [`list`] gives each table's version, committed
//! epoch, files and rows; [`rows`] decodes rows as JSON objects, filtered by
//! symbol and UTC date; [`scan`] decodes a whole table. The active files of
//! the current snapshot are read with the parquet reader, and the partition
//! column comes from each file's path. Never writes anything.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use deltalake::arrow::json::ArrayWriter;
use deltalake::kernel::LogicalFileView;
use deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use deltalake::DeltaTable;
use serde::Serialize;
use serde_json::{Map, Value};

use super::{catalog, APP_ID};

/// Errors of reading and maintaining tables.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Not one of the warehouse's tables.
    #[error("unknown table `{0}` (tables: {tables})", tables = catalog::names().join(", "))]
    UnknownTable(String),
    /// The table does not exist under the root yet.
    #[error("no Delta table at {0} (has `cryptoflow run` written there?)")]
    Missing(PathBuf),
    /// Delta failure.
    #[error("delta")]
    Delta(#[from] Box<deltalake::DeltaTableError>),
    /// Reading a data file failed.
    #[error("reading {path}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Result alias for this module.
pub type Result<T> = std::result::Result<T, Error>;

/// What `tables list` reports per table.
#[derive(Clone, Debug, Serialize)]
pub struct TableInfo {
    /// Table name.
    pub name: String,
    /// Delta version.
    pub version: u64,
    /// Last epoch committed by cryptoflow (event time, ms).
    pub committed_epoch: Option<i64>,
    /// Active data files.
    pub files: usize,
    /// Rows in the active files.
    pub rows: u64,
}

/// Opens the warehouse table `name` under `root` (an unknown name or a
/// table not written yet is an error).
pub async fn open(root: &Path, name: &str) -> Result<DeltaTable> {
    if catalog::table(name).is_none() {
        return Err(Error::UnknownTable(name.to_string()));
    }
    let path = root.join(name);
    if !path.join("_delta_log").is_dir() {
        return Err(Error::Missing(path));
    }
    let abs = std::fs::canonicalize(&path).map_err(|_| Error::Missing(path.clone()))?;
    let url = url::Url::from_directory_path(&abs).map_err(|_| Error::Missing(path.clone()))?;
    Ok(DeltaTable::try_from_url(url).await.map_err(Box::new)?)
}

/// The local directory of `table` (the warehouse reads data files directly).
pub(crate) fn local_root(table: &DeltaTable) -> Result<PathBuf> {
    table
        .table_url()
        .to_file_path()
        .map_err(|_| Error::Missing(PathBuf::from(table.table_url().as_str())))
}

/// The active files of the table's current snapshot.
pub(crate) async fn active_files(table: &DeltaTable) -> Result<Vec<LogicalFileView>> {
    use futures::TryStreamExt;
    Ok(table
        .get_active_add_actions_by_partitions(&[])
        .try_collect()
        .await
        .map_err(Box::new)?)
}

async fn local_files(table: &DeltaTable) -> Result<Vec<PathBuf>> {
    let root = local_root(table)?;
    let mut files: Vec<PathBuf> = active_files(table)
        .await?
        .iter()
        .map(|v| root.join(v.path().as_ref()))
        .collect();
    files.sort();
    Ok(files)
}

/// The warehouse's tables that exist under `root`, opened.
pub(crate) async fn existing(root: &Path) -> Result<Vec<(&'static str, DeltaTable)>> {
    let mut out = Vec::new();
    for name in catalog::names() {
        match open(root, name).await {
            Ok(t) => out.push((name, t)),
            Err(Error::Missing(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Every table's version, epoch, files and rows.
pub async fn list(root: &Path) -> Result<Vec<TableInfo>> {
    let mut out = Vec::new();
    for (name, table) in existing(root).await? {
        let files = local_files(&table).await?;
        let mut rows = 0u64;
        for f in &files {
            let file = std::fs::File::open(f).map_err(|e| read_err(f, e))?;
            let meta =
                ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| read_err(f, e))?;
            rows += meta.metadata().file_metadata().num_rows() as u64;
        }
        let committed_epoch = table
            .snapshot()
            .map_err(Box::new)?
            .transaction_version(table.log_store().as_ref(), APP_ID)
            .await
            .map_err(Box::new)?;
        out.push(TableInfo {
            name: name.to_string(),
            version: table.version().unwrap_or(0),
            committed_epoch,
            files: files.len(),
            rows,
        });
    }
    Ok(out)
}

pub(crate) fn read_err(path: &Path, e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::Read {
        path: path.display().to_string(),
        source: Box::new(e),
    }
}

/// What a full scan of a table read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Scan {
    /// Active data files.
    pub files: usize,
    /// Rows decoded.
    pub rows: u64,
    /// Bytes of the active files.
    pub bytes: u64,
}

/// Opens `name` and decodes every row of its active files with the parquet
/// reader: what any reader without a query engine pays for a full scan.
pub async fn scan(root: &Path, name: &str) -> Result<Scan> {
    let table = open(root, name).await?;
    let mut scan = Scan::default();
    for f in local_files(&table).await? {
        let file = std::fs::File::open(&f).map_err(|e| read_err(&f, e))?;
        scan.bytes += file.metadata().map_err(|e| read_err(&f, e))?.len();
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .and_then(|b| b.build())
            .map_err(|e| read_err(&f, e))?;
        for batch in reader {
            scan.rows += batch.map_err(|e| read_err(&f, e))?.num_rows() as u64;
        }
        scan.files += 1;
    }
    Ok(scan)
}

/// The record batches of `name`'s active files whose `date` partition is
/// within `days` (UTC day numbers; every file when None). Rows come in no
/// particular order.
pub async fn batches(
    root: &Path,
    name: &str,
    days: Option<std::ops::RangeInclusive<i32>>,
) -> Result<Vec<deltalake::arrow::array::RecordBatch>> {
    let table = open(root, name).await?;
    let mut out = Vec::new();
    for f in local_files(&table).await? {
        let day = partition_date(&f).and_then(|d| super::date::parse_day(&d));
        if let (Some(range), Some(day)) = (&days, day) {
            if !range.contains(&day) {
                continue;
            }
        }
        out.extend(file_batches(&f)?);
    }
    Ok(out)
}

/// Every record batch of one Parquet data file.
fn file_batches(f: &Path) -> Result<Vec<deltalake::arrow::array::RecordBatch>> {
    let file = std::fs::File::open(f).map_err(|e| read_err(f, e))?;
    ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .map_err(|e| read_err(f, e))?
        .map(|batch| batch.map_err(|e| read_err(f, e)))
        .collect()
}

/// The `date=YYYY-MM-DD` partition value in a data file's path.
fn partition_date(path: &Path) -> Option<String> {
    path.components()
        .filter_map(|c| {
            c.as_os_str()
                .to_str()?
                .strip_prefix("date=")
                .map(str::to_string)
        })
        .next()
}

/// Filters of `tables show`.
#[derive(Clone, Debug, Default)]
pub struct ShowFilter {
    /// Only rows of this symbol.
    pub symbol: Option<String>,
    /// Only partitions on or after this UTC date (YYYY-MM-DD).
    pub since: Option<String>,
    /// At most this many rows.
    pub limit: usize,
}

/// Rows of `table` as JSON objects (with the `date` partition column).
pub async fn rows(root: &Path, name: &str, filter: &ShowFilter) -> Result<Vec<Map<String, Value>>> {
    let table = open(root, name).await?;
    let files = local_files(&table).await?;
    let mut out = Vec::new();
    for f in files {
        let date = partition_date(&f);
        if let (Some(since), Some(d)) = (&filter.since, &date) {
            if d < since {
                continue;
            }
        }
        for batch in file_batches(&f)? {
            let mut w = ArrayWriter::new(Vec::new());
            w.write(&batch).map_err(|e| read_err(&f, e))?;
            w.finish().map_err(|e| read_err(&f, e))?;
            let bytes = w.into_inner();
            let values: Vec<Map<String, Value>> = if bytes.is_empty() {
                Vec::new()
            } else {
                serde_json::from_slice(&bytes).map_err(|e| read_err(&f, e))?
            };
            for mut row in values {
                if filter
                    .symbol
                    .as_ref()
                    .is_some_and(|s| row.get("symbol").and_then(Value::as_str) != Some(s))
                {
                    continue;
                }
                if let Some(d) = &date {
                    row.insert("date".into(), Value::String(d.clone()));
                }
                out.push(row);
                if out.len() >= filter.limit {
                    return Ok(out);
                }
            }
        }
    }
    Ok(out)
}

/// Every row of `name` as canonical JSON, sorted: a multiset, to compare
/// two tables row for row whatever their files and row order.
pub async fn row_set(root: &Path, name: &str) -> Result<Vec<String>> {
    let filter = ShowFilter {
        limit: usize::MAX,
        ..ShowFilter::default()
    };
    let mut out: Vec<String> = rows(root, name, &filter)
        .await?
        .iter()
        .map(|r| serde_json::to_string(r).expect("a JSON map always serialises"))
        .collect();
    out.sort();
    Ok(out)
}

/// Renders rows as an aligned text table with the table's column order.
pub fn render(name: &str, rows: &[Map<String, Value>]) -> String {
    let columns: Vec<String> = catalog::table(name)
        .map(|t| t.columns().iter().map(|c| c.name.to_string()).collect())
        .unwrap_or_default();
    let cell = |row: &Map<String, Value>, c: &str| match row.get(c) {
        None | Some(Value::Null) => "–".to_string(),
        Some(Value::String(s)) => s.chars().take(60).collect(),
        Some(v) => v.to_string(),
    };
    let mut widths: BTreeMap<&str, usize> = columns.iter().map(|c| (c.as_str(), c.len())).collect();
    for r in rows {
        for c in &columns {
            let w = widths.get_mut(c.as_str()).expect("column");
            *w = (*w).max(cell(r, c).chars().count());
        }
    }
    let line = |vals: Vec<String>| {
        vals.iter()
            .zip(&columns)
            .map(|(v, c)| format!("{v:<w$}", w = widths[c.as_str()]))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = vec![line(columns.clone())];
    out.extend(
        rows.iter()
            .map(|r| line(columns.iter().map(|c| cell(r, c)).collect())),
    );
    out.join("\n")
}
