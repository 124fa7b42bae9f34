//! Starts a real Kafka-protocol broker on loopback for the demo, the tests
//! and the benchmarks: the `tansu` broker (Apache-2.0, installed from
//! crates.io by `scripts/setup.sh`), as a child process on a free port.
//!
//! The broker is killed when the [`Broker`] is dropped. Storage is
//! `memory://`: fast, and gone with the process. (Outage tests cut the
//! connection with a proxy in front of the broker rather than restart it.)
//! No time semantics; it must never be used to run production traffic.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Errors starting the broker.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No broker binary could be found.
    #[error(
        "no Kafka broker was given and the `tansu` broker binary was not found \
         (looked at $TANSU_BIN, PATH and ~/.cargo/bin); run `scripts/setup.sh` to install it, \
         or pass --brokers HOST:PORT"
    )]
    NotInstalled,
    /// Spawning or talking to it failed.
    #[error("starting the broker failed")]
    Io(#[from] std::io::Error),
    /// It did not accept connections in time.
    #[error("the broker at {addr} did not start within {secs} s (see {log})")]
    Timeout {
        /// Its address.
        addr: SocketAddr,
        /// How long we waited.
        secs: u64,
        /// Its log file.
        log: String,
    },
}

/// Result alias for this module.
pub type Result<T> = std::result::Result<T, Error>;

/// A running broker child process.
pub struct Broker {
    child: Option<Child>,
    addr: SocketAddr,
    advertised: SocketAddr,
    log: PathBuf,
    bin: PathBuf,
}

/// Finds the `tansu` binary.
pub fn find_tansu() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("TANSU_BIN") {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    let from_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("tansu"))
            .find(|p| p.is_file())
    });
    from_path.or_else(|| {
        let home = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
        let p = home.join("bin").join("tansu");
        p.is_file().then_some(p)
    })
}

/// A free loopback port (bound and released; good enough for a test harness).
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Broker {
    /// Starts a broker on a free loopback port, logging to `log`.
    pub fn start(log: &Path) -> Result<Broker> {
        Self::start_advertising(log, None)
    }

    /// Starts a broker that tells clients to reach it at `advertised` (e.g.
    /// a proxy in front of it) instead of its own address.
    pub fn start_advertising(log: &Path, advertised: Option<SocketAddr>) -> Result<Broker> {
        let bin = find_tansu().ok_or(Error::NotInstalled)?;
        let addr: SocketAddr = ([127, 0, 0, 1], free_port()?).into();
        let mut b = Broker {
            child: None,
            addr,
            advertised: advertised.unwrap_or(addr),
            log: log.to_path_buf(),
            bin,
        };
        b.spawn()?;
        Ok(b)
    }

    fn spawn(&mut self) -> Result<()> {
        let url = format!("tcp://{}", self.addr);
        let advertised = format!("tcp://{}", self.advertised);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let child = Command::new(&self.bin)
            .arg("broker")
            .args([
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &advertised,
                "--storage-engine",
                "memory://tansu/",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        self.child = Some(child);
        self.wait_ready(Duration::from_secs(30))
    }

    fn wait_ready(&mut self, limit: Duration) -> Result<()> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    return Err(Error::Io(std::io::Error::other(format!(
                        "broker exited with {status} (see {})",
                        self.log.display()
                    ))));
                }
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(Error::Timeout {
            addr: self.addr,
            secs: limit.as_secs(),
            log: self.log.display().to_string(),
        })
    }

    /// `HOST:PORT` for clients.
    pub fn bootstrap(&self) -> String {
        self.addr.to_string()
    }

    /// Kills the broker.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}
