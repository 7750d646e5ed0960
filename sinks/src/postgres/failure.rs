//! How a PostgreSQL / Redshift delivery fails: [`RedshiftFailure`], one variant per Firehose
//! error code the sink reports (users see them in the error output's `errorCode` and in the
//! metrics: they must not change), and [`RedshiftFailure::from_sqlstate`], the SQLSTATE table.

use crate::error::{DestinationFailure, Failure};

/// A failed statement or connection (the message travels beside it in
/// [`crate::SinkError::Destination`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RedshiftFailure {
    /// `Redshift.ConnectionFailed`: no connection, a broken one, a cancelled statement, no
    /// answer in time, or a server-side resource or internal error. Retried.
    ConnectionFailed,
    /// `Redshift.TableNotFound` (SQLSTATE 42P01, 3F000). Final.
    TableNotFound,
    /// `Redshift.ColumnNotFound` (42703, or a DataTableColumns entry the table lacks). Final.
    ColumnNotFound,
    /// `Redshift.SyntaxError` (42601 and the rest of class 42). Final.
    SyntaxError,
    /// `Redshift.AccessDenied` (42501). Final.
    AccessDenied,
    /// `Redshift.AuthenticationFailed` (28000, 28P01). Final.
    AuthenticationFailed,
    /// `Redshift.DatabaseNotFound` (3D000). Final.
    DatabaseNotFound,
    /// `Redshift.ConnectionsLimitReached` (53300). Retried.
    ConnectionsLimitReached,
    /// `Redshift.DiskFull` (53100). Retried.
    DiskFull,
    /// `Redshift.ReadOnlyCluster` (25006). Retried.
    ReadOnlyCluster,
    /// `Redshift.TransactionConflict` (classes 40 and 55). Retried.
    TransactionConflict,
    /// `Redshift.DataLoadFailed` ([`super::DATA_LOAD_FAILED`]; classes 22 and 23, or more bad
    /// rows than MAXERROR allows). Final.
    DataLoadFailed,
    /// `Redshift.QueryFailed`: any other SQLSTATE. Final.
    QueryFailed,
    /// `Redshift.InvalidPosition`: an LSN that does not fit the offsets table's bigint. Final.
    InvalidPosition,
}

impl RedshiftFailure {
    /// The failure a server error's SQLSTATE means.
    pub fn from_sqlstate(state: &str) -> RedshiftFailure {
        match state {
            "42P01" | "3F000" => RedshiftFailure::TableNotFound,
            "42703" => RedshiftFailure::ColumnNotFound,
            "42601" => RedshiftFailure::SyntaxError,
            "42501" => RedshiftFailure::AccessDenied,
            "28000" | "28P01" => RedshiftFailure::AuthenticationFailed,
            "3D000" => RedshiftFailure::DatabaseNotFound,
            "53300" => RedshiftFailure::ConnectionsLimitReached,
            "53100" => RedshiftFailure::DiskFull,
            "25006" => RedshiftFailure::ReadOnlyCluster,
            "57014" => RedshiftFailure::ConnectionFailed,
            _ => match state.get(..2).unwrap_or_default() {
                "08" | "57" | "53" | "58" | "XX" => RedshiftFailure::ConnectionFailed,
                "40" | "55" => RedshiftFailure::TransactionConflict,
                "22" | "23" => RedshiftFailure::DataLoadFailed,
                "42" => RedshiftFailure::SyntaxError,
                _ => RedshiftFailure::QueryFailed,
            },
        }
    }
}

impl Failure for RedshiftFailure {
    fn code_and_retry(self) -> (&'static str, bool) {
        match self {
            RedshiftFailure::ConnectionFailed => ("Redshift.ConnectionFailed", true),
            RedshiftFailure::TableNotFound => ("Redshift.TableNotFound", false),
            RedshiftFailure::ColumnNotFound => ("Redshift.ColumnNotFound", false),
            RedshiftFailure::SyntaxError => ("Redshift.SyntaxError", false),
            RedshiftFailure::AccessDenied => ("Redshift.AccessDenied", false),
            RedshiftFailure::AuthenticationFailed => ("Redshift.AuthenticationFailed", false),
            RedshiftFailure::DatabaseNotFound => ("Redshift.DatabaseNotFound", false),
            RedshiftFailure::ConnectionsLimitReached => ("Redshift.ConnectionsLimitReached", true),
            RedshiftFailure::DiskFull => ("Redshift.DiskFull", true),
            RedshiftFailure::ReadOnlyCluster => ("Redshift.ReadOnlyCluster", true),
            RedshiftFailure::TransactionConflict => ("Redshift.TransactionConflict", true),
            RedshiftFailure::DataLoadFailed => (super::DATA_LOAD_FAILED, false),
            RedshiftFailure::QueryFailed => ("Redshift.QueryFailed", false),
            RedshiftFailure::InvalidPosition => ("Redshift.InvalidPosition", false),
        }
    }
}

impl From<RedshiftFailure> for DestinationFailure {
    fn from(failure: RedshiftFailure) -> DestinationFailure {
        DestinationFailure::Redshift(failure)
    }
}
