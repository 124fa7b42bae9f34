//! The HTTP API, in-process (`app(state)` with `oneshot`) and over a real
//! socket: status codes, JSON error bodies, and that the values served are
//! the ones the dataflow delivered (including a champion change retracting
//! the previous best prediction).

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use cryptoflow::http::LiveView;
use cryptoflow::http::{app, PredictionView};
use dataflows::champion::{Champion, DayEvaluation, Evaluation};
use dataflows::num::F64;
use dataflows::predict::{Prediction, Score, Scored};
use dataflows::{Delivery, Output};
use http_body_util::BodyExt;
use tower::ServiceExt;

fn prediction(symbol: &str, model: &str, h: u32, made_at: u64, base: f64, ret: f64) -> Prediction {
    Prediction {
        symbol: symbol.into(),
        horizon_bars: h,
        model: model.into(),
        horizon_ms: u64::from(h) * 1_000,
        made_at_ms: made_at,
        target_at_ms: made_at + u64::from(h) * 1_000,
        base_price: F64(base),
        predicted_return: F64(ret),
        predicted_price: F64(base * ret.exp()),
        direction_prob: None,
        interval_low: Some(F64(ret - 0.002)),
        interval_high: Some(F64(ret + 0.002)),
        batch: None,
    }
}

fn scored(score: Score) -> Scored {
    Scored { score, batch: None }
}

fn champion(model: &str, skill: f64) -> Champion {
    Champion {
        model: model.into(),
        since_ms: if skill > 0.0 { 1_699_920_000_000 } else { 0 },
        day: (skill > 0.0).then_some(19_674),
        skill: F64(skill),
        samples: 40,
        reason: "test".into(),
    }
}

fn state() -> Arc<LiveView> {
    let s = Arc::new(LiveView::new());
    let p1 = prediction(
        "BTC-USD",
        "persistence",
        1,
        1_700_000_001_000,
        64_000.0,
        0.0,
    );
    let p2 = prediction("ETH-USD", "persistence", 1, 1_700_000_001_000, 3_400.0, 0.0);
    s.apply(&Delivery {
        time: 1_700_000_001_000,
        changes: vec![
            (Output::Best(p1.clone(), champion("persistence", 0.0)), 1),
            (Output::Best(p2, champion("persistence", 0.0)), 1),
        ],
    });
    // The champion for BTC-USD changes: old entry retracted, new one inserted.
    let p3 = prediction("BTC-USD", "rls", 1, 1_700_000_002_000, 64_100.0, 0.001);
    let eval = |model: &str, winner: bool| Evaluation {
        model: model.into(),
        samples: 500,
        mae: F64(1e-3),
        rmse: F64(2e-3),
        hit_rate: F64(0.55),
        skill: F64(if winner { 0.5 } else { 0.0 }),
        coverage: Some(F64(0.8)),
        winner,
        reason: if winner { "best".into() } else { String::new() },
    };
    let score = |err: f64, covered: bool| Score {
        symbol: "BTC-USD".into(),
        horizon_bars: 1,
        model: "rls".into(),
        made_at_ms: 1_700_000_000_000,
        target_at_ms: 1_700_000_001_000,
        predicted_return: F64(err),
        realized_return: F64(0.0),
        covered: Some(covered),
    };
    let key = ("BTC-USD".to_string(), 1);
    let day_eval = |evaluation| DayEvaluation {
        symbol: key.0.clone(),
        horizon_bars: key.1,
        day: 19_675,
        evaluation,
    };
    s.apply(&Delivery {
        time: 1_700_000_002_000,
        changes: vec![
            (Output::Best(p3, champion("rls", 0.5)), 1),
            (Output::Best(p1, champion("persistence", 0.0)), -1),
            (Output::Champion(key.clone(), champion("rls", 0.5)), 1),
            (Output::Evaluation(day_eval(eval("rls", true))), 1),
            (Output::Evaluation(day_eval(eval("persistence", false))), 1),
            (Output::Score(scored(score(0.001, true))), 1),
            (Output::Score(scored(score(-0.003, false))), 1),
            (
                Output::Score(scored(Score {
                    model: "persistence".into(),
                    ..score(0.002, true)
                })),
                1,
            ),
        ],
    });
    s
}

async fn get(s: Arc<LiveView>, uri: &str) -> (StatusCode, serde_json::Value) {
    let resp = app(s)
        .oneshot(Request::builder().uri(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

#[tokio::test]
async fn endpoints_in_process() {
    let s = state();
    let (status, body) = get(s.clone(), "/api/health").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");

    let (status, body) = get(s.clone(), "/api/predictions").await;
    assert_eq!(status, StatusCode::OK);
    let preds: Vec<PredictionView> = serde_json::from_value(body).unwrap();
    assert_eq!(preds.len(), 2);
    let btc = preds.iter().find(|p| p.symbol == "BTC-USD").unwrap();
    assert_eq!(btc.model, "rls");
    assert_eq!(btc.made_at_ms, 1_700_000_002_000);
    assert_eq!(btc.target_at_ms, 1_700_000_003_000);
    assert!((btc.predicted_price - 64_100.0 * 0.001f64.exp()).abs() < 1e-9);
    assert_eq!(btc.champion_skill, 0.5);
    assert_eq!(btc.champion_since_ms, 1_699_920_000_000);
    // The interval is reported in prices: base · exp(return ± 0.002).
    let lo = btc.interval_low.unwrap();
    let hi = btc.interval_high.unwrap();
    assert!(
        (lo - 64_100.0 * (0.001f64 - 0.002).exp()).abs() < 1e-9,
        "{lo}"
    );
    assert!(
        (hi - 64_100.0 * (0.001f64 + 0.002).exp()).abs() < 1e-9,
        "{hi}"
    );
    assert!(lo < btc.predicted_price && btc.predicted_price < hi);

    let (status, body) = get(s.clone(), "/api/models").await;
    assert_eq!(status, StatusCode::OK);
    let series = body.as_array().unwrap();
    let btc1 = series
        .iter()
        .find(|m| m["symbol"] == "BTC-USD" && m["horizon_bars"] == 1)
        .unwrap();
    assert_eq!(btc1["champion"]["model"], "rls");
    assert_eq!(btc1["last_day"], "2023-11-14");
    assert_eq!(btc1["last_day_metrics"].as_array().unwrap().len(), 2);
    assert_eq!(btc1["rolling"]["rls"]["samples"], 2);
    // Errors 0.001 and 0.003 from the scores applied in `state()`.
    assert!((btc1["rolling"]["rls"]["mae"].as_f64().unwrap() - 0.002).abs() < 1e-12);
    assert_eq!(btc1["rolling"]["rls"]["coverage"], 0.5);
    // Rolling skill: 1 − mean(0.001², 0.003²) / 0.002² = −0.25.
    let skill = btc1["rolling"]["rls"]["skill"].as_f64().unwrap();
    assert!((skill + 0.25).abs() < 1e-9, "{skill}");

    let (status, body) = get(s.clone(), "/api/evaluations?symbol=BTC-USD&day=2023-11-14").await;
    assert_eq!(status, StatusCode::OK);
    let rows = body.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows
        .iter()
        .any(|r| r["model"] == "rls" && r["winner"] == true && r["day"] == "2023-11-14"));
    let (status, body) = get(s.clone(), "/api/evaluations?day=2023-11-15").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.as_array().unwrap().len(), 0);

    let (status, body) = get(s.clone(), "/api/predictions/ETH-USD").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.as_array().unwrap().len(), 1);
    assert_eq!(body[0]["symbol"], "ETH-USD");

    let (status, body) = get(s.clone(), "/api/predictions?horizon_ms=5000").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.as_array().unwrap().len(), 0);

    for (uri, code) in [
        ("/api/predictions/DOGE-USD", StatusCode::NOT_FOUND),
        ("/api/predictions/btc-usd", StatusCode::BAD_REQUEST),
        ("/api/predictions?horizon_ms=soon", StatusCode::BAD_REQUEST),
        ("/api/predictions?colour=red", StatusCode::BAD_REQUEST),
        ("/api/nothing-here", StatusCode::NOT_FOUND),
        ("/api/models?symbol=DOGE-USD", StatusCode::NOT_FOUND),
        ("/api/models?symbol=doge", StatusCode::BAD_REQUEST),
        ("/api/models?day=2023-11-14", StatusCode::BAD_REQUEST),
        ("/api/evaluations?day=2023-02-30", StatusCode::BAD_REQUEST),
        ("/api/evaluations?day=yesterday", StatusCode::BAD_REQUEST),
        ("/api/evaluations?symbol=XRP-USD", StatusCode::NOT_FOUND),
    ] {
        let (status, body) = get(s.clone(), uri).await;
        assert_eq!(status, code, "{uri}");
        assert_eq!(body["error"]["status"], code.as_u16(), "{uri}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{uri}"
        );
    }
}

#[test]
fn endpoints_over_a_real_socket_with_graceful_shutdown() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let listener = rt
        .block_on(cryptoflow::http::bind("127.0.0.1:0".parse().unwrap()))
        .unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let access = cryptoflow::http::guard::Access::default();
    let server = rt.spawn(async move {
        cryptoflow::http::serve_with(listener, state(), &access, async {
            let _ = rx.await;
        })
        .await
    });

    let (status, body) = common::http_get(&addr, "/api/predictions/BTC-USD").unwrap();
    assert_eq!(status, 200, "{body}");
    let preds: Vec<PredictionView> = serde_json::from_str(&body).unwrap();
    assert_eq!(preds[0].model, "rls");
    let (status, body) = common::http_get(&addr, "/api/predictions/XRP-USD").unwrap();
    assert_eq!(status, 404);
    assert!(body.contains("\"error\""));
    let (status, body) = common::http_get(&addr, "/").unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("/assets/app.js"), "{body}");

    tx.send(()).unwrap();
    rt.block_on(server).unwrap().unwrap();
    assert!(
        common::http_get(&addr, "/api/health").is_err(),
        "server still answering after shutdown"
    );
}
