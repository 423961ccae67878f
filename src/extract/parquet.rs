//! One parquet file per page, encoded in memory (a page is small) and handed to a sink.

use arrow::array::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

/// Encodes a page's rows as a snappy-compressed parquet file.
pub fn encode(batch: &RecordBatch) -> Result<Vec<u8>, parquet::errors::ParquetError> {
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_created_by(concat!("flixops ", env!("CARGO_PKG_VERSION")).to_string())
        .build();
    let mut writer = ArrowWriter::try_new(Vec::with_capacity(64 * 1024), batch.schema(), Some(props))?;
    writer.write(batch)?;
    writer.into_inner()
}
