//! How converting a batch to a columnar file fails as a whole: [`ConversionFailure`], one variant
//! per error code (a single record that does not convert is not a failure of the batch: it goes
//! to the error output as `format-conversion-failed`).

use crate::error::{DestinationFailure, Failure};

/// A batch that could not be converted (the message travels beside it in
/// [`crate::SinkError::Destination`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConversionFailure {
    /// `DataFormatConversion.InvalidSchema`: the table's schema cannot be read or used. Retried:
    /// an operator can fix the catalog.
    InvalidSchema,
    /// `DataFormatConversion.WriterFailed`: the Parquet writer refused the batch. Final.
    WriterFailed,
}

impl Failure for ConversionFailure {
    fn code_and_retry(self) -> (&'static str, bool) {
        match self {
            ConversionFailure::InvalidSchema => ("DataFormatConversion.InvalidSchema", true),
            ConversionFailure::WriterFailed => ("DataFormatConversion.WriterFailed", false),
        }
    }
}

impl From<ConversionFailure> for DestinationFailure {
    fn from(failure: ConversionFailure) -> DestinationFailure {
        DestinationFailure::Conversion(failure)
    }
}
