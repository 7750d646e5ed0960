//! The stream registry: definitions, version ids, tags, incarnations, in sled under
//! `DIR/registry`.
//!
//! sled 0.34's `flush()` ends in `sync_file_range`, which survives a process kill but not a
//! power loss (sled issue #1452). So every change is followed by `flush()` and then an `fsync`
//! of every file and directory of the database ([`Registry::make_durable`], the one place this
//! workaround lives: `open`, `put`, `remove` and the engine's close all go through it; the
//! directories are synced too because sled creates files, whose names a power loss would
//! otherwise lose; the power-cut test, `tests/powercut/`, creates its streams through the API
//! and checks them after cuts). A change is one `insert` or `remove` of one key (a stream's
//! whole record, as JSON), so it is atomic.
//! Start-up reconciles the registry with the stream directories (see `streams.rs`).

use std::fs::File;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::api::destination::Destination;

/// A registry failure. The control-plane operation that hit it answers InternalFailure.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// sled failed.
    #[error("registry database: {0}")]
    Sled(#[from] sled::Error),
    /// Syncing the database's files failed.
    #[error("registry fsync {}: {source}", path.display())]
    Sync {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A stored record is not valid JSON for [`StreamRecord`].
    #[error("registry record {key:?} is damaged: {source}")]
    Decode {
        /// The key.
        key: String,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// A record could not be encoded (should not happen).
    #[error("registry record could not be encoded: {0}")]
    Encode(#[source] serde_json::Error),
}

/// A stream's lifecycle state, as DescribeDeliveryStream reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StreamStatus {
    /// Registered; its WAL is being opened.
    Creating,
    /// Opening its WAL failed.
    CreatingFailed,
    /// Ready for records.
    Active,
    /// Being deleted (start-up finishes an interrupted deletion).
    Deleting,
}

impl StreamStatus {
    /// Firehose's spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            StreamStatus::Creating => "CREATING",
            StreamStatus::CreatingFailed => "CREATING_FAILED",
            StreamStatus::Active => "ACTIVE",
            StreamStatus::Deleting => "DELETING",
        }
    }
}

/// Where a stream's definition came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// CreateDeliveryStream.
    Api,
    /// Declared in the configuration (created at start-up when missing).
    Config,
}

/// One stream's registry record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StreamRecord {
    /// The name (also the key).
    pub name: String,
    /// Random id fixed at creation: a stream deleted and created again under the same name has
    /// another incarnation, so its record ids and delivery keys never collide with the old ones.
    pub incarnation: u64,
    /// Firehose's VersionId: 1 at creation, +1 per UpdateDestination.
    pub version_id: u64,
    /// Lifecycle state.
    pub status: StreamStatus,
    /// Creation time, ms since the epoch.
    pub created_ms: u64,
    /// Last configuration change, ms since the epoch (None before the first update).
    pub updated_ms: Option<u64>,
    /// The destination.
    pub destination: Destination,
    /// Tags, sorted by key (ListTagsForDeliveryStream pages in key order).
    pub tags: Vec<(String, String)>,
    /// CreateDeliveryStream or the configuration.
    pub origin: Origin,
    /// `DirectPutSourceConfiguration.ThroughputHintInMBs`, when given.
    #[serde(default)]
    pub throughput_hint_mbs: Option<u32>,
    /// The Kinesis stream read (`KinesisStreamAsSource`); `None`: DirectPut.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kinesis_source: Option<hydrant_api::source::KinesisStreamSource>,
    /// The Kafka topic read (`MSKAsSource`); `None`: not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msk_source: Option<hydrant_api::msk::MskSource>,
}

/// The registry database.
#[derive(Debug)]
pub struct Registry {
    dir: PathBuf,
    db: sled::Db,
    streams: sled::Tree,
}

impl Registry {
    /// Opens (creating) the registry in `dir`.
    ///
    /// # Errors
    /// [`RegistryError::Sled`] (for example when another process has it open).
    pub fn open(dir: &Path) -> Result<Registry, RegistryError> {
        let db = sled::Config::new()
            .path(dir)
            .mode(sled::Mode::HighThroughput)
            .open()?;
        let streams = db.open_tree("streams")?;
        let r = Registry {
            dir: dir.to_path_buf(),
            db,
            streams,
        };
        r.make_durable()?;
        Ok(r)
    }

    /// Every record, in name order.
    ///
    /// # Errors
    /// [`RegistryError::Sled`] or [`RegistryError::Decode`].
    pub fn list(&self) -> Result<Vec<StreamRecord>, RegistryError> {
        let mut out = Vec::new();
        for kv in &self.streams {
            let (k, v) = kv?;
            out.push(decode(&k, &v)?);
        }
        Ok(out)
    }

    /// The record of `name`.
    ///
    /// # Errors
    /// [`RegistryError::Sled`] or [`RegistryError::Decode`].
    pub fn get(&self, name: &str) -> Result<Option<StreamRecord>, RegistryError> {
        match self.streams.get(name.as_bytes())? {
            Some(v) => Ok(Some(decode(name.as_bytes(), &v)?)),
            None => Ok(None),
        }
    }

    /// Writes a record durably.
    ///
    /// # Errors
    /// Any [`RegistryError`]; the change may or may not have reached the disk.
    pub fn put(&self, record: &StreamRecord) -> Result<(), RegistryError> {
        let v = serde_json::to_vec(record).map_err(RegistryError::Encode)?;
        self.streams.insert(record.name.as_bytes(), v)?;
        self.make_durable()
    }

    /// Removes a record durably.
    ///
    /// # Errors
    /// Any [`RegistryError`].
    pub fn remove(&self, name: &str) -> Result<(), RegistryError> {
        self.streams.remove(name.as_bytes())?;
        self.make_durable()
    }

    /// `flush()`, then `fsync` every file and directory of the database (sled's own flush uses
    /// `sync_file_range`, which does not survive a power loss).
    ///
    /// # Errors
    /// [`RegistryError::Sled`] or [`RegistryError::Sync`].
    pub fn make_durable(&self) -> Result<(), RegistryError> {
        self.db.flush()?;
        sync_tree(&self.dir)?;
        if let Some(parent) = self.dir.parent() {
            sync_path(parent)?;
        }
        Ok(())
    }
}

fn decode(k: &[u8], v: &[u8]) -> Result<StreamRecord, RegistryError> {
    serde_json::from_slice(v).map_err(|source| RegistryError::Decode {
        key: String::from_utf8_lossy(k).into_owned(),
        source,
    })
}

fn sync_path(path: &Path) -> Result<(), RegistryError> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|source| RegistryError::Sync {
            path: path.to_path_buf(),
            source,
        })
}

/// Fsyncs every file under `dir`, then the directories, deepest first.
fn sync_tree(dir: &Path) -> Result<(), RegistryError> {
    let entries = std::fs::read_dir(dir).map_err(|source| RegistryError::Sync {
        path: dir.to_path_buf(),
        source,
    })?;
    for e in entries {
        let e = e.map_err(|source| RegistryError::Sync {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = e.path();
        let ft = e.file_type().map_err(|source| RegistryError::Sync {
            path: path.clone(),
            source,
        })?;
        if ft.is_dir() {
            sync_tree(&path)?;
        } else if ft.is_file() {
            sync_path(&path)?;
        }
    }
    sync_path(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_get_remove_survive_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("registry");
        let rec = StreamRecord {
            name: "s".into(),
            incarnation: 7,
            version_id: 1,
            status: StreamStatus::Active,
            created_ms: 1,
            updated_ms: None,
            destination: crate::config::StreamConfig::embedded_default().destination(),
            tags: vec![("k".into(), "v".into())],
            origin: Origin::Api,
            throughput_hint_mbs: None,
            kinesis_source: None,
            msk_source: None,
        };
        {
            let r = Registry::open(&path).expect("open");
            r.put(&rec).expect("put");
        }
        let r = Registry::open(&path).expect("reopen");
        assert_eq!(r.get("s").expect("get"), Some(rec.clone()));
        assert_eq!(r.list().expect("list"), vec![rec]);
        r.remove("s").expect("remove");
        assert_eq!(r.get("s").expect("get"), None);
    }
}
