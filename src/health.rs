//! Process health in a cluster: what each process reads (partitions,
//! offsets, watermarks) and whether the other processes answer, visible
//! from process 0's `/api/health`.
//!
//! The side channel: every process other than 0 serves its own report on
//! `--health-addr` (`GET /api/health`, the [`router`] below), and process 0
//! polls them every [`POLL_EVERY`] (`--peer-health`, one address per other
//! process, in process order) with a [`POLL_TIMEOUT`]. A process that does
//! not answer in time (dead, stopped, cut off) is reported `unreachable`
//! with the error, and process 0's health turns `degraded` (HTTP 503). It
//! is plain HTTP next to timely's own connections on purpose: a process
//! that stalls timely cannot report through timely, and a peer's death
//! makes timely itself fail (see `pipeline::Error::PeerLost`).
//!
//! Time: the reports carry event time (watermarks) as read by the sources;
//! `last_ok_ms` is the wall clock of the last good poll, for people only.
//! Nothing here feeds back into the dataflow, and it must never block it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use dataflows::progress::{PartitionProgress, SourceProgress};
use serde::{Deserialize, Serialize};

use crate::shutdown::Stop;

/// How often process 0 asks the others.
pub const POLL_EVERY: Duration = Duration::from_secs(1);
/// How long one answer may take.
pub const POLL_TIMEOUT: Duration = Duration::from_millis(800);

/// One process's own report.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessReport {
    /// Its index in the cluster.
    pub process: usize,
    /// Its operating-system process id.
    pub pid: u32,
    /// The partitions its workers read.
    pub partitions: Vec<PartitionReport>,
}

/// One partition's progress, as reported.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PartitionReport {
    /// The partition.
    pub partition: i32,
    /// What the sources read from it.
    #[serde(flatten)]
    pub progress: PartitionProgress,
}

/// What process 0 knows of another process.
#[derive(Clone, Debug, Serialize)]
pub struct PeerHealth {
    /// Its index.
    pub process: usize,
    /// Where its health is served.
    pub addr: String,
    /// `pending` (not polled yet), `ok` or `unreachable`.
    pub status: &'static str,
    /// Why the last poll failed.
    pub error: Option<String>,
    /// Wall clock of the last good answer, ms.
    pub last_ok_ms: Option<u64>,
    /// Its last report.
    pub report: Option<ProcessReport>,
}

/// This process's health: its own progress and, on process 0, the others'.
#[derive(Debug)]
pub struct ProcessHealth {
    process: usize,
    progress: SourceProgress,
    peers: Mutex<Vec<PeerHealth>>,
}

impl Default for ProcessHealth {
    fn default() -> Self {
        Self::new(0, &[], SourceProgress::new())
    }
}

impl ProcessHealth {
    /// Health of process `process`, whose sources report to `progress`,
    /// and which polls `peers` (processes 1, 2, …).
    pub fn new(process: usize, peers: &[String], progress: SourceProgress) -> Self {
        ProcessHealth {
            process,
            progress,
            peers: Mutex::new(
                peers
                    .iter()
                    .enumerate()
                    .map(|(i, addr)| PeerHealth {
                        process: i + 1,
                        addr: addr.clone(),
                        status: "pending",
                        error: None,
                        last_ok_ms: None,
                        report: None,
                    })
                    .collect(),
            ),
        }
    }

    /// This process's own report.
    pub fn report(&self) -> ProcessReport {
        ProcessReport {
            process: self.process,
            pid: std::process::id(),
            partitions: self
                .progress
                .snapshot()
                .into_iter()
                .map(|(partition, progress)| PartitionReport {
                    partition,
                    progress,
                })
                .collect(),
        }
    }

    /// The other processes, as last polled.
    pub fn peers(&self) -> Vec<PeerHealth> {
        self.peers.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether every polled peer answered its last poll.
    pub fn healthy(&self) -> bool {
        self.peers().iter().all(|p| p.status != "unreachable")
    }

    fn record(&self, i: usize, result: Result<ProcessReport, String>) {
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        let Some(p) = peers.get_mut(i) else { return };
        match result {
            Ok(report) => {
                p.status = "ok";
                p.error = None;
                p.last_ok_ms = Some(crate::now_ms());
                p.report = Some(report);
            }
            Err(e) => {
                p.status = "unreachable";
                p.error = Some(e);
            }
        }
    }
}

/// Polls every peer each [`POLL_EVERY`] until `stop`.
pub async fn poll_peers(health: Arc<ProcessHealth>, stop: Stop) {
    let addrs: Vec<String> = health.peers().into_iter().map(|p| p.addr).collect();
    if addrs.is_empty() {
        return;
    }
    let client = match reqwest::Client::builder().timeout(POLL_TIMEOUT).build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the peer health client");
            return;
        }
    };
    let mut ticker = tokio::time::interval(POLL_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !stop.is_set() {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.wait() => break,
        }
        let polls = addrs.iter().map(|addr| poll(&client, addr));
        for (i, result) in futures::future::join_all(polls)
            .await
            .into_iter()
            .enumerate()
        {
            if let Err(e) = &result {
                tracing::warn!(process = i + 1, error = %e, "cluster process does not answer");
            }
            health.record(i, result);
        }
    }
}

async fn poll(client: &reqwest::Client, addr: &str) -> Result<ProcessReport, String> {
    #[derive(Deserialize)]
    struct Answer {
        process: ProcessReport,
    }
    let resp = client
        .get(format!("http://{addr}/api/health"))
        .send()
        .await
        .map_err(|e| crate::error_chain(&e))?;
    if !resp.status().is_success() {
        return Err(format!("answered {}", resp.status()));
    }
    let body = resp.bytes().await.map_err(|e| crate::error_chain(&e))?;
    serde_json::from_slice::<Answer>(&body)
        .map(|a| a.process)
        .map_err(|e| format!("bad health answer: {e}"))
}

/// The health endpoint a process other than 0 serves.
pub fn router(health: Arc<ProcessHealth>) -> Router {
    Router::new()
        .route("/api/health", get(own_health))
        .with_state(health)
}

async fn own_health(State(health): State<Arc<ProcessHealth>>) -> impl IntoResponse {
    (
        StatusCode::OK,
        Json(serde_json::json!({ "status": "ok", "process": health.report() })),
    )
}
