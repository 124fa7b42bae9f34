//! The `cryptoflow` command line. Parsing and validation of flags happen
//! here (clap); everything else lives in the library. `anyhow` only here.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use cryptoflow::demo::{demo, DemoOptions};
use cryptoflow::feed::{run_sim_feed, FeedOptions};
use cryptoflow::kafka::{self, StartFrom};
use cryptoflow::pipeline::{run, shutdown_signal, Cluster, RunOptions, Stop};

mod cli {
    pub mod tables;
}
use cli::tables as tables_cli;

#[derive(Parser)]
#[command(
    name = "cryptoflow",
    version,
    about = "Real-time cryptocurrency prediction on timely/differential dataflow"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Consume ticks from Kafka, predict, write Delta tables and serve HTTP.
    Run(RunArgs),
    /// Everything on embedded defaults: a local broker, a simulated feed, `run` on 2 workers.
    Demo(DemoArgs),
    /// Produce simulated ticks into a topic (real time, or --max-speed).
    Simulate(SimulateArgs),
    /// Send ticks (JSON, one per line) from the arguments or stdin, keyed by symbol.
    Produce(ProduceArgs),
    /// Look at and maintain the Delta warehouse.
    Tables {
        #[command(subcommand)]
        command: tables_cli::TablesCommand,
    },
    /// Topic administration.
    Topic {
        #[command(subcommand)]
        command: TopicCommand,
    },
}

#[derive(Subcommand)]
enum TopicCommand {
    /// Create a topic (no error if it exists).
    Create {
        /// Topic name.
        name: String,
        /// Kafka bootstrap servers.
        #[arg(long, default_value = "127.0.0.1:9092")]
        brokers: String,
        /// Partition count.
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(i32).range(1..=10_000))]
        partitions: i32,
    },
}

/// Timely's cluster flags, accepted by `run` so the same binary forms a
/// multi-process cluster.
#[derive(Args, Clone)]
struct ClusterArgs {
    /// Worker threads per process.
    #[arg(short = 'w', long = "workers", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=256))]
    workers: u16,
    /// Number of processes in the cluster.
    #[arg(short = 'n', long = "processes", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1024))]
    processes: u16,
    /// This process's index (0-based).
    #[arg(short = 'p', long = "process", default_value_t = 0)]
    process: u16,
    /// File with one host:port per process (default 127.0.0.1:2101+i).
    #[arg(long)]
    hostfile: Option<PathBuf>,
}

#[derive(Args)]
struct RunArgs {
    /// Kafka bootstrap servers, HOST:PORT[,HOST:PORT…].
    #[arg(long)]
    brokers: String,
    /// Topic with ticks.
    #[arg(long, default_value = "ticks")]
    topic: String,
    #[command(flatten)]
    cluster: ClusterArgs,
    /// Warehouse root (Delta tables).
    #[arg(long, default_value = "./data")]
    data_dir: PathBuf,
    /// HTTP listen address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    http: SocketAddr,
    /// Do not start the HTTP server.
    #[arg(long)]
    no_http: bool,
    /// Allowed lateness behind a partition's newest event time, ms.
    #[arg(long, default_value_t = 2_000)]
    lateness_ms: u64,
    /// Allowed event-time skew ahead of the wall clock, ms.
    #[arg(long, default_value_t = 60_000)]
    max_future_ms: u64,
    /// Bar interval, ms.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..=86_400_000))]
    bar_ms: u64,
    /// Prediction horizons in bars, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1,5,15", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    horizons: Vec<u32>,
    /// Where to start reading each partition.
    #[arg(long, value_enum, default_value_t = StartFrom::Earliest)]
    from: StartFrom,
    /// Exit once every partition has been read to its end (backtests, benchmarks).
    #[arg(long)]
    until_end: bool,
    /// Wall time between warehouse commits at the most, ms.
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(10..=3_600_000))]
    commit_interval_ms: u64,
    /// Event time one commit (epoch) covers at the most, ms.
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1..=86_400_000))]
    epoch_ms: u64,
    /// Table versions between automatic Delta checkpoints (0: never).
    #[arg(long, default_value_t = cryptoflow::warehouse::DEFAULT_CHECKPOINT_EVERY, value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    checkpoint_every: u64,
}

#[derive(Args)]
struct DemoArgs {
    /// HTTP listen address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    http: SocketAddr,
    /// Warehouse root (Delta tables) and broker log.
    #[arg(long, default_value = "./data")]
    data_dir: PathBuf,
    /// Worker threads.
    #[arg(short = 'w', long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=256))]
    workers: u16,
    /// Simulator seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Use this broker instead of starting a local one.
    #[arg(long)]
    brokers: Option<String>,
    /// Start live, without replaying simulated history first.
    #[arg(long)]
    no_history: bool,
    /// Table versions between automatic Delta checkpoints (0: never).
    #[arg(long, default_value_t = cryptoflow::warehouse::DEFAULT_CHECKPOINT_EVERY, value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    checkpoint_every: u64,
}

#[derive(Args)]
struct ProduceArgs {
    /// Kafka bootstrap servers.
    #[arg(long)]
    brokers: String,
    /// Topic.
    #[arg(long, default_value = "ticks")]
    topic: String,
    /// Messages to send; with none, lines are read from stdin.
    messages: Vec<String>,
}

#[derive(Args)]
struct SimulateArgs {
    /// Kafka bootstrap servers.
    #[arg(long)]
    brokers: String,
    /// Topic (created with --partitions if missing).
    #[arg(long, default_value = "ticks")]
    topic: String,
    /// Partitions when creating the topic.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(i32).range(1..=10_000))]
    partitions: i32,
    /// Stop after this many ticks.
    #[arg(long)]
    ticks: Option<u64>,
    /// Produce as fast as possible (event time starts at --start-ms or now).
    #[arg(long)]
    max_speed: bool,
    /// Mean trades per second per symbol.
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    /// Seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// First event time, epoch ms (default: now).
    #[arg(long)]
    start_ms: Option<u64>,
}

fn main() -> std::process::ExitCode {
    match real_main() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line: the error and its causes, joined.
            eprintln!("Error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn real_main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                "info,rdkafka=warn,deltalake=warn,deltalake_core=warn,buoyant_kernel=warn,buoyant_kernel_engine=warn".into()
            }),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Run(a) => {
            let RunArgs {
                brokers,
                topic,
                cluster,
                data_dir,
                http,
                no_http,
                lateness_ms,
                max_future_ms,
                bar_ms,
                horizons,
                from,
                until_end,
                commit_interval_ms,
                epoch_ms,
                checkpoint_every,
            } = a;
            let ClusterArgs {
                workers,
                processes,
                process,
                hostfile,
            } = cluster;
            anyhow::ensure!(
                process < processes,
                "--process {process} must be below --processes {processes}"
            );
            let summary = run(
                RunOptions {
                    brokers,
                    topic,
                    cluster: Cluster {
                        workers: workers.into(),
                        processes: processes.into(),
                        process: process.into(),
                        hostfile,
                    },
                    data_dir,
                    http: (!no_http).then_some(http),
                    lateness_ms,
                    max_future_ms,
                    bar_ms,
                    horizons,
                    from,
                    until_end,
                    commit_interval: Duration::from_millis(commit_interval_ms),
                    epoch_ms,
                    checkpoint_every,
                },
                Stop::new(),
            )?;
            println!("{}", serde_json::to_string(&summary)?);
        }
        Command::Demo(a) => {
            let DemoArgs {
                http,
                data_dir,
                workers,
                seed,
                brokers,
                no_history,
                checkpoint_every,
            } = a;
            demo(
                DemoOptions {
                    http,
                    data_dir,
                    workers: workers.into(),
                    seed,
                    brokers,
                    history: !no_history,
                    checkpoint_every,
                },
                Stop::new(),
            )?;
        }
        Command::Simulate(a) => {
            let SimulateArgs {
                brokers,
                topic,
                partitions,
                ticks,
                max_speed,
                rate,
                seed,
                start_ms,
            } = a;
            anyhow::ensure!(
                rate > 0.0 && rate.is_finite(),
                "--rate must be a positive number"
            );
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(kafka::ensure_topic(&brokers, &topic, partitions))?;
            let stop = Stop::new();
            let signal_stop = stop.clone();
            std::thread::spawn(move || {
                if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    rt.block_on(shutdown_signal());
                    signal_stop.trigger();
                }
            });
            let opts = FeedOptions {
                brokers,
                topic,
                seed,
                trades_per_sec: rate,
                max_ticks: ticks,
                max_speed,
                start_ms,
                history_ms: 0,
                history_trades_per_sec: rate,
            };
            let summary = run_sim_feed(&opts, &stop).context("simulated feed")?;
            println!("{}", serde_json::to_string(&summary)?);
            anyhow::ensure!(
                summary.failed == 0,
                "{} ticks were not delivered",
                summary.failed
            );
        }
        Command::Produce(a) => {
            let ProduceArgs {
                brokers,
                topic,
                messages,
            } = a;
            kafka::partition_count(&brokers, &topic)?;
            let producer = kafka::TickProducer::new(&brokers, &topic)?;
            let send = |line: &str| -> anyhow::Result<()> {
                // Key by symbol when the line has one, so a symbol stays in one partition;
                // a line that is not a tick is still sent: the pipeline rejects it with a reason.
                let key = serde_json::from_str::<serde_json::Value>(line)
                    .ok()
                    .and_then(|v| v.get("symbol").and_then(|s| s.as_str()).map(str::to_string))
                    .unwrap_or_default();
                producer.send(&key, line.as_bytes())?;
                Ok(())
            };
            let mut sent = 0u64;
            if messages.is_empty() {
                for line in std::io::stdin().lines() {
                    let line = line.context("reading stdin")?;
                    if !line.trim().is_empty() {
                        send(&line)?;
                        sent += 1;
                    }
                }
            } else {
                for m in &messages {
                    send(m)?;
                    sent += 1;
                }
            }
            producer.flush(Duration::from_secs(30))?;
            let failed = producer
                .stats()
                .failed
                .load(std::sync::atomic::Ordering::Relaxed);
            anyhow::ensure!(
                failed == 0,
                "{failed} of {sent} messages were not delivered"
            );
            eprintln!("sent {sent} message(s) to {topic}");
        }
        Command::Tables { command } => tables_cli::run(command)?,
        Command::Topic {
            command:
                TopicCommand::Create {
                    name,
                    brokers,
                    partitions,
                },
        } => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(kafka::ensure_topic(&brokers, &name, partitions))?;
            println!("topic {name} ready");
        }
    }
    Ok(())
}
