//! repod: a package repository daemon whose distribution families and
//! scanner policies are sandboxed WebAssembly plugins.
//!
//! See ARCHITECTURE.md at the repository root for the map of this crate.

pub mod advisories;
pub mod api;
pub mod api_client;
pub mod audit;
pub mod blobs;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod db;
pub mod documents;
pub mod feeds;
pub mod http;
pub mod ingest;
pub mod lifecycle;
pub mod metrics;
pub mod plugins;
pub mod publish;
pub mod scan;
pub mod server;
pub mod signatures;
pub mod signing;
pub mod tokens;
pub mod upload_client;
