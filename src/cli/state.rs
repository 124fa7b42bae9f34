//! `cryptoflow state …`: the snapshots a run keeps (see
//! `cryptoflow::state`): which there are, whether each is usable, and what
//! one holds.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use cryptoflow::state::{self, Listed, Status};
use dataflows::snapshot::{self, Entry, Op};

#[derive(Subcommand)]
pub enum StateCommand {
    /// Every snapshot, newest first: epoch, kind, size, status, partitions, symbols.
    List {
        /// Warehouse root (the snapshots are in its `_state`).
        #[arg(long, default_value = "./data")]
        data_dir: PathBuf,
        /// The snapshot directory, if not `<data-dir>/_state`.
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// JSON lines instead of a text table.
        #[arg(long)]
        json: bool,
    },
    /// One snapshot in full: header, offsets per partition, committed
    /// table epochs, bytes per operator.
    Show {
        /// Its epoch (ms), or `latest`.
        #[arg(default_value = "latest")]
        epoch: String,
        /// Warehouse root (the snapshots are in its `_state`).
        #[arg(long, default_value = "./data")]
        data_dir: PathBuf,
        /// The snapshot directory, if not `<data-dir>/_state`.
        #[arg(long)]
        state_dir: Option<PathBuf>,
    },
}

fn dir_of(data_dir: PathBuf, state_dir: Option<PathBuf>) -> PathBuf {
    state_dir.unwrap_or_else(|| data_dir.join("_state"))
}

fn status(l: &Listed) -> String {
    match &l.status {
        Status::Ok(_) => "ok".into(),
        Status::Corrupt(why) => format!("corrupt: {why}"),
        Status::UnknownVersion(v) => format!("unknown format {v}"),
    }
}

pub fn run(command: StateCommand) -> anyhow::Result<()> {
    match command {
        StateCommand::List {
            data_dir,
            state_dir,
            json,
        } => {
            let dir = dir_of(data_dir, state_dir);
            let listed = state::list(&dir)?;
            if !json {
                println!(
                    "{:>15}  {:<7}  {:>10}  {:>10}  {:>7}  status",
                    "epoch_ms", "kind", "bytes", "partitions", "symbols"
                );
            }
            for l in &listed {
                let header = match &l.status {
                    Status::Ok(h) => Some(h),
                    _ => None,
                };
                if json {
                    let line = serde_json::json!({
                        "epoch_ms": l.epoch,
                        "path": l.path,
                        "bytes": l.bytes,
                        "status": status(l),
                        "kind": header.map(|h| h.kind),
                        "offsets": header.map(|h| &h.offsets),
                        "symbols": header.map(|h| &h.symbols),
                        "written_at_ms": header.map(|h| h.written_at_ms),
                    });
                    println!("{line}");
                } else {
                    println!(
                        "{:>15}  {:<7}  {:>10}  {:>10}  {:>7}  {}",
                        l.epoch,
                        header.map_or("-".into(), |h| format!("{:?}", h.kind).to_lowercase()),
                        l.bytes,
                        header.map_or("-".into(), |h| h.offsets.len().to_string()),
                        header.map_or("-".into(), |h| h.symbols.len().to_string()),
                        status(l)
                    );
                }
            }
            if listed.is_empty() && !json {
                println!("(no snapshots in {})", dir.display());
            }
        }
        StateCommand::Show {
            epoch,
            data_dir,
            state_dir,
        } => {
            let dir = dir_of(data_dir, state_dir);
            let listed = state::list(&dir)?;
            let chosen = if epoch == "latest" {
                listed.first()
            } else {
                let e: u64 = epoch
                    .parse()
                    .with_context(|| format!("epoch `{epoch}`: a number of ms, or `latest`"))?;
                listed.iter().find(|l| l.epoch == e)
            }
            .with_context(|| format!("no snapshot `{epoch}` in {}", dir.display()))?;
            let snap = state::read(&chosen.path)?;
            let entries: Vec<Entry> = snapshot::decode(&snap.payload)
                .map_err(|e| anyhow::anyhow!("{}: {e}", chosen.path.display()))?;
            let mut bytes_per_op = std::collections::BTreeMap::<String, (usize, usize)>::new();
            for e in &entries {
                let slot = bytes_per_op.entry(op_name(e.op)).or_default();
                slot.0 += 1;
                slot.1 += e.bytes.len();
            }
            let out = serde_json::json!({
                "path": chosen.path,
                "bytes": chosen.bytes,
                "header": snap.header,
                "entries": bytes_per_op
                    .into_iter()
                    .map(|(op, (n, b))| (op, serde_json::json!({"keys": n, "bytes": b})))
                    .collect::<serde_json::Map<_, _>>(),
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
    }
    Ok(())
}

fn op_name(op: Op) -> String {
    format!("{op:?}").to_lowercase()
}
