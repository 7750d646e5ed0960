//! `[kafka]`: where the Kafka clusters of `MSKAsSource` streams are. A stream names its cluster
//! by `MSKClusterARN`; the ARN is looked up in `[kafka.clusters]`, and an ARN not listed there
//! uses the section's own settings (the default cluster). An ARN with neither makes the stream's
//! source failed, its `FailureDescription` naming the ARN.
//!
//! ```toml
//! [kafka]
//! bootstrap_servers = "127.0.0.1:9092"   # HYDRANT_KAFKA_BOOTSTRAP_SERVERS: the default cluster
//! discovery_interval_ms = 1000            # partitions added to a topic are read within this
//! [kafka.clusters."arn:aws:kafka:us-east-1:123456789012:cluster/orders/1a2b"]
//! bootstrap_servers = "b-1.orders:9096,b-2.orders:9096"
//! security_protocol = "SASL_SSL"          # librdkafka's security.protocol (PLAINTEXT, SSL,
//!                                         # SASL_PLAINTEXT, SASL_SSL); absent: PLAINTEXT
//! sasl_mechanism = "SCRAM-SHA-512"        # sasl.mechanism
//! sasl_username = "firehose"              # sasl.username
//! sasl_password = "secret"                # sasl.password
//! ssl_ca_location = "/etc/ssl/ca.pem"     # ssl.ca.location
//! ```
//!
//! The settings are passed to librdkafka as they are. hydrant's librdkafka is built without
//! OpenSSL (the crate's bundled sources, default features): `SSL`, `SASL_SSL` and SCRAM are
//! refused by the client when the source starts, and that refusal is the stream's
//! `FailureDescription`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One cluster's connection settings.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaCluster {
    /// `host:port,...`.
    pub bootstrap_servers: String,
    /// librdkafka's `security.protocol`.
    pub security_protocol: Option<String>,
    /// `sasl.mechanism`.
    pub sasl_mechanism: Option<String>,
    /// `sasl.username`.
    pub sasl_username: Option<String>,
    /// `sasl.password`.
    pub sasl_password: Option<String>,
    /// `ssl.ca.location`.
    pub ssl_ca_location: Option<String>,
}

impl std::fmt::Debug for KafkaCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaCluster")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("security_protocol", &self.security_protocol)
            .field("sasl_mechanism", &self.sasl_mechanism)
            .field("sasl_username", &self.sasl_username)
            .field(
                "sasl_password",
                &self.sasl_password.as_ref().map(|_| "<redacted>"),
            )
            .field("ssl_ca_location", &self.ssl_ca_location)
            .finish()
    }
}

impl KafkaCluster {
    /// librdkafka's settings for this cluster (`bootstrap.servers` and security).
    #[must_use]
    pub fn client_settings(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![("bootstrap.servers", self.bootstrap_servers.clone())];
        for (name, v) in [
            ("security.protocol", &self.security_protocol),
            ("sasl.mechanism", &self.sasl_mechanism),
            ("sasl.username", &self.sasl_username),
            ("sasl.password", &self.sasl_password),
            ("ssl.ca.location", &self.ssl_ca_location),
        ] {
            if let Some(v) = v {
                out.push((name, v.clone()));
            }
        }
        out
    }
}

/// `[kafka]` (see the module docs).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaSection {
    /// The default cluster's `host:port,...` (for any ARN not in `clusters`); empty: none.
    pub bootstrap_servers: String,
    /// The default cluster's `security.protocol`.
    pub security_protocol: Option<String>,
    /// The default cluster's `sasl.mechanism`.
    pub sasl_mechanism: Option<String>,
    /// The default cluster's `sasl.username`.
    pub sasl_username: Option<String>,
    /// The default cluster's `sasl.password`.
    pub sasl_password: Option<String>,
    /// The default cluster's `ssl.ca.location`.
    pub ssl_ca_location: Option<String>,
    /// Between two looks at the topic's partitions, ms.
    pub discovery_interval_ms: u64,
    /// `MSKClusterARN` -> its cluster.
    pub clusters: BTreeMap<String, KafkaCluster>,
}

impl Default for KafkaSection {
    fn default() -> Self {
        KafkaSection {
            bootstrap_servers: String::new(),
            security_protocol: None,
            sasl_mechanism: None,
            sasl_username: None,
            sasl_password: None,
            ssl_ca_location: None,
            discovery_interval_ms: 1000,
            clusters: BTreeMap::new(),
        }
    }
}

impl std::fmt::Debug for KafkaSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSection")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("security_protocol", &self.security_protocol)
            .field("sasl_mechanism", &self.sasl_mechanism)
            .field("sasl_username", &self.sasl_username)
            .field(
                "sasl_password",
                &self.sasl_password.as_ref().map(|_| "<redacted>"),
            )
            .field("ssl_ca_location", &self.ssl_ca_location)
            .field("discovery_interval_ms", &self.discovery_interval_ms)
            .field("clusters", &self.clusters)
            .finish()
    }
}

impl KafkaSection {
    /// The cluster of `arn`: its own entry, else the default cluster, else `None`.
    #[must_use]
    pub fn cluster(&self, arn: &str) -> Option<KafkaCluster> {
        if let Some(c) = self.clusters.get(arn) {
            return Some(c.clone());
        }
        (!self.bootstrap_servers.is_empty()).then(|| KafkaCluster {
            bootstrap_servers: self.bootstrap_servers.clone(),
            security_protocol: self.security_protocol.clone(),
            sasl_mechanism: self.sasl_mechanism.clone(),
            sasl_username: self.sasl_username.clone(),
            sasl_password: self.sasl_password.clone(),
            ssl_ca_location: self.ssl_ca_location.clone(),
        })
    }

    /// Applies `HYDRANT_KAFKA_BOOTSTRAP_SERVERS` over the file's default cluster.
    pub fn apply_env(&mut self) {
        self.apply_lookup(|name| std::env::var(name).ok());
    }

    fn apply_lookup(&mut self, get: impl Fn(&str) -> Option<String>) {
        if let Some(v) = get("HYDRANT_KAFKA_BOOTSTRAP_SERVERS") {
            self.bootstrap_servers = v;
        }
    }

    /// Checks ranges.
    ///
    /// # Errors
    /// A message naming the setting at fault.
    pub fn validate(&self) -> Result<(), String> {
        if self.discovery_interval_ms == 0 {
            return Err("kafka.discovery_interval_ms must be at least 1".into());
        }
        for (arn, c) in &self.clusters {
            if c.bootstrap_servers.trim().is_empty() {
                return Err(format!(
                    "kafka.clusters.\"{arn}\".bootstrap_servers is required"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clusters_by_arn_then_the_default_and_the_environment() {
        let mut k: KafkaSection = toml::from_str(
            "[clusters.\"arn:aws:kafka:us-east-1:123456789012:cluster/a/1\"]\n\
             bootstrap_servers = \"a:9092\"\nsasl_mechanism = \"PLAIN\"\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let a = k.cluster("arn:aws:kafka:us-east-1:123456789012:cluster/a/1");
        assert_eq!(
            a.as_ref().map(|c| c.bootstrap_servers.as_str()),
            Some("a:9092")
        );
        assert!(a
            .map(|c| c.client_settings())
            .unwrap_or_default()
            .contains(&("sasl.mechanism", "PLAIN".to_string())));
        assert_eq!(k.cluster("arn:other"), None);
        k.apply_lookup(|n| (n == "HYDRANT_KAFKA_BOOTSTRAP_SERVERS").then(|| "d:1".to_string()));
        assert_eq!(
            k.cluster("arn:other").map(|c| c.bootstrap_servers),
            Some("d:1".to_string())
        );
        assert!(k.validate().is_ok());
        k.clusters.insert("arn:x".into(), KafkaCluster::default());
        assert!(k.validate().is_err_and(|e| e.contains("arn:x")));
        assert!(format!(
            "{:?}",
            KafkaCluster {
                sasl_password: Some("hunter2".into()),
                ..KafkaCluster::default()
            }
        )
        .contains("<redacted>"));
    }
}
