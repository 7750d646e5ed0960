//! `hydrantd`: the Firehose-compatible daemon. See the crate documentation of hydrant-engine.
//!
//! This file is the binary's edge only: it parses the flags (each also a `HYDRANT_*` variable
//! and a key of the `--config` TOML file) into the library's [`Config`], sets up logging and
//! [`Metrics`], binds the listener and starts [`serve`] (TLS when configured; `/health/ready`
//! answers 503 meanwhile), opens the [`Engine`] on a blocking thread (the registry, every
//! stream's WAL recovered, the delivery workers started), then reports ready. On SIGTERM or
//! SIGINT it stops intake, waits up to the grace period for requests in flight, and stops the
//! engine (every stream synced and closed). Errors are `anyhow` here, typed in the library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use hydrant_engine::api::AppState;
use hydrant_engine::auth::Verifier;
use hydrant_engine::config::{Config, DurabilityMode, LogFormat, Overrides};
use hydrant_engine::console::Console;
use hydrant_engine::metrics::Metrics;
use hydrant_engine::server::{serve, tls_acceptor};
use hydrant_engine::Engine;
use tokio::net::TcpListener;

/// hydrantd: a durable, self-hosted, wire-compatible Amazon Data Firehose.
///
/// Every option can also be set in the TOML file given with --config and through its
/// HYDRANT_* environment variable; flags and variables win over the file.
/// mimalloc: delivery builds each batch and object in large buffers; glibc hands every one of
/// them back to the kernel on free and page-faults fresh zeroed pages for the next, which cost
/// about a quarter of a delivery thread's CPU under load. mimalloc keeps and reuses them. Its v2
/// line (the crate's `v2` feature): under PutRecordBatch load the daemon's peak RSS was 192 to 194
/// MiB against v3's 211 to 220 at the same throughput (README, issue 20's memory figures).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Turns transparent huge pages off for this process (and the processes it starts). mimalloc
/// asks for them on its arenas; every first touch of a fresh arena page then makes the kernel
/// zero 2 MiB. Delivery's buffers (partition buffers most of all) touch fresh memory often:
/// measured with `hydrant bench deliver --partitions 1,20,500` on this project's 2-vCPU VM,
/// 60 to 66 % of the partitioned run's time was that zeroing, and jq's share halved without it
/// (README, Dynamic partitioning). A failure (an old kernel) changes nothing but speed.
fn no_transparent_huge_pages() {
    // SAFETY: prctl with PR_SET_THP_DISABLE takes integer arguments only and touches no memory.
    let rc = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    if rc != 0 {
        tracing::debug!("PR_SET_THP_DISABLE: {}", std::io::Error::last_os_error());
    }
}

#[derive(Debug, Parser)]
#[command(name = "hydrantd", version)]
struct Cli {
    /// TOML configuration file.
    #[arg(long, env = "HYDRANT_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (streams, registry, local object store). Default ./hydrant-data.
    #[arg(long, env = "HYDRANT_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// The local object store's directory (S3 destinations without an S3 endpoint write
    /// there), for example on another disk than the WAL. Default DATA_DIR/objects.
    #[arg(long, env = "HYDRANT_OBJECTS_DIR")]
    objects_dir: Option<PathBuf>,
    /// Record format conversion's local catalog of table schemas. Default DATA_DIR/catalog.
    #[arg(long, env = "HYDRANT_CATALOG_DIR")]
    catalog_dir: Option<PathBuf>,
    /// A Glue Data Catalog API for record format conversion's schemas (else the local catalog).
    #[arg(long, env = "HYDRANT_GLUE_ENDPOINT")]
    glue_endpoint: Option<String>,
    /// API address. Default 127.0.0.1:4573.
    #[arg(long, env = "HYDRANT_LISTEN")]
    listen: Option<SocketAddr>,
    /// Allow a non-loopback --listen without access keys.
    #[arg(long, env = "HYDRANT_ALLOW_PUBLIC_UNAUTHENTICATED", value_parser = clap::builder::FalseyValueParser::new(), num_args = 0..=1, default_missing_value = "true")]
    allow_public_unauthenticated: Option<bool>,
    /// Log format: human or json.
    #[arg(long, env = "HYDRANT_LOG_FORMAT")]
    log_format: Option<String>,
    /// Region named in ARNs.
    #[arg(long, env = "HYDRANT_REGION")]
    region: Option<String>,
    /// Account id named in ARNs.
    #[arg(long, env = "HYDRANT_ACCOUNT_ID")]
    account_id: Option<String>,
    /// Most streams (LimitExceededException past it). Default 50.
    #[arg(long, env = "HYDRANT_STREAMS_MAX")]
    streams_max: Option<usize>,
    /// Default durability of streams: sync, interval or none. Default sync.
    #[arg(long, env = "HYDRANT_DURABILITY")]
    durability: Option<String>,
    /// Sync period of interval durability, ms. Default 200.
    #[arg(long, env = "HYDRANT_SYNC_INTERVAL_MS")]
    sync_interval_ms: Option<u64>,
    /// WAL segment size in bytes. Default 64 MiB.
    #[arg(long, env = "HYDRANT_SEGMENT_BYTES")]
    segment_bytes: Option<u64>,
    /// Per-stream disk budget in bytes (0 = none). Default 8 GiB.
    #[arg(long, env = "HYDRANT_STREAM_BUDGET_BYTES")]
    stream_budget_bytes: Option<u64>,
    /// Node disk budget in bytes, all streams (0 = none). Default: the data directory's file
    /// system size.
    #[arg(long, env = "HYDRANT_NODE_BUDGET_BYTES")]
    node_budget_bytes: Option<u64>,
    /// Seconds a request body may take (plus its length at --body-min-bytes-per-sec). Default 30.
    #[arg(long, env = "HYDRANT_BODY_TIMEOUT_SECS")]
    body_timeout_secs: Option<u64>,
    /// Slowest accepted average rate of a request body, bytes/s. Default 65536.
    #[arg(long, env = "HYDRANT_BODY_MIN_BYTES_PER_SEC")]
    body_min_bytes_per_sec: Option<u64>,
    /// Request body bytes held at once, all connections. Default 256 MiB.
    #[arg(long, env = "HYDRANT_BODY_MEMORY_MAX_BYTES")]
    body_memory_max_bytes: Option<u64>,
    /// Connections served at once. Default 0: derived from RLIMIT_NOFILE.
    #[arg(long, env = "HYDRANT_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Bearer token required by /metrics.
    #[arg(long, env = "HYDRANT_METRICS_TOKEN", hide_env_values = true)]
    metrics_token: Option<String>,
    /// Serve /metrics to non-loopback peers when neither keys nor a token are configured.
    #[arg(long, env = "HYDRANT_METRICS_PUBLIC", value_parser = clap::builder::FalseyValueParser::new(), num_args = 0..=1, default_missing_value = "true")]
    metrics_public: Option<bool>,
    /// Access key id accepted by SigV4 verification (with --secret-access-key).
    #[arg(long, env = "HYDRANT_ACCESS_KEY_ID")]
    access_key_id: Option<String>,
    /// Secret of --access-key-id.
    #[arg(long, env = "HYDRANT_SECRET_ACCESS_KEY", hide_env_values = true)]
    secret_access_key: Option<String>,
    /// TLS certificate chain (PEM).
    #[arg(long, env = "HYDRANT_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "HYDRANT_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// Seconds to wait for in-flight requests on SIGTERM. Default 30.
    #[arg(long, env = "HYDRANT_SHUTDOWN_GRACE_SECS")]
    shutdown_grace_secs: Option<u64>,
    /// Threads serving the API. Default 0: one fewer than the CPUs, at least one.
    #[arg(long, env = "HYDRANT_WORKER_THREADS")]
    worker_threads: Option<usize>,
    /// S3 endpoint URL of S3 destinations; unset: the local object store `DIR/objects/<bucket>`.
    #[arg(long, env = "HYDRANT_S3_ENDPOINT")]
    s3_endpoint: Option<String>,
    /// S3 signing region. Default us-east-1.
    #[arg(long, env = "HYDRANT_S3_REGION")]
    s3_region: Option<String>,
    /// S3 path-style addressing (most self-hosted servers need it).
    #[arg(long, env = "HYDRANT_S3_FORCE_PATH_STYLE", value_parser = clap::builder::FalseyValueParser::new(), num_args = 0..=1, default_missing_value = "true")]
    s3_force_path_style: Option<bool>,
    /// S3 access key id (with --s3-secret-access-key); unset: AWS_ACCESS_KEY_ID etc.
    #[arg(long, env = "HYDRANT_S3_ACCESS_KEY_ID")]
    s3_access_key_id: Option<String>,
    /// Secret of --s3-access-key-id.
    #[arg(long, env = "HYDRANT_S3_SECRET_ACCESS_KEY", hide_env_values = true)]
    s3_secret_access_key: Option<String>,
    /// Seconds a batch is retried before it goes to the error output. Default 86400.
    #[arg(long, env = "HYDRANT_DELIVERY_RETRY_SECONDS")]
    delivery_retry_seconds: Option<u64>,
    /// Replay window of delivered records, seconds. Default 3600.
    #[arg(long, env = "HYDRANT_RETAIN_DELIVERED_SECONDS")]
    retain_delivered_seconds: Option<u64>,
    /// Replay window of delivered records, bytes. Default 1 GiB.
    #[arg(long, env = "HYDRANT_RETAIN_DELIVERED_BYTES")]
    retain_delivered_bytes: Option<u64>,
    /// Read a password from standard input, print its hash for `[console] password_hash`, and
    /// exit.
    #[arg(long)]
    hash_console_password: bool,
}

impl Cli {
    fn overrides(&self) -> anyhow::Result<Overrides> {
        let log_format = match self.log_format.as_deref() {
            None => None,
            Some("human") => Some(LogFormat::Human),
            Some("json") => Some(LogFormat::Json),
            Some(other) => anyhow::bail!("--log-format must be human or json, not {other:?}"),
        };
        let durability = match self.durability.as_deref() {
            None => None,
            Some(d) => Some(DurabilityMode::parse(d)?),
        };
        if self.s3_access_key_id.is_some() != self.s3_secret_access_key.is_some() {
            anyhow::bail!("--s3-access-key-id and --s3-secret-access-key go together");
        }
        if self.access_key_id.is_some() != self.secret_access_key.is_some() {
            anyhow::bail!("--access-key-id and --secret-access-key go together");
        }
        Ok(Overrides {
            data_dir: self.data_dir.clone(),
            objects_dir: self.objects_dir.clone(),
            catalog_dir: self.catalog_dir.clone(),
            glue_endpoint: self.glue_endpoint.clone(),
            listen: self.listen,
            allow_public_unauthenticated: self.allow_public_unauthenticated,
            log_format,
            region: self.region.clone(),
            account_id: self.account_id.clone(),
            streams_max: self.streams_max,
            durability,
            sync_interval_ms: self.sync_interval_ms,
            segment_bytes: self.segment_bytes,
            stream_budget_bytes: self.stream_budget_bytes,
            node_budget_bytes: self.node_budget_bytes,
            body_timeout_secs: self.body_timeout_secs,
            body_min_bytes_per_sec: self.body_min_bytes_per_sec,
            body_memory_max_bytes: self.body_memory_max_bytes,
            max_connections: self.max_connections,
            metrics_token: self.metrics_token.clone(),
            metrics_public: self.metrics_public,
            access_key_id: self.access_key_id.clone(),
            secret_access_key: self.secret_access_key.clone(),
            tls_cert: self.tls_cert.clone(),
            tls_key: self.tls_key.clone(),
            shutdown_grace_secs: self.shutdown_grace_secs,
            worker_threads: self.worker_threads,
            s3_endpoint: self.s3_endpoint.clone(),
            s3_region: self.s3_region.clone(),
            s3_force_path_style: self.s3_force_path_style,
            s3_access_key_id: self.s3_access_key_id.clone(),
            s3_secret_access_key: self.s3_secret_access_key.clone(),
            delivery_retry_seconds: self.delivery_retry_seconds,
            retain_delivered_seconds: self.retain_delivered_seconds,
            retain_delivered_bytes: self.retain_delivered_bytes,
        })
    }
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("HYDRANT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Milliseconds since `from`, for the start-up timings logged at info level.
fn ms_since(from: std::time::Instant) -> f64 {
    from.elapsed().as_secs_f64() * 1000.0
}

fn main() -> anyhow::Result<()> {
    no_transparent_huge_pages();
    let started = std::time::Instant::now();
    let cli = Cli::parse();
    if cli.hash_console_password {
        let mut password = String::new();
        std::io::stdin()
            .read_line(&mut password)
            .context("reading the password from standard input")?;
        let password = password.trim_end_matches(['\r', '\n']);
        anyhow::ensure!(!password.is_empty(), "the password is empty");
        println!("{}", hydrant_engine::console::hash_password(password));
        return Ok(());
    }
    let mut config = match &cli.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    config.apply_overrides(cli.overrides()?);
    config.kinesis.apply_env();
    config.kafka.apply_env();
    config.validate()?;
    init_tracing(config.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.api_threads())
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run(config, started))
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop with SIGKILL");
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
}

fn notify(state: sd_notify::NotifyState<'_>) {
    if let Err(e) = sd_notify::notify(false, &[state]) {
        tracing::debug!(error = %e, "sd_notify failed");
    }
}

/// Raises the soft descriptor limit to the hard one and returns it (the soft limit when it
/// cannot be read or raised).
fn raise_nofile() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut lim) } != 0 {
        tracing::warn!("cannot read RLIMIT_NOFILE; assuming 1024");
        return 1024;
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: setrlimit reads the struct it is given.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raw const raised) } == 0 {
            lim.rlim_cur = lim.rlim_max;
        }
    }
    lim.rlim_cur
}

/// The size of the file system holding `dir` (its nearest existing ancestor), 0 if unknown.
fn file_system_bytes(dir: &std::path::Path) -> u64 {
    use std::os::unix::ffi::OsStrExt;
    let mut p = dir.to_path_buf();
    while !p.exists() {
        if !p.pop() {
            p = std::path::PathBuf::from(".");
            break;
        }
    }
    if p.as_os_str().is_empty() {
        p = std::path::PathBuf::from(".");
    }
    let Ok(c) = std::ffi::CString::new(p.as_os_str().as_bytes()) else {
        return 0;
    };
    // SAFETY: zeroed statvfs is a valid value to be overwritten; the path is NUL-terminated.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: see above.
    if unsafe { libc::statvfs(c.as_ptr(), &raw mut st) } != 0 {
        return 0;
    }
    st.f_blocks.saturating_mul(st.f_frsize)
}

async fn run(mut config: Config, started: std::time::Instant) -> anyhow::Result<()> {
    if config.allow_public_unauthenticated {
        tracing::warn!(
            listen = %config.listen,
            sigv4 = !config.auth.keys.is_empty(),
            "--allow-public-unauthenticated is set: without [auth] keys anyone who reaches \
             this address can create, delete and write streams"
        );
    }
    let nofile = raise_nofile();
    let connections = config.connection_cap(nofile);
    let fs_bytes = file_system_bytes(&config.data_dir);
    let explicit_node_budget = config.wal.node_budget_bytes.is_some();
    config.wal.node_budget_bytes = Some(config.node_budget(fs_bytes).unwrap_or(0));
    if let Err(e) = config.check_declared_budgets() {
        if explicit_node_budget {
            return Err(e.into());
        }
        // The node budget was derived from the file system's size, not set: the embedded
        // default (one stream, 8 GiB) must still start on a smaller disk. Its appends meet the
        // file system's end as ServiceUnavailableException; creates are held to the budget.
        tracing::warn!(error = %e, "the declared streams' budgets exceed the file system; starting anyway");
    }
    tracing::info!(
        nofile,
        max_connections = connections,
        node_budget_bytes = config.wal.node_budget_bytes.unwrap_or(0),
        body_timeout_secs = config.limits.body_timeout_secs,
        body_min_bytes_per_sec = config.limits.body_min_bytes_per_sec,
        body_memory_max_bytes = config.limits.body_memory_max_bytes,
        "limits"
    );
    let metrics = Arc::new(Metrics::new());
    let verifier = (!config.auth.keys.is_empty()).then(|| Verifier::new(&config.auth.keys));
    let tls = match (&config.tls.cert, &config.tls.key) {
        (Some(cert), Some(key)) => Some(tls_acceptor(cert, key)?),
        _ => None,
    };
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    tracing::info!(
        listen = %listener.local_addr().unwrap_or(config.listen),
        tls = tls.is_some(),
        sigv4 = verifier.is_some(),
        data_dir = %config.data_dir.display(),
        listening_ms = ms_since(started),
        "hydrantd listening; recovering streams"
    );
    let state = Arc::new(AppState::new(metrics.clone(), verifier, &config.limits));
    let console = Console::new(&config)?;
    if let Some(c) = &console {
        let _ = state.console.set(c.clone());
        let url = c.url(listener.local_addr().unwrap_or(config.listen));
        tracing::info!(
            url = %url,
            login = c.needs_login(),
            "console at {url}"
        );
    }
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let server_stop = {
        let mut rx = stop_tx.subscribe();
        async move {
            let _ = rx.wait_for(|v| *v).await;
        }
    };
    let grace = Duration::from_secs(config.shutdown_grace_secs);
    let server = tokio::spawn(serve(
        listener,
        tls,
        state.clone(),
        server_stop,
        grace,
        connections,
    ));
    let signal_state = state.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        signal_state.stopping.store(true, Ordering::SeqCst);
        let _ = stop_tx.send(true);
    });

    let cfg = config.clone();
    let m = metrics.clone();
    // Ready once every WAL is recovered and open: an append acknowledged from now on is
    // durable. The delivery workers (checkpoints, sinks) start right after, off the ready path;
    // until each has, its destination's state says STARTING (console and metrics).
    let engine = tokio::task::spawn_blocking(move || Engine::open_for_intake(cfg, m))
        .await
        .context("recovery task")?
        .context("recovering streams")?;
    let engine = Arc::new(engine);
    let _ = state.engine.set(engine.clone());
    metrics.ready.set(1);
    tracing::info!(ready_ms = ms_since(started), "recovery finished; ready");
    notify(sd_notify::NotifyState::Ready);
    let delivery = {
        let engine = engine.clone();
        tokio::task::spawn_blocking(move || engine.start_delivery())
    };
    if let Some(c) = console {
        tokio::spawn(c.run_sampler(engine.clone()));
    }

    let mut watchdog_usec = 0u64;
    if sd_notify::watchdog_enabled(false, &mut watchdog_usec) && watchdog_usec > 0 {
        let period = Duration::from_micros(watchdog_usec / 2);
        let st = state.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                if !st.stopping.load(Ordering::SeqCst) {
                    notify(sd_notify::NotifyState::Watchdog);
                }
            }
        });
    }

    let _ = stop_rx.wait_for(|v| *v).await;
    notify(sd_notify::NotifyState::Stopping);
    if let Err(e) = server.await {
        tracing::error!(error = %e, "server task failed");
    }
    // Close sets the engine closing first, so a start of delivery still running starts nothing
    // more; it has finished before the logs close.
    engine.begin_shutdown();
    if let Err(e) = delivery.await {
        tracing::error!(error = %e, "starting delivery failed");
    }
    let closing = engine.clone();
    tokio::task::spawn_blocking(move || closing.close())
        .await
        .context("closing streams")?;
    tracing::info!("all streams synced and closed; bye");
    Ok(())
}
