//! # The console: `/console/` on the daemon's listener
//!
//! Pages rendered on the server (`pages.rs`, maud), charts drawn on the server as SVG
//! (`charts.rs`, plotters), one small script of our own that refreshes the live part of a page
//! (`assets.rs`). No build step outside cargo: everything is in the binary.
//!
//! How a request flows (`routes.rs`):
//! 1. Access: the console is *open* (no login) when no credential is configured (no
//!    `[console] password_hash`, no `[auth]` keys) and the peer is on loopback, like the API.
//!    With credentials it wants a logged-in session (`session.rs`); without credentials a
//!    non-loopback peer is refused. Without access a page redirects to the login page and
//!    anything else answers 401.
//! 2. A state-changing request (every POST) must carry the session's cookie and its CSRF
//!    token (`csrf.rs`).
//! 3. Create, update and delete build the Firehose request a client would send (`forms.rs`) and
//!    run it through the API's decoding and dispatch: the same validation, the same engine
//!    path, the same error messages.
//! 4. Pages read the streams through [`crate::Engine::console_snapshot`] and the last hour
//!    through `history.rs`, which a sampler task fills once a second ([`Console::run_sampler`]).
//!
//! Every answer carries a strict Content-Security-Policy (scripts and styles from the console's
//! own files only), `X-Frame-Options: DENY`, `nosniff`, no referrer and no caching.

mod assets;
mod charts;
mod csrf;
mod forms;
mod history;
mod pages;
mod routes;
mod session;
mod settings;
mod snapshot;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;

pub use history::{History, Point, POINTS, STEP_MS};
pub use settings::{hash_password, ConsoleConfig, HashError, PasswordHash};
pub use snapshot::{backlog_bytes, DeliverySnapshot, StreamSnapshot};

use crate::config::{AccessKey, Config};
use crate::streams::Engine;

/// The console's state.
#[derive(Debug)]
pub struct Console {
    password: Option<PasswordHash>,
    keys: Vec<AccessKey>,
    /// Served over TLS: cookies are Secure.
    secure: bool,
    /// S3 destinations write to the local object store.
    local_store: bool,
    sessions: session::Sessions,
    csrf: csrf::Csrf,
    history: History,
}

/// An HTTP answer.
pub type Reply = http::Response<Full<Bytes>>;

impl Console {
    /// The console of `config`; `None` when `[console] enabled = false`.
    ///
    /// # Errors
    /// The password hash cannot be used.
    pub fn new(config: &Config) -> Result<Option<Arc<Console>>, HashError> {
        if !config.console.enabled {
            return Ok(None);
        }
        let password = config
            .console
            .password_hash
            .as_deref()
            .map(PasswordHash::parse)
            .transpose()?;
        Ok(Some(Arc::new(Console {
            password,
            keys: config.auth.keys.clone(),
            secure: config.tls.cert.is_some(),
            local_store: config.s3.endpoint.is_none(),
            sessions: session::Sessions::default(),
            csrf: csrf::Csrf::default(),
            history: History::default(),
        })))
    }

    /// The console's URL on `listen`, for the start-up log line.
    #[must_use]
    pub fn url(&self, listen: SocketAddr) -> String {
        let scheme = if self.secure { "https" } else { "http" };
        let host = if listen.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else if listen.is_ipv6() {
            format!("[{}]", listen.ip())
        } else {
            listen.ip().to_string()
        };
        format!("{scheme}://{host}:{}/console/", listen.port())
    }

    /// Whether a login is required (credentials are configured).
    #[must_use]
    pub fn needs_login(&self) -> bool {
        self.password.is_some() || !self.keys.is_empty()
    }

    /// Fills the history once a second, until the engine closes.
    pub async fn run_sampler(self: Arc<Self>, engine: Arc<Engine>) {
        let mut every = tokio::time::interval(Duration::from_secs(1));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            every.tick().await;
            let snaps = engine.console_snapshot(None);
            self.history.tick(&snaps, hydrant_wal::now_ms(), |s| {
                engine.metrics().sync_latency(s)
            });
        }
    }

    /// Serves one request under `/console`.
    pub async fn handle<B: RequestBody>(
        &self,
        engine: Option<&Arc<Engine>>,
        peer: SocketAddr,
        req: http::Request<B>,
    ) -> Reply {
        routes::secure_headers(routes::route(self, engine, peer, req).await)
    }
}

/// A request body the console reads: hyper's, or the tests' full bodies.
pub trait RequestBody:
    http_body::Body<Data = Bytes, Error: Into<Box<dyn std::error::Error + Send + Sync>>>
    + Send
    + 'static
{
}

impl<B> RequestBody for B where
    B: http_body::Body<Data = Bytes, Error: Into<Box<dyn std::error::Error + Send + Sync>>>
        + Send
        + 'static
{
}
