//! What several benchmarks share.

use std::path::PathBuf;

use anyhow::bail;

/// The `cryptoflow` binary built next to the running benchmark (the
/// benchmarks that drive the real program run it as a user would).
pub fn cryptoflow_bin() -> anyhow::Result<PathBuf> {
    let bin = std::env::current_exe()?.with_file_name("cryptoflow");
    if !bin.exists() {
        bail!(
            "{} not found: run `cargo build --release` first",
            bin.display()
        );
    }
    Ok(bin)
}
