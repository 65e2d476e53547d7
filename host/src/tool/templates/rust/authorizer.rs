//! {{name}}: a natrium authorizer. Admits a client whose CONNECT token is one of the
//! configured tokens, into that token's account, with publish and subscribe rights on the
//! account's own subjects; refuses everyone else, saying why.
//!
//! Configuration: `{"tokens": {"s3cret": "ACME"}}`.

use std::collections::BTreeMap;

use natrium_plugin_sdk::prelude::*;
use serde::Deserialize;

#[derive(Deserialize)]
struct Settings {
    /// Token → account.
    #[serde(default)]
    tokens: BTreeMap<String, String>,
}

/// Parsed once per instance, on first use.
static SETTINGS: Config<Settings> = Config::new();

#[authorizer]
fn authorize(req: ConnectRequest) -> Decision {
    let settings = match SETTINGS.get() {
        Ok(s) => s,
        // Never unwrap configuration: a deny with the reason is logged by the broker.
        Err(e) => return Decision::deny(format!("{{name}} misconfigured: {e}")),
    };
    let Some(token) = req.auth_token.as_deref() else {
        return Decision::deny("no token");
    };
    match settings.tokens.get(token) {
        Some(account) => {
            let own = format!("{}.>", account.to_lowercase());
            info!(account = account.as_str(); "admitted");
            Decision::allow(
                Allowed::new(account.as_str(), req.user.unwrap_or_else(|| "token".into()))
                    .publish(Permission::allow([own.as_str()]))
                    .subscribe(Permission::allow([own.as_str(), "_INBOX.>"]))
                    .allow_responses(1, 0),
            )
        }
        None => Decision::deny("unknown token"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use natrium_plugin_sdk::testing;

    fn connect(token: Option<&str>) -> ConnectRequest {
        ConnectRequest {
            user: Some("alice".into()),
            pass: None,
            auth_token: token.map(String::from),
            jwt: None,
            nkey: None,
            nkey_verified: false,
            name: None,
            lang: None,
            version: None,
            client_ip: "127.0.0.1".into(),
            client_port: 50000,
            server_name: "test".into(),
            server_id: "test".into(),
            tls: None,
        }
    }

    #[test]
    fn a_known_token_is_admitted_into_its_account() {
        testing::set_config(r#"{"tokens": {"s3cret": "ACME"}}"#);
        match authorize(connect(Some("s3cret"))) {
            Decision::Allow(a) => {
                assert_eq!(a.account, "ACME");
                assert_eq!(a.user, "alice");
                assert_eq!(a.publish.allow, ["acme.>"]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn others_are_refused_with_a_reason() {
        testing::set_config(r#"{"tokens": {"s3cret": "ACME"}}"#);
        assert_eq!(authorize(connect(Some("guess"))), Decision::deny("unknown token"));
        assert_eq!(authorize(connect(None)), Decision::deny("no token"));
    }
}
