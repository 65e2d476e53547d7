//! The CONNECT options, decoded the way nats-server's `json.Unmarshal` into
//! its `clientOpts` does.

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

/// Options a client sends in CONNECT. String fields are `None` when absent
/// or `null` (nats-server treats those like `""`). Missing fields take nats-server's
/// defaults (`verbose`, `pedantic` and `echo` are **true** — verified: a
/// client that sends `CONNECT {}` gets `+OK` after every op and
/// `-ERR 'Invalid Publish Subject'` for `PUB foo.*`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ConnectOptions {
    pub verbose: bool,
    pub pedantic: bool,
    pub tls_required: bool,
    pub echo: bool,
    pub headers: bool,
    pub no_responders: bool,
    pub name: Option<String>,
    pub lang: Option<String>,
    pub version: Option<String>,
    /// 0 (original) or 1 (dynamic INFO); anything else is rejected by the
    /// server layer with `invalid client protocol`.
    pub protocol: i64,
    pub user: Option<String>,
    pub pass: Option<String>,
    pub auth_token: Option<String>,
    pub jwt: Option<String>,
    pub nkey: Option<String>,
    pub sig: Option<String>,
    pub account: Option<String>,
    pub new_account: bool,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            verbose: true,
            pedantic: true,
            tls_required: false,
            echo: true,
            headers: false,
            no_responders: false,
            name: None,
            lang: None,
            version: None,
            protocol: 0,
            user: None,
            pass: None,
            auth_token: None,
            jwt: None,
            nkey: None,
            sig: None,
            account: None,
            new_account: false,
        }
    }
}

/// CONNECT argument that is not acceptable JSON for the options. nats-server
/// closes the connection **without sending anything** in that case
/// (verified: `CONNECT x`, `CONNECT {`, `CONNECT {"verbose":"x"}`, `CONNECT`).
#[derive(Debug, thiserror::Error)]
#[error("invalid CONNECT JSON: {0}")]
pub struct ConnectError(#[from] serde_json::Error);

impl ConnectOptions {
    /// Decodes the raw argument of [`super::ClientOp::Connect`].
    ///
    /// Like Go's `encoding/json`: keys match field names case-insensitively
    /// (an exact match wins), unknown keys are ignored, `null` leaves a
    /// field at its default, a top-level `null` gives all defaults, and a
    /// wrong type or anything but an object is an error.
    pub fn parse(json: &[u8]) -> Result<ConnectOptions, ConnectError> {
        let value: Value = serde_json::from_slice(json)?;
        let mut opts = ConnectOptions::default();
        let map = match value {
            Value::Null => return Ok(opts),
            Value::Object(map) => map,
            _ => {
                return Err(ConnectError(serde::de::Error::custom(
                    "CONNECT options must be a JSON object",
                )))
            }
        };
        for field in FIELDS {
            // An exact key wins over a case-folded one, as in Go.
            let v = map.get(*field).or_else(|| {
                map.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(field))
                    .map(|(_, v)| v)
            });
            if let Some(v) = v.filter(|v| !v.is_null()) {
                opts.set(field, v)?;
            }
        }
        Ok(opts)
    }

    fn set(&mut self, field: &str, v: &Value) -> Result<(), ConnectError> {
        fn get<T: DeserializeOwned>(v: &Value) -> Result<T, ConnectError> {
            Ok(T::deserialize(v)?)
        }
        match field {
            "verbose" => self.verbose = get(v)?,
            "pedantic" => self.pedantic = get(v)?,
            "tls_required" => self.tls_required = get(v)?,
            "echo" => self.echo = get(v)?,
            "headers" => self.headers = get(v)?,
            "no_responders" => self.no_responders = get(v)?,
            "name" => self.name = get(v)?,
            "lang" => self.lang = get(v)?,
            "version" => self.version = get(v)?,
            "protocol" => self.protocol = get(v)?,
            "user" => self.user = get(v)?,
            "pass" => self.pass = get(v)?,
            "auth_token" => self.auth_token = get(v)?,
            "jwt" => self.jwt = get(v)?,
            "nkey" => self.nkey = get(v)?,
            "sig" => self.sig = get(v)?,
            "account" => self.account = get(v)?,
            "new_account" => self.new_account = get(v)?,
            _ => {}
        }
        Ok(())
    }
}

const FIELDS: &[&str] = &[
    "verbose",
    "pedantic",
    "tls_required",
    "echo",
    "headers",
    "no_responders",
    "name",
    "lang",
    "version",
    "protocol",
    "user",
    "pass",
    "auth_token",
    "jwt",
    "nkey",
    "sig",
    "account",
    "new_account",
];
