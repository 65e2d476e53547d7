#![recursion_limit = "256"]
//! Natrium: a NATS-protocol broker.
//!
//! Layout, one module per concept:
//! - `proto`: the client protocol as a pure parser over bytes, plus the encoders;
//! - `subject`: subject validation and the subscription index (sublist);
//! - `config` / `cli`: nats-server's configuration-file format and flags → [`options::Options`];
//! - `auth`: NKeys, NATS JWTs, creds files, permissions, passwords (pure building blocks);
//! - `jetstream`: JetStream; so far only the stream storage layer, the API arrives with the JetStream issue;
//! - `server`: sockets, connections, routing, outbound buffering, shutdown;
//! - `monitor`: the HTTP monitoring endpoints;
//! - `plugin`: the sandboxed WebAssembly plugin host (authorizers, mappers, transformers);
//! - `tls`, `logging`: rustls setup, and log lines in nats-server's shape.

pub mod account;
pub mod auth;
pub mod cli;
pub mod config;
pub mod jetstream;
pub mod logging;
pub mod monitor;
pub mod options;
pub mod plugin;
pub mod proto;
pub mod server;
pub mod subject;
pub mod timefmt;
pub mod tls;
