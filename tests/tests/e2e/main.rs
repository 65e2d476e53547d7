//! End-to-end tests for natrium. Every test here passes against the
//! reference nats-server:
//!
//! ```text
//! NATRIUM_BIN=/usr/sbin/nats-server cargo test -p natrium-tests
//! ```
//!
//! Without `NATRIUM_BIN` the `natrium` binary next to the test executable is
//! used (build it with `cargo build -p natrium`, or run `cargo test` at the
//! workspace root).

mod accounts;
mod auth;
mod auth_callout;
mod auth_failures;
mod cli;
mod differential;
mod hostile;
mod javascript;
mod jetstream;
mod jetstream_consumers;
mod jetstream_details;
mod jetstream_import;
mod jetstream_integrity;
mod jetstream_more;
mod js_kv;
mod js_objstore;
mod js_push;
mod js_retention;
mod lifecycle;
mod limits;
mod mappings;
mod monitor;
mod operator;
mod plugin_audit;
mod plugin_js;
mod plugin_limits;
mod plugin_loading;
mod plugin_new;
mod plugin_tools;
mod plugin_trust;
mod plugins;
mod pubsub;
mod python;
mod raw;
mod reload;
mod resilience;
mod system;
mod tls;
