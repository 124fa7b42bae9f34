//! The champion rule, as plain functions of model names and their window
//! sums: nothing here knows any model but the baseline, `persistence`, so
//! models registered later are judged exactly like the built-in ones. That
//! includes the batch models ([`crate::deploy`]): a slot (`batch_*`) is one
//! model here, its scores summed by name across the versions that filled
//! it, as an online model's are across its updates.
//!
//! **Window.** A series is judged at the end of each UTC day on a trailing
//! window of whole days ending with that day: the fewest most recent days
//! that span at least [`ChampionConfig::window_days`] calendar days *and*
//! hold at least [`ChampionConfig::min_samples`] persistence scores
//! (whichever is longer; at most [`MAX_WINDOW_DAYS`]; all the days so far
//! while the run has fewer, so a demo's first day is judged on that day
//! alone once it holds enough scores). With the defaults
//! (7 days, 250 scores) that is 7 days for bars up to about 40 minutes,
//! about 11 days for hourly bars and 250 days for daily bars.
//!
//! **Test.** Each model's loss difference against persistence,
//! dₜ = eₜ² − yₜ², gets a one-sided Diebold–Mariano test over the window:
//! z = −d̄ / √(Ŝ/n), Ŝ the Newey–West long-run variance with Bartlett
//! weights and lag h − 1 (h-bar outcomes made one bar apart overlap in
//! h − 1 bars, so their loss differences are autocorrelated up to that
//! lag), times the Harvey–Leybourne–Newbold small-sample factor
//! √((n + 1 − 2h + h(h − 1)/n)/n). A model is *significantly better than
//! persistence* when z ≥ z*, where z* is the normal quantile of
//! 1 − level/k (Bonferroni over the k challengers judged; level 1%
//! one-sided by default: z* = 2.88 with five challengers), and its window
//! skill is at least [`ChampionConfig::min_skill`].
//!
//! **Decision** (the incumbent is the champion before this day):
//! - too few scores in the window: persistence;
//! - the incumbent is persistence: the challenger significantly better
//!   than persistence with the best window skill takes over, if any;
//! - the incumbent is learned and lost to persistence over the window
//!   (window skill < 0), or had no scores that day: it is demoted, and the
//!   best significant challenger (else persistence) takes over;
//! - otherwise it holds, unless a significant challenger is also
//!   significantly better than the incumbent itself: z of the difference of
//!   their mean loss differences over the bound √(Ŝₐ/nₐ) + √(Ŝᵦ/nᵦ) on its
//!   standard error (the triangle inequality for the Newey–West norm: it
//!   needs only each model's own sums, never pairs, and is conservative,
//!   so at the same level the test can only be harder to pass than an
//!   exact pairwise test) must reach z*.
//!
//! Ties go to the simpler model (persistence, then `ewma_drift`, then by
//! name). Every reason string carries the window and the test's figures.

use std::collections::BTreeMap;

use crate::models::PERSISTENCE;

use super::stats::DayStats;

/// The longest window kept, in days, whatever the bar length.
pub const MAX_WINDOW_DAYS: i32 = 1_000;

/// Champion settings.
#[derive(Clone, Copy, Debug)]
pub struct ChampionConfig {
    /// The window spans at least this many UTC days.
    pub window_days: i32,
    /// The window holds at least this many persistence scores, and a model
    /// needs this many scores in it to be judged.
    pub min_samples: i64,
    /// One-sided family-wise level of the Diebold–Mariano test.
    pub level: f64,
    /// A challenger also needs at least this window skill versus
    /// persistence (significant but negligible gains do not count).
    pub min_skill: f64,
}

impl Default for ChampionConfig {
    fn default() -> Self {
        ChampionConfig {
            window_days: 7,
            min_samples: 250,
            level: 0.01,
            min_skill: 0.005,
        }
    }
}

/// A model's Diebold–Mariano figures over a window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dm {
    /// Scores.
    pub n: i64,
    /// 1 − Σe²/Σy² over the model's own scores.
    pub skill: f64,
    /// Mean loss difference against persistence (negative: better).
    pub mean: f64,
    /// Standard error of the mean (Newey–West, lag h − 1, HLN-corrected).
    pub se: f64,
    /// −mean / se: positive when better than persistence.
    pub z: f64,
}

/// Skill of sums against persistence on the same scores.
pub fn skill_of(s: &DayStats) -> f64 {
    if s.base_sq > 0 {
        1.0 - s.sq as f64 / s.base_sq as f64
    } else {
        0.0
    }
}

/// The Diebold–Mariano figures of a model's window sums, horizon `h` bars.
pub fn dm(s: &DayStats, h: u32) -> Dm {
    let n = s.n.max(0);
    let nf = n as f64;
    let hf = f64::from(h.max(1));
    let skill = skill_of(s);
    if n < 2 {
        return Dm {
            n,
            skill,
            mean: 0.0,
            se: f64::INFINITY,
            z: 0.0,
        };
    }
    let mean = s.d_sum as f64 / nf;
    let gamma0 = s.d_sq as f64 / nf - mean * mean;
    // Ŝ = γ₀ + 2 Σₖ (1 − k/h) γₖ with γₖ ≈ Σdₜdₜ₋ₖ/n − d̄²; Σₖ (1 − k/h) = (h − 1)/2.
    let mut lrv = s.d_sq as f64 / nf + 2.0 * s.d_lag as f64 / (hf * nf) - hf * mean * mean;
    if !(lrv.is_finite() && lrv > 0.0) {
        lrv = gamma0;
    }
    let hln = (nf + 1.0 - 2.0 * hf + hf * (hf - 1.0) / nf) / nf;
    let se = if lrv > 0.0 && hln > 0.0 {
        (lrv / nf).sqrt() / hln.sqrt()
    } else {
        f64::INFINITY
    };
    let z = if se.is_finite() && se > 0.0 {
        -mean / se
    } else {
        0.0
    };
    Dm {
        n,
        skill,
        mean,
        se,
        z,
    }
}

/// The standard normal quantile Φ⁻¹(p) (Acklam's rational approximation,
/// relative error below 1.2e-9), for p in (0, 1).
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let p = p.clamp(1e-300, 1.0 - 1e-16);
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.024_25 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.024_25 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// Simpler models win ties: persistence, then drift, then the rest by name.
fn simplicity(model: &str) -> (u8, &str) {
    match model {
        PERSISTENCE => (0, model),
        "ewma_drift" => (1, model),
        _ => (2, model),
    }
}

/// What the rule decided for one series at the end of one day.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// The champion from the end of the day on.
    pub champion: String,
    /// Why, with the test's figures.
    pub reason: String,
    /// Every model's window figures.
    pub figures: BTreeMap<String, Dm>,
}

/// The window in words, for reasons.
fn window_text(days: i32, base_n: i64) -> String {
    format!("window {days} d, {base_n} scores")
}

/// Decides the champion of a series of horizon `h` bars from each model's
/// window sums, the incumbent, the models scored on the evaluated day and
/// the window's length in days.
pub fn decide(
    window: &BTreeMap<String, DayStats>,
    incumbent: &str,
    scored_today: &dyn Fn(&str) -> bool,
    days: i32,
    h: u32,
    config: &ChampionConfig,
) -> Decision {
    let figures: BTreeMap<String, Dm> = window.iter().map(|(m, s)| (m.clone(), dm(s, h))).collect();
    let base_n = window.get(PERSISTENCE).map_or(0, |s| s.n);
    let win = window_text(days, base_n);
    let done = |champion: &str, reason: String| Decision {
        champion: champion.to_string(),
        reason,
        figures: figures.clone(),
    };
    if base_n < config.min_samples {
        return done(
            PERSISTENCE,
            format!(
                "thin data: {win} < {} needed; the baseline stays",
                config.min_samples
            ),
        );
    }
    let challengers: Vec<(&String, &Dm)> = figures
        .iter()
        .filter(|(m, d)| m.as_str() != PERSISTENCE && d.n >= config.min_samples)
        .collect();
    let k = challengers.len().max(1) as f64;
    let crit = normal_quantile(1.0 - config.level / k);
    let test = format!(
        "DM HAC lag {}, level {}% one-sided, Bonferroni over {}: z* {crit:.2}",
        h.max(1) - 1,
        config.level * 100.0,
        challengers.len()
    );
    let significant: Vec<(&String, &Dm)> = challengers
        .iter()
        .copied()
        .filter(|(_, d)| d.z >= crit && d.skill >= config.min_skill)
        .collect();
    let best = |among: &[(&String, &Dm)]| -> Option<(String, Dm)> {
        among
            .iter()
            .max_by(|a, b| {
                a.1.skill
                    .total_cmp(&b.1.skill)
                    .then_with(|| simplicity(b.0).cmp(&simplicity(a.0)))
            })
            .map(|(m, d)| ((*m).clone(), **d))
    };
    let best_text = || {
        challengers
            .iter()
            .max_by(|a, b| a.1.z.total_cmp(&b.1.z))
            .map_or("no challenger with enough scores".to_string(), |(m, d)| {
                format!("best {m}: skill {:.4}, z {:.2}", d.skill, d.z)
            })
    };
    let take_over = |from: &str, why: String| match best(
        &significant
            .iter()
            .copied()
            .filter(|(m, _)| m.as_str() != from)
            .collect::<Vec<_>>(),
    ) {
        Some((m, d)) => done(
            &m,
            format!(
                "{why}{m} replaces {from}: {win}: skill {:.4}, z {:.2} ≥ {crit:.2} ({test})",
                d.skill, d.z
            ),
        ),
        None => done(
            PERSISTENCE,
            format!(
                "{why}persistence: no model significantly better ({}; {win}; {test})",
                best_text()
            ),
        ),
    };
    if incumbent == PERSISTENCE {
        return take_over(PERSISTENCE, String::new());
    }
    let Some(inc) = figures.get(incumbent).copied() else {
        return take_over(
            incumbent,
            format!("{incumbent} demoted: no scores in the window; "),
        );
    };
    if !scored_today(incumbent) {
        return take_over(
            incumbent,
            format!("{incumbent} demoted: no scores on the day; "),
        );
    }
    if inc.skill < 0.0 {
        return take_over(
            incumbent,
            format!(
                "{incumbent} demoted: skill {:.4} < 0 vs persistence over the {win}; ",
                inc.skill
            ),
        );
    }
    // Challengers significantly better than persistence and, by the
    // conservative bound, than the incumbent too.
    let mut beats: Vec<(String, Dm, f64)> = significant
        .iter()
        .filter(|(m, _)| m.as_str() != incumbent)
        .map(|(m, d)| {
            let z = (inc.mean - d.mean) / (inc.se + d.se);
            ((*m).clone(), **d, if z.is_finite() { z } else { 0.0 })
        })
        .filter(|(_, _, z)| *z >= crit)
        .collect();
    beats.sort_by(|a, b| {
        b.1.skill
            .total_cmp(&a.1.skill)
            .then_with(|| simplicity(&a.0).cmp(&simplicity(&b.0)))
    });
    match beats.first() {
        Some((m, d, z)) => done(
            m,
            format!(
                "{m} replaces {incumbent}: {win}: skill {:.4} vs {:.4}, z vs {incumbent} {z:.2} ≥ {crit:.2} (conservative bound; {test})",
                d.skill, inc.skill
            ),
        ),
        None => done(
            incumbent,
            format!(
                "{incumbent} holds: {win}: skill {:.4} ≥ 0, z {:.2}; no challenger significantly better ({test})",
                inc.skill, inc.z
            ),
        ),
    }
}
