//! Coinbase Exchange: the `matches`, `ticker` and `heartbeat` channels of the
//! public websocket feed.
//!
//! - `match` / `last_match`: `side` is the MAKER's side, so `sell` means the
//!   taker bought; the tick carries the taker side.
//! - `ticker`: best bid/ask and the last trade, batched and not ordered
//!   against `matches`; validated and counted as a quote. Its trade is the
//!   one `matches` already delivers, and feeding both to the trade-id
//!   tracker would report false gaps.
//! - `heartbeat`: carries `last_trade_id`; when it is ahead of the newest
//!   trade received, the trades in between were dropped — a gap.
//!
//! Gaps are detected on trade ids, which are consecutive per product. The
//! `sequence` field is not used for that: on the matches channel it jumps
//! for every order-book event that is not a trade.

use dataflows::tick::{RejectReason, Side};

use super::fields::{rfc3339_ms, Fields, Malformed, Reason};
use super::{Frame, Trade, WsVenue};

/// Default public endpoint.
pub const DEFAULT_WS: &str = "wss://ws-feed.exchange.coinbase.com";

/// The Coinbase Exchange venue.
pub struct Coinbase {
    /// Endpoint URL.
    pub ws_url: String,
    /// Product ids (`BTC-USD`).
    pub products: Vec<String>,
}

impl Coinbase {
    /// A venue for `products` (canonical already, e.g. `BTC-USD`).
    pub fn new(ws_url: &str, products: &[String]) -> super::Result<Self> {
        let products = super::native_symbols(
            products,
            "Coinbase",
            "a product id, e.g. BTC-USD",
            str::to_string,
            |p| dataflows::tick::is_canonical_symbol(p).then(|| p.to_string()),
        )?;
        Ok(Coinbase {
            ws_url: ws_url.to_string(),
            products,
        })
    }
}

impl WsVenue for Coinbase {
    fn exchange(&self) -> &'static str {
        "coinbase"
    }

    fn url(&self) -> String {
        self.ws_url.clone()
    }

    fn subscriptions(&self) -> Vec<String> {
        vec![serde_json::json!({
            "type": "subscribe",
            "product_ids": self.products,
            "channels": ["matches", "ticker", "heartbeat"],
        })
        .to_string()]
    }

    fn parse(&self, text: &str) -> Result<Frame, Malformed> {
        let f = Fields::parse(text)?;
        match f.str("type")?.as_str() {
            "subscriptions" => Ok(Frame::Control),
            "heartbeat" => Ok(Frame::Heartbeat(Some((
                f.str("product_id")?,
                f.u64("last_trade_id")?,
            )))),
            "match" | "last_match" => {
                // The maker's side: the taker did the opposite.
                let side = match f.side("side")? {
                    Side::Sell => Side::Buy,
                    Side::Buy => Side::Sell,
                };
                trade(&f, side).map(|t| Frame::Trades(vec![Ok(t)]))
            }
            "ticker" => {
                product(&f)?;
                f.decimal("price")?;
                Ok(Frame::Quote)
            }
            "error" => Ok(Frame::VenueError(format!(
                "{}: {}",
                f.opt_str("message").unwrap_or_default(),
                f.opt_str("reason").unwrap_or_default()
            ))),
            other => Err(Malformed::new(
                Reason::UnknownMessage,
                format!("unexpected message type `{other}`"),
            )),
        }
    }
}

fn product(f: &Fields<'_>) -> Result<String, Malformed> {
    let product = f.str("product_id")?;
    if !dataflows::tick::is_canonical_symbol(&product) {
        return Err(Malformed::new(
            RejectReason::BadSymbol,
            format!("product `{product}`"),
        ));
    }
    Ok(product)
}

fn trade(f: &Fields<'_>, side: Side) -> Result<Trade, Malformed> {
    Ok(Trade {
        symbol: product(f)?,
        ts_ms: rfc3339_ms(f, "time")?,
        price: f.decimal("price")?,
        size: f.decimal("size")?,
        side,
        trade_id: f.u64("trade_id")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn venue() -> Coinbase {
        Coinbase::new("ws://x", &["BTC-USD".into()]).unwrap()
    }

    #[test]
    fn match_side_is_the_makers() {
        let m = r#"{"type":"match","trade_id":10,"sequence":50,"maker_order_id":"a","taker_order_id":"b","time":"2014-11-07T08:19:27.028459Z","product_id":"BTC-USD","size":"5.23512","price":"400.23","side":"sell"}"#;
        let Frame::Trades(t) = venue().parse(m).unwrap() else {
            panic!()
        };
        let t: Vec<Trade> = t.into_iter().map(Result::unwrap).collect();
        assert_eq!(t[0].side, Side::Buy);
        assert_eq!(t[0].price.to_string(), "400.23");
        assert_eq!(t[0].size.to_string(), "5.23512");
        assert_eq!(t[0].trade_id, 10);
        assert_eq!(t[0].ts_ms, 1_415_348_367_028);
    }

    #[test]
    fn tickers_are_quotes_and_heartbeats_carry_ids() {
        let t = r#"{"type":"ticker","sequence":37475248783,"product_id":"ETH-USD","price":"1285.22","best_bid":"1285.04","best_ask":"1285.27","side":"buy","time":"2022-10-19T23:28:22.061769Z","trade_id":370843401,"last_size":"11.4396987"}"#;
        assert_eq!(venue().parse(t).unwrap(), Frame::Quote);
        let hb = r#"{"type":"heartbeat","sequence":90,"last_trade_id":20,"product_id":"BTC-USD","time":"2014-11-07T08:19:28.464459Z"}"#;
        assert_eq!(
            venue().parse(hb).unwrap(),
            Frame::Heartbeat(Some(("BTC-USD".into(), 20)))
        );
        let sub =
            r#"{"type":"subscriptions","channels":[{"name":"matches","product_ids":["BTC-USD"]}]}"#;
        assert_eq!(venue().parse(sub).unwrap(), Frame::Control);
        assert!(
            venue().subscriptions()[0].contains(r#""channels":["matches","ticker","heartbeat"]"#)
        );
        let reason = |t: &str| venue().parse(t).unwrap_err().reason;
        assert_eq!(reason(r#"{"type":"nope"}"#), "unknown_message");
        assert_eq!(reason(r#"{"type":"match","side":"up"}"#), "bad_field");
        assert!(Coinbase::new("ws://x", &["btcusd".into()]).is_err());
    }
}
