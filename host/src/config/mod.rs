//! nats-server's configuration-file format → [`Options`].
//!
//! Two stages, so that later features can read their own blocks from the same file:
//! [`parse_tree`] / [`parse_tree_str`] give the generic, positioned value tree ([`Map`]);
//! [`apply`] maps the keys natrium understands onto [`Options`]. [`load`] and [`parse_str`]
//! do both. Keys nats-server knows but natrium does not implement yet are accepted and listed
//! in `Options::unsupported`; keys nobody knows are an error, as in nats-server.
//!
//! Positions are `file:line:column`, 1-based. (nats-server's column is 0-based on the
//! first line and 1-based after it; natrium is consistently 1-based.)

mod accounts;
mod apply;
pub mod links;
mod parser;
mod value;

use std::path::{Path, PathBuf};

use crate::options::{LinkKind, Options};

pub use apply::{apply, parse_duration, validate, DurationError};
pub(crate) use parser::size_multiplier;
pub use value::{Entry, Kind, Map, Pos, Value};

/// Everything that can go wrong reading a configuration file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("error opening config file {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{pos}: error parsing include file '{name}': {source}")]
    Include {
        pos: Pos,
        name: String,
        #[source]
        source: Box<ConfigError>,
    },
    #[error("{pos}: {msg}")]
    Syntax { pos: Pos, msg: String },
    #[error("{pos}: variable reference for '{name}' can not be found")]
    Variable { pos: Pos, name: String },
    #[error("{pos}: unknown field \"{key}\"")]
    UnknownField { pos: Pos, key: String },
    #[error("{pos}: invalid value for \"{key}\": {msg}")]
    Invalid { pos: Pos, key: String, msg: String },
    /// A combination of settings that cannot work (checked after flags are merged in).
    #[error("{0}")]
    Conflict(String),
    /// More than one plugin has `role: authorizer`; natrium asks exactly one.
    #[error("{}", crate::options::multiple_authorizers_message(names))]
    MultipleAuthorizers { names: Vec<String> },
    /// `account` imports `subject` from `from`, an account that is not configured.
    #[error("Error adding {kind} import {subject:?}: account {from:?} not found")]
    ImportAccountNotFound {
        account: String,
        kind: LinkKind,
        subject: String,
        from: String,
    },
    /// `account` imports `subject` from `from`, and no export of `from` allows it.
    #[error("Error adding {kind} import {subject:?}: {kind} import not authorized")]
    ImportNotAuthorized {
        account: String,
        kind: LinkKind,
        subject: String,
        from: String,
    },
}

/// Reads `path`, applies it over `Options::default()`, and records `config_file`.
pub fn load(path: &Path) -> Result<Options, ConfigError> {
    let map = parse_tree(path)?;
    let mut opts = Options {
        config_file: Some(path.to_path_buf()),
        ..Options::default()
    };
    apply(&map, &mut opts)?;
    Ok(opts)
}

/// Parses `text` as if it were the file `origin` (used for positions and to resolve
/// includes) and applies it over `Options::default()`. `config_file` is left unset.
pub fn parse_str(text: &str, origin: &Path) -> Result<Options, ConfigError> {
    let map = parse_tree_str(text, origin)?;
    let mut opts = Options::default();
    apply(&map, &mut opts)?;
    Ok(opts)
}

/// Reads and parses `path` into the generic value tree (includes and variables resolved).
pub fn parse_tree(path: &Path) -> Result<Map, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    parse_tree_str(&text, path)
}

/// Parses `text` (as the file `origin`) into the generic value tree.
pub fn parse_tree_str(text: &str, origin: &Path) -> Result<Map, ConfigError> {
    parser::parse_document(text, origin, 0, 0)
}

#[cfg(test)]
mod tests;
