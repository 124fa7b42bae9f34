//! `cryptoflow jobs …` and `cryptoflow models …`, and the orchestrator's
//! flags shared by `run` and `demo`.
//!
//! `jobs list` and `jobs run` talk to a running instance over HTTP (the
//! state of jobs lives in its orchestrator); `jobs history` and `models`
//! read the warehouse (`job_runs`, `models`), so they work with nothing
//! running.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use cryptoflow::jobs::registry::{current, read_registry};
use cryptoflow::jobs::{JobsOptions, INJECT_FAILURE_ENV};
use cryptoflow::train::TrainConfig;
use cryptoflow::warehouse::date::iso_ms;
use cryptoflow::warehouse::read::{self, ShowFilter};
use dataflows::deploy::{ModelRecord, ModelStatus};

/// The orchestrator's settings on `run` and `demo`.
#[derive(Args, Clone, Debug)]
pub struct JobsArgs {
    /// Event time between scheduled retrains of the batch models, minutes (0: no batch models).
    #[arg(long, default_value_t = cryptoflow::train::DEFAULT_RETRAIN_EVERY_MS / 60_000)]
    retrain_every_min: u64,
    /// Training window, hours of event time.
    #[arg(long, default_value_t = cryptoflow::train::DEFAULT_TRAIN_WINDOW_MS / 3_600_000, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    train_window_h: u64,
    /// Gap between the last training outcome and the deploy time, seconds.
    #[arg(long, default_value_t = cryptoflow::train::DEFAULT_EMBARGO_MS / 1_000)]
    embargo_s: u64,
    /// Validation skill versus persistence a batch model needs to be deployed.
    #[arg(long, default_value_t = cryptoflow::train::DEFAULT_VALIDATION_FLOOR, allow_negative_numbers = true)]
    validation_floor: f64,
    /// Live mode: longest wall time data waits at a scheduled retrain, seconds.
    #[arg(long, default_value_t = cryptoflow::jobs::DEFAULT_DEPLOY_WAIT_MS / 1_000)]
    deploy_wait_s: u64,
    /// Wall time between table maintenance runs (checkpoint, compact, vacuum), minutes (0: never).
    #[arg(long, default_value_t = cryptoflow::jobs::DEFAULT_MAINTAIN_EVERY_MS / 60_000)]
    maintain_every_min: u64,
    /// Attempts per job run.
    #[arg(long, default_value_t = cryptoflow::jobs::DEFAULT_JOB_ATTEMPTS, value_parser = clap::value_parser!(u32).range(1..=100))]
    job_attempts: u32,
    /// First retry delay of a failed job attempt, ms (doubles, with jitter).
    #[arg(long, default_value_t = cryptoflow::jobs::DEFAULT_JOB_BACKOFF_MS)]
    job_backoff_ms: u64,
    /// Largest retry delay, ms.
    #[arg(long, default_value_t = cryptoflow::jobs::DEFAULT_JOB_BACKOFF_MAX_MS)]
    job_backoff_max_ms: u64,
    /// Longest a job attempt may take, seconds.
    #[arg(long, default_value_t = cryptoflow::jobs::DEFAULT_JOB_TIMEOUT_MS / 1_000, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    job_timeout_s: u64,
}

impl JobsArgs {
    /// The orchestrator's options these flags give.
    pub fn options(&self) -> anyhow::Result<JobsOptions> {
        let JobsArgs {
            retrain_every_min,
            train_window_h,
            embargo_s,
            validation_floor,
            deploy_wait_s,
            maintain_every_min,
            job_attempts,
            job_backoff_ms,
            job_backoff_max_ms,
            job_timeout_s,
        } = self.clone();
        if !validation_floor.is_finite() {
            bail!("--validation-floor must be a number");
        }
        Ok(JobsOptions {
            retrain_every_ms: retrain_every_min * 60_000,
            train: TrainConfig {
                window_ms: train_window_h * 3_600_000,
                embargo_ms: embargo_s * 1_000,
                validation_floor,
                ..TrainConfig::default()
            },
            deploy_wait_ms: deploy_wait_s * 1_000,
            maintain_every_ms: maintain_every_min * 60_000,
            attempts: job_attempts,
            backoff_ms: job_backoff_ms,
            backoff_max_ms: job_backoff_max_ms.max(job_backoff_ms),
            timeout_ms: job_timeout_s * 1_000,
            inject_failure: std::env::var(INJECT_FAILURE_ENV)
                .ok()
                .filter(|s| !s.is_empty()),
        })
    }
}

/// `cryptoflow jobs …`.
#[derive(Subcommand)]
pub enum JobsCommand {
    /// Every job's schedule and state, from a running instance.
    List {
        /// Its HTTP address.
        #[arg(long, default_value = cryptoflow::pipeline::DEFAULT_HTTP)]
        http: String,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Queue a run of a job on a running instance (needs its admin token).
    Run {
        /// retrain, evaluate, promote or maintain.
        name: String,
        /// Data interval start (RFC 3339, YYYY-MM-DD or epoch ms): a backfill.
        #[arg(long, requires = "end")]
        start: Option<String>,
        /// Data interval end, exclusive.
        #[arg(long, requires = "start")]
        end: Option<String>,
        /// Its HTTP address.
        #[arg(long, default_value = cryptoflow::pipeline::DEFAULT_HTTP)]
        http: String,
        /// The admin token.
        #[arg(long, env = cryptoflow::http::auth::ADMIN_TOKEN_ENV, hide_env_values = true)]
        admin_token: Option<String>,
    },
    /// The run history from the `job_runs` table.
    History {
        /// Only this job.
        #[arg(long)]
        job: Option<String>,
        /// Warehouse root.
        #[arg(long, default_value = "./data")]
        data_dir: PathBuf,
        /// The newest N rows.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// `cryptoflow models …`.
#[derive(Subcommand)]
pub enum ModelsCommand {
    /// Every batch model version with its current status.
    List {
        /// Warehouse root.
        #[arg(long, default_value = "./data")]
        data_dir: PathBuf,
        /// Only this symbol.
        #[arg(long)]
        symbol: Option<String>,
        /// Only this status (candidate, active, rejected, retired).
        #[arg(long)]
        status: Option<String>,
        /// JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One version's every registry row (its status history and fitted model), as JSON.
    Show {
        /// The model id (`cryptoflow models list` shows them).
        id: String,
        /// Warehouse root.
        #[arg(long, default_value = "./data")]
        data_dir: PathBuf,
    },
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?)
}

async fn answer(resp: reqwest::Response, url: &str) -> anyhow::Result<serde_json::Value> {
    let status = resp.status();
    let text = resp
        .text()
        .await
        .with_context(|| format!("{url}: no answer"))?;
    let body: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{url}: not a JSON answer"))?;
    if !status.is_success() {
        let msg = body["error"]["message"].as_str().unwrap_or("");
        bail!("{url}: {status}: {msg}");
    }
    Ok(body)
}

/// Runs a `jobs` command.
pub fn jobs(cmd: JobsCommand) -> anyhow::Result<()> {
    match cmd {
        JobsCommand::List { http, json } => {
            let url = format!("http://{http}/api/jobs");
            let body = runtime()?.block_on(async {
                let resp = client()?.get(&url).send().await.with_context(|| {
                    format!("cannot reach {url} (is `cryptoflow run` serving there?)")
                })?;
                answer(resp, &url).await
            })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&body)?);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = body
                .as_array()
                .into_iter()
                .flatten()
                .map(|j| {
                    let s = |k: &str| j[k].as_str().unwrap_or("").to_string();
                    let n = |k: &str| j[k].as_u64().unwrap_or(0).to_string();
                    vec![
                        s("name"),
                        s("state"),
                        n("runs"),
                        n("succeeded"),
                        n("failed"),
                        s("schedule"),
                        s("detail"),
                    ]
                })
                .collect();
            print_table(
                &["job", "state", "runs", "ok", "failed", "schedule", "detail"],
                &rows,
            );
        }
        JobsCommand::Run {
            name,
            start,
            end,
            http,
            admin_token,
        } => {
            let url = format!("http://{http}/api/jobs/{name}/run");
            let body = match (start, end) {
                (Some(s), Some(e)) => serde_json::json!({ "start": s, "end": e }),
                _ => serde_json::json!({}),
            };
            let answer = runtime()?.block_on(async {
                let mut req = client()?
                    .post(&url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.to_string());
                if let Some(t) = admin_token {
                    req = req.bearer_auth(t);
                }
                let resp = req
                    .send()
                    .await
                    .with_context(|| format!("cannot reach {url}"))?;
                answer(resp, &url).await
            })?;
            println!("{answer}");
        }
        JobsCommand::History {
            job,
            data_dir,
            limit,
            json,
        } => {
            let filter = ShowFilter {
                limit: usize::MAX,
                ..ShowFilter::default()
            };
            let mut rows = runtime()?.block_on(read::rows(&data_dir, "job_runs", &filter))?;
            rows.retain(|r| {
                job.as_deref()
                    .is_none_or(|j| r.get("job").and_then(|v| v.as_str()) == Some(j))
            });
            let key = |r: &serde_json::Map<String, serde_json::Value>| {
                (
                    r.get("started_at")
                        .map(|v| v.to_string())
                        .unwrap_or_default(),
                    r.get("ended_at").is_some_and(|v| !v.is_null()),
                )
            };
            rows.sort_by_key(key);
            let rows = &rows[rows.len().saturating_sub(limit)..];
            if json {
                for r in rows {
                    println!("{}", serde_json::to_string(r)?);
                }
            } else {
                println!("{}", read::render("job_runs", rows));
            }
        }
    }
    Ok(())
}

/// Runs a `models` command.
pub fn models(cmd: ModelsCommand) -> anyhow::Result<()> {
    match cmd {
        ModelsCommand::List {
            data_dir,
            symbol,
            status,
            json,
        } => {
            let status = match status.as_deref() {
                None => None,
                Some(s) => Some(ModelStatus::parse(s).with_context(|| {
                    format!("unknown status `{s}` (candidate, active, rejected, retired)")
                })?),
            };
            let registry = runtime()?.block_on(read_registry(&data_dir))?;
            let now: Vec<ModelRecord> = current(&registry, u64::MAX)
                .into_values()
                .filter(|m| symbol.as_ref().is_none_or(|s| *s == m.symbol))
                .filter(|m| status.is_none_or(|s| s == m.status))
                .collect();
            if json {
                for m in &now {
                    println!("{}", serde_json::to_string(m)?);
                }
                return Ok(());
            }
            let rows: Vec<Vec<String>> = now
                .iter()
                .map(|m| {
                    vec![
                        m.id.clone(),
                        m.status.as_str().to_string(),
                        iso_ms(m.status_at_ms),
                        m.fit_samples.to_string(),
                        m.validation_skill
                            .map_or("–".into(), |s| format!("{:.4}", s.0)),
                        m.reason.chars().take(70).collect(),
                    ]
                })
                .collect();
            print_table(
                &["id", "status", "since", "fitted", "val_skill", "reason"],
                &rows,
            );
        }
        ModelsCommand::Show { id, data_dir } => {
            let registry = runtime()?.block_on(read_registry(&data_dir))?;
            let rows: Vec<&ModelRecord> = registry.iter().filter(|m| m.id == id).collect();
            if rows.is_empty() {
                bail!(
                    "no model `{id}` in the registry under {}",
                    data_dir.display()
                );
            }
            println!("{}", serde_json::to_string_pretty(&rows)?);
        }
    }
    Ok(())
}

fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    println!("{}", line(header.iter().map(|h| h.to_string()).collect()));
    for r in rows {
        println!("{}", line(r.clone()));
    }
}
