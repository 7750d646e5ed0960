//! A table's columns from an AWS Glue Data Catalog API: `GetTable` (or `GetTableVersion` for a
//! `VersionId` other than `LATEST`) against a configured endpoint (AWS Glue itself, a
//! Glue-compatible metastore, or moto's Glue server in tests).
//!
//! ```text
//! POST <endpoint>/   X-Amz-Target: AWSGlue.GetTable   Content-Type: application/x-amz-json-1.1
//!                    Authorization: SigV4 (service "glue") when keys are configured
//!   {"CatalogId"?, "DatabaseName", "Name"}
//! 200 {"Table": {"StorageDescriptor": {"Columns": [{"Name", "Type"}, ...]}, ...}}
//! ```
//!
//! The call is the Glue JSON 1.1 protocol signed with `aws-sigv4`, over the crate's one HTTP
//! client (reqwest, rustls), as the Lambda and OpenSearch clients are: the `aws-sdk-glue` crate
//! would add several minutes of build for one operation. Every failure is retryable
//! (`DataFormatConversion.InvalidSchema`): an operator can fix the catalog and delivery goes on.

use std::time::Duration;

use aws_credential_types::Credentials;
use serde_json::{json, Value};

use super::catalog::columns_of;
use super::{invalid_schema, Column, SchemaSource};
use crate::SinkError;

/// How a Glue endpoint is reached.
#[derive(Clone, Debug)]
pub struct GlueEndpoint {
    /// The endpoint URL (`https://glue.us-east-1.amazonaws.com`, `http://127.0.0.1:5000`).
    pub url: String,
    /// The signing region.
    pub region: String,
    /// Keys to sign with; `None`: requests are not signed.
    pub credentials: Option<Credentials>,
    /// Per request.
    pub timeout: Duration,
}

/// One table of a Glue catalog.
#[derive(Debug)]
pub struct GlueTable {
    endpoint: GlueEndpoint,
    client: reqwest::Client,
    catalog_id: Option<String>,
    database: String,
    table: String,
    version_id: String,
}

impl GlueTable {
    /// The table `database.table` (`catalog_id`: the account, when given) at `version_id`.
    ///
    /// # Errors
    /// [`SinkError::Config`] when the HTTP client cannot be built.
    pub fn new(
        endpoint: GlueEndpoint,
        catalog_id: Option<String>,
        database: String,
        table: String,
        version_id: String,
    ) -> Result<GlueTable, SinkError> {
        let client = reqwest::Client::builder()
            .timeout(endpoint.timeout)
            .build()
            .map_err(|e| SinkError::Config(format!("Glue client: {e}")))?;
        Ok(GlueTable {
            endpoint,
            client,
            catalog_id,
            database,
            table,
            version_id,
        })
    }

    fn request(&self) -> (&'static str, Value) {
        let mut body = if self.version_id == "LATEST" {
            json!({"DatabaseName": self.database, "Name": self.table})
        } else {
            json!({"DatabaseName": self.database, "TableName": self.table,
                   "VersionId": self.version_id})
        };
        if let Some(id) = &self.catalog_id {
            body["CatalogId"] = json!(id);
        }
        let target = if self.version_id == "LATEST" {
            "AWSGlue.GetTable"
        } else {
            "AWSGlue.GetTableVersion"
        };
        (target, body)
    }

    /// Asks the endpoint for the table's columns.
    ///
    /// # Errors
    /// A retryable [`SinkError`] naming what failed.
    pub async fn fetch(&self) -> Result<Vec<Column>, SinkError> {
        let (target, body) = self.request();
        let body = body.to_string().into_bytes();
        let url = self.endpoint.url.trim_end_matches('/').to_string() + "/";
        let mut headers = vec![
            (
                "content-type".to_string(),
                "application/x-amz-json-1.1".to_string(),
            ),
            ("x-amz-target".to_string(), target.to_string()),
        ];
        if let Some(credentials) = &self.endpoint.credentials {
            let region = &self.endpoint.region;
            headers.extend(
                crate::sigv4::sign_json_post("glue", region, credentials, &url, &headers, &body)
                    .map_err(|e| SinkError::Config(format!("Glue SigV4: {e}")))?,
            );
        }
        let mut request = self.client.post(&url).body(body);
        for (name, value) in &headers {
            request = request.header(name, value);
        }
        let name = format!("{}.{}", self.database, self.table);
        let response = request
            .send()
            .await
            .map_err(|e| invalid_schema(format!("Glue {target} for {name}: {e}")))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| invalid_schema(format!("Glue {target} for {name}: {e}")))?;
        if !status.is_success() {
            return Err(invalid_schema(format!(
                "Glue {target} for {name}: HTTP {status}: {}",
                text.chars().take(512).collect::<String>()
            )));
        }
        let reply: Value = serde_json::from_str(&text)
            .map_err(|e| invalid_schema(format!("Glue {target} for {name}: {e}")))?;
        let table = reply
            .get("Table")
            .or_else(|| reply.get("TableVersion").and_then(|v| v.get("Table")));
        let descriptor = table
            .and_then(|t| t.get("StorageDescriptor"))
            .ok_or_else(|| {
                invalid_schema(format!("Glue {target} for {name}: no StorageDescriptor"))
            })?;
        columns_of(descriptor).map_err(|e| invalid_schema(format!("Glue table {name}: {e}")))
    }
}

impl SchemaSource for GlueTable {
    /// Blocks on [`GlueTable::fetch`]: called on a blocking thread of the runtime (the
    /// converter runs in `spawn_blocking`), never on an async worker.
    fn columns(&self) -> Result<Vec<Column>, SinkError> {
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|e| invalid_schema(format!("Glue: no runtime: {e}")))?;
        handle.block_on(self.fetch())
    }
}
