//! Model cost: bytes of state per (symbol, horizon) instance of each online
//! model and per symbol for the whole predictor, measured with a counting
//! allocator, and bar updates per second of the predictor on one worker
//! (features, every model on every horizon, scoring, intervals). Prints one
//! JSON line per result.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;

use clap::Parser;
use dataflows::bars::flat_bar;
use dataflows::features::FeatureState;
use dataflows::models::{ModelSet, OnlineModel};
use dataflows::num::F64;
use dataflows::predict::{on_bar, PredictConfig, SymbolState};
use dataflows::sim::Rng;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

#[derive(Parser)]
struct Args {
    /// Symbols in the throughput and memory runs.
    #[arg(long, default_value_t = 200)]
    symbols: usize,
    /// Bars per symbol.
    #[arg(long, default_value_t = 2_000)]
    bars: usize,
}

fn random_bars(seed: u64, n: usize) -> Vec<dataflows::bars::Bar> {
    let mut rng = Rng::new(seed);
    let mut price = 100.0;
    (0..n)
        .map(|i| {
            price *= (1e-3 * rng.normal()).exp();
            let mut b = flat_bar("SYM-USD", i as u64 * 1_000, 1_000, F64(price));
            b.high = F64(price * (1.0 + 5e-4 * rng.uniform()));
            b.low = F64(price * (1.0 - 5e-4 * rng.uniform()));
            b.volume = F64(1.0 + rng.uniform());
            b.buy_volume = F64(b.volume.0 * rng.uniform());
            b.trades = 3;
            b.filled = false;
            b
        })
        .collect()
}

fn main() {
    let args = Args::parse();
    let bars = random_bars(1, args.bars);
    let config = PredictConfig::default();

    // Each model alone: heap bytes per instance after warming it up.
    let mut features = FeatureState::new(0);
    let xs: Vec<_> = bars.iter().filter_map(|b| features.update(b)).collect();
    for name in ModelSet::default().names() {
        let before = LIVE.load(Ordering::Relaxed);
        let mut models: Vec<Box<dyn OnlineModel>> = (0..1_000)
            .map(|_| {
                ModelSet::default()
                    .instantiate(1)
                    .into_iter()
                    .find(|m| m.name() == name)
                    .expect("model exists")
            })
            .collect();
        for m in models.iter_mut() {
            for w in xs.windows(2).take(50) {
                m.observe(&w[0]);
                m.learn(&w[0], w[1].ret[0]);
            }
        }
        let bytes = (LIVE.load(Ordering::Relaxed) - before) as f64 / 1_000.0
            + std::mem::size_of::<Box<dyn OnlineModel>>() as f64;
        let m = &mut models[0];
        let t = Instant::now();
        let mut sink = 0.0;
        let rounds = 20;
        for _ in 0..rounds {
            for w in xs.windows(2) {
                m.observe(&w[0]);
                sink += m.predict(&w[0]).ret;
                m.learn(&w[0], w[1].ret[0]);
            }
        }
        let updates = (rounds * (xs.len() - 1)) as f64;
        println!(
            "{}",
            serde_json::json!({
                "bench": "models", "model": name, "bytes_per_instance": bytes.round(),
                "updates_per_sec": (updates / t.elapsed().as_secs_f64()).round(),
                "checksum_finite": sink.is_finite(),
            })
        );
        drop(models);
    }

    // The whole predictor per symbol: features + 6 models × 3 horizons +
    // residual windows + pending predictions, in steady state.
    let before = LIVE.load(Ordering::Relaxed);
    let mut states: Vec<SymbolState> = (0..args.symbols)
        .map(|_| SymbolState::new(&config))
        .collect();
    let mut out = Vec::new();
    let t = Instant::now();
    for bar in &bars {
        for st in states.iter_mut() {
            on_bar(st, bar, &config, &mut out);
            out.clear();
        }
    }
    let secs = t.elapsed().as_secs_f64();
    let bytes = (LIVE.load(Ordering::Relaxed) - before) as f64 / args.symbols as f64;
    let models = ModelSet::default().names().len() * config.horizons.len();
    println!(
        "{}",
        serde_json::json!({
            "bench": "predictor", "symbols": args.symbols, "bars_per_symbol": args.bars,
            "horizons": config.horizons, "models_per_symbol": models,
            "bytes_per_symbol": bytes.round(), "bytes_per_symbol_model": (bytes / models as f64).round(),
            "bar_updates_per_sec_per_worker": ((args.symbols * args.bars) as f64 / secs).round(),
        })
    );
}
