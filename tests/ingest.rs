//! Every exchange connector against a local fake exchange that speaks the
//! venue's documented message format over a real websocket (or HTTP for
//! CoinGecko): subscription acks, heartbeats, malformed frames, a disconnect
//! mid-stream with reconnect, duplicates, gaps and out-of-order trades. The
//! real binary produces into a real broker; an independent client
//! (kafka-python) reads both topics back.

mod common;

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::fake_exchange::Step::{Drop, Expect, Ping, Send};
use common::fake_exchange::{serve, FakeWs};
use serde_json::{json, Value};

/// What one ingest run left behind.
struct Outcome {
    summary: Value,
    ticks: Vec<Value>,
    rejects: Vec<Value>,
}

/// Runs `cryptoflow ingest <args>` into a fresh broker until `max_ticks`,
/// then reads both topics back with kafka-python.
fn ingest(args: &[&str], max_ticks: u64) -> Outcome {
    let dir = common::temp_dir("cryptoflow-ingest");
    let (_broker, brokers) = common::broker(&dir);
    let topic = common::unique("ticks");
    let rejects_topic = format!("{topic}.rejects");
    let mut child = Command::new(common::BIN)
        .arg("ingest")
        .args(args)
        .args(["--brokers", &brokers, "--topic", &topic])
        .args(["--rejects-topic", &rejects_topic, "--backoff-max-ms", "500"])
        .args(["--max-ticks", &max_ticks.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!(
                "ingest {args:?} did not finish:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ingest {args:?} failed:\n{stderr}");
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    // Read as many records as the summary says were sent (and a second
    // more, so extras would show).
    let read = |t: &str, expected: &Value| -> Vec<Value> {
        let expected = expected.as_u64().unwrap().to_string();
        common::run_python("read_topic.py", &[&brokers, t, &expected])
            .lines()
            .map(|line| {
                let r: Value = serde_json::from_str(line).unwrap();
                let mut v: Value = serde_json::from_str(r["value"].as_str().unwrap()).unwrap();
                v["_key"] = r["key"].clone();
                v
            })
            .collect()
    };
    let mut ticks = read(&topic, &summary["ticks"]);
    ticks.sort_by_key(|t| (t["symbol"].to_string(), t["ts"].as_u64()));
    let rejects = read(&rejects_topic, &summary["rejected"]);
    // Every tick is keyed by its symbol and passes the pipeline's validation.
    for t in &ticks {
        assert_eq!(t["_key"], t["symbol"], "{t}");
    }
    Outcome {
        summary,
        ticks,
        rejects,
    }
}

fn ids(ticks: &[Value]) -> Vec<String> {
    ticks
        .iter()
        .map(|t| {
            format!(
                "{}:{}",
                t["symbol"].as_str().unwrap(),
                t["trade_id"].as_str().unwrap()
            )
        })
        .collect()
}

fn reasons(rejects: &[Value]) -> Vec<&str> {
    let mut r: Vec<&str> = rejects
        .iter()
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    r.sort();
    r
}

/// Asserts the summary's counters, named, all at once (so a failure shows
/// every one).
fn assert_counters(summary: &Value, want: &[(&str, u64)]) {
    let got: Vec<(&str, u64)> = want
        .iter()
        .map(|(n, _)| (*n, summary[n].as_u64().unwrap()))
        .collect();
    assert_eq!(got, want, "{summary}");
}

#[test]
fn ingest_help_lists_every_venue() {
    let out = Command::new(common::BIN)
        .args(["ingest", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for venue in ["binance", "coinbase", "kraken", "coingecko"] {
        assert!(help.contains(venue), "{venue} missing from:\n{help}");
    }
    let out = Command::new(common::BIN)
        .args([
            "ingest",
            "binance",
            "--symbols",
            "BTC",
            "--brokers",
            "127.0.0.1:1",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("`BTC` is not a Binance spot symbol"),
        "{stderr}"
    );
}

fn binance_trade(symbol: &str, id: u64, price: &str, buyer_maker: bool) -> String {
    let t = 1_700_000_000_000 + id * 100;
    json!({"e":"trade","E":t + 1,"s":symbol,"t":id,"p":price,"q":"0.25000000","T":t,"m":buyer_maker,"M":true})
        .to_string()
}

fn wrapped(stream: &str, data: String) -> String {
    format!(r#"{{"stream":"{stream}","data":{data}}}"#)
}

#[test]
fn binance_trades_reconnect_dedupe_and_reject() {
    let fake = FakeWs::start(vec![
        vec![
            Send(wrapped(
                "btcusdt@trade",
                binance_trade("BTCUSDT", 100, "37000.01000000", false),
            )),
            Send(wrapped(
                "btcusdt@trade",
                binance_trade("BTCUSDT", 101, "37000.02", true),
            )),
            Send("{\"stream\":\"btcusdt@trade\",\"data\":{\"e\":\"tra".into()),
            Send(wrapped(
                "btcusdt@trade",
                binance_trade("BTCUSDT", 101, "37000.02", true),
            )),
            Send(wrapped(
                "btcusdt@trade",
                binance_trade("BTCUSDT", 102, "1e", true),
            )),
            Send(wrapped(
                "btcusdt@trade",
                binance_trade("BTCUSDT", 105, "37001", false),
            )),
            Send(wrapped(
                "btcusdt@trade",
                binance_trade("BTCUSDT", 104, "37000.5", false),
            )),
            Drop,
        ],
        vec![
            Ping,
            Expect("PONG"),
            Send(r#"{"result":null,"id":1}"#.into()),
            Send(wrapped(
                "btcusdt@trade",
                binance_trade("BTCUSDT", 105, "37001", false),
            )),
            // Bare (non-combined) frames are read too.
            Send(binance_trade("ETHUSDT", 7, "2000.1", true)),
            Send(wrapped(
                "btcusdt@trade",
                binance_trade("BTCUSDT", 106, "37002", false),
            )),
        ],
    ]);
    let out = ingest(
        &[
            "binance",
            "--symbols",
            "BTCUSDT,ETH-USDT",
            "--ws-url",
            &fake.url(""),
        ],
        6,
    );
    assert_eq!(
        ids(&out.ticks),
        [
            "BTC-USDT:100",
            "BTC-USDT:101",
            "BTC-USDT:104",
            "BTC-USDT:105",
            "BTC-USDT:106",
            "ETH-USDT:7"
        ]
    );
    let first = &out.ticks[0];
    assert_eq!(first["price"], "37000.01");
    assert_eq!(first["size"], "0.25");
    assert_eq!(first["side"], "buy");
    assert_eq!(first["exchange"], "binance");
    assert_eq!(first["ts"], 1_700_000_010_000u64);
    // Buyer was the maker: the taker sold.
    assert_eq!(out.ticks[1]["side"], "sell");
    assert_eq!(reasons(&out.rejects), ["bad_field", "malformed_json"]);
    assert!(out
        .rejects
        .iter()
        .any(|r| r["payload"].as_str().unwrap().ends_with("\"e\":\"tra")));
    assert_counters(
        &out.summary,
        &[
            ("ticks", 6),
            ("duplicates", 2),
            ("gaps", 1),
            ("missing_trades", 3),
            ("out_of_order", 1),
            ("rejected", 2),
            ("reconnects", 1),
        ],
    );
    let paths: Vec<String> = fake
        .log()
        .into_iter()
        .filter(|l| l.starts_with("GET"))
        .collect();
    assert_eq!(
        paths[..2],
        ["GET /stream?streams=btcusdt@trade/ethusdt@trade"; 2]
    );
}

#[test]
fn binance_backfills_closed_klines_over_rest_then_streams() {
    use axum::extract::{Query, State};
    use std::collections::HashMap;

    let now = cryptoflow::now_ms();
    let minute = now / 60_000 * 60_000;
    let kline = |open: u64, o: &str, h: &str, l: &str, c: &str| {
        json!([
            open,
            o,
            h,
            l,
            c,
            "4.00000000",
            open + 59_999,
            "1.0",
            7,
            "2.0",
            "1.0",
            "0"
        ])
    };
    // Two closed minutes (one up, one down; well past the 5 s margin); the
    // handler adds the minute in progress when the request comes, as
    // Binance does.
    let klines = json!([
        kline(minute - 180_000, "100.00", "101.50", "99.50", "101.00"),
        kline(minute - 120_000, "101.00", "101.20", "100.10", "100.50"),
    ]);
    type Shared = Arc<(Value, Mutex<Vec<HashMap<String, String>>>)>;
    let shared: Shared = Arc::new((klines, Mutex::new(Vec::new())));
    async fn klines_route(
        State(s): State<Shared>,
        Query(q): Query<HashMap<String, String>>,
    ) -> axum::Json<Value> {
        s.1.lock().unwrap().push(q);
        let now = cryptoflow::now_ms();
        let open = now / 60_000 * 60_000;
        let mut rows = s.0.as_array().unwrap().clone();
        rows.push(json!([
            open,
            "100.50",
            "100.60",
            "100.40",
            "100.55",
            "4.0",
            open + 59_999,
            "1.0",
            7,
            "2.0",
            "1.0",
            "0"
        ]));
        axum::Json(Value::Array(rows))
    }
    let app = axum::Router::new()
        .route("/api/v3/klines", axum::routing::get(klines_route))
        .with_state(shared.clone());
    let (_rt, addr) = serve(app);
    let live = json!({"e":"trade","E":now,"s":"BTCUSDT","t":555,"p":"100.57","q":"0.1","T":now - 1_000,"m":false});
    let fake = FakeWs::start(vec![vec![Send(live.to_string())]]);
    let rest = format!("http://{addr}");
    let out = ingest(
        &[
            "binance",
            "--symbols",
            "BTC-USDT",
            "--ws-url",
            &fake.url(""),
            "--rest-url",
            &rest,
            "--backfill-minutes",
            "5",
        ],
        9,
    );
    let got: Vec<(String, String, String)> = out
        .ticks
        .iter()
        .map(|t| {
            let s = |f: &str| t[f].as_str().unwrap().to_string();
            (s("trade_id"), s("price"), s("size"))
        })
        .collect();
    let (a, b) = (minute - 180_000, minute - 120_000);
    let want: Vec<(String, String, String)> = [
        // Up bar: open, low, high, close; down bar: open, high, low, close.
        (format!("{a}-0"), "100", "1"),
        (format!("{a}-1"), "99.5", "1"),
        (format!("{a}-2"), "101.5", "1"),
        (format!("{a}-3"), "101", "1"),
        (format!("{b}-0"), "101", "1"),
        (format!("{b}-1"), "101.2", "1"),
        (format!("{b}-2"), "100.1", "1"),
        (format!("{b}-3"), "100.5", "1"),
        ("555".to_string(), "100.57", "0.1"),
    ]
    .into_iter()
    .map(|(id, p, q)| (id, p.to_string(), q.to_string()))
    .collect();
    assert_eq!(got, want);
    assert_eq!(out.ticks[3]["ts"], a + 59_999);
    assert_eq!(out.summary["ticks"], 9);
    let queries = shared.1.lock().unwrap().clone();
    assert_eq!(queries.len(), 1, "fewer than 1,000 klines: one page");
    let q = &queries[0];
    assert_eq!(
        (
            q["symbol"].as_str(),
            q["interval"].as_str(),
            q["limit"].as_str()
        ),
        ("BTCUSDT", "1m", "1000")
    );
    let start: u64 = q["startTime"].parse().unwrap();
    assert_eq!(start % 60_000, 0);
    assert!(
        start <= minute - 4 * 60_000 && start >= minute - 6 * 60_000,
        "{start}"
    );
}

fn coinbase_match(kind: &str, id: u64, price: &str, maker_side: &str) -> String {
    json!({"type":kind,"trade_id":id,"sequence":id * 10,"maker_order_id":"m","taker_order_id":"t",
        "time":format!("2024-01-02T03:04:{:02}.123456Z", id % 60),"product_id":"BTC-USD","size":"0.01000000","price":price,"side":maker_side})
    .to_string()
}

#[test]
fn coinbase_matches_tickers_heartbeats_and_reconnect() {
    let subscribed = r#"{"type":"subscriptions","channels":[{"name":"matches","product_ids":["BTC-USD"]},{"name":"heartbeat","product_ids":["BTC-USD"]}]}"#;
    let heartbeat = |last: u64| {
        json!({"type":"heartbeat","sequence":1,"last_trade_id":last,"product_id":"BTC-USD","time":"2024-01-02T03:04:05.000000Z"}).to_string()
    };
    let fake = FakeWs::start(vec![
        vec![
            Expect(r#""type":"subscribe""#),
            Send(subscribed.into()),
            Send(coinbase_match("last_match", 10, "42000.00", "buy")),
            Send(coinbase_match("match", 11, "42000.50", "sell")),
            Send(heartbeat(11)),
            // A ticker (it repeats trade 11): a quote, not a second trade.
            Send(json!({"type":"ticker","sequence":111,"product_id":"BTC-USD","price":"42000.50","best_bid":"42000.49","best_ask":"42000.51","side":"buy","time":"2024-01-02T03:04:11.123456Z","trade_id":11,"last_size":"0.01"}).to_string()),
            Send(coinbase_match("match", 12, "0", "sell")),
            Send(r#"{"type":"match","trade_id":13,"#.into()),
            Send(heartbeat(14)),
            Drop,
        ],
        vec![
            Expect(r#""type":"subscribe""#),
            Send(subscribed.into()),
            // The last match after subscribing: trade 14, which the
            // heartbeat announced before the disconnect.
            Send(coinbase_match("last_match", 14, "42000.75", "sell")),
            Send(json!({"type":"ticker","sequence":150,"product_id":"BTC-USD","price":"42001.00","best_bid":"42000.99","best_ask":"42001.01","time":"2024-01-02T03:04:14.5Z"}).to_string()),
            Send(r#"{"type":"error","message":"Failed to subscribe","reason":"XYZ-USD is not a valid product"}"#.into()),
            Send(coinbase_match("match", 15, "42001.00", "buy")),
            Send(coinbase_match("match", 16, "42002.00", "sell")),
        ],
    ]);
    let out = ingest(
        &[
            "coinbase",
            "--products",
            "BTC-USD",
            "--ws-url",
            &fake.url("/"),
        ],
        5,
    );
    assert_eq!(
        ids(&out.ticks),
        [
            "BTC-USD:10",
            "BTC-USD:11",
            "BTC-USD:14",
            "BTC-USD:15",
            "BTC-USD:16"
        ]
    );
    // `side` on matches is the maker's: maker buy = taker sell.
    let sides: Vec<&str> = out
        .ticks
        .iter()
        .map(|t| t["side"].as_str().unwrap())
        .collect();
    assert_eq!(sides, ["sell", "buy", "buy", "sell", "buy"]);
    assert_eq!(out.ticks[1]["price"], "42000.5");
    assert_eq!(out.ticks[0]["ts"], 1_704_164_650_123u64);
    assert_eq!(reasons(&out.rejects), ["malformed_json", "non_positive"]);
    // Trade 12 was rejected and 13 never parsed; the heartbeat saying 14
    // leaves 13 and 14 missing; 14 then arrives late, and 15 follows on.
    assert_counters(
        &out.summary,
        &[
            ("ticks", 5),
            ("duplicates", 0),
            ("gaps", 1),
            ("missing_trades", 2),
            ("heartbeats", 2),
            ("quotes", 2),
            ("venue_errors", 1),
            ("rejected", 2),
            ("reconnects", 1),
            ("out_of_order", 1),
        ],
    );
    let subs: Vec<String> = fake
        .log()
        .into_iter()
        .filter(|l| l.contains("subscribe"))
        .collect();
    assert_eq!(subs.len(), 2, "resubscribed after the reconnect");
    let sub: Value = serde_json::from_str(&subs[0]).unwrap();
    assert_eq!(sub["product_ids"], json!(["BTC-USD"]));
    assert_eq!(sub["channels"], json!(["matches", "ticker", "heartbeat"]));
}

fn kraken_trades(kind: &str, trades: &[(u64, &str)]) -> String {
    let data: Vec<Value> = trades
        .iter()
        .map(|(id, price)| {
            let price: Value = serde_json::from_str(price).unwrap();
            json!({"symbol":"XBT/USD","side":if id % 2 == 0 { "buy" } else { "sell" },"price":price,"qty":0.00253,
                "ord_type":"market","trade_id":id,"timestamp":format!("2024-09-24T10:00:{:02}.412871Z", id)})
        })
        .collect();
    json!({"channel":"trade","type":kind,"data":data}).to_string()
}

#[test]
fn kraken_snapshots_updates_and_reconnect() {
    let ack = |channel: &str| {
        json!({"method":"subscribe","result":{"channel":channel,"snapshot":true,"symbol":"BTC/USD"},"success":true,
            "time_in":"2024-09-24T10:00:00.000000Z","time_out":"2024-09-24T10:00:00.000100Z"}).to_string()
    };
    let session_start = || {
        vec![
            Expect(r#""channel":"trade""#),
            Expect(r#""channel":"ticker""#),
            Send(ack("trade")),
            Send(ack("ticker")),
            Send(r#"{"channel":"status","type":"update","data":[{"api_version":"v2","system":"online","version":"2.0.8"}]}"#.into()),
        ]
    };
    let mut first = session_start();
    first.extend([
        Send(r#"{"channel":"heartbeat"}"#.into()),
        Send(kraken_trades("snapshot", &[(1, "63287.4"), (2, "63287.45")])),
        Send(json!({"channel":"ticker","type":"snapshot","data":[{"symbol":"BTC/USD","bid":63287.3,"bid_qty":0.5,"ask":63287.5,"ask_qty":1.2,"last":63287.45,"volume":1234.5,"vwap":63000.1,"low":62000.0,"high":64000.0,"change":100.0,"change_pct":0.16,"timestamp":"2024-09-24T10:00:02.000000Z"}]}).to_string()),
        Send(kraken_trades("update", &[(3, "6.32875e4")])),
        Send(kraken_trades("update", &[(4, r#""not a price""#)])),
        Drop,
    ]);
    let mut second = session_start();
    second.extend([
        // The snapshot after a reconnect repeats trades already sent.
        Send(kraken_trades("snapshot", &[(2, "63287.45"), (3, "6.32875e4"), (4, "63288")])),
        Send(r#"{"method":"subscribe","error":"Currency pair not supported XYZ/USD","success":false}"#.into()),
        Send(kraken_trades("update", &[(6, "63290.1")])),
        Send(kraken_trades("update", &[(5, "63289")])),
    ]);
    let fake = FakeWs::start(vec![first, second]);
    let out = ingest(
        &[
            "kraken",
            "--symbols",
            "BTC/USD",
            "--ws-url",
            &fake.url("/v2"),
        ],
        6,
    );
    assert_eq!(
        ids(&out.ticks),
        [
            "BTC-USD:1",
            "BTC-USD:2",
            "BTC-USD:3",
            "BTC-USD:4",
            "BTC-USD:5",
            "BTC-USD:6"
        ]
    );
    assert_eq!(out.ticks[0]["price"], "63287.4");
    assert_eq!(out.ticks[0]["size"], "0.00253");
    assert_eq!(out.ticks[0]["side"], "sell");
    assert_eq!(out.ticks[2]["price"], "63287.5");
    assert_eq!(out.ticks[0]["ts"], 1_727_172_001_412u64);
    assert_eq!(reasons(&out.rejects), ["bad_field"]);
    assert_counters(
        &out.summary,
        &[
            ("ticks", 6),
            ("duplicates", 2),
            ("gaps", 1),
            ("missing_trades", 1),
            ("out_of_order", 1),
            ("heartbeats", 1),
            ("quotes", 1),
            ("venue_errors", 1),
            ("rejected", 1),
            ("reconnects", 1),
        ],
    );
    let subs: Vec<Value> = fake
        .log()
        .into_iter()
        .filter(|l| l.contains("subscribe"))
        .map(|l| serde_json::from_str(&l).unwrap())
        .collect();
    assert_eq!(subs.len(), 4, "trade + ticker, twice");
    assert_eq!(subs[0]["params"]["symbol"], json!(["BTC/USD"]));
}

#[test]
fn coingecko_polls_backfills_and_survives_rate_limits() {
    use axum::extract::{Path, Query, State};
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let t0: u64 = 1_711_843_200; // 2024-03-31T00:00:00Z
    let price_body = |ts: u64, btc: &str| {
        format!(
            r#"{{"bitcoin":{{"usd":{btc},"usd_24h_vol":2.4e10,"last_updated_at":{ts}}},"ethereum":{{"usd":3500.25,"usd_24h_vol":1.2e10,"last_updated_at":{ts}}}}}"#
        )
    };
    // Poll responses in order; the last one repeats.
    let polls: Vec<(u16, String)> = vec![
        (429, String::new()),
        (200, price_body(t0 + 600, "69800.5")),
        (200, price_body(t0 + 600, "69800.5")),
        (200, "<html>bad gateway</html>".into()),
        (500, String::new()),
        (200, price_body(t0 + 660, "69790.25")),
    ];
    type Shared = Arc<(Vec<(u16, String)>, AtomicUsize, Mutex<Vec<String>>)>;
    let shared: Shared = Arc::new((polls, AtomicUsize::new(0), Mutex::new(Vec::new())));
    async fn simple(
        State(s): State<Shared>,
        Query(q): Query<HashMap<String, String>>,
    ) -> axum::response::Response {
        s.2.lock().unwrap().push(format!("simple {}", q["ids"]));
        let i = s.1.fetch_add(1, Ordering::SeqCst).min(s.0.len() - 1);
        let (status, body) = s.0[i].clone();
        let mut resp = (StatusCode::from_u16(status).unwrap(), body).into_response();
        if status == 429 {
            resp.headers_mut()
                .insert("retry-after", "0".parse().unwrap());
        }
        resp
    }
    async fn chart(
        State(s): State<Shared>,
        Path(coin): Path<String>,
        Query(q): Query<HashMap<String, String>>,
    ) -> String {
        s.2.lock()
            .unwrap()
            .push(format!("chart {coin} {}", q["days"]));
        let ms = 1_711_843_200_000u64;
        let p = if coin == "bitcoin" { 69702.31 } else { 3490.5 };
        format!(
            r#"{{"prices":[[{ms},{p}],[{},{p}1],[{},{p}9]],"market_caps":[[{ms},1.3e12]],"total_volumes":[[{ms},2.4e10],[{},2.4e10]]}}"#,
            ms + 300_000,
            // The last point is "now" (off the 5-minute grid): not backfilled.
            ms + 301_234,
            ms + 300_000
        )
    }
    let app = axum::Router::new()
        .route("/api/v3/simple/price", axum::routing::get(simple))
        .route(
            "/api/v3/coins/{coin}/market_chart",
            axum::routing::get(chart),
        )
        .with_state(shared.clone());
    let (_rt, addr) = serve(app);
    let api = format!("http://{addr}/api/v3");
    let args = [
        "coingecko",
        "--coins",
        "bitcoin,ethereum",
        "--api-url",
        &api,
    ];
    let out = ingest(
        &[&args[..], &["--interval-s", "0.1", "--backfill-days", "1"]].concat(),
        8,
    );
    let got: Vec<(String, u64, String)> = out
        .ticks
        .iter()
        .map(|t| {
            (
                t["symbol"].as_str().unwrap().to_string(),
                t["ts"].as_u64().unwrap(),
                t["price"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let ms = |s: u64| s * 1000;
    assert_eq!(
        got,
        [
            ("BTC-USD".to_string(), ms(t0), "69702.31".to_string()),
            ("BTC-USD".into(), ms(t0 + 300), "69702.311".into()),
            ("BTC-USD".into(), ms(t0 + 600), "69800.5".into()),
            ("BTC-USD".into(), ms(t0 + 660), "69790.25".into()),
            ("ETH-USD".into(), ms(t0), "3490.5".into()),
            ("ETH-USD".into(), ms(t0 + 300), "3490.51".into()),
            ("ETH-USD".into(), ms(t0 + 600), "3500.25".into()),
            ("ETH-USD".into(), ms(t0 + 660), "3500.25".into()),
        ]
    );
    // Tick rule: BTC fell at t0+660.
    assert_eq!(out.ticks[3]["side"], "sell");
    assert_eq!(out.ticks[2]["side"], "buy");
    assert_eq!(reasons(&out.rejects), ["malformed_json"]);
    assert_counters(
        &out.summary,
        &[
            ("ticks", 8),
            ("duplicates", 2),
            ("rejected", 1),
            ("reconnects", 2),
        ],
    );
    let calls = shared.2.lock().unwrap().clone();
    assert_eq!(calls[..2], ["chart bitcoin 1", "chart ethereum 1"]);
    assert!(
        calls[2..].iter().all(|c| c == "simple bitcoin,ethereum"),
        "{calls:?}"
    );
}
