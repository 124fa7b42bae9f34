//! Embeds the dashboard's charting library, uPlot, taken from the npm
//! registry by exact version with its integrity checked.
//!
//! The package tarball is kept in `$CRYPTOFLOW_CACHE/assets` (default
//! `~/.cache/cryptoflow/assets`). When it is missing, this script fetches it
//! with `npm pack uplot@VERSION` (npm is installed by `scripts/setup.sh`);
//! afterwards builds need no network. The tarball's sha512 must equal the
//! registry's `dist.integrity` pinned below, or the build stops; the two
//! files the dashboard serves (and the licence) are then extracted into
//! `OUT_DIR` and `include_bytes!`d by `src/http/assets.rs`. Nothing is
//! copied into the repository and nothing is loaded from a CDN at run time.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

/// uPlot (MIT), the version the dashboard is written against.
const UPLOT_VERSION: &str = "1.6.32";
/// `npm view uplot@1.6.32 dist.integrity`.
const UPLOT_INTEGRITY: &str =
    "sha512-KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6IKTXImkbLgkMy+jabjLgSLMasNuGGzQm/ep3tOkyTxpiQIw==";
/// Files taken from the package, and their names in OUT_DIR.
const FILES: [(&str, &str); 3] = [
    ("package/dist/uPlot.iife.min.js", "uplot.min.js"),
    ("package/dist/uPlot.min.css", "uplot.min.css"),
    ("package/LICENSE", "uplot.LICENSE"),
];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CRYPTOFLOW_CACHE");
    if let Err(e) = embed_uplot() {
        panic!(
            "\n\ncannot embed uPlot {UPLOT_VERSION} for the dashboard: {e}\n\
             run `scripts/setup.sh` (it installs npm), then build again; with no \
             network, put the registry's uplot-{UPLOT_VERSION}.tgz into {}\n\n",
            cache_dir().display()
        );
    }
}

fn cache_dir() -> PathBuf {
    std::env::var_os("CRYPTOFLOW_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/cryptoflow")))
        .unwrap_or_else(|| PathBuf::from(".cache/cryptoflow"))
        .join("assets")
}

fn embed_uplot() -> Result<(), String> {
    let dir = cache_dir();
    let tarball = dir.join(format!("uplot-{UPLOT_VERSION}.tgz"));
    println!("cargo:rerun-if-changed={}", tarball.display());
    if !tarball.is_file() {
        fetch(&dir)?;
    }
    let bytes =
        std::fs::read(&tarball).map_err(|e| format!("reading {}: {e}", tarball.display()))?;
    let got = integrity(&bytes);
    if got != UPLOT_INTEGRITY {
        let _ = std::fs::remove_file(&tarball);
        return Err(format!(
            "{} has integrity {got}, expected {UPLOT_INTEGRITY}; the file was removed",
            tarball.display()
        ));
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").ok_or("OUT_DIR is not set")?);
    extract(&bytes, &out)
}

fn fetch(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let spec = format!("uplot@{UPLOT_VERSION}");
    let status = Command::new("npm")
        .args(["pack", &spec, "--silent", "--pack-destination"])
        .arg(dir)
        .status()
        .map_err(|e| format!("running `npm pack {spec}`: {e}"))?;
    if !status.success() {
        return Err(format!("`npm pack {spec}` failed ({status})"));
    }
    Ok(())
}

/// Subresource-integrity string of `bytes`, as npm's `dist.integrity`.
fn integrity(bytes: &[u8]) -> String {
    use base64::Engine;
    use sha2::Digest;
    let digest = sha2::Sha512::digest(bytes);
    format!(
        "sha512-{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

fn extract(tgz: &[u8], out: &Path) -> Result<(), String> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(tgz));
    let mut found = 0;
    for entry in archive
        .entries()
        .map_err(|e| format!("reading the tarball: {e}"))?
    {
        let mut entry = entry.map_err(|e| format!("reading the tarball: {e}"))?;
        let path = entry
            .path()
            .map_err(|e| format!("reading the tarball: {e}"))?
            .to_string_lossy()
            .into_owned();
        if let Some((_, name)) = FILES.iter().find(|(p, _)| *p == path) {
            let mut data = Vec::new();
            entry
                .read_to_end(&mut data)
                .map_err(|e| format!("reading {path}: {e}"))?;
            std::fs::write(out.join(name), data).map_err(|e| format!("writing {name}: {e}"))?;
            found += 1;
        }
    }
    if found != FILES.len() {
        return Err(format!(
            "the package lacks some of {:?}",
            FILES.iter().map(|f| f.0).collect::<Vec<_>>()
        ));
    }
    Ok(())
}
