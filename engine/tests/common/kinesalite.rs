//! kinesalite (a Kinesis Data Streams server in Node.js, in memory) as a child process on
//! 127.0.0.1, for the Kinesis source's tests. Installed by tests/run-all.sh
//! (`npm install kinesalite@3.3.3` under target/tools/kinesalite-3.3.3, or
//! `HYDRANT_KINESALITE_DIR`); missing, the test fails saying how to install it.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running kinesalite; killed on drop.
pub struct Kinesalite {
    child: Child,
    pub port: u16,
}

fn install_dir() -> PathBuf {
    std::env::var_os("HYDRANT_KINESALITE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| super::workspace().join("target/tools/kinesalite-3.3.3"))
}

/// How far [`Kinesalite::advance_clock`] moves kinesalite's clock: past its 24-hour retention.
pub const CLOCK_STEP_HOURS: u64 = 25;

impl Kinesalite {
    pub fn start() -> Kinesalite {
        Kinesalite::spawn(false)
    }

    /// As [`Kinesalite::start`], with a clock [`Kinesalite::advance_clock`] moves forward
    /// (kinesalite reads the time only through `Date.now`, which is offset): records put before
    /// the move are then past the stream's retention, and kinesalite trims them as Kinesis does.
    pub fn start_with_movable_clock() -> Kinesalite {
        Kinesalite::spawn(true)
    }

    /// Moves the clock of a [`Kinesalite::start_with_movable_clock`] server
    /// [`CLOCK_STEP_HOURS`] forward (SIGUSR2).
    pub fn advance_clock(&self) {
        let pid = self.child.id().to_string();
        let st = Command::new("kill").args(["-USR2", &pid]).status().unwrap();
        assert!(st.success());
        // The signal is handled between two events of kinesalite's loop: a moment.
        std::thread::sleep(Duration::from_millis(300));
    }

    fn spawn(movable_clock: bool) -> Kinesalite {
        let dir = install_dir();
        assert!(
            dir.join("node_modules/kinesalite/package.json").exists(),
            "kinesalite is not installed in {}: run `mkdir -p {0} && cd {0} && npm install \
             kinesalite@3.3.3` (tests/run-all.sh does), or set HYDRANT_KINESALITE_DIR",
            dir.display()
        );
        let port = super::free_port();
        let clock = if movable_clock {
            format!(
                "let offset = 0; const realNow = Date.now; Date.now = () => realNow() + offset; \
                 process.on('SIGUSR2', () => {{ offset += {CLOCK_STEP_HOURS} * 3600 * 1000 }}); "
            )
        } else {
            String::new()
        };
        let script = format!(
            "{clock}require('kinesalite')({{createStreamMs: 50, deleteStreamMs: 50, updateStreamMs: 50, \
             shardLimit: 50}}).listen({port}, '127.0.0.1')"
        );
        let child = Command::new("node")
            .arg("-e")
            .arg(script)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let k = Kinesalite { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "kinesalite did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        k
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The environment that points hydrantd at this server.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("HYDRANT_KINESIS_ENDPOINT".into(), self.endpoint()),
            ("HYDRANT_KINESIS_ACCESS_KEY_ID".into(), "K".into()),
            ("HYDRANT_KINESIS_SECRET_ACCESS_KEY".into(), "S".into()),
            ("HYDRANT_KINESIS_POLL_INTERVAL_MS".into(), "200".into()),
        ]
    }
}

impl Drop for Kinesalite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
