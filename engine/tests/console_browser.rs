//! The console in a real browser: `tests/python/console_browser.py` drives Debian's headless
//! chromium through chromium-driver (selenium, in the test venv) against this test's hydrantd.
//! What it covers is in that script's documentation; its screenshots land in
//! `target/console-screenshots/`. Needs `chromium` and `chromium-driver` (installed by `.ci/run`):
//! without them the test fails, it never skips.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::{python, workspace, Daemon};

#[test]
fn create_watch_break_and_delete_a_stream_in_chromium() {
    let tmp = tempfile::tempdir().unwrap();
    // Batches are retried 3 s, then go to the error output (the script breaks the destination).
    let d = Daemon::start(&tmp.path().join("data"), &["--delivery-retry-seconds", "3"]);
    let shots = workspace().join("target/console-screenshots");
    hydrant_tests::process::run_ok_with(
        Command::new(python())
            .arg(workspace().join("tests/python/console_browser.py"))
            .arg(d.endpoint())
            .arg(d.data_dir.join("objects"))
            .arg(&shots)
            .env("SE_OFFLINE", "true"),
        "the browser script",
        || format!("daemon log:\n{}", d.log_text()),
    );
    for page in [
        "streams-empty.png",
        "create.png",
        "streams.png",
        "stream.png",
        "streams-failing.png",
        "stream-failing.png",
        "delete.png",
        "csrf-refused.png",
    ] {
        let png = std::fs::read(shots.join(page)).unwrap();
        assert!(png.starts_with(b"\x89PNG") && png.len() > 5_000, "{page}");
    }
}
