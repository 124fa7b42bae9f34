//! The `cryptoflow` command line. Parsing and validation of flags happen
//! here (clap); everything else lives in the library. `anyhow` only here.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use cryptoflow::cluster::Cluster;
use cryptoflow::demo::{demo, DemoOptions};
use cryptoflow::kafka::{self, StartFrom};
use cryptoflow::pipeline::{run, RunOptions};
use cryptoflow::shutdown::Stop;

mod cli {
    pub mod ingest;
    pub mod jobs;
    pub mod produce;
    pub mod state;
    pub mod tables;
}
use cli::ingest as ingest_cli;
use cli::jobs as jobs_cli;
use cli::produce as produce_cli;
use cli::state as state_cli;
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
    /// A librdkafka property for every Kafka client of this command,
    /// KEY=VALUE (repeatable), e.g. security.protocol=sasl_ssl,
    /// sasl.mechanisms=SCRAM-SHA-512, sasl.username=…
    #[arg(long = "kafka-opt", value_name = "KEY=VALUE", global = true)]
    kafka_opt: Vec<String>,
    /// A file of librdkafka properties, KEY=VALUE per line (# comments),
    /// read before --kafka-opt; keeps secrets off the command line.
    #[arg(
        long = "kafka-config",
        value_name = "FILE",
        global = true,
        env = "CRYPTOFLOW_KAFKA_CONFIG"
    )]
    kafka_config: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Consume ticks from Kafka, predict, write Delta tables and serve HTTP.
    Run(Box<RunArgs>),
    /// Everything on embedded defaults: a local broker, a simulated feed, `run` on 2 workers.
    Demo(DemoArgs),
    /// Produce simulated ticks into a topic (real time, or --max-speed).
    Simulate(produce_cli::SimulateArgs),
    /// Stream live market data from an exchange into the tick topic.
    Ingest(ingest_cli::IngestArgs),
    /// Send ticks (JSON, one per line) from the arguments or stdin, keyed by symbol.
    Produce(produce_cli::ProduceArgs),
    /// Replay historical files (Binance klines CSV, OHLCV CSV, JSONL ticks) into a topic.
    Replay(produce_cli::ReplayArgs),
    /// Look at and maintain the Delta warehouse.
    Tables {
        #[command(subcommand)]
        command: tables_cli::TablesCommand,
    },
    /// The state snapshots a run restarts from.
    State {
        #[command(subcommand)]
        command: state_cli::StateCommand,
    },
    /// Launch a local cluster of P `run` processes of W workers on loopback and watch it.
    Cluster(ClusterLaunchArgs),
    /// Topic administration.
    Topic {
        #[command(subcommand)]
        command: TopicCommand,
    },
    /// The orchestrator's jobs: list and run them (on a running instance), their history.
    Jobs {
        #[command(subcommand)]
        command: jobs_cli::JobsCommand,
    },
    /// The model registry: batch model versions and their status.
    Models {
        #[command(subcommand)]
        command: jobs_cli::ModelsCommand,
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
    #[arg(short = 'w', long = "workers", default_value_t = cryptoflow::pipeline::DEFAULT_WORKERS as u16, value_parser = clap::value_parser!(u16).range(1..=256))]
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
struct ClusterLaunchArgs {
    /// Processes to start.
    #[arg(short = 'P', long, value_parser = clap::value_parser!(u16).range(1..=64))]
    processes: u16,
    /// Worker threads per process.
    #[arg(short = 'W', long, default_value_t = cryptoflow::pipeline::DEFAULT_WORKERS as u16, value_parser = clap::value_parser!(u16).range(1..=256))]
    workers: u16,
    /// Timely port of process 0 (process i: base + i), on 127.0.0.1.
    #[arg(long, default_value_t = 2101)]
    base_port: u16,
    /// Health port base: process i > 0 serves its health on base + i
    /// (default: --base-port + 100).
    #[arg(long)]
    health_base_port: Option<u16>,
    /// The `run` flags every process gets, after `--` (e.g. -- --brokers HOST:PORT --data-dir DIR).
    #[arg(last = true, required = true)]
    run_args: Vec<String>,
}

/// The HTTP server's access controls.
#[derive(Args)]
struct AccessArgs {
    /// Bearer token that state-changing endpoints require (none: they are
    /// disabled). Prefer the environment variable: flags show in `ps`.
    #[arg(long, env = cryptoflow::http::auth::ADMIN_TOKEN_ENV, hide_env_values = true)]
    admin_token: Option<String>,
    /// An origin allowed to read the API cross-origin (repeatable; none by default).
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    cors_origins: Vec<String>,
    /// Requests per second per client on /api/* (burst: twice that; 0: no limit).
    #[arg(long, default_value_t = cryptoflow::http::guard::DEFAULT_RATE_PER_SECOND)]
    api_rate_limit: u32,
    /// Largest request body, bytes.
    #[arg(long, default_value_t = cryptoflow::http::guard::DEFAULT_MAX_BODY_BYTES)]
    max_body_bytes: usize,
    /// Largest request head (URI and headers), bytes.
    #[arg(long, default_value_t = cryptoflow::http::guard::DEFAULT_MAX_HEADER_BYTES)]
    max_header_bytes: usize,
}

impl AccessArgs {
    fn access(self) -> anyhow::Result<cryptoflow::http::guard::Access> {
        let AccessArgs {
            admin_token,
            cors_origins,
            api_rate_limit,
            max_body_bytes,
            max_header_bytes,
        } = self;
        Ok(cryptoflow::http::guard::Access {
            max_body_bytes,
            max_header_bytes,
            rate_limit: cryptoflow::http::guard::RateLimit::per_second(api_rate_limit),
            cors_origins,
            admin_token: admin_token
                .map(|t| cryptoflow::http::auth::AdminToken::new(&t))
                .transpose()?,
        })
    }
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
    #[arg(long, default_value = cryptoflow::pipeline::DEFAULT_HTTP)]
    http: SocketAddr,
    /// Do not start the HTTP server.
    #[arg(long)]
    no_http: bool,
    /// Allowed lateness behind a partition's newest event time, ms.
    #[arg(long, default_value_t = dataflows::source::DEFAULT_LATENESS_MS)]
    lateness_ms: u64,
    /// Allowed event-time skew ahead of the wall clock, ms.
    #[arg(long, default_value_t = dataflows::source::DEFAULT_MAX_FUTURE_MS)]
    max_future_ms: u64,
    /// Bar interval, ms.
    #[arg(long, default_value_t = dataflows::bars::DEFAULT_BAR_MS, value_parser = clap::value_parser!(u64).range(1..=86_400_000))]
    bar_ms: u64,
    /// Prediction horizons in bars, comma separated.
    #[arg(long, value_delimiter = ',', default_values_t = dataflows::predict::DEFAULT_HORIZONS, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    horizons: Vec<u32>,
    /// Online models to run, comma separated (default: all of them);
    /// persistence, the baseline, always runs.
    #[arg(long, value_delimiter = ',')]
    models: Option<Vec<String>>,
    /// Where to start reading each partition.
    #[arg(long, value_enum, default_value_t = StartFrom::Earliest)]
    from: StartFrom,
    /// Exit once every partition has been read to its end (backtests, benchmarks).
    #[arg(long)]
    until_end: bool,
    /// Wall time between warehouse commits at the most, ms.
    #[arg(long, default_value_t = cryptoflow::pipeline::DEFAULT_COMMIT_INTERVAL_MS, value_parser = clap::value_parser!(u64).range(10..=3_600_000))]
    commit_interval_ms: u64,
    /// Event time one commit (epoch) covers at the most, ms.
    #[arg(long, default_value_t = cryptoflow::pipeline::DEFAULT_EPOCH_MS, value_parser = clap::value_parser!(u64).range(1..=86_400_000))]
    epoch_ms: u64,
    /// Table versions between automatic Delta checkpoints (0: never).
    #[arg(long, default_value_t = cryptoflow::warehouse::DEFAULT_CHECKPOINT_EVERY, value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    checkpoint_every: u64,
    #[command(flatten)]
    access: AccessArgs,
    /// Serve this process's health here (processes other than 0 in a cluster).
    #[arg(long)]
    health_addr: Option<SocketAddr>,
    /// Health addresses (HOST:PORT) of processes 1, 2, … for process 0 to poll, comma separated.
    #[arg(long, value_delimiter = ',')]
    peer_health: Vec<String>,
    /// Wall time without a tick after which /api/health says "degraded", ms.
    #[arg(long, default_value_t = cryptoflow::telemetry::DEFAULT_STALE_AFTER_MS, value_parser = clap::value_parser!(u64).range(1..=86_400_000))]
    stale_after_ms: u64,
    #[command(flatten)]
    jobs: jobs_cli::JobsArgs,
    #[command(flatten)]
    snapshots: SnapshotArgs,
}

/// State snapshots (see `cryptoflow::pipeline`, "Snapshots").
#[derive(Args)]
struct SnapshotArgs {
    /// Event time between state snapshots, ms (0: take none).
    #[arg(long, default_value_t = cryptoflow::pipeline::DEFAULT_SNAPSHOT_EVERY_MS, value_parser = clap::value_parser!(u64).range(0..=86_400_000))]
    snapshot_every_ms: u64,
    /// Where snapshots are kept (default: <data-dir>/_state).
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// How many snapshots are kept.
    #[arg(long, default_value_t = cryptoflow::state::DEFAULT_KEEP as u16, value_parser = clap::value_parser!(u16).range(1..=1000))]
    keep_snapshots: u16,
    /// Start from the newest usable snapshot (latest) or rebuild all state
    /// from the topic (none).
    #[arg(long, value_enum, default_value_t = cryptoflow::state::FromSnapshot::Latest)]
    from_snapshot: cryptoflow::state::FromSnapshot,
    /// On Ctrl-C or SIGTERM, how long the run may go on to end with a
    /// snapshot of its latest state, ms (0: stop at once; the newest
    /// interval snapshot is then the one a restart uses).
    #[arg(long, default_value_t = cryptoflow::pipeline::DEFAULT_STOP_GRACE_MS, value_parser = clap::value_parser!(u64).range(0..=600_000))]
    stop_grace_ms: u64,
}

impl SnapshotArgs {
    fn options(self) -> cryptoflow::pipeline::SnapshotOptions {
        cryptoflow::pipeline::SnapshotOptions {
            every_ms: self.snapshot_every_ms,
            state_dir: self.state_dir,
            keep: self.keep_snapshots.into(),
            from: self.from_snapshot,
            stop_grace: std::time::Duration::from_millis(self.stop_grace_ms),
        }
    }
}

#[derive(Args)]
struct DemoArgs {
    /// HTTP listen address.
    #[arg(long, default_value = cryptoflow::pipeline::DEFAULT_HTTP)]
    http: SocketAddr,
    /// Warehouse root (Delta tables) and broker log.
    #[arg(long, default_value = "./data")]
    data_dir: PathBuf,
    /// Worker threads.
    #[arg(short = 'w', long, default_value_t = cryptoflow::pipeline::DEFAULT_WORKERS as u16, value_parser = clap::value_parser!(u16).range(1..=256))]
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
    #[command(flatten)]
    jobs: jobs_cli::JobsArgs,
    #[command(flatten)]
    access: AccessArgs,
}

/// mimalloc instead of the system allocator: see the dependency's note in
/// `Cargo.toml` and the measurement in the README. The `system-alloc`
/// feature leaves glibc's, for heap profilers.
#[cfg(not(any(feature = "system-alloc", feature = "heap-count")))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(all(feature = "heap-count", not(feature = "system-alloc")))]
#[global_allocator]
static ALLOCATOR: heap_count::Counting = heap_count::Counting;

/// The `heap-count` feature: mimalloc behind a counter of the bytes the
/// program holds, printed to stderr every 2 s as
/// `{"heap_live_mb":…,"heap_peak_mb":…}` (the peak since the line before).
/// It tells the live heap from what the allocator keeps resident, at full
/// speed, where heaptrack slows a run fifteenfold and changes its pace.
/// One shared atomic per allocation: a diagnostic build, not for runs.
/// librdkafka's own buffers (C malloc) are not counted.
#[cfg(feature = "heap-count")]
mod heap_count {
    use std::alloc::{GlobalAlloc, Layout};
    use std::sync::atomic::{AtomicIsize, Ordering};
    use std::time::Duration;

    static LIVE: AtomicIsize = AtomicIsize::new(0);
    static PEAK: AtomicIsize = AtomicIsize::new(0);

    pub struct Counting;

    fn count(delta: isize) {
        let live = LIVE.fetch_add(delta, Ordering::Relaxed) + delta;
        if delta > 0 {
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
    }

    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            count(layout.size() as isize);
            unsafe { mimalloc::MiMalloc.alloc(layout) }
        }
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            count(layout.size() as isize);
            unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            count(-(layout.size() as isize));
            unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, size: usize) -> *mut u8 {
            count(size as isize - layout.size() as isize);
            unsafe { mimalloc::MiMalloc.realloc(ptr, layout, size) }
        }
    }

    /// Prints the counts every 2 s for the rest of the process.
    pub fn report() {
        std::thread::spawn(|| loop {
            std::thread::sleep(Duration::from_secs(2));
            let live = LIVE.load(Ordering::Relaxed);
            let peak = PEAK.swap(live, Ordering::Relaxed);
            eprintln!(
                "{{\"heap_live_mb\":{},\"heap_peak_mb\":{}}}",
                live >> 20,
                peak >> 20
            );
        });
    }
}

fn main() -> std::process::ExitCode {
    #[cfg(feature = "heap-count")]
    heap_count::report();
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
    let Cli {
        command,
        kafka_opt,
        kafka_config,
    } = Cli::parse();
    let file = match &kafka_config {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("--kafka-config {}: {e}", path.display()))?,
        None => String::new(),
    };
    let options =
        kafka::ClientOptions::parse(file.lines().chain(kafka_opt.iter().map(String::as_str)))?;
    if options.keys().next().is_some() {
        tracing::info!(keys = ?options, "kafka client options set");
    }
    kafka::set_client_options(options)?;
    match command {
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
                models,
                from,
                until_end,
                commit_interval_ms,
                epoch_ms,
                checkpoint_every,
                access,
                health_addr,
                peer_health,
                stale_after_ms,
                jobs,
                snapshots,
            } = *a;
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
                    models: match models {
                        Some(m) => dataflows::models::ModelParams::default()
                            .select(&m)
                            .map_err(|e| anyhow::anyhow!("--models: {e}"))?,
                        None => dataflows::models::ModelParams::default().names(),
                    },
                    from,
                    until_end,
                    commit_interval: Duration::from_millis(commit_interval_ms),
                    epoch_ms,
                    checkpoint_every,
                    access: access.access()?,
                    health_addr,
                    peer_health,
                    stale_after: Duration::from_millis(stale_after_ms),
                    jobs: jobs.options()?,
                    snapshots: snapshots.options(),
                },
                Stop::new(),
            )?;
            println!("{}", serde_json::to_string(&summary)?);
        }
        Command::Cluster(a) => {
            let ClusterLaunchArgs {
                processes,
                workers,
                base_port,
                health_base_port,
                mut run_args,
            } = a;
            // Client options given to the launcher are the processes' too.
            for opt in &kafka_opt {
                run_args.extend(["--kafka-opt".to_string(), opt.clone()]);
            }
            if let Some(file) = &kafka_config {
                run_args.push(format!("--kafka-config={}", file.display()));
            }
            cryptoflow::supervise::launch(&cryptoflow::supervise::LaunchOptions {
                processes: processes.into(),
                workers: workers.into(),
                base_port,
                health_base_port: health_base_port.unwrap_or(base_port.saturating_add(100)),
                run_args,
                program: std::env::current_exe()?,
            })?;
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
                jobs,
                access,
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
                    jobs: jobs.options()?,
                    access: access.access()?,
                },
                Stop::new(),
            )?;
        }
        Command::Ingest(a) => ingest_cli::run(a)?,
        Command::Simulate(a) => produce_cli::simulate(a)?,
        Command::Produce(a) => produce_cli::produce(a)?,
        Command::Replay(a) => produce_cli::replay(a)?,
        Command::Tables { command } => tables_cli::run(command)?,
        Command::State { command } => state_cli::run(command)?,
        Command::Jobs { command } => jobs_cli::jobs(command)?,
        Command::Models { command } => jobs_cli::models(command)?,
        Command::Topic {
            command:
                TopicCommand::Create {
                    name,
                    brokers,
                    partitions,
                },
        } => {
            kafka::prepare_topic(&brokers, &name, partitions)?;
            println!("topic {name} ready");
        }
    }
    Ok(())
}
