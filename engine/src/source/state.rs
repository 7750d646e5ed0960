//! A source's failure, shared between its reader and DescribeDeliveryStream: while set, the
//! description's `FailureDescription.Details` says why the source cannot be read.

use std::sync::Mutex;

/// Why the source is failed (Firehose's `FailureDescription`), shared with DescribeDeliveryStream.
#[derive(Debug, Default)]
pub struct SourceState {
    failure: Mutex<Option<String>>,
}

impl SourceState {
    /// The failure's details, while failed.
    #[must_use]
    pub fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Sets (`Some`) or clears (`None`) the failure.
    pub(crate) fn set(&self, f: Option<String>) {
        *self
            .failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = f;
    }
}
