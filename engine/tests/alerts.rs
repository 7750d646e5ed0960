//! The shipped Prometheus alerting rules (engine/deploy/hydrant-alerts.yml), checked by Prometheus
//! itself: `promtool check rules`, `promtool test rules` (every alert fires on its failure and
//! stays quiet beside it on a healthy stream), and a real Prometheus server scraping a hydrantd
//! whose HTTP endpoint destination is down: the delivery alert fires for that stream only, then
//! clears once the endpoint accepts again.
//!
//! Needs Debian's `prometheus` package (`promtool` and `prometheus` on PATH; `.ci/run` installs
//! it). The live test runs the shipped rules with their durations scaled from minutes to seconds
//! (`for: 10m` becomes `for: 10s`, `[5m]` becomes `[5s]`, scraping every second): the
//! expressions are the shipped ones, only the clock is faster.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{call, free_port, wait_active, workspace, Daemon};
use serde_json::{json, Value};

fn deploy_dir() -> PathBuf {
    workspace().join("engine/deploy")
}

fn tool(name: &str) -> Command {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "{name} not found on PATH: install Debian's prometheus package (apt-get install prometheus)"
    );
    Command::new(name)
}

#[test]
fn promtool_checks_the_rules_and_their_unit_tests_pass() {
    let out = hydrant_tests::process::run_ok(
        tool("promtool")
            .arg("check")
            .arg("rules")
            .arg(deploy_dir().join("hydrant-alerts.yml")),
        "promtool check rules",
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("SUCCESS: 6 rules found"), "{text}");

    hydrant_tests::process::run_ok(
        tool("promtool")
            .current_dir(deploy_dir())
            .arg("test")
            .arg("rules")
            .arg("hydrant-alerts.test.yml"),
        "promtool test rules",
    );
}

/// The shipped rules with every duration in minutes turned into the same number of seconds.
fn rules_in_seconds() -> String {
    let text = std::fs::read_to_string(deploy_dir().join("hydrant-alerts.yml")).unwrap();
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    // `[Nm]` in range selectors and `for: Nm`.
    while let Some(i) = rest.find(|c: char| c.is_ascii_digit()) {
        let (before, from) = rest.split_at(i);
        out.push_str(before);
        let digits = from.len() - from.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let (num, after) = from.split_at(digits);
        out.push_str(num);
        let is_duration =
            after.starts_with("m]") || (after.starts_with('m') && before.ends_with("for: "));
        if is_duration {
            out.push('s');
            rest = &after[1..];
        } else {
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[test]
fn the_minutes_become_seconds_and_nothing_else_changes() {
    let s = rules_in_seconds();
    assert!(
        s.contains("[5s]") && s.contains("for: 10s") && s.contains("for: 1s"),
        "{s}"
    );
    assert!(!s.contains("[5m]") && !s.contains("for: 10m"), "{s}");
    assert!(s.contains("> 0.8") && s.contains("+ 300"), "{s}");
}

/// A Prometheus server on 127.0.0.1 scraping `target` every second with `rules`.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Prometheus {
    fn start(dir: &Path, target: SocketAddr, rules: &str) -> Prometheus {
        std::fs::write(dir.join("rules.yml"), rules).unwrap();
        std::fs::write(
            dir.join("prometheus.yml"),
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 rule_files:\n  - {}\n\
                 scrape_configs:\n  - job_name: hydrant\n    metrics_path: /metrics\n    \
                 static_configs:\n      - targets: ['{target}']\n",
                dir.join("rules.yml").display()
            ),
        )
        .unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let log = dir.join("prometheus.log");
        let child = tool("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let p = Prometheus { child, addr, log };
        let deadline = Instant::now() + Duration::from_secs(60);
        while http10_get(p.addr, "/-/ready").map(|(s, _)| s) != Some(200) {
            assert!(
                Instant::now() < deadline,
                "prometheus not ready: {}",
                p.log_text()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        p
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The alerts Prometheus holds now (pending and firing).
    fn alerts(&self) -> Vec<Value> {
        let (status, body) = http10_get(self.addr, "/api/v1/alerts").unwrap();
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        v["data"]["alerts"].as_array().cloned().unwrap_or_default()
    }

    /// The state of alert `name` for `stream`: "firing", "pending" or None.
    fn state(&self, name: &str, stream: &str) -> Option<String> {
        self.alerts()
            .iter()
            .find(|a| a["labels"]["alertname"] == name && a["labels"]["stream"] == stream)
            .map(|a| a["state"].as_str().unwrap_or_default().to_string())
    }

    /// Whether the last scrape of hydrantd succeeded.
    fn target_up(&self) -> bool {
        let Some((200, body)) = http10_get(self.addr, "/api/v1/query?query=up") else {
            return false;
        };
        let v: Value = serde_json::from_str(&body).unwrap_or_default();
        v["data"]["result"][0]["value"][1] == "1"
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GET over HTTP/1.0 (so the answer is never chunked), body as text.
fn http10_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}

fn wait_until(
    what: &str,
    timeout: Duration,
    mut f: impl FnMut() -> bool,
    context: impl Fn() -> String,
) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}\n{}",
            context()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn prometheus_fires_the_delivery_alert_while_the_endpoint_is_down_and_clears_it_after() {
    let tmp = tempfile::tempdir().unwrap();
    let receiver = hydrant_tests::http_receiver::HttpReceiver::start_default().unwrap();
    // Down: every request answered 503 until the script is cleared.
    receiver.fail_next(1_000_000, 503, "down for maintenance");

    let config = tmp.path().join("hydrant.toml");
    std::fs::write(
        &config,
        "[delivery]\nhttp_backoff_initial_ms = 200\nhttp_backoff_max_ms = 500\n",
    )
    .unwrap();
    let daemon = Daemon::start(
        &tmp.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let (st, v) = call(
        daemon.addr,
        "CreateDeliveryStream",
        &json!({
            "DeliveryStreamName": "to-endpoint",
            "HttpEndpointDestinationConfiguration": {
                "EndpointConfiguration": {"Url": receiver.url(), "Name": "receiver"},
                "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
                "S3Configuration": {"RoleARN": "arn:aws:iam::123456789012:role/r",
                                    "BucketARN": "arn:aws:s3:::backup"},
            }
        })
        .to_string(),
    );
    assert_eq!(st, 200, "{v}");
    wait_active(daemon.addr, "to-endpoint");
    let records: Vec<String> = (0..50).map(|i| format!("{{\"n\":{i}}}")).collect();
    for (stream, n) in [("to-endpoint", 50), ("default", 20)] {
        let reply = common::try_put_batch(daemon.addr, stream, records.iter().take(n)).unwrap();
        assert_eq!(reply["FailedPutCount"], 0, "{reply}");
    }

    let prom = Prometheus::start(tmp.path(), daemon.addr, &rules_in_seconds());
    let context = || {
        format!(
            "alerts: {:?}\nprometheus log: {}",
            prom.alerts(),
            prom.log_text()
        )
    };
    wait_until(
        "the first scrape",
        Duration::from_secs(60),
        || prom.target_up(),
        context,
    );

    wait_until(
        "HydrantDeliveryFailing to fire for to-endpoint",
        Duration::from_secs(90),
        || {
            prom.state("HydrantDeliveryFailing", "to-endpoint")
                .as_deref()
                == Some("firing")
        },
        context,
    );
    // The embedded default stream (local store) delivers: no alert for it.
    assert_eq!(
        prom.state("HydrantDeliveryFailing", "default"),
        None,
        "{}",
        context()
    );
    assert!(receiver.records_accepted().is_empty());

    // The endpoint comes back: the batch is delivered and the alert clears.
    receiver.clear_script();
    wait_until(
        "the endpoint to receive the 50 records",
        Duration::from_secs(60),
        || receiver.records_accepted().len() == 50,
        context,
    );
    wait_until(
        "HydrantDeliveryFailing to clear",
        Duration::from_secs(90),
        || {
            prom.state("HydrantDeliveryFailing", "to-endpoint")
                .is_none()
        },
        context,
    );
    assert!(
        prom.alerts()
            .iter()
            .all(|a| a["labels"]["alertname"] != "HydrantDestinationStopped"),
        "{}",
        context()
    );
}
