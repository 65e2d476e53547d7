//! JetStream: persistent streams on top of core NATS.
//!
//! Only the storage layer exists so far ([`store`]); the `$JS.API` surface, streams and
//! consumers arrive with the JetStream issue (#5), and nothing calls into this module yet.

pub mod store;
