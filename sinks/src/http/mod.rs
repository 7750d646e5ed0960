//! The HTTP endpoint destination (`HttpEndpointDestinationConfiguration`): batches POSTed to a URL
//! in Firehose's HTTP endpoint delivery format, version 1.0.
//!
//! # The request
//!
//! ```text
//! POST <Url, path and query as configured>
//! X-Amz-Firehose-Protocol-Version: 1.0
//! X-Amz-Firehose-Request-Id: <request id>
//! X-Amz-Firehose-Source-Arn: <the stream's ARN>
//! X-Amz-Firehose-Access-Key: <AccessKey>                      (only when configured)
//! X-Amz-Firehose-Common-Attributes: {"commonAttributes":{..}}  (only when there are some)
//! Content-Type: application/json
//! Content-Encoding: gzip                                      (only with ContentEncoding GZIP)
//!
//! {"requestId":"<request id>","timestamp":<ms>,"records":[{"data":"<base64>"},...]}
//! ```
//!
//! - **Request id**: [`BatchIdentity::request_id`](crate::BatchIdentity::request_id), a pure function of the batch identity, so
//!   every retry of a batch, in this process or after a crash, carries the same id: an endpoint
//!   can deduplicate on it. [`Sink::target`](crate::Sink::target) returns it.
//! - **`timestamp`**: the wall clock when the attempt is sent, as Firehose does (the id, not the
//!   timestamp, is what identifies a request). The records are the same on every attempt.
//! - **Records** are the batch's records in order, each one `data` field in standard padded
//!   base64, no delimiter added.
//!
//! # Requests per batch
//!
//! A request carries at most [`RECORDS_PER_REQUEST_MAX`] (10,000) records and a body of at most
//! [`REQUEST_BODY_BYTES_MAX`] (64 MiB, before compression). A batch over either limit goes out as
//! several requests, cut deterministically by [`plan_requests`]: part 0 carries the batch's
//! request id, part `k > 0` an id derived from the batch identity and `k`. The parts are sent in
//! order and the batch is delivered when every part got its 200. Within one process the sink
//! remembers how many parts of the batch in hand were accepted, so a retry starts at the part
//! that failed; after a crash every part is sent again under the same ids.
//!
//! # The response
//!
//! Only a `200` whose body is a JSON object with the request's `requestId` and a numeric
//! `timestamp` (with `Content-Type: application/json`, parameters such as `charset` allowed,
//! and no `Content-Encoding`) is a success. Redirects are not followed. Error codes:
//!
//! | what happened | code | retried |
//! |---|---|---|
//! | `413` | `HttpEndpoint.DestinationException` | no (see below) |
//! | any other status but 200 (2xx, 3xx, 4xx, 5xx) | `HttpEndpoint.DestinationException` | yes |
//! | a 200 that does not conform | `HttpEndpoint.InvalidResponseFromDestination` | yes |
//! | no complete response within the request timeout (3 min) | `HttpEndpoint.RequestTimeout` | yes |
//! | no connection (refused, DNS, TLS handshake) | `HttpEndpoint.ConnectionFailed` | yes |
//! | the connection broke after it was made | `HttpEndpoint.ConnectionReset` | yes |
//! | a response body over 1 MiB | `HttpEndpoint.ResponseTooLarge` | yes |
//!
//! The error message of a status failure is `Received the following response from the endpoint
//! destination. <status>: <errorMessage>` (the response's `errorMessage`, else its body, at most
//! 8,192 characters), and [`Sink::give_up`](crate::Sink::give_up) copies the last one into each failed record.
//!
//! **413 differs from Firehose on purpose.** Firehose drops a batch answered 413 without writing
//! it to the error bucket. hydrant never drops data silently: a 413 is final at once (not
//! retried), and `give_up` files the batch's records in the error output under
//! `http-endpoint-failed` like any other failure.
//!
//! # Other differences from Firehose
//!
//! - Firehose allows only `https://` URLs on port 443. hydrant allows any port, and plain
//!   `http://` to a loopback host (or anywhere with [`HttpEndpointConfig::allow_plain_http`]).
//! - The retry backoff (1 s doubling to 2 min, ±15 % jitter) and the retry duration are the
//!   engine's: `deliver` makes one attempt.
//! - No proxy from the environment is used: requests go straight to the endpoint.
//! - `X-Amz-Firehose-Common-Attributes` is sent as ASCII: characters beyond ASCII in names and
//!   values are written as JSON `\uXXXX` escapes (the same JSON value). The access key is sent
//!   verbatim, as UTF-8 bytes.
//!
//! # Files
//!
//! A batch flows through them in this order:
//!
//! - [`config`]: [`HttpEndpointConfig`] and its rules ([`HttpConfigError`]), checked at create
//!   and update time and again when the sink is built.
//! - [`request`]: [`plan_requests`] cuts the batch into requests with their ids; the body
//!   (base64 records in JSON) and the common-attributes header value.
//! - [`sink`]: [`HttpEndpointSink`] sends the planned requests in order (gzip off the async
//!   threads), remembers accepted parts for a retry, and files the rest on `give_up`.
//! - [`response`]: classifies each answer.
//! - [`failure`]: [`HttpFailure`], the ways a request fails, with their error [`codes`].

pub mod config;
pub mod failure;
pub mod request;
pub mod response;
pub mod sink;

pub use config::{
    ContentEncoding, HttpConfigError, HttpEndpointConfig, ACCESS_KEY_CHARS_MAX,
    ATTRIBUTE_NAME_CHARS_MAX, ATTRIBUTE_VALUE_CHARS_MAX, COMMON_ATTRIBUTES_MAX,
    DEFAULT_REQUEST_TIMEOUT, NAME_CHARS_MAX, URL_CHARS_MAX,
};
pub use failure::{codes, HttpFailure};
pub use request::{plan_requests, PlannedRequest, RECORDS_PER_REQUEST_MAX, REQUEST_BODY_BYTES_MAX};
pub use response::{ERROR_MESSAGE_CHARS_MAX, RESPONSE_BODY_BYTES_MAX};
pub use sink::{HttpEndpointSink, CONNECT_TIMEOUT};

#[cfg(test)]
mod testing {
    //! The configuration and batches the unit tests of this module's files share.

    #![allow(clippy::unwrap_used)]

    use bytes::Bytes;

    use super::HttpEndpointConfig;
    use crate::{Batch, BatchIdentity, Record};

    pub(super) fn config(url: &str) -> HttpEndpointConfig {
        HttpEndpointConfig::new(
            url,
            "arn:aws:firehose:us-east-1:123456789012:deliverystream/s",
        )
    }

    pub(super) fn batch(sizes: &[usize]) -> Batch {
        let shared = Bytes::from(vec![b'x'; sizes.iter().copied().max().unwrap_or(0)]);
        Batch {
            identity: BatchIdentity {
                stream: "s".into(),
                incarnation: "i".into(),
                destination_id: "destinationId-000000000001".into(),
                first_lsn: 1,
                last_lsn: sizes.len() as u64,
            },
            stream_version: 1,
            contiguous: None,
            partition_keys: Vec::new(),
            oldest_arrival_ms: 0,
            records: sizes
                .iter()
                .enumerate()
                .map(|(i, &n)| Record {
                    lsn: i as u64 + 1,
                    sub: 0,
                    arrival_ms: 0,
                    data: shared.slice(..n),
                })
                .collect(),
        }
    }
}
