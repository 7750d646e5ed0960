//! The pages, rendered on the server with maud (which escapes every value it is given: names,
//! tags, messages and record bytes reach the page as text, never as markup). The only markup
//! inserted as it is, is the charts' SVG, which plotters draws from numbers and our own labels.
//!
//! Pages carry no inline script or style (the Content-Security-Policy forbids them): the
//! stylesheet and the refresh script are served files ([`super::assets`]). The part of a page
//! that refreshes is the element `#live`; the script fetches the page again and swaps it in.

use maud::{html, Markup, PreEscaped, DOCTYPE};
use serde_json::Value;

use super::charts::short;
use super::forms::Fields;
use super::history::Point;
use super::snapshot::{destination_summary, health, StreamSnapshot};
use crate::delivery::recent::FailureKind;

/// What every page needs: the session's CSRF token, and whether a logout button makes sense.
#[derive(Debug)]
pub struct Ctx {
    /// The CSRF token of the session.
    pub csrf: String,
    /// Logged in (not an open console): show a logout button.
    pub logout: bool,
    /// Seconds between refreshes of `#live`.
    pub refresh_secs: u32,
}

/// A stream's path.
#[must_use]
pub fn stream_path(name: &str) -> String {
    let enc: String = form_urlencoded::byte_serialize(name.as_bytes()).collect();
    format!("/console/streams/{enc}")
}

fn csrf_field(ctx: &Ctx) -> Markup {
    html! { input type="hidden" name="csrf" value=(ctx.csrf); }
}

/// The frame of every page.
#[must_use]
pub fn layout(ctx: Option<&Ctx>, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · hydrant" }
                link rel="stylesheet" href="/console/static/console.css";
                script src="/console/static/console.js" defer {}
            }
            body {
                header {
                    a.brand href="/console/" { "hydrant" }
                    nav {
                        a href="/console/" { "Streams" }
                        a href="/console/new" { "Create stream" }
                    }
                    @if let Some(c) = ctx {
                        @if c.logout {
                            form.logout method="post" action="/console/logout" {
                                (csrf_field(c))
                                button type="submit" { "Log out" }
                            }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// The login page.
#[must_use]
pub fn login(csrf: &str, error: Option<&str>) -> Markup {
    layout(
        None,
        "Log in",
        html! {
            h1 { "Log in" }
            @if let Some(e) = error { p.error role="alert" { (e) } }
            form.card method="post" action="/console/login" {
                input type="hidden" name="csrf" value=(csrf);
                label { "Access key id (empty for the console password)"
                    input type="text" name="user" autocomplete="username"; }
                label { "Password or secret access key"
                    input type="password" name="password" autocomplete="current-password"; }
                button type="submit" { "Log in" }
            }
        },
    )
}

/// A page with one message.
#[must_use]
pub fn message(ctx: Option<&Ctx>, title: &str, text: &str) -> Markup {
    layout(
        ctx,
        title,
        html! { h1 { (title) } p { (text) } p { a href="/console/" { "Back to the streams" } } },
    )
}

fn bytes(v: u64) -> String {
    scaled(
        v as f64,
        &[
            (1e9, 2, "GB"),
            (1e6, 2, "MB"),
            (1e3, 1, "kB"),
            (1.0, 0, "B"),
        ],
    )
}

fn seconds(s: f64) -> String {
    scaled(s, &[(3600.0, 1, "h"), (60.0, 1, "min"), (1.0, 1, "s")])
}

/// `v` in the first unit (divisor, decimals, name) it reaches, else in the last.
fn scaled(v: f64, units: &[(f64, usize, &str)]) -> String {
    match units.iter().find(|u| v >= u.0).or(units.last()) {
        Some(&(divisor, decimals, unit)) => format!("{:.*} {unit}", decimals, v / divisor),
        None => format!("{v}"),
    }
}

fn time(ms: u64) -> String {
    jiff::Timestamp::from_millisecond(i64::try_from(ms).unwrap_or(0))
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}

/// One row of the streams page.
#[derive(Debug)]
pub struct Row {
    /// The stream.
    pub snap: StreamSnapshot,
    /// Its last point, if a step has passed.
    pub last: Option<Point>,
    /// Failed attempts in the last hour.
    pub failed_last_hour: u64,
    /// Data freshness now, seconds.
    pub freshness_s: f64,
    /// S3 destinations write to the local store.
    pub local_store: bool,
}

impl Row {
    /// Records accepted per second over the last step.
    #[must_use]
    pub fn records_per_s(&self) -> f64 {
        self.last.as_ref().map_or(0.0, |p| p.incoming_records_per_s)
    }
    /// Bytes accepted per second over the last step.
    #[must_use]
    pub fn bytes_per_s(&self) -> f64 {
        self.last.as_ref().map_or(0.0, |p| p.incoming_bytes_per_s)
    }
    /// Undelivered records.
    #[must_use]
    pub fn backlog(&self) -> u64 {
        self.snap
            .durable_lsn
            .saturating_sub(self.snap.delivery.cursor)
    }
}

/// The sort keys of the streams page: `(key, column heading)`.
pub const SORTS: [(&str, &str); 8] = [
    ("name", "Stream"),
    ("status", "Status"),
    ("destination", "Destination"),
    ("incoming", "Incoming"),
    ("backlog", "Backlog"),
    ("freshness", "Freshness"),
    ("errors", "Errors (1 h)"),
    ("disk", "Disk"),
];

/// The streams page.
#[must_use]
pub fn streams(ctx: &Ctx, rows: &[Row], q: &str, sort: &str, desc: bool) -> Markup {
    let sort_link = |key: &str| {
        let d = if key == sort && !desc { "1" } else { "0" };
        let q: String = form_urlencoded::byte_serialize(q.as_bytes()).collect();
        format!(
            "/console/?sort={key}&desc={d}&q={q}&refresh={}",
            ctx.refresh_secs
        )
    };
    layout(
        Some(ctx),
        "Streams",
        html! {
            h1 { "Delivery streams" }
            form.filter method="get" action="/console/" {
                input type="search" name="q" value=(q) placeholder="Filter by name, tag, destination";
                input type="hidden" name="sort" value=(sort);
                input type="hidden" name="desc" value=(if desc { "1" } else { "0" });
                button type="submit" { "Filter" }
                a.button href="/console/new" { "Create stream" }
            }
            div #live data-refresh=(ctx.refresh_secs) {
                table.streams {
                    thead { tr {
                        @for (key, label) in SORTS {
                            th { a href=(sort_link(key)) { (label) @if key == sort { (if desc { " ▼" } else { " ▲" }) } } }
                        }
                    } }
                    tbody {
                        @if rows.is_empty() {
                            tr { td colspan="8" { "No stream matches." } }
                        }
                        @for r in rows {
                            @let (status, class) = health(&r.snap);
                            @let (kind, target) = destination_summary(&r.snap.destination, r.local_store);
                            tr data-stream=(r.snap.name) {
                                td {
                                    a href=(stream_path(&r.snap.name)) { (r.snap.name) }
                                    @if !r.snap.tags.is_empty() {
                                        div.tags { @for (k, v) in &r.snap.tags { span.tag { (k) "=" (v) } } }
                                    }
                                    div.sub { (r.snap.source) }
                                }
                                td {
                                    span class=(format!("status {class}")) { (status) }
                                    @if let Some(why) = &r.snap.failure { div.sub.failure { (why) } }
                                }
                                td { (kind) div.sub { (target) } }
                                td.num {
                                    (short(r.records_per_s())) " rec/s"
                                    div.sub { (format!("{:.2}", r.bytes_per_s() / 1e6)) " MB/s" }
                                    div.sub.incoming-total { (r.snap.incoming_records) " since start" }
                                }
                                td.num {
                                    (r.backlog()) " rec"
                                    div.sub { (bytes(r.snap.backlog_bytes)) }
                                    div.sub { "oldest " (seconds(r.freshness_s)) }
                                }
                                td.num { (seconds(r.freshness_s)) }
                                td class=(if r.failed_last_hour > 0 { "num bad" } else { "num" }) {
                                    (r.failed_last_hour)
                                    @if r.snap.delivery.error_output_records > 0 {
                                        div.sub { (r.snap.delivery.error_output_records) " to error output" }
                                    }
                                }
                                td.num {
                                    (bytes(r.snap.disk_bytes))
                                    @if let Some(b) = r.snap.budget_bytes.filter(|b| *b > 0) {
                                        div.sub { "of " (bytes(b)) " (" (format!("{:.1}", r.snap.disk_bytes as f64 * 100.0 / b as f64)) " %)" }
                                        meter min="0" max=(b) value=(r.snap.disk_bytes) high=(b / 10 * 8) {}
                                    }
                                }
                            }
                        }
                    }
                }
                p.updated { "Updated " (time(hydrant_wal::now_ms())) }
            }
        },
    )
}

/// The stream page.
#[must_use]
pub fn stream(
    ctx: &Ctx,
    snap: &StreamSnapshot,
    describe: &Value,
    charts: &[(&str, &str, String)],
    show_raw: bool,
    local_store: bool,
) -> Markup {
    let (status, class) = health(snap);
    let (kind, target) = destination_summary(&snap.destination, local_store);
    let path = stream_path(&snap.name);
    let pretty = serde_json::to_string_pretty(describe).unwrap_or_default();
    let now = hydrant_wal::now_ms();
    let fresh = super::history::freshness_s(snap, now);
    layout(
        Some(ctx),
        &snap.name,
        html! {
            div.title {
                h1 { (snap.name) }
                div.actions {
                    a.button href=(format!("{path}/update")) { "Update destination" }
                    a.button.danger href=(format!("{path}/delete")) { "Delete" }
                }
            }
            @if !snap.tags.is_empty() {
                div.tags { @for (k, v) in &snap.tags { span.tag { (k) "=" (v) } } }
            }
            div #live data-refresh=(ctx.refresh_secs) {
                dl.summary {
                    div { dt { "Status" } dd { span class=(format!("status {class}")) { (status) } } }
                    div { dt { "Destination" } dd { (kind) " " (target) } }
                    div { dt { "Version" } dd { (snap.version_id) } }
                    div { dt { "Records in" } dd.incoming-total { (snap.incoming_records) } }
                    div { dt { "Delivered" } dd.delivered-total { (snap.delivery.records) } }
                    div { dt { "Backlog" } dd { (snap.durable_lsn.saturating_sub(snap.delivery.cursor)) " rec, " (bytes(snap.backlog_bytes)) } }
                    div { dt { "Freshness" } dd { (seconds(fresh)) } }
                    div { dt { "Failed attempts" } dd { (snap.delivery.attempts_failed) } }
                    div { dt { "Error output" } dd.error-output-total { (snap.delivery.error_output_records) } }
                }
                h2 { "Last hour (10 s steps)" }
                div.charts {
                    @for (title, unit, svg) in charts {
                        figure.chart {
                            figcaption { (title) span.unit { " (" (unit) ")" } }
                            (PreEscaped(svg))
                        }
                    }
                }
                h2 #failures { "Latest failures" }
                @if snap.delivery.recent.is_empty() {
                    p { "None since the daemon started." }
                } @else {
                    p {
                        @if show_raw { a href=(format!("{path}#failures")) { "Hide raw data" } }
                        @else { a href=(format!("{path}?raw=1#failures")) { "Show raw data" } }
                    }
                    table.failures {
                        thead { tr { th { "Time" } th { "Kind" } th { "Error code" } th { "Message" } @if show_raw { th { "Raw data" } } } }
                        tbody {
                            @for e in &snap.delivery.recent {
                                tr class=(match e.kind { FailureKind::Attempt => "attempt", FailureKind::ErrorOutput => "error-output" }) {
                                    td { (time(e.time_ms)) }
                                    td { (match e.kind { FailureKind::Attempt => format!("attempt ({} records)", e.records), FailureKind::ErrorOutput => "error output".to_string() }) }
                                    td { code { (e.code) } }
                                    td { (e.message) }
                                    @if show_raw { td { code { (String::from_utf8_lossy(&e.raw)) } } }
                                }
                            }
                        }
                    }
                }
            }
            h2 { "Configuration (DescribeDeliveryStream)" }
            pre.config { (pretty) }
        },
    )
}

const KINDS: [(&str, &str); 4] = [
    ("s3", "S3 / local object store"),
    ("redshift", "Redshift (PostgreSQL)"),
    ("opensearch", "OpenSearch"),
    ("http", "HTTP endpoint"),
];
const COMPRESSIONS: [&str; 5] = ["UNCOMPRESSED", "GZIP", "ZIP", "Snappy", "HADOOP_SNAPPY"];

fn text_field(f: &Fields, name: &str, label: &str) -> Markup {
    html! { label { (label) input type="text" name=(name) value=(f.get(name)); } }
}

fn buffering_fields(f: &Fields) -> Markup {
    html! {
        (text_field(f, "buffer_mb", "Buffer size (MB)"))
        (text_field(f, "buffer_seconds", "Buffer interval (seconds)"))
    }
}

fn compression_field(f: &Fields) -> Markup {
    html! {
        label { "Compression"
            select name="compression" {
                @for c in COMPRESSIONS { option value=(c) selected[f.get("compression") == c] { (c) } }
            }
        }
    }
}

/// The create page.
#[must_use]
pub fn create(ctx: &Ctx, f: &Fields, error: Option<&str>) -> Markup {
    layout(
        Some(ctx),
        "Create stream",
        html! {
            h1 { "Create a delivery stream" }
            @if let Some(e) = error { p.error role="alert" #error { (e) } }
            form.card.create method="post" action="/console/new" {
                (csrf_field(ctx))
                fieldset {
                    legend { "Stream" }
                    (text_field(f, "name", "Name"))
                    label { "Tags (key=value, one a line)" textarea name="tags" rows="2" { (f.get("tags")) } }
                    label { "Destination"
                        select name="kind" {
                            @for (k, l) in KINDS { option value=(k) selected[f.get("kind") == k] { (l) } }
                        }
                    }
                    (text_field(f, "role_arn", "Role ARN"))
                    (buffering_fields(f))
                    (text_field(f, "lambda_arn", "Lambda transform ARN (optional)"))
                }
                fieldset {
                    legend { "S3: the destination, or the backup / intermediate bucket of the others" }
                    (text_field(f, "bucket", "Bucket"))
                    (text_field(f, "prefix", "Prefix"))
                    (text_field(f, "error_prefix", "Error output prefix"))
                    (compression_field(f))
                    (text_field(f, "partition_query", "Dynamic partitioning: jq query (S3 only; use its keys in the prefix as !{partitionKeyFromQuery:KEY})"))
                    (text_field(f, "convert_table", "Convert to Parquet: the catalog's table as DATABASE.TABLE (S3 only; compression UNCOMPRESSED, buffer at least 64 MB)"))
                    (text_field(f, "convert_compression", "Parquet compression: SNAPPY (default), GZIP or UNCOMPRESSED"))
                }
                fieldset {
                    legend { "Redshift (PostgreSQL)" }
                    (text_field(f, "jdbc_url", "Cluster JDBC URL"))
                    (text_field(f, "table", "Table"))
                    (text_field(f, "columns", "Columns (optional)"))
                    (text_field(f, "copy_options", "COPY options (optional)"))
                    (text_field(f, "username", "User"))
                    label { "Password (not shown again after a refusal)" input type="password" name="password"; }
                }
                fieldset {
                    legend { "OpenSearch" }
                    (text_field(f, "endpoint", "Cluster endpoint"))
                    (text_field(f, "index", "Index"))
                    (text_field(f, "index_rotation", "Index rotation (NoRotation, OneHour, OneDay, OneWeek, OneMonth)"))
                }
                fieldset {
                    legend { "HTTP endpoint" }
                    (text_field(f, "url", "URL"))
                    (text_field(f, "endpoint_name", "Name (optional)"))
                    (text_field(f, "access_key", "Access key (optional)"))
                }
                button type="submit" #create { "Create stream" }
            }
        },
    )
}

/// The update page.
#[must_use]
pub fn update(ctx: &Ctx, snap: &StreamSnapshot, f: &Fields, error: Option<&str>) -> Markup {
    let s3 = snap
        .destination
        .get("ExtendedS3DestinationDescription")
        .is_some()
        || snap.destination.get("S3DestinationDescription").is_some();
    layout(
        Some(ctx),
        "Update destination",
        html! {
            h1 { "Update " (snap.name) }
            @if let Some(e) = error { p.error role="alert" #error { (e) } }
            form.card method="post" action=(format!("{}/update", stream_path(&snap.name))) {
                (csrf_field(ctx))
                input type="hidden" name="version" value=(snap.version_id);
                (buffering_fields(f))
                @if s3 {
                    (text_field(f, "prefix", "Prefix"))
                    (text_field(f, "error_prefix", "Error output prefix"))
                    (compression_field(f))
                }
                p { "The stream's delivery restarts with the new settings (UpdateDestination)." }
                button type="submit" #update { "Apply the update" }
                " " a href=(stream_path(&snap.name)) { "Cancel" }
            }
        },
    )
}

/// The delete confirmation page.
#[must_use]
pub fn delete(ctx: &Ctx, name: &str, error: Option<&str>) -> Markup {
    layout(
        Some(ctx),
        "Delete stream",
        html! {
            h1 { "Delete " (name) "?" }
            @if let Some(e) = error { p.error role="alert" #error { (e) } }
            p { "Its records not yet delivered are lost with its write-ahead log. Type the stream's name to confirm." }
            form.card method="post" action=(format!("{}/delete", stream_path(name))) {
                (csrf_field(ctx))
                label { "Stream name" input type="text" name="confirm" autocomplete="off"; }
                button.danger type="submit" #delete { "Delete the stream" }
                " " a href=(stream_path(name)) { "Cancel" }
            }
        },
    )
}
