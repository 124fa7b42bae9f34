//! `cryptoflow cluster`: launches a local cluster of P `run` processes of W
//! workers on loopback and watches it like an operator would.
//!
//! It writes a hostfile (`127.0.0.1:<base-port + i>`, one line per process)
//! into a fresh directory, starts process i as `cryptoflow run <run flags>
//! -w W -n P -p i --hostfile FILE`; process 0 keeps the run flags' HTTP
//! server and polls the others' health (`--peer-health`), process i > 0
//! gets `--no-http --health-addr 127.0.0.1:<health-base-port + i>` (see
//! [`crate::health`]). Each child's stderr is copied to ours with a `pI: `
//! prefix; process 0's stdout (the run's JSON summary) is ours.
//!
//! Signals: SIGINT/SIGTERM to the launcher are forwarded to every process
//! as SIGTERM (each commits what it holds and exits). Failure: when a
//! process exits with an error or is killed, the launcher names it at once
//! (`process 1 (pid …) was killed by signal 9`), waits [`GRACE`] so its
//! peers notice and report it, stops the others (SIGTERM, then SIGKILL
//! after [`STOP_TIMEOUT`]) and exits non-zero. Restarting the same cluster
//! resumes from the committed epochs (the warehouse's `txn` versions).
//!
//! No time semantics beyond these wall-clock waits. It must never leave a
//! child running when it exits.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tracing::{error, info, warn};

use crate::shutdown::stop_on_signal;

/// How long the launcher waits after a process died before stopping the
/// others, so their health endpoints and logs report the death first.
pub const GRACE: Duration = Duration::from_secs(2);
/// How long a stopped process gets to commit and exit before SIGKILL.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// Flags the launcher sets itself and the run flags may not repeat.
pub const OWN_FLAGS: [&str; 10] = [
    "-w",
    "--workers",
    "-n",
    "--processes",
    "-p",
    "--process",
    "--hostfile",
    "--health-addr",
    "--peer-health",
    "--no-http",
];

/// Errors of the launcher.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A run flag the launcher sets itself.
    #[error("`{0}` is set by `cryptoflow cluster` itself; leave it out of the run flags")]
    OwnFlag(String),
    /// Bad sizes or ports.
    #[error("cluster: {0}")]
    Layout(String),
    /// Starting a process or writing the hostfile failed.
    #[error("cluster: {what}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// One or more processes failed; the first named is the first seen.
    #[error("cluster: {0}; the other processes were stopped (restart the cluster to resume from the committed epochs)")]
    Failed(String),
}

/// Result alias for this module.
pub type Result<T> = std::result::Result<T, Error>;

/// What to launch.
#[derive(Clone, Debug)]
pub struct LaunchOptions {
    /// Processes.
    pub processes: usize,
    /// Workers per process.
    pub workers: usize,
    /// Timely port of process 0; process i listens on `base_port + i`.
    pub base_port: u16,
    /// Health port of process 1 is `health_base_port + 1`, and so on.
    pub health_base_port: u16,
    /// The `run` flags every process gets.
    pub run_args: Vec<String>,
    /// The `cryptoflow` binary.
    pub program: PathBuf,
}

/// Why a process ended, in words.
fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(sig)) => format!("was killed by signal {sig}"),
        _ => "ended".into(),
    }
}

fn signal(child: &Child, sig: libc::c_int) {
    // SAFETY: kill(2) on a child we started and have not reaped yet.
    unsafe { libc::kill(child.id() as libc::pid_t, sig) };
}

/// Copies a child's stderr to ours, each line prefixed with `pI: `.
fn prefix_lines(index: usize, from: impl std::io::Read + Send + 'static) {
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(from).lines() {
            let Ok(line) = line else { break };
            let _ = writeln!(std::io::stderr().lock(), "p{index}: {line}");
        }
    });
}

/// Launches the cluster and waits for it; Ok when every process exited 0.
pub fn launch(opts: &LaunchOptions) -> Result<()> {
    let LaunchOptions {
        processes,
        workers,
        base_port,
        health_base_port,
        run_args,
        program,
    } = opts;
    let (processes, workers) = (*processes, *workers);
    if processes < 1 || workers < 1 {
        return Err(Error::Layout(
            "need at least one process and one worker".into(),
        ));
    }
    if let Some(flag) = run_args
        .iter()
        .find(|a| OWN_FLAGS.contains(&a.split('=').next().unwrap_or(a)))
    {
        return Err(Error::OwnFlag(flag.clone()));
    }
    let port = |base: u16, i: usize| {
        u16::try_from(usize::from(base) + i)
            .map_err(|_| Error::Layout(format!("port {base} + {i} is above 65535")))
    };
    let mut hosts = String::new();
    for i in 0..processes {
        hosts.push_str(&format!("127.0.0.1:{}\n", port(*base_port, i)?));
    }
    let health: Vec<String> = (1..processes)
        .map(|i| port(*health_base_port, i).map(|p| format!("127.0.0.1:{p}")))
        .collect::<Result<_>>()?;
    let dir = std::env::temp_dir().join(format!("cryptoflow-cluster-{}", std::process::id()));
    let io = |what: String| move |source| Error::Io { what, source };
    std::fs::create_dir_all(&dir).map_err(io(format!("creating {}", dir.display())))?;
    let hostfile = dir.join("hosts");
    std::fs::write(&hostfile, hosts).map_err(io(format!("writing {}", hostfile.display())))?;

    let stop = stop_on_signal();
    let mut children: Vec<Child> = Vec::with_capacity(processes);
    for i in 0..processes {
        let mut cmd = Command::new(program);
        cmd.arg("run").args(run_args);
        cmd.args(["-w", &workers.to_string()]);
        if processes > 1 {
            cmd.args(["-n", &processes.to_string(), "-p", &i.to_string()])
                .arg("--hostfile")
                .arg(&hostfile);
        }
        if i == 0 {
            if !health.is_empty() {
                cmd.args(["--peer-health", &health.join(",")]);
            }
            cmd.stdout(Stdio::inherit());
        } else {
            cmd.args(["--no-http", "--health-addr", &health[i - 1]]);
            cmd.stdout(Stdio::null());
        }
        cmd.stdin(Stdio::null()).stderr(Stdio::piped());
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                stop_all(&mut children, &[]);
                return Err(Error::Io {
                    what: format!("starting process {i}"),
                    source: e,
                });
            }
        };
        if let Some(err) = child.stderr.take() {
            prefix_lines(i, err);
        }
        info!(process = i, pid = child.id(), "cluster process started");
        children.push(child);
    }

    let mut exited: Vec<Option<ExitStatus>> = vec![None; processes];
    let mut forwarded = false;
    loop {
        if stop.is_set() && !forwarded {
            info!("forwarding the stop to every process");
            for (c, e) in children.iter().zip(&exited) {
                if e.is_none() {
                    signal(c, libc::SIGTERM);
                }
            }
            forwarded = true;
        }
        let mut failed = Vec::new();
        for (i, c) in children.iter_mut().enumerate() {
            if exited[i].is_some() {
                continue;
            }
            if let Ok(Some(status)) = c.try_wait() {
                exited[i] = Some(status);
                if !status.success() {
                    failed.push((i, c.id(), status));
                }
            }
        }
        if !failed.is_empty() && !forwarded {
            // A death by signal is the cause; exits with an error are usually its effect.
            failed.sort_by_key(|(i, _, s)| (s.code().is_some(), *i));
            let what: Vec<String> = failed
                .iter()
                .map(|(i, pid, s)| format!("process {i} (pid {pid}) {}", describe(*s)))
                .collect();
            let what = what.join("; ");
            error!(failure = %what, "cluster process failed; stopping the others");
            std::thread::sleep(GRACE);
            stop_all(&mut children, &exited);
            let _ = std::fs::remove_dir_all(&dir);
            return Err(Error::Failed(what));
        }
        if exited.iter().all(Option::is_some) {
            let _ = std::fs::remove_dir_all(&dir);
            let bad: Vec<String> = exited
                .iter()
                .enumerate()
                .filter(|(_, s)| s.is_some_and(|s| !s.success()))
                .map(|(i, s)| format!("process {i} {}", describe(s.expect("exited"))))
                .collect();
            return if bad.is_empty() {
                Ok(())
            } else {
                Err(Error::Failed(bad.join("; ")))
            };
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// SIGTERM to every process still running, SIGKILL after [`STOP_TIMEOUT`].
fn stop_all(children: &mut [Child], exited: &[Option<ExitStatus>]) {
    let running = |i: usize| exited.get(i).is_none_or(Option::is_none);
    for (i, c) in children.iter().enumerate() {
        if running(i) {
            signal(c, libc::SIGTERM);
        }
    }
    let deadline = Instant::now() + STOP_TIMEOUT;
    for (i, c) in children.iter_mut().enumerate() {
        if !running(i) {
            continue;
        }
        loop {
            match c.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() >= deadline => {
                    warn!(process = i, "did not stop in time; killing it");
                    let _ = c.kill();
                    let _ = c.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_the_launcher_owns_are_refused() {
        let opts = |args: &[&str]| LaunchOptions {
            processes: 2,
            workers: 1,
            base_port: 2101,
            health_base_port: 2201,
            run_args: args.iter().map(|s| s.to_string()).collect(),
            program: PathBuf::from("/nonexistent"),
        };
        for flag in ["-n", "--hostfile=/x", "--workers", "--no-http"] {
            assert!(
                matches!(
                    launch(&opts(&["--brokers", "b", flag])),
                    Err(Error::OwnFlag(_))
                ),
                "{flag}"
            );
        }
        let too_high = LaunchOptions {
            base_port: 65535,
            ..opts(&["--brokers", "b"])
        };
        assert!(matches!(launch(&too_high), Err(Error::Layout(_))));
    }
}
