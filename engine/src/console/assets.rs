//! The console's two static files, compiled into the binary: its stylesheet and its refresh
//! script (served as files so that the Content-Security-Policy can forbid inline code).

/// `(path, content type, bytes)`.
pub const FILES: [(&str, &str, &str); 2] = [
    (
        "/console/static/console.css",
        "text/css; charset=utf-8",
        include_str!("static/console.css"),
    ),
    (
        "/console/static/console.js",
        "text/javascript; charset=utf-8",
        include_str!("static/console.js"),
    ),
];

/// The file served at `path`.
#[must_use]
pub fn find(path: &str) -> Option<(&'static str, &'static str)> {
    FILES
        .iter()
        .find(|(p, _, _)| *p == path)
        .map(|(_, t, b)| (*t, *b))
}
