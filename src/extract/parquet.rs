//! One parquet file per page, encoded in memory (a page is small) and handed to a sink.

use std::sync::OnceLock;

use arrow::array::RecordBatch;
use parquet::arrow::ArrowSchemaConverter;
use parquet::arrow::arrow_writer::{ArrowWriter, ArrowWriterOptions};
use parquet::basic::Compression;
use parquet::file::properties::{EnabledStatistics, WriterProperties};

/// Writer settings for a file of about a hundred rows, made once per process.
///
/// No dictionaries: a page's values are mostly distinct, and a dictionary page per column made
/// the files larger and slower to write. Statistics per column chunk (min/max for readers that
/// prune files), not per page: a file is one page. No embedded arrow schema: the parquet types
/// (UTC-adjusted timestamps, UTF-8 strings, a list of strings) already say everything.
fn options() -> ArrowWriterOptions {
    static OPTIONS: OnceLock<ArrowWriterOptions> = OnceLock::new();
    OPTIONS
        .get_or_init(|| {
            let properties = WriterProperties::builder()
                .set_compression(Compression::SNAPPY)
                .set_dictionary_enabled(false)
                .set_statistics_enabled(EnabledStatistics::Chunk)
                .set_created_by(concat!("flixops ", env!("CARGO_PKG_VERSION")).to_string())
                .build();
            let schema = ArrowSchemaConverter::new()
                .with_coerce_types(properties.coerce_types())
                .convert(&super::tweet::schema())
                .expect("the contract schema has parquet types");
            ArrowWriterOptions::new()
                .with_skip_arrow_metadata(true)
                .with_parquet_schema(schema)
                .with_properties(properties)
        })
        .clone()
}

/// Encodes a page's rows as a snappy-compressed parquet file.
pub fn encode(batch: &RecordBatch) -> Result<Vec<u8>, parquet::errors::ParquetError> {
    let mut writer = ArrowWriter::try_new_with_options(Vec::with_capacity(64 * 1024), batch.schema(), options())?;
    writer.write(batch)?;
    writer.into_inner()
}
