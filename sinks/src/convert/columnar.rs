//! The columnar file of one object: Parquet or ORC, as `OutputFormatConfiguration.Serializer`
//! says ([`Output`]), behind one `new` / `write` / `finish`.

use arrow_array::ArrayRef;
use arrow_schema::{ArrowError, SchemaRef};

use super::orc_writer::OrcFile;
use super::parquet_writer::ParquetFile;
use super::settings::Output;

/// A writer's error.
#[derive(Debug, thiserror::Error)]
pub enum WriterError {
    /// The Parquet writer's.
    #[error(transparent)]
    Parquet(#[from] parquet::errors::ParquetError),
    /// The ORC writer's.
    #[error(transparent)]
    Orc(#[from] hydrant_orc::OrcError),
    /// Arrow's (building the arrays).
    #[error(transparent)]
    Arrow(#[from] ArrowError),
    /// The writer thread stopped (on an error of its own, which its result carries).
    #[error("the conversion's writer thread stopped")]
    Stopped,
}

/// A Parquet or ORC file being written into memory.
#[derive(Debug)]
pub enum ColumnarFile {
    /// `ParquetSerDe` (boxed: its writer state is twice the ORC file's).
    Parquet(Box<ParquetFile>),
    /// `OrcSerDe`.
    Orc(OrcFile),
}

impl ColumnarFile {
    /// A file of `schema` in the serializer's format.
    ///
    /// # Errors
    /// The writer's error.
    pub fn new(schema: SchemaRef, output: &Output) -> Result<ColumnarFile, WriterError> {
        Ok(match output {
            Output::Parquet(o) => ColumnarFile::Parquet(Box::new(ParquetFile::new(schema, o)?)),
            Output::Orc(o) => ColumnarFile::Orc(OrcFile::new(schema, o)?),
        })
    }

    /// Appends rows: one array per column, in the schema's order.
    ///
    /// # Errors
    /// The writer's error.
    pub fn write(&mut self, columns: Vec<ArrayRef>) -> Result<(), WriterError> {
        match self {
            ColumnarFile::Parquet(f) => f.write(columns)?,
            ColumnarFile::Orc(f) => f.write(columns)?,
        }
        Ok(())
    }

    /// The finished file's bytes.
    ///
    /// # Errors
    /// The writer's error.
    pub fn finish(self) -> Result<Vec<u8>, WriterError> {
        Ok(match self {
            ColumnarFile::Parquet(f) => f.finish()?,
            ColumnarFile::Orc(f) => f.finish()?,
        })
    }
}
