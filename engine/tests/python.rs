//! Runs the Python client tests (`tests/python/`, boto3 and the aws cli) against three running
//! daemons (no auth, SigV4, TLS), then checks in the WAL that every record the Python clients
//! saw acknowledged is there with its exact bytes.
//!
//! The Python interpreter is `HYDRANT_PYTHON`, or `<workspace>/.venv/bin/python`; it needs
//! boto3, awscli and pytest (`python3 -m venv .venv && .venv/bin/pip install boto3 awscli
//! pytest`). A missing interpreter fails the test; it is never skipped.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use common::Daemon;

fn make_cert(dir: &Path) -> (PathBuf, PathBuf) {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl is needed to make the TLS test certificate");
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

#[test]
fn boto3_and_aws_cli() {
    let python = common::python();
    let aws = python.parent().unwrap().join("aws");
    assert!(
        aws.exists(),
        "the aws cli is missing from the venv: {}",
        aws.display()
    );
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("plain");
    let plain = Daemon::start(&data, &[]);
    let signed = Daemon::start(
        &tmp.path().join("signed"),
        &[
            "--access-key-id",
            "AKIDPYTHON",
            "--secret-access-key",
            "py-secret",
        ],
    );
    let (cert, key) = make_cert(tmp.path());
    let tls = Daemon::start(
        &tmp.path().join("tls"),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let expect_file = tmp.path().join("expected.json");
    let out = Command::new(&python)
        .args(["-m", "pytest", "-v", "-p", "no:cacheprovider"])
        .arg(common::workspace().join("tests/python"))
        .env("HYDRANT_ENDPOINT", plain.endpoint())
        .env("HYDRANT_SIGV4_ENDPOINT", signed.endpoint())
        .env("HYDRANT_KEY_ID", "AKIDPYTHON")
        .env("HYDRANT_SECRET", "py-secret")
        .env(
            "HYDRANT_TLS_ENDPOINT",
            format!("https://127.0.0.1:{}", tls.addr.port()),
        )
        .env("HYDRANT_TLS_CA", &cert)
        .env("HYDRANT_AWS_CLI", &aws)
        .env("HYDRANT_EXPECT_FILE", &expect_file)
        .env_remove("AWS_PROFILE")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "the Python client tests failed:\n{stdout}"
    );
    drop(plain);
    drop(signed);
    drop(tls);

    let expected: std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>> =
        serde_json::from_slice(&std::fs::read(&expect_file).unwrap()).unwrap();
    assert_eq!(expected.len(), 2, "py-ops and py-cli: {expected:?}");
    let mut checked = 0;
    for (stream, records) in expected {
        let on_disk: std::collections::BTreeMap<u64, Vec<u8>> =
            common::wal_records(&data, &stream).into_iter().collect();
        for (id, b64) in records {
            let (_, lsn) = hydrant_engine::record_id::decode(&id).unwrap();
            let want = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap();
            assert_eq!(on_disk.get(&lsn.0), Some(&want), "{stream} record {id}");
            checked += 1;
        }
    }
    assert!(checked >= 504, "{checked} records checked");
}
