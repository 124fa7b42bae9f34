//! `cryptoflow tables …`: the command-line side of the warehouse commands
//! (flags, validation and printing); the work is in `cryptoflow::tables`.

use std::path::PathBuf;

use clap::Subcommand;

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
        /// bars, predictions, scores, evaluations or rejects.
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
        /// Retention window in hours.
        #[arg(long, default_value_t = 168)]
        retention_hours: u64,
    },
}

/// Runs one `tables` subcommand.
pub fn run(command: TablesCommand) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match command {
        TablesCommand::List { data_dir, json } => {
            let infos = rt.block_on(cryptoflow::tables::list(&data_dir))?;
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
                    cryptoflow::state::parse_day(s).is_some(),
                    "--since {s}: expected a date like 2026-11-24"
                );
            }
            let filter = cryptoflow::tables::ShowFilter {
                symbol,
                since,
                limit,
            };
            let rows = rt.block_on(cryptoflow::tables::rows(&data_dir, &table, &filter))?;
            if json {
                for r in &rows {
                    println!("{}", serde_json::to_string(r)?);
                }
            } else {
                println!("{}", cryptoflow::tables::render(&table, &rows));
            }
        }
        TablesCommand::Checkpoint { data_dir } => {
            for (t, v) in rt.block_on(cryptoflow::tables::checkpoint(&data_dir))? {
                println!("{t}: checkpoint at version {v}");
            }
        }
        TablesCommand::Vacuum {
            data_dir,
            retention_hours,
        } => {
            for (t, n) in rt.block_on(cryptoflow::tables::vacuum(&data_dir, retention_hours))? {
                println!("{t}: {n} file(s) deleted");
            }
        }
    }
    Ok(())
}
