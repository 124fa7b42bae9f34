use super::*;
use crate::sim::Rng;

fn score(model: &str, h: u32, t: u64, p: f64, y: f64, covered: Option<bool>) -> Score {
    Score {
        symbol: "A-B".into(),
        horizon_bars: h,
        model: model.into(),
        made_at_ms: t * 1_000,
        target_at_ms: (t + u64::from(h)) * 1_000,
        predicted_return: F64(p),
        realized_return: F64(y),
        covered,
    }
}

/// A forecast rule: the forecast from the signal x.
type Rule<'a> = &'a dyn Fn(f64, &mut Rng) -> f64;

/// Window sums of `models` (name, forecast rule from the signal x) on one
/// seeded path of overlapping h-bar outcomes, where 30% of each bar's move
/// is predictable from that bar's x.
fn sums(h: u32, n: usize, seed: u64, models: &[(&str, Rule<'_>)]) -> BTreeMap<String, DayStats> {
    let mut rng = Rng::new(seed);
    let steps: Vec<(f64, f64)> = (0..n + h as usize)
        .map(|_| {
            let x = rng.normal();
            (x, 1e-3 * (0.3 * x + rng.normal()))
        })
        .collect();
    let mut out = BTreeMap::new();
    for (name, rule) in models {
        let mut lags = LossLags::default();
        let mut acc = DayStats::default();
        let mut r = Rng::new(seed ^ 7);
        for t in 0..n {
            // The h-bar outcome overlaps its neighbours: a sum of h steps.
            let y: f64 = steps[t..t + h as usize].iter().map(|s| s.1).sum();
            let p = rule(steps[t].0 * 1e-3, &mut r);
            let s = score(name, h, t as u64, p, y, None);
            let d = loss_difference(&s);
            acc.add(&DayStats::of(&s, d, lags.push(s.made_at_ms, 1_000, h, d)));
        }
        out.insert(name.to_string(), acc);
    }
    out
}

#[test]
fn normal_quantiles() {
    for (p, z) in [
        (0.5, 0.0),
        (0.975, 1.959_963_985),
        (0.99, 2.326_347_874),
        (0.998, 2.878_161_739),
        (0.01, -2.326_347_874),
        (1e-6, -4.753_424_309),
    ] {
        assert!(
            (normal_quantile(p) - z).abs() < 1e-8,
            "{p}: {}",
            normal_quantile(p)
        );
    }
}

/// The long-run variance from the integer sums agrees with Newey–West
/// computed directly from the loss differences (centred autocovariances).
#[test]
fn dm_variance_matches_a_direct_newey_west() {
    for h in [1u32, 5, 15] {
        let mut rng = Rng::new(u64::from(h));
        let n = 20_000usize;
        let e: Vec<f64> = (0..n + h as usize).map(|_| rng.normal()).collect();
        let mut lags = LossLags::default();
        let mut acc = DayStats::default();
        let mut ds = Vec::new();
        for t in 0..n {
            // An MA(h − 1) loss difference with a small mean, like
            // overlapping h-bar outcomes.
            let y: f64 = e[t..t + h as usize].iter().sum::<f64>() * 1e-3;
            let s = score("m", h, t as u64, 2e-4, y, None);
            let d = loss_difference(&s);
            ds.push(d as f64);
            acc.add(&DayStats::of(&s, d, lags.push(s.made_at_ms, 1_000, h, d)));
        }
        let mean = ds.iter().sum::<f64>() / n as f64;
        let gamma = |k: usize| {
            (k..n)
                .map(|t| (ds[t] - mean) * (ds[t - k] - mean))
                .sum::<f64>()
                / n as f64
        };
        let hf = f64::from(h);
        let lrv = gamma(0)
            + 2.0
                * (1..h as usize)
                    .map(|k| (1.0 - k as f64 / hf) * gamma(k))
                    .sum::<f64>();
        let hln = ((n as f64 + 1.0 - 2.0 * hf + hf * (hf - 1.0) / n as f64) / n as f64).sqrt();
        let want_se = (lrv / n as f64).sqrt() / hln;
        let got = dm(&acc, h);
        assert_eq!(got.n, n as i64);
        let sum = ds.iter().sum::<f64>();
        assert!((got.mean * n as f64 - sum).abs() <= 1e-9 * sum.abs().max(1.0));
        assert!(
            (got.se / want_se - 1.0).abs() < 0.01,
            "h {h}: se {} vs {want_se}",
            got.se
        );
        // Ignoring the overlap would understate the error by about √h.
        if h > 1 {
            let naive = (gamma(0) / n as f64).sqrt();
            assert!(got.se > 1.5 * naive, "h {h}: {} vs naive {naive}", got.se);
        }
    }
}

fn always(_: &str) -> bool {
    true
}

#[test]
fn a_significant_challenger_replaces_persistence_and_noise_does_not() {
    let cfg = ChampionConfig::default();
    let good = |x: f64, _: &mut Rng| 0.3 * x;
    let noise = |_: f64, r: &mut Rng| 2e-4 * r.normal();
    let zero = |_: f64, _: &mut Rng| 0.0;
    let w = sums(
        5,
        20_000,
        1,
        &[(PERSISTENCE, &zero), ("good", &good), ("noise", &noise)],
    );
    let d = decide(&w, PERSISTENCE, &always, 7, 5, &cfg);
    assert_eq!(d.champion, "good", "{}", d.reason);
    assert!(
        d.reason.contains("good replaces persistence") && d.reason.contains("z*"),
        "{}",
        d.reason
    );
    let w = sums(5, 20_000, 2, &[(PERSISTENCE, &zero), ("noise", &noise)]);
    let d = decide(&w, PERSISTENCE, &always, 7, 5, &cfg);
    assert_eq!(d.champion, PERSISTENCE, "{}", d.reason);
    assert!(
        d.reason.contains("no model significantly better"),
        "{}",
        d.reason
    );
    // Too few scores: the baseline, whatever the figures.
    let w = sums(5, 100, 1, &[(PERSISTENCE, &zero), ("good", &good)]);
    let d = decide(&w, PERSISTENCE, &always, 7, 5, &cfg);
    assert_eq!(d.champion, PERSISTENCE);
    assert!(d.reason.starts_with("thin data"), "{}", d.reason);
}

#[test]
fn a_champion_holds_against_noise_and_is_demoted_when_it_loses() {
    let cfg = ChampionConfig::default();
    let zero = |_: f64, _: &mut Rng| 0.0;
    let good = |x: f64, _: &mut Rng| 0.3 * x;
    let slightly_better = |x: f64, _: &mut Rng| 0.32 * x;
    let bad = |x: f64, _: &mut Rng| -0.3 * x;
    let w = sums(
        1,
        3_000,
        3,
        &[
            (PERSISTENCE, &zero),
            ("good", &good),
            ("tweak", &slightly_better),
        ],
    );
    let d = decide(&w, "good", &always, 7, 1, &cfg);
    assert_eq!(d.champion, "good", "{}", d.reason);
    assert!(d.reason.starts_with("good holds"), "{}", d.reason);
    // The incumbent now loses to persistence: demoted, and the significant
    // challenger takes over in the same evaluation.
    let w = sums(
        1,
        3_000,
        3,
        &[(PERSISTENCE, &zero), ("bad", &bad), ("good", &good)],
    );
    let d = decide(&w, "bad", &always, 7, 1, &cfg);
    assert_eq!(d.champion, "good", "{}", d.reason);
    assert!(d.reason.starts_with("bad demoted: skill -"), "{}", d.reason);
    let w = sums(1, 3_000, 3, &[(PERSISTENCE, &zero), ("bad", &bad)]);
    let d = decide(&w, "bad", &always, 7, 1, &cfg);
    assert_eq!(d.champion, PERSISTENCE, "{}", d.reason);
    // A champion that stopped scoring is demoted.
    let w = sums(1, 3_000, 3, &[(PERSISTENCE, &zero), ("good", &good)]);
    let d = decide(&w, "good", &|m: &str| m != "good", 7, 1, &cfg);
    assert_eq!(d.champion, PERSISTENCE, "{}", d.reason);
    // A much better challenger does replace a weak incumbent.
    let weak = |x: f64, _: &mut Rng| 0.05 * x;
    let w = sums(
        1,
        20_000,
        4,
        &[(PERSISTENCE, &zero), ("weak", &weak), ("good", &good)],
    );
    let d = decide(&w, "weak", &always, 7, 1, &cfg);
    assert_eq!(d.champion, "good", "{}", d.reason);
    assert!(d.reason.contains("good replaces weak"), "{}", d.reason);
}

/// The window rule at different bar lengths: 7 days or 250 scores,
/// whichever is longer.
#[test]
fn the_window_is_long_enough_at_every_bar_length() {
    for (per_day, want_days) in [(8_640i64, 7), (24, 11), (1, 250)] {
        let mut st = SeriesState::new();
        let cfg = ChampionConfig::default();
        for day in 0..400 {
            let mut models = BTreeMap::new();
            models.insert(
                PERSISTENCE.to_string(),
                DayStats {
                    n: per_day,
                    base_sq: per_day as i128,
                    sq: per_day as i128,
                    ..DayStats::default()
                },
            );
            st.open.insert(day, models);
            st.close_day(day, 1, &cfg).unwrap();
        }
        let days = 399 - st.window[0].0 + 1;
        assert_eq!(days, want_days, "{per_day} scores a day");
    }
}

#[test]
fn day_rows_match_direct_formulas() {
    let ys = [0.01, -0.02, 0.005, 0.0, 0.03];
    let mut st = SeriesState::new();
    for (i, y) in ys.iter().enumerate() {
        st.add(&score(PERSISTENCE, 1, i as u64, 0.0, *y, None), 0);
        st.add(&score("rls", 1, i as u64, y * 0.5, *y, Some(i % 2 == 0)), 0);
    }
    let out = st.close_day(0, 1, &ChampionConfig::default()).unwrap();
    let rows: Vec<&Evaluation> = out
        .iter()
        .filter_map(|j| match j {
            Judged::Row(e) => Some(e),
            Judged::Champion(_) => None,
        })
        .collect();
    let rls = rows.iter().find(|e| e.model == "rls").unwrap();
    let mse_b: f64 = ys.iter().map(|y| y * y).sum::<f64>() / 5.0;
    let mse_m: f64 = ys.iter().map(|y| (y * 0.5 - y).powi(2)).sum::<f64>() / 5.0;
    assert!((rls.rmse.0 - mse_m.sqrt()).abs() < 1e-9);
    assert!((rls.mae.0 - ys.iter().map(|y| (y * 0.5).abs()).sum::<f64>() / 5.0).abs() < 1e-9);
    assert!((rls.skill.0 - (1.0 - mse_m / mse_b)).abs() < 1e-6);
    assert_eq!(rls.hit_rate.0, 4.0 / 5.0);
    assert_eq!(rls.coverage, Some(F64(3.0 / 5.0)));
    // Five scores are thin data: the baseline is the one winner.
    assert_eq!(rows.iter().filter(|e| e.winner).count(), 1);
    assert!(rows.iter().find(|e| e.model == PERSISTENCE).unwrap().winner);
    assert!(
        matches!(out.last(), Some(Judged::Champion(c)) if c.model == PERSISTENCE && c.since_ms == 0)
    );
}

/// Batch models (slots named `batch_*`, whatever version fills them) are
/// judged by the same rule as the online ones: promoted on a significant
/// win, held against noise, demoted when they lose or stop scoring.
#[test]
fn batch_models_are_judged_like_any_other_model() {
    let cfg = ChampionConfig::default();
    let zero = |_: f64, _: &mut Rng| 0.0;
    let good = |x: f64, _: &mut Rng| 0.3 * x;
    let bad = |x: f64, _: &mut Rng| -0.3 * x;
    let noise = |_: f64, r: &mut Rng| 2e-4 * r.normal();
    let w = sums(
        5,
        20_000,
        5,
        &[
            (PERSISTENCE, &zero),
            ("batch_ridge", &good),
            ("rls", &noise),
        ],
    );
    let d = decide(&w, PERSISTENCE, &always, 7, 5, &cfg);
    assert_eq!(d.champion, "batch_ridge", "{}", d.reason);
    assert!(
        d.reason.contains("batch_ridge replaces persistence"),
        "{}",
        d.reason
    );
    let w = sums(
        1,
        3_000,
        6,
        &[(PERSISTENCE, &zero), ("batch_ridge", &bad), ("rls", &good)],
    );
    let d = decide(&w, "batch_ridge", &always, 7, 1, &cfg);
    assert_eq!(d.champion, "rls", "{}", d.reason);
    assert!(
        d.reason.starts_with("batch_ridge demoted: skill -"),
        "{}",
        d.reason
    );
    let w = sums(1, 3_000, 7, &[(PERSISTENCE, &zero), ("batch_ridge", &good)]);
    let d = decide(&w, "batch_ridge", &|m: &str| m != "batch_ridge", 7, 1, &cfg);
    assert_eq!(d.champion, PERSISTENCE, "{}", d.reason);
}

/// What happens to one series, in order: scores on a day, then its close.
#[derive(Clone, Debug)]
enum Event {
    Add(Score, i32),
    Close(i32),
}

/// Twelve days of scores of a baseline, a model with some skill and one
/// with none, 60 one-minute outcomes a day, each day closed at its end.
fn series_events(seed: u64) -> Vec<Event> {
    let mut rng = Rng::new(seed);
    let mut events = Vec::new();
    for day in 0..12i32 {
        for i in 0..60u64 {
            let t = day as u64 * 60 + i;
            let x = rng.normal();
            let y = 1e-3 * (0.4 * x + rng.normal());
            for (model, p) in [
                (PERSISTENCE, 0.0),
                ("good", 0.4e-3 * x),
                ("noise", 1e-3 * rng.normal()),
            ] {
                let mut s = score(model, 1, t, p, y, Some(rng.uniform() < 0.8));
                s.made_at_ms = t * 60_000;
                s.target_at_ms = (t + 1) * 60_000;
                events.push(Event::Add(s, day));
            }
        }
        events.push(Event::Close(day));
    }
    events
}

fn replay(st: &mut SeriesState, events: &[Event], cfg: &ChampionConfig) -> Vec<Judged> {
    let mut out = Vec::new();
    for e in events {
        match e {
            Event::Add(s, day) => st.add(s, *day),
            Event::Close(day) => out.extend(st.close_day(*day, 1, cfg).unwrap_or_default()),
        }
    }
    out
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 32, ..Default::default() })]

    /// Stopping a series anywhere (mid-day included), storing it, reading
    /// it back and going on judges every later day exactly as never
    /// stopping does, and ends in the same state bytes.
    #[test]
    fn restored_series_continues_as_if_never_stopped(seed in 0u64..10_000, cut in 0usize..2_172) {
        let cfg = ChampionConfig {
            window_days: 3,
            min_samples: 50,
            ..ChampionConfig::default()
        };
        let events = series_events(seed);
        let mut whole = SeriesState::new();
        let all = replay(&mut whole, &events, &cfg);
        let mut first = SeriesState::new();
        let mut got = replay(&mut first, &events[..cut], &cfg);
        let mut restored = crate::snapshot::round_trip(&first);
        got.extend(replay(&mut restored, &events[cut..], &cfg));
        proptest::prop_assert_eq!(got, all);
        proptest::prop_assert_eq!(
            crate::snapshot::encode(&restored),
            crate::snapshot::encode(&whole)
        );
    }
}
