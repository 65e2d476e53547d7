//! Bindings generated from `wit/natrium-plugin.wit`, one module per world, and the
//! conversions between the generated types and natrium's own (`types.rs`). Nothing outside
//! `plugin/` sees a generated type.

use super::types;

/// The `authorizer` world. Its `host` interface is the one the other worlds reuse.
pub(crate) mod authorizer {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "authorizer",
    });
}

/// The `mapper` world.
pub(crate) mod mapper {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "mapper",
        with: { "natrium:plugin/host": super::authorizer::natrium::plugin::host },
    });
}

/// The `transformer` world.
pub(crate) mod transformer {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "transformer",
        with: { "natrium:plugin/host": super::authorizer::natrium::plugin::host },
    });
}

/// The `batch-transformer` world (same `host` and `types` as the others).
pub(crate) mod batch_transformer {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "batch-transformer",
        with: {
            "natrium:plugin/host": super::authorizer::natrium::plugin::host,
            "natrium:plugin/types": super::transformer::natrium::plugin::types,
        },
    });
}

/// The optional `configured` world: a component of any world above may also export
/// `lifecycle`, which the pool then calls once per new instance.
pub(crate) mod configured {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "configured",
        with: { "natrium:plugin/host": super::authorizer::natrium::plugin::host },
    });
}

/// The optional `kv` import (world `kv-reader`): linked always, usable only with a grant.
pub(crate) mod kv_reader {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "kv-reader",
        with: { "natrium:plugin/host": super::authorizer::natrium::plugin::host },
    });
}

pub(crate) use authorizer::natrium::plugin::host as wit_host;
pub(crate) use batch_transformer::natrium::plugin::pending as wit_pending;
pub(crate) use kv_reader::natrium::plugin::kv as wit_kv;

use authorizer::exports::natrium::plugin::authorization as wa;
use transformer::exports::natrium::plugin::transformation as wt;
use transformer::natrium::plugin::types as wty;

/// The export each world must have, as the component model names it.
pub(crate) const AUTHORIZATION_EXPORT: &str = "natrium:plugin/authorization@0.1.0";
pub(crate) const MAPPING_EXPORT: &str = "natrium:plugin/mapping@0.1.0";
pub(crate) const TRANSFORMATION_EXPORT: &str = "natrium:plugin/transformation@0.1.0";
pub(crate) const BATCH_TRANSFORMATION_EXPORT: &str = "natrium:plugin/batch-transformation@0.1.0";
/// The optional export of every world.
pub(crate) const LIFECYCLE_EXPORT: &str = "natrium:plugin/lifecycle@0.1.0";
/// The import that needs a binding's `kv` grant.
pub(crate) const KV_IMPORT: &str = "natrium:plugin/kv@0.1.0";

impl From<&types::ConnectRequest> for wa::ConnectRequest {
    fn from(r: &types::ConnectRequest) -> Self {
        wa::ConnectRequest {
            user: r.user.clone(),
            pass: r.pass.clone(),
            auth_token: r.auth_token.clone(),
            jwt: r.jwt.clone(),
            nkey: r.nkey.clone(),
            nkey_verified: r.nkey_verified,
            name: r.name.clone(),
            lang: r.lang.clone(),
            version: r.version.clone(),
            client_ip: r.client_ip.clone(),
            client_port: r.client_port,
            server_name: r.server_name.clone(),
            server_id: r.server_id.clone(),
            tls: r.tls.as_ref().map(|t| wa::TlsIdentity {
                subject: t.subject.clone(),
                sans: t.sans.clone(),
                fingerprint: t.fingerprint.clone(),
            }),
        }
    }
}

fn permission(p: wa::Permission) -> types::Permission {
    types::Permission {
        allow: p.allow,
        deny: p.deny,
    }
}

impl From<wa::Decision> for types::Decision {
    fn from(d: wa::Decision) -> Self {
        match d {
            wa::Decision::Deny(reason) => types::Decision::Deny(types::reason(reason)),
            wa::Decision::Allow(a) => types::Decision::Allow(types::Allowed {
                account: a.account,
                user: a.user,
                publish: permission(a.publish),
                subscribe: permission(a.subscribe),
                allow_responses: a.allow_responses.map(|r| types::ResponsePermission {
                    max_msgs: r.max_msgs,
                    expires_ms: r.expires_ms,
                }),
                limits: types::Limits {
                    max_subscriptions: a.limits.max_subscriptions,
                    max_payload: a.limits.max_payload,
                },
                expires_at: a.expires_at,
            }),
        }
    }
}

impl From<&types::Message> for wty::Message {
    fn from(m: &types::Message) -> Self {
        wty::Message {
            subject: m.subject.clone(),
            reply: m.reply.clone(),
            headers: m
                .headers
                .iter()
                .map(|(name, value)| wty::Header {
                    name: name.clone(),
                    value: value.clone(),
                })
                .collect(),
            payload: m.payload.to_vec(),
        }
    }
}

impl From<wty::Message> for types::Message {
    fn from(m: wty::Message) -> Self {
        types::Message {
            subject: m.subject,
            reply: m.reply,
            headers: m.headers.into_iter().map(|h| (h.name, h.value)).collect(),
            payload: m.payload.into(),
        }
    }
}

impl From<wt::Outcome> for types::Outcome {
    fn from(o: wt::Outcome) -> Self {
        match o {
            wt::Outcome::Pass => types::Outcome::Pass,
            wt::Outcome::Replace(m) => types::Outcome::Replace(m.into()),
            wt::Outcome::Drop(reason) => types::Outcome::Drop(types::reason(reason)),
        }
    }
}
