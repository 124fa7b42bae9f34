//! Plain HTTPS GETs for the REST endpoints (CoinGecko, Binance klines):
//! one client set-up, HTTP 429 with `Retry-After` told apart from other
//! failures, and a retrying GET that backs off with jitter until it
//! succeeds or the connector is stopped.

use std::time::Duration;

use tracing::warn;

use super::{Backoff, Ingestor};
use crate::pipeline::Stop;

/// The HTTP client every REST connector uses.
pub fn client() -> reqwest::Result<reqwest::Client> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .user_agent(concat!("cryptoflow/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// An error and its causes on one line (reqwest's own message omits them).
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    text
}

/// A failed GET: what happened, and how long the server asked us to wait.
pub struct HttpFailure {
    /// One line: the error and its causes, or the status.
    pub message: String,
    /// `Retry-After` of a 429.
    pub retry_after: Option<Duration>,
}

/// One GET; the body of a 2xx answer.
pub async fn get(client: &reqwest::Client, url: &str) -> Result<String, HttpFailure> {
    let fail = |message: String| HttpFailure {
        message,
        retry_after: None,
    };
    let resp = client.get(url).send().await.map_err(|e| fail(chain(&e)))?;
    let status = resp.status();
    if status.as_u16() == 429 {
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        return Err(HttpFailure {
            message: format!("{url}: 429 rate limited"),
            retry_after,
        });
    }
    if !status.is_success() {
        return Err(fail(format!("{url}: HTTP {status}")));
    }
    resp.text().await.map_err(|e| fail(chain(&e)))
}

/// GETs `url` until it succeeds (each failure counted as a reconnect and
/// followed by the server's `Retry-After` or the next backoff delay); None
/// once `stop` is set.
pub async fn get_retrying(
    client: &reqwest::Client,
    url: &str,
    ingest: &mut Ingestor<'_>,
    backoff: &mut Backoff,
    stop: &Stop,
) -> Option<String> {
    while !stop.is_set() {
        match get(client, url).await {
            Ok(body) => {
                backoff.reset();
                return Some(body);
            }
            Err(e) => {
                ingest.reconnecting();
                let wait = e.retry_after.unwrap_or_else(|| backoff.next_delay());
                warn!(error = %e.message, wait_ms = wait.as_millis() as u64, "rest request failed");
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.wait() => {}
                }
            }
        }
    }
    None
}
