//! The members of the served destination shapes that hydrant does not apply, refused at create
//! and update with InvalidArgumentException naming them, so that nothing is accepted and then
//! ignored.
//!
//! Every member of `ExtendedS3DestinationConfiguration`, `RedshiftDestinationConfiguration`,
//! `AmazonopensearchserviceDestinationConfiguration`, `ElasticsearchDestinationConfiguration`,
//! `HttpEndpointDestinationConfiguration` and their updates is either applied by delivery or
//! refused here; `tests/python/members.txt` holds both lists and `engine/tests/members.rs` walks
//! botocore's model through boto3 against them.
//!
//! Refused (until each lands):
//! - `VpcConfiguration` (hydrant connects to the endpoint as given, it has no VPC to enter);
//! - `S3BackupConfiguration.ErrorOutputPrefix` (a backup has no error output of its own);
//! - `SecretsManagerConfiguration` with `Enabled` not `false` (in [`crate::non_s3`]).
//!
//! A member given with `Enabled: false` is inert in Firehose too, so it is accepted.
//!
//! `DynamicPartitioningConfiguration` is applied: its rules are in [`crate::partitioning`];
//! `DataFormatConversionConfiguration` too, in [`crate::conversion`] (which refuses its
//! members hydrant does not apply, such as `OrcSerDe.RowIndexStride`).

use serde_json::Value;

use crate::destination::Destination;
use crate::errors::ApiError;
use crate::model::ExtendedS3Config;

/// The refusal for a member hydrant does not apply.
#[must_use]
pub fn unsupported(member: &str, what: &str) -> ApiError {
    ApiError::invalid(format!(
        "{member} is not supported by hydrant ({what}); remove it or set Enabled to false"
    ))
}

/// The ExtendedS3 members hydrant does not apply.
///
/// # Errors
/// InvalidArgumentException naming the first such member given.
pub fn refuse_s3(c: &ExtendedS3Config) -> Result<(), ApiError> {
    let backup_error_prefix = c
        .s3_backup_configuration
        .as_ref()
        .and_then(|b| b.get("ErrorOutputPrefix"))
        .and_then(Value::as_str);
    backup_error_prefix_refused(backup_error_prefix)
}

/// `S3BackupConfiguration.ErrorOutputPrefix` (given and not empty): a source-record backup has
/// no error output of its own in hydrant (a failed backup write is retried with the batch, then
/// filed in the destination's error output), so the prefix would never be used.
fn backup_error_prefix_refused(prefix: Option<&str>) -> Result<(), ApiError> {
    match prefix {
        Some(p) if !p.is_empty() => Err(ApiError::invalid(
            "S3BackupConfiguration.ErrorOutputPrefix is not supported by hydrant (a backup's \
             failed writes are retried with the batch and end in the destination's error \
             output); remove it",
        )),
        _ => Ok(()),
    }
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
        Destination::Redshift(c) => backup_error_prefix_refused(
            c.s3_backup_configuration
                .as_ref()
                .and_then(|b| b.error_output_prefix.as_deref()),
        ),
        Destination::HttpEndpoint(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_backup_error_prefix_is_refused_naming_it() {
        let mut c = ExtendedS3Config {
            s3_backup_configuration: Some(json!({"ErrorOutputPrefix": "e/"})),
            ..ExtendedS3Config::default()
        };
        let e = refuse_s3(&c).err().map(|e| e.message).unwrap_or_default();
        assert!(
            e.contains("S3BackupConfiguration.ErrorOutputPrefix is not supported by hydrant"),
            "{e}"
        );
        for inert in [json!({"ErrorOutputPrefix": ""}), json!({"Prefix": "b/"})] {
            c.s3_backup_configuration = Some(inert);
            assert!(refuse_s3(&c).is_ok());
        }
    }
}
