//! Where the s3s-fs binary (the S3 server of the S3 tests) is.

use std::path::{Path, PathBuf};

/// The s3s-fs binary: `HYDRANT_S3S_FS`, or `target/tools/bin/s3s-fs` of the workspace. Missing,
/// the test fails with how to install it (never skips).
///
/// # Panics
/// When there is no file at that path.
#[must_use]
pub fn s3s_fs_binary() -> PathBuf {
    let p = std::env::var_os("HYDRANT_S3S_FS").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tools/bin/s3s-fs"),
        PathBuf::from,
    );
    assert!(
        p.is_file(),
        "s3s-fs not found at {}: install it with `cargo install --locked s3s-fs@0.14.1 \
         --features binary --root target/tools` (from the workspace root), or point \
         HYDRANT_S3S_FS at the binary",
        p.display()
    );
    p
}
