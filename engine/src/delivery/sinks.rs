//! The non-S3 sinks and transforms of the sinks crate, built from the API's configuration shapes
//! and the daemon's configuration. (Being wired: the sinks land on their branches.)

use std::sync::Arc;

use hydrant_sinks::{ObjectSink, Sink};
use serde_json::Value;

use super::worker::Transform;
use crate::api::destination::Destination;
use crate::api::others::{HttpEndpointConfig, OpenSearchConfig, RedshiftConfig};
use crate::config::Config;

pub(super) fn redshift(
    _c: &RedshiftConfig,
    _intermediate: ObjectSink,
) -> Result<Arc<dyn Sink>, String> {
    Err("the Redshift destination is not wired yet".into())
}

pub(super) fn opensearch(
    _config: &Config,
    _c: &OpenSearchConfig,
    _legacy: bool,
) -> Result<Arc<dyn Sink>, String> {
    Err("the OpenSearch destination is not wired yet".into())
}

pub(super) fn http_endpoint(
    _config: &Config,
    _c: &HttpEndpointConfig,
    _arn: &str,
) -> Result<Arc<dyn Sink>, String> {
    Err("the HTTP endpoint destination is not wired yet".into())
}

pub(super) fn transform(
    _config: &Config,
    _p: &Value,
    _arn: &str,
) -> Result<Option<Arc<dyn Transform>>, String> {
    Ok(None)
}

/// The sinks crate's create-time rules for a destination.
///
/// # Errors
/// The rule broken, for InvalidArgumentException.
pub fn validate_destination(_d: &Destination) -> Result<(), String> {
    Ok(())
}
