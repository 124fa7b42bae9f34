//! Live updates over Server-Sent Events (`GET /api/stream`): the live view
//! publishes each delivery's changes (new bars, best-prediction inserts and
//! retractions, champion changes, throttled stats) into a [`Hub`]; every
//! client reads them from the hub's ring of recent events.
//!
//! Ids are `<boot>-<seq>`: `boot` names this server process, `seq` counts
//! events. A browser that reconnects sends the last id it saw
//! (`Last-Event-ID`); if every later event is still in the ring it gets
//! exactly those, in order, and then live ones: no gap, no duplicate. If the
//! id is from another process or older than the ring, the first event is a
//! `reset` (reload the snapshots from the REST endpoints); a fresh
//! connection starts with `hello`, whose id is the position it starts from.
//!
//! Backpressure: publishing is one short lock and a watch notification per
//! delivery, whatever the number of clients; nothing ever waits for a
//! client. Each client is a cursor into the shared ring, so its buffer is
//! bounded by the ring ([`StreamConfig::replay`] events): a client that falls
//! further behind than that is dropped (`cryptoflow_sse_clients_dropped_total`)
//! and its connection ends with an error as soon as the server touches it
//! again; the browser reconnects and gets a `reset`. A comment line is sent
//! as a heartbeat every [`StreamConfig::heartbeat`] so proxies keep the
//! connection and clients notice a dead one. One long-lived request per
//! client, so a per-client rate limit counts it once.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;

/// Events kept for resuming clients unless configured.
pub const DEFAULT_REPLAY: usize = 4_096;
/// Heartbeat interval unless configured.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(15);
/// Events handed to one client per wake-up, so one client cannot hold the lock long.
const BATCH: usize = 256;

/// Hub settings.
#[derive(Clone, Copy, Debug)]
pub struct StreamConfig {
    /// Recent events kept: the replay window and every client's buffer bound.
    pub replay: usize,
    /// Time between heartbeat comments.
    pub heartbeat: Duration,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            replay: DEFAULT_REPLAY,
            heartbeat: DEFAULT_HEARTBEAT,
        }
    }
}

/// One published event.
#[derive(Debug)]
struct Published {
    seq: u64,
    kind: &'static str,
    data: String,
}

/// A connected client's position.
#[derive(Debug, Default)]
struct Slot {
    /// The last seq handed to the connection.
    cursor: AtomicU64,
    /// Dropped (too slow) or gone; whoever sets it first counts it.
    gone: AtomicBool,
}

#[derive(Debug, Default)]
struct Ring {
    events: VecDeque<Arc<Published>>,
    /// The seq of the newest event (0: none yet).
    newest: u64,
    clients: Vec<Arc<Slot>>,
    closed: bool,
}

/// SSE counters, registered by `/metrics`.
#[derive(Clone, Debug, Default)]
pub struct HubMeters {
    /// `cryptoflow_sse_clients`.
    pub clients: Gauge,
    /// `cryptoflow_sse_clients_dropped_total`.
    pub dropped: Counter,
    /// `cryptoflow_sse_events_total`.
    pub events: Counter,
}

/// The event hub.
#[derive(Debug)]
pub struct Hub {
    boot: u64,
    config: StreamConfig,
    ring: Mutex<Ring>,
    notify: tokio::sync::watch::Sender<u64>,
    /// Counters.
    pub meters: HubMeters,
}

impl Default for Hub {
    fn default() -> Self {
        Hub::new(StreamConfig::default())
    }
}

impl Hub {
    /// An empty hub.
    pub fn new(config: StreamConfig) -> Self {
        Hub {
            // Distinct per process (and per hub in tests).
            boot: crate::now_ms()
                ^ ((std::process::id() as u64) << 42)
                ^ (NEXT_HUB.fetch_add(1, Ordering::Relaxed) << 50),
            config: StreamConfig {
                replay: config.replay.max(1),
                ..config
            },
            ring: Mutex::default(),
            notify: tokio::sync::watch::channel(0).0,
            meters: HubMeters::default(),
        }
    }

    /// The settings.
    pub fn config(&self) -> StreamConfig {
        self.config
    }

    /// The wire id of event `seq`.
    pub fn id(&self, seq: u64) -> String {
        format!("{}-{seq}", self.boot)
    }

    /// Publishes events (kind, JSON data) in order. Never waits on clients.
    pub fn publish(&self, events: impl IntoIterator<Item = (&'static str, String)>) {
        let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        let before = ring.newest;
        let mut evicted = false;
        for (kind, data) in events {
            ring.newest += 1;
            let seq = ring.newest;
            if ring.events.len() == self.config.replay {
                ring.events.pop_front();
                evicted = true;
            }
            ring.events
                .push_back(Arc::new(Published { seq, kind, data }));
        }
        let newest = ring.newest;
        if newest == before {
            return;
        }
        self.meters.events.inc_by(newest - before);
        let first = ring.events.front().map_or(newest + 1, |e| e.seq);
        // Forget connections that ended; drop those the ring left behind.
        ring.clients.retain(|c| {
            if c.gone.load(Ordering::Acquire) {
                return false;
            }
            if evicted && c.cursor.load(Ordering::Acquire) + 1 < first {
                if !c.gone.swap(true, Ordering::AcqRel) {
                    self.meters.clients.dec();
                    self.meters.dropped.inc();
                }
                return false;
            }
            true
        });
        drop(ring);
        self.notify.send_replace(newest);
    }

    /// Ends every stream (server shutdown).
    pub fn close(&self) {
        self.ring.lock().unwrap_or_else(|e| e.into_inner()).closed = true;
        self.notify.send_modify(|_| {});
    }

    /// Where a client with `last_id` starts: (cursor, whether it must reset).
    fn start(&self, ring: &Ring, last_id: Option<&str>) -> (u64, bool) {
        let Some(id) = last_id else {
            return (ring.newest, false);
        };
        let first = ring.events.front().map_or(ring.newest + 1, |e| e.seq);
        match id.split_once('-') {
            Some((boot, seq)) if boot.parse::<u64>().ok() == Some(self.boot) => {
                match seq.parse::<u64>() {
                    // Every event after `seq` is still held.
                    Ok(seq) if seq <= ring.newest && seq + 1 >= first => (seq, false),
                    _ => (ring.newest, true),
                }
            }
            _ => (ring.newest, true),
        }
    }

    /// A client's event stream, resuming after `last_id` where possible.
    pub fn subscribe(
        self: &Arc<Self>,
        last_id: Option<&str>,
    ) -> impl Stream<Item = Result<Event, std::io::Error>> + Send + 'static {
        let slot = Arc::new(Slot::default());
        let (cursor, reset) = {
            let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
            let (cursor, reset) = self.start(&ring, last_id);
            slot.cursor.store(cursor, Ordering::Release);
            ring.clients.push(slot.clone());
            (cursor, reset)
        };
        self.meters.clients.inc();
        let first = if reset {
            Event::default()
                .event("reset")
                .id(self.id(cursor))
                .data(r#"{"reason":"resume point is not held; reload the snapshots"}"#)
        } else if last_id.is_none() {
            Event::default()
                .event("hello")
                .id(self.id(cursor))
                .data("{}")
        } else {
            Event::default().comment("resumed")
        };
        let state = Client {
            hub: self.clone(),
            slot,
            rx: self.notify.subscribe(),
            pending: VecDeque::from([first]),
        };
        futures::stream::unfold(state, |mut c| async move {
            let item = c.next().await?;
            Some((item, c))
        })
    }

    /// The SSE response for a client.
    pub fn response(
        self: &Arc<Self>,
        last_id: Option<&str>,
    ) -> Sse<impl Stream<Item = Result<Event, std::io::Error>> + Send + 'static> {
        Sse::new(self.subscribe(last_id)).keep_alive(
            KeepAlive::new()
                .interval(self.config.heartbeat)
                .text("heartbeat"),
        )
    }
}

static NEXT_HUB: AtomicU64 = AtomicU64::new(0);

struct Client {
    hub: Arc<Hub>,
    slot: Arc<Slot>,
    rx: tokio::sync::watch::Receiver<u64>,
    pending: VecDeque<Event>,
}

impl Drop for Client {
    fn drop(&mut self) {
        if !self.slot.gone.swap(true, Ordering::AcqRel) {
            self.hub.meters.clients.dec();
        }
    }
}

impl Client {
    /// The next event; None ends the stream (server closing); an error
    /// aborts the connection (the client was dropped for being too slow).
    async fn next(&mut self) -> Option<Result<Event, std::io::Error>> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Some(Ok(e));
            }
            if self.slot.gone.load(Ordering::Acquire) {
                return Some(Err(std::io::Error::other("sse client too slow; dropped")));
            }
            {
                let ring = self.hub.ring.lock().unwrap_or_else(|e| e.into_inner());
                if ring.closed {
                    return None;
                }
                let cursor = self.slot.cursor.load(Ordering::Acquire);
                if cursor < ring.newest {
                    let first = ring.events.front().map_or(ring.newest + 1, |e| e.seq);
                    if cursor + 1 < first {
                        drop(ring);
                        if !self.slot.gone.swap(true, Ordering::AcqRel) {
                            self.hub.meters.clients.dec();
                            self.hub.meters.dropped.inc();
                        }
                        return Some(Err(std::io::Error::other("sse client too slow; dropped")));
                    }
                    let skip = (cursor + 1 - first) as usize;
                    let mut last = cursor;
                    for ev in ring.events.range(skip..).take(BATCH) {
                        last = ev.seq;
                        self.pending.push_back(
                            Event::default()
                                .event(ev.kind)
                                .id(self.hub.id(ev.seq))
                                .data(&ev.data),
                        );
                    }
                    self.slot.cursor.store(last, Ordering::Release);
                    continue;
                }
                // Mark what we saw before waiting, so a publish after the
                // unlock wakes us.
                self.rx.borrow_and_update();
            }
            if self.rx.changed().await.is_err() {
                return None;
            }
        }
    }
}

/// The live change stream (Server-Sent Events). Event types: `hello`
/// (first event of a fresh connection), `bar` (a closed bar: symbol and the
/// bar), `best` (`op` insert or retract, and a prediction as in
/// /api/predictions), `champion` (`op`, symbol, horizon_bars, at_ms,
/// champion), `stats` (the counters of /api/health, at most twice a
/// second) and `reset` (the resume point is gone: reload the snapshots).
/// Every event has an id; send the last one seen as `Last-Event-ID` to
/// resume without gaps or duplicates. A comment line `: heartbeat` comes
/// every 15 s.
#[utoipa::path(get, path = "/api/stream", tag = "live",
    params(("Last-Event-ID" = Option<String>, Header, description = "the id of the last event received, to resume after it")),
    responses((status = 200, description = "an endless event stream", content_type = "text/event-stream", body = String)))]
pub async fn sse(
    axum::extract::State(state): axum::extract::State<super::AppState>,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty());
    state.view.hub().response(last).into_response()
}
