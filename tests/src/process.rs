//! Running an outside program from a test (a Python script, the aws cli, promtool, openssl) and
//! failing the test, with what the program printed, when it does not succeed.

use std::process::{Command, Output};

/// Runs `cmd` to its end and returns its output. A program that cannot be started, or that
/// exits unsuccessfully, fails the test with `what` and the program's stdout and stderr.
pub fn run_ok(cmd: &mut Command, what: &str) -> Output {
    run_ok_with(cmd, what, String::new)
}

/// As [`run_ok`]; a failure also shows `more()`, called after the program ended (for example
/// the log of the daemon the program talked to).
pub fn run_ok_with(cmd: &mut Command, what: &str, more: impl FnOnce() -> String) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}"));
    if !out.status.success() {
        panic!(
            "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            more()
        );
    }
    out
}
