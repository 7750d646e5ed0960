//! The PostgreSQL / Redshift sink against a real PostgreSQL: each test starts its own throwaway
//! cluster ([`TestPostgres`]: initdb + pg_ctl on a free 127.0.0.1 port) and checks what lands in
//! the table with psql. Without PostgreSQL binaries these tests fail with a message saying how
//! to install them (`apt-get install -y postgresql`, or `HYDRANT_PG_BIN`).

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hydrant_sinks::postgres::{CopyCommand, JdbcUrl, PostgresSink, PostgresSinkConfig};
use hydrant_sinks::{
    Batch, BatchIdentity, Compression, FailureDetail, LocalStore, ObjectSink, ObjectSinkConfig,
    S3Prefixes, Sink, SinkError,
};
use hydrant_tests::pg::TestPostgres;

const DB: &str = "warehouse";
const ARRIVAL: u64 = 1_700_000_000_000; // 2023-11-14T22:13:20Z
const DESTINATION: &str = "destinationId-000000000001";

fn start(table_sql: &str) -> TestPostgres {
    let pg = TestPostgres::start().unwrap_or_else(|e| panic!("cannot start PostgreSQL: {e}"));
    pg.create_database(DB).unwrap();
    if !table_sql.is_empty() {
        pg.psql(DB, table_sql);
    }
    pg
}

fn config(
    pg: &TestPostgres,
    table: &str,
    columns: Option<&str>,
    options: &str,
) -> PostgresSinkConfig {
    let url = JdbcUrl::parse(&pg.jdbc_url(DB)).unwrap();
    let copy = CopyCommand::from_firehose(table, columns, Some(options)).unwrap();
    let mut config = PostgresSinkConfig::new(url, "postgres", "unused-with-trust", copy);
    config.connect_timeout = Duration::from_secs(5);
    config.statement_timeout = Duration::from_secs(30);
    config
}

fn sink(pg: &TestPostgres, table: &str, options: &str) -> PostgresSink {
    PostgresSink::new(config(pg, table, None, options)).unwrap()
}

fn batch_of(stream: &str, first_lsn: u64, records: &[&str]) -> Batch {
    common::batch(
        BatchIdentity {
            stream: stream.into(),
            incarnation: "inc-1".into(),
            destination_id: DESTINATION.into(),
            first_lsn,
            last_lsn: first_lsn + records.len() as u64 - 1,
        },
        ARRIVAL,
        ARRIVAL + first_lsn,
        records.iter().map(|r| Bytes::copy_from_slice(r.as_bytes())),
    )
}

fn batch(first_lsn: u64, records: &[&str]) -> Batch {
    batch_of("orders", first_lsn, records)
}

async fn deliver(sink: &PostgresSink, batch: &Batch) -> hydrant_sinks::Delivered {
    sink.deliver(batch)
        .await
        .unwrap_or_else(|e| panic!("deliver {}: {e}", batch.identity))
}

async fn deliver_err(sink: &PostgresSink, batch: &Batch) -> SinkError {
    match sink.deliver(batch).await {
        Ok(d) => panic!("delivery of {} succeeded: {d:?}", batch.identity),
        Err(e) => e,
    }
}

fn code(error: &SinkError) -> String {
    error.error_code().into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_format_is_pipe_delimited_text() {
    let pg = start("CREATE TABLE events (id int, name varchar(20), note text)");
    let sink = sink(&pg, "events", "");
    assert_eq!(sink.kind(), "postgres");
    let b = batch(
        1,
        &[
            "1|alice|tab\there\n",
            "2|bob|\\N\n3|",
            "carol|back\\slash\n",
        ],
    );
    let delivered = deliver(&sink, &b).await;
    assert_eq!((delivered.records, delivered.failed.len()), (3, 0));
    assert_eq!(delivered.target, b.identity.request_id());
    assert_eq!(
        pg.psql(
            DB,
            "SELECT id, name, coalesce(note, 'NULL') FROM events ORDER BY id"
        ),
        "1|alice|tab\there\n2|bob|NULL\n3|carol|back\\slash"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delimiter_and_null_as_and_truncatecolumns() {
    let pg = start("CREATE TABLE public.\"Mixed Case\" (id int, code varchar(3), qty int)");
    let sink = sink(
        &pg,
        "public.\"Mixed Case\"",
        "DELIMITER AS ',' NULL AS 'nil' TRUNCATECOLUMNS",
    );
    let b = batch(1, &["1,abcdef,7\n", "2,nil,\n", "3,,nil\n"]);
    let delivered = deliver(&sink, &b).await;
    assert_eq!(delivered.records, 3);
    assert_eq!(
        pg.psql(
            DB,
            "SELECT id, coalesce(code, 'NULL'), coalesce(qty::text, 'NULL') FROM \"Mixed Case\" \
             ORDER BY id"
        ),
        "1|abc|7\n2|NULL|NULL\n3||NULL"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_with_quote_and_ignoreheader_into_listed_columns() {
    let pg = start("CREATE TABLE people (id serial, name text, city text, age int)");
    let config = config(
        &pg,
        "people",
        Some("name, age,city"),
        "CSV QUOTE AS '''' IGNOREHEADER 1",
    );
    let sink = PostgresSink::new(config).unwrap();
    let b = batch(
        1,
        &[
            "name,age,city\n'O''Brien, Pat',41,'Cork\nsouth'\r\n",
            "Ann,30,Oslo\n",
        ],
    );
    let delivered = deliver(&sink, &b).await;
    assert_eq!((delivered.records, delivered.failed.len()), (2, 0));
    assert_eq!(
        pg.psql(
            DB,
            "SELECT id, name, age, replace(city, E'\\n', '/') FROM people ORDER BY id"
        ),
        "1|O'Brien, Pat|41|Cork/south\n2|Ann|30|Oslo"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_auto_matches_keys_exactly_and_ignorecase_folds_them() {
    let pg = start(
        "CREATE TABLE exact (id bigint, name text, price numeric, tags jsonb); \
         CREATE TABLE folded (id bigint, name text, price numeric, tags jsonb)",
    );
    let records = [
        "{\"id\": 1, \"name\": \"a\", \"price\": 12345678901234567890.25, \"tags\": [\"x\"]}",
        "{\"ID\": 2, \"Name\": \"b\", \"extra\": true}\n",
        "{\"id\": 3, \"tags\": {\"k\": {\"n\": null}}}",
    ];
    let exact = sink(&pg, "exact", "JSON 'auto'");
    assert_eq!(deliver(&exact, &batch(1, &records)).await.records, 3);
    assert_eq!(
        pg.psql(
            DB,
            "SELECT coalesce(id::text, '-'), coalesce(name, '-'), coalesce(price::text, '-'), \
             coalesce(tags::text, '-') FROM exact ORDER BY id NULLS LAST"
        ),
        "1|a|12345678901234567890.25|[\"x\"]\n3|-|-|{\"k\": {\"n\": null}}\n-|-|-|-"
    );
    // Another stream: the position is per (stream, incarnation, destination), not per table.
    let folded = sink(&pg, "folded", "json 'auto ignorecase'");
    assert_eq!(
        deliver(&folded, &batch_of("other", 1, &records))
            .await
            .records,
        3
    );
    assert_eq!(
        pg.psql(DB, "SELECT id, coalesce(name, '-') FROM folded ORDER BY id"),
        "1|a\n2|b\n3|-"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_intermediate_object_is_written_then_loaded() {
    let pg = start("CREATE TABLE events (id int, name text)");
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::for_bucket(dir.path(), "staging").unwrap();
    let prefixes = S3Prefixes::for_redshift(Some("firehose/"), None).unwrap();
    let object_config = ObjectSinkConfig::with_compression(prefixes, Compression::Gzip);
    let intermediate = Arc::new(ObjectSink::new(Arc::new(store), object_config));
    let mut config = config(&pg, "events", None, "GZIP");
    config.copy.check_compression(Compression::Gzip).unwrap();
    assert!(config
        .copy
        .check_compression(Compression::Uncompressed)
        .is_err());
    config.intermediate = Some(intermediate.clone());
    let sink = PostgresSink::new(config).unwrap();
    let b = batch(1, &["1|one\n", "2|two\n"]);
    let target = sink.target(&b).unwrap();
    assert!(
        target.starts_with("firehose/2023/11/14/22/orders-1-2023-11-14-22-13-20-"),
        "{target}"
    );
    assert!(target.ends_with(".gz"), "{target}");
    let delivered = deliver(&sink, &b).await;
    assert_eq!(delivered.target, target);
    let stored = intermediate.store().get_object(&target).await.unwrap();
    assert_eq!(
        Compression::Gzip.decompress(&stored).unwrap(),
        b"1|one\n2|two\n"
    );
    assert_eq!(
        pg.psql(DB, "SELECT id, name FROM events ORDER BY id"),
        "1|one\n2|two"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_delivered_twice_loads_once_and_an_overlap_loads_only_new_rows() {
    let pg = start("CREATE TABLE events (id int, name text)");
    let sink = sink(&pg, "events", "");
    assert_eq!(
        sink.committed_end("orders", "inc-1", DESTINATION)
            .await
            .unwrap(),
        Some(0),
        "no table yet: PostgreSQL's position is 0"
    );
    let first = batch(1, &["1|a\n", "2|b\n", "3|c\n"]);
    assert_eq!(deliver(&sink, &first).await.records, 3);
    let again = deliver(&sink, &first).await;
    assert_eq!(
        (again.records, again.data_bytes, again.failed.len()),
        (0, 0, 0)
    );
    assert_eq!(pg.psql(DB, "SELECT count(*) FROM events"), "3");
    assert_eq!(
        sink.committed_end("orders", "inc-1", DESTINATION)
            .await
            .unwrap(),
        Some(4)
    );

    let overlap = batch(2, &["2|b\n", "3|c\n", "4|d\n", "5|e\n"]);
    let delivered = deliver(&sink, &overlap).await;
    assert_eq!((delivered.records, delivered.data_bytes), (2, 8));
    assert_eq!(
        pg.psql(
            DB,
            "SELECT string_agg(id::text, ',' ORDER BY id) FROM events"
        ),
        "1,2,3,4,5"
    );
    // A fresh sink (a restarted engine) reads the same position; other streams have none.
    let fresh = self::sink(&pg, "events", "");
    assert_eq!(
        fresh
            .committed_end("orders", "inc-1", DESTINATION)
            .await
            .unwrap(),
        Some(6)
    );
    assert_eq!(
        fresh
            .committed_end("orders", "inc-2", DESTINATION)
            .await
            .unwrap(),
        Some(0)
    );
    let other = batch_of("returns", 1, &["9|z\n"]);
    assert_eq!(deliver(&fresh, &other).await.records, 1);
    assert_eq!(pg.psql(DB, "SELECT count(*) FROM events"), "6");
    assert_eq!(
        pg.psql(
            DB,
            "SELECT stream, next_lsn FROM hydrant_offsets ORDER BY stream"
        ),
        "orders|6\nreturns|2"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maxerror_files_bad_rows_and_loads_the_rest() {
    let pg = start("CREATE TABLE events (id int PRIMARY KEY, name varchar(5))");
    let sink = sink(&pg, "events", "MAXERROR 4");
    let b = batch(
        10,
        &[
            "1|ok\n",
            "x|not a number\n", // PostgreSQL rejects it (22P02)
            "2|fine\n3\n",      // the second line has too few fields (parse error)
            "4|toolong\n",      // varchar(5) overflow (22001) without TRUNCATECOLUMNS
            "1|dup\n",          // a duplicate key (23505)
            "5|last\n",
        ],
    );
    let delivered = deliver(&sink, &b).await;
    assert_eq!(
        pg.psql(
            DB,
            "SELECT string_agg(id::text, ',' ORDER BY id) FROM events"
        ),
        "1,2,5"
    );
    assert_eq!(delivered.records, 2);
    let failed: Vec<(String, String)> = delivered
        .failed
        .iter()
        .map(|f| {
            (
                String::from_utf8_lossy(&f.raw_data).into_owned(),
                f.error_message.clone(),
            )
        })
        .collect();
    assert_eq!(failed.len(), 4, "{failed:?}");
    assert!(
        failed[0].0 == "x|not a number\n" && failed[0].1.contains("line 2, column id"),
        "{failed:?}"
    );
    assert!(
        failed[1].0 == "2|fine\n3\n"
            && failed[1].1.contains("line 4")
            && failed[1].1.contains("Delimiter not found"),
        "{failed:?}"
    );
    assert!(
        failed[2].0 == "4|toolong\n" && failed[2].1.contains("line 5"),
        "{failed:?}"
    );
    assert!(
        failed[3].0 == "1|dup\n" && failed[3].1.contains("line 6"),
        "{failed:?}"
    );
    for f in &delivered.failed {
        assert_eq!(f.error_code, "Redshift.DataLoadFailed");
        assert_eq!(f.detail, FailureDetail::Redshift);
        assert_eq!(f.error_output_type().as_str(), "redshift-failed");
    }
    // A resend after a crash (before the engine filed them) reports the same records again.
    let again = deliver(&sink, &b).await;
    assert_eq!(again.records, 0);
    let raw: Vec<&[u8]> = again.failed.iter().map(|f| &f.raw_data[..]).collect();
    assert_eq!(
        raw,
        delivered
            .failed
            .iter()
            .map(|f| &f.raw_data[..])
            .collect::<Vec<_>>()
    );
    assert_eq!(pg.psql(DB, "SELECT count(*) FROM events"), "3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_maxerror_the_batch_fails_and_nothing_commits() {
    let pg = start("CREATE TABLE events (id int, name text)");
    let strict = sink(&pg, "events", "");
    let b = batch(1, &["1|a\n", "oops|b\n", "3|c\n"]);
    let error = deliver_err(&strict, &b).await;
    assert_eq!(code(&error), "Redshift.DataLoadFailed");
    assert!(!error.is_retryable());
    assert!(error.to_string().contains("line 2"), "{error}");
    let parse_error = deliver_err(&strict, &batch(1, &["1|a|extra\n"])).await;
    assert!(
        parse_error.to_string().contains("Extra column(s) found"),
        "{parse_error}"
    );
    let lenient = sink(&pg, "events", "MAXERROR 1");
    let two_bad = batch(1, &["x|a\n", "y|b\n", "3|c\n"]);
    assert_eq!(
        code(&deliver_err(&lenient, &two_bad).await),
        "Redshift.DataLoadFailed"
    );
    assert_eq!(pg.psql(DB, "SELECT count(*) FROM events"), "0");
    assert_eq!(
        strict
            .committed_end("orders", "inc-1", DESTINATION)
            .await
            .unwrap(),
        Some(0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_is_down_is_a_retryable_connection_failure() {
    let pg = start("CREATE TABLE events (id int)");
    let sink = sink(&pg, "events", "");
    assert_eq!(deliver(&sink, &batch(1, &["1\n"])).await.records, 1);
    pg.stop().unwrap();
    // The cached connection is gone, then connecting is refused.
    for attempt in 0..2 {
        let error = deliver_err(&sink, &batch(2, &["2\n"])).await;
        assert_eq!(
            code(&error),
            "Redshift.ConnectionFailed",
            "attempt {attempt}: {error}"
        );
        assert!(error.is_retryable());
    }
    let error = sink
        .committed_end("orders", "inc-1", DESTINATION)
        .await
        .unwrap_err();
    assert!(error.is_retryable());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_table_database_and_column_are_permanent() {
    let pg = start("CREATE TABLE events (id int)");
    let error = deliver_err(&sink(&pg, "nowhere", ""), &batch(1, &["1\n"])).await;
    assert_eq!(code(&error), "Redshift.TableNotFound", "{error}");
    assert!(!error.is_retryable());
    let error = deliver_err(&sink(&pg, "other.events", ""), &batch(1, &["1\n"])).await;
    assert_eq!(code(&error), "Redshift.TableNotFound", "{error}");
    let missing_column = PostgresSink::new(config(&pg, "events", Some("id, nope"), "")).unwrap();
    let error = deliver_err(&missing_column, &batch(1, &["1|2\n"])).await;
    assert_eq!(code(&error), "Redshift.ColumnNotFound", "{error}");
    assert!(!error.is_retryable());
    let mut wrong_db = config(&pg, "events", None, "");
    wrong_db.url = JdbcUrl::parse(&pg.jdbc_url("no_such_db")).unwrap();
    let error = deliver_err(&PostgresSink::new(wrong_db).unwrap(), &batch(1, &["1\n"])).await;
    assert_eq!(code(&error), "Redshift.DatabaseNotFound", "{error}");
    assert!(!error.is_retryable());
    let mut wrong_user = config(&pg, "events", None, "");
    wrong_user.username = "nobody".into();
    let error = deliver_err(&PostgresSink::new(wrong_user).unwrap(), &batch(1, &["1\n"])).await;
    assert_eq!(code(&error), "Redshift.AuthenticationFailed", "{error}");
    assert!(!error.is_retryable());
    assert_eq!(pg.psql(DB, "SELECT count(*) FROM events"), "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn give_up_writes_a_manifest_of_the_intermediate_object() {
    let pg = start("");
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::for_bucket(dir.path(), "staging").unwrap();
    let prefixes = S3Prefixes::for_redshift(None, None).unwrap();
    let intermediate = Arc::new(ObjectSink::new(
        Arc::new(store),
        ObjectSinkConfig::with_compression(prefixes, Compression::Uncompressed),
    ));
    let mut config = config(&pg, "missing_table", None, "");
    config.intermediate = Some(intermediate.clone());
    let sink = PostgresSink::new(config).unwrap();
    let b = batch(1, &["1|a\n", "2|b\n"]);
    let error = deliver_err(&sink, &b).await;
    assert_eq!(code(&error), "Redshift.TableNotFound");
    let returned = sink.give_up(&b, &error, 3).await.unwrap();
    assert!(returned.is_empty());
    let key = sink.manifest_key(&b).unwrap();
    assert_eq!(
        key,
        format!(
            "errors/manifests/2023/11/14/22/orders-1-2023-11-14-22-13-20-{}",
            b.identity.object_id()
        )
    );
    let manifest = intermediate.store().get_object(&key).await.unwrap();
    let value: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    let data_key = sink.target(&b).unwrap();
    assert_eq!(
        value["entries"][0]["url"].as_str(),
        Some(intermediate.store().location(&data_key).as_str())
    );
    assert_eq!(value["entries"][0]["mandatory"], true);
    assert_eq!(
        intermediate.store().get_object(&data_key).await.unwrap(),
        "1|a\n2|b\n"
    );
    // A second give-up (the engine retrying it) writes the same manifest again.
    assert!(sink.give_up(&b, &error, 3).await.unwrap().is_empty());
    assert_eq!(
        intermediate.store().list_keys("errors/").await.unwrap(),
        vec![key]
    );

    // Without an intermediate store nothing would hold the rows: every record is returned.
    let bare = self::sink(&pg, "missing_table", "");
    let returned = bare.give_up(&b, &error, 3).await.unwrap();
    assert_eq!(returned.len(), 2);
    assert_eq!(returned[0].error_code, "Redshift.TableNotFound");
    assert_eq!(returned[1].raw_data, "2|b\n");
    assert_eq!(returned[0].detail, FailureDetail::Redshift);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_batch_streams_into_copy_and_still_drops_bad_rows() {
    let pg = start("CREATE TABLE events (id int, name text)");
    let sink = sink(&pg, "events", "MAXERROR 3");
    // About 1.2 MB: above the inline limit, so the encoder streams into the first COPY.
    let mut lines: Vec<String> = (0..40_000).map(|i| format!("{i}|name-{i:020}\n")).collect();
    lines[25_000] = "not-a-number|x\n".into(); // rejected by PostgreSQL, deep into the stream
    lines[30_000] = "30000\n".into(); // a parse error
    lines[39_999] = "big|y\n".into(); // rejected by PostgreSQL, in the last chunk
    let records: Vec<&str> = lines.iter().map(String::as_str).collect();
    let b = batch(1, &records);
    assert!(b.data_bytes() > 1_000_000);
    let delivered = deliver(&sink, &b).await;
    assert_eq!(delivered.records, 39_997);
    let raw: Vec<&[u8]> = delivered.failed.iter().map(|f| &f.raw_data[..]).collect();
    assert_eq!(raw, vec![&b"not-a-number|x\n"[..], b"30000\n", b"big|y\n"]);
    assert!(
        delivered.failed[0].error_message.contains("line 25001"),
        "{:?}",
        delivered.failed
    );
    assert_eq!(
        pg.psql(DB, "SELECT count(*), count(DISTINCT id) FROM events"),
        "39997|39997"
    );
    assert_eq!(
        sink.committed_end("orders", "inc-1", DESTINATION)
            .await
            .unwrap(),
        Some(40_001)
    );
    // One bad row too many: nothing of the next large batch commits.
    let mut over = lines.clone();
    over[5] = "x|y\n".into();
    let records: Vec<&str> = over.iter().map(String::as_str).collect();
    let error = deliver_err(&sink, &batch(40_001, &records)).await;
    assert_eq!(code(&error), "Redshift.DataLoadFailed", "{error}");
    assert_eq!(pg.psql(DB, "SELECT count(*) FROM events"), "39997");
}
