//! A `hydrantd` started by the HTTP benchmarks: a temporary data directory on the disk under
//! test, a free loopback port, readiness awaited, SIGTERM at the end (then SIGKILL if it
//! lingers). Its log goes to a file in the temporary directory, shown when start-up fails.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::firehose::{ClientError, FirehoseClient};

/// What starting or driving the daemon can fail with.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// No `hydrantd` binary where we looked.
    #[error(
        "hydrantd not found (looked at {}); build it with `cargo build --release -p \
         hydrant-engine` or pass --hydrantd PATH",
        .0.display()
    )]
    NotFound(PathBuf),
    /// A file or process operation failed.
    #[error(transparent)]
    Io(#[from] hydrant_wal::IoError),
    /// The daemon exited or did not become ready in time.
    #[error("hydrantd did not become ready: {reason}\n--- hydrantd log (tail) ---\n{log}")]
    NotReady {
        /// What happened.
        reason: String,
        /// The end of its log.
        log: String,
    },
    /// A control-plane call failed.
    #[error("{what}: {source}")]
    Api {
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: ClientError,
    },
}

/// Finds the daemon: `explicit`, else `$HYDRANT_HYDRANTD`, else `hydrantd` next to the running
/// `hydrant-bench` executable (cargo puts both in the same target directory).
///
/// # Errors
/// [`DaemonError::NotFound`].
pub fn find_hydrantd(explicit: Option<&Path>) -> Result<PathBuf, DaemonError> {
    let candidate = match explicit {
        Some(p) => p.to_path_buf(),
        None => match std::env::var_os("HYDRANT_HYDRANTD") {
            Some(p) => PathBuf::from(p),
            None => std::env::current_exe()
                .ok()
                .and_then(|exe| exe.parent().map(|d| d.join("hydrantd")))
                .unwrap_or_else(|| PathBuf::from("hydrantd")),
        },
    };
    if candidate.is_file() {
        Ok(candidate)
    } else {
        Err(DaemonError::NotFound(candidate))
    }
}

/// A running `hydrantd` owned by this process.
#[derive(Debug)]
pub struct Daemon {
    child: Child,
    /// How it was started (for [`Daemon::restart`]).
    command: (PathBuf, Vec<String>),
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// Its address.
    pub addr: SocketAddr,
    /// Its data directory.
    pub data_dir: PathBuf,
    log: PathBuf,
    _scratch: tempfile::TempDir,
}

fn free_port() -> std::io::Result<u16> {
    // Bind port 0, read the port, release it: the daemon binds it a moment later. A race with
    // another process is possible but harmless here (start-up then fails and says so).
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

impl Daemon {
    /// Starts `binary` with a fresh data directory inside `parent` and `extra` arguments, and
    /// waits until `/health/ready` answers 200.
    ///
    /// # Errors
    /// [`DaemonError::Io`], [`DaemonError::NotReady`].
    pub fn start(binary: &Path, parent: &Path, extra: &[String]) -> Result<Daemon, DaemonError> {
        let io = |op: &'static str, path: &Path| hydrant_wal::IoError::of::<DaemonError>(op, path);
        std::fs::create_dir_all(parent).map_err(io("create", parent))?;
        let scratch = tempfile::Builder::new()
            .prefix("hydrantd-bench-")
            .tempdir_in(parent)
            .map_err(io("create a temporary directory in", parent))?;
        let data_dir = scratch.path().join("data");
        let log = scratch.path().join("hydrantd.log");
        let port = free_port().map_err(io("find a free port for", binary))?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let child = spawn(binary, &data_dir, addr, extra, &log)?;
        let mut daemon = Daemon {
            child,
            command: (binary.to_path_buf(), extra.to_vec()),
            endpoint: format!("http://{addr}"),
            addr,
            data_dir,
            log,
            _scratch: scratch,
        };
        daemon.wait_ready(Duration::from_secs(60))?;
        Ok(daemon)
    }

    /// Stops the daemon (SIGTERM; SIGKILL if it lingers) and starts it again on the same data
    /// directory, port and arguments; waits until it is ready.
    ///
    /// # Errors
    /// As [`Daemon::start`].
    pub fn restart(&mut self) -> Result<(), DaemonError> {
        self.stop();
        self.child = spawn(
            &self.command.0,
            &self.data_dir,
            self.addr,
            &self.command.1,
            &self.log,
        )?;
        self.wait_ready(Duration::from_secs(60))
    }

    /// SIGTERM, then SIGKILL after 15 s; reaps the process ([`Daemon::restart`] starts it
    /// again).
    pub fn stop(&mut self) {
        // Already reaped (its pid may belong to another process by now): nothing to signal.
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: kill(2) on the pid of our own child, which has not been reaped yet.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Memory figures of the daemon now, from `/proc/PID/status`; `None` when `/proc` does not
    /// say (another system, or the process is gone).
    #[must_use]
    pub fn memory(&self) -> Option<Memory> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let kib = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        };
        Some(Memory {
            peak_rss_kib: kib("VmHWM:")?,
            rss_anon_kib: kib("RssAnon:")?,
            rss_file_kib: kib("RssFile:")?,
            rss_shmem_kib: kib("RssShmem:")?,
        })
    }

    /// Its process id.
    #[must_use]
    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).unwrap_or(i32::MAX)
    }

    /// Kills the daemon with SIGKILL (no shutdown: the crash a restart recovers from) and reaps
    /// it.
    pub fn kill_hard(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The length of its log file so far: [`Daemon::log_since`] reads what a later start
    /// appends.
    #[must_use]
    pub fn log_len(&self) -> u64 {
        std::fs::metadata(&self.log).map_or(0, |m| m.len())
    }

    /// Its log from byte `offset` on.
    #[must_use]
    pub fn log_since(&self, offset: u64) -> String {
        let text = std::fs::read(&self.log).unwrap_or_default();
        let from = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(text.len());
        String::from_utf8_lossy(&text[from..]).into_owned()
    }

    /// Starts the (stopped or killed) daemon again on the same data directory, port and
    /// arguments without waiting; returns the moment just before the spawn. Then
    /// [`Daemon::poll_ready`] waits.
    ///
    /// # Errors
    /// [`DaemonError::Io`] when it cannot be started.
    pub fn spawn_again(&mut self) -> Result<Instant, DaemonError> {
        let started = Instant::now();
        self.child = spawn(
            &self.command.0,
            &self.data_dir,
            self.addr,
            &self.command.1,
            &self.log,
        )?;
        Ok(started)
    }

    /// Polls `/health/ready` every `every` until it answers 200 (returns the moment it did) or
    /// `limit` passes.
    ///
    /// # Errors
    /// [`DaemonError::NotReady`] when the daemon exits or does not become ready in time.
    pub fn poll_ready(&mut self, every: Duration, limit: Duration) -> Result<Instant, DaemonError> {
        let deadline = Instant::now() + limit;
        loop {
            if health_ready(self.addr) {
                return Ok(Instant::now());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(DaemonError::NotReady {
                    reason: format!("it exited with {status}"),
                    log: tail(&self.log),
                });
            }
            if Instant::now() > deadline {
                return Err(DaemonError::NotReady {
                    reason: format!("/health/ready not 200 after {} s", limit.as_secs()),
                    log: tail(&self.log),
                });
            }
            std::thread::sleep(every);
        }
    }

    fn wait_ready(&mut self, limit: Duration) -> Result<(), DaemonError> {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(DaemonError::NotReady {
                    reason: format!("it exited with {status}"),
                    log: tail(&self.log),
                });
            }
            if health_ready(self.addr) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(DaemonError::NotReady {
                    reason: format!("/health/ready not 200 after {} s", limit.as_secs()),
                    log: tail(&self.log),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // SIGTERM first: a clean shutdown closes the WALs; SIGKILL if it takes too long.
        self.stop();
    }
}

/// A daemon's memory at one moment (`/proc/PID/status`), KiB.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct Memory {
    /// `VmHWM`: the peak resident set since the start.
    pub peak_rss_kib: u64,
    /// `RssAnon`: resident anonymous memory (heap, stacks).
    pub rss_anon_kib: u64,
    /// `RssFile`: resident file-backed pages (the binary, mapped WAL segments).
    pub rss_file_kib: u64,
    /// `RssShmem`: resident shared memory.
    pub rss_shmem_kib: u64,
}

/// Starts `binary` on `data_dir` and `addr` with `extra` arguments, its output appended to `log`.
fn spawn(
    binary: &Path,
    data_dir: &Path,
    addr: SocketAddr,
    extra: &[String],
    log: &Path,
) -> Result<Child, DaemonError> {
    let io = |op: &'static str, path: &Path| hydrant_wal::IoError::of::<DaemonError>(op, path);
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(io("create", log))?;
    let log_err = log_file.try_clone().map_err(io("open", log))?;
    Command::new(binary)
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--listen")
        .arg(addr.to_string())
        .args(extra)
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(log_err)
        .spawn()
        .map_err(io("start", binary))
}

/// True when `GET /health/ready` answers 200.
fn health_ready(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /health/ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 16];
    let mut got = 0;
    while got < buf.len() {
        match s.read(&mut buf[got..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    buf[..got].starts_with(b"HTTP/1.1 200")
}

/// Creates a DirectPut stream with an ExtendedS3 destination into `bucket` (the daemon's local
/// object store when it has no S3 endpoint) and waits until it is ACTIVE.
///
/// # Errors
/// [`DaemonError::Api`].
pub async fn create_stream(
    client: &FirehoseClient,
    name: &str,
    bucket: &str,
    compression: &str,
    size_in_mbs: u32,
    interval_in_seconds: u32,
) -> Result<(), DaemonError> {
    let input = json!({
        "DeliveryStreamName": name,
        "DeliveryStreamType": "DirectPut",
        "ExtendedS3DestinationConfiguration": {
            "RoleARN": "arn:aws:iam::123456789012:role/hydrant-bench",
            "BucketARN": format!("arn:aws:s3:::{bucket}"),
            "CompressionFormat": compression,
            "BufferingHints": {
                "SizeInMBs": size_in_mbs,
                "IntervalInSeconds": interval_in_seconds
            }
        }
    });
    let api = |what: String| move |source: ClientError| DaemonError::Api { what, source };
    let _: serde_json::Value = client
        .call("CreateDeliveryStream", &input)
        .await
        .map_err(api(format!("CreateDeliveryStream {name}")))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let d: serde_json::Value = client
            .call(
                "DescribeDeliveryStream",
                &json!({ "DeliveryStreamName": name }),
            )
            .await
            .map_err(api(format!("DescribeDeliveryStream {name}")))?;
        let status = d["DeliveryStreamDescription"]["DeliveryStreamStatus"]
            .as_str()
            .unwrap_or("");
        if status == "ACTIVE" {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(DaemonError::Api {
                what: format!("stream {name} still {status:?} after 30 s"),
                source: ClientError::Decode {
                    operation: "DescribeDeliveryStream".into(),
                    message: "not ACTIVE".into(),
                },
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
