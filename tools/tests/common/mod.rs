//! Shared helpers of the `hydrant` binary's tests: run it, and check that a run succeeded.
#![allow(dead_code, clippy::unwrap_used)]

use std::process::{Command, Output};

/// Runs the `hydrant` binary of this build with `args`; its output, whatever its exit status.
pub fn hydrant(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hydrant"))
        .args(args)
        .output()
        .unwrap()
}

/// The stdout of a run that must have exited with status 0 (else the test fails showing both
/// streams).
pub fn ok(o: &Output) -> String {
    assert_eq!(
        o.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}
