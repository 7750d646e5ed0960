//! [`BulkReceiver`]: a stand-in for an OpenSearch / Elasticsearch cluster's `_bulk` API.
//!
//! No OpenSearch installs on the machines the tests run on, so the tests run this receiver
//! instead. It is **a stand-in, not OpenSearch**: it keeps documents in memory, has no mappings,
//! no search, no shards. What it does follow strictly is the `_bulk` wire format of
//! **OpenSearch 2.x** (the default, [`BulkFlavor::OpenSearch2`]) and **Elasticsearch 7.x**
//! ([`BulkFlavor::Elasticsearch7`]), as their REST layers accept and answer it:
//!
//! - `POST` (or `PUT`) `/_bulk` and `/<index>/_bulk` (the path's index is the default `_index`);
//!   query parameters are accepted and ignored.
//! - `Content-Type` must be `application/x-ndjson` or `application/json` (a charset parameter is
//!   allowed); anything else, or none, gets `406` with
//!   `{"error":"Content-Type header [...] is not supported","status":406}`.
//! - `Content-Encoding: gzip` bodies are inflated; the body (inflated) may be at most
//!   [`MAX_CONTENT_LENGTH`] bytes (`http.max_content_length`'s default), else `413`.
//! - The body is NDJSON and must end with `\n`. Each action line is a JSON object with exactly one
//!   key, `index`, `create` or `delete`, whose value holds the metadata (`_index`, `_id`, and on
//!   Elasticsearch 7 `_type`; OpenSearch 2 removed types and refuses `_type`). `index` and
//!   `create` are followed by a source line. Empty lines are skipped, as the real parser does.
//!   A malformed request (bad JSON, unknown action, unknown metadata field, no `_index`, a missing
//!   source line, no trailing newline, no actions) gets `400` and one error document:
//!   `{"error":{"root_cause":[..],"type":"parse_exception"|"illegal_argument_exception"|..,
//!   "reason":".."},"status":400}`.
//! - A source line that is not a JSON object fails only its item, with `400`
//!   `mapper_parsing_exception`, as the real cluster does.
//! - The answer is `200` with `{"took":n,"errors":bool,"items":[{"index":{"_index","_id",
//!   "_version","result":"created"|"updated","_shards","_seq_no","_primary_term","status"}}]}`
//!   (Elasticsearch 7 adds `"_type":"_doc"`); a failed item is
//!   `{"index":{"_index","_id","status":429,"error":{"type","reason"}}}`.
//! - Documents without `_id` get a generated 20-character id. Documents are stored by
//!   `(_index, _id)`: indexing an existing id replaces it (`"updated"`, version + 1); `create` of
//!   an existing id fails the item with `409` `version_conflict_engine_exception`.
//! - Optional HTTP basic authentication ([`BulkReceiverBuilder::basic_auth`]): `401` with
//!   `security_exception` otherwise, as the security plugin answers.
//!
//! `GET /` answers the cluster-information document (version `2.11.0` / `7.10.2`).
//!
//! # Failure injection
//!
//! - [`BulkReceiver::fail_next_requests`]: the next `n` requests get a whole-request error status
//!   (`429` `rejected_execution_exception`, `503`, ...) without being applied.
//! - [`BulkReceiver::fail_items`]: items matching an [`ItemMatcher`] fail with a given status,
//!   either a limited number of times per document (then they succeed) or for good. The
//!   [`ItemFailure::permanent_mapping_error`] preset is the `400` `mapper_parsing_exception` a
//!   mapping conflict gives.
//!
//! The server runs on its own thread with its own tokio runtime, so synchronous tests can use it;
//! dropping the receiver stops it.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::{self, Read as _};
use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use serde::Serialize;
use serde_json::Value;

use crate::serve::ServerThread;

/// The largest request body accepted (after inflating), OpenSearch's default
/// `http.max_content_length` (100 MiB).
pub const MAX_CONTENT_LENGTH: usize = 100 * 1024 * 1024;

/// How many requests [`BulkReceiver::requests`] keeps (the oldest are dropped first).
pub const REQUEST_LOG_MAX: usize = 10_000;

/// Which cluster's wire format the receiver follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum BulkFlavor {
    /// OpenSearch 2.x: no mapping types (`_type` in an action line is refused), rejected
    /// executions are `rejected_execution_exception`.
    #[default]
    OpenSearch2,
    /// Elasticsearch 7.x: `_type` is accepted (and echoed, `_doc` by default), rejected
    /// executions are `es_rejected_execution_exception`.
    Elasticsearch7,
}

impl BulkFlavor {
    fn rejected_execution_type(self) -> &'static str {
        match self {
            BulkFlavor::OpenSearch2 => "rejected_execution_exception",
            BulkFlavor::Elasticsearch7 => "es_rejected_execution_exception",
        }
    }
}

/// Which items an [`ItemFailure`] applies to.
#[derive(Clone)]
pub enum ItemMatcher {
    /// Every item.
    All,
    /// Items at 1-based positions `k`, `2k`, `3k`, ... within their request.
    EveryNth(usize),
    /// Items whose source line contains this text (byte for byte).
    SourceContains(String),
    /// Items whose `_id` is this one.
    Id(String),
    /// Items whose parsed source satisfies the predicate.
    Predicate(Arc<dyn Fn(&Value) -> bool + Send + Sync>),
}

impl fmt::Debug for ItemMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ItemMatcher::All => f.write_str("All"),
            ItemMatcher::EveryNth(k) => write!(f, "EveryNth({k})"),
            ItemMatcher::SourceContains(s) => write!(f, "SourceContains({s:?})"),
            ItemMatcher::Id(id) => write!(f, "Id({id:?})"),
            ItemMatcher::Predicate(_) => f.write_str("Predicate(..)"),
        }
    }
}

/// An injected per-item failure.
#[derive(Clone, Debug)]
pub struct ItemFailure {
    /// Which items fail.
    pub matcher: ItemMatcher,
    /// The item status (`429`, `503`, `400`, ...).
    pub status: u16,
    /// The item error's `type`.
    pub error_type: String,
    /// The item error's `reason`.
    pub reason: String,
    /// How many times each matching document fails before it is accepted (counted per
    /// `(_index, _id)`, or per source text without an id); `None`: it always fails.
    pub times: Option<u32>,
}

impl ItemFailure {
    /// Matching items are rejected `times` times each with `429` (the flavor's rejected-execution
    /// error), then accepted.
    pub fn throttled(matcher: ItemMatcher, times: u32) -> ItemFailure {
        ItemFailure {
            matcher,
            status: 429,
            error_type: String::new(), // filled with the flavor's type when installed
            reason: "rejected execution of coordinating operation [stand-in: injected]".into(),
            times: Some(times),
        }
    }

    /// Matching items fail for good with `400` `mapper_parsing_exception`, as a document that
    /// conflicts with the index mapping does.
    pub fn permanent_mapping_error(matcher: ItemMatcher) -> ItemFailure {
        ItemFailure {
            matcher,
            status: 400,
            error_type: "mapper_parsing_exception".into(),
            reason: "failed to parse field [value] of type [long] (stand-in: injected)".into(),
            times: None,
        }
    }
}

/// One stored document.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredDocument {
    /// The document source.
    pub source: Value,
    /// Its version: 1 when created, + 1 on each overwrite.
    pub version: u64,
    /// The mapping type it was indexed with (Elasticsearch 7 only).
    pub type_name: Option<String>,
}

/// One request as the receiver saw it.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// The method.
    pub method: String,
    /// The path and query.
    pub path: String,
    /// The headers, names lowercase, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The body after `Content-Encoding` was undone (empty when it could not be).
    pub body: Vec<u8>,
    /// The status answered.
    pub status: u16,
    /// How many actions the request held (0 when it was refused whole).
    pub items: usize,
}

impl RecordedRequest {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        crate::serve::header(&self.headers, name)
    }
}

/// Configures a [`BulkReceiver`] before it starts.
#[derive(Debug, Default)]
pub struct BulkReceiverBuilder {
    flavor: BulkFlavor,
    basic_auth: Option<(String, String)>,
}

impl BulkReceiverBuilder {
    /// The wire format to follow (default OpenSearch 2.x).
    pub fn flavor(mut self, flavor: BulkFlavor) -> Self {
        self.flavor = flavor;
        self
    }

    /// Requires HTTP basic authentication with these credentials.
    pub fn basic_auth(mut self, username: &str, password: &str) -> Self {
        self.basic_auth = Some((username.to_owned(), password.to_owned()));
        self
    }

    /// Binds 127.0.0.1 on a free port and starts serving.
    ///
    /// # Errors
    /// When the socket cannot be bound or the runtime cannot start.
    pub fn start(self) -> io::Result<BulkReceiver> {
        let listener = StdTcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            flavor: self.flavor,
            state: Mutex::new(State {
                basic_auth: self.basic_auth,
                ..State::default()
            }),
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let server_shared = Arc::clone(&shared);
        let server = ServerThread::spawn(
            format!("bulk-receiver-{}", addr.port()),
            runtime,
            move |stop| serve(listener, server_shared, stop),
        )?;
        Ok(BulkReceiver {
            addr,
            shared,
            _server: server,
        })
    }
}

/// A running `_bulk` stand-in server (see the module documentation).
pub struct BulkReceiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
    /// Stops the server when dropped.
    _server: ServerThread,
}

impl fmt::Debug for BulkReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BulkReceiver")
            .field("addr", &self.addr)
            .field("flavor", &self.shared.flavor)
            .finish_non_exhaustive()
    }
}

impl BulkReceiver {
    /// A builder (flavor, basic auth).
    pub fn builder() -> BulkReceiverBuilder {
        BulkReceiverBuilder::default()
    }

    /// Starts an OpenSearch 2.x receiver without authentication.
    ///
    /// # Errors
    /// When the socket cannot be bound or the runtime cannot start.
    pub fn start() -> io::Result<BulkReceiver> {
        BulkReceiverBuilder::default().start()
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`, the cluster endpoint to configure.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The stored documents' sources by `(_index, _id)`.
    pub fn documents(&self) -> BTreeMap<(String, String), Value> {
        self.shared
            .lock()
            .documents
            .iter()
            .map(|(k, d)| (k.clone(), d.source.clone()))
            .collect()
    }

    /// The stored documents with their versions by `(_index, _id)`.
    pub fn stored(&self) -> BTreeMap<(String, String), StoredDocument> {
        self.shared.lock().documents.clone()
    }

    /// How many requests arrived (any path, including refused ones).
    pub fn request_count(&self) -> usize {
        self.shared.lock().request_count
    }

    /// The requests received, oldest first (at most [`REQUEST_LOG_MAX`]).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// The next `n` requests get `status` (429, 500, 503, ...) and are not applied.
    pub fn fail_next_requests(&self, n: u32, status: u16) {
        let mut state = self.shared.lock();
        state.fail_requests = n;
        state.fail_requests_status = status;
    }

    /// Items matching `failure.matcher` fail as it says, from the next request on. Rules are
    /// checked in the order they were added; the first match applies.
    pub fn fail_items(&self, mut failure: ItemFailure) {
        if failure.error_type.is_empty() {
            failure.error_type = self.shared.flavor.rejected_execution_type().to_owned();
        }
        self.shared.lock().item_rules.push(ItemRule {
            failure,
            hits: HashMap::new(),
        });
    }

    /// Removes every injected failure.
    pub fn clear_failures(&self) {
        let mut state = self.shared.lock();
        state.fail_requests = 0;
        state.item_rules.clear();
    }
}

struct Shared {
    flavor: BulkFlavor,
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent data (every update is a single
        // insert or counter bump), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct ItemRule {
    failure: ItemFailure,
    hits: HashMap<String, u32>,
}

#[derive(Default)]
struct State {
    basic_auth: Option<(String, String)>,
    documents: BTreeMap<(String, String), StoredDocument>,
    requests: Vec<RecordedRequest>,
    request_count: usize,
    fail_requests: u32,
    fail_requests_status: u16,
    item_rules: Vec<ItemRule>,
    seq_no: u64,
    generated_ids: u64,
}

async fn serve(
    listener: StdTcpListener,
    shared: Arc<Shared>,
    stop: tokio::sync::oneshot::Receiver<()>,
) {
    crate::serve::serve_http(listener, stop, move |request| {
        let shared = Arc::clone(&shared);
        async move { Ok::<_, std::convert::Infallible>(handle(&shared, request).await) }
    })
    .await;
}

/// An answer before it is recorded.
struct Answer {
    status: u16,
    body: Vec<u8>,
    items: usize,
    www_authenticate: bool,
}

impl Answer {
    fn json(status: u16, body: &impl Serialize) -> Answer {
        Answer {
            status,
            body: serde_json::to_vec(body).unwrap_or_default(),
            items: 0,
            www_authenticate: false,
        }
    }
}

async fn handle(shared: &Shared, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let method = parts.method.clone();
    let path = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned());
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let header = |name: &str| -> Option<&str> {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };

    let raw = match Limited::new(body, MAX_CONTENT_LENGTH).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(_) => Err(()),
    };
    let decoded: Result<Vec<u8>, Answer> = match raw {
        Err(()) => Err(too_large()),
        Ok(raw) => match header("content-encoding") {
            None | Some("identity") => Ok(raw.to_vec()),
            Some(e) if e.eq_ignore_ascii_case("gzip") => gunzip(&raw),
            Some(other) => Err(error_answer(
                400,
                "illegal_argument_exception",
                &format!("unsupported content encoding [{other}]"),
            )),
        },
    };

    let mut state = shared.lock();
    state.request_count += 1;
    let (answer, body) = match decoded {
        Err(answer) => (answer, Vec::new()),
        Ok(body) => {
            let path = parts.uri.path();
            let answer = route(shared, &mut state, &method, path, header, &body, started);
            (answer, body)
        }
    };
    if state.requests.len() >= REQUEST_LOG_MAX {
        state.requests.remove(0);
    }
    state.requests.push(RecordedRequest {
        method: method.to_string(),
        path,
        headers: headers.clone(),
        body,
        status: answer.status,
        items: answer.items,
    });
    drop(state);

    let mut response = Response::new(Full::new(Bytes::from(answer.body)));
    *response.status_mut() =
        StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    if answer.www_authenticate {
        response.headers_mut().insert(
            "www-authenticate",
            HeaderValue::from_static("Basic realm=\"security\" charset=\"UTF-8\""),
        );
    }
    response
}

fn gunzip(raw: &[u8]) -> Result<Vec<u8>, Answer> {
    let mut out = Vec::new();
    let decoder = flate2::read::GzDecoder::new(raw);
    match decoder
        .take(MAX_CONTENT_LENGTH as u64 + 1)
        .read_to_end(&mut out)
    {
        Ok(_) if out.len() > MAX_CONTENT_LENGTH => Err(too_large()),
        Ok(_) => Ok(out),
        Err(e) => Err(error_answer(
            400,
            "parse_exception",
            &format!("cannot inflate gzip request body: {e}"),
        )),
    }
}

fn too_large() -> Answer {
    Answer::json(
        413,
        &serde_json::json!({
            "error": "Request Entity Too Large",
            "status": 413,
        }),
    )
}

#[allow(clippy::too_many_arguments)]
fn route<'h>(
    shared: &Shared,
    state: &mut State,
    method: &Method,
    path: &str,
    header: impl Fn(&str) -> Option<&'h str>,
    body: &[u8],
    started: Instant,
) -> Answer {
    if let Some(answer) = check_auth(state, path, header("authorization")) {
        return answer;
    }
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let default_index = match segments.as_slice() {
        [] if *method == Method::GET || *method == Method::HEAD => {
            return cluster_info(shared.flavor);
        }
        ["_bulk"] => None,
        [index, "_bulk"] if !index.starts_with('_') => Some((*index).to_owned()),
        _ => {
            return error_answer(
                400,
                "illegal_argument_exception",
                &format!("no handler found for uri [{path}] and method [{method}]"),
            )
        }
    };
    if *method != Method::POST && *method != Method::PUT {
        return Answer::json(
            405,
            &serde_json::json!({
                "error": format!(
                    "Incorrect HTTP method for uri [{path}] and method [{method}], \
                     allowed: [POST, PUT]"
                ),
                "status": 405,
            }),
        );
    }
    if let Some(answer) = check_content_type(header("content-type")) {
        return answer;
    }
    if state.fail_requests > 0 {
        state.fail_requests -= 1;
        return injected_request_failure(shared.flavor, state.fail_requests_status);
    }
    let actions = match parse_bulk(shared.flavor, body, default_index.as_deref()) {
        Ok(actions) => actions,
        Err(answer) => return answer,
    };
    let items: Vec<(String, bool)> = actions
        .iter()
        .enumerate()
        .map(|(position, action)| apply(shared.flavor, state, position + 1, action))
        .collect();
    let errors = items.iter().any(|(_, failed)| *failed);
    let texts: Vec<&str> = items.iter().map(|(text, _)| text.as_str()).collect();
    // Built by hand so every item keeps the cluster's field order.
    let body = format!(
        r#"{{"took":{},"errors":{errors},"items":[{}]}}"#,
        started.elapsed().as_millis(),
        texts.join(",")
    );
    Answer {
        status: 200,
        body: body.into_bytes(),
        items: items.len(),
        www_authenticate: false,
    }
}

fn check_auth(state: &State, path: &str, authorization: Option<&str>) -> Option<Answer> {
    let (user, password) = state.basic_auth.as_ref()?;
    let presented = authorization
        .and_then(|value| value.strip_prefix("Basic "))
        .and_then(|b64| {
            base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .ok()
        })
        .and_then(|raw| String::from_utf8(raw).ok());
    let reason = match presented {
        None => format!("missing authentication credentials for REST request [{path}]"),
        Some(pair) => match pair.split_once(':') {
            Some((u, p)) if u == user && p == password => return None,
            Some((u, _)) => format!("unable to authenticate user [{u}] for REST request [{path}]"),
            None => format!("missing authentication credentials for REST request [{path}]"),
        },
    };
    let mut answer = error_answer(401, "security_exception", &reason);
    answer.www_authenticate = true;
    Some(answer)
}

fn check_content_type(content_type: Option<&str>) -> Option<Answer> {
    let shown = content_type.unwrap_or("");
    let media = shown
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if media == "application/x-ndjson" || media == "application/json" {
        return None;
    }
    Some(Answer::json(
        406,
        &serde_json::json!({
            "error": format!("Content-Type header [{shown}] is not supported"),
            "status": 406,
        }),
    ))
}

fn cluster_info(flavor: BulkFlavor) -> Answer {
    let version = match flavor {
        BulkFlavor::OpenSearch2 => serde_json::json!({
            "distribution": "opensearch", "number": "2.11.0", "lucene_version": "9.7.0",
        }),
        BulkFlavor::Elasticsearch7 => serde_json::json!({
            "number": "7.10.2", "build_flavor": "oss", "lucene_version": "8.7.0",
        }),
    };
    Answer::json(
        200,
        &serde_json::json!({
            "name": "bulk-receiver",
            "cluster_name": "hydrant-stand-in",
            "version": version,
            "tagline": "a _bulk stand-in for hydrant's tests, not a search engine",
        }),
    )
}

fn injected_request_failure(flavor: BulkFlavor, status: u16) -> Answer {
    let (error_type, reason) = match status {
        429 => (
            flavor.rejected_execution_type(),
            "rejected execution of coordinating operation (stand-in: injected)",
        ),
        503 => (
            "cluster_block_exception",
            "blocked by: [SERVICE_UNAVAILABLE/2/no master] (stand-in: injected)",
        ),
        401 => (
            "security_exception",
            "unable to authenticate user (stand-in: injected)",
        ),
        403 => (
            "security_exception",
            "no permissions for [indices:data/write/bulk] (stand-in: injected)",
        ),
        _ => ("exception", "injected failure (stand-in)"),
    };
    error_answer(status, error_type, reason)
}

/// The error document the REST layer answers with: `{"error":{"root_cause":[..],"type","reason"},
/// "status"}`.
fn error_answer(status: u16, error_type: &str, reason: &str) -> Answer {
    #[derive(Serialize)]
    struct Cause<'a> {
        #[serde(rename = "type")]
        error_type: &'a str,
        reason: &'a str,
    }
    #[derive(Serialize)]
    struct Error<'a> {
        root_cause: [Cause<'a>; 1],
        #[serde(rename = "type")]
        error_type: &'a str,
        reason: &'a str,
    }
    #[derive(Serialize)]
    struct Body<'a> {
        error: Error<'a>,
        status: u16,
    }
    Answer::json(
        status,
        &Body {
            error: Error {
                root_cause: [Cause { error_type, reason }],
                error_type,
                reason,
            },
            status,
        },
    )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Index,
    Create,
    Delete,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Index => "index",
            Op::Create => "create",
            Op::Delete => "delete",
        }
    }
}

struct Action<'a> {
    op: Op,
    index: String,
    id: Option<String>,
    type_name: Option<String>,
    source: Option<&'a [u8]>,
}

fn parse_bulk<'a>(
    flavor: BulkFlavor,
    body: &'a [u8],
    default_index: Option<&str>,
) -> Result<Vec<Action<'a>>, Answer> {
    if !body.is_empty() && body.last() != Some(&b'\n') {
        return Err(error_answer(
            400,
            "illegal_argument_exception",
            "The bulk request must be terminated by a newline [\\n]",
        ));
    }
    let mut lines = body
        .split(|b| *b == b'\n')
        .enumerate()
        .map(|(i, line)| (i + 1, line))
        .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace));
    let mut actions = Vec::new();
    while let Some((number, line)) = lines.next() {
        let (op, meta) = parse_action_line(flavor, number, line)?;
        let index = match meta.get("_index") {
            Some(Value::String(index)) => index.clone(),
            None | Some(Value::Null) => match default_index {
                Some(index) => index.to_owned(),
                None => {
                    return Err(error_answer(
                        400,
                        "action_request_validation_exception",
                        &format!("Validation Failed: {number}: index is missing;"),
                    ))
                }
            },
            Some(other) => {
                return Err(error_answer(
                    400,
                    "illegal_argument_exception",
                    &format!(
                        "Malformed action/metadata line [{number}]: _index {other} is not a string"
                    ),
                ))
            }
        };
        let id = match meta.get("_id") {
            None | Some(Value::Null) => None,
            Some(Value::String(id)) if !id.is_empty() && id.len() <= 512 => Some(id.clone()),
            Some(Value::String(_)) => {
                return Err(error_answer(
                    400,
                    "action_request_validation_exception",
                    &format!("Validation Failed: {number}: id must be 1 to 512 bytes;"),
                ))
            }
            Some(other) => Some(other.to_string()),
        };
        let type_name = meta.get("_type").and_then(Value::as_str).map(str::to_owned);
        let source = match op {
            Op::Delete => None,
            Op::Index | Op::Create => match lines.next() {
                Some((_, source)) => Some(source),
                None => {
                    return Err(error_answer(
                        400,
                        "parse_exception",
                        &format!(
                            "Malformed action/metadata line [{number}]: the [{}] action has no \
                             source line",
                            op.name()
                        ),
                    ))
                }
            },
        };
        if op == Op::Delete && id.is_none() {
            return Err(error_answer(
                400,
                "action_request_validation_exception",
                &format!("Validation Failed: {number}: id is missing;"),
            ));
        }
        actions.push(Action {
            op,
            index,
            id,
            type_name,
            source,
        });
    }
    if actions.is_empty() {
        return Err(error_answer(
            400,
            "action_request_validation_exception",
            "Validation Failed: 1: no requests added;",
        ));
    }
    Ok(actions)
}

fn parse_action_line(
    flavor: BulkFlavor,
    number: usize,
    line: &[u8],
) -> Result<(Op, serde_json::Map<String, Value>), Answer> {
    let value: Value = serde_json::from_slice(line).map_err(|e| {
        error_answer(
            400,
            "parse_exception",
            &format!("Malformed action/metadata line [{number}]: {e}"),
        )
    })?;
    let Value::Object(map) = value else {
        return Err(error_answer(
            400,
            "illegal_argument_exception",
            &format!("Malformed action/metadata line [{number}], expected START_OBJECT"),
        ));
    };
    if map.len() != 1 {
        return Err(error_answer(
            400,
            "illegal_argument_exception",
            &format!(
                "Malformed action/metadata line [{number}], expected a single action, found {}",
                map.len()
            ),
        ));
    }
    let Some((name, meta)) = map.into_iter().next() else {
        return Err(error_answer(
            400,
            "illegal_argument_exception",
            &format!("Malformed action/metadata line [{number}], expected a single action"),
        ));
    };
    let op = match name.as_str() {
        "index" => Op::Index,
        "create" => Op::Create,
        "delete" => Op::Delete,
        "update" => {
            return Err(error_answer(
                400,
                "illegal_argument_exception",
                "the [update] action is not implemented by this stand-in",
            ))
        }
        other => {
            return Err(error_answer(
                400,
                "illegal_argument_exception",
                &format!(
                    "Malformed action/metadata line [{number}], expected field [create], \
                     [delete], [index] or [update] but found [{other}]"
                ),
            ))
        }
    };
    let Value::Object(meta) = meta else {
        return Err(error_answer(
            400,
            "illegal_argument_exception",
            &format!("Malformed action/metadata line [{number}], expected START_OBJECT"),
        ));
    };
    for key in meta.keys() {
        let known = match key.as_str() {
            "_index" | "_id" | "routing" | "pipeline" | "require_alias" => true,
            "_type" => flavor == BulkFlavor::Elasticsearch7,
            _ => false,
        };
        if !known {
            return Err(error_answer(
                400,
                "illegal_argument_exception",
                &format!("Action/metadata line [{number}] contains an unknown parameter [{key}]"),
            ));
        }
    }
    Ok((op, meta))
}

/// Applies one action (or its injected failure) and returns its response item (JSON text) and
/// whether it failed.
fn apply(
    flavor: BulkFlavor,
    state: &mut State,
    position: usize,
    action: &Action<'_>,
) -> (String, bool) {
    let op = action.op.name();
    let type_name = match flavor {
        BulkFlavor::OpenSearch2 => None,
        BulkFlavor::Elasticsearch7 => {
            Some(action.type_name.clone().unwrap_or_else(|| "_doc".into()))
        }
    };
    let id = match &action.id {
        Some(id) => id.clone(),
        None => {
            state.generated_ids += 1;
            generated_id(state.generated_ids)
        }
    };
    let failed = |status: u16, error_type: &str, reason: &str| {
        let text = item_text(
            op,
            &ItemOutcome {
                index: &action.index,
                type_name: type_name.as_deref(),
                id: &id,
                version: None,
                result: None,
                shards: None,
                seq_no: None,
                primary_term: None,
                status,
                error: Some(ItemError {
                    error_type: error_type.to_owned(),
                    reason: reason.to_owned(),
                }),
            },
        );
        (text, true)
    };

    let parsed_source = action.source.map(serde_json::from_slice::<Value>);
    if let Some(failure) = injected_item_failure(state, position, action, &id, &parsed_source) {
        return failed(failure.0, &failure.1, &failure.2);
    }

    let key = (action.index.clone(), id.clone());
    let (result, status, version) = match action.op {
        Op::Delete => match state.documents.remove(&key) {
            Some(old) => ("deleted", 200, old.version + 1),
            None => ("not_found", 404, 1),
        },
        Op::Index | Op::Create => {
            let source = match parsed_source {
                Some(Ok(Value::Object(map))) => Value::Object(map),
                Some(Ok(_)) | Some(Err(_)) | None => {
                    return failed(
                        400,
                        "mapper_parsing_exception",
                        "failed to parse: the source is not a JSON object",
                    )
                }
            };
            let existing = state.documents.get(&key).map(|d| d.version);
            if action.op == Op::Create && existing.is_some() {
                return failed(
                    409,
                    "version_conflict_engine_exception",
                    &format!("[{id}]: version conflict, document already exists"),
                );
            }
            let version = existing.map_or(1, |v| v + 1);
            state.documents.insert(
                key,
                StoredDocument {
                    source,
                    version,
                    type_name: type_name.clone(),
                },
            );
            match existing {
                Some(_) => ("updated", 200, version),
                None => ("created", 201, version),
            }
        }
    };
    let seq_no = state.seq_no;
    state.seq_no += 1;
    let text = item_text(
        op,
        &ItemOutcome {
            index: &action.index,
            type_name: type_name.as_deref(),
            id: &id,
            version: Some(version),
            result: Some(result),
            shards: Some(Shards {
                total: 2,
                successful: 1,
                failed: 0,
            }),
            seq_no: Some(seq_no),
            primary_term: Some(1),
            status,
            error: None,
        },
    );
    (text, status >= 300)
}

/// The first matching injected item rule that still fires: (status, type, reason).
fn injected_item_failure(
    state: &mut State,
    position: usize,
    action: &Action<'_>,
    id: &str,
    parsed_source: &Option<Result<Value, serde_json::Error>>,
) -> Option<(u16, String, String)> {
    let source_text = action.source.unwrap_or_default();
    let doc_key = match &action.id {
        Some(_) => format!("{}\u{0}{id}", action.index),
        None => format!(
            "{}\u{0}{}",
            action.index,
            String::from_utf8_lossy(source_text)
        ),
    };
    for rule in &mut state.item_rules {
        let matches = match &rule.failure.matcher {
            ItemMatcher::All => true,
            ItemMatcher::EveryNth(k) => *k > 0 && position.is_multiple_of(*k),
            ItemMatcher::SourceContains(text) => {
                !text.is_empty()
                    && source_text
                        .windows(text.len())
                        .any(|w| w == text.as_bytes())
            }
            ItemMatcher::Id(wanted) => action.id.as_deref() == Some(wanted.as_str()),
            ItemMatcher::Predicate(predicate) => {
                matches!(parsed_source, Some(Ok(value)) if predicate(value))
            }
        };
        if !matches {
            continue;
        }
        let hits = rule.hits.entry(doc_key.clone()).or_insert(0);
        if let Some(times) = rule.failure.times {
            if *hits >= times {
                continue;
            }
        }
        *hits += 1;
        return Some((
            rule.failure.status,
            rule.failure.error_type.clone(),
            rule.failure.reason.clone(),
        ));
    }
    None
}

#[derive(Serialize)]
struct Shards {
    total: u32,
    successful: u32,
    failed: u32,
}

#[derive(Serialize)]
struct ItemError {
    #[serde(rename = "type")]
    error_type: String,
    reason: String,
}

/// One response item, fields in the order the cluster writes them.
#[derive(Serialize)]
struct ItemOutcome<'a> {
    #[serde(rename = "_index")]
    index: &'a str,
    #[serde(rename = "_type", skip_serializing_if = "Option::is_none")]
    type_name: Option<&'a str>,
    #[serde(rename = "_id")]
    id: &'a str,
    #[serde(rename = "_version", skip_serializing_if = "Option::is_none")]
    version: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'a str>,
    #[serde(rename = "_shards", skip_serializing_if = "Option::is_none")]
    shards: Option<Shards>,
    #[serde(rename = "_seq_no", skip_serializing_if = "Option::is_none")]
    seq_no: Option<u64>,
    #[serde(rename = "_primary_term", skip_serializing_if = "Option::is_none")]
    primary_term: Option<u64>,
    status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ItemError>,
}

fn item_text(op: &str, outcome: &ItemOutcome<'_>) -> String {
    // Strings and integers only: serializing cannot fail.
    let inner = serde_json::to_string(outcome).unwrap_or_default();
    format!("{{{}:{inner}}}", Value::String(op.to_owned()))
}

/// A 20-character id shaped like the cluster's auto-generated ones (URL-safe base64 of 15
/// bytes: the clock and a counter).
fn generated_id(counter: u64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut raw = [0u8; 15];
    raw[..8].copy_from_slice(&now.to_be_bytes());
    raw[8..].copy_from_slice(&counter.to_be_bytes()[1..]);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

#[cfg(test)]
mod tests;
