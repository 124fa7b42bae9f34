//! The websocket half of the live connectors: connect, send the venue's
//! subscriptions, hand every text frame to the [`Ingestor`]; on a close, an
//! error or `stale_after` of silence, wait a [`Backoff`] delay and start
//! over (subscriptions included). Pings are answered by tungstenite.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tracing::{info, warn};

use super::{Backoff, Frame, Ingestor, Malformed, Result, RunLimits};
use crate::kafka;
use crate::shutdown::Stop;

/// A venue spoken over a websocket.
pub trait WsVenue {
    /// Lowercase venue name, the `exchange` of its ticks.
    fn exchange(&self) -> &'static str;
    /// The URL to connect to.
    fn url(&self) -> String;
    /// Text frames to send after connecting (subscriptions).
    fn subscriptions(&self) -> Vec<String>;
    /// Parses one text frame.
    fn parse(&self, text: &str) -> std::result::Result<Frame, Malformed>;
}

/// Runs a websocket venue until `stop` or `--max-ticks`: connect, subscribe,
/// read; reconnect with backoff on any failure or silence.
pub async fn run_websocket(
    venue: &dyn WsVenue,
    ingest: &mut Ingestor<'_>,
    stop: &Stop,
) -> Result<()> {
    super::use_aws_lc_tls();
    let exchange = venue.exchange();
    let limits = ingest.limits().clone();
    let mut backoff = Backoff::new(limits.backoff_max);
    let url = venue.url();
    while !stop.is_set() && !ingest.done() {
        let (ticks_before, started) = (ingest.summary().ticks, std::time::Instant::now());
        match connect_and_read(venue, &url, ingest, &limits, stop).await {
            Ok(received) => info!(exchange, url = %url, received, "connection ended"),
            Err(ConnError::Ws(e, received)) => {
                warn!(exchange, url = %url, error = %e, received, "connection failed")
            }
            Err(ConnError::Kafka(e)) => return Err(e.into()),
        }
        if stop.is_set() || ingest.done() {
            break;
        }
        // Only a connection that worked resets the delays: one that sent
        // ticks or stayed up a while. An ack followed by a close, or a
        // refused subscription, keeps backing off.
        if ingest.summary().ticks > ticks_before || started.elapsed() >= HEALTHY_AFTER {
            backoff.reset();
        }
        ingest.reconnecting();
        let delay = backoff.next_delay();
        info!(
            exchange,
            delay_ms = delay.as_millis() as u64,
            "reconnecting"
        );
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.wait() => {}
        }
    }
    Ok(())
}

/// A connection up this long counts as working even without trades.
const HEALTHY_AFTER: Duration = Duration::from_secs(30);

enum ConnError {
    Ws(String, u64),
    Kafka(kafka::Error),
}

/// One connection's life; returns how many frames it delivered.
async fn connect_and_read(
    venue: &dyn WsVenue,
    url: &str,
    ingest: &mut Ingestor<'_>,
    limits: &RunLimits,
    stop: &Stop,
) -> std::result::Result<u64, ConnError> {
    let ws_err = |e: &dyn std::fmt::Display, n| ConnError::Ws(e.to_string(), n);
    let connect = tokio_tungstenite::connect_async(url);
    let (mut ws, _) = tokio::time::timeout(Duration::from_secs(10), connect)
        .await
        .map_err(|_| ws_err(&"connect timed out after 10 s", 0))?
        .map_err(|e| ws_err(&e, 0))?;
    info!(exchange = venue.exchange(), url, "connected");
    for sub in venue.subscriptions() {
        ws.send(Message::text(sub))
            .await
            .map_err(|e| ws_err(&e, 0))?;
    }
    let mut received = 0u64;
    // Silence is judged on data frames: pings (all Binance sends when idle)
    // do not prove the subscription is alive.
    let mut deadline = tokio::time::Instant::now() + limits.stale_after;
    loop {
        let next = tokio::select! {
            next = tokio::time::timeout_at(deadline, ws.next()) => next,
            _ = stop.wait() => {
                let _ = ws.close(None).await;
                return Ok(received);
            }
        };
        let msg = match next {
            Err(_) => {
                let silent = format!("no data frame for {:?}", limits.stale_after);
                return Err(ws_err(&silent, received));
            }
            Ok(None) => return Ok(received),
            Ok(Some(Err(e))) => return Err(ws_err(&e, received)),
            Ok(Some(Ok(msg))) => msg,
        };
        let text = match msg {
            Message::Text(t) => t.to_string(),
            Message::Binary(b) => String::from_utf8_lossy(&b).into_owned(),
            Message::Close(_) => return Ok(received),
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
        };
        received += 1;
        deadline = tokio::time::Instant::now() + limits.stale_after;
        let parsed = venue.parse(&text);
        ingest.frame(&text, parsed).map_err(ConnError::Kafka)?;
        if ingest.done() {
            let _ = ws.close(None).await;
            return Ok(received);
        }
    }
}
