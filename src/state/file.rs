//! The snapshot file: bytes, atomic writes, listing, pruning.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{Error, Header, Result, Snapshot, FORMAT_VERSION};

const MAGIC: &[u8; 8] = b"CFSTATE\n";
const PREFIX: &str = "snapshot-";
const SUFFIX: &str = ".cfstate";
const TMP_SUFFIX: &str = ".tmp";
/// Magic, version, header length.
const FIXED: usize = 8 + 4 + 4;
const SUM: usize = 32;

/// The file name of the snapshot at `epoch`: zero-padded, so names sort as
/// epochs do.
pub fn file_name(epoch: u64) -> String {
    format!("{PREFIX}{epoch:020}{SUFFIX}")
}

fn epoch_of(name: &str) -> Option<u64> {
    name.strip_prefix(PREFIX)?
        .strip_suffix(SUFFIX)?
        .parse()
        .ok()
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The file's bytes (see the module's layout).
pub(super) fn encode(s: &Snapshot) -> Vec<u8> {
    let header = serde_json::to_vec(&s.header).expect("a header serialises");
    let header_len = u32::try_from(header.len()).expect("a header under 4 GiB");
    let mut out = Vec::with_capacity(FIXED + header.len() + 8 + s.payload.len() + SUM);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&header_len.to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(&(s.payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&s.payload);
    let sum = Sha256::digest(&out);
    out.extend_from_slice(&sum);
    out
}

/// Checks and splits a file's bytes: magic, lengths, checksum, then version.
pub(super) fn decode(path: &Path, bytes: &[u8]) -> Result<Snapshot> {
    let corrupt = |why: String| Error::Corrupt {
        path: path.to_path_buf(),
        why,
    };
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(corrupt("not a cryptoflow snapshot (no magic)".into()));
    }
    if bytes.len() < FIXED + 8 + SUM {
        return Err(corrupt(format!("truncated: {} bytes", bytes.len())));
    }
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    let version = u32_at(8);
    let header_len = u32_at(12) as usize;
    let payload_at = FIXED + header_len + 8;
    if payload_at + SUM > bytes.len() {
        return Err(corrupt(format!(
            "truncated: {} bytes, the header alone claims {}",
            bytes.len(),
            payload_at + SUM
        )));
    }
    let payload_len = u64::from_le_bytes(
        bytes[payload_at - 8..payload_at]
            .try_into()
            .expect("8 bytes"),
    );
    let claimed = (payload_at as u64)
        .checked_add(payload_len)
        .and_then(|n| n.checked_add(SUM as u64));
    if claimed != Some(bytes.len() as u64) {
        return Err(corrupt(format!(
            "{} bytes, but its lengths say {}",
            bytes.len(),
            claimed.map_or_else(|| "more than 2^64".to_string(), |n| n.to_string())
        )));
    }
    let body = bytes.len() - SUM;
    if Sha256::digest(&bytes[..body])[..] != bytes[body..] {
        return Err(corrupt("checksum mismatch".into()));
    }
    if version != FORMAT_VERSION {
        return Err(Error::UnknownVersion {
            path: path.to_path_buf(),
            found: version,
        });
    }
    let header: Header = serde_json::from_slice(&bytes[FIXED..FIXED + header_len])
        .map_err(|e| corrupt(format!("header: {e}")))?;
    Ok(Snapshot {
        header,
        payload: bytes[payload_at..body].to_vec(),
    })
}

/// Writes `snapshot` into `dir` atomically, then keeps only the newest
/// `keep` snapshots (at least one: the one just written). Returns its path.
pub fn write(dir: &Path, snapshot: &Snapshot, keep: usize) -> Result<PathBuf> {
    fs::create_dir_all(dir).map_err(io(dir))?;
    let name = file_name(snapshot.header.epoch);
    let path = dir.join(&name);
    let tmp = dir.join(format!(".{name}.{}{TMP_SUFFIX}", std::process::id()));
    let written = File::create(&tmp).and_then(|mut f| {
        f.write_all(&encode(snapshot))?;
        f.sync_all()
    });
    if let Err(e) = written.and_then(|()| fs::rename(&tmp, &path)) {
        let _ = fs::remove_file(&tmp);
        return Err(io(&tmp)(e));
    }
    // The rename is durable once the directory is.
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))?;
    prune(dir, keep)?;
    Ok(path)
}

/// Reads and checks one snapshot file.
pub fn read(path: &Path) -> Result<Snapshot> {
    let bytes = fs::read(path).map_err(io(path))?;
    decode(path, &bytes)
}

/// What `list` found in a file.
#[derive(Clone, Debug, PartialEq)]
pub enum Status {
    /// Intact; its header.
    Ok(Box<Header>),
    /// Corrupt, and why.
    Corrupt(String),
    /// Intact but in another format version.
    UnknownVersion(u32),
}

/// One snapshot file in a state directory.
#[derive(Clone, Debug, PartialEq)]
pub struct Listed {
    /// The file.
    pub path: PathBuf,
    /// The epoch its name says.
    pub epoch: u64,
    /// Its size.
    pub bytes: u64,
    /// What reading it found.
    pub status: Status,
}

/// The snapshot files in `dir` (none if it does not exist), newest epoch
/// first, each read and checked. Temporary files are not listed.
pub fn list(dir: &Path) -> Result<Vec<Listed>> {
    let mut out = Vec::new();
    for (epoch, path) in snapshot_files(dir)?.into_iter().rev() {
        let (bytes, status) = match fs::read(&path) {
            Ok(b) => (
                b.len() as u64,
                match decode(&path, &b) {
                    Ok(s) => Status::Ok(Box::new(s.header)),
                    Err(Error::UnknownVersion { found, .. }) => Status::UnknownVersion(found),
                    Err(e) => Status::Corrupt(e.to_string()),
                },
            ),
            Err(e) => (0, Status::Corrupt(format!("unreadable: {e}"))),
        };
        out.push(Listed {
            path,
            epoch,
            bytes,
            status,
        });
    }
    Ok(out)
}

/// Snapshot files in `dir` by epoch, oldest first, without reading them.
fn snapshot_files(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(dir)(e)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io(dir))?;
        if let Some(epoch) = entry.file_name().to_str().and_then(epoch_of) {
            files.push((epoch, entry.path()));
        }
    }
    files.sort();
    Ok(files)
}

/// Deletes all but the newest `keep` (at least one) snapshot files.
pub fn prune(dir: &Path, keep: usize) -> Result<()> {
    let files = snapshot_files(dir)?;
    let drop = files.len().saturating_sub(keep.max(1));
    for (_, path) in &files[..drop] {
        fs::remove_file(path).map_err(io(path))?;
    }
    Ok(())
}

/// Removes temporary files a crashed write left in `dir`; returns how many.
pub fn clean(dir: &Path) -> Result<usize> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io(dir)(e)),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry.map_err(io(dir))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(&format!(".{PREFIX}")) && name.ends_with(TMP_SUFFIX) {
            fs::remove_file(entry.path()).map_err(io(&entry.path()))?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Kind;

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir().join(format!(
                "cf-state-{name}-{}-{}",
                std::process::id(),
                crate::now_ms()
            ));
            let _ = fs::remove_dir_all(&dir);
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn snapshot(epoch: u64) -> Snapshot {
        Snapshot {
            header: Header {
                epoch,
                kind: Kind::Cadence,
                written_at_ms: 1_700_000_000_000,
                fingerprint: "f".into(),
                offsets: [(0, 17), (1, 4)].into(),
                symbols: vec!["BTC-USD".into()],
                committed: [
                    ("bars".to_string(), Some(epoch - 1)),
                    ("rejects".into(), None),
                ]
                .into(),
                stall_max_ns: 1_234,
                first_delivery_ms: Some(1_699_999_000_000),
            },
            payload: (0..=255u8).cycle().take(1_000).collect(),
        }
    }

    #[test]
    fn written_snapshots_read_back_and_list_newest_first() {
        let dir = TempDir::new("list");
        for epoch in [60_000, 180_000, 120_000] {
            let path = write(&dir.0, &snapshot(epoch), 5).unwrap();
            assert_eq!(path.file_name().unwrap().to_str(), Some(&*file_name(epoch)));
            assert_eq!(read(&path).unwrap(), snapshot(epoch));
        }
        let listed = list(&dir.0).unwrap();
        let epochs: Vec<u64> = listed.iter().map(|l| l.epoch).collect();
        assert_eq!(epochs, [180_000, 120_000, 60_000]);
        assert!(matches!(&listed[0].status, Status::Ok(h) if h.epoch == 180_000));
        assert_eq!(listed[0].bytes, encode(&snapshot(180_000)).len() as u64);
        assert!(list(&dir.0.join("absent")).unwrap().is_empty());
    }

    #[test]
    fn every_flipped_byte_is_corrupt_never_misread() {
        let bytes = encode(&snapshot(60_000));
        let path = Path::new("x.cfstate");
        for at in 0..bytes.len() {
            let mut b = bytes.clone();
            b[at] ^= 0x10;
            match decode(path, &b) {
                Err(Error::Corrupt { .. }) => {}
                other => panic!("byte {at} flipped: {other:?}"),
            }
        }
    }

    #[test]
    fn truncated_or_extended_files_are_corrupt() {
        let bytes = encode(&snapshot(60_000));
        let path = Path::new("x.cfstate");
        for len in [0, 5, 8, 20, 100, bytes.len() - 100, bytes.len() - 1] {
            let err = decode(path, &bytes[..len]).unwrap_err();
            assert!(matches!(err, Error::Corrupt { .. }), "{len}: {err}");
        }
        let mut longer = bytes;
        longer.push(0);
        assert!(matches!(decode(path, &longer), Err(Error::Corrupt { .. })));
    }

    /// An intact file of a format this build does not know is an error
    /// that says so and what to do, not a corrupt file to skip.
    #[test]
    fn unknown_version_is_refused_with_a_clear_error() {
        let mut bytes = encode(&snapshot(60_000));
        bytes[8..12].copy_from_slice(&999u32.to_le_bytes());
        let body = bytes.len() - SUM;
        let sum = Sha256::digest(&bytes[..body]);
        bytes[body..].copy_from_slice(&sum);
        let err = decode(Path::new("x.cfstate"), &bytes).unwrap_err();
        assert!(matches!(err, Error::UnknownVersion { found: 999, .. }));
        let msg = err.to_string();
        assert!(
            msg.contains("format 999") && msg.contains("--from-snapshot none"),
            "{msg}"
        );
    }

    #[test]
    fn pruning_keeps_the_newest_and_temporary_files_are_ignored_then_cleaned() {
        let dir = TempDir::new("prune");
        for k in 1..=5u64 {
            write(&dir.0, &snapshot(k * 60_000), 3).unwrap();
        }
        let tmp = dir.0.join(format!(".{}.42.tmp", file_name(360_000)));
        fs::write(&tmp, b"half a snapshot").unwrap();
        let epochs: Vec<u64> = list(&dir.0).unwrap().iter().map(|l| l.epoch).collect();
        assert_eq!(epochs, [300_000, 240_000, 180_000]);
        assert_eq!(clean(&dir.0).unwrap(), 1);
        assert!(!tmp.exists());
        prune(&dir.0, 0).unwrap();
        assert_eq!(list(&dir.0).unwrap().len(), 1);
    }

    #[test]
    fn a_corrupt_file_is_listed_as_corrupt() {
        let dir = TempDir::new("corrupt");
        let path = write(&dir.0, &snapshot(60_000), 3).unwrap();
        let mut b = fs::read(&path).unwrap();
        b.truncate(b.len() - 100);
        fs::write(&path, b).unwrap();
        let listed = list(&dir.0).unwrap();
        assert!(
            matches!(&listed[0].status, Status::Corrupt(why) if why.contains("truncated") || why.contains("lengths")),
            "{:?}",
            listed[0].status
        );
    }
}
