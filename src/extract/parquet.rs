//! One parquet file per page, encoded in memory (a page is small) and handed to a sink.

use std::sync::OnceLock;

use arrow::array::RecordBatch;
use parquet::arrow::ArrowSchemaConverter;
use parquet::arrow::arrow_writer::{ArrowWriter, ArrowWriterOptions};
use parquet::basic::Compression;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};

/// The key-value metadata key that holds the data contract's version.
pub const SCHEMA_VERSION_KEY: &str = "flixops.schema_version";

/// Writer settings for a file of about a hundred rows, made once per process.
///
/// No dictionaries: a page's values are mostly distinct, and a dictionary page per column made
/// the files larger and slower to write. Statistics per column chunk (min/max for readers that
/// prune files), not per page: a file is one page. No embedded arrow schema: the parquet types
/// (UTC-adjusted timestamps, UTF-8 strings, a list of strings) already say everything. The contract's
/// version goes into the key-value metadata, so a reader can tell v1 files (one `referenced_tweet_id`)
/// from v2.
fn options() -> ArrowWriterOptions {
    static OPTIONS: OnceLock<ArrowWriterOptions> = OnceLock::new();
    OPTIONS
        .get_or_init(|| {
            let properties = WriterProperties::builder()
                .set_compression(Compression::SNAPPY)
                .set_dictionary_enabled(false)
                .set_statistics_enabled(EnabledStatistics::Chunk)
                .set_created_by(concat!("flixops ", env!("CARGO_PKG_VERSION")).to_string())
                .set_key_value_metadata(Some(vec![KeyValue::new(
                    SCHEMA_VERSION_KEY.to_string(),
                    super::tweet::SCHEMA_VERSION.to_string(),
                )]))
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

#[cfg(test)]
mod tests {
    use parquet::file::reader::{FileReader, SerializedFileReader};

    use super::*;

    #[test]
    fn a_file_says_which_contract_version_it_holds() {
        let empty = RecordBatch::new_empty(super::super::tweet::schema());
        let file = SerializedFileReader::new(bytes::Bytes::from(encode(&empty).unwrap())).unwrap();
        let metadata = file.metadata().file_metadata().key_value_metadata().cloned().unwrap_or_default();
        let version = metadata.iter().find(|kv| kv.key == SCHEMA_VERSION_KEY).and_then(|kv| kv.value.as_deref());
        assert_eq!(version, Some("2"));
    }
}
