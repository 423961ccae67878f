//! The one integration-test binary (ripgrep's `tests/` layout): every area is a module, so DuckDB and
//! the AWS SDKs link once, and one moto and one fakesnow serve every test (each test uses its own
//! account, bucket or database). Run one area with `cargo test --test integration extract::`.

mod common;

mod aws_deploy;
mod cli;
mod exports;
mod extract;
mod extract_cli;
mod init;
mod local_pipeline;
mod snowflake_deploy;
