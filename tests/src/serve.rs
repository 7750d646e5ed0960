//! What the stand-in servers share: a recorded request's header lookup, the thread their runtime runs on ([`ServerThread`], stopped
//! and joined when dropped), and the accept loop in it: HTTP/1.1 connections served with one
//! handler until the stop signal.

use std::future::Future;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::oneshot;

/// The first value of header `name` (case-insensitive) among `headers` as a stand-in server
/// recorded them (names in lower case).
pub(crate) fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    let name = name.to_ascii_lowercase();
    headers
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.as_str())
}

/// A stand-in server's thread. Dropped, it sends the stop signal and waits for the thread.
#[derive(Debug)]
pub(crate) struct ServerThread {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ServerThread {
    /// Runs `serve` (the server, given its stop signal) on `runtime` in a thread named `name`.
    pub(crate) fn spawn<F, Fut>(
        name: String,
        runtime: tokio::runtime::Runtime,
        serve: F,
    ) -> std::io::Result<ServerThread>
    where
        F: FnOnce(oneshot::Receiver<()>) -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
        let (stop, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || runtime.block_on(serve(stopped)))?;
        Ok(ServerThread {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for ServerThread {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Serves connections accepted on `listener` with `handle` until `stop` fires (or its sender
/// is dropped). An `Err` from `handle` ends that connection without an answer.
pub(crate) async fn serve_http<F, Fut, E>(
    listener: std::net::TcpListener,
    mut stop: oneshot::Receiver<()>,
    handle: F,
) where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<Response<Full<Bytes>>, E>> + Send + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("test server: cannot register the listener: {e}");
            return;
        }
    };
    loop {
        let accepted = tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else {
            continue;
        };
        let handle = handle.clone();
        tokio::spawn(async move {
            // A dropped reply ends the connection with an error: nothing to report.
            let _ = http1::Builder::new()
                .timer(TokioTimer::new())
                .serve_connection(TokioIo::new(stream), service_fn(handle))
                .await;
        });
    }
}
