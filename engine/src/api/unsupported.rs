//! The members of the served destination shapes that hydrant does not apply, refused at create
//! and update with InvalidArgumentException naming them, so that nothing is accepted and then
//! ignored.
//!
//! Every member of `ExtendedS3DestinationConfiguration`, `RedshiftDestinationConfiguration`,
//! `AmazonopensearchserviceDestinationConfiguration`, `ElasticsearchDestinationConfiguration`,
//! `HttpEndpointDestinationConfiguration` and their updates is either applied by delivery or
//! refused here; `tests/python/test_members.py` walks botocore's model and holds both lists.
//!
//! Refused (until each lands):
//! - `DynamicPartitioningConfiguration` with `Enabled` not `false` (dynamic partitioning);
//! - `DataFormatConversionConfiguration` with `Enabled` not `false` (record format conversion);
//! - `VpcConfiguration` (hydrant connects to the endpoint as given, it has no VPC to enter);
//! - `SecretsManagerConfiguration` with `Enabled` not `false` (in [`super::others`]).
//!
//! A member given with `Enabled: false` is inert in Firehose too, so it is accepted.

use serde_json::Value;

use super::destination::Destination;
use super::errors::ApiError;
use super::model::ExtendedS3Config;

/// The refusal for a member hydrant does not apply.
#[must_use]
pub fn unsupported(member: &str, what: &str) -> ApiError {
    ApiError::invalid(format!(
        "{member} is not supported by hydrant ({what}); remove it or set Enabled to false"
    ))
}

/// A structure with an `Enabled` member that is on: present, and `Enabled` not `false`
/// (Firehose treats a missing `Enabled` in these structures as on).
fn enabled(v: Option<&Value>) -> bool {
    v.is_some_and(|v| v.get("Enabled").and_then(Value::as_bool) != Some(false))
}

/// The ExtendedS3 members hydrant does not apply.
///
/// # Errors
/// InvalidArgumentException naming the first such member given.
pub fn refuse_s3(c: &ExtendedS3Config) -> Result<(), ApiError> {
    if enabled(c.dynamic_partitioning_configuration.as_ref()) {
        return Err(unsupported(
            "DynamicPartitioningConfiguration",
            "dynamic partitioning",
        ));
    }
    if enabled(c.data_format_conversion_configuration.as_ref()) {
        return Err(unsupported(
            "DataFormatConversionConfiguration",
            "record format conversion",
        ));
    }
    Ok(())
}

/// The members of any served destination that hydrant does not apply.
///
/// # Errors
/// InvalidArgumentException naming the first such member given.
pub fn refuse(d: &Destination) -> Result<(), ApiError> {
    match d {
        Destination::ExtendedS3(c) => refuse_s3(c),
        Destination::OpenSearch(c) | Destination::Elasticsearch(c) => {
            if c.vpc_configuration.is_some() {
                return Err(ApiError::invalid(
                    "VpcConfiguration is not supported by hydrant (it connects to DomainARN's \
                     mapped URL or ClusterEndpoint as given); remove it",
                ));
            }
            Ok(())
        }
        Destination::Redshift(_) | Destination::HttpEndpoint(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn enabled_structures_are_refused_and_disabled_ones_accepted() {
        for (member, field) in [
            ("DynamicPartitioningConfiguration", 0),
            ("DataFormatConversionConfiguration", 1),
        ] {
            for (value, refused) in [
                (json!({"Enabled": true}), true),
                (json!({}), true),
                (json!({"Enabled": false}), false),
            ] {
                let mut c = ExtendedS3Config::default();
                if field == 0 {
                    c.dynamic_partitioning_configuration = Some(value.clone());
                } else {
                    c.data_format_conversion_configuration = Some(value.clone());
                }
                match refuse_s3(&c) {
                    Err(e) => {
                        assert!(refused, "{member} {value}");
                        assert!(e.message.contains(member), "{}", e.message);
                        assert!(e.message.contains("not supported by hydrant"));
                    }
                    Ok(()) => assert!(!refused, "{member} {value}"),
                }
            }
        }
    }
}
