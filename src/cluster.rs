//! The layout of the timely cluster `run` forms: worker threads per process,
//! the processes and their addresses, turned into a `timely::Config`; and
//! the guard that keeps timely's connection chatter off stdout while the
//! processes connect.
//!
//! No time semantics: this is set once at start-up. It must never decide
//! which worker reads which partition (that is `dataflows::source`), and
//! must never leave stdout pointed at stderr once the cluster is up: stdout
//! carries the JSON summary scripts read.

use std::path::PathBuf;

/// Bad cluster settings.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Zero worker threads per process.
    #[error("cluster: need at least one worker")]
    NoWorkers,
    /// This process's index is not below the process count.
    #[error("cluster: process index {process} must be below the process count {processes}")]
    ProcessIndex {
        /// The index given.
        process: usize,
        /// The process count.
        processes: usize,
    },
    /// The hostfile could not be read.
    #[error("cluster: hostfile {}", .path.display())]
    Hostfile {
        /// Its path.
        path: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// The hostfile lists fewer hosts than there are processes.
    #[error("cluster: hostfile lists {listed} hosts for {processes} processes")]
    TooFewHosts {
        /// Hosts listed.
        listed: usize,
        /// The process count.
        processes: usize,
    },
}

/// Result alias for this module.
pub type Result<T> = std::result::Result<T, Error>;

/// How the timely cluster is laid out.
#[derive(Clone, Debug)]
pub struct Cluster {
    /// Worker threads per process.
    pub workers: usize,
    /// Number of processes.
    pub processes: usize,
    /// This process's index.
    pub process: usize,
    /// One `host:port` per line, one line per process (default: 127.0.0.1:2101+i).
    pub hostfile: Option<PathBuf>,
}

impl Cluster {
    /// One process of `workers` worker threads.
    pub fn local(workers: usize) -> Self {
        Cluster {
            workers,
            processes: 1,
            process: 0,
            hostfile: None,
        }
    }

    /// The timely configuration.
    pub fn timely_config(&self) -> Result<timely::Config> {
        let Cluster {
            workers,
            processes,
            process,
            hostfile,
        } = self;
        if *workers == 0 {
            return Err(Error::NoWorkers);
        }
        if *processes <= 1 {
            return Ok(timely::Config::process(*workers));
        }
        if process >= processes {
            return Err(Error::ProcessIndex {
                process: *process,
                processes: *processes,
            });
        }
        let addresses: Vec<String> = match hostfile {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| Error::Hostfile {
                    path: path.clone(),
                    source,
                })?;
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(String::from)
                    .collect()
            }
            None => (0..*processes)
                .map(|i| format!("127.0.0.1:{}", 2101 + i))
                .collect(),
        };
        if addresses.len() < *processes {
            return Err(Error::TooFewHosts {
                listed: addresses.len(),
                processes: *processes,
            });
        }
        Ok(timely::Config {
            communication: timely::CommunicationConfig::Cluster {
                threads: *workers,
                process: *process,
                addresses: addresses[..*processes].to_vec(),
                report: false,
                zerocopy: false,
            },
            worker: timely::WorkerConfig::default(),
        })
    }
}

/// While a cluster's processes connect, timely's networking reports progress
/// ("awaiting connections (at 0/1)") with `println!`. Pointing stdout at
/// stderr for that time keeps stdout for the JSON summary scripts read. The
/// sockets are all connected when `timely::execute` returns, and timely
/// prints nothing after, so the guard is dropped right then.
pub(crate) struct StdoutToStderr {
    #[cfg(unix)]
    saved: Option<std::os::fd::OwnedFd>,
}

impl StdoutToStderr {
    /// Points stdout at stderr if `cluster` (more than one process), until dropped.
    pub(crate) fn during_cluster_start(cluster: bool) -> Self {
        #[cfg(unix)]
        {
            use std::io::Write;
            use std::os::fd::{AsFd, AsRawFd};
            let saved = cluster
                .then(|| std::io::stdout().as_fd().try_clone_to_owned().ok())
                .flatten();
            if saved.is_some() {
                let _ = std::io::stdout().flush();
                // SAFETY: dup2 on the process's own standard descriptors,
                // both open for the life of the process.
                unsafe { libc::dup2(std::io::stderr().as_raw_fd(), std::io::stdout().as_raw_fd()) };
            }
            StdoutToStderr { saved }
        }
        #[cfg(not(unix))]
        {
            let _ = cluster;
            StdoutToStderr {}
        }
    }
}

impl Drop for StdoutToStderr {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Some(saved) = self.saved.take() {
            use std::io::Write;
            use std::os::fd::AsRawFd;
            let _ = std::io::stdout().flush();
            // SAFETY: as above; `saved` is a valid descriptor we own.
            unsafe { libc::dup2(saved.as_raw_fd(), std::io::stdout().as_raw_fd()) };
        }
    }
}
