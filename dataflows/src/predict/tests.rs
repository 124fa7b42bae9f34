use super::*;
use crate::bars::flat_bar;

#[test]
fn scores_each_prediction_once_at_its_target() {
    let config = PredictConfig {
        horizons: vec![1, 3],
        ..PredictConfig::default()
    };
    let mut st = SymbolState::new(&config);
    let mut out = Predicted::default();
    let n = 200usize;
    let w = crate::features::WARMUP_BARS as usize;
    let closes: Vec<f64> = (0..n).map(|i| 100.0 + (i as f64 * 0.7).sin()).collect();
    for (i, c) in closes.iter().enumerate() {
        let bar = flat_bar("A-B", i as u64 * 1_000, 1_000, F64(*c));
        on_bar(&mut st, &bar, &mut out);
    }
    let scores: Vec<&Score> = out.scores.iter().map(|s| &s.score).collect();
    let models = config.params.names().len();
    // Predictions start at bar index w-1 (after warm-up); horizon h scores bars w-1..n-h.
    assert_eq!(
        scores.iter().filter(|s| s.horizon_bars == 1).count(),
        (n - (w - 1) - 1) * models
    );
    assert_eq!(
        scores.iter().filter(|s| s.horizon_bars == 3).count(),
        (n - (w - 1) - 3) * models
    );
    for s in &scores {
        assert_eq!(
            s.target_at_ms - s.made_at_ms,
            u64::from(s.horizon_bars) * 1_000
        );
        let t = (s.target_at_ms / 1_000 - 1) as usize;
        let m = (s.made_at_ms / 1_000 - 1) as usize;
        assert!((s.realized_return.0 - (closes[t] / closes[m]).ln()).abs() < 1e-12);
    }
    // The current collection nets to one prediction per (horizon, model).
    let mut net: BTreeMap<(u32, String), isize> = BTreeMap::new();
    for (p, d) in &out.current {
        *net.entry((p.horizon_bars, p.model.clone())).or_default() += d;
    }
    assert_eq!(net.len(), 2 * models);
    assert!(net.values().all(|d| *d == 1));
}

#[test]
fn runs_only_the_selected_models_and_always_persistence() {
    let params = ModelParams::default();
    assert_eq!(params.select(&["rls"]), Ok(vec!["persistence", "rls"]));
    assert_eq!(params.select::<&str>(&[]), Ok(vec!["persistence"]));
    assert!(params
        .select(&["rls", "nope"])
        .unwrap_err()
        .contains("nope"));
    assert!(params.select(&["rls", "rls"]).is_err());
    let config = PredictConfig {
        horizons: vec![1],
        models: params.select(&["rls"]).unwrap(),
        ..PredictConfig::default()
    };
    let mut st = SymbolState::new(&config);
    let mut out = Predicted::default();
    for i in 0..300u64 {
        let bar = flat_bar("A-B", i * 1_000, 1_000, F64(100.0 + (i as f64 * 0.7).sin()));
        on_bar(&mut st, &bar, &mut out);
    }
    let models: std::collections::BTreeSet<&str> =
        out.scores.iter().map(|s| s.score.model.as_str()).collect();
    assert_eq!(models, ["persistence", "rls"].into());
}
