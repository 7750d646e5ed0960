//! A real S3 server for the daemon-as-a-process tests: s3s-fs (0.14.1, SigV4-checking, objects
//! as plain files under its data directory, buckets its subdirectories), started on a free
//! port, stopped and restarted on demand, killed on drop.
//!
//! The binary comes from `$HYDRANT_S3S_FS`, else `<workspace>/target/tools/bin/s3s-fs`; a
//! missing binary fails the test (install: `cargo install --locked s3s-fs@0.14.1 --features
//! binary --root target/tools`).

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The access key every test's s3s-fs takes.
pub const KEY: &str = "hydrant-s3-key";
/// Its secret.
pub const SECRET: &str = "hydrant-s3-secret";

/// A running (or stopped) s3s-fs. Invariant: `child` is `Some` exactly while it is up.
pub struct S3sFs {
    child: Option<Child>,
    pub port: u16,
    pub data: PathBuf,
}

impl S3sFs {
    /// Starts s3s-fs over `data` with `buckets` made.
    pub fn start(data: &Path, buckets: &[&str]) -> S3sFs {
        std::fs::create_dir_all(data).unwrap();
        for b in buckets {
            std::fs::create_dir_all(data.join(b)).unwrap();
        }
        let mut s = S3sFs {
            child: None,
            port: super::free_port(),
            data: data.to_path_buf(),
        };
        s.up();
        s
    }

    /// Starts it again on the same port (after [`S3sFs::down`]).
    pub fn up(&mut self) {
        debug_assert!(self.child.is_none(), "s3s-fs is already up");
        let child = Command::new(hydrant_tests::s3s::s3s_fs_binary())
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--access-key", KEY, "--secret-key", SECRET])
            .arg(&self.data)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let addr = self.addr();
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_err() {
            assert!(Instant::now() < deadline, "s3s-fs did not listen on {addr}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops it (SIGKILL).
    pub fn down(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The daemon's `[s3]` section for an endpoint in front of this server (itself, or a
    /// recording proxy).
    pub fn s3_section(endpoint: &str) -> String {
        format!(
            "[s3]\nendpoint = \"{endpoint}\"\nforce_path_style = true\naccess_key_id = \"{KEY}\"\n\
             secret_access_key = \"{SECRET}\"\n"
        )
    }
}

impl Drop for S3sFs {
    fn drop(&mut self) {
        self.down();
    }
}
