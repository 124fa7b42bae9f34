//! The health verdict of `/api/health`: "ok", or "degraded" with the
//! reasons, when warehouse commits are failing, the broker does not answer
//! the probe, or no tick has arrived for longer than the threshold.
//!
//! Time semantics: wall time (now versus when the last record arrived, when
//! the broker last answered); event time only appears in the stats. A
//! server without a source (a fixed view in a test) does not watch ticks.
//! The verdict is a pure function of the shared state and `now`, so it is
//! tested without clocks.

use serde::Serialize;
use utoipa::ToSchema;

use super::view::{LiveView, Stats};
use crate::health::{PeerHealth, ProcessHealth, ProcessReport};
use crate::telemetry::{BrokerStatus, Telemetry};

/// What `/api/health` answers.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` or `degraded`.
    pub status: String,
    /// Why it is degraded (empty when ok).
    pub reasons: Vec<String>,
    /// The facts behind the verdict.
    pub checks: Checks,
    /// The pipeline's counters.
    pub stats: Stats,
    /// This process's own report (partitions read), when it runs a pipeline.
    #[schema(value_type = Option<Object>)]
    pub process: Option<ProcessReport>,
    /// On process 0 of a cluster: the other processes as last polled.
    #[schema(value_type = Vec<Object>)]
    pub cluster: Vec<PeerHealth>,
}

/// The facts behind the verdict.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Checks {
    /// Epoch commits that succeeded.
    pub commits_ok: u64,
    /// Epoch commits that failed.
    pub commits_failed: u64,
    /// Failed commit attempts since the last success.
    pub commit_failures_in_a_row: u32,
    /// The last commit error, while failing.
    pub commit_error: Option<String>,
    /// The broker probe.
    pub broker: BrokerStatus,
    /// Records read from the topic (ticks and rejects).
    pub ticks_read: u64,
    /// Wall time the newest record arrived (epoch ms).
    pub last_tick_ms: Option<u64>,
    /// Its age (ms), or the time since start when none arrived yet.
    pub last_tick_age_ms: Option<u64>,
    /// The age beyond which the pipeline is degraded (ms); null: not watched.
    pub stale_after_ms: Option<u64>,
}

/// The verdict at wall time `now` (epoch ms).
pub fn assess(view: &LiveView, t: &Telemetry, now: u64) -> Health {
    let mut reasons = Vec::new();
    let failing = t.commit_failing();
    if let Some((n, error, since)) = &failing {
        reasons.push(format!(
            "warehouse commits are failing: {n} attempt(s) in a row since {}s ago: {error}",
            now.saturating_sub(*since) / 1_000
        ));
    }
    let broker = t.broker();
    if broker.reachable == Some(false) {
        reasons.push(format!(
            "the Kafka broker does not answer (since {}s ago): {}",
            now.saturating_sub(broker.since_ms.unwrap_or(now)) / 1_000,
            broker.error.clone().unwrap_or_default()
        ));
    }
    let progress = t.progress.snapshot();
    let ticks_read = progress.values().map(|p| p.records).sum();
    let last_tick = t.last_record_ms();
    let age = t
        .stale_after
        .map(|_| now.saturating_sub(last_tick.unwrap_or(t.started_ms)));
    if let (Some(limit), Some(age)) = (t.stale_after, age) {
        let limit = limit.as_millis() as u64;
        if age > limit {
            reasons.push(match last_tick {
                Some(_) => format!(
                    "no tick for {:.1}s (threshold {:.1}s)",
                    age as f64 / 1e3,
                    limit as f64 / 1e3
                ),
                None => format!(
                    "no tick since the start {:.1}s ago (threshold {:.1}s)",
                    age as f64 / 1e3,
                    limit as f64 / 1e3
                ),
            });
        }
    }
    let (commits_ok, commits_failed) = t.commit_counts();
    Health {
        status: if reasons.is_empty() { "ok" } else { "degraded" }.into(),
        reasons,
        checks: Checks {
            commits_ok,
            commits_failed,
            commit_failures_in_a_row: failing.as_ref().map_or(0, |f| f.0),
            commit_error: failing.map(|f| f.1),
            broker,
            ticks_read,
            last_tick_ms: last_tick,
            last_tick_age_ms: age,
            stale_after_ms: t.stale_after.map(|d| d.as_millis() as u64),
        },
        stats: view.stats(),
        process: None,
        cluster: Vec::new(),
    }
}

/// Adds the cluster's side of the verdict: this process's report and the
/// other processes as last polled; one that did not answer its last poll
/// degrades the verdict.
pub fn with_cluster(mut h: Health, cluster: &ProcessHealth) -> Health {
    h.process = Some(cluster.report());
    h.cluster = cluster.peers();
    for p in h.cluster.iter().filter(|p| p.status == "unreachable") {
        h.reasons.push(format!(
            "process {} ({}) does not answer: {}",
            p.process,
            p.addr,
            p.error.as_deref().unwrap_or("no answer")
        ));
    }
    if !h.reasons.is_empty() {
        h.status = "degraded".into();
    }
    h
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use dataflows::progress::PartitionProgress;

    use super::*;
    use crate::telemetry::JobRun;

    fn commit(error: Option<&str>) -> JobRun {
        JobRun {
            job: "warehouse.commit".into(),
            state: if error.is_some() {
                "failed"
            } else {
                "succeeded"
            }
            .into(),
            attempt: 1,
            started_ms: 1_000,
            duration_ms: 5.0,
            epoch_ms: Some(1),
            rows: 1,
            detail: String::new(),
            error: error.map(str::to_string),
        }
    }

    fn tick_at(t: &Telemetry, ms: u64) {
        t.progress.update(&BTreeMap::from([(
            0,
            PartitionProgress {
                records: 1,
                last_record_at_ms: Some(ms),
                ..PartitionProgress::default()
            },
        )]));
    }

    #[test]
    fn ok_when_nothing_is_wrong_and_ticks_are_not_watched() {
        let h = assess(&LiveView::new(), &Telemetry::default(), 10_000_000);
        assert_eq!(h.status, "ok");
        assert!(h.reasons.is_empty());
    }

    #[test]
    fn failing_commits_degrade_until_one_succeeds() {
        let t = Telemetry::default();
        t.commit_done(commit(Some("disk full")));
        t.commit_done(commit(Some("disk full")));
        let h = assess(&LiveView::new(), &t, 4_000);
        assert_eq!(h.status, "degraded");
        assert!(
            h.reasons[0].contains("2 attempt(s)") && h.reasons[0].contains("disk full"),
            "{:?}",
            h.reasons
        );
        t.commit_done(commit(None));
        assert_eq!(assess(&LiveView::new(), &t, 5_000).status, "ok");
    }

    #[test]
    fn an_unreachable_broker_degrades_until_it_answers() {
        let t = Telemetry::default();
        t.broker_probed(Err("timed out".into()));
        let h = assess(&LiveView::new(), &t, crate::now_ms());
        assert_eq!(h.status, "degraded");
        assert!(h.reasons[0].contains("broker") && h.reasons[0].contains("timed out"));
        t.broker_probed(Ok(()));
        assert_eq!(assess(&LiveView::new(), &t, crate::now_ms()).status, "ok");
    }

    #[test]
    fn no_tick_for_longer_than_the_threshold_degrades() {
        let t = Telemetry::new(Some(Duration::from_secs(5)));
        let start = t.started_ms;
        assert_eq!(assess(&LiveView::new(), &t, start + 5_000).status, "ok");
        let h = assess(&LiveView::new(), &t, start + 5_001);
        assert!(
            h.reasons[0].contains("no tick since the start"),
            "{:?}",
            h.reasons
        );
        tick_at(&t, start + 6_000);
        assert_eq!(assess(&LiveView::new(), &t, start + 11_000).status, "ok");
        let h = assess(&LiveView::new(), &t, start + 11_001);
        assert_eq!(h.status, "degraded");
        assert!(h.reasons[0].contains("no tick for 5.0s"), "{:?}", h.reasons);
        assert_eq!(h.checks.ticks_read, 1);
    }
}
