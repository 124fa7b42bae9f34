//! Model cost: bytes of state per (symbol, horizon) instance of each online
//! model and per symbol for the whole predictor, measured with a counting
//! allocator, and bar updates per second of the predictor on one worker
//! (features, every model on every horizon, scoring, intervals), and the
//! size and cost of that state in a snapshot. Prints one JSON line per
//! result.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;

use clap::Parser;
use dataflows::features::FeatureState;
use dataflows::models::{ModelParams, Online, OnlineModel};
use dataflows::predict::{on_bar, PredictConfig, Predicted, SymbolSnapshot, SymbolState};

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

fn main() {
    let args = Args::parse();
    let bars = dataflows::sim::random_bars(1, args.bars);
    let config = PredictConfig::default();

    // Each model alone: heap bytes per instance after warming it up.
    let mut features = FeatureState::new();
    let xs: Vec<_> = bars.iter().filter_map(|b| features.update(b)).collect();
    for name in ModelParams::default().names() {
        let before = LIVE.load(Ordering::Relaxed);
        let mut models: Vec<Online> = (0..1_000)
            .map(|_| {
                ModelParams::default()
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
        // The models sit inline in the vector (an [`Online`] is as large as
        // its largest kind), so the vector's own buffer is counted too.
        let bytes = (LIVE.load(Ordering::Relaxed) - before) as f64 / 1_000.0;
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
    let mut out = Predicted::default();
    let t = Instant::now();
    for bar in &bars {
        for st in states.iter_mut() {
            on_bar(st, bar, &mut out);
            out.current.clear();
            out.scores.clear();
            out.features.clear();
        }
    }
    let secs = t.elapsed().as_secs_f64();
    let bytes = (LIVE.load(Ordering::Relaxed) - before) as f64 / args.symbols as f64;
    let models = ModelParams::default().names().len() * config.horizons.len();
    println!(
        "{}",
        serde_json::json!({
            "bench": "predictor", "symbols": args.symbols, "bars_per_symbol": args.bars,
            "horizons": config.horizons, "models_per_symbol": models,
            "bytes_per_symbol": bytes.round(), "bytes_per_symbol_model": (bytes / models as f64).round(),
            "bar_updates_per_sec_per_worker": ((args.symbols * args.bars) as f64 / secs).round(),
        })
    );

    // The same states as a snapshot stores them (issue 14): bytes per
    // symbol, and the time to take (copy + encode) and to restore (decode +
    // rebuild) one symbol's state, what a snapshot stalls its operator by.
    let t = Instant::now();
    let encoded: Vec<Vec<u8>> = states
        .iter()
        .map(|st| dataflows::snapshot::encode(&st.snapshot()))
        .collect();
    let take_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    for bytes in &encoded {
        let snap: SymbolSnapshot = dataflows::snapshot::decode(bytes).expect("own encoding");
        SymbolState::restore(&config, snap).expect("same configuration");
    }
    let restore_secs = t.elapsed().as_secs_f64();
    let total: usize = encoded.iter().map(Vec::len).sum();
    let n = args.symbols as f64;
    println!(
        "{}",
        serde_json::json!({
            "bench": "predictor_snapshot", "symbols": args.symbols,
            "bytes_per_symbol": (total as f64 / n).round(),
            "take_us_per_symbol": (take_secs * 1e6 / n * 10.0).round() / 10.0,
            "restore_us_per_symbol": (restore_secs * 1e6 / n * 10.0).round() / 10.0,
        })
    );
}
