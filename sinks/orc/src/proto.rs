//! The ORC metadata messages, declared by hand with prost's derive: only the fields this writer
//! writes, with the field numbers of the ORC specification's `orc_proto.proto` (package
//! `orc.proto`, proto2). Enumerations are kept as their numbers (the constants below).
//!
//! ```text
//! file tail:  Metadata (StripeStatistics*)  Footer  PostScript  (1 byte: PostScript length)
//! stripe:     streams ...  StripeFooter
//! ```

/// `Type.Kind` numbers.
pub mod kind {
    pub const BOOLEAN: i32 = 0;
    pub const BYTE: i32 = 1;
    pub const SHORT: i32 = 2;
    pub const INT: i32 = 3;
    pub const LONG: i32 = 4;
    pub const FLOAT: i32 = 5;
    pub const DOUBLE: i32 = 6;
    pub const STRING: i32 = 7;
    pub const BINARY: i32 = 8;
    pub const TIMESTAMP: i32 = 9;
    pub const LIST: i32 = 10;
    pub const MAP: i32 = 11;
    pub const STRUCT: i32 = 12;
    pub const DECIMAL: i32 = 14;
    pub const DATE: i32 = 15;
}

/// `Stream.Kind` numbers.
pub mod stream_kind {
    pub const PRESENT: i32 = 0;
    pub const DATA: i32 = 1;
    pub const LENGTH: i32 = 2;
    pub const DICTIONARY_DATA: i32 = 3;
    pub const SECONDARY: i32 = 5;
}

/// `ColumnEncoding.Kind`: DIRECT (run-length encoding version 1).
pub const ENCODING_DIRECT: i32 = 0;
/// `ColumnEncoding.Kind`: DICTIONARY (run-length encoding version 1).
pub const ENCODING_DICTIONARY: i32 = 1;

/// `CompressionKind` numbers.
pub mod compression_kind {
    pub const NONE: i32 = 0;
    pub const ZLIB: i32 = 1;
    pub const SNAPPY: i32 = 2;
}

/// `ColumnStatistics` (only the counts).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ColumnStatistics {
    #[prost(uint64, optional, tag = "1")]
    pub number_of_values: Option<u64>,
    #[prost(bool, optional, tag = "10")]
    pub has_null: Option<bool>,
}

/// `Stream`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Stream {
    #[prost(int32, optional, tag = "1")]
    pub kind: Option<i32>,
    #[prost(uint32, optional, tag = "2")]
    pub column: Option<u32>,
    #[prost(uint64, optional, tag = "3")]
    pub length: Option<u64>,
}

/// `ColumnEncoding`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ColumnEncoding {
    #[prost(int32, optional, tag = "1")]
    pub kind: Option<i32>,
    #[prost(uint32, optional, tag = "2")]
    pub dictionary_size: Option<u32>,
}

/// `StripeFooter`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StripeFooter {
    #[prost(message, repeated, tag = "1")]
    pub streams: Vec<Stream>,
    #[prost(message, repeated, tag = "2")]
    pub columns: Vec<ColumnEncoding>,
    #[prost(string, optional, tag = "3")]
    pub writer_timezone: Option<String>,
}

/// `StripeInformation`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StripeInformation {
    #[prost(uint64, optional, tag = "1")]
    pub offset: Option<u64>,
    #[prost(uint64, optional, tag = "2")]
    pub index_length: Option<u64>,
    #[prost(uint64, optional, tag = "3")]
    pub data_length: Option<u64>,
    #[prost(uint64, optional, tag = "4")]
    pub footer_length: Option<u64>,
    #[prost(uint64, optional, tag = "5")]
    pub number_of_rows: Option<u64>,
}

/// `Type`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Type {
    #[prost(int32, optional, tag = "1")]
    pub kind: Option<i32>,
    #[prost(uint32, repeated, packed = "true", tag = "2")]
    pub subtypes: Vec<u32>,
    #[prost(string, repeated, tag = "3")]
    pub field_names: Vec<String>,
    #[prost(uint32, optional, tag = "5")]
    pub precision: Option<u32>,
    #[prost(uint32, optional, tag = "6")]
    pub scale: Option<u32>,
}

/// `StripeStatistics`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StripeStatistics {
    #[prost(message, repeated, tag = "1")]
    pub col_stats: Vec<ColumnStatistics>,
}

/// `Metadata`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Metadata {
    #[prost(message, repeated, tag = "1")]
    pub stripe_stats: Vec<StripeStatistics>,
}

/// `Footer`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Footer {
    #[prost(uint64, optional, tag = "1")]
    pub header_length: Option<u64>,
    #[prost(uint64, optional, tag = "2")]
    pub content_length: Option<u64>,
    #[prost(message, repeated, tag = "3")]
    pub stripes: Vec<StripeInformation>,
    #[prost(message, repeated, tag = "4")]
    pub types: Vec<Type>,
    #[prost(uint64, optional, tag = "6")]
    pub number_of_rows: Option<u64>,
    #[prost(message, repeated, tag = "7")]
    pub statistics: Vec<ColumnStatistics>,
    #[prost(uint32, optional, tag = "8")]
    pub row_index_stride: Option<u32>,
    #[prost(string, optional, tag = "12")]
    pub software_version: Option<String>,
}

/// `PostScript`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PostScript {
    #[prost(uint64, optional, tag = "1")]
    pub footer_length: Option<u64>,
    #[prost(int32, optional, tag = "2")]
    pub compression: Option<i32>,
    #[prost(uint64, optional, tag = "3")]
    pub compression_block_size: Option<u64>,
    #[prost(uint32, repeated, packed = "true", tag = "4")]
    pub version: Vec<u32>,
    #[prost(uint64, optional, tag = "5")]
    pub metadata_length: Option<u64>,
    #[prost(uint32, optional, tag = "6")]
    pub writer_version: Option<u32>,
    #[prost(string, optional, tag = "8000")]
    pub magic: Option<String>,
}
