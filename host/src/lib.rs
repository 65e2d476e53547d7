#![recursion_limit = "256"]
//! Natrium: a NATS-protocol broker.
//!
//! Layers, and dependencies only point down (`tests::layers` checks the imports):
//!
//! ```text
//! 4  I/O and tasks   server/  listeners, connection tasks, lifecycle, reload
//!                    system/  $SYS events and requests      monitor/  HTTP endpoints
//! 3  message path    path/    one file per stage: connect, publish, subscribe, permit, map,
//!                             plugins, route, store, deliver — on a connection's Session
//! 2  domain state    client/  Client, Subscription, outbound buffers, internal clients
//!                    account/ accounts, users, exports/imports, limits, operator mode
//!                    auth/    NKeys, JWTs, creds, permissions, passwords
//!                    jetstream/ streams and stores      plugin/  the Wasm host     tls
//! 1  pure leaves     proto/ subject/ config/ options cli util timefmt logging
//! ```
//!
//! `tool/` sits beside the server at the top: `natrium plugin check|run|bench`, the plugin
//! author's commands, built on `plugin/` (the same loading and sandbox as the broker).

pub mod account;
pub mod auth;
pub mod cli;
pub mod client;
pub mod config;
pub mod jetstream;
pub mod logging;
pub mod monitor;
pub mod options;
pub mod path;
pub mod plugin;
pub mod proto;
pub mod server;
pub mod subject;
pub mod system;
pub mod timefmt;
pub mod tls;
pub mod tool;
pub mod util;

#[cfg(test)]
mod layers;
