//! The `hydrant-bench` binary's command line: every command has help, and a bad argument is
//! refused with exit status 2 before anything runs. (The runs themselves are exercised in
//! tools/tests/http.rs through `hydrant bench`, and by the unit tests of each benchmark.)
#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hydrant-bench"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn every_command_has_help() {
    for args in [
        &["--help"][..],
        &["wal", "--help"],
        &["put", "--help"],
        &["deliver", "--help"],
    ] {
        let o = bench(args);
        let text = String::from_utf8_lossy(&o.stdout);
        assert_eq!(o.status.code(), Some(0), "{args:?}");
        assert!(text.contains("Usage: hydrant-bench"), "{args:?}: {text}");
    }
}

#[test]
fn a_bad_argument_is_refused_before_anything_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let o = bench(&[
        "wal",
        "--seconds",
        "0",
        "--dir",
        tmp.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("hydrant-bench: error: invalid argument: --seconds must be in (0, 3600]"),
        "{o:?}"
    );
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}
