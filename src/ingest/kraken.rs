//! Kraken websocket v2: the `trade` and `ticker` channels.
//!
//! `trade` sends a `snapshot` of recent trades first, then `update`s; after
//! a reconnect the snapshot repeats trades already sent, which the shared
//! duplicate check drops by trade id. `side` is the taker's. Prices and
//! quantities are JSON numbers, read exactly from their text. `ticker`
//! frames (best bid/ask, last price, no size or trade id) are validated and
//! counted as quotes; they are not trades, so they do not become ticks.
//! Symbols are subscribed as `BTC/USD`; legacy `XBT` is read as `BTC`.

use dataflows::tick::RejectReason;

use super::fields::{rfc3339_ms, Fields, Malformed, Reason};
use super::{Frame, Trade, WsVenue};
use crate::symbols::{kraken_canonical, kraken_pair};

/// Default public endpoint.
pub const DEFAULT_WS: &str = "wss://ws.kraken.com/v2";

/// The Kraken v2 venue.
pub struct Kraken {
    /// Endpoint URL.
    pub ws_url: String,
    /// Native pairs (`BTC/USD`).
    pub pairs: Vec<String>,
}

impl Kraken {
    /// A venue for `symbols` given as `BTC/USD` or `BTC-USD`.
    pub fn new(ws_url: &str, symbols: &[String]) -> super::Result<Self> {
        let pairs = super::native_symbols(
            symbols,
            "Kraken",
            "e.g. BTC/USD or BTC-USD",
            kraken_pair,
            kraken_canonical,
        )?;
        Ok(Kraken {
            ws_url: ws_url.to_string(),
            pairs,
        })
    }
}

impl WsVenue for Kraken {
    fn exchange(&self) -> &'static str {
        "kraken"
    }

    fn url(&self) -> String {
        self.ws_url.clone()
    }

    fn subscriptions(&self) -> Vec<String> {
        ["trade", "ticker"]
            .iter()
            .map(|channel| {
                serde_json::json!({
                    "method": "subscribe",
                    "params": { "channel": channel, "symbol": self.pairs, "snapshot": true },
                })
                .to_string()
            })
            .collect()
    }

    fn parse(&self, text: &str) -> Result<Frame, Malformed> {
        let f = Fields::parse(text)?;
        if f.has("method") {
            return if f.bool("success").unwrap_or(false) {
                Ok(Frame::Control)
            } else {
                Ok(Frame::VenueError(
                    f.opt_str("error")
                        .unwrap_or_else(|| "request failed".into()),
                ))
            };
        }
        match f.str("channel")?.as_str() {
            "heartbeat" => Ok(Frame::Heartbeat(None)),
            "status" => Ok(Frame::Control),
            "trade" => {
                let trades = f
                    .array("data")?
                    .into_iter()
                    .map(|raw| parse_trade(&Fields::parse(raw.get())?))
                    .collect();
                Ok(Frame::Trades(trades))
            }
            "ticker" => {
                for raw in f.array("data")? {
                    let q = Fields::parse(raw.get())?;
                    symbol(&q)?;
                    q.decimal("last")?;
                }
                Ok(Frame::Quote)
            }
            other => Err(Malformed::new(
                Reason::UnknownMessage,
                format!("unexpected channel `{other}`"),
            )),
        }
    }
}

fn symbol(f: &Fields<'_>) -> Result<String, Malformed> {
    let native = f.str("symbol")?;
    kraken_canonical(&native)
        .ok_or_else(|| Malformed::new(RejectReason::BadSymbol, format!("unknown pair `{native}`")))
}

fn parse_trade(f: &Fields<'_>) -> Result<Trade, Malformed> {
    let side = f.side("side")?;
    Ok(Trade {
        symbol: symbol(f)?,
        ts_ms: rfc3339_ms(f, "timestamp")?,
        price: f.decimal("price")?,
        size: f.decimal("qty")?,
        side,
        trade_id: f.u64("trade_id")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataflows::tick::Side;

    fn venue() -> Kraken {
        Kraken::new("ws://x", &["BTC-USD".into()]).unwrap()
    }

    #[test]
    fn reads_trades_exactly_and_quotes() {
        let t = r#"{"channel":"trade","type":"update","data":[{"symbol":"BTC/USD","side":"sell","price":63287.4,"qty":0.00253,"ord_type":"market","trade_id":74913551,"timestamp":"2024-09-24T10:00:00.412871Z"},{"symbol":"XBT/USD","side":"buy","price":63287.5,"qty":1e-3,"ord_type":"limit","trade_id":74913552,"timestamp":"2024-09-24T10:00:00.5Z"}]}"#;
        let Frame::Trades(t) = venue().parse(t).unwrap() else {
            panic!()
        };
        let t: Vec<Trade> = t.into_iter().map(Result::unwrap).collect();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].symbol, "BTC-USD");
        assert_eq!(
            (t[0].price.to_string(), t[0].size.to_string()),
            ("63287.4".into(), "0.00253".into())
        );
        assert_eq!(
            (t[1].side, t[1].size.to_string()),
            (Side::Buy, "0.001".into())
        );
        assert_eq!(t[1].ts_ms, 1_727_172_000_500);
        let q = r#"{"channel":"ticker","type":"snapshot","data":[{"symbol":"ALGO/USD","bid":0.10025,"bid_qty":740.0,"ask":0.10036,"ask_qty":1361.44,"last":0.10035,"volume":997038.98,"vwap":0.10148,"low":0.09979,"high":0.10285,"change":-0.00017,"change_pct":-0.17,"timestamp":"2023-09-25T09:04:31.742648Z"}]}"#;
        assert_eq!(venue().parse(q).unwrap(), Frame::Quote);
    }

    #[test]
    fn acks_heartbeats_and_junk() {
        let v = venue();
        let ack = r#"{"method":"subscribe","result":{"channel":"trade","snapshot":true,"symbol":"BTC/USD"},"success":true,"time_in":"2023-09-25T09:04:31.742599Z","time_out":"2023-09-25T09:04:31.742648Z"}"#;
        assert_eq!(v.parse(ack).unwrap(), Frame::Control);
        let nack = r#"{"method":"subscribe","error":"Currency pair not supported XYZ/USD","success":false}"#;
        assert!(matches!(v.parse(nack).unwrap(), Frame::VenueError(e) if e.contains("XYZ")));
        assert_eq!(
            v.parse(r#"{"channel":"heartbeat"}"#).unwrap(),
            Frame::Heartbeat(None)
        );
        assert_eq!(
            v.parse(r#"{"channel":"status","type":"update","data":[{"system":"online"}]}"#)
                .unwrap(),
            Frame::Control
        );
        let reason = |t: &str| v.parse(t).unwrap_err().reason;
        assert_eq!(reason(r#"{"channel":"book"}"#), "unknown_message");
        // One bad trade is rejected on its own; the rest of the frame counts.
        let frame = r#"{"channel":"trade","data":[{"symbol":"BTC/USD","side":"sell","price":"abc","qty":1,"trade_id":1,"timestamp":"2024-09-24T10:00:00Z"},{"symbol":"BTCUSD","side":"sell","price":1,"qty":1,"trade_id":2,"timestamp":"2024-09-24T10:00:00Z"},{"symbol":"BTC/USD","side":"buy","price":1,"qty":1,"trade_id":3,"timestamp":"2024-09-24T10:00:00Z"}]}"#;
        let Frame::Trades(t) = v.parse(frame).unwrap() else {
            panic!()
        };
        let verdicts: Vec<_> = t
            .iter()
            .map(|r| r.as_ref().map(|t| t.trade_id).map_err(|m| m.reason.code()))
            .collect();
        assert_eq!(verdicts, [Err("bad_field"), Err("bad_symbol"), Ok(3)]);
        assert!(v.subscriptions()[0].contains(r#""symbol":["BTC/USD"]"#));
    }
}
