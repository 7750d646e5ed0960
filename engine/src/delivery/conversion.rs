//! Record format conversion in delivery: a destination's `DataFormatConversionConfiguration`
//! ([`crate::api::conversion`]) turned into the object sink's [`Converter`], with the table's
//! columns from a Glue API (`[glue] endpoint`, `HYDRANT_GLUE_ENDPOINT`) when one is configured,
//! else from the local catalog (`[catalog] dir`, default `DIR/catalog`).
//!
//! The schema is read at create and update (the table must exist), and again for every object
//! delivery writes: `VersionId` LATEST is re-read, so a table changed in the catalog applies
//! from the next object on. The local catalog keeps one version per table, so a `VersionId`
//! other than LATEST needs Glue and is refused without it.

use std::sync::Arc;
use std::time::Duration;

use hydrant_sinks::convert::catalog::LocalCatalog;
use hydrant_sinks::convert::glue::{GlueEndpoint, GlueTable};
use hydrant_sinks::convert::{Converter, DataCatalogTable, LocalTable, SchemaSource};
use hydrant_sinks::SinkError;

use crate::api::model::ExtendedS3Config;
use crate::config::Config;

const MEMBER: &str = "DataFormatConversionConfiguration.SchemaConfiguration";

/// Why a `DataFormatConversionConfiguration` cannot be applied.
#[derive(Debug, thiserror::Error)]
pub enum ConversionConfigError {
    /// Its settings break a rule (the message names the member).
    #[error("{}", .0.message)]
    Settings(crate::api::errors::ApiError),
    /// The Glue client cannot be built.
    #[error(transparent)]
    Glue(SinkError),
    /// A `VersionId` other than LATEST without a Glue endpoint.
    #[error(
        "{MEMBER}.VersionId {version:?} is not supported by hydrant without a Glue endpoint (the \
         local catalog keeps one version of a table: use LATEST, or configure [glue] endpoint)"
    )]
    VersionNeedsGlue {
        /// The `VersionId` given.
        version: String,
    },
    /// The table's schema cannot be read (missing from the catalog, invalid, unreachable).
    #[error("{MEMBER}: {0}")]
    Table(SinkError),
}

/// The converter of `c` and its objects' extension, or `None` when it does not convert. With
/// `check`, the table is read once (create and update run on a blocking thread, so a Glue call
/// may block there; delivery does not check, its first object reads the table).
///
/// # Errors
/// The rule broken, naming the member (the table missing from the catalog among them).
pub fn converter(
    config: &Config,
    c: &ExtendedS3Config,
    check: bool,
) -> Result<Option<(Converter, String)>, ConversionConfigError> {
    let Some(settings) =
        crate::api::conversion::settings(c).map_err(ConversionConfigError::Settings)?
    else {
        return Ok(None);
    };
    let s = &settings.schema;
    let schema: Arc<dyn SchemaSource> = match &config.glue.endpoint {
        Some(url) => {
            let g = &config.glue;
            let endpoint = GlueEndpoint {
                url: url.clone(),
                region: g.region.clone().unwrap_or_else(|| config.region.clone()),
                credentials: match (&g.access_key_id, &g.secret_access_key) {
                    (Some(id), Some(secret)) => Some(aws_credential_types::Credentials::new(
                        id,
                        secret,
                        None,
                        None,
                        "hydrant-config",
                    )),
                    _ => None,
                },
                timeout: Duration::from_secs(g.timeout_secs.unwrap_or(30)),
            };
            Arc::new(
                GlueTable::new(
                    endpoint,
                    s.catalog_id.clone(),
                    s.database.clone(),
                    s.table.clone(),
                    s.version_id.clone(),
                )
                .map_err(ConversionConfigError::Glue)?,
            )
        }
        None => {
            if s.version_id != "LATEST" {
                return Err(ConversionConfigError::VersionNeedsGlue {
                    version: s.version_id.clone(),
                });
            }
            Arc::new(LocalTable {
                catalog: LocalCatalog::new(config.catalog_dir()),
                database: s.database.clone(),
                table: s.table.clone(),
            })
        }
    };
    if check {
        schema.columns().map_err(ConversionConfigError::Table)?;
    }
    let named = DataCatalogTable::new(&settings, &config.account_id, &config.region);
    let extension = match c.file_extension.as_deref().filter(|e| !e.is_empty()) {
        Some(e) => e.to_string(),
        None => settings.output.extension().to_string(),
    };
    Ok(Some((Converter::new(settings, named, schema), extension)))
}
