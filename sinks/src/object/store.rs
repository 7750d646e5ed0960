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
    pub body: Body,
    /// The `Content-Encoding` to store with it (S3 only; the local store keeps bytes alone).
    pub content_encoding: Option<&'static str>,
}

/// An object's bytes: one or more parts, one after another.
///
/// An uncompressed batch is its records back to back, so its object body is the records
/// themselves: a store that writes parts in turn (the local store) copies each record once, into
/// its write buffer, instead of first into one contiguous body. Stores that want one buffer (the
/// S3 client) ask for [`Body::to_bytes`], which copies only when there is more than one part.
#[derive(Clone, Debug, Default)]
pub struct Body {
    parts: Vec<Bytes>,
    len: usize,
}

impl Body {
    /// A body of `parts`, in order. Empty parts are dropped.
    #[must_use]
    pub fn from_parts(parts: Vec<Bytes>) -> Body {
        let mut parts = parts;
        parts.retain(|p| !p.is_empty());
        let len = parts.iter().map(Bytes::len).sum();
        Body { parts, len }
    }

    /// Length in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the body has no bytes.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The parts, in order (none empty).
    #[must_use]
    pub fn parts(&self) -> &[Bytes] {
        &self.parts
    }

    /// The body as one buffer: the part itself when there is one, else a copy of all.
    #[must_use]
    pub fn to_bytes(&self) -> Bytes {
        match self.parts.as_slice() {
            [] => Bytes::new(),
            [one] => one.clone(),
            parts => {
                let mut all = Vec::with_capacity(self.len);
                for p in parts {
                    all.extend_from_slice(p);
                }
                Bytes::from(all)
            }
        }
    }
}

impl PartialEq for Body {
    /// Equal bytes, however they are split into parts.
    fn eq(&self, other: &Body) -> bool {
        self.len == other.len
            && self
                .parts
                .iter()
                .flat_map(|p| p.iter())
                .eq(other.parts.iter().flat_map(|p| p.iter()))
    }
}

impl Eq for Body {}

impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Body {
        Body::from_parts(vec![bytes])
    }
}

impl From<Vec<u8>> for Body {
    fn from(bytes: Vec<u8>) -> Body {
        Body::from(Bytes::from(bytes))
    }
}

impl From<&'static [u8]> for Body {
    fn from(bytes: &'static [u8]) -> Body {
        Body::from(Bytes::from_static(bytes))
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_length_and_contiguous_copy() {
        let body = Body::from_parts(vec![
            Bytes::from_static(b"ab"),
            Bytes::new(),
            Bytes::from_static(b"cde"),
        ]);
        assert_eq!(body.len(), 5);
        assert_eq!(body.parts().len(), 2, "the empty part is dropped");
        assert_eq!(&body.to_bytes()[..], b"abcde");
        let one = Body::from(Bytes::from_static(b"xyz"));
        assert_eq!(
            one.to_bytes().as_ptr(),
            one.parts()[0].as_ptr(),
            "one part: no copy"
        );
        assert!(Body::default().is_empty());
        assert!(Body::default().to_bytes().is_empty());
    }

    #[test]
    fn equality_is_by_bytes_not_by_split() {
        let split = Body::from_parts(vec![Bytes::from_static(b"he"), Bytes::from_static(b"llo")]);
        assert_eq!(split, Body::from(&b"hello"[..]));
        assert_ne!(split, Body::from(&b"hellO"[..]));
        assert_ne!(split, Body::from(&b"hell"[..]));
    }
}
