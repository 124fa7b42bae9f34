//! Plain HTTPS GETs for the REST endpoints (CoinGecko, Binance klines):
//! one client set-up, HTTP 429 with `Retry-After` told apart from other
//! failures, and a retrying GET that backs off with jitter until it
//! succeeds or the connector is stopped.

use std::time::Duration;

use tracing::warn;

use super::{Backoff, Ingestor};
use crate::shutdown::Stop;

/// The HTTP client every REST connector uses.
pub fn client() -> reqwest::Result<reqwest::Client> {
    super::use_aws_lc_tls();
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
    /// A 4xx other than 408/429: asking again will not help.
    pub permanent: bool,
}

/// One GET; the body of a 2xx answer.
pub async fn get(client: &reqwest::Client, url: &str) -> Result<String, HttpFailure> {
    let fail = |message: String| HttpFailure {
        message,
        retry_after: None,
        permanent: false,
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
            permanent: false,
        });
    }
    if !status.is_success() {
        let body = resp.text().await.unwrap_or_default();
        let body: String = body.chars().take(200).collect();
        return Err(HttpFailure {
            message: format!("{url}: HTTP {status} {body}"),
            retry_after: None,
            permanent: status.is_client_error() && status.as_u16() != 408,
        });
    }
    resp.text().await.map_err(|e| fail(chain(&e)))
}

/// GETs `url` until it succeeds, each failure counted as a reconnect and
/// followed by the longer of the server's `Retry-After` and the next backoff
/// delay. `Ok(None)` once `stop` is set; an error for a request the venue
/// refuses for good (a 4xx such as an unknown symbol), which no retry fixes.
pub async fn get_retrying(
    client: &reqwest::Client,
    url: &str,
    ingest: &mut Ingestor<'_>,
    backoff: &mut Backoff,
    stop: &Stop,
) -> super::Result<Option<String>> {
    while !stop.is_set() {
        match get(client, url).await {
            Ok(body) => {
                backoff.reset();
                return Ok(Some(body));
            }
            Err(e) if e.permanent => return Err(super::Error::Refused(e.message)),
            Err(e) => {
                ingest.reconnecting();
                let delay = backoff.next_delay();
                let wait = e.retry_after.map_or(delay, |r| r.max(delay));
                warn!(error = %e.message, wait_ms = wait.as_millis() as u64, "rest request failed");
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.wait() => {}
                }
            }
        }
    }
    Ok(None)
}
