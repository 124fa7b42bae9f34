//! Out-of-sample skill of every model, per dataset and horizon, measured by
//! running the real pipeline graph in memory (`harness::run_in_memory`:
//! bars, features, models, prequential scores, daily evaluation, champions).
//!
//! Datasets: the simulator in three regimes (pure random walk, the default
//! switching market, momentum) and every real OHLCV CSV found under the
//! real-data cache (`scripts/fetch-real-data.sh`), replayed as the four
//! trades per bar `cryptoflow replay` makes of it, with bars of the file's
//! own length. Prints one JSON line per (dataset, model, horizon): samples,
//! skill (1 − Σe²/Σy², persistence's errors on the same scores), interval
//! coverage, MAE, hit rate, and per (dataset, horizon) one line for the
//! served predictions (the champion's, as the evaluations table's winners
//! say), with how many days each model was champion.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Parser;
use serde_json::json;

use cryptoflow::replay::parse_interval;
use cryptoflow::replay::rows::{candle_ticks, OhlcvHeader};
use dataflows::harness::run_in_memory;
use dataflows::num::DAY_MS;
use dataflows::sim::{Regime, SimConfig, Simulator};
use dataflows::source::{partition_records, SourceConfig};
use dataflows::tick::ValidationLimits;
use dataflows::{Delivery, Output, PipelineConfig};

#[derive(Parser)]
#[command(about = "Out-of-sample skill per dataset, model and horizon (JSON lines)")]
struct Args {
    /// Directory of the real CSVs (default: $CRYPTOFLOW_CACHE/realdata).
    #[arg(long)]
    realdata: Option<PathBuf>,
    /// Only datasets whose name contains this.
    #[arg(long)]
    only: Option<String>,
    /// Hours of simulated event time per regime.
    #[arg(long, default_value_t = 50)]
    sim_hours: u64,
    /// Simulated bar length, ms (the demo's 10 s).
    #[arg(long, default_value_t = 10_000)]
    sim_bar_ms: u64,
    /// Simulated trades per second per symbol.
    #[arg(long, default_value_t = 2.0)]
    sim_rate: f64,
    /// At most this many rows of each real file (its last ones); 0 = all.
    #[arg(long, default_value_t = 0)]
    max_rows: usize,
    /// Worker threads.
    #[arg(short, long, default_value_t = 1)]
    workers: usize,
}

/// A UTC midnight, so simulated days are whole.
const SIM_START: u64 = 1_704_067_200_000; // 2024-01-01T00:00:00Z

#[derive(Default, Clone, Copy)]
struct Acc {
    n: u64,
    sse: f64,
    sse_base: f64,
    sae: f64,
    hits: u64,
    with_interval: u64,
    covered: u64,
}

impl Acc {
    fn add(&mut self, pred: f64, y: f64, covered: Option<bool>) {
        let e = pred - y;
        self.n += 1;
        self.sse += e * e;
        self.sse_base += y * y;
        self.sae += e.abs();
        self.hits += u64::from(pred * y > 0.0);
        if let Some(c) = covered {
            self.with_interval += 1;
            self.covered += u64::from(c);
        }
    }
    fn json(&self) -> serde_json::Value {
        let n = self.n.max(1) as f64;
        json!({
            "samples": self.n,
            "skill": round(1.0 - self.sse / self.sse_base.max(f64::MIN_POSITIVE)),
            "coverage": (self.with_interval > 0).then(|| round(self.covered as f64 / self.with_interval as f64)),
            "mae": self.sae / n,
            "hit_rate": round(self.hits as f64 / n),
        })
    }
}

fn round(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}

fn run(records: Vec<(String, Vec<u8>)>, bar_ms: u64, workers: usize) -> Result<Vec<Delivery>> {
    let records = Arc::new(partition_records(records, 4));
    let mut config = PipelineConfig {
        source: SourceConfig::new()
            .with_idle_lag_ms(None)
            .with_clock(Arc::new(|| u64::MAX / 4)),
        ..PipelineConfig::default()
    };
    config.bars.interval_ms = bar_ms;
    run_in_memory(records, 4, workers, config).map_err(anyhow::Error::msg)
}

/// Per (model, horizon) metrics, and the served (champion's) predictions per horizon.
fn report(dataset: &str, bar_ms: u64, deliveries: &[Delivery], seconds: f64) {
    // Winners per (symbol, horizon): the champion from the end of that day.
    let mut winners: BTreeMap<(String, u32), BTreeMap<i32, String>> = BTreeMap::new();
    for o in deliveries.iter().flat_map(Delivery::inserted) {
        if let Output::Evaluation(e) = o {
            if e.evaluation.winner {
                winners
                    .entry((e.symbol.clone(), e.horizon_bars))
                    .or_default()
                    .insert(e.day, e.evaluation.model.clone());
            }
        }
    }
    let champion_at = |symbol: &str, h: u32, made_at: u64| -> &str {
        let day = (made_at / DAY_MS) as i32 - 1;
        winners
            .get(&(symbol.to_string(), h))
            .and_then(|w| w.range(..=day).next_back())
            .map_or("persistence", |(_, m)| m.as_str())
    };
    let mut per_model: BTreeMap<(String, u32), Acc> = BTreeMap::new();
    let mut served: BTreeMap<u32, Acc> = BTreeMap::new();
    let mut served_by: BTreeMap<u32, BTreeMap<String, u64>> = BTreeMap::new();
    for o in deliveries.iter().flat_map(Delivery::inserted) {
        if let Output::Score(scored) = o {
            let s = &scored.score;
            let (p, y) = (s.predicted_return.0, s.realized_return.0);
            per_model
                .entry((s.model.clone(), s.horizon_bars))
                .or_default()
                .add(p, y, s.covered);
            if champion_at(&s.symbol, s.horizon_bars, s.made_at_ms) == s.model {
                served
                    .entry(s.horizon_bars)
                    .or_default()
                    .add(p, y, s.covered);
                *served_by
                    .entry(s.horizon_bars)
                    .or_default()
                    .entry(s.model.clone())
                    .or_default() += 1;
            }
        }
    }
    for ((model, h), acc) in &per_model {
        let mut line = acc.json();
        line["bench"] = json!("skill");
        line["dataset"] = json!(dataset);
        line["bar_ms"] = json!(bar_ms);
        line["model"] = json!(model);
        line["horizon_bars"] = json!(h);
        println!("{line}");
    }
    for (h, acc) in &served {
        let mut line = acc.json();
        line["bench"] = json!("skill");
        line["dataset"] = json!(dataset);
        line["bar_ms"] = json!(bar_ms);
        line["model"] = json!("served");
        line["horizon_bars"] = json!(h);
        line["served_scores_by_model"] = json!(served_by.get(h));
        line["seconds"] = json!(round(seconds));
        println!("{line}");
    }
}

fn sim_dataset(args: &Args, name: &str, regime: Regime) -> Result<()> {
    let mut cfg = SimConfig::default_market(7, SIM_START).with_regime(regime);
    cfg.trades_per_sec = args.sim_rate;
    let end = SIM_START + args.sim_hours * 3_600_000;
    let records: Vec<(String, Vec<u8>)> = Simulator::new(cfg)
        .take_while(|t| t.ts_ms < end)
        .map(|t| (t.symbol.clone(), t.to_json().into_bytes()))
        .collect();
    let started = std::time::Instant::now();
    let d = run(records, args.sim_bar_ms, args.workers)?;
    report(name, args.sim_bar_ms, &d, started.elapsed().as_secs_f64());
    Ok(())
}

/// The symbol and bar length in a file name such as
/// `ETHBTC-1m-freqtrade.csv`, read as `cryptoflow replay` reads them.
fn name_hints(path: &Path) -> Option<(String, u64)> {
    let name = path.file_name()?.to_str()?;
    let mut parts = name.split(['-', '.', '_']);
    let symbol = cryptoflow::symbols::canonical(parts.next()?)?;
    Some((symbol, parse_interval(parts.next()?)?))
}

/// Kafka records as (key, payload).
type Records = Vec<(String, Vec<u8>)>;

/// The ticks `cryptoflow replay` makes of a generic OHLCV file, and the
/// file's bar length.
pub fn csv_ticks(path: &Path, max_rows: usize) -> Result<(Records, u64)> {
    let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    let (symbol, interval) = name_hints(path).context("no symbol and interval in the file name")?;
    let mut lines = text.lines();
    let header =
        OhlcvHeader::parse(lines.next().context("empty file")?).map_err(anyhow::Error::msg)?;
    let rows: Vec<&str> = lines.filter(|l| !l.trim().is_empty()).collect();
    let skip = if max_rows > 0 {
        rows.len().saturating_sub(max_rows)
    } else {
        0
    };
    let limits = ValidationLimits {
        now_ms: u64::MAX / 4,
        max_future_ms: 60_000,
    };
    let mut out = Vec::new();
    for (i, line) in rows.iter().enumerate().skip(skip) {
        let (_, candle) = header
            .bar(line, interval)
            .map_err(|e| anyhow::anyhow!("{}:{}: {e}", path.display(), i + 2))?;
        for t in candle_ticks(&candle, &symbol, "replay", limits).map_err(anyhow::Error::msg)? {
            out.push((t.key, t.payload));
        }
    }
    Ok((out, interval))
}

fn main() -> Result<()> {
    let args = Args::parse();
    let wanted = |name: &str| args.only.as_ref().is_none_or(|o| name.contains(o.as_str()));
    for (name, regime) in [
        ("sim:random_walk", Regime::RandomWalk),
        ("sim:default_market", Regime::Switching),
        ("sim:momentum", Regime::Momentum),
    ] {
        if wanted(name) {
            sim_dataset(&args, name, regime)?;
        }
    }
    let dir = args.realdata.clone().unwrap_or_else(|| {
        std::env::var_os("CRYPTOFLOW_CACHE")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/cryptoflow")
            })
            .join("realdata")
    });
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "csv"))
            .collect(),
        Err(_) if args.only.is_none() => {
            eprintln!(
                "no real data under {} (scripts/fetch-real-data.sh)",
                dir.display()
            );
            Vec::new()
        }
        Err(e) => bail!("{}: {e}", dir.display()),
    };
    files.sort();
    for path in files {
        let name = format!(
            "real:{}",
            path.file_stem().and_then(|s| s.to_str()).unwrap_or("?")
        );
        if !wanted(&name) {
            continue;
        }
        let (records, interval) = csv_ticks(&path, args.max_rows)?;
        let started = std::time::Instant::now();
        let d = run(records, interval, args.workers)?;
        report(&name, interval, &d, started.elapsed().as_secs_f64());
    }
    Ok(())
}
