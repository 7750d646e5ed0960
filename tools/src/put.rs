//! `hydrant put STREAM FILE`: sends a file's lines as records, in PutRecordBatch requests of at
//! most 500 records and 4 MiB (Firehose's limits), with a progress bar.
//!
//! Each line is one record *with* its newline: Firehose concatenates records without a
//! delimiter, so producers send newline-terminated records and the delivered objects are JSON
//! lines again. A last line without a newline is sent as it is.
//!
//! Failures are retried with exponential backoff and jitter: a whole request when it got no
//! answer or ServiceUnavailableException (HTTP 5xx); only the failed records of a partly
//! failed batch (as the Kinesis Agent does), never the acknowledged ones. Any other error
//! (ResourceNotFoundException, a bad signature) stops the command. Batches are sent in file
//! order, `--concurrency` at a time; with 1 (the default) the stream receives the lines in order.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use hydrant_api::decode::{BATCH_BYTES_MAX, BATCH_RECORDS_MAX, RECORD_BYTES_MAX};
use hydrant_api::model::{PutRecordBatchInput, PutRecordBatchOutput, RecordInput};
use serde::Serialize;
use tokio::task::JoinSet;

use crate::firehose::{ClientError, FirehoseClient, Signer, DEFAULT_ENDPOINT};
use crate::progress;

/// Everything `hydrant put` can fail with.
#[derive(Debug, thiserror::Error)]
pub enum PutError {
    /// The input file could not be opened or read.
    #[error("{op} {}: {source}", path.display())]
    Input {
        /// The operation.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A line is larger than a Firehose record may be.
    #[error("line {line} has {len} bytes; a record holds at most {RECORD_BYTES_MAX}")]
    RecordTooLarge {
        /// 1-based line number.
        line: u64,
        /// Its length, newline included.
        len: usize,
    },
    /// The service refused a request in a way a retry cannot fix, or retries ran out for a whole
    /// request.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Some records were still failing after the last attempt.
    #[error("{failed} records were not accepted after {attempts} attempts (see the summary)")]
    RecordsFailed {
        /// Records given up on.
        failed: u64,
        /// Attempts each.
        attempts: u32,
    },
    /// An argument is outside what the command accepts.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Writing the summary failed.
    #[error("writing output: {0}")]
    Output(#[from] io::Error),
    /// Encoding the summary failed.
    #[error("encoding JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Arguments of `hydrant put`.
#[derive(Debug, Clone, clap::Args)]
pub struct PutArgs {
    /// The delivery stream.
    pub stream: String,
    /// The file whose lines to send (`-`: standard input).
    pub file: PathBuf,
    /// The Firehose endpoint (hydrantd's address).
    #[arg(long, value_name = "URL", default_value = DEFAULT_ENDPOINT)]
    pub endpoint: String,
    /// SigV4: access key id (sign requests when given).
    #[arg(
        long,
        value_name = "ID",
        env = "AWS_ACCESS_KEY_ID",
        requires = "secret_key"
    )]
    pub access_key: Option<String>,
    /// SigV4: secret access key.
    #[arg(
        long,
        value_name = "KEY",
        env = "AWS_SECRET_ACCESS_KEY",
        hide_env_values = true,
        requires = "access_key"
    )]
    pub secret_key: Option<String>,
    /// SigV4: region in the credential scope.
    #[arg(long, value_name = "REGION", default_value = "us-east-1")]
    pub region: String,
    /// Requests in flight at once (1 keeps the lines in order in the stream).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub concurrency: usize,
    /// Attempts per record before giving up on it.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub max_attempts: u32,
    /// Print the totals as one JSON document.
    #[arg(long)]
    pub json: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Totals of one `hydrant put`.
#[derive(Debug, Default, Clone, Serialize)]
pub struct PutSummary {
    /// The endpoint.
    pub endpoint: String,
    /// The stream.
    pub stream: String,
    /// Records acknowledged.
    pub records: u64,
    /// Bytes of acknowledged records.
    pub bytes: u64,
    /// Batches cut from the input.
    pub batches: u64,
    /// PutRecordBatch requests sent (retries included).
    pub requests: u64,
    /// Record sends that had to be repeated.
    pub retried_records: u64,
    /// Records given up on.
    pub failed_records: u64,
    /// Seconds taken.
    pub seconds: f64,
}

/// How batches are sent.
#[derive(Debug, Clone)]
pub struct SendOptions {
    /// Batches in flight.
    pub concurrency: usize,
    /// Attempts per record.
    pub max_attempts: u32,
}

/// Cuts records into batches within Firehose's limits.
#[derive(Debug, Default)]
pub struct Batcher {
    records: Vec<Vec<u8>>,
    bytes: usize,
}

impl Batcher {
    /// Adds a record; returns the full batch it closed, if it closed one.
    pub fn push(&mut self, record: Vec<u8>) -> Option<Vec<Vec<u8>>> {
        let closed = if !self.records.is_empty()
            && (self.records.len() == BATCH_RECORDS_MAX
                || self.bytes + record.len() > BATCH_BYTES_MAX)
        {
            self.bytes = 0;
            Some(std::mem::take(&mut self.records))
        } else {
            None
        };
        self.bytes += record.len();
        self.records.push(record);
        closed
    }

    /// The last, partial batch.
    pub fn finish(&mut self) -> Option<Vec<Vec<u8>>> {
        self.bytes = 0;
        (!self.records.is_empty()).then(|| std::mem::take(&mut self.records))
    }
}

/// The outcome of one batch.
#[derive(Debug, Default, Clone, Copy)]
struct BatchOutcome {
    acked: u64,
    acked_bytes: u64,
    requests: u64,
    retried: u64,
    failed: u64,
}

/// Delay before attempt `attempt + 1`: 100 ms doubling to at most 5 s, with jitter (half to all
/// of it) so that many producers retrying together spread out.
fn backoff(attempt: u32) -> Duration {
    let base = 100u64.saturating_mul(1 << attempt.min(6)).min(5_000);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos()));
    Duration::from_millis(base / 2 + nanos % (base / 2 + 1))
}

/// Sends one batch, retrying as the module docs say.
async fn send_batch(
    client: &FirehoseClient,
    stream: &str,
    records: Vec<Vec<u8>>,
    max_attempts: u32,
) -> Result<BatchOutcome, PutError> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let encoded: Vec<String> = records.iter().map(|r| b64.encode(r)).collect();
    let mut pending: Vec<usize> = (0..records.len()).collect();
    let mut outcome = BatchOutcome::default();
    let mut attempt = 0;
    loop {
        attempt += 1;
        outcome.requests += 1;
        let input = PutRecordBatchInput {
            delivery_stream_name: Some(stream.to_string()),
            records: Some(
                pending
                    .iter()
                    .map(|&i| RecordInput {
                        data: Some(encoded[i].clone()),
                    })
                    .collect(),
            ),
        };
        let result: Result<PutRecordBatchOutput, ClientError> =
            client.call("PutRecordBatch", &input).await;
        match result {
            Ok(output) => {
                if output.request_responses.len() != pending.len() {
                    return Err(ClientError::Decode {
                        operation: "PutRecordBatch".into(),
                        message: format!(
                            "{} responses for {} records",
                            output.request_responses.len(),
                            pending.len()
                        ),
                    }
                    .into());
                }
                let mut still = Vec::new();
                for (entry, &i) in output.request_responses.iter().zip(&pending) {
                    if entry.error_code.is_some() {
                        still.push(i);
                    } else {
                        outcome.acked += 1;
                        outcome.acked_bytes += records[i].len() as u64;
                    }
                }
                pending = still;
            }
            Err(e) if e.is_retryable() => {
                if attempt >= max_attempts {
                    return Err(e.into());
                }
            }
            Err(e) => return Err(e.into()),
        }
        if pending.is_empty() {
            return Ok(outcome);
        }
        if attempt >= max_attempts {
            outcome.failed = pending.len() as u64;
            return Ok(outcome);
        }
        outcome.retried += pending.len() as u64;
        tokio::time::sleep(backoff(attempt)).await;
    }
}

/// Reads lines of `input` and sends them; `on_progress` sees acknowledged records and bytes.
///
/// # Errors
/// A [`PutError`]; what was acknowledged before it stays acknowledged.
pub async fn put_lines(
    client: &FirehoseClient,
    stream: &str,
    input: &mut dyn BufRead,
    input_name: &Path,
    options: &SendOptions,
    on_progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<PutSummary, PutError> {
    let started = Instant::now();
    let mut summary = PutSummary {
        endpoint: client.endpoint().to_string(),
        stream: stream.to_string(),
        ..PutSummary::default()
    };
    let mut batcher = Batcher::default();
    let mut in_flight: JoinSet<Result<BatchOutcome, PutError>> = JoinSet::new();
    let mut line_no = 0u64;
    let fold = |summary: &mut PutSummary, o: BatchOutcome| {
        summary.records += o.acked;
        summary.bytes += o.acked_bytes;
        summary.requests += o.requests;
        summary.retried_records += o.retried;
        summary.failed_records += o.failed;
        on_progress(o.acked, o.acked_bytes);
    };
    let stream_name: Arc<str> = Arc::from(stream);
    let mut done = false;
    while !done {
        let mut line = Vec::new();
        let n = input
            .read_until(b'\n', &mut line)
            .map_err(|source| PutError::Input {
                op: "read",
                path: input_name.to_path_buf(),
                source,
            })?;
        let batch = if n == 0 {
            done = true;
            batcher.finish()
        } else {
            line_no += 1;
            if line.len() > RECORD_BYTES_MAX {
                return Err(PutError::RecordTooLarge {
                    line: line_no,
                    len: line.len(),
                });
            }
            batcher.push(line)
        };
        let Some(batch) = batch else { continue };
        summary.batches += 1;
        while in_flight.len() >= options.concurrency {
            if let Some(joined) = in_flight.join_next().await {
                fold(&mut summary, flatten(joined)?);
            }
        }
        let client = client.clone();
        let stream = stream_name.clone();
        let attempts = options.max_attempts;
        in_flight.spawn(async move { send_batch(&client, &stream, batch, attempts).await });
    }
    while let Some(joined) = in_flight.join_next().await {
        fold(&mut summary, flatten(joined)?);
    }
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

fn flatten(
    joined: Result<Result<BatchOutcome, PutError>, tokio::task::JoinError>,
) -> Result<BatchOutcome, PutError> {
    joined.map_err(|e| PutError::InvalidArgument(format!("a send task failed: {e}")))?
}

/// Runs `hydrant put` and prints its totals.
///
/// # Errors
/// A [`PutError`].
pub fn run(args: &PutArgs, out: &mut dyn Write) -> Result<(), PutError> {
    if !(1..=1024).contains(&args.concurrency) {
        return Err(PutError::InvalidArgument(
            "--concurrency must be in 1..=1024".into(),
        ));
    }
    if args.max_attempts == 0 {
        return Err(PutError::InvalidArgument(
            "--max-attempts must be at least 1".into(),
        ));
    }
    let signer = match (&args.access_key, &args.secret_key) {
        (Some(a), Some(s)) => Some(Signer {
            access_key: a.clone(),
            secret_key: s.clone(),
            region: args.region.clone(),
        }),
        _ => None,
    };
    let (mut input, total): (Box<dyn BufRead>, Option<u64>) = if args.file.as_os_str() == "-" {
        (
            Box::new(BufReader::new(io::stdin())) as Box<dyn BufRead>,
            None,
        )
    } else {
        let file = File::open(&args.file).map_err(|source| PutError::Input {
            op: "open",
            path: args.file.clone(),
            source,
        })?;
        let len = file.metadata().ok().map(|m| m.len());
        (
            Box::new(BufReader::with_capacity(1 << 20, file)) as Box<dyn BufRead>,
            len,
        )
    };
    let bar = progress::bytes_bar(total, args.quiet);
    let records_seen = std::sync::atomic::AtomicU64::new(0);
    let on_progress = |records: u64, bytes: u64| {
        let r = records_seen.fetch_add(records, std::sync::atomic::Ordering::Relaxed) + records;
        bar.inc(bytes);
        bar.set_message(format!("{r} records"));
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|source| PutError::Input {
            op: "start the async runtime for",
            path: args.file.clone(),
            source,
        })?;
    let options = SendOptions {
        concurrency: args.concurrency,
        max_attempts: args.max_attempts,
    };
    let summary = runtime.block_on(async {
        let client = FirehoseClient::new(&args.endpoint, signer, args.concurrency)?;
        put_lines(
            &client,
            &args.stream,
            &mut *input,
            &args.file,
            &options,
            &on_progress,
        )
        .await
    })?;
    bar.finish_and_clear();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&summary)?)?;
    } else {
        let secs = summary.seconds.max(1e-9);
        writeln!(
            out,
            "sent {} records ({} bytes) to stream {} at {} in {} batches, {} requests, {:.2} s \
             ({:.0} records/s, {:.1} MB/s); {} record sends retried, {} records failed",
            summary.records,
            summary.bytes,
            summary.stream,
            summary.endpoint,
            summary.batches,
            summary.requests,
            summary.seconds,
            summary.records as f64 / secs,
            summary.bytes as f64 / secs / 1e6,
            summary.retried_records,
            summary.failed_records
        )?;
    }
    out.flush()?;
    if summary.failed_records > 0 {
        return Err(PutError::RecordsFailed {
            failed: summary.failed_records,
            attempts: args.max_attempts,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_hold_at_most_500_records_and_4_mib() {
        // (records pushed, bytes each, records per batch cut)
        let cases = [
            (1001, 10, vec![500, 500, 1]),
            (10, 1_000_000, vec![4, 4, 2]),
        ];
        for (records, bytes, want) in cases {
            let mut b = Batcher::default();
            let mut batches = Vec::new();
            for _ in 0..records {
                batches.extend(b.push(vec![b'x'; bytes]));
            }
            batches.extend(b.finish());
            let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
            assert_eq!(sizes, want, "{records} records of {bytes} bytes");
            for batch in &batches {
                assert!(batch.iter().map(Vec::len).sum::<usize>() <= BATCH_BYTES_MAX);
            }
        }
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        for attempt in 0..20 {
            let d = backoff(attempt);
            assert!(d <= Duration::from_secs(5), "{d:?}");
            assert!(d >= Duration::from_millis(50), "{d:?}");
        }
    }
}
