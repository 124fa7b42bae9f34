//! Binance spot: the `<symbol>@trade` stream over one combined-stream
//! connection (`/stream?streams=btcusdt@trade/ethusdt@trade`).
//!
//! Frames arrive wrapped (`{"stream":…,"data":{…}}`) on combined streams and
//! bare on `/ws/…`; both are read. In a trade `m` is true when the buyer was
//! the maker, so the taker sold. Unknown fields are ignored (Binance has
//! removed fields before); `T` (trade time) is the event time. Trade ids `t`
//! are consecutive per symbol, so jumps are gaps.
//!
//! Backfill (`--backfill-minutes N`): before streaming, the closed 1-minute
//! klines of the last N minutes come from REST `/api/v3/klines` (pages of
//! 1,000) and each becomes the four ticks `replay` makes of a kline
//! ([`crate::replay::rows`]), so a backfill and a replay of the same dump
//! give identical ticks. A kline counts as closed 5 s after its end by the
//! local clock (in case it runs ahead of Binance's). Trades between the last
//! closed kline and the stream's first trade are not fetched, so the bar of
//! that minute is partial.

use dataflows::tick::{RejectReason, Side, ValidationLimits};
use serde_json::value::RawValue;
use tracing::info;

use super::fields::{Fields, Malformed, Reason};
use super::{rest, Backoff, Frame, Ingestor, Trade, WsVenue};
use crate::now_ms;
use crate::replay::rows::{binance_candle, candle_ticks};
use crate::shutdown::Stop;
use crate::symbols::{binance_stream, canonical};

/// Default public endpoint.
pub const DEFAULT_WS: &str = "wss://stream.binance.com:9443";
/// Default REST endpoint (backfill).
pub const DEFAULT_REST: &str = "https://api.binance.com";
/// Klines per REST page (Binance's maximum).
const KLINES_PAGE: usize = 1000;
const MINUTE_MS: u64 = 60_000;
/// A kline counts as closed this long after its end by the local clock, in
/// case that clock runs ahead of Binance's.
const CLOSE_MARGIN_MS: u64 = 5_000;

/// The Binance trade-stream venue.
pub struct Binance {
    /// Endpoint base, without path.
    pub ws_base: String,
    /// Stream-form symbols (`btcusdt`).
    pub streams: Vec<String>,
}

impl Binance {
    /// A venue for `symbols` in native (`BTCUSDT`) or canonical (`BTC-USDT`)
    /// form; fails naming a symbol that does not map.
    pub fn new(ws_base: &str, symbols: &[String]) -> super::Result<Self> {
        let streams = super::native_symbols(
            symbols,
            "Binance spot",
            "e.g. BTCUSDT or BTC-USDT",
            binance_stream,
            canonical,
        )?;
        Ok(Binance {
            ws_base: ws_base.trim_end_matches('/').to_string(),
            streams,
        })
    }
}

impl Binance {
    /// Sends the closed 1-minute klines of the last `minutes` as ticks.
    pub async fn backfill(
        &self,
        rest_base: &str,
        minutes: u64,
        ingest: &mut Ingestor<'_>,
        stop: &Stop,
    ) -> super::Result<()> {
        let client = rest::client()?;
        let mut backoff = Backoff::new(ingest.limits().backoff_max);
        let now = now_ms();
        let limits = ValidationLimits {
            now_ms: now,
            max_future_ms: ingest.limits().max_future_ms,
        };
        for stream in &self.streams {
            let native = stream.to_ascii_uppercase();
            let symbol = canonical(&native).expect("checked when the venue was built");
            let mut start = now.saturating_sub(minutes * MINUTE_MS) / MINUTE_MS * MINUTE_MS;
            let mut bars = 0usize;
            loop {
                let url = format!(
                    "{}/api/v3/klines?symbol={native}&interval=1m&startTime={start}&limit={KLINES_PAGE}",
                    rest_base.trim_end_matches('/')
                );
                let Some(body) =
                    rest::get_retrying(&client, &url, ingest, &mut backoff, stop).await?
                else {
                    return Ok(());
                };
                let rows: Vec<Vec<&RawValue>> = match serde_json::from_str(&body) {
                    Ok(rows) => rows,
                    Err(e) => {
                        let why = Malformed::new(
                            RejectReason::MalformedJson,
                            format!("klines page: {e}"),
                        );
                        ingest.frame(&body, Err(why))?;
                        break;
                    }
                };
                ingest.frame(&body, Ok(Frame::Control))?;
                let mut next = None;
                for row in &rows {
                    // A kline array is the CSV dump's row with JSON quoting.
                    let fields: Vec<&str> = row.iter().map(|v| v.get().trim_matches('"')).collect();
                    let line = fields.join(",");
                    let ticks = binance_candle(&line).and_then(|bar| {
                        let end = bar.open_ms.saturating_add(bar.interval_ms);
                        next = Some(end);
                        if end.saturating_add(CLOSE_MARGIN_MS) > now {
                            return Ok(Vec::new());
                        }
                        bars += 1;
                        candle_ticks(&bar, &symbol, "binance", limits)
                    });
                    match ticks {
                        Ok(ticks) => {
                            for t in ticks {
                                ingest.validated_tick(&t.key, &t.payload)?;
                            }
                        }
                        Err(why) => {
                            ingest.reject(&line, &Malformed::new(RejectReason::BadField, why))?
                        }
                    }
                }
                // Only forward: a server ignoring `startTime` cannot loop us.
                match next {
                    Some(n) if rows.len() == KLINES_PAGE && n < now && n > start => start = n,
                    _ => break,
                }
            }
            info!(symbol, bars, "binance backfill");
        }
        Ok(())
    }
}

impl WsVenue for Binance {
    fn exchange(&self) -> &'static str {
        "binance"
    }

    fn url(&self) -> String {
        let streams: Vec<String> = self.streams.iter().map(|s| format!("{s}@trade")).collect();
        format!("{}/stream?streams={}", self.ws_base, streams.join("/"))
    }

    fn subscriptions(&self) -> Vec<String> {
        Vec::new()
    }

    fn parse(&self, text: &str) -> Result<Frame, Malformed> {
        let outer = Fields::parse(text)?;
        let f = if outer.has("stream") && outer.has("data") {
            outer.object("data")?
        } else {
            outer
        };
        if f.has("result") || (f.has("id") && !f.has("e")) {
            return Ok(Frame::Control);
        }
        if f.has("code") && f.has("msg") {
            return Ok(Frame::VenueError(f.opt_str("msg").unwrap_or_default()));
        }
        match f.str("e")?.as_str() {
            "trade" => parse_trade(&f).map(|t| Frame::Trades(vec![Ok(t)])),
            other => Err(Malformed::new(
                Reason::UnknownMessage,
                format!("unexpected event type `{other}`"),
            )),
        }
    }
}

fn parse_trade(f: &Fields<'_>) -> Result<Trade, Malformed> {
    let native = f.str("s")?;
    let symbol = canonical(&native).ok_or_else(|| {
        Malformed::new(
            RejectReason::BadSymbol,
            format!("unknown symbol `{native}`"),
        )
    })?;
    Ok(Trade {
        symbol,
        ts_ms: f.u64("T")?,
        price: f.decimal("p")?,
        size: f.decimal("q")?,
        side: if f.bool("m")? { Side::Sell } else { Side::Buy },
        trade_id: f.u64("t")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn venue() -> Binance {
        Binance::new("ws://x", &["BNBBTC".into(), "ETH-USDT".into()]).unwrap()
    }

    #[test]
    fn reads_bare_and_combined_trades() {
        let bare = r#"{"e":"trade","E":1672515782136,"s":"BNBBTC","t":12345,"p":"0.001","q":"100","T":1672515782136,"m":true,"M":true}"#;
        let want = Trade {
            symbol: "BNB-BTC".into(),
            ts_ms: 1_672_515_782_136,
            price: crate::decimal::Decimal::parse("0.001").unwrap(),
            size: crate::decimal::Decimal::parse("100").unwrap(),
            side: Side::Sell,
            trade_id: 12345,
        };
        assert_eq!(
            venue().parse(bare).unwrap(),
            Frame::Trades(vec![Ok(want.clone())])
        );
        let wrapped = format!(r#"{{"stream":"bnbbtc@trade","data":{bare}}}"#);
        assert_eq!(
            venue().parse(&wrapped).unwrap(),
            Frame::Trades(vec![Ok(want)])
        );
        assert_eq!(
            venue().url(),
            "ws://x/stream?streams=bnbbtc@trade/ethusdt@trade"
        );
    }

    #[test]
    fn acks_errors_and_junk() {
        let v = venue();
        assert_eq!(
            v.parse(r#"{"result":null,"id":1}"#).unwrap(),
            Frame::Control
        );
        assert!(matches!(
            v.parse(r#"{"code":2,"msg":"Invalid request"}"#).unwrap(),
            Frame::VenueError(_)
        ));
        let reason = |t: &str| v.parse(t).unwrap_err().reason;
        assert_eq!(reason("not json"), "malformed_json");
        assert_eq!(reason(r#"{"e":"kline"}"#), "unknown_message");
        assert_eq!(
            reason(r#"{"e":"trade","s":"BNBBTC","t":1,"p":"x","q":"1","T":1,"m":true}"#),
            "bad_field"
        );
        assert_eq!(
            reason(r#"{"e":"trade","s":"BNBBTC","t":1,"q":"1","T":1,"m":true}"#),
            "missing_field"
        );
        assert_eq!(
            reason(r#"{"e":"trade","s":"NOPE","t":1,"p":"1","q":"1","T":1,"m":true}"#),
            "bad_symbol"
        );
        assert!(Binance::new("ws://x", &["BTC".into()]).is_err());
    }
}
