//! Routing and access control of `/console` (the steps are in the module documentation of
//! [`super`]).
//!
//! | method and path | what |
//! | --- | --- |
//! | GET `/console/static/*` | the stylesheet and the script (no login: constant files) |
//! | GET, POST `/console/login` | the login form; logging in |
//! | POST `/console/logout` | logging out |
//! | GET `/console/` | the streams page (`q` filter, `sort`, `desc`, `refresh` seconds) |
//! | GET, POST `/console/new` | the create form; CreateDeliveryStream |
//! | GET `/console/streams/NAME` | the stream page (`raw=1`: failed records' data) |
//! | GET, POST `/console/streams/NAME/update` | the update form; UpdateDestination |
//! | GET, POST `/console/streams/NAME/delete` | the confirmation; DeleteDeliveryStream |

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Method, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use maud::Markup;
use serde_json::{json, Value};

use super::forms::{self, Fields};
use super::pages::{self, Ctx, Row};
use super::session::{clear_cookie, set_cookie};
use super::{assets, charts, Console, Reply, RequestBody};
use crate::api::errors::ApiError;
use crate::streams::Engine;

/// Largest form body read.
const FORM_BYTES_MAX: usize = 64 << 10;
/// Time a form body may take to arrive.
const FORM_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause after a failed login (slows guessing; PBKDF2 slows it further).
const LOGIN_FAILURE_PAUSE: Duration = Duration::from_millis(400);

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The security headers every console reply carries.
pub fn secure_headers(mut r: Reply) -> Reply {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn reply(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Reply {
    let mut r = http::Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn page(status: StatusCode, m: Markup) -> Reply {
    reply(status, "text/html; charset=utf-8", m.into_string())
}

fn redirect(to: &str) -> Reply {
    let mut r = reply(StatusCode::SEE_OTHER, "text/plain; charset=utf-8", "");
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

fn with_cookie(mut r: Reply, cookie: Option<String>) -> Reply {
    if let Some(v) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

fn plain(status: StatusCode, text: &'static str) -> Reply {
    reply(status, "text/plain; charset=utf-8", text)
}

fn is_loopback(peer: SocketAddr) -> bool {
    match peer.ip() {
        std::net::IpAddr::V4(a) => a.is_loopback(),
        std::net::IpAddr::V6(a) => {
            a.is_loopback() || a.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

async fn read_form<B: RequestBody>(body: B) -> Option<Fields> {
    let collected =
        tokio::time::timeout(FORM_TIMEOUT, Limited::new(body, FORM_BYTES_MAX).collect())
            .await
            .ok()?
            .ok()?;
    Some(Fields::parse(&collected.to_bytes()))
}

fn api_message(e: &ApiError) -> String {
    format!("{}: {}", e.code.as_str(), e.message)
}

/// Runs a Firehose operation built by a form through the API's own decoding and dispatch.
async fn run_operation(engine: &Arc<Engine>, op: &str, body: &Value) -> Result<(), String> {
    let bytes = serde_json::to_vec(body).map_err(|e| e.to_string())?;
    let target = format!("Firehose_20150804.{op}");
    let request = crate::api::decode::decode_request(
        Some(target.as_bytes()),
        Some(crate::api::CONTENT_TYPE.as_bytes()),
        &bytes,
    )
    .map_err(|e| api_message(&e))?;
    crate::api::dispatch(engine.clone(), request, None)
        .await
        .map(|_| ())
        .map_err(|e| api_message(&e))
}

/// See the module documentation. (The caller, [`Console::handle`], adds the security headers
/// with [`secure_headers`].)
pub async fn route<B: RequestBody>(
    c: &Console,
    engine: Option<&Arc<Engine>>,
    peer: SocketAddr,
    req: http::Request<B>,
) -> Reply {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let query = Fields::parse(parts.uri.query().unwrap_or("").as_bytes());
    let method = parts.method.clone();
    let reads = method == Method::GET || method == Method::HEAD;
    if reads {
        if let Some((ty, bytes)) = assets::find(&path) {
            return reply(StatusCode::OK, ty, bytes);
        }
    }
    if path == "/console" {
        return redirect("/console/");
    }
    let open = !c.needs_login();
    if open && !is_loopback(peer) {
        return plain(
            StatusCode::FORBIDDEN,
            "the console answers loopback peers only unless [console] password_hash or [auth] \
             keys are configured\n",
        );
    }
    let cookie = parts
        .headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok());
    let session = c.sessions.find(cookie);
    let authorized = open || session.as_ref().is_some_and(|s| s.authenticated);

    if path == "/console/login" {
        if authorized {
            return redirect("/console/");
        }
        return login(c, &method, session.map(|s| s.id), body).await;
    }
    if !authorized {
        return if reads {
            redirect("/console/login")
        } else {
            plain(StatusCode::UNAUTHORIZED, "log in first: /console/login\n")
        };
    }
    // Every page has a session, so that its forms carry a CSRF token (an open console makes
    // one on the first page).
    let (sid, new_cookie) = match session {
        Some(s) => (s.id, None),
        None => {
            let id = c.sessions.create(false);
            let cookie = set_cookie(&id, c.secure);
            (id, Some(cookie))
        }
    };
    let refresh_secs = query
        .get("refresh")
        .parse::<u32>()
        .map_or(5, |s| s.clamp(1, 60));
    let ctx = Ctx {
        csrf: c.csrf.token(&sid),
        logout: !open,
        refresh_secs,
    };
    let mut form = Fields::default();
    if !reads {
        if method != Method::POST {
            return plain(StatusCode::METHOD_NOT_ALLOWED, "GET or POST\n");
        }
        let Some(f) = read_form(body).await else {
            return plain(StatusCode::BAD_REQUEST, "the form could not be read\n");
        };
        // A session made by this very request cannot have a token: a cross-site post.
        if new_cookie.is_some() || !c.csrf.check(&sid, f.get("csrf")) {
            return plain(
                StatusCode::FORBIDDEN,
                "missing or wrong CSRF token: reload the page and submit again\n",
            );
        }
        form = f;
    }
    if path == "/console/logout" && !reads {
        c.sessions.remove(&sid);
        return with_cookie(redirect("/console/login"), Some(clear_cookie(c.secure)));
    }
    let Some(engine) = engine else {
        return plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "hydrantd is still recovering its streams; retry\n",
        );
    };
    let r = serve(c, engine, &ctx, &method, &path, &query, form).await;
    with_cookie(r, new_cookie)
}

async fn login<B: RequestBody>(
    c: &Console,
    method: &Method,
    session: Option<String>,
    body: B,
) -> Reply {
    if method != Method::POST {
        let (sid, cookie) = match session {
            Some(id) => (id, None),
            None => {
                let id = c.sessions.create(false);
                let cookie = set_cookie(&id, c.secure);
                (id, Some(cookie))
            }
        };
        return with_cookie(
            page(StatusCode::OK, pages::login(&c.csrf.token(&sid), None)),
            cookie,
        );
    }
    let Some(f) = read_form(body).await else {
        return plain(StatusCode::BAD_REQUEST, "the form could not be read\n");
    };
    let Some(sid) = session.filter(|s| c.csrf.check(s, f.get("csrf"))) else {
        return plain(
            StatusCode::FORBIDDEN,
            "missing or wrong CSRF token: reload the login page\n",
        );
    };
    let user = f.get("user").to_string();
    let password = f.0.get("password").cloned().unwrap_or_default();
    let ok = if user.is_empty() {
        c.password.as_ref().is_some_and(|p| p.verify(&password))
    } else {
        c.keys.iter().any(|k| {
            use subtle::ConstantTimeEq;
            k.access_key_id == user
                && bool::from(k.secret_access_key.as_bytes().ct_eq(password.as_bytes()))
        })
    };
    if !ok {
        tokio::time::sleep(LOGIN_FAILURE_PAUSE).await;
        return page(
            StatusCode::UNAUTHORIZED,
            pages::login(&c.csrf.token(&sid), Some("Wrong password or access key.")),
        );
    }
    c.sessions.remove(&sid);
    let id = c.sessions.create(true);
    with_cookie(redirect("/console/"), Some(set_cookie(&id, c.secure)))
}

async fn serve(
    c: &Console,
    engine: &Arc<Engine>,
    ctx: &Ctx,
    method: &Method,
    path: &str,
    query: &Fields,
    form: Fields,
) -> Reply {
    let post = method == Method::POST;
    match path {
        "/console/" if !post => streams_page(c, engine, ctx, query),
        "/console/new" if !post => page(
            StatusCode::OK,
            pages::create(ctx, &Fields::create_defaults(), None),
        ),
        "/console/new" => {
            let body = forms::create_body(&form);
            match run_operation(engine, "CreateDeliveryStream", &body).await {
                Ok(()) => redirect(&pages::stream_path(form.get("name"))),
                Err(e) => page(StatusCode::BAD_REQUEST, pages::create(ctx, &form, Some(&e))),
            }
        }
        _ => {
            let Some(rest) = path.strip_prefix("/console/streams/") else {
                return not_found(ctx);
            };
            let (enc, action) = rest.split_once('/').unwrap_or((rest, ""));
            let name: String = form_urlencoded::parse(format!("n={enc}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            let Some(snap) = engine
                .console_snapshot(Some(&name))
                .into_iter()
                .find(|s| s.name == name)
            else {
                return not_found(ctx);
            };
            match (action, post) {
                ("", false) => stream_page(c, engine, ctx, &snap, query.get("raw") == "1"),
                ("update", false) => page(
                    StatusCode::OK,
                    pages::update(ctx, &snap, &forms::update_defaults(&snap.destination), None),
                ),
                ("update", true) => {
                    let body =
                        forms::update_body(&name, form.get("version"), &snap.destination, &form);
                    match run_operation(engine, "UpdateDestination", &body).await {
                        Ok(()) => redirect(&pages::stream_path(&name)),
                        Err(e) => page(
                            StatusCode::BAD_REQUEST,
                            pages::update(ctx, &snap, &form, Some(&e)),
                        ),
                    }
                }
                ("delete", false) => page(StatusCode::OK, pages::delete(ctx, &name, None)),
                ("delete", true) => {
                    if form.get("confirm") != name {
                        return page(
                            StatusCode::BAD_REQUEST,
                            pages::delete(ctx, &name, Some("The name typed is not the stream's.")),
                        );
                    }
                    let body = json!({ "DeliveryStreamName": name });
                    match run_operation(engine, "DeleteDeliveryStream", &body).await {
                        Ok(()) => redirect("/console/"),
                        Err(e) => {
                            page(StatusCode::BAD_REQUEST, pages::delete(ctx, &name, Some(&e)))
                        }
                    }
                }
                _ => not_found(ctx),
            }
        }
    }
}

fn not_found(ctx: &Ctx) -> Reply {
    page(
        StatusCode::NOT_FOUND,
        pages::message(Some(ctx), "Not found", "No such page or stream."),
    )
}

fn streams_page(c: &Console, engine: &Arc<Engine>, ctx: &Ctx, query: &Fields) -> Reply {
    let now = hydrant_wal::now_ms();
    let q = query.get("q").to_lowercase();
    let sort = match query.get("sort") {
        s if pages::SORTS.iter().any(|(k, _)| *k == s) => s,
        _ => "name",
    };
    let desc = query.get("desc") == "1";
    let mut rows: Vec<Row> = engine
        .console_snapshot(None)
        .into_iter()
        .map(|snap| Row {
            last: c.history.points(&snap.name).pop(),
            failed_last_hour: c.history.failed_last_hour(&snap),
            freshness_s: super::history::freshness_s(&snap, now),
            local_store: c.local_store,
            snap,
        })
        .filter(|r| {
            if q.is_empty() {
                return true;
            }
            let (kind, target) =
                super::snapshot::destination_summary(&r.snap.destination, r.local_store);
            let hay = format!(
                "{} {} {} {} {}",
                r.snap.name,
                kind,
                target,
                super::snapshot::health(&r.snap).0,
                r.snap
                    .tags
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            hay.to_lowercase().contains(&q)
        })
        .collect();
    rows.sort_by(|a, b| {
        use std::cmp::Ordering;
        let by = match sort {
            "status" => super::snapshot::health(&a.snap)
                .0
                .cmp(super::snapshot::health(&b.snap).0),
            "destination" => {
                super::snapshot::destination_summary(&a.snap.destination, a.local_store).cmp(
                    &super::snapshot::destination_summary(&b.snap.destination, b.local_store),
                )
            }
            "incoming" => a.records_per_s().total_cmp(&b.records_per_s()),
            "backlog" => a.backlog().cmp(&b.backlog()),
            "freshness" => a.freshness_s.total_cmp(&b.freshness_s),
            "errors" => a.failed_last_hour.cmp(&b.failed_last_hour),
            "disk" => a.snap.disk_bytes.cmp(&b.snap.disk_bytes),
            _ => Ordering::Equal,
        };
        let by = by.then_with(|| a.snap.name.cmp(&b.snap.name));
        if desc {
            by.reverse()
        } else {
            by
        }
    });
    page(
        StatusCode::OK,
        pages::streams(ctx, &rows, query.get("q"), sort, desc),
    )
}

fn stream_page(
    c: &Console,
    engine: &Arc<Engine>,
    ctx: &Ctx,
    snap: &super::StreamSnapshot,
    show_raw: bool,
) -> Reply {
    let describe = engine
        .describe(&snap.name, 10, None)
        .map(|v| v["DeliveryStreamDescription"].clone())
        .unwrap_or(Value::Null);
    let points = c.history.points(&snap.name);
    let now = hydrant_wal::now_ms();
    let drawn: Vec<(&str, &str, String)> = charts::stream_charts()
        .iter()
        .map(|chart| {
            let svg = charts::render(chart, &points, now).unwrap_or_else(|e| {
                tracing::warn!(error = %e, chart = chart.title, "drawing a chart failed");
                String::new()
            });
            (chart.title, chart.unit, svg)
        })
        .collect();
    page(
        StatusCode::OK,
        pages::stream(ctx, snap, &describe, &drawn, show_raw, c.local_store),
    )
}
