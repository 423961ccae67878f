//! The local target: a directory lake and an embedded DuckDB warehouse. Everything that speaks to
//! DuckDB lives here, so the `local` cargo feature is this one `mod` line in lib.rs.

pub mod canary;
pub mod doctor;
pub mod models;
pub mod pipeline;
pub mod report;
mod warehouse;

pub use warehouse::{LoadReport, LocalError, Warehouse};
