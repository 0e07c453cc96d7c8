//! eddy's command-line entry point.
//!
//! `eddy serve` (also what `eddy` alone runs) opens the data directory, recovers from the
//! write-ahead log and serves Meilisearch's HTTP API until SIGINT or SIGTERM, then stops
//! accepting connections, lets in-flight requests finish and closes the engine (which
//! flushes memtables, so the next start has nothing to replay).

#![forbid(unsafe_code)]

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use eddy_engine::{Durability, Engine, EngineConfig, MergeStrategy};
use eddy_server::{AppState, ServerConfig, parse_byte_size};
use tracing_subscriber::EnvFilter;

// jemalloc rather than glibc malloc: indexing makes many small allocations that other
// threads free, where glibc spent about a quarter of the ingest CPU.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// eddy: a search engine whose every acknowledged write is durable and searchable at once.
#[derive(Debug, Parser)]
#[command(name = "eddy", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve Meilisearch's HTTP API (the default command).
    Serve(ServeArgs),
}

fn byte_size(s: &str) -> Result<u64, String> {
    parse_byte_size(s)
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "MEILI_HTTP_ADDR", default_value = "127.0.0.1:7700")]
    http_addr: String,
    /// Data directory.
    #[arg(long, env = "MEILI_DB_PATH", default_value = "./eddy-data")]
    db_path: PathBuf,
    /// Master key: when set, every route but /health needs `Authorization: Bearer <key>`.
    #[arg(long, env = "MEILI_MASTER_KEY", hide_env_values = true)]
    master_key: Option<String>,
    /// `development` or `production` (production requires a master key of 16 bytes or more).
    #[arg(long, env = "MEILI_ENV", default_value = "development", value_parser = ["development", "production"])]
    env: String,
    /// Largest accepted request body, after decompression (`100MB`, `1GiB`, bytes…).
    #[arg(long, env = "MEILI_HTTP_PAYLOAD_SIZE_LIMIT", default_value = "100MB", value_parser = byte_size)]
    http_payload_size_limit: u64,
    /// Accepted for compatibility: eddy never sends analytics.
    #[arg(long, env = "MEILI_NO_ANALYTICS", num_args = 0..=1, default_missing_value = "true",
          value_parser = clap::builder::BoolishValueParser::new(), default_value = "false")]
    no_analytics: bool,
    /// Log level (`RUST_LOG` overrides it with a full filter).
    #[arg(long, env = "MEILI_LOG_LEVEL", default_value = "info")]
    log_level: String,
    /// Size at which an index's active memtable freezes (`64MiB`…, at most `4GiB`).
    #[arg(long, env = "EDDY_WRITE_BUFFER", value_parser = byte_size)]
    write_buffer: Option<u64>,
    /// Indexing memory: all memtables plus 64 MiB that memtables leave free for the flush in
    /// progress and Tantivy's merges; writers wait, then get 503, beyond it.
    #[arg(long, env = "EDDY_MEMORY_BUDGET", value_parser = byte_size)]
    memory_budget: Option<u64>,
    /// Meilisearch's name for the memory indexing may use: the memory budget, when
    /// `--memory-budget` is not given.
    #[arg(long, env = "MEILI_MAX_INDEXING_MEMORY", value_parser = byte_size)]
    max_indexing_memory: Option<u64>,
    /// When memtables go to Tantivy: immediate | batched:N | periodic:Nms | adaptive | manual.
    #[arg(long, env = "EDDY_MERGE_STRATEGY")]
    merge_strategy: Option<MergeStrategy>,
    /// When a write is acknowledged: fsync (survives power loss) | flush | none.
    #[arg(long, env = "EDDY_DURABILITY")]
    durability: Option<Durability>,
    /// How long a write waits for memory before it is refused with 503 (milliseconds).
    #[arg(long, env = "EDDY_OVERLOAD_WAIT_MS")]
    overload_wait_ms: Option<u64>,
    /// Threads writing the segments of one flush (default: every core, at most 8). Only a
    /// flush of several frozen memtables, as at the end of a bulk load, uses more than one.
    #[arg(long, env = "MEILI_MAX_INDEXING_THREADS", value_parser = clap::value_parser!(u16).range(1..=256))]
    max_indexing_threads: Option<u16>,
    /// Most bytes of segments one background merge reads (default 128MiB). A merge holds the
    /// pages of its inputs, so this bounds the memory merges take beyond the budget; segments
    /// grow to about this size and no further.
    #[arg(long, env = "EDDY_MAX_MERGE_SIZE", value_parser = byte_size)]
    max_merge_size: Option<u64>,
    /// How long a client may take to send a request's headers, or the next piece of its body
    /// (milliseconds); slower connections are dropped.
    #[arg(long, env = "EDDY_HTTP_READ_TIMEOUT_MS", default_value_t = 30_000)]
    http_read_timeout_ms: u64,
    /// Threads running the HTTP protocol (engine calls run on their own blocking pool).
    /// 1 runs the protocol on a single thread, which needs the fewest cross-thread wakeups.
    #[arg(long, env = "EDDY_HTTP_THREADS", default_value_t = 1)]
    http_threads: usize,
}

impl ServeArgs {
    fn engine_config(&self) -> Result<EngineConfig> {
        let mut config = EngineConfig::default();
        if let Some(b) = self.write_buffer {
            let max = eddy_engine::config::MAX_WRITE_BUFFER_BYTES;
            config.write_buffer_bytes = usize::try_from(b)
                .ok()
                .filter(|b| *b <= max)
                .with_context(|| format!("--write-buffer must be at most {}GiB", max >> 30))?;
        }
        if let Some(b) = self.memory_budget.or(self.max_indexing_memory) {
            config.memory_budget_bytes = usize::try_from(b).context("memory budget too large")?;
        }
        if let Some(s) = self.merge_strategy {
            config.merge_strategy = s;
        }
        if let Some(d) = self.durability {
            config.durability = d;
        }
        if let Some(ms) = self.overload_wait_ms {
            config.overload_wait = Duration::from_millis(ms);
        }
        if let Some(threads) = self.max_indexing_threads {
            config.segments.writer_threads = usize::from(threads);
        }
        if let Some(bytes) = self.max_merge_size {
            if bytes == 0 {
                bail!("--max-merge-size must be above 0: with no room, no segments would merge");
            }
            config.segments.max_merge_bytes = bytes;
        }
        Ok(config)
    }

    fn server_config(&self) -> Result<ServerConfig> {
        let master_key = self.master_key.clone().filter(|k| !k.is_empty());
        if self.env == "production" && master_key.as_ref().is_none_or(|k| k.len() < 16) {
            bail!(
                "MEILI_ENV is `production`: a master key of at least 16 bytes is required (--master-key or MEILI_MASTER_KEY)"
            );
        }
        Ok(ServerConfig {
            payload_limit_bytes: usize::try_from(self.http_payload_size_limit)
                .context("payload size limit too large")?,
            master_key,
            read_timeout: Duration::from_millis(self.http_read_timeout_ms.max(1)),
        })
    }
}

fn init_logs(level: &str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Serve(args)) => args,
        None => ServeArgs::from_args(),
    };
    match serve(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` prints the whole chain of causes on one line, without a backtrace.
            tracing::error!(error = format!("{e:#}"), "eddy stopped");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

impl ServeArgs {
    /// The serve arguments from flags-less invocation: environment variables and defaults.
    fn from_args() -> ServeArgs {
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            args: ServeArgs,
        }
        Only::parse_from(["eddy"]).args
    }
}

fn serve(args: ServeArgs) -> Result<()> {
    init_logs(&args.log_level);
    let server_config = args.server_config()?;
    let engine_config = args.engine_config()?;
    if server_config.master_key.is_none() {
        tracing::warn!(
            "no master key is set: every route is open to anyone who can reach the address"
        );
    }
    let addr: SocketAddr = args
        .http_addr
        .parse()
        .or_else(|_| {
            std::net::ToSocketAddrs::to_socket_addrs(&args.http_addr.as_str())
                .ok()
                .and_then(|mut a| a.next())
                .ok_or(())
        })
        .map_err(|()| anyhow::anyhow!("invalid --http-addr `{}`", args.http_addr))?;
    let opened = Instant::now();
    let engine = Engine::open(&args.db_path, engine_config.clone())
        .with_context(|| format!("cannot open the data directory {}", args.db_path.display()))?;
    let recovery = engine.recovery();
    tracing::info!(
        db_path = %args.db_path.display(),
        indexes = engine.indexes().len(),
        records_replayed = recovery.records_replayed,
        documents_recovered = recovery.documents_recovered,
        replay_from_lsn = recovery.from_lsn,
        replay_ms = recovery.duration.as_millis() as u64,
        open_ms = opened.elapsed().as_millis() as u64,
        durability = %engine_config.durability,
        merge_strategy = %engine_config.merge_strategy,
        write_buffer_bytes = engine_config.write_buffer_bytes,
        memory_budget_bytes = engine_config.memory_budget_bytes,
        "data directory opened"
    );
    let engine = Arc::new(engine);
    let mut builder = if args.http_threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(args.http_threads);
        b
    };
    let runtime = builder
        .enable_all()
        .thread_name("eddy-http")
        .build()
        .context("cannot start the async runtime")?;
    let state = AppState::new(engine.clone(), server_config)
        .map_err(|e| anyhow::anyhow!("cannot load the API keys: {}", e.body().message))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let local = listener.local_addr().context("no local address")?;
        tracing::info!(addr = %local, "eddy is listening");
        eddy_server::serve(listener, state, shutdown_signal())
            .await
            .context("the HTTP server failed")
    })?;
    // Requests abandoned by their client may still hold the engine on the blocking pool.
    runtime.shutdown_timeout(Duration::from_secs(30));
    close(engine)
}

fn close(engine: Arc<Engine>) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut engine = engine;
    loop {
        match Arc::try_unwrap(engine) {
            Ok(engine) => {
                let started = Instant::now();
                engine.close().context("closing the engine failed")?;
                tracing::info!(
                    ms = started.elapsed().as_millis() as u64,
                    "engine flushed and closed; bye"
                );
                return Ok(());
            }
            Err(shared) if Instant::now() < deadline => {
                engine = shared;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(shared) => {
                tracing::warn!("engine still in use at shutdown: flushing without closing");
                shared.flush().context("flushing the engine failed")?;
                return Ok(());
            }
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received: finishing in-flight requests"),
        () = terminate => tracing::info!("SIGTERM received: finishing in-flight requests"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve_args(flags: &[&str]) -> Result<ServeArgs, clap::Error> {
        let argv = ["eddy", "serve"].iter().chain(flags);
        match Cli::try_parse_from(argv)?.command {
            Some(Command::Serve(args)) => Ok(args),
            None => unreachable!("`serve` was given"),
        }
    }

    #[test]
    fn max_indexing_threads_sets_the_segment_writing_threads() {
        let config = serve_args(&["--max-indexing-threads", "3"])
            .unwrap()
            .engine_config()
            .unwrap();
        assert_eq!(config.segments.writer_threads, 3);
        let default = serve_args(&[]).unwrap().engine_config().unwrap();
        assert_eq!(
            default.segments.writer_threads,
            EngineConfig::default().segments.writer_threads
        );
        for bad in ["0", "-1", "300", "many"] {
            let e = serve_args(&[&format!("--max-indexing-threads={bad}")]).unwrap_err();
            assert!(e.to_string().contains("--max-indexing-threads"), "{e}");
        }
    }

    #[test]
    fn max_merge_size_bounds_the_bytes_a_merge_reads() {
        let bound = |flags: &[&str]| {
            serve_args(flags)
                .unwrap()
                .engine_config()
                .map(|c| c.segments.max_merge_bytes)
        };
        assert_eq!(bound(&["--max-merge-size", "256MiB"]).unwrap(), 256 << 20);
        assert_eq!(
            bound(&[]).unwrap(),
            EngineConfig::default().segments.max_merge_bytes
        );
        let e = bound(&["--max-merge-size", "0"]).unwrap_err();
        assert!(e.to_string().contains("--max-merge-size"), "{e}");
        let e = serve_args(&["--max-merge-size", "lots"]).unwrap_err();
        assert!(e.to_string().contains("--max-merge-size"), "{e}");
    }

    #[test]
    fn a_write_buffer_above_the_maximum_is_refused() {
        let config = |flag: &str| {
            serve_args(&["--write-buffer", flag])
                .unwrap()
                .engine_config()
                .map(|c| c.write_buffer_bytes)
        };
        assert_eq!(config("4GiB").unwrap(), 4 << 30);
        let e = config("5GiB").unwrap_err();
        assert!(e.to_string().contains("at most 4GiB"), "{e}");
    }

    #[test]
    fn max_indexing_memory_is_the_memory_budget_unless_eddys_flag_is_given() {
        let budget = |flags: &[&str]| {
            serve_args(flags)
                .unwrap()
                .engine_config()
                .unwrap()
                .memory_budget_bytes
        };
        assert_eq!(budget(&["--max-indexing-memory", "1GiB"]), 1 << 30);
        assert_eq!(
            budget(&["--max-indexing-memory", "1GiB", "--memory-budget", "64MiB"]),
            64 << 20
        );
        assert_eq!(budget(&[]), EngineConfig::default().memory_budget_bytes);
        let e = serve_args(&["--max-indexing-memory", "lots"]).unwrap_err();
        assert!(e.to_string().contains("--max-indexing-memory"), "{e}");
    }
}
