//! CoinGecko: aggregated reference prices over REST, polled.
//!
//! CoinGecko publishes a volume-weighted price across exchanges, not trades,
//! so its ticks are reference ticks, decided as follows:
//!
//! - price: the exact `<vs>` price (`precision=full`);
//! - time: `last_updated_at` (Unix seconds → ms); a poll that returns the
//!   same `last_updated_at` again is a duplicate and dropped (the id of a
//!   CoinGecko tick is its `last_updated_at`);
//! - size: the volume estimated for one polling interval in base units,
//!   `<vs>_24h_vol / price × interval / 24 h` (rounded to 8 decimals, at
//!   least 1e-8) — only so bars carry a plausible volume;
//! - side: the tick rule, `buy` when the price did not fall since the
//!   previous tick of the symbol, else `sell`;
//! - gap: consecutive updates more than 3 intervals apart are logged.
//!
//! Polling respects the free plan's limit (tens of calls a minute): one call
//! per interval (default 30 s) for all coins; HTTP 429 waits for
//! `Retry-After` (or the backoff), other failures back off with jitter.
//! `--backfill-days N` first loads `/coins/{id}/market_chart` for each coin
//! (5-minute points for 1 day, hourly up to 90 days) as the same kind of
//! reference ticks, all but the last point (usually "now", not a bucket,
//! and newer than what the first poll reports). Coin ids map to tickers through
//! [`crate::symbols::COINGECKO_IDS`].

use std::collections::HashMap;
use std::time::Duration;

use dataflows::tick::{RejectReason, Side};
use serde_json::value::RawValue;
use tracing::info;

use super::fields::{Fields, Malformed};
use super::rest;
use super::{Backoff, Error, Ingestor, RunLimits, Sink, Summary, Trade};
use crate::decimal::Decimal;
use crate::shutdown::Stop;
use crate::symbols::coingecko_canonical;

/// Default public API base.
pub const DEFAULT_API: &str = "https://api.coingecko.com/api/v3";

const DAY_S: f64 = 86_400.0;

/// A reference tick and the seconds since the symbol's previous one.
type Reference = (Trade, u64);

/// The CoinGecko poller.
pub struct CoinGecko {
    /// API base URL (`…/api/v3`).
    pub api: String,
    /// Coin ids (`bitcoin`).
    pub coins: Vec<String>,
    /// Quote currencies (`usd`).
    pub vs: Vec<String>,
    /// Polling interval.
    pub interval: Duration,
    /// Days of history to load first (0: none).
    pub backfill_days: u32,
    // Looked up by symbol only; its order never reaches output.
    last: HashMap<String, (u64, Decimal)>,
}

impl CoinGecko {
    /// A poller; fails naming a coin id without a known ticker.
    pub fn new(
        api: &str,
        coins: &[String],
        vs: &[String],
        interval: Duration,
        backfill_days: u32,
    ) -> super::Result<Self> {
        if let Some(c) = coins
            .iter()
            .find(|c| coingecko_canonical(c, "usd").is_none())
        {
            return Err(Error::BadSymbol {
                venue: "CoinGecko",
                symbol: c.clone(),
                hint: format!(
                    "known coin ids: {}",
                    crate::symbols::COINGECKO_IDS.map(|(id, _)| id).join(", ")
                ),
            });
        }
        if let Some(v) = vs
            .iter()
            .find(|v| v.is_empty() || !v.bytes().all(|b| b.is_ascii_alphanumeric()))
        {
            return Err(Error::BadOption(format!("bad --vs currency `{v}`")));
        }
        if interval.is_zero() {
            return Err(Error::BadOption(
                "the polling interval must be positive".into(),
            ));
        }
        Ok(CoinGecko {
            api: api.trim_end_matches('/').to_string(),
            coins: coins.to_vec(),
            vs: vs.iter().map(|v| v.to_ascii_lowercase()).collect(),
            interval,
            backfill_days,
            last: HashMap::new(),
        })
    }

    fn simple_price_url(&self) -> String {
        format!(
            "{}/simple/price?ids={}&vs_currencies={}&include_24hr_vol=true&include_last_updated_at=true&precision=full",
            self.api,
            self.coins.join(","),
            self.vs.join(",")
        )
    }

    /// A reference tick, with the tick-rule side and the gap check.
    fn reference(
        &mut self,
        symbol: String,
        ts_s: u64,
        price: Decimal,
        vol_24h: Option<f64>,
        span_s: f64,
    ) -> Result<Reference, Malformed> {
        if price.is_zero() {
            return Err(Malformed::new(RejectReason::NonPositive, "price is zero"));
        }
        let ts_ms = ts_s.checked_mul(1000).ok_or_else(|| {
            Malformed::new(
                RejectReason::BadField,
                format!("time {ts_s} s is out of range"),
            )
        })?;
        // An estimate, so clamped to what any market could trade.
        let est = vol_24h.unwrap_or(0.0) / price.to_f64() * span_s / DAY_S;
        let size = if est.is_finite() {
            est.clamp(1e-8, 1e12)
        } else {
            1e-8
        };
        let size = Decimal::parse(&format!("{size:.8}"))
            .map_err(|e| Malformed::new(RejectReason::BadField, format!("volume estimate: {e}")))?;
        let (side, gap_s) = match self.last.get(&symbol) {
            Some((prev_s, prev)) => (
                if price >= *prev {
                    Side::Buy
                } else {
                    Side::Sell
                },
                ts_s.saturating_sub(*prev_s),
            ),
            None => (Side::Buy, 0),
        };
        if ts_s > self.last.get(&symbol).map_or(0, |l| l.0) {
            self.last.insert(symbol.clone(), (ts_s, price));
        }
        let trade = Trade {
            symbol,
            ts_ms,
            price,
            size,
            side,
            trade_id: ts_s,
        };
        Ok((trade, gap_s))
    }

    /// Parses a `/simple/price` body into reference ticks (one per coin and
    /// currency; a bad entry is an error of its own, the rest still count).
    pub fn parse_simple_price(
        &mut self,
        body: &str,
    ) -> Result<Vec<Result<Reference, Malformed>>, Malformed> {
        let top = Fields::parse(body)?;
        let mut out = Vec::new();
        for coin in self.coins.clone() {
            let Some(raw) = top.raw(&coin) else {
                out.push(Err(Malformed::new(
                    RejectReason::MissingField,
                    format!("no entry for `{coin}`"),
                )));
                continue;
            };
            let entry = Fields::parse(raw.get());
            for vs in self.vs.clone() {
                let one = entry.as_ref().map_err(Clone::clone).and_then(|f| {
                    let symbol = coingecko_canonical(&coin, &vs)
                        .ok_or_else(|| Malformed::new(RejectReason::BadSymbol, coin.clone()))?;
                    let price = f.decimal(&vs)?;
                    let vol = f
                        .decimal(&format!("{vs}_24h_vol"))
                        .ok()
                        .map(Decimal::to_f64);
                    let ts_s = f.u64("last_updated_at")?;
                    self.reference(symbol, ts_s, price, vol, self.interval.as_secs_f64())
                });
                out.push(one);
            }
        }
        Ok(out)
    }

    /// Parses a `/coins/{id}/market_chart` body into reference ticks.
    pub fn parse_market_chart(
        &mut self,
        coin: &str,
        vs: &str,
        body: &str,
    ) -> Result<Vec<Trade>, Malformed> {
        let f = Fields::parse(body)?;
        let symbol = coingecko_canonical(coin, vs)
            .ok_or_else(|| Malformed::new(RejectReason::BadSymbol, coin.to_string()))?;
        let points = |name| -> Result<Vec<(u64, Decimal)>, Malformed> {
            f.array(name)?
                .into_iter()
                .map(|p| {
                    let pair: Vec<&RawValue> = serde_json::from_str(p.get()).map_err(|_| {
                        Malformed::new(
                            RejectReason::BadField,
                            format!("`{name}` point is not [ms, value]"),
                        )
                    })?;
                    let [ms, v] = pair[..] else {
                        return Err(Malformed::new(
                            RejectReason::BadField,
                            format!("`{name}` point is not [ms, value]"),
                        ));
                    };
                    let ms: u64 = ms.get().parse().map_err(|_| {
                        Malformed::new(
                            RejectReason::BadField,
                            format!("`{name}` time {}", ms.get()),
                        )
                    })?;
                    Ok((
                        ms,
                        Decimal::parse(v.get())
                            .map_err(|e| Malformed::new(RejectReason::BadField, e))?,
                    ))
                })
                .collect()
        };
        let prices = points("prices")?;
        let volumes: std::collections::BTreeMap<u64, f64> = points("total_volumes")?
            .into_iter()
            .map(|(ms, v)| (ms, v.to_f64()))
            .collect();
        // The last point is usually "now", not a bucket boundary, and newer
        // than the price a poll right after would report: leave it to the polls.
        let prices = &prices[..prices.len().saturating_sub(1)];
        let mut out = Vec::with_capacity(prices.len());
        for (i, (ms, price)) in prices.iter().enumerate() {
            let span_s = i
                .checked_sub(1)
                .map_or(300.0, |j| (ms - prices[j].0.min(*ms)) as f64 / 1000.0);
            let (t, _) = self.reference(
                symbol.clone(),
                ms / 1000,
                *price,
                volumes.get(ms).copied(),
                span_s,
            )?;
            out.push(t);
        }
        Ok(out)
    }

    /// Backfills (if asked), then polls until `stop` or `--max-ticks`.
    pub async fn run(
        &mut self,
        sink: &dyn Sink,
        limits: RunLimits,
        stop: &Stop,
    ) -> super::Result<Summary> {
        let client = rest::client()?;
        let mut ingest = Ingestor::new("coingecko", false, sink, limits.clone());
        let mut backoff = Backoff::new(limits.backoff_max);
        if self.backfill_days > 0 {
            self.backfill(&client, &mut ingest, &mut backoff, stop)
                .await?;
        }
        let gap_s = 3 * self.interval.as_secs().max(1);
        let url = self.simple_price_url();
        while !stop.is_set() && !ingest.done() {
            let Some(body) =
                rest::get_retrying(&client, &url, &mut ingest, &mut backoff, stop).await?
            else {
                break;
            };
            match self.parse_simple_price(&body) {
                Err(m) => ingest.frame(&body, Err(m))?,
                Ok(entries) => {
                    ingest.frame(&body, Ok(super::Frame::Control))?;
                    for entry in entries {
                        match entry {
                            Ok((t, gap)) => {
                                if gap > gap_s {
                                    ingest.time_gap(&t.symbol, gap);
                                }
                                ingest.trade(&body, &t)?;
                            }
                            Err(m) => ingest.reject(&body, &m)?,
                        }
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(self.interval) => {}
                _ = stop.wait() => {}
            }
        }
        Ok(ingest.finish()?)
    }

    async fn backfill(
        &mut self,
        client: &reqwest::Client,
        ingest: &mut Ingestor<'_>,
        backoff: &mut Backoff,
        stop: &Stop,
    ) -> super::Result<()> {
        for coin in self.coins.clone() {
            for vs in self.vs.clone() {
                let url = format!(
                    "{}/coins/{coin}/market_chart?vs_currency={vs}&days={}",
                    self.api, self.backfill_days
                );
                let Some(body) = rest::get_retrying(client, &url, ingest, backoff, stop).await?
                else {
                    return Ok(());
                };
                match self.parse_market_chart(&coin, &vs, &body) {
                    Ok(trades) => {
                        ingest.frame(&body, Ok(super::Frame::Control))?;
                        info!(coin, vs, points = trades.len(), "coingecko backfill");
                        for t in &trades {
                            ingest.trade(&body, t)?;
                        }
                    }
                    Err(m) => ingest.frame(&body, Err(m))?,
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poller() -> CoinGecko {
        CoinGecko::new(
            "http://x/api/v3",
            &["bitcoin".into(), "ethereum".into()],
            &["usd".into()],
            Duration::from_secs(30),
            0,
        )
        .unwrap()
    }

    #[test]
    fn simple_price_becomes_reference_ticks() {
        let mut p = poller();
        let body = r#"{"bitcoin":{"usd":67432.15,"usd_24h_vol":2.592e10,"last_updated_at":1626316083},"ethereum":{"usd":"oops","last_updated_at":1626316080}}"#;
        let out = p.parse_simple_price(body).unwrap();
        let (t, gap) = out[0].clone().unwrap();
        assert_eq!(
            (t.symbol.as_str(), t.ts_ms, t.trade_id, gap),
            ("BTC-USD", 1_626_316_083_000, 1_626_316_083, 0)
        );
        assert_eq!(t.price.to_string(), "67432.15");
        // 2.592e10 USD a day at 67432.15 is ~384,387 BTC a day; 30 s of it:
        assert!((t.size.to_f64() - 2.592e10 / 67432.15 * 30.0 / 86400.0).abs() < 1e-6);
        assert_eq!(out[1].clone().unwrap_err().reason, "bad_field");
        let lower = r#"{"bitcoin":{"usd":67000,"last_updated_at":1626316200},"ethereum":{"usd":3000,"last_updated_at":1626316200}}"#;
        let out = p.parse_simple_price(lower).unwrap();
        let (t, gap) = out[0].clone().unwrap();
        assert_eq!((t.side, gap), (Side::Sell, 117));
        assert_eq!(t.size.to_string(), "0.00000001");
        assert!(p
            .simple_price_url()
            .starts_with("http://x/api/v3/simple/price?ids=bitcoin,ethereum&vs_currencies=usd"));
        assert_eq!(
            p.parse_simple_price("[]").unwrap_err().reason,
            "malformed_json"
        );
    }

    #[test]
    fn market_chart_points_become_ticks() {
        let mut p = poller();
        let body = r#"{"prices":[[1711843200000,69702.31],[1711843500000,69710.5],[1711843642123,69711.1]],"market_caps":[[1711843200000,1.3e12]],"total_volumes":[[1711843200000,2.4e10],[1711843500000,2.4e10]]}"#;
        let t = p.parse_market_chart("bitcoin", "usd", body).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(
            (t[1].ts_ms, t[1].side, t[1].price.to_string()),
            (1_711_843_500_000, Side::Buy, "69710.5".into())
        );
        assert!(p
            .parse_market_chart(
                "bitcoin",
                "usd",
                r#"{"prices":[[1,2,3]],"total_volumes":[]}"#
            )
            .is_err());
        assert!(CoinGecko::new(
            "http://x",
            &["notacoin".into()],
            &["usd".into()],
            Duration::from_secs(1),
            0
        )
        .is_err());
    }
}
