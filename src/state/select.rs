//! Which snapshot a restart continues from, and what a written snapshot
//! says about itself.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use dataflows::snapshot::{self, Assembled, Entry, Key, Op, Restore};
use dataflows::source::PartitionSnapshot;
use tracing::warn;

use super::{list, read, Error, Header, Kind, Snapshot, Status};

/// Whether a run starts from a snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum FromSnapshot {
    /// The newest usable one; the topic from its start without one.
    #[default]
    Latest,
    /// None: rebuild all state from the topic.
    None,
}

/// Why no snapshot may be used and the run must not start either.
#[derive(Debug, thiserror::Error)]
pub enum SelectError {
    /// Listing or reading failed, or a format this build does not read.
    #[error(transparent)]
    File(#[from] Error),
    /// The newest intact snapshot was written under other settings.
    #[error(
        "{path}: the snapshot was written under other settings ({differences}); \
         run with the same settings, or start with --from-snapshot none to rebuild state from the topic"
    )]
    Settings {
        /// The file.
        path: PathBuf,
        /// Each differing setting, as `name: snapshot → now`.
        differences: String,
    },
    /// Intact and of this format, but its state does not fit the run (a
    /// bug, or a file from another build of the same format).
    #[error("{path}: {why}; start with --from-snapshot none to rebuild state from the topic")]
    State {
        /// The file.
        path: PathBuf,
        /// What does not fit.
        why: String,
    },
}

/// A snapshot chosen to start from.
#[derive(Debug)]
pub struct Chosen {
    /// Its file.
    pub path: PathBuf,
    /// Its header.
    pub header: Header,
    /// Its state, for the dataflow.
    pub restore: Restore,
}

/// The newest snapshot in `dir` a run with `settings` (a [`settings`]
/// string) can continue from, over a warehouse whose tables are at
/// `committed(table)`; None if there is none. A corrupt file, or one the
/// warehouse is behind (restored from an older backup, another data dir),
/// is reported and the next older one is tried. An intact file of an
/// unknown format, written under other settings or whose state `check`
/// refuses is an error: the run does not start rather than silently
/// replay everything under a snapshot the user may rely on.
pub fn select(
    dir: &Path,
    settings: &str,
    committed: impl Fn(&str) -> Option<u64>,
    check: impl Fn(&Restore) -> Result<(), String>,
) -> Result<Option<Chosen>, SelectError> {
    for listed in list(dir)? {
        let header = match listed.status {
            Status::Ok(h) => *h,
            Status::Corrupt(why) => {
                set_aside(&listed.path, &why);
                continue;
            }
            Status::UnknownVersion(found) => {
                return Err(Error::UnknownVersion {
                    path: listed.path,
                    found,
                }
                .into())
            }
        };
        if header.fingerprint != settings {
            return Err(SelectError::Settings {
                differences: differences(&header.fingerprint, settings),
                path: listed.path,
            });
        }
        let behind: Vec<String> = header
            .committed
            .iter()
            .filter(|(table, epoch)| committed(table) < **epoch)
            .map(|(table, epoch)| format!("{table} at {:?}, needs {epoch:?}", committed(table)))
            .collect();
        if !behind.is_empty() {
            warn!(path = %listed.path.display(), tables = %behind.join(", "), "the warehouse is behind this snapshot; trying the previous one");
            continue;
        }
        // Re-read: the file may have changed since it was listed.
        let snap = match read(&listed.path) {
            Ok(s) => s,
            Err(Error::Corrupt { why, .. }) => {
                set_aside(&listed.path, &why);
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let state = |why: String| SelectError::State {
            path: listed.path.clone(),
            why,
        };
        let entries: Vec<Entry> =
            snapshot::decode(&snap.payload).map_err(|e| state(e.to_string()))?;
        let restore = Restore {
            cut: snap.header.epoch,
            entries,
        };
        check(&restore).map_err(state)?;
        return Ok(Some(Chosen {
            path: listed.path,
            header: snap.header,
            restore,
        }));
    }
    Ok(None)
}

/// Reports a corrupt snapshot and renames it `….corrupt`: kept for a
/// person to look at, no longer listed, and never again the newest (which
/// would have every new snapshot pruned before it).
fn set_aside(path: &Path, why: &str) {
    let aside = path.with_extension("cfstate.corrupt");
    warn!(path = %path.display(), why, aside = %aside.display(), "snapshot is corrupt; set aside, trying the previous one");
    if let Err(e) = std::fs::rename(path, &aside) {
        warn!(path = %path.display(), error = %e, "could not set the corrupt snapshot aside");
    }
}

/// The settings that shape the state, as `name=value` pairs joined by
/// `;`: a snapshot is only continued under the same string.
pub fn settings<'a>(pairs: impl IntoIterator<Item = (&'a str, String)>) -> String {
    pairs
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(";")
}

/// The settings that differ, as `name: was → now`.
fn differences(was: &str, now: &str) -> String {
    let pairs = |s: &str| -> BTreeMap<String, String> {
        s.split(';')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let (was, now) = (pairs(was), pairs(now));
    let mut keys: Vec<&String> = was.keys().chain(now.keys()).collect();
    keys.sort();
    keys.dedup();
    let none = "(none)".to_string();
    keys.into_iter()
        .filter(|k| was.get(*k) != now.get(*k))
        .map(|k| {
            format!(
                "{k}: {} → {}",
                was.get(k).unwrap_or(&none),
                now.get(k).unwrap_or(&none)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The file form of a cut the dataflow assembled: the header says where
/// each partition resumes and which symbols have state; the payload holds
/// every entry.
pub fn of_cut(
    cut: &Assembled,
    kind: Kind,
    settings: &str,
    committed: BTreeMap<String, Option<u64>>,
    written_at_ms: u64,
) -> Snapshot {
    let mut offsets = BTreeMap::new();
    let mut symbols = Vec::new();
    for e in &cut.entries {
        match (&e.op, &e.key) {
            (Op::Source, Key::Partition(p)) => {
                if let Ok(st) = snapshot::decode::<PartitionSnapshot>(&e.bytes) {
                    if let Some(o) = st.next_offset {
                        offsets.insert(*p, o);
                    }
                }
            }
            (Op::Predict, Key::Symbol(s)) => symbols.push(s.clone()),
            _ => {}
        }
    }
    Snapshot {
        header: Header {
            epoch: cut.cut,
            kind,
            written_at_ms,
            fingerprint: settings.to_string(),
            offsets,
            symbols,
            committed,
            stall_max_ns: cut.stall_max_ns,
            first_delivery_ms: None,
        },
        payload: snapshot::encode(&cut.entries),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::write;

    fn cut(epoch: u64) -> Snapshot {
        let assembled = Assembled {
            cut: epoch,
            entries: Vec::new(),
            stall_max_ns: 0,
        };
        let committed = [("bars".to_string(), Some(epoch))].into();
        of_cut(&assembled, Kind::Cadence, "a=1", committed, 0)
    }

    #[test]
    fn select_skips_corrupt_and_warehouse_behind_and_refuses_other_settings() {
        let dir = std::env::temp_dir().join(format!(
            "cf-select-{}-{}",
            std::process::id(),
            crate::now_ms()
        ));
        for epoch in [10, 20, 30] {
            write(&dir, &cut(epoch), 10).unwrap();
        }
        let newest = dir.join(crate::state::file_name(30));
        let mut bytes = std::fs::read(&newest).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&newest, bytes).unwrap();
        let ok = |_: &Restore| Ok(());
        // The warehouse's bars are at 25: 30 is corrupt anyway, 20 fits.
        let chosen = select(&dir, "a=1", |_| Some(25), ok).unwrap().unwrap();
        assert_eq!(chosen.restore.cut, 20);
        assert!(!newest.exists(), "the corrupt file is set aside");
        assert!(newest.with_extension("cfstate.corrupt").exists());
        // Behind 20: the one before.
        let chosen = select(&dir, "a=1", |_| Some(15), ok).unwrap().unwrap();
        assert_eq!(chosen.restore.cut, 10);
        // Behind all of them: none.
        assert!(select(&dir, "a=1", |_| None, ok).unwrap().is_none());
        // Other settings, or a state the run refuses: errors, not a replay.
        assert!(matches!(
            select(&dir, "a=2", |_| Some(99), ok),
            Err(SelectError::Settings { .. })
        ));
        assert!(matches!(
            select(&dir, "a=1", |_| Some(99), |_: &Restore| Err("no".into())),
            Err(SelectError::State { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn differences_name_each_changed_setting() {
        let was = settings([("bar_ms", "1000".into()), ("horizons", "1,5".into())]);
        let now = settings([("bar_ms", "500".into()), ("horizons", "1,5".into())]);
        assert_eq!(differences(&was, &now), "bar_ms: 1000 → 500");
        let more = settings([("bar_ms", "1000".into()), ("batch", "ridge".into())]);
        assert_eq!(
            differences(&was, &more),
            "batch: (none) → ridge, horizons: 1,5 → (none)"
        );
    }
}
