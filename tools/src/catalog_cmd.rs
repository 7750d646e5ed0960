//! `hydrant catalog put|get|list`: the local catalog of table schemas that record format
//! conversion reads (hydrantd's `[catalog] dir`, `HYDRANT_CATALOG_DIR`, default `DIR/catalog`;
//! layout in [`hydrant_sinks::convert::catalog`]).
//!
//! - `put DATABASE TABLE FILE`: stores FILE (a Glue `StorageDescriptor` with `Columns`, or a
//!   bare `Columns` array, `-` for standard input) after checking every column's Hive type;
//!   `--column NAME:TYPE` (repeatable) gives the columns on the command line instead.
//! - `get DATABASE TABLE`: prints the stored descriptor.
//! - `list`: prints `database.table`, one a line.
//!
//! A running hydrantd re-reads a table for every object it converts, so a put applies from the
//! next object on.

use std::io::{Read, Write};
use std::path::PathBuf;

use clap::{Args, Subcommand};
use hydrant_sinks::convert::catalog::LocalCatalog;
use serde_json::{json, Value};

use crate::error::CliError;

/// Where the catalog is.
#[derive(Debug, Args)]
pub struct CatalogArgs {
    /// The catalog directory; default DATA_DIR/catalog.
    #[arg(long, env = "HYDRANT_CATALOG_DIR")]
    pub dir: Option<PathBuf>,
    /// hydrantd's data directory (the default catalog is DATA_DIR/catalog).
    #[arg(long, env = "HYDRANT_DATA_DIR", default_value = "./hydrant-data")]
    pub data_dir: PathBuf,
    #[command(subcommand)]
    pub command: CatalogCommand,
}

/// The catalog's subcommands.
#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// Store a table's schema (replacing any earlier one).
    Put {
        /// The Glue database name.
        database: String,
        /// The Glue table name.
        table: String,
        /// A JSON file holding a StorageDescriptor (`{"Columns": [{"Name", "Type"}]}`) or a
        /// Columns array; `-` reads standard input. Not with --column.
        file: Option<PathBuf>,
        /// A column as NAME:TYPE (Hive type), repeatable, in order.
        #[arg(long = "column", value_name = "NAME:TYPE")]
        columns: Vec<String>,
    },
    /// Print a table's stored schema.
    Get {
        /// The Glue database name.
        database: String,
        /// The Glue table name.
        table: String,
    },
    /// List the tables, as database.table.
    List,
}

fn invalid(e: impl std::fmt::Display) -> CliError {
    CliError::InvalidArgument(e.to_string())
}

/// Runs a catalog subcommand.
///
/// # Errors
/// [`CliError`]: a bad name or schema, an unreadable file, a failed write.
pub fn run(args: &CatalogArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| args.data_dir.join("catalog"));
    let catalog = LocalCatalog::new(dir);
    match &args.command {
        CatalogCommand::Put {
            database,
            table,
            file,
            columns,
        } => {
            let descriptor = match (file, columns.is_empty()) {
                (Some(_), false) => return Err(invalid("give FILE or --column, not both")),
                (None, true) => return Err(invalid("give FILE or at least one --column")),
                (None, false) => {
                    let mut list = Vec::new();
                    for c in columns {
                        let (name, ty) = c
                            .split_once(':')
                            .ok_or_else(|| invalid(format!("--column {c:?} is not NAME:TYPE")))?;
                        list.push(json!({"Name": name, "Type": ty}));
                    }
                    json!({ "Columns": list })
                }
                (Some(path), true) => {
                    let mut text = Vec::new();
                    if path.as_os_str() == "-" {
                        std::io::stdin()
                            .read_to_end(&mut text)
                            .map_err(|e| CliError::io("read", path, e))?;
                    } else {
                        text = std::fs::read(path).map_err(|e| CliError::io("read", path, e))?;
                    }
                    let v: Value = serde_json::from_slice(&text)
                        .map_err(|e| invalid(format!("{}: {e}", path.display())))?;
                    match v {
                        Value::Array(_) => json!({ "Columns": v }),
                        other => other,
                    }
                }
            };
            catalog.put(database, table, &descriptor).map_err(invalid)?;
            writeln!(out, "stored {database}.{table}").map_err(CliError::Output)?;
        }
        CatalogCommand::Get { database, table } => {
            let v = catalog.get(database, table).map_err(invalid)?;
            writeln!(out, "{}", serde_json::to_string_pretty(&v)?).map_err(CliError::Output)?;
        }
        CatalogCommand::List => {
            for (database, table) in catalog.list().map_err(invalid)? {
                writeln!(out, "{database}.{table}").map_err(CliError::Output)?;
            }
        }
    }
    Ok(())
}
