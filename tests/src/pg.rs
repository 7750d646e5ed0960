//! A throwaway PostgreSQL cluster for tests: `initdb` into a temporary directory, `pg_ctl start`
//! on a free 127.0.0.1 port with the socket in that directory, `pg_ctl -m immediate stop` and the
//! directory removed on drop.
//!
//! The binaries come from `$HYDRANT_PG_BIN` (a directory holding `initdb`, `pg_ctl`, `psql`), else
//! from the newest `/usr/lib/postgresql/<version>/bin`. Without them [`TestPostgres::start`] fails
//! with a message saying how to install PostgreSQL: a test that needs the server fails, it never
//! skips.
//!
//! `initdb` and the server refuse to run as root. As root, the harness runs them as the
//! `postgres` OS user (`runuser -u postgres --`) and hands the temporary directory to that user.
//! `psql` is a client and runs as whoever we are, over TCP with trust authentication.

use std::fmt;
use std::io;
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Why the cluster could not be started or asked.
#[derive(Debug, thiserror::Error)]
pub enum PgHarnessError {
    /// No PostgreSQL binaries were found.
    #[error(
        "PostgreSQL binaries not found ({0}): install PostgreSQL (`apt-get install -y postgresql`) \
         or point HYDRANT_PG_BIN at the directory holding initdb, pg_ctl and psql"
    )]
    BinariesMissing(String),
    /// A file-system step or a process spawn failed.
    #[error("{step}: {source}")]
    Io {
        /// What was being done.
        step: String,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A command ran and failed.
    #[error("{command} failed ({status}): {output}")]
    Command {
        /// The command line, shortened.
        command: String,
        /// Its exit status.
        status: String,
        /// Its standard error (and the server log's tail, for a failed start).
        output: String,
    },
}

fn io_error(step: impl Into<String>) -> impl FnOnce(io::Error) -> PgHarnessError {
    let step = step.into();
    move |source| PgHarnessError::Io { step, source }
}

/// A running throwaway PostgreSQL cluster; stopped and removed when dropped.
pub struct TestPostgres {
    /// The temporary directory: `data/` (the cluster), `server.log`, the socket.
    base: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    /// Whether initdb and pg_ctl run through `runuser -u postgres --` (we are root).
    as_postgres: bool,
}

impl fmt::Debug for TestPostgres {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestPostgres")
            .field("base", &self.base.path())
            .field("port", &self.port)
            .finish()
    }
}

/// The directory of the PostgreSQL binaries: `$HYDRANT_PG_BIN`, else the newest
/// `/usr/lib/postgresql/<major>/bin` holding `initdb`.
///
/// # Errors
/// [`PgHarnessError::BinariesMissing`] when neither exists.
pub fn pg_bin_dir() -> Result<PathBuf, PgHarnessError> {
    if let Some(dir) = std::env::var_os("HYDRANT_PG_BIN") {
        let dir = PathBuf::from(dir);
        if dir.join("initdb").is_file() && dir.join("pg_ctl").is_file() {
            return Ok(dir);
        }
        return Err(PgHarnessError::BinariesMissing(format!(
            "HYDRANT_PG_BIN={} holds no initdb and pg_ctl",
            dir.display()
        )));
    }
    let root = Path::new("/usr/lib/postgresql");
    let mut best: Option<(u32, PathBuf)> = None;
    if let Ok(entries) = std::fs::read_dir(root) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(major) = name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let bin = entry.path().join("bin");
            if bin.join("initdb").is_file() && best.as_ref().is_none_or(|(m, _)| major > *m) {
                best = Some((major, bin));
            }
        }
    }
    best.map(|(_, bin)| bin).ok_or_else(|| {
        PgHarnessError::BinariesMissing(format!(
            "HYDRANT_PG_BIN unset and no {}/<version>/bin/initdb",
            root.display()
        ))
    })
}

fn free_port() -> Result<u16, PgHarnessError> {
    // Bind, read the port, release it: the server binds it a moment later. Another process could
    // take it in between; start() then tries another port.
    let listener = TcpListener::bind("127.0.0.1:0").map_err(io_error("bind a free port"))?;
    let port = listener
        .local_addr()
        .map_err(io_error("read the free port"))?
        .port();
    Ok(port)
}

fn run(mut command: Command, what: &str) -> Result<Output, PgHarnessError> {
    let output = command
        .output()
        .map_err(io_error(format!("spawn {what}")))?;
    if !output.status.success() {
        return Err(PgHarnessError::Command {
            command: what.to_string(),
            status: output.status.to_string(),
            output: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(output)
}

impl TestPostgres {
    /// Creates and starts a cluster (trust authentication, superuser `postgres`, UTF8, no
    /// locale, no fsync during initdb) on a free 127.0.0.1 port. Takes about a second.
    ///
    /// # Errors
    /// [`PgHarnessError::BinariesMissing`], or the step that failed with its output.
    pub fn start() -> Result<TestPostgres, PgHarnessError> {
        let bin = pg_bin_dir()?;
        let base = tempfile::Builder::new()
            .prefix("hydrant-pg-")
            .tempdir()
            .map_err(io_error("create the cluster's temporary directory"))?;
        let owner = std::fs::metadata(base.path())
            .map_err(io_error("stat the temporary directory"))?
            .uid();
        let as_postgres = owner == 0;
        if as_postgres {
            let mut chown = Command::new("chown");
            chown.arg("postgres:").arg(base.path());
            run(
                chown,
                "chown postgres: <cluster dir> (as root the server runs as postgres)",
            )?;
        }
        let mut pg = TestPostgres {
            base,
            bin,
            port: 0,
            as_postgres,
        };
        let mut initdb = pg.server_command("initdb");
        initdb
            .arg("-D")
            .arg(pg.data_dir())
            .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale"])
            .arg("--no-sync");
        run(initdb, "initdb")?;
        let mut last_error = None;
        for _ in 0..3 {
            pg.port = free_port()?;
            match pg.pg_ctl_start() {
                Ok(()) => return Ok(pg),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| PgHarnessError::Command {
            command: "pg_ctl start".into(),
            status: "not run".into(),
            output: String::new(),
        }))
    }

    fn pg_ctl_start(&self) -> Result<(), PgHarnessError> {
        let mut start = self.server_command("pg_ctl");
        start
            .arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(self.log_path())
            .args(["-w", "-t", "60", "-o"])
            .arg(format!(
                "-c listen_addresses=127.0.0.1 -p {} -k {}",
                self.port,
                self.base.path().display()
            ))
            .arg("start");
        run(start, "pg_ctl start").map(drop).map_err(|e| match e {
            PgHarnessError::Command {
                command,
                status,
                output,
            } => PgHarnessError::Command {
                command,
                status,
                output: format!("{output}\nserver log:\n{}", self.log_tail()),
            },
            other => other,
        })
    }

    /// A command running one of the server binaries, as `postgres` when we are root.
    fn server_command(&self, binary: &str) -> Command {
        let path = self.bin.join(binary);
        if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        }
    }

    fn data_dir(&self) -> PathBuf {
        self.base.path().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.base.path().join("server.log")
    }

    /// The last lines of the server log (for failure messages).
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// The TCP port the server listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `postgres://postgres@127.0.0.1:<port>/<db>`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// `jdbc:postgresql://127.0.0.1:<port>/<db>`: what a RedshiftDestinationConfiguration's
    /// `ClusterJDBCURL` would hold for this server.
    pub fn jdbc_url(&self, db: &str) -> String {
        format!("jdbc:postgresql://127.0.0.1:{}/{db}", self.port)
    }

    /// Creates database `name`.
    ///
    /// # Errors
    /// psql's failure.
    pub fn create_database(&self, name: &str) -> Result<(), PgHarnessError> {
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        self.try_psql("postgres", &format!("CREATE DATABASE {quoted}"))
            .map(drop)
    }

    /// Runs `sql` in `db` with `psql -At` (unaligned, tuples only, stop at the first error) and
    /// returns its output without the final newline.
    ///
    /// # Errors
    /// psql's failure with its standard error.
    pub fn try_psql(&self, db: &str, sql: &str) -> Result<String, PgHarnessError> {
        let mut psql = Command::new(self.bin.join("psql"));
        psql.args(["-X", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1"])
            .args(["-p", &self.port.to_string(), "-U", "postgres", "-d", db])
            .args(["-c", sql]);
        let output = run(psql, &format!("psql -c {sql:.200}"))?;
        let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
        if text.ends_with('\n') {
            text.pop();
        }
        Ok(text)
    }

    /// [`TestPostgres::try_psql`] for assertions: panics with psql's error.
    ///
    /// # Panics
    /// When psql fails.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        self.try_psql(db, sql)
            .unwrap_or_else(|e| panic!("psql on database {db}: {e}"))
    }

    /// Stops the server at once (`pg_ctl -m immediate stop`), keeping the directory: a test of
    /// what a client sees when the server is gone. Dropping stops it too.
    ///
    /// # Errors
    /// pg_ctl's failure.
    pub fn stop(&self) -> Result<(), PgHarnessError> {
        let mut stop = self.server_command("pg_ctl");
        stop.arg("-D")
            .arg(self.data_dir())
            .args(["-m", "immediate", "-w", "stop"]);
        run(stop, "pg_ctl stop").map(drop)
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        if self.data_dir().join("postmaster.pid").exists() {
            let _ = self.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_answers_and_stops() {
        let pg = TestPostgres::start().unwrap_or_else(|e| panic!("{e}"));
        pg.create_database("harness")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(pg.psql("harness", "SELECT 40 + 2"), "42");
        assert!(pg
            .url("harness")
            .ends_with(&format!(":{}/harness", pg.port())));
        assert!(pg.try_psql("harness", "SELECT nope").is_err());
        let data = pg.data_dir();
        drop(pg);
        assert!(!data.exists());
    }
}
