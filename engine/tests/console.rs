//! The console over raw HTTP, against hydrantd as a process: escaping, CSRF, login, the create
//! form's refusals (the API's messages), deletion with its confirmation, `[console] enabled =
//! false`, the start-up log line. The browser tests are in `console_browser.rs`.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::{b64, call, create_stream, wait_for, Daemon, BIN};

/// One HTTP exchange: status, headers (lowercased names), body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The session cookie set by the answer (`name=value`).
    fn cookie(&self) -> Option<String> {
        self.header("set-cookie")
            .and_then(|c| c.split(';').next())
            .map(str::to_string)
    }

    /// The CSRF token of the page's first form.
    fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .expect("a CSRF field")
            + 19;
        self.body[at..at + self.body[at..].find('"').unwrap()].to_string()
    }
}

fn exchange(
    addr: SocketAddr,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    form: Option<&str>,
) -> Answer {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(c) = cookie {
        req.push_str(&format!("Cookie: {c}\r\n"));
    }
    let body = form.unwrap_or("");
    if form.is_some() {
        req.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines.next().unwrap().split_whitespace().nth(1).unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Answer {
        status: status.parse().unwrap(),
        headers,
        body: body.to_string(),
    }
}

fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// HTML-escapes as maud does.
fn escaped(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const XSS: &str = "<script>alert(1)</script>";
const ROLE: &str = "arn:aws:iam::123456789012:role/r";

fn exists(addr: SocketAddr, name: &str) -> bool {
    let (st, _) = call(
        addr,
        "DescribeDeliveryStream",
        &format!(r#"{{"DeliveryStreamName":"{name}"}}"#),
    );
    st == 200
}

#[test]
fn open_on_loopback_escapes_everything_and_wants_the_csrf_token() {
    let tmp = tempfile::tempdir().unwrap();
    // A batch is retried 3 s, then goes to the error output.
    let d = Daemon::start(&tmp.path().join("data"), &["--delivery-retry-seconds", "3"]);
    let addr = d.addr;
    assert!(
        d.log_text()
            .contains(&format!("console at http://{addr}/console/")),
        "{}",
        d.log_text()
    );

    // The first page of an open console: 200, a session cookie and the security headers.
    let first = exchange(addr, "GET", "/console/", None, None);
    assert_eq!(first.status, 200, "{}", first.body);
    let csp = first.header("content-security-policy").unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"));
    assert!(!csp.contains("unsafe-inline"));
    assert_eq!(first.header("x-frame-options"), Some("DENY"));
    let set = first.header("set-cookie").unwrap();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"));
    assert!(!set.contains("Secure"), "no TLS: {set}");
    assert!(!first.body.contains("<script>") && !first.body.contains("style="));
    let cookie = first.cookie().unwrap();
    let token = exchange(addr, "GET", "/console/new", Some(&cookie), None).csrf();

    // A cross-site form post: no cookie (SameSite=Strict keeps it home), or a cookie without the
    // token, or with another session's token: refused, nothing created.
    let form = format!(
        "name=evil&kind=s3&role_arn={}&bucket=b&buffer_mb=1&buffer_seconds=0",
        enc(ROLE)
    );
    let other = exchange(addr, "GET", "/console/new", None, None);
    for (cookie, body) in [
        (None, format!("{form}&csrf={token}")),
        (Some(cookie.as_str()), form.clone()),
        (
            Some(cookie.as_str()),
            format!("{form}&csrf={}", other.csrf()),
        ),
        (Some(cookie.as_str()), format!("{form}&csrf=00{token}")),
    ] {
        let a = exchange(addr, "POST", "/console/new", cookie, Some(&body));
        assert_eq!(a.status, 403, "{}", a.body);
    }
    assert!(!exists(addr, "evil"));

    // The form with its token creates the stream through the API's path.
    let tags = enc("team=data\nnote=a+b");
    let a = exchange(
        addr,
        "POST",
        "/console/new",
        Some(&cookie),
        Some(&format!(
            "{}&prefix=data%2F&csrf={token}&tags={tags}",
            form.replace("evil", "web")
        )),
    );
    assert_eq!(a.status, 303, "{}", a.body);
    assert_eq!(a.header("location"), Some("/console/streams/web"));
    common::wait_active(addr, "web");
    let (_, tags) = call(
        addr,
        "ListTagsForDeliveryStream",
        r#"{"DeliveryStreamName":"web"}"#,
    );
    assert_eq!(tags["Tags"][0]["Value"], "a+b", "{tags}");

    // A refused create shows the API's own message for the same request, escaped: a tag key
    // that is markup is refused by the API, and its message (which names it) reaches the page
    // as text.
    let bad = format!("{form}&tags={}&csrf={token}", enc(&format!("{XSS}=1")));
    let a = exchange(addr, "POST", "/console/new", Some(&cookie), Some(&bad));
    assert_eq!(a.status, 400);
    let (st, api) = call(
        addr,
        "CreateDeliveryStream",
        &serde_json::json!({
            "DeliveryStreamName": "evil", "DeliveryStreamType": "DirectPut",
            "ExtendedS3DestinationConfiguration": {"RoleARN": ROLE, "BucketARN": "arn:aws:s3:::b",
                "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0}},
            "Tags": [{"Key": XSS, "Value": "1"}]})
        .to_string(),
    );
    assert_eq!(st, 400);
    let message = format!(
        "{}: {}",
        api["__type"].as_str().unwrap(),
        api["message"].as_str().unwrap()
    );
    assert!(
        a.body.contains(&escaped(&message)),
        "{message} not in {}",
        a.body
    );
    assert!(!a.body.contains(XSS), "markup came through unescaped");

    // Record bytes are shown escaped too: a record that is markup, refused by the destination
    // (its prefix path is blocked by a file) goes to the error output; the stream page shows it
    // (raw data on request) as text.
    create_stream(addr, "unused");
    let (st, v) = call(
        addr,
        "CreateDeliveryStream",
        &serde_json::json!({
            "DeliveryStreamName": "xss", "DeliveryStreamType": "DirectPut",
            "ExtendedS3DestinationConfiguration": {"RoleARN": ROLE,
                "BucketARN": "arn:aws:s3:::xb", "Prefix": "blocked/",
                "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/",
                "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0}}})
        .to_string(),
    );
    assert_eq!(st, 200, "{v}");
    common::wait_active(addr, "xss");
    let bucket = d.data_dir.join("objects").join("xb");
    std::fs::create_dir_all(&bucket).unwrap();
    std::fs::write(bucket.join("blocked"), b"a file where a directory must be").unwrap();
    let (st, v) = call(
        addr,
        "PutRecord",
        &format!(
            r#"{{"DeliveryStreamName":"xss","Record":{{"Data":"{}"}}}}"#,
            b64(XSS.as_bytes())
        ),
    );
    assert_eq!(st, 200, "{v}");
    let mut page = String::new();
    wait_for("the error-output entry on the stream page", &d, || {
        page = exchange(
            addr,
            "GET",
            "/console/streams/xss?raw=1",
            Some(&cookie),
            None,
        )
        .body;
        page.contains("class=\"error-output\"")
    });
    assert!(page.contains(&escaped(XSS)), "{page}");
    assert!(!page.contains(XSS), "record bytes came through unescaped");
    assert!(page.contains("DELIVERY FAILING"), "{page}");
    let without_raw = exchange(addr, "GET", "/console/streams/xss", Some(&cookie), None).body;
    assert!(
        !without_raw.contains(&escaped(XSS)),
        "raw data only on request"
    );
    let list = exchange(addr, "GET", "/console/?q=xss", Some(&cookie), None).body;
    assert!(
        list.contains("DELIVERY FAILING") && !list.contains(">web<"),
        "{list}"
    );

    // Delete: the confirmation wants the name typed; with it, the stream goes.
    let confirm = exchange(
        addr,
        "GET",
        "/console/streams/web/delete",
        Some(&cookie),
        None,
    );
    assert_eq!(confirm.status, 200);
    let wrong = exchange(
        addr,
        "POST",
        "/console/streams/web/delete",
        Some(&cookie),
        Some(&format!("csrf={token}&confirm=wbe")),
    );
    assert_eq!(wrong.status, 400);
    assert!(exists(addr, "web"));
    let done = exchange(
        addr,
        "POST",
        "/console/streams/web/delete",
        Some(&cookie),
        Some(&format!("csrf={token}&confirm=web")),
    );
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(!exists(addr, "web"));
}

fn hash(password: &str) -> String {
    let mut child = std::process::Command::new(BIN)
        .arg("--hash-console-password")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn with_credentials_every_path_wants_a_login() {
    let tmp = tempfile::tempdir().unwrap();
    let h = hash("s3cret pass");
    assert!(h.starts_with("pbkdf2-sha256$") && !h.contains("s3cret"));
    let d = Daemon::with_config(
        &tmp.path().join("data"),
        &format!(
            "[console]\npassword_hash = \"{h}\"\n\n[[auth.keys]]\naccess_key_id = \"AKIDCONSOLE\"\n\
             secret_access_key = \"key-secret\"\n"
        ),
    );
    let addr = d.addr;
    // Every page and action, logged out: pages redirect to the login page, posts answer 401.
    let name = "default";
    let paths = [
        "/console/",
        "/console/?q=x&sort=disk",
        "/console/new",
        &format!("/console/streams/{name}"),
        &format!("/console/streams/{name}?raw=1"),
        &format!("/console/streams/{name}/update"),
        &format!("/console/streams/{name}/delete"),
        "/console/streams/nope",
        "/console/nothing-here",
    ];
    for p in paths {
        let a = exchange(addr, "GET", p, None, None);
        assert_eq!(a.status, 303, "{p}: {}", a.body);
        assert_eq!(a.header("location"), Some("/console/login"), "{p}");
        let a = exchange(addr, "POST", p, None, Some("csrf=x&confirm=x"));
        assert_eq!(a.status, 401, "{p}: {}", a.body);
    }
    for p in [
        "/console/logout",
        &format!("/console/streams/{name}/delete"),
    ] {
        assert_eq!(exchange(addr, "POST", p, None, Some("")).status, 401, "{p}");
    }
    let a = exchange(addr, "GET", "/console", None, None);
    assert_eq!(a.status, 303);
    // A logged-out session cookie is no better than none.
    let login = exchange(addr, "GET", "/console/login", None, None);
    assert_eq!(login.status, 200);
    let anon = login.cookie().unwrap();
    let a = exchange(addr, "GET", "/console/", Some(&anon), None);
    assert_eq!(a.header("location"), Some("/console/login"));

    // Wrong password, a login without the token: refused. Then the password, and the keys.
    let token = login.csrf();
    let a = exchange(
        addr,
        "POST",
        "/console/login",
        Some(&anon),
        Some(&format!("csrf={token}&user=&password=wrong")),
    );
    assert_eq!(a.status, 401);
    let a = exchange(
        addr,
        "POST",
        "/console/login",
        Some(&anon),
        Some("user=&password=s3cret+pass"),
    );
    assert_eq!(a.status, 403);
    for creds in [
        "user=&password=s3cret+pass",
        "user=AKIDCONSOLE&password=key-secret",
    ] {
        let login = exchange(addr, "GET", "/console/login", None, None);
        let a = exchange(
            addr,
            "POST",
            "/console/login",
            Some(&login.cookie().unwrap()),
            Some(&format!("csrf={}&{creds}", login.csrf())),
        );
        assert_eq!(a.status, 303, "{creds}: {}", a.body);
        let set = a.header("set-cookie").unwrap();
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"));
        let session = a.cookie().unwrap();
        assert_ne!(session, login.cookie().unwrap(), "a new id after login");
        let page = exchange(addr, "GET", "/console/", Some(&session), None);
        assert_eq!(page.status, 200);
        assert!(page.body.contains(name) && page.body.contains("Log out"));
        // Logging out ends the session.
        let out = exchange(
            addr,
            "POST",
            "/console/logout",
            Some(&session),
            Some(&format!("csrf={}", page.csrf())),
        );
        assert_eq!(out.status, 303);
        let again = exchange(addr, "GET", "/console/", Some(&session), None);
        assert_eq!(again.status, 303);
    }
    let wrong_key = exchange(addr, "GET", "/console/login", None, None);
    let a = exchange(
        addr,
        "POST",
        "/console/login",
        Some(&wrong_key.cookie().unwrap()),
        Some(&format!(
            "csrf={}&user=AKIDCONSOLE&password=s3cret+pass",
            wrong_key.csrf()
        )),
    );
    assert_eq!(a.status, 401, "the console password is not a key's secret");
}

#[test]
fn the_console_can_be_turned_off_and_a_bad_hash_stops_the_start() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::with_config(&tmp.path().join("data"), "[console]\nenabled = false\n");
    assert_eq!(exchange(d.addr, "GET", "/console/", None, None).status, 404);
    assert!(!d.log_text().contains("console at"));
    drop(d);
    let cfg = tmp.path().join("bad.toml");
    std::fs::write(&cfg, "[console]\npassword_hash = \"plaintext\"\n").unwrap();
    let out = std::process::Command::new(BIN)
        .arg("--config")
        .arg(&cfg)
        .arg("--data-dir")
        .arg(tmp.path().join("d2"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("console.password_hash"));
}

/// This machine's address on its default route (not loopback): connecting to it from here makes
/// a non-loopback peer.
fn outside_address() -> std::net::IpAddr {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    s.connect("192.0.2.1:9").unwrap();
    let ip = s.local_addr().unwrap().ip();
    assert!(
        !ip.is_loopback() && !ip.is_unspecified(),
        "no non-loopback address to test from: {ip}"
    );
    ip
}

/// A daemon process, killed when dropped (also when an assertion fails).
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A daemon on 0.0.0.0 (the test helpers bind loopback), with `extra` arguments.
fn start_public(dir: &std::path::Path, extra: &[&str]) -> (Reaped, u16) {
    let port = common::free_port();
    let mut cmd = std::process::Command::new(BIN);
    cmd.arg("--data-dir")
        .arg(dir)
        .arg("--listen")
        .arg(format!("0.0.0.0:{port}"))
        .args(extra)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    common::clear_hydrant_env(&mut cmd);
    let child = Reaped(cmd.spawn().unwrap());
    let local: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !matches!(common::get(local, "/health/ready"), Ok((200, _))) {
        assert!(std::time::Instant::now() < deadline, "hydrantd not ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, port)
}

#[test]
fn without_credentials_only_loopback_peers_get_the_console() {
    let ip = outside_address();
    let tmp = tempfile::tempdir().unwrap();
    let (open, port) = start_public(&tmp.path().join("a"), &["--allow-public-unauthenticated"]);
    let local: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let outside = SocketAddr::new(ip, port);
    assert_eq!(exchange(local, "GET", "/console/", None, None).status, 200);
    for (method, path) in [
        ("GET", "/console/"),
        ("GET", "/console/new"),
        ("GET", "/console/login"),
        ("POST", "/console/new"),
        ("GET", "/console/streams/default"),
    ] {
        let a = exchange(
            outside,
            method,
            path,
            None,
            (method == "POST").then_some(""),
        );
        assert_eq!(a.status, 403, "{method} {path} from {ip}: {}", a.body);
    }
    drop(open);
    // With a console password the same peer gets the login page instead.
    let cfg = tmp.path().join("b.toml");
    std::fs::write(
        &cfg,
        format!("[console]\npassword_hash = \"{}\"\n", hash("pw-outside")),
    )
    .unwrap();
    let (_locked, port) = start_public(
        &tmp.path().join("b"),
        &[
            "--allow-public-unauthenticated",
            "--config",
            cfg.to_str().unwrap(),
        ],
    );
    let outside = SocketAddr::new(ip, port);
    let a = exchange(outside, "GET", "/console/", None, None);
    assert_eq!(a.status, 303);
    assert_eq!(a.header("location"), Some("/console/login"));
    assert_eq!(
        exchange(outside, "GET", "/console/login", None, None).status,
        200
    );
    let local: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    assert_eq!(
        exchange(local, "GET", "/console/", None, None).status,
        303,
        "with credentials, loopback logs in too"
    );
}
