//! Scratch diagnosis (not committed): runs features + models prequentially on
//! simulated bars and reports skill and how often forecasts hit the clamp.
use dataflows::bars::{aggregate, bar_bounds, fill_gap, Bar, BarConfig};
use dataflows::features::FeatureState;
use dataflows::models::ModelParams;
use dataflows::sim::{Regime, SimConfig, Simulator};
use dataflows::tick::Tick;
use std::collections::{BTreeMap, VecDeque};

fn bars(regime: Regime, hours: u64, bar_ms: u64) -> BTreeMap<String, Vec<Bar>> {
    let start = 1_704_067_200_000u64;
    let mut cfg = SimConfig::default_market(7, start).with_regime(regime);
    cfg.trades_per_sec = 2.0;
    let end = start + hours * 3_600_000;
    let mut groups: BTreeMap<(String, u64), Vec<Tick>> = BTreeMap::new();
    for t in Simulator::new(cfg).take_while(|t| t.ts_ms < end) {
        let (_, e) = bar_bounds(t.ts_ms, bar_ms);
        groups.entry((t.symbol.clone(), e)).or_default().push(t);
    }
    let bc = BarConfig {
        interval_ms: bar_ms,
        max_fill: 300,
    };
    let mut out: BTreeMap<String, Vec<Bar>> = BTreeMap::new();
    let mut last: BTreeMap<String, (u64, dataflows::num::F64)> = BTreeMap::new();
    for ((s, e), mut ticks) in groups {
        let b = aggregate(&s, e - bar_ms, e, &mut ticks);
        let (fill, after_gap) = fill_gap(&s, last.get(&s).copied(), b.start_ms, bc);
        let v = out.entry(s.clone()).or_default();
        v.extend(fill);
        last.insert(s, (b.end_ms, b.close));
        v.push(Bar { after_gap, ..b });
    }
    out
}

fn main() {
    let bar_ms = 10_000;
    for (name, regime) in [
        ("rw", Regime::RandomWalk),
        ("default", Regime::Switching),
        ("momentum", Regime::Momentum),
    ] {
        let all = bars(regime, 26, bar_ms);
        let params = ModelParams::default();
        let names = params.names();
        for h in [1u32, 5, 15] {
            let mut sse = vec![0.0; names.len()];
            let mut sse0 = 0.0;
            let mut clamp = vec![0u64; names.len()];
            let mut big = vec![0u64; names.len()];
            let mut n = 0u64;
            let mut resets = vec![0u64; names.len()];
            for bars in all.values() {
                let mut fs = FeatureState::new();
                let mut models = params.instantiate(h);
                let mut pend: VecDeque<(usize, dataflows::features::Features, Vec<f64>)> =
                    VecDeque::new();
                let closes: Vec<f64> = bars.iter().map(|b| b.close.0).collect();
                for (i, b) in bars.iter().enumerate() {
                    let x = fs.update(b);
                    while pend.front().is_some_and(|p| p.0 + h as usize == i) {
                        let (j, px, preds) = pend.pop_front().unwrap();
                        let y = (closes[i] / closes[j]).ln();
                        n += 1;
                        sse0 += y * y;
                        for (m, model) in models.iter_mut().enumerate() {
                            sse[m] += (preds[m] - y).powi(2);
                            if model.learn(&px, y) {
                                resets[m] += 1;
                            }
                        }
                    }
                    let Some(x) = x else { continue };
                    let bound = 10.0 * x.rvol120.max(x.rvol30) * (h as f64).sqrt();
                    let vol = x.rvol30 * (h as f64).sqrt();
                    let mut preds = Vec::new();
                    for (m, model) in models.iter_mut().enumerate() {
                        model.observe(&x);
                        let f = model.predict(&x).ret;
                        if f.abs() > bound {
                            clamp[m] += 1;
                        }
                        if f.abs() > vol {
                            big[m] += 1;
                        }
                        preds.push(f.clamp(-bound, bound));
                    }
                    pend.push_back((i, x, preds));
                }
            }
            for (m, nm) in names.iter().enumerate() {
                println!("{name:9} h={h:2} {nm:12} skill {:8.3}  clamped {:6.3}%  |f|>1vol {:6.2}%  resets {}", 1.0 - sse[m] / sse0, 100.0 * clamp[m] as f64 / n as f64, 100.0 * big[m] as f64 / n as f64, resets[m]);
            }
        }
    }
}
