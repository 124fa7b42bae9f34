//! The dashboard in a real browser: headless Chromium loads the page from a
//! real socket, runs its script against the API, and the rendered DOM shows
//! the served predictions.

mod common;

use std::process::Command;
use std::sync::Arc;

use cryptoflow::http::LiveView;
use dataflows::champion::Champion;
use dataflows::num::F64;
use dataflows::predict::Prediction;
use dataflows::{Delivery, Output};

#[test]
fn dashboard_renders_the_served_predictions() {
    let state = Arc::new(LiveView::new());
    let p = Prediction {
        symbol: "SOL-USD".into(),
        horizon_bars: 5,
        model: "rls".into(),
        horizon_ms: 5_000,
        made_at_ms: 1_700_000_000_000,
        target_at_ms: 1_700_000_005_000,
        base_price: F64(150.0),
        predicted_return: F64(0.0002),
        predicted_price: F64(150.0 * 0.0002f64.exp()),
        direction_prob: Some(F64(0.7)),
        interval_low: Some(F64(-0.001)),
        interval_high: Some(F64(0.0015)),
        batch: None,
    };
    let c = Champion {
        model: "rls".into(),
        since_ms: 1_699_920_000_000,
        day: Some(19_674),
        skill: F64(0.5),
        samples: 99,
        reason: "test".into(),
    };
    state.apply(&Delivery {
        time: p.made_at_ms,
        changes: vec![(Output::Best(p, c), 1)],
    });

    let rt = tokio::runtime::Runtime::new().unwrap();
    let listener = rt
        .block_on(cryptoflow::http::bind("127.0.0.1:0".parse().unwrap()))
        .unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = rt.spawn(cryptoflow::http::serve(listener, state, async {
        let _ = rx.await;
    }));

    let profile = common::temp_dir("chromium-profile");
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--virtual-time-budget=5000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(&url)
        .output()
        .expect("chromium is installed by scripts/setup.sh --with-python");
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(dom.contains("<td>SOL-USD</td>"), "row not rendered:\n{dom}");
    assert!(dom.contains("rls"), "{dom}");
    assert!(
        dom.contains("150.03000"),
        "predicted price not rendered:\n{dom}"
    );
    assert!(dom.contains("0.5000"), "skill not rendered:\n{dom}");
    assert!(
        dom.contains("0.700"),
        "direction probability not rendered:\n{dom}"
    );
    // 150 · exp(-0.001) and 150 · exp(0.0015), to 8 significant digits.
    assert!(
        dom.contains("149.85007 – 150.22517"),
        "interval not rendered:\n{dom}"
    );
    assert!(
        dom.contains("2023-11-14 00:00"),
        "champion since not rendered:\n{dom}"
    );

    tx.send(()).unwrap();
    rt.block_on(server).unwrap().unwrap();
    let _ = std::fs::remove_dir_all(&profile);
}
