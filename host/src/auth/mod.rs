//! Authentication and authorization building blocks, pure and unit-tested;
//! the server's connection path calls them.
//!
//! - [`nkeys`]: public-key roles, nonces, CONNECT `sig` verification;
//! - [`jwt`]: NATS JWT (v2) decode/verify/encode, operator → account → user
//!   chain validation, user permission/limit resolution;
//! - [`creds`]: `.creds` files;
//! - [`permissions`]: publish/subscribe allow/deny, queue permissions,
//!   `allow_responses`, per-connection decision cache;
//! - [`password`]: plain and bcrypt passwords/tokens;
//! - [`callout`]: auth callout (nats-server 2.10): the signed, optionally sealed request
//!   and the checks of the service's answer;
//! - [`backoff`]: the per-address table behind `failure_backoff` (not pure: a clock and a
//!   lock; layer 2).

pub mod backoff;
pub mod callout;
pub mod creds;
pub mod identity;
pub mod jwt;
pub mod nkeys;
pub mod password;
pub mod permissions;

pub use creds::{Creds, CredsError};
pub use jwt::{AccountClaims, AuthorizedUser, ClientInfo, JwtError, OperatorClaims, UserClaims};
pub use nkeys::{KeyKind, NkeyError};
pub use password::{Password, PasswordError};
pub use permissions::{ConnPermissions, PermissionError, PermissionSpec, Permissions};

#[cfg(test)]
mod interop_tests;
