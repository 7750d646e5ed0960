//! The local catalog: table schemas for record format conversion without AWS Glue.
//!
//! ```text
//! <catalog dir>/                       ([catalog] dir, HYDRANT_CATALOG_DIR; default DIR/catalog)
//!   <database>/<table>.json            one file per table:
//!       {"Columns": [{"Name": "id", "Type": "bigint"}, {"Name": "tags", "Type": "array<string>"}]}
//! ```
//!
//! A table file holds a Glue `StorageDescriptor` (its `Columns` are read; other members, as
//! `aws glue get-table` prints them, are ignored), so a schema can be copied from Glue as is.
//! Column names are lowercased, as Glue stores them; types are Hive type strings
//! ([`super::hive`]). Database and table names are Glue's: 1 to 255 of `[a-z0-9_]`, lowercased.
//!
//! Files are written whole (temp file, fsync, rename), so a reader never sees half a schema.
//! `hydrant catalog put|get|list` manages them.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::hive::HiveType;
use super::Column;

/// What can go wrong reading or writing the local catalog.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// A database or table name Glue would not accept.
    #[error("{what} name {name:?} must be 1 to 255 of a-z, 0-9 and _")]
    BadName {
        /// `database` or `table`.
        what: &'static str,
        /// The name.
        name: String,
    },
    /// No such table file.
    #[error("table {database}.{table} is not in the local catalog ({path})")]
    NotFound {
        /// The database.
        database: String,
        /// The table.
        table: String,
        /// The file looked for.
        path: String,
    },
    /// The file is not a StorageDescriptor with valid columns.
    #[error("table {database}.{table} ({path}): {reason}")]
    Invalid {
        /// The database.
        database: String,
        /// The table.
        table: String,
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// Reading or writing failed.
    #[error("local catalog {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The error.
        source: std::io::Error,
    },
}

/// A local catalog directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalCatalog {
    dir: PathBuf,
}

fn check_name(what: &'static str, name: &str) -> Result<String, CatalogError> {
    let lower = name.to_ascii_lowercase();
    let ok = !lower.is_empty()
        && lower.len() <= 255
        && lower
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(lower)
    } else {
        Err(CatalogError::BadName {
            what,
            name: name.to_string(),
        })
    }
}

/// The columns of a StorageDescriptor (or a bare `Columns` array).
///
/// # Errors
/// The reason the value holds no valid columns.
pub fn columns_of(descriptor: &Value) -> Result<Vec<Column>, String> {
    let list = match descriptor {
        Value::Array(list) => list,
        Value::Object(o) => o
            .get("Columns")
            .and_then(Value::as_array)
            .ok_or("no Columns array")?,
        _ => return Err("not a StorageDescriptor object".into()),
    };
    if list.is_empty() {
        return Err("Columns is empty".into());
    }
    let mut columns: Vec<Column> = Vec::with_capacity(list.len());
    for (i, c) in list.iter().enumerate() {
        let name = c
            .get("Name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| format!("Columns[{i}] has no Name"))?
            .to_lowercase();
        let text = c
            .get("Type")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("column {name:?} has no Type"))?;
        let ty = HiveType::parse(text).map_err(|e| format!("column {name:?}: {e}"))?;
        if columns.iter().any(|(n, _)| *n == name) {
            return Err(format!("column {name:?} is given twice"));
        }
        columns.push((name, ty));
    }
    Ok(columns)
}

impl LocalCatalog {
    /// The catalog in `dir` (created on the first put).
    pub fn new(dir: impl Into<PathBuf>) -> LocalCatalog {
        LocalCatalog { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of `database.table`.
    ///
    /// # Errors
    /// [`CatalogError::BadName`].
    pub fn path(&self, database: &str, table: &str) -> Result<PathBuf, CatalogError> {
        let database = check_name("database", database)?;
        let table = check_name("table", table)?;
        Ok(self.dir.join(database).join(format!("{table}.json")))
    }

    /// The StorageDescriptor stored for `database.table`, as stored.
    ///
    /// # Errors
    /// [`CatalogError`]: a bad name, no such table, unreadable.
    pub fn get(&self, database: &str, table: &str) -> Result<Value, CatalogError> {
        let path = self.path(database, table)?;
        let text = std::fs::read(&path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                CatalogError::NotFound {
                    database: database.to_string(),
                    table: table.to_string(),
                    path: path.display().to_string(),
                }
            } else {
                CatalogError::Io {
                    path: path.display().to_string(),
                    source,
                }
            }
        })?;
        serde_json::from_slice(&text).map_err(|e| CatalogError::Invalid {
            database: database.to_string(),
            table: table.to_string(),
            path: path.display().to_string(),
            reason: format!("not JSON: {e}"),
        })
    }

    /// The columns of `database.table`.
    ///
    /// # Errors
    /// [`CatalogError`]: a bad name, no such table, unreadable, invalid columns.
    pub fn columns(&self, database: &str, table: &str) -> Result<Vec<Column>, CatalogError> {
        let descriptor = self.get(database, table)?;
        columns_of(&descriptor).map_err(|reason| CatalogError::Invalid {
            database: database.to_string(),
            table: table.to_string(),
            path: self
                .path(database, table)
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            reason,
        })
    }

    /// Stores `descriptor` as `database.table`, after checking its columns; replaces any
    /// earlier version whole.
    ///
    /// # Errors
    /// [`CatalogError`]: a bad name, invalid columns, a failed write.
    pub fn put(&self, database: &str, table: &str, descriptor: &Value) -> Result<(), CatalogError> {
        let path = self.path(database, table)?;
        let invalid = |reason: String| CatalogError::Invalid {
            database: database.to_string(),
            table: table.to_string(),
            path: path.display().to_string(),
            reason,
        };
        columns_of(descriptor).map_err(invalid)?;
        let io = |p: &Path| {
            let p = p.display().to_string();
            move |source| CatalogError::Io { path: p, source }
        };
        let parent = path.parent().unwrap_or(&self.dir);
        std::fs::create_dir_all(parent).map_err(io(parent))?;
        let tmp = parent.join(format!(
            ".{}.tmp",
            path.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        ));
        let text = serde_json::to_vec_pretty(descriptor).map_err(|e| invalid(e.to_string()))?;
        let mut file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        file.write_all(&text).map_err(io(&tmp))?;
        file.sync_all().map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        std::fs::File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(io(parent))?;
        Ok(())
    }

    /// Every `(database, table)` in the catalog, sorted.
    ///
    /// # Errors
    /// [`CatalogError::Io`] when the directory cannot be read (a missing one is empty).
    pub fn list(&self) -> Result<Vec<(String, String)>, CatalogError> {
        let io = |p: &Path| {
            let p = p.display().to_string();
            move |source| CatalogError::Io { path: p, source }
        };
        let mut out = Vec::new();
        let databases = match std::fs::read_dir(&self.dir) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(io(&self.dir)(e)),
        };
        for database in databases {
            let database = database.map_err(io(&self.dir))?;
            if !database.path().is_dir() {
                continue;
            }
            let db_name = database.file_name().to_string_lossy().into_owned();
            for table in std::fs::read_dir(database.path()).map_err(io(&database.path()))? {
                let table = table.map_err(io(&database.path()))?;
                let name = table.file_name().to_string_lossy().into_owned();
                if let Some(t) = name.strip_suffix(".json") {
                    if !t.starts_with('.') {
                        out.push((db_name.clone(), t.to_string()));
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn put_get_list_and_columns() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let catalog = LocalCatalog::new(dir.path().join("catalog"));
        assert_eq!(catalog.list().ok(), Some(Vec::new()));
        let sd = json!({"Columns": [{"Name": "Id", "Type": "bigint"},
                                    {"Name": "tags", "Type": "array<string>"}],
                        "Location": "s3://b/t/"});
        catalog
            .put("Db", "events", &sd)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(catalog.get("db", "events").ok(), Some(sd));
        let columns = catalog
            .columns("db", "EVENTS")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(columns[0], ("id".to_string(), HiveType::BigInt));
        assert_eq!(
            catalog.list().ok(),
            Some(vec![("db".to_string(), "events".to_string())])
        );
        assert!(matches!(
            catalog.columns("db", "nope"),
            Err(CatalogError::NotFound { .. })
        ));
        assert!(matches!(
            catalog.path("../x", "t"),
            Err(CatalogError::BadName { .. })
        ));
        for bad in [
            json!({"Columns": []}),
            json!({"Columns": [{"Name": "a", "Type": "nope"}]}),
            json!({"Columns": [{"Name": "a", "Type": "int"}, {"Name": "A", "Type": "int"}]}),
            json!({"Location": "x"}),
        ] {
            assert!(
                matches!(
                    catalog.put("db", "bad", &bad),
                    Err(CatalogError::Invalid { .. })
                ),
                "{bad}"
            );
        }
    }
}
