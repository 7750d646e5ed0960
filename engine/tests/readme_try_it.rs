//! README's "Try it" block, run as written on a machine without AWS configuration: a home
//! directory with no `~/.aws`, no `AWS_*` variables. The daemon line is the one substitution: the
//! test starts hydrantd from the test build on a free port (and replaces `127.0.0.1:4573` in the
//! other lines by that address). Each `aws` line runs under the aws cli version its comment names:
//! v2 (Debian's awscli, `/usr/bin/aws`, or `HYDRANT_AWS_V2`) and v1 (pip's awscli in the test
//! venv beside `HYDRANT_PYTHON`). Then the `find` line must list the delivered object, which holds
//! both records.
//!
//! The same command without `--no-sign-request` must fail with "Unable to locate credentials":
//! that shows the environment really has no credentials (and is why README gives the flag).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{python, workspace, Daemon};

/// The lines of README's "Try it" `sh` block, continuation lines joined.
fn try_it_lines() -> Vec<String> {
    let readme = std::fs::read_to_string(workspace().join("README.md")).unwrap();
    let section = &readme[readme
        .find("\n## Try it\n")
        .expect("README has a Try it section")..];
    let start = section.find("```sh\n").expect("Try it has an sh block") + 6;
    let block = &section[start..start + section[start..].find("```").unwrap()];
    let mut lines = Vec::new();
    let mut current = String::new();
    for line in block.lines() {
        match line.strip_suffix('\\') {
            Some(head) => current.push_str(head),
            None => {
                current.push_str(line);
                lines.push(std::mem::take(&mut current));
            }
        }
    }
    lines
}

fn aws_v2() -> PathBuf {
    let p = std::env::var_os("HYDRANT_AWS_V2")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/aws"));
    assert!(
        p.exists(),
        "no aws cli v2 at {}: install Debian's awscli (apt-get install awscli) or set HYDRANT_AWS_V2",
        p.display()
    );
    p
}

fn aws_v1() -> PathBuf {
    let p = python().parent().unwrap().join("aws");
    assert!(
        p.exists(),
        "no aws cli v1 at {}: pip install awscli in the test venv",
        p.display()
    );
    p
}

/// Runs `line` with `sh -c` in `dir`, `aws` being `aws_bin`, HOME an empty directory and no
/// `AWS_*` variable set.
fn run_line(line: &str, dir: &Path, home: &Path, aws_bin: &Path) -> Output {
    let bin = home.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let link = bin.join("aws");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(aws_bin, &link).unwrap();
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(line).current_dir(dir);
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") {
            cmd.env_remove(k);
        }
    }
    let path = std::env::var("PATH").unwrap_or_default();
    cmd.env("HOME", home)
        .env("PATH", format!("{}:{path}", bin.display()));
    cmd.output().unwrap()
}

#[test]
fn the_try_it_commands_work_as_written_without_aws_configuration() {
    let lines = try_it_lines();
    assert!(
        lines[0].starts_with("cargo run --release --bin hydrantd &"),
        "{lines:?}"
    );
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let daemon = Daemon::start(&tmp.path().join("hydrant-data"), &[]);
    let addr = daemon.addr.to_string();

    let mut version: Option<&str> = None;
    let mut puts = 0;
    let mut find_line = None;
    for line in &lines[1..] {
        let line = line.replace("127.0.0.1:4573", &addr);
        let trimmed = line.trim_start();
        if let Some(comment) = trimmed.strip_prefix('#') {
            if comment.contains("aws cli v2") {
                version = Some("v2");
            } else if comment.contains("aws cli v1") {
                version = Some("v1");
            }
            continue;
        }
        if trimmed.starts_with("aws ") {
            let which = version
                .take()
                .expect("an aws line follows a comment naming its version");
            let bin = if which == "v2" { aws_v2() } else { aws_v1() };
            let out = run_line(&line, tmp.path(), &home, &bin);
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success() && stdout.contains("RecordId"),
                "aws cli {which}: {line}\nstdout: {stdout}\nstderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            puts += 1;

            // Without --no-sign-request the same line fails for want of credentials.
            let unsigned = line.replace(" --no-sign-request", "");
            let out = run_line(&unsigned, tmp.path(), &home, &bin);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                !out.status.success() && stderr.contains("Unable to locate credentials"),
                "aws cli {which} without --no-sign-request: {stderr}"
            );
        } else if trimmed.starts_with("find ") {
            find_line = Some(line.clone());
        } else {
            panic!("a line the test does not know how to run: {line}");
        }
    }
    assert_eq!(puts, 2, "README shows one command per aws cli version");
    assert!(!home.join(".aws").exists());

    // "about 5 s later": the objects listed hold both records (one object, or two when the
    // buffer's 5 s ran out between the two puts).
    let find_line = find_line.expect("Try it ends with a find line");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = run_line(&find_line, tmp.path(), &home, &aws_v2());
        let mut data = Vec::new();
        let listed = String::from_utf8_lossy(&out.stdout).into_owned();
        for f in listed.lines() {
            assert!(f.ends_with(".gz"), "{f}");
            let out = Command::new("gzip")
                .arg("-dc")
                .arg(tmp.path().join(f))
                .output()
                .unwrap();
            assert!(out.status.success(), "{f}");
            data.extend_from_slice(&out.stdout);
        }
        if data == b"hello\nhello\n" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{find_line} listed {listed:?} holding {:?}",
            String::from_utf8_lossy(&data)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}
