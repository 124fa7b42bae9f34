//! When the delivery router commits an epoch to the warehouse: the commit
//! policy of `run`, as a small pure state machine the router asks after each
//! delivery and tells after each commit attempt.
//!
//! Time semantics: two clocks meet here. Epochs are measured in **event
//! time** (the deliveries' times): a commit is due once the pending
//! deliveries span `epoch_ms`, so a replay commits in event-time epochs
//! however fast it runs. **Wall time** (instants passed in by the caller)
//! only limits how often that happens — at most four epoch commits per
//! commit interval — and drives the periodic ticker that commits whatever is
//! pending every interval. A backlog of [`MAX_PENDING_OUTPUTS`] outputs is
//! committed at once whatever the clocks say, to bound memory; while commits
//! fail with such a backlog held, [`CommitPolicy::accepting`] is false and
//! the router takes no more deliveries (its bounded queue then holds the
//! dataflow back).
//!
//! Failure: a failed commit keeps its deliveries pending and is tried again
//! (at the next tick or due delivery). Once [`MAX_FAILED_COMMITS`] attempts
//! in a row have failed over at least [`FAILING_FOR`] of wall time,
//! [`CommitPolicy::give_up`] says so and the router stops the run with an
//! error: a commit that cannot be made is never only a log line.
//!
//! It must never read the clock itself (the router passes instants in, so
//! the rules are testable) and never commit or hold deliveries: it only
//! answers "commit now?" and "give up?".

use std::time::{Duration, Instant};

/// Pending outputs that force a commit whatever the epoch span.
pub const MAX_PENDING_OUTPUTS: usize = 200_000;

/// Attempts of the last commit when the router stops.
pub const FINAL_COMMIT_ATTEMPTS: u32 = 5;

/// Failed commit attempts in a row after which a run gives up …
pub const MAX_FAILED_COMMITS: u32 = 5;

/// … provided the commits have been failing for at least this long, so a
/// short outage of the store (a few seconds) is ridden out.
pub const FAILING_FOR: Duration = Duration::from_secs(10);

/// Pause after each failed final commit attempt.
pub const FINAL_COMMIT_RETRY_DELAY: Duration = Duration::from_millis(500);

/// Decides when pending deliveries are committed as one epoch.
#[derive(Clone, Debug)]
pub struct CommitPolicy {
    /// Wall time between commits at the most (the ticker's period).
    interval: Duration,
    /// Event time an epoch spans.
    epoch_ms: u64,
    /// Event time of the oldest delivery not yet committed (None: nothing pending).
    epoch_start: Option<u64>,
    /// Outputs received since the last commit attempt.
    pending_outputs: usize,
    /// Outputs received and not committed yet (failed attempts keep theirs).
    held_outputs: usize,
    /// When the last commit asked for by [`CommitPolicy::deliver`] was made.
    /// The ticker's commits do not count: they must not hold back an epoch.
    last_commit: Instant,
    /// Failed attempts since the last successful one, and when the first of
    /// them was made.
    failures: Option<(u32, Instant)>,
}

impl CommitPolicy {
    /// A policy committing at least every `interval` of wall time and at
    /// every `epoch_ms` of event time; `now` counts as the last commit.
    pub fn new(interval: Duration, epoch_ms: u64, now: Instant) -> Self {
        CommitPolicy {
            interval,
            epoch_ms,
            epoch_start: None,
            pending_outputs: 0,
            held_outputs: 0,
            last_commit: now,
            failures: None,
        }
    }

    /// A delivery at event time `time` with `outputs` outputs was added to
    /// the pending ones at wall time `now`. True: commit now (then call
    /// [`CommitPolicy::attempted`]).
    pub fn deliver(&mut self, time: u64, outputs: usize, now: Instant) -> bool {
        self.pending_outputs += outputs;
        self.held_outputs += outputs;
        let start = *self.epoch_start.get_or_insert(time);
        let span = time.saturating_sub(start);
        // Event-time epochs, but no more than four commits per commit
        // interval while a replay races through history.
        let epoch_due = span >= self.epoch_ms
            && now.saturating_duration_since(self.last_commit) >= self.interval / 4;
        let due = self.pending_outputs >= MAX_PENDING_OUTPUTS || epoch_due;
        if due {
            self.last_commit = now;
        }
        due
    }

    /// A commit was attempted (asked for by [`CommitPolicy::deliver`] or
    /// by the ticker); `all_committed`: nothing is pending any more. A
    /// failed commit keeps its deliveries pending, so the epoch still starts
    /// at the oldest of them.
    pub fn attempted(&mut self, all_committed: bool, now: Instant) {
        self.pending_outputs = 0;
        if all_committed {
            self.epoch_start = None;
            self.failures = None;
            self.held_outputs = 0;
        } else {
            self.failures.get_or_insert((0, now)).0 += 1;
        }
    }

    /// True once commits have failed [`MAX_FAILED_COMMITS`] times in a row
    /// over at least [`FAILING_FOR`] (as of `now`): the run must stop.
    pub fn give_up(&self, now: Instant) -> bool {
        self.failures.is_some_and(|(n, since)| {
            n >= MAX_FAILED_COMMITS && now.saturating_duration_since(since) >= FAILING_FOR
        })
    }

    /// False while the last commit failed and [`MAX_PENDING_OUTPUTS`] or
    /// more outputs are held: the router must take no more deliveries
    /// until a commit succeeds (or the run gives up), so a failing store
    /// stops the intake instead of filling memory.
    pub fn accepting(&self) -> bool {
        self.failures.is_none() || self.held_outputs < MAX_PENDING_OUTPUTS
    }

    /// Failed attempts in a row so far.
    pub fn failures(&self) -> u32 {
        self.failures.map_or(0, |(n, _)| n)
    }

    /// The periodic commit: ticks every interval; a late tick delays the
    /// following ones rather than bursting to catch up.
    pub fn ticker(&self) -> tokio::time::Interval {
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERVAL: Duration = Duration::from_millis(2_000);
    const EPOCH_MS: u64 = 5_000;

    fn policy() -> (CommitPolicy, Instant) {
        let t0 = Instant::now();
        (CommitPolicy::new(INTERVAL, EPOCH_MS, t0), t0)
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn an_epoch_is_due_once_the_pending_deliveries_span_epoch_ms() {
        let (mut p, t0) = policy();
        let later = t0 + INTERVAL;
        assert!(!p.deliver(1_000, 1, later), "first delivery spans nothing");
        assert!(!p.deliver(5_999, 1, later), "4,999 ms of event time");
        assert!(p.deliver(6_000, 1, later), "5,000 ms of event time");
    }

    #[test]
    fn an_epoch_waits_a_quarter_interval_after_the_last_commit() {
        let (mut p, t0) = policy();
        p.deliver(0, 1, t0);
        assert!(!p.deliver(EPOCH_MS, 1, t0 + ms(499)), "499 ms < 2 s / 4");
        assert!(p.deliver(EPOCH_MS + 1, 1, t0 + ms(500)), "500 ms = 2 s / 4");
        p.attempted(true, t0);
        // The quarter interval counts from that commit, not from the start.
        p.deliver(20_000, 1, t0 + ms(600));
        assert!(!p.deliver(30_000, 1, t0 + ms(999)));
        assert!(p.deliver(30_001, 1, t0 + ms(1_000)));
    }

    #[test]
    fn wall_time_alone_never_makes_an_epoch_due() {
        let (mut p, t0) = policy();
        p.deliver(0, 1, t0);
        assert!(!p.deliver(EPOCH_MS - 1, 1, t0 + Duration::from_secs(3_600)));
    }

    #[test]
    fn a_backlog_of_pending_outputs_commits_at_once() {
        let (mut p, t0) = policy();
        assert!(!p.deliver(0, MAX_PENDING_OUTPUTS - 1, t0));
        assert!(
            p.deliver(0, 1, t0),
            "200,000 outputs, no span, no wall time"
        );
        p.attempted(false, t0);
        // Counted from the attempt, even a failed one.
        assert!(!p.deliver(0, MAX_PENDING_OUTPUTS - 1, t0));
    }

    #[test]
    fn intake_stops_while_commits_fail_with_a_full_backlog() {
        let (mut p, t0) = policy();
        p.deliver(0, MAX_PENDING_OUTPUTS, t0);
        assert!(p.accepting(), "nothing has failed yet");
        p.attempted(false, t0);
        assert!(!p.accepting(), "failed with a full backlog held");
        p.attempted(true, t0);
        assert!(p.accepting(), "a successful commit frees the backlog");
        p.deliver(0, MAX_PENDING_OUTPUTS - 1, t0);
        p.attempted(false, t0);
        assert!(p.accepting(), "failing, but the backlog is not full");
    }

    #[test]
    fn a_failed_commit_keeps_the_epoch_start_a_successful_one_resets_it() {
        let (mut p, t0) = policy();
        let later = t0 + INTERVAL;
        p.deliver(1_000, 1, t0);
        p.attempted(false, t0);
        assert!(
            p.deliver(6_000, 1, later),
            "span from the uncommitted 1,000"
        );
        p.attempted(true, t0);
        let later = later + INTERVAL;
        assert!(!p.deliver(7_000, 1, later), "a new epoch starts at 7,000");
        assert!(p.deliver(12_000, 1, later));
    }

    #[test]
    fn ticker_commits_do_not_reset_the_quarter_interval() {
        let (mut p, t0) = policy();
        p.deliver(0, 1, t0);
        // The ticker fired and committed everything at t0 + 400 ms.
        p.attempted(true, t0);
        p.deliver(10_000, 1, t0 + ms(450));
        assert!(
            p.deliver(15_000, 1, t0 + ms(500)),
            "measured from the start, not from the ticker's commit"
        );
    }

    #[test]
    fn a_span_is_measured_from_the_first_pending_delivery_not_the_earliest() {
        let (mut p, t0) = policy();
        let later = t0 + INTERVAL;
        p.deliver(3_000, 1, later);
        p.deliver(1_000, 1, later);
        assert!(!p.deliver(7_999, 1, later), "4,999 ms after the first");
        assert!(p.deliver(8_000, 1, later));
    }

    #[test]
    fn repeated_failures_over_the_grace_period_give_up_a_success_resets() {
        let (mut p, t0) = policy();
        for i in 0..MAX_FAILED_COMMITS {
            assert!(!p.give_up(t0 + FAILING_FOR), "after {i} failures");
            p.attempted(false, t0 + ms(u64::from(i)));
        }
        assert_eq!(p.failures(), MAX_FAILED_COMMITS);
        assert!(
            !p.give_up(t0 + FAILING_FOR - ms(1)),
            "not failing long enough"
        );
        assert!(p.give_up(t0 + FAILING_FOR));
        p.attempted(true, t0 + FAILING_FOR);
        assert!(!p.give_up(t0 + FAILING_FOR * 10));
        assert_eq!(p.failures(), 0);
        // A quick burst of failures alone is not enough either.
        for _ in 0..MAX_FAILED_COMMITS * 3 {
            p.attempted(false, t0 + FAILING_FOR * 10);
        }
        assert!(!p.give_up(t0 + FAILING_FOR * 10 + ms(500)));
    }

    #[tokio::test]
    async fn the_ticker_fires_every_interval_and_delays_missed_ticks() {
        let (p, _) = policy();
        let ticker = p.ticker();
        assert_eq!(ticker.period(), INTERVAL);
        assert_eq!(
            ticker.missed_tick_behavior(),
            tokio::time::MissedTickBehavior::Delay
        );
    }
}
