//! The HTTP(S) server: accept loop, optional TLS (rustls, ring provider), graceful shutdown.
//!
//! HTTP/1.1 only (what the AWS SDKs, boto3 and Fluent Bit speak to Firehose). On shutdown the
//! listener closes first, then each connection finishes the request it is serving (a put in
//! flight waits for its WAL sync and gets its answer) and closes, within the grace period.
//!
//! At most `max_connections` connections are served at once: the accept loop takes a permit
//! before it accepts, so connections past the cap wait in the kernel's listen backlog and hold
//! no descriptor of the process (the WAL, checkpoints and delivery keep theirs; see
//! [`crate::config::Config::connection_cap`]). A permit is given back when its connection
//! closes.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::rustls;
use tokio_rustls::TlsAcceptor;

use crate::api::{handle, AppState};

/// A TLS set-up failure.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate file could not be read or parsed.
    #[error("TLS certificate {path}: {message}")]
    Cert {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The key file could not be read or parsed.
    #[error("TLS key {path}: {message}")]
    Key {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// rustls refused the pair.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A TLS acceptor for a PEM certificate chain and key.
///
/// # Errors
/// [`TlsError`].
pub fn tls_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(Iterator::collect)
        .map_err(|e| TlsError::Cert {
            path: cert.display().to_string(),
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Cert {
            path: cert.display().to_string(),
            message: "no certificate in the file".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
        path: key.display().to_string(),
        message: e.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves until `shutdown` completes, then drains connections for at most `grace`. At most
/// `max_connections` connections at once.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
    max_connections: usize,
) {
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(max_connections.max(1)));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let state = state.clone();
                let watcher = graceful.watcher();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    let svc = service_fn(move |req| handle(state.clone(), peer, req));
                    let builder = {
                        let mut b = http1::Builder::new();
                        b.timer(TokioTimer::new())
                            .header_read_timeout(Duration::from_secs(30))
                            .keep_alive(true)
                            // Read a body 64 KiB at a time (hyper's default grows its read
                            // buffer to ~400 KiB per connection): the handler copies the
                            // frames into one buffer anyway, and under PutRecordBatch load the
                            // daemon's peak RSS was 8 MiB lower at the same throughput (issue 20).
                            // It also bounds a request head to 64 KiB.
                            .max_buf_size(64 << 10);
                        b
                    };
                    let result = match tls {
                        Some(acceptor) => match acceptor.accept(stream).await {
                            Ok(s) => {
                                watcher
                                    .watch(builder.serve_connection(TokioIo::new(s), svc))
                                    .await
                            }
                            Err(e) => {
                                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                                return;
                            }
                        },
                        None => {
                            watcher
                                .watch(builder.serve_connection(TokioIo::new(stream), svc))
                                .await
                        }
                    };
                    if let Err(e) = result {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!("stopped accepting connections; draining in-flight requests");
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some connections were still busy after the grace period");
    }
}
