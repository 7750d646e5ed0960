//! `[kinesis]`: the Kinesis Data Streams service that `KinesisStreamAsSource` streams read from,
//! and how fast they poll it.
//!
//! ```toml
//! [kinesis]
//! endpoint = "http://127.0.0.1:4567"   # HYDRANT_KINESIS_ENDPOINT; absent: AWS's regional endpoint
//! region = "us-east-1"                 # HYDRANT_KINESIS_REGION; absent: the stream ARN's region
//! access_key_id = "K"                  # HYDRANT_KINESIS_ACCESS_KEY_ID; both absent: AWS_ACCESS_KEY_ID,
//! secret_access_key = "S"              # HYDRANT_KINESIS_SECRET_ACCESS_KEY  AWS_SECRET_ACCESS_KEY, ...
//! poll_interval_ms = 1000              # per shard, between GetRecords that found nothing (>= 200:
//!                                      # Kinesis allows 5 reads per second per shard)
//! discovery_interval_ms = 1000         # ListShards: new shards (splits, merges) found within this
//! call_timeout_ms = 5000               # every Kinesis call; then retried
//! ```

use serde::{Deserialize, Serialize};

/// Kinesis allows 5 GetRecords per second per shard: at least this long between two.
pub const READ_INTERVAL_MIN_MS: u64 = 200;

/// `[kinesis]` (see the module docs).
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KinesisSection {
    /// Endpoint URL; `None`: AWS's endpoint for the region.
    pub endpoint: Option<String>,
    /// Signing region; `None`: the region in the stream's ARN.
    pub region: Option<String>,
    /// Static access key id (with `secret_access_key`); absent: the `AWS_*` environment.
    pub access_key_id: Option<String>,
    /// Static secret.
    pub secret_access_key: Option<String>,
    /// Session token for temporary static credentials.
    pub session_token: Option<String>,
    /// Per shard, the wait after a GetRecords that returned nothing, ms.
    pub poll_interval_ms: u64,
    /// Between two ListShards, ms.
    pub discovery_interval_ms: u64,
    /// Timeout of every Kinesis call, ms (then retried: kinesalite never answers some calls).
    pub call_timeout_ms: u64,
}

impl Default for KinesisSection {
    fn default() -> Self {
        KinesisSection {
            endpoint: None,
            region: None,
            access_key_id: None,
            secret_access_key: None,
            session_token: None,
            poll_interval_ms: 1000,
            discovery_interval_ms: 1000,
            call_timeout_ms: 5000,
        }
    }
}

impl std::fmt::Debug for KinesisSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KinesisSection")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "<redacted>"),
            )
            .field("poll_interval_ms", &self.poll_interval_ms)
            .field("discovery_interval_ms", &self.discovery_interval_ms)
            .field("call_timeout_ms", &self.call_timeout_ms)
            .finish_non_exhaustive()
    }
}

impl KinesisSection {
    /// Applies `HYDRANT_KINESIS_ENDPOINT`, `_REGION`, `_ACCESS_KEY_ID`, `_SECRET_ACCESS_KEY`
    /// and `_POLL_INTERVAL_MS` over the file's values (an empty endpoint removes it).
    pub fn apply_env(&mut self) {
        self.apply_lookup(|name| std::env::var(name).ok());
    }

    fn apply_lookup(&mut self, get: impl Fn(&str) -> Option<String>) {
        if let Some(v) = get("HYDRANT_KINESIS_ENDPOINT") {
            self.endpoint = (!v.is_empty()).then_some(v);
        }
        if let Some(v) = get("HYDRANT_KINESIS_REGION") {
            self.region = (!v.is_empty()).then_some(v);
        }
        if let Some(v) = get("HYDRANT_KINESIS_ACCESS_KEY_ID") {
            self.access_key_id = Some(v);
        }
        if let Some(v) = get("HYDRANT_KINESIS_SECRET_ACCESS_KEY") {
            self.secret_access_key = Some(v);
        }
        if let Some(v) = get("HYDRANT_KINESIS_POLL_INTERVAL_MS").and_then(|v| v.parse().ok()) {
            self.poll_interval_ms = v;
        }
    }

    /// Checks ranges and combinations.
    ///
    /// # Errors
    /// A message naming the setting at fault.
    pub fn validate(&self) -> Result<(), String> {
        if self.access_key_id.is_some() != self.secret_access_key.is_some() {
            return Err("kinesis.access_key_id and kinesis.secret_access_key go together".into());
        }
        if self.poll_interval_ms < READ_INTERVAL_MIN_MS {
            return Err(format!(
                "kinesis.poll_interval_ms must be at least {READ_INTERVAL_MIN_MS} (Kinesis allows \
                 5 GetRecords per second per shard), not {}",
                self.poll_interval_ms
            ));
        }
        if self.discovery_interval_ms == 0 || self.call_timeout_ms == 0 {
            return Err(
                "kinesis.discovery_interval_ms and kinesis.call_timeout_ms must be at least 1"
                    .into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_the_file_and_limits_are_checked() {
        let mut k: KinesisSection =
            toml::from_str("endpoint = \"http://a\"\nregion = \"eu-west-1\"\n").unwrap_or_default();
        assert_eq!(k.endpoint.as_deref(), Some("http://a"));
        k.apply_lookup(|n| match n {
            "HYDRANT_KINESIS_ENDPOINT" => Some("http://127.0.0.1:1".into()),
            "HYDRANT_KINESIS_ACCESS_KEY_ID" => Some("K".into()),
            _ => None,
        });
        assert_eq!(k.endpoint.as_deref(), Some("http://127.0.0.1:1"));
        assert_eq!(k.region.as_deref(), Some("eu-west-1"));
        assert!(k.validate().is_err_and(|e| e.contains("secret_access_key")));
        k.secret_access_key = Some("S".into());
        assert!(k.validate().is_ok());
        k.poll_interval_ms = 100;
        assert!(k.validate().is_err_and(|e| e.contains("poll_interval_ms")));
    }
}
