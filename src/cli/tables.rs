//! `cryptoflow tables …`: the command-line side of the warehouse commands
//! (flags, validation and printing); the work is in `cryptoflow::warehouse`
//! (`read`, `maintain`, `compact`).

use std::path::PathBuf;

use clap::Subcommand;
use cryptoflow::warehouse::compact::{compact, CompactOptions, CompactReport};
use cryptoflow::warehouse::{catalog, date, maintain, read};

#[derive(Subcommand)]
pub enum TablesCommand {
    /// Every table's Delta version, committed epoch, files and rows.
    List {
        /// Warehouse root.
        #[arg(long, default_value = "./data")]
        data_dir: PathBuf,
        /// JSON instead of a text table.
        #[arg(long)]
        json: bool,
    },
    /// Print rows of one table.
    Show {
        /// The table (`tables schema` lists them).
        #[arg(value_parser = table_name)]
        table: String,
        /// Warehouse root.
        #[arg(long, default_value = "./data")]
        data_dir: PathBuf,
        /// Only this symbol.
        #[arg(long)]
        symbol: Option<String>,
        /// Only partitions on or after this UTC date (YYYY-MM-DD).
        #[arg(long)]
        since: Option<String>,
        /// At most this many rows.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// JSON lines instead of a text table.
        #[arg(long)]
        json: bool,
    },
    /// Every table's columns: name, type and meaning (Markdown, as in the README).
    Schema,
    /// Rewrite many small files per date partition as few large ones (one OPTIMIZE commit per table).
    Compact {
        /// Tables to compact (default: every table).
        tables: Vec<String>,
        /// Warehouse root.
        #[arg(long, default_value = "./data")]
        data_dir: PathBuf,
        /// Files smaller than this are compacted; new files roll over at it (MiB).
        #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u64).range(1..=65_536))]
        target_file_mb: u64,
        /// Compact a partition only when it has at least this many small files.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(2..=1_000_000))]
        min_files: u64,
        /// JSON lines instead of a text table.
        #[arg(long)]
        json: bool,
    },
    /// Write a Delta checkpoint of every table (and delete expired log entries).
    Checkpoint {
        /// Warehouse root.
        #[arg(long, default_value = "./data")]
        data_dir: PathBuf,
    },
    /// Delete data files no longer referenced and older than the retention window.
    Vacuum {
        /// Warehouse root.
        #[arg(long, default_value = "./data")]
        data_dir: PathBuf,
        /// Retention window in hours (at least 1: files a running pipeline or
        /// compaction has written but not yet committed must survive).
        #[arg(long, default_value_t = 168, value_parser = clap::value_parser!(u64).range(1..=876_000))]
        retention_hours: u64,
    },
}

fn table_name(s: &str) -> Result<String, String> {
    match catalog::table(s) {
        Some(t) => Ok(t.name().to_string()),
        None => Err(format!(
            "unknown table `{s}` (tables: {})",
            catalog::names().join(", ")
        )),
    }
}

/// Runs one `tables` subcommand.
pub fn run(command: TablesCommand) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match command {
        TablesCommand::List { data_dir, json } => {
            let infos = rt.block_on(read::list(&data_dir))?;
            anyhow::ensure!(!infos.is_empty(), "no tables under {}", data_dir.display());
            if json {
                for i in &infos {
                    println!("{}", serde_json::to_string(i)?);
                }
            } else {
                println!(
                    "{:<12} {:>8} {:>16} {:>6} {:>10}",
                    "table", "version", "committed_epoch", "files", "rows"
                );
                for i in &infos {
                    let epoch = i.committed_epoch.map_or("–".to_string(), |e| e.to_string());
                    println!(
                        "{:<12} {:>8} {:>16} {:>6} {:>10}",
                        i.name, i.version, epoch, i.files, i.rows
                    );
                }
            }
        }
        TablesCommand::Show {
            table,
            data_dir,
            symbol,
            since,
            limit,
            json,
        } => {
            if let Some(s) = &since {
                anyhow::ensure!(
                    date::parse_day(s).is_some(),
                    "--since {s}: expected a date like 2026-11-24"
                );
            }
            let filter = read::ShowFilter {
                symbol,
                since,
                limit,
            };
            let rows = rt.block_on(read::rows(&data_dir, &table, &filter))?;
            if json {
                for r in &rows {
                    println!("{}", serde_json::to_string(r)?);
                }
            } else {
                println!("{}", read::render(&table, &rows));
            }
        }
        TablesCommand::Compact {
            tables,
            data_dir,
            target_file_mb,
            min_files,
            json,
        } => {
            let opts = CompactOptions {
                target_file_bytes: target_file_mb << 20,
                min_files: min_files as usize,
            };
            let reports = rt.block_on(compact(&data_dir, &tables, &opts))?;
            anyhow::ensure!(
                !reports.is_empty(),
                "no tables under {}",
                data_dir.display()
            );
            print_compact(&reports, json)?;
        }
        TablesCommand::Schema => print!("{}", catalog::markdown()),
        TablesCommand::Checkpoint { data_dir } => {
            for (t, v) in rt.block_on(maintain::checkpoint_all(&data_dir))? {
                println!("{t}: checkpoint at version {v}");
            }
        }
        TablesCommand::Vacuum {
            data_dir,
            retention_hours,
        } => {
            for (t, n) in rt.block_on(maintain::vacuum(&data_dir, retention_hours))? {
                println!("{t}: {n} file(s) deleted");
            }
        }
    }
    Ok(())
}

fn print_compact(reports: &[CompactReport], json: bool) -> anyhow::Result<()> {
    if json {
        for r in reports {
            println!("{}", serde_json::to_string(r)?);
        }
        return Ok(());
    }
    let mib = |b: u64| format!("{:.1}", b as f64 / (1u64 << 20) as f64);
    println!(
        "{:<12} {:>8} {:>10} {:>12} {:>11} {:>10} {:>9} {:>10}",
        "table",
        "version",
        "partitions",
        "files_before",
        "files_after",
        "MiB_before",
        "MiB_after",
        "rows"
    );
    for r in reports {
        println!(
            "{:<12} {:>8} {:>10} {:>12} {:>11} {:>10} {:>9} {:>10}",
            r.table,
            r.version,
            r.partitions,
            r.files_before,
            r.files_after,
            mib(r.bytes_before),
            mib(r.bytes_after),
            r.rows_rewritten
        );
    }
    Ok(())
}
