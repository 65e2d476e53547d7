//! A test authorizer: `alice`/`secret` is allowed into account `A` with a few permissions;
//! user `loop` never returns (the deadline must deny); anyone else is denied.

wit_bindgen::generate!({ path: "../../../wit", world: "authorizer" });

use exports::natrium::plugin::authorization::{
    Allowed, ConnectRequest, Decision, Guest, Limits, Permission, ResponsePermission,
};

struct Authz;

impl Guest for Authz {
    fn authorize(request: ConnectRequest) -> Decision {
        match (request.user.as_deref(), request.pass.as_deref()) {
            (Some("alice"), Some("secret")) => Decision::Allow(Allowed {
                account: "A".into(),
                user: "alice".into(),
                publish: Permission { allow: vec!["orders.>".into()], deny: vec!["orders.secret".into()] },
                subscribe: Permission { allow: vec![], deny: vec![] },
                allow_responses: Some(ResponsePermission { max_msgs: 1, expires_ms: 500 }),
                limits: Limits { max_subscriptions: Some(10), max_payload: None },
                expires_at: request.tls.map(|_| 1),
            }),
            // Holds 8 MiB of its memory until the deadline interrupts it.
            (Some("hog"), _) => {
                let hoard = std::hint::black_box(vec![1u8; 8 << 20]);
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(u64::from(hoard[n as usize % hoard.len()])));
                }
            }
            (Some("loop"), _) => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            _ => Decision::Deny(format!("unknown user from {}", request.client_ip)),
        }
    }
}

export!(Authz);
