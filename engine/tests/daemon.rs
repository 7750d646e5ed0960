//! The daemon's operations: no-argument start, configuration sources, health, metrics,
//! SIGTERM under load (exit 0, every acknowledged record kept), refusing a public address
//! without keys, and start-up reconciliation of the registry with the stream directories.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{b64, call, clear_hydrant_env, get, Daemon, BIN};

#[test]
fn no_arguments_runs_the_embedded_default() {
    let tmp = tempfile::tempdir().unwrap();
    if std::net::TcpListener::bind("127.0.0.1:4573").is_err() {
        panic!("port 4573 (hydrantd's default) is busy: this test needs it free");
    }
    let mut cmd = Command::new(BIN);
    cmd.current_dir(tmp.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    clear_hydrant_env(&mut cmd);
    let mut child = cmd.spawn().unwrap();
    let addr = "127.0.0.1:4573".parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !matches!(get(addr, "/health/ready"), Ok((200, _))) {
        assert!(Instant::now() < deadline, "not ready");
        assert!(child.try_wait().unwrap().is_none(), "hydrantd exited");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(get(addr, "/health/live").unwrap().0, 200);
    let (st, v) = call(
        addr,
        "DescribeDeliveryStream",
        r#"{"DeliveryStreamName":"default"}"#,
    );
    assert_eq!(st, 200, "{v}");
    let d = &v["DeliveryStreamDescription"];
    assert_eq!(d["DeliveryStreamStatus"], "ACTIVE");
    assert_eq!(
        d["Destinations"][0]["ExtendedS3DestinationDescription"]["CompressionFormat"],
        "GZIP"
    );
    let (st, v) = call(
        addr,
        "PutRecord",
        &format!(
            r#"{{"DeliveryStreamName":"default","Record":{{"Data":"{}"}}}}"#,
            b64(b"hi\n")
        ),
    );
    assert_eq!(st, 200, "{v}");
    let (st, text) = common::post(
        addr,
        Some("Firehose_20150804.PutRecordBatch"),
        Some("application/x-amz-json-1.1"),
        format!(
            r#"{{"DeliveryStreamName":"default","Records":[{{"Data":"{}"}}]}}"#,
            b64(b"x")
        )
        .as_bytes(),
    );
    assert_eq!(st, 200);
    assert!(
        text.contains("\"FailedPutCount\":0"),
        "Fluent Bit's fast path: {text}"
    );
    assert!(tmp.path().join("hydrant-data/streams/default/wal").is_dir());
    assert!(tmp.path().join("hydrant-data/registry").is_dir());
    common::signal(&child, "INT");
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "SIGINT exits 0: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn refuses_public_listen_without_keys_and_bad_settings() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut cmd = Command::new(BIN);
        cmd.arg("--data-dir").arg(tmp.path()).args(args);
        clear_hydrant_env(&mut cmd);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let out = run(&["--listen", "0.0.0.0:0"], &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("allow-public-unauthenticated"), "{err}");
    let out = run(&[], &[("HYDRANT_LISTEN", "0.0.0.0:0")]);
    assert!(!out.status.success(), "HYDRANT_LISTEN is read");
    let out = run(
        &["--listen", "127.0.0.1:0"],
        &[("HYDRANT_DURABILITY", "sometimes")],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("durability"));
    let cfg = tmp.path().join("bad.toml");
    std::fs::write(&cfg, "[wal]\nsegment_bytes = 100\n").unwrap();
    let out = run(&["--config", cfg.to_str().unwrap()], &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("segment_bytes"));
}

#[test]
fn health_metrics_and_config_file_streams() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("hydrant.toml");
    std::fs::write(
        &cfg,
        "log_format = \"json\"\n[wal]\ndurability = \"sync\"\n\n[[streams]]\nname = \"logs\"\ncompression = \"UNCOMPRESSED\"\n\n[[streams]]\nname = \"events\"\ndurability = \"interval\"\n",
    )
    .unwrap();
    let d = Daemon::start(
        &tmp.path().join("data"),
        &["--config", cfg.to_str().unwrap()],
    );
    let (st, v) = call(d.addr, "ListDeliveryStreams", "{}");
    assert_eq!(st, 200);
    assert_eq!(
        v["DeliveryStreamNames"],
        serde_json::json!(["events", "logs"])
    );
    for i in 0..3 {
        let (st, v) = call(
            d.addr,
            "PutRecordBatch",
            &format!(
                r#"{{"DeliveryStreamName":"logs","Records":[{{"Data":"{}"}},{{"Data":"{}"}}]}}"#,
                b64(format!("a{i}").as_bytes()),
                b64(b"bb")
            ),
        );
        assert_eq!(st, 200, "{v}");
    }
    let (st, m) = get(d.addr, "/metrics").unwrap();
    assert_eq!(st, 200);
    for needle in [
        "hydrant_incoming_records_total{stream=\"logs\"} 6",
        "hydrant_incoming_bytes_total{stream=\"logs\"} 12",
        "hydrant_incoming_put_requests_total{stream=\"logs\"} 3",
        "hydrant_wal_durable_lsn{stream=\"logs\"} 6",
        "hydrant_wal_disk_bytes{stream=\"logs\"}",
        "hydrant_wal_sync_duration_seconds_bucket{",
        "hydrant_wal_append_duration_seconds_count{stream=\"logs\"} 3",
        "hydrant_api_requests_total{operation=\"PutRecordBatch\",code=\"ok\"} 3",
        "hydrant_ready 1",
    ] {
        assert!(m.contains(needle), "missing {needle} in\n{m}");
    }
    let log = d.log_text();
    assert!(
        log.lines()
            .any(|l| l.starts_with('{') && l.contains("\"level\"")),
        "JSON logs: {log}"
    );
}

#[test]
fn sigterm_under_load_finishes_inflight_and_exits_0() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut d = Daemon::start(&data, &[]);
    let acked = Arc::new(Mutex::new(Vec::<(String, Vec<u8>)>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = (0..4)
        .map(|c| {
            let (acked, stop, addr) = (acked.clone(), stop.clone(), d.addr);
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::SeqCst) {
                    let rec = format!("client{c}-{i}").into_bytes();
                    i += 1;
                    let body = format!(
                        r#"{{"DeliveryStreamName":"default","Records":[{{"Data":"{}"}}]}}"#,
                        b64(&rec)
                    );
                    match common::try_post(
                        addr,
                        Some("Firehose_20150804.PutRecordBatch"),
                        Some("application/x-amz-json-1.1"),
                        body.as_bytes(),
                    ) {
                        Ok((200, text)) => {
                            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                            let id = v["RequestResponses"][0]["RecordId"]
                                .as_str()
                                .unwrap()
                                .to_string();
                            acked.lock().unwrap().push((id, rec));
                        }
                        Ok(_) => {}
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let status = d.terminate();
    stop.store(true, Ordering::SeqCst);
    for h in handles {
        h.join().unwrap();
    }
    assert!(
        status.success(),
        "exit status {status:?}; log:\n{}",
        d.log_text()
    );
    let on_disk: std::collections::BTreeMap<u64, Vec<u8>> =
        common::wal_records(&data, "default").into_iter().collect();
    let acked = acked.lock().unwrap();
    assert!(!acked.is_empty());
    for (id, rec) in acked.iter() {
        let (_, lsn) = hydrant_engine::record_id::decode(id).unwrap();
        assert_eq!(on_disk.get(&lsn.0), Some(rec), "record {id}");
    }
}

#[test]
fn startup_reconciles_registry_and_directories() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut d = Daemon::start(&data, &[]);
    common::create_stream(d.addr, "keep");
    let (st, _) = call(
        d.addr,
        "PutRecord",
        &format!(
            r#"{{"DeliveryStreamName":"keep","Record":{{"Data":"{}"}}}}"#,
            b64(b"k")
        ),
    );
    assert_eq!(st, 200);
    d.kill9();
    // A stray empty stream directory (no registry record) is removed; one with records is
    // moved aside, never deleted.
    std::fs::create_dir_all(data.join("streams/stray/wal")).unwrap();
    std::fs::create_dir_all(data.join("streams/copied")).unwrap();
    let copy = Command::new("cp")
        .arg("-r")
        .arg(data.join("streams/keep/wal"))
        .arg(data.join("streams/copied/wal"))
        .status()
        .unwrap();
    assert!(copy.success());
    std::fs::remove_file(data.join("streams/copied/wal/LOCK")).ok();
    let d = Daemon::start(&data, &[]);
    let (_, v) = call(d.addr, "ListDeliveryStreams", "{}");
    assert_eq!(
        v["DeliveryStreamNames"],
        serde_json::json!(["default", "keep"])
    );
    assert!(!data.join("streams/stray").exists());
    assert!(!data.join("streams/copied").exists());
    let orphaned: Vec<_> = std::fs::read_dir(data.join("orphaned")).unwrap().collect();
    assert_eq!(orphaned.len(), 1);
    drop(d);
    assert_eq!(common::wal_records(&data, "keep"), vec![(0, b"k".to_vec())]);
}

#[test]
fn systemd_ready_watchdog_and_stopping() {
    use std::os::unix::net::UnixDatagram;
    let tmp = tempfile::tempdir().unwrap();
    let sock_path = tmp.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let port = common::free_port();
    // systemd sets WATCHDOG_PID to the main process: `exec` keeps the shell's pid.
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("export WATCHDOG_PID=$$; exec \"$0\" \"$@\"")
        .arg(BIN)
        .arg("--data-dir")
        .arg(tmp.path().join("data"))
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    clear_hydrant_env(&mut cmd);
    cmd.env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "200000");
    let mut child = cmd.spawn().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !(seen.iter().any(|m: &String| m.contains("READY=1"))
        && seen.iter().filter(|m| m.contains("WATCHDOG=1")).count() >= 2)
    {
        let n = sock.recv(&mut buf).expect("a notification within 60 s");
        seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    // READY=1 comes only after recovery: the API is ready by then.
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    assert_eq!(get(addr, "/health/ready").unwrap().0, 200);
    common::signal(&child, "TERM");
    loop {
        let n = sock.recv(&mut buf).expect("STOPPING=1 after SIGTERM");
        if String::from_utf8_lossy(&buf[..n]).contains("STOPPING=1") {
            break;
        }
    }
    assert!(child.wait().unwrap().success());
}

#[test]
fn stream_definition_is_published_for_replay() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(tmp.path(), &[]);
    common::create_stream(d.addr, "defs");
    let path = tmp.path().join("streams/defs/stream.json");
    let read =
        || -> serde_json::Value { serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap() };
    let def = read();
    assert_eq!(def["version_id"], 1);
    assert_eq!(def["incarnation"].as_str().unwrap().len(), 16);
    assert_eq!(
        def["ExtendedS3DestinationConfiguration"]["BucketARN"],
        "arn:aws:s3:::b"
    );
    let (st, v) = call(
        d.addr,
        "UpdateDestination",
        r#"{"DeliveryStreamName":"defs","CurrentDeliveryStreamVersionId":"1","DestinationId":"destinationId-000000000001","ExtendedS3DestinationUpdate":{"Prefix":"p/"}}"#,
    );
    assert_eq!(st, 200, "{v}");
    let def = read();
    assert_eq!(def["version_id"], 2);
    assert_eq!(def["ExtendedS3DestinationConfiguration"]["Prefix"], "p/");
}
