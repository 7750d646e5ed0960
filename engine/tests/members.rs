//! The table test of issue 14: every member of CreateDeliveryStream and UpdateDestination that
//! hydrant serves, walked from botocore's service model by `tests/python/members.py` and sent
//! through boto3 to hydrantd (the daemon as a process, S3 destinations through s3s-fs): each is
//! applied (accepted, described back where Firehose describes it) or refused with
//! InvalidArgumentException naming it, as `tests/python/members.txt` lists; a member of the model
//! in neither list fails. README's table of applied and refused members is made from that file
//! and checked here to be the same.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::s3s::S3sFs;
use common::Daemon;

/// What `members.py` is run with: one daemon whose configuration maps the test's OpenSearch
/// domain and Lambda function, with an S3 endpoint (KMS encryption needs one).
#[test]
fn every_member_of_the_model_is_applied_or_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let s3 = S3sFs::start(&tmp.path().join("s3"), &["members"]);
    let toml = format!(
        "streams = []\n\n[wal]\nsegment_bytes = 65536\nstream_budget_bytes = 1048576\n\n{}\n\
         [opensearch.domains]\n\"arn:aws:es:us-east-1:123456789012:domain/members\" = \
         \"http://127.0.0.1:9/\"\n\n[lambda.functions]\n\
         \"arn:aws:lambda:us-east-1:123456789012:function:members\" = \
         \"http://127.0.0.1:9/members\"\n",
        S3sFs::s3_section(&s3.endpoint())
    );
    // The table record format conversion's members name (tests/python/members.py).
    hydrant_sinks::convert::catalog::LocalCatalog::new(tmp.path().join("data/catalog"))
        .put(
            "sample",
            "sample",
            &serde_json::json!({"Columns": [{"Name": "sample", "Type": "string"}]}),
        )
        .unwrap();
    let daemon = Daemon::with_config(&tmp.path().join("data"), &toml);
    let out = Command::new(common::python())
        .arg(common::workspace().join("tests/python/members.py"))
        .arg("check")
        .arg(daemon.endpoint())
        .env("HYDRANT_LOG_FILE", &daemon.log)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "members.py check failed:\n{stdout}");
    // The walk covered the model: the summary line counts what was sent.
    let summary: serde_json::Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    let paths = summary["paths"].as_u64().unwrap();
    let checked = summary["checked"]["applied"].as_u64().unwrap()
        + summary["checked"]["refused"].as_u64().unwrap();
    assert!(paths > 600, "{summary}");
    assert_eq!(checked, paths, "{summary}");
}

/// README's table is `members.py table`, between its markers.
#[test]
fn readme_table_is_made_from_the_lists() {
    let out = hydrant_tests::process::run_ok(
        Command::new(common::python())
            .arg(common::workspace().join("tests/python/members.py"))
            .arg("table"),
        "members.py table",
    );
    let table = String::from_utf8(out.stdout).unwrap();
    let readme = std::fs::read_to_string(common::workspace().join("README.md")).unwrap();
    let begin = "<!-- members.py table: begin -->\n";
    let end = "<!-- members.py table: end -->";
    let start = readme
        .find(begin)
        .expect("README has the members table markers")
        + begin.len();
    let stop = readme[start..].find(end).unwrap() + start;
    assert_eq!(
        &readme[start..stop],
        table,
        "README's members table differs from tests/python/members.txt: regenerate it with \
         `python tests/python/members.py table`"
    );
}
