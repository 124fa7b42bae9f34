//! Out-of-sample skill of the models and the champion rule, through the
//! whole pipeline graph in memory, on seeded simulated markets:
//! - a pure random walk: every learned model's skill over ≥ 50,000 scores
//!   is ≥ −0.05 at every horizon, and no learned model is ever champion;
//! - the default (regime-switching) market, one day as the demo replays
//!   it: no model below −0.5 at any horizon, intervals cover 80% ± 5%;
//! - in both, no `model reset after divergence` is logged (counted by a
//!   tracing subscriber installed for this test binary).
//!
//! Skill is computed here from the scores, independently of the
//! pipeline's own evaluation: 1 − Σ(p − y)² / Σy² per model and horizon.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once};

use dataflows::harness::run_in_memory;
use dataflows::num::DAY_MS;
use dataflows::sim::{Regime, SimConfig, Simulator};
use dataflows::source::{partition_records, SourceConfig};
use dataflows::{Delivery, Output, PipelineConfig};

/// 2024-01-01T00:00:00Z: whole UTC days.
const START: u64 = 1_704_067_200_000;
const BAR_MS: u64 = 10_000;

/// Counts `model reset after divergence` events from any thread.
struct ResetCounter;

static RESETS: AtomicU64 = AtomicU64::new(0);
static INSTALL: Once = Once::new();

struct Message(bool);

impl tracing::field::Visit for Message {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" && format!("{value:?}") == "model reset after divergence" {
            self.0 = true;
        }
    }
}

impl tracing::Subscriber for ResetCounter {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut m = Message(false);
        event.record(&mut m);
        if m.0 {
            RESETS.fetch_add(1, Ordering::SeqCst);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

fn count_resets() {
    INSTALL.call_once(|| {
        tracing::subscriber::set_global_default(ResetCounter).expect("first subscriber");
    });
}

fn run_market(regime: Regime, symbols: usize, hours: u64, trades_per_sec: f64) -> Vec<Delivery> {
    let mut sim = SimConfig::default_market(42, START).with_regime(regime);
    sim.symbols.truncate(symbols);
    sim.trades_per_sec = trades_per_sec;
    let end = START + hours * 3_600_000;
    let payloads = Simulator::new(sim)
        .take_while(|t| t.ts_ms < end)
        .map(|t| (t.symbol.clone(), t.to_json().into_bytes()));
    let records = Arc::new(partition_records(payloads, 4));
    let mut config = PipelineConfig {
        source: SourceConfig::new()
            .with_idle_lag_ms(None)
            .with_clock(Arc::new(move || end + DAY_MS)),
        ..PipelineConfig::default()
    };
    config.bars.interval_ms = BAR_MS;
    run_in_memory(records, 4, 2, config).expect("pipeline runs")
}

#[derive(Default, Debug)]
struct Acc {
    n: u64,
    sse: f64,
    sse_base: f64,
    intervals: u64,
    covered: u64,
}

/// Per (model, horizon): scores, skill and coverage, from the score rows.
fn skills(d: &[Delivery]) -> BTreeMap<(String, u32), Acc> {
    let mut out: BTreeMap<(String, u32), Acc> = BTreeMap::new();
    for o in d.iter().flat_map(Delivery::inserted) {
        if let Output::Score(scored) = o {
            let s = &scored.score;
            let a = out.entry((s.model.clone(), s.horizon_bars)).or_default();
            let (p, y) = (s.predicted_return.0, s.realized_return.0);
            a.n += 1;
            a.sse += (p - y) * (p - y);
            a.sse_base += y * y;
            if let Some(c) = s.covered {
                a.intervals += 1;
                a.covered += u64::from(c);
            }
        }
    }
    out
}

fn skill(a: &Acc) -> f64 {
    1.0 - a.sse / a.sse_base
}

fn coverage(a: &Acc) -> f64 {
    a.covered as f64 / a.intervals.max(1) as f64
}

/// The table, for the test log.
fn print(what: &str, table: &BTreeMap<(String, u32), Acc>) {
    for ((model, h), a) in table {
        eprintln!(
            "{what}: {model:>12} h={h:<2} scores {:>6} skill {:>8.4} coverage {:.4}",
            a.n,
            skill(a),
            coverage(a)
        );
    }
    eprintln!("{what}: model resets {}", RESETS.load(Ordering::SeqCst));
}

#[test]
fn on_a_random_walk_learned_models_tend_to_zero_skill_and_never_win() {
    count_resets();
    let d = run_market(Regime::RandomWalk, 3, 50, 1.0);
    let table = skills(&d);
    print("random walk", &table);
    assert_eq!(table.len(), 6 * 3, "{:?}", table.keys());
    for ((model, h), a) in &table {
        assert!(a.n >= 50_000, "{model} h={h}: {} scores", a.n);
        if model == "persistence" {
            continue;
        }
        assert!(
            skill(a) >= -0.05,
            "{model} h={h}: skill {:.4} over {} scores",
            skill(a),
            a.n
        );
    }
    // Champions, in every evaluation and every champion row ever emitted.
    let mut evaluated_days = 0;
    for o in d.iter().flat_map(Delivery::inserted) {
        match o {
            Output::Champion(k, c) => assert_eq!(c.model, "persistence", "{k:?}: {c:?}"),
            Output::Evaluation(e) if e.evaluation.winner => {
                evaluated_days += 1;
                assert_eq!(e.evaluation.model, "persistence", "{e:?}");
            }
            _ => {}
        }
    }
    // Two full days and a partial third, for 3 symbols × 3 horizons.
    assert_eq!(evaluated_days, 3 * 3 * 3);
    assert_eq!(RESETS.load(Ordering::SeqCst), 0, "model resets");
}

#[test]
fn on_the_default_market_no_model_does_harm_and_intervals_cover() {
    count_resets();
    // One day of the demo's market: five symbols, its history trade rate.
    let d = run_market(Regime::Switching, 5, 24, 0.5);
    let table = skills(&d);
    print("default market", &table);
    assert_eq!(table.len(), 6 * 3);
    for ((model, h), a) in &table {
        assert!(a.n >= 30_000, "{model} h={h}: {} scores", a.n);
        assert!(skill(a) >= -0.5, "{model} h={h}: skill {:.4}", skill(a));
        assert!(
            (coverage(a) - 0.8).abs() <= 0.05,
            "{model} h={h}: coverage {:.4} over {}",
            coverage(a),
            a.intervals
        );
    }
    assert_eq!(RESETS.load(Ordering::SeqCst), 0, "model resets");
}
