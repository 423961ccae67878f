//! The one integration-test binary (ripgrep's `tests/` layout): every area is a module, so DuckDB and
//! the AWS SDKs link once, and one moto and one fakesnow serve every test (each test uses its own
//! account, bucket or database). Run one area with `cargo test --test integration extract::`.
//! `--no-default-features` runs the cloud-only build's tests: what needs DuckDB is left out, and
//! `cloud_only` checks that the local commands say how to get it.

mod common;

mod aws_deploy;
mod ci_workflows;
mod cli;
#[cfg(not(feature = "local"))]
mod cloud_only;
mod exports;
mod extract;
mod extract_cli;
mod flow;
mod init;
#[cfg(feature = "local")]
mod local_pipeline;
#[cfg(feature = "local")]
mod report;
mod snowflake_deploy;
