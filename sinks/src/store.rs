//! The [`ObjectStore`] seam: where the objects of an S3-style destination are written.
//!
//! Two implementations: [`crate::LocalStore`] (files under the data directory, the embedded
//! default) and [`crate::S3Store`] (an S3-compatible endpoint). [`crate::ObjectSink`] turns batches
//! into objects and does not care which one it has.

use std::fmt;

use bytes::Bytes;

use crate::{BoxFuture, SinkError};

/// The content type of every delivered object, as Firehose sets it.
pub const OBJECT_CONTENT_TYPE: &str = "application/octet-stream";

/// An object to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PutObject {
    /// The object's bytes (already compressed).
    pub body: Bytes,
    /// The `Content-Encoding` to store with it (S3 only; the local store keeps bytes alone).
    pub content_encoding: Option<&'static str>,
}

/// A bucket-like key-value store of immutable objects.
///
/// # Contract
/// - `put_object` is atomic: a reader sees the old object or the new one under `key`, never a
///   part of either. Putting the same key again replaces the object (the idempotent retry).
/// - When `put_object` returns `Ok`, the object is durable (fsynced; or acknowledged by S3).
pub trait ObjectStore: Send + Sync + fmt::Debug {
    /// A short name for logs and metric labels (`"local"`, `"s3"`).
    fn kind(&self) -> &'static str;

    /// A human-readable location of `key` for logs (`s3://bucket/key`, a file path).
    fn location(&self, key: &str) -> String;

    /// Writes `object` under `key`, replacing any object already there.
    ///
    /// # Errors
    /// A [`SinkError`] classified retryable or permanent.
    fn put_object<'a>(
        &'a self,
        key: &'a str,
        object: PutObject,
    ) -> BoxFuture<'a, Result<(), SinkError>>;

    /// Reads the object under `key` (tests, the Redshift loader, replay tools).
    ///
    /// # Errors
    /// [`SinkError::NotFound`] when there is none, or another [`SinkError`].
    fn get_object<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Bytes, SinkError>>;

    /// The keys that start with `prefix`, in lexicographic order.
    ///
    /// # Errors
    /// A [`SinkError`].
    fn list_keys<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<String>, SinkError>>;
}
