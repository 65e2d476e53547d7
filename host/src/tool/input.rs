//! What `natrium plugin run|bench` feeds a plugin: a published message (mappers and
//! transformers) or a CONNECT request (authorizers), from flags or from a JSON/NDJSON file.
//!
//! One JSON object per input, with the flags' names (`-` in a flag is `_` in JSON):
//!
//! ```text
//! {"subject": "orders.new", "reply": "_INBOX.1", "headers": {"K": "V"}, "payload": "{...}",
//!  "account": "A"}
//! {"user": "alice", "pass": "secret", "token": "...", "jwt": "...", "nkey": "U...",
//!  "client_ip": "10.0.0.7", "tls": {"subject": "CN=alice", "sans": [], "fingerprint": ""}}
//! ```

use bytes::Bytes;
use serde::Deserialize;

use super::args::{switch, valued, Args, Flag};
use super::ToolError;
use crate::plugin::{ConnectRequest, Message, TlsIdentity};

/// The account a message is published in when none is given (the default account).
pub(crate) const DEFAULT_ACCOUNT: &str = "$G";

/// The flags that describe one input.
pub(crate) const FLAGS: &[Flag] = &[
    valued("subject"),
    valued("reply"),
    valued("header"),
    valued("payload"),
    valued("payload-file"),
    valued("account"),
    valued("user"),
    valued("pass"),
    valued("token"),
    valued("jwt"),
    valued("nkey"),
    switch("nkey-verified"),
    valued("name"),
    valued("lang"),
    valued("client-version"),
    valued("client-ip"),
    valued("client-port"),
    valued("tls-subject"),
    valued("tls-san"),
    valued("tls-fingerprint"),
];

/// A message or a CONNECT request; which fields matter depends on the world.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Input {
    // A message.
    pub subject: Option<String>,
    pub reply: Option<String>,
    #[serde(default)]
    pub headers: Headers,
    pub payload: Option<String>,
    pub account: Option<String>,
    // A CONNECT request.
    pub user: Option<String>,
    pub pass: Option<String>,
    #[serde(alias = "auth_token")]
    pub token: Option<String>,
    pub jwt: Option<String>,
    pub nkey: Option<String>,
    #[serde(default)]
    pub nkey_verified: bool,
    pub name: Option<String>,
    pub lang: Option<String>,
    #[serde(alias = "version")]
    pub client_version: Option<String>,
    pub client_ip: Option<String>,
    pub client_port: Option<u16>,
    pub tls: Option<Tls>,
    /// `--payload-file`: raw bytes (wins over `payload`).
    #[serde(skip)]
    pub payload_bytes: Option<Vec<u8>>,
}

/// Headers as a JSON object (`{"K": "V"}`) or, to repeat a name, a list of pairs.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(untagged)]
pub(crate) enum Headers {
    #[default]
    None,
    Map(std::collections::BTreeMap<String, String>),
    Pairs(Vec<(String, String)>),
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Tls {
    #[serde(default)]
    pub subject: String,
    #[serde(default)]
    pub sans: Vec<String>,
    #[serde(default)]
    pub fingerprint: String,
}

impl Input {
    /// The input the flags describe.
    pub fn from_flags(a: &Args) -> Result<Input, ToolError> {
        let s = |name: &str| a.value(name).map(String::from);
        let headers = a
            .values("header")
            .into_iter()
            .map(|h| {
                h.split_once(':')
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                    .ok_or_else(|| ToolError::Usage(format!("--header {h:?}: expected NAME:VALUE")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let payload_bytes = a
            .value("payload-file")
            .map(|f| {
                std::fs::read(f).map_err(|e| ToolError::Input(format!("--payload-file {f}: {e}")))
            })
            .transpose()?;
        let client_port = a
            .number("client-port")?
            .map(|p| {
                u16::try_from(p).map_err(|_| ToolError::Usage("--client-port: not a port".into()))
            })
            .transpose()?;
        let tls = a
            .any(&["tls-subject", "tls-san", "tls-fingerprint"])
            .then(|| Tls {
                subject: s("tls-subject").unwrap_or_default(),
                sans: a.values("tls-san").into_iter().map(String::from).collect(),
                fingerprint: s("tls-fingerprint").unwrap_or_default(),
            });
        Ok(Input {
            subject: s("subject"),
            reply: s("reply"),
            headers: if headers.is_empty() {
                Headers::None
            } else {
                Headers::Pairs(headers)
            },
            payload: s("payload"),
            account: s("account"),
            user: s("user"),
            pass: s("pass"),
            token: s("token"),
            jwt: s("jwt"),
            nkey: s("nkey"),
            nkey_verified: a.has("nkey-verified"),
            name: s("name"),
            lang: s("lang"),
            client_version: s("client-version"),
            client_ip: s("client-ip"),
            client_port,
            tls,
            payload_bytes,
        })
    }

    /// Every input in `text`: one JSON object, or several (NDJSON, one per line).
    pub fn parse_many(text: &str) -> Result<Vec<Input>, ToolError> {
        let mut out = Vec::new();
        let stream = serde_json::Deserializer::from_str(text).into_iter::<Input>();
        for (i, item) in stream.enumerate() {
            out.push(item.map_err(|e| ToolError::Input(format!("input {}: {e}", i + 1)))?);
        }
        if out.is_empty() {
            return Err(ToolError::Input("no input in the file".into()));
        }
        Ok(out)
    }

    /// The account the message is published in.
    pub fn account(&self) -> &str {
        self.account.as_deref().unwrap_or(DEFAULT_ACCOUNT)
    }

    /// The published message (a subject is required).
    pub fn message(&self) -> Result<Message, ToolError> {
        let subject = self.subject.clone().ok_or_else(|| {
            ToolError::Usage("a message needs a subject (--subject, or \"subject\" in JSON)".into())
        })?;
        let payload = match (&self.payload_bytes, &self.payload) {
            (Some(b), _) => Bytes::from(b.clone()),
            (None, Some(p)) => Bytes::from(p.clone().into_bytes()),
            (None, None) => Bytes::new(),
        };
        let headers = match &self.headers {
            Headers::None => Vec::new(),
            Headers::Map(m) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            Headers::Pairs(p) => p.clone(),
        };
        Ok(Message {
            subject,
            reply: self.reply.clone(),
            headers,
            payload,
        })
    }

    /// The CONNECT request, as the broker would hand it to the authorizer.
    pub fn connect(&self) -> ConnectRequest {
        ConnectRequest {
            user: self.user.clone(),
            pass: self.pass.clone(),
            auth_token: self.token.clone(),
            jwt: self.jwt.clone(),
            nkey: self.nkey.clone(),
            nkey_verified: self.nkey_verified,
            name: self.name.clone(),
            lang: self.lang.clone(),
            version: self.client_version.clone(),
            client_ip: self.client_ip.clone().unwrap_or_else(|| "127.0.0.1".into()),
            client_port: self.client_port.unwrap_or(0),
            server_name: "natrium-plugin-run".into(),
            server_id: String::new(),
            tls: self.tls.as_ref().map(|t| TlsIdentity {
                subject: t.subject.clone(),
                sans: t.sans.clone(),
                fingerprint: t.fingerprint.clone(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_object_or_one_per_line() -> Result<(), ToolError> {
        let one = Input::parse_many("{\n  \"subject\": \"a.b\",\n  \"payload\": \"hi\"\n}\n")?;
        assert_eq!(one.len(), 1);
        let m = one[0].message()?;
        assert_eq!((m.subject.as_str(), &m.payload[..]), ("a.b", &b"hi"[..]));
        assert_eq!(one[0].account(), "$G");

        let many = Input::parse_many(
            "{\"user\":\"alice\",\"pass\":\"secret\"}\n{\"auth_token\":\"t\",\"client_ip\":\"10.0.0.7\"}\n",
        )?;
        assert_eq!(many.len(), 2);
        assert_eq!(many[0].connect().user.as_deref(), Some("alice"));
        let second = many[1].connect();
        assert_eq!(second.auth_token.as_deref(), Some("t"));
        assert_eq!(second.client_ip, "10.0.0.7");
        Ok(())
    }

    #[test]
    fn headers_as_an_object_or_as_pairs() -> Result<(), ToolError> {
        let inputs = Input::parse_many(
            r#"{"subject":"s","headers":{"B":"2","A":"1"}}
               {"subject":"s","headers":[["K","1"],["K","2"]]}"#,
        )?;
        let fields = |i: usize| inputs[i].message().map(|m| m.headers);
        assert_eq!(
            fields(0)?,
            [("A".into(), "1".into()), ("B".into(), "2".into())]
        );
        assert_eq!(
            fields(1)?,
            [("K".into(), "1".into()), ("K".into(), "2".into())]
        );
        Ok(())
    }

    #[test]
    fn mistakes_say_where() {
        let err = |text: &str| Input::parse_many(text).err().map(|e| e.to_string());
        assert!(err("{\"subjct\":\"a\"}").is_some_and(|e| e.starts_with("input 1: unknown field")));
        assert!(err("{\"subject\":\"a\"}\n{oops}").is_some_and(|e| e.starts_with("input 2:")));
        assert_eq!(err("  \n").as_deref(), Some("no input in the file"));
        let no_subject = Input::default().message().err().map(|e| e.to_string());
        assert!(no_subject.is_some_and(|e| e.contains("--subject")));
    }
}
