//! The receiver's own tests: raw HTTP/1.1 over a socket, so they check exactly the bytes a
//! client sees.

#![allow(clippy::unwrap_used)]

use std::io::Write as _;
use std::net::TcpStream;

use super::*;

/// One HTTP/1.1 request over a fresh connection: (status, body as JSON).
fn send(
    receiver: &BulkReceiver,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Value) {
    let mut stream = TcpStream::connect(receiver.addr()).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
        receiver.addr(),
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let text = String::from_utf8(response).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head[9..12].parse().unwrap();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn bulk(receiver: &BulkReceiver, body: &str) -> (u16, Value) {
    send(
        receiver,
        "POST",
        "/_bulk",
        &[("Content-Type", "application/x-ndjson")],
        body.as_bytes(),
    )
}

#[test]
fn indexes_and_overwrites_by_id() {
    let receiver = BulkReceiver::start().unwrap();
    let body = "{\"index\":{\"_index\":\"i\",\"_id\":\"1\"}}\n{\"a\":1}\n\
                {\"create\":{\"_index\":\"i\"}}\n{\"b\":2}\n";
    let (status, answer) = bulk(&receiver, body);
    assert_eq!(status, 200);
    assert_eq!(answer["errors"], false);
    let first = &answer["items"][0]["index"];
    assert_eq!(first["result"], "created");
    assert_eq!(first["status"], 201);
    assert_eq!(first["_version"], 1);
    let generated = answer["items"][1]["create"]["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(generated.len(), 20);

    let (_, again) = bulk(&receiver, body);
    assert_eq!(again["items"][0]["index"]["result"], "updated");
    assert_eq!(again["items"][0]["index"]["_version"], 2);
    assert_eq!(again["items"][0]["index"]["status"], 200);
    assert_eq!(receiver.documents().len(), 3);
    assert_eq!(
        receiver.stored()[&("i".to_owned(), "1".to_owned())].version,
        2
    );

    // create of an existing id is a per-item conflict.
    let (status, conflict) = bulk(
        &receiver,
        "{\"create\":{\"_index\":\"i\",\"_id\":\"1\"}}\n{\"a\":3}\n",
    );
    assert_eq!(status, 200);
    assert_eq!(conflict["errors"], true);
    assert_eq!(conflict["items"][0]["create"]["status"], 409);
    assert_eq!(
        conflict["items"][0]["create"]["error"]["type"],
        "version_conflict_engine_exception"
    );
    // The path's index is the default.
    let (status, _) = send(
        &receiver,
        "POST",
        "/other/_bulk?refresh=false",
        &[("Content-Type", "application/json; charset=UTF-8")],
        b"{\"index\":{\"_id\":\"x\"}}\n{\"c\":1}\n",
    );
    assert_eq!(status, 200);
    assert!(receiver
        .documents()
        .contains_key(&("other".to_owned(), "x".to_owned())));
    assert_eq!(receiver.request_count(), 4);
}

#[test]
fn items_keep_the_clusters_field_order() {
    let receiver = BulkReceiver::start().unwrap();
    let mut stream = TcpStream::connect(receiver.addr()).unwrap();
    let body = "{\"index\":{\"_index\":\"i\",\"_id\":\"1\"}}\n{}\n";
    write!(
        stream,
        "POST /_bulk HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
         Content-Type: application/x-ndjson\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let json = text.split_once("\r\n\r\n").unwrap().1;
    let items = &json[json.find("\"items\"").unwrap()..];
    assert!(
        items.starts_with(
            "\"items\":[{\"index\":{\"_index\":\"i\",\"_id\":\"1\",\"_version\":1,\
             \"result\":\"created\",\"_shards\":"
        ),
        "{items}"
    );
    assert!(json.starts_with("{\"took\":"), "{json}");
}

#[test]
fn malformed_requests_are_refused_whole() {
    let receiver = BulkReceiver::start().unwrap();
    let cases: [(&str, &str); 7] = [
        (
            "{\"index\":{\"_index\":\"i\"}}\n{}",
            "illegal_argument_exception",
        ),
        ("{\"index\":{\"_index\":\"i\"}\n{}\n", "parse_exception"),
        (
            "{\"upsert\":{\"_index\":\"i\"}}\n{}\n",
            "illegal_argument_exception",
        ),
        (
            "{\"index\":{\"_index\":\"i\",\"_x\":1}}\n{}\n",
            "illegal_argument_exception",
        ),
        (
            "{\"index\":{\"_index\":\"i\",\"_type\":\"t\"}}\n{}\n",
            "illegal_argument_exception",
        ),
        (
            "{\"index\":{}}\n{}\n",
            "action_request_validation_exception",
        ),
        ("{\"index\":{\"_index\":\"i\"}}\n", "parse_exception"),
    ];
    for (body, error_type) in cases {
        let (status, answer) = bulk(&receiver, body);
        assert_eq!(status, 400, "{body:?}");
        assert_eq!(answer["status"], 400);
        assert_eq!(answer["error"]["type"], error_type, "{body:?}: {answer}");
        assert_eq!(answer["error"]["root_cause"][0]["type"], error_type);
    }
    let (status, answer) = bulk(&receiver, "");
    assert_eq!(status, 400);
    assert_eq!(
        answer["error"]["type"],
        "action_request_validation_exception"
    );
    let (status, answer) = send(
        &receiver,
        "POST",
        "/_bulk",
        &[("Content-Type", "text/plain")],
        b"{}\n",
    );
    assert_eq!(status, 406);
    assert_eq!(
        answer["error"],
        "Content-Type header [text/plain] is not supported"
    );
    let (status, _) = send(&receiver, "POST", "/_bulk", &[], b"{}\n");
    assert_eq!(status, 406);
    assert!(receiver.documents().is_empty());
    // A source that is not an object fails its item only.
    let (status, answer) = bulk(
        &receiver,
        "{\"index\":{\"_index\":\"i\"}}\nnot json\n{\"index\":{\"_index\":\"i\"}}\n{\"ok\":1}\n",
    );
    assert_eq!(status, 200);
    assert_eq!(answer["errors"], true);
    assert_eq!(answer["items"][0]["index"]["status"], 400);
    assert_eq!(
        answer["items"][0]["index"]["error"]["type"],
        "mapper_parsing_exception"
    );
    assert_eq!(answer["items"][1]["index"]["status"], 201);
}

#[test]
fn gzip_bodies_and_elasticsearch_types() {
    let receiver = BulkReceiver::builder()
        .flavor(BulkFlavor::Elasticsearch7)
        .start()
        .unwrap();
    let body = b"{\"index\":{\"_index\":\"i\",\"_type\":\"t\",\"_id\":\"1\"}}\n{\"z\":1}\n";
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(body).unwrap();
    let gz = encoder.finish().unwrap();
    let (status, answer) = send(
        &receiver,
        "POST",
        "/_bulk",
        &[
            ("Content-Type", "application/x-ndjson"),
            ("Content-Encoding", "gzip"),
        ],
        &gz,
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["items"][0]["index"]["_type"], "t");
    assert_eq!(receiver.requests()[0].body, body);
    let stored = receiver.stored();
    assert_eq!(
        stored[&("i".to_owned(), "1".to_owned())]
            .type_name
            .as_deref(),
        Some("t")
    );
}

#[test]
fn basic_auth_and_injected_failures() {
    let receiver = BulkReceiver::builder()
        .basic_auth("u", "p")
        .start()
        .unwrap();
    let body = "{\"index\":{\"_index\":\"i\",\"_id\":\"1\"}}\n{}\n";
    let (status, answer) = bulk(&receiver, body);
    assert_eq!(status, 401);
    assert_eq!(answer["error"]["type"], "security_exception");
    let auth = ("Authorization", "Basic dTpw"); // u:p
    let ct = ("Content-Type", "application/x-ndjson");
    receiver.fail_next_requests(1, 429);
    let (status, answer) = send(&receiver, "POST", "/_bulk", &[ct, auth], body.as_bytes());
    assert_eq!(status, 429);
    assert_eq!(answer["error"]["type"], "rejected_execution_exception");
    assert!(receiver.documents().is_empty());
    receiver.fail_items(ItemFailure::throttled(ItemMatcher::All, 1));
    let (_, answer) = send(&receiver, "POST", "/_bulk", &[ct, auth], body.as_bytes());
    assert_eq!(answer["items"][0]["index"]["status"], 429);
    let (_, answer) = send(&receiver, "POST", "/_bulk", &[ct, auth], body.as_bytes());
    assert_eq!(
        answer["items"][0]["index"]["status"], 201,
        "one failure per document"
    );
    let statuses: Vec<u16> = receiver.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [401, 429, 200, 200]);
    assert_eq!(
        receiver.requests()[1].header("authorization"),
        Some("Basic dTpw")
    );
}
