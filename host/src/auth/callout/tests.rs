//! The callout exchange without a network: a request is built, a stand-in service (the
//! logic a real service runs: decode, decide, sign) answers, and the answer is checked.

use super::*;
use crate::auth::jwt::{
    AccountClaims, AuthorizationRequestClaims, AuthorizationResponseClaims, UserClaims,
};

const NOW: i64 = 1_700_000_000;

struct Service {
    issuer: KeyPair,
    xkey: Option<XKey>,
}

impl Service {
    fn new(encrypted: bool) -> Self {
        Service {
            issuer: KeyPair::new_account(),
            xkey: encrypted.then(XKey::new),
        }
    }

    fn config(&self) -> AuthCallout {
        AuthCallout {
            issuer: self.issuer.public_key(),
            auth_users: vec!["auth".into()],
            account: "AUTH".into(),
            xkey: self.xkey.as_ref().map(XKey::public_key),
        }
    }

    /// Opens (when sealed) and decodes a request, as a service does.
    fn read(&self, req: &Request) -> AuthorizationRequestClaims {
        let token = match (&self.xkey, &req.xkey_header) {
            (Some(mine), Some(server)) => {
                let server = XKey::from_public_key(server).expect("server xkey");
                mine.open(&req.payload, &server).expect("open request")
            }
            (None, None) => req.payload.clone(),
            _ => panic!("request sealed iff the service has an xkey"),
        };
        jwt::decode(std::str::from_utf8(&token).expect("utf8")).expect("request decodes")
    }

    /// A response for `req` carrying `user` (or `error`), signed by `signer`.
    fn answer(
        &self,
        req: &Request,
        signer: &KeyPair,
        user: Option<UserClaims>,
        error: &str,
    ) -> Vec<u8> {
        let claims = self.read(req);
        let mut r = AuthorizationResponseClaims::default();
        r.claims.sub = claims.nats.user_nkey.clone();
        r.claims.aud = claims.nats.server.id.clone();
        r.claims.iat = NOW;
        if let Some(mut u) = user {
            r.nats.jwt = jwt::encode(&mut u, signer).expect("user jwt");
        }
        r.nats.error = error.to_string();
        let token = jwt::encode(&mut r, signer).expect("response jwt");
        match &self.xkey {
            Some(mine) => {
                let server = XKey::from_public_key(&claims.nats.server.xkey).expect("xkey");
                mine.seal(token.as_bytes(), &server).expect("seal")
            }
            None => token.into_bytes(),
        }
    }

    /// The user a service grants: `aud` names the account, `sub` is the request's user key.
    fn user(req: &AuthorizationRequestClaims, account: &str) -> UserClaims {
        let mut u = UserClaims::new(&req.nats.user_nkey);
        u.claims.aud = account.to_string();
        u.claims.name = "bob".into();
        u.claims.iat = NOW;
        u.nats.limits.permissions.publish.allow = vec!["b.>".into()];
        u
    }
}

fn asking() -> Asking {
    Asking {
        server: ServerId {
            name: "n1".into(),
            host: "127.0.0.1".into(),
            id: String::new(),
            version: "2.10.0".into(),
            ..Default::default()
        },
        client: ClientInformation {
            host: "127.0.0.1".into(),
            id: 7,
            user: "bob".into(),
            kind: "Client".into(),
            client_type: "nats".into(),
            ..Default::default()
        },
        connect: ConnectOptions {
            user: "bob".into(),
            pass: "b".into(),
            protocol: 1,
            ..Default::default()
        },
        tls: None,
        timeout: Duration::from_secs(2),
        now: NOW,
    }
}

fn facts() -> ClientFacts {
    ClientFacts {
        ip: Some("127.0.0.1".parse().expect("ip")),
        now: NOW,
        local_utc_offset: 0,
    }
}

/// The error a refused answer gets.
fn refusal(keys: &ServerKeys, req: &Request, answer: &[u8]) -> CalloutError {
    match req.expect.check(keys, answer, &facts()) {
        Ok(grant) => panic!("expected a refusal, got {grant:?}"),
        Err(e) => e,
    }
}

fn exchange(encrypted: bool) -> (ServerKeys, Service, Request) {
    let keys = ServerKeys::generate();
    let service = Service::new(encrypted);
    let req = request(&keys, &Policy::configured(&service.config()), asking()).expect("request");
    (keys, service, req)
}

#[test]
fn the_request_is_signed_by_the_server_and_carries_the_connect() {
    let (keys, service, req) = exchange(false);
    let claims = service.read(&req);
    assert_eq!(claims.claims.iss, keys.id());
    assert_eq!(claims.claims.sub, service.issuer.public_key());
    assert_eq!(claims.claims.aud, REQUEST_AUDIENCE);
    assert_eq!(claims.claims.exp, NOW + 2);
    assert_eq!(claims.nats.generic.claim_type, "authorization_request");
    assert_eq!(claims.nats.user_nkey, req.expect.user_nkey());
    assert_eq!(claims.nats.connect.user, "bob");
    assert_eq!(claims.nats.connect.pass, "b");
    assert!(claims.nats.server.xkey.is_empty());
    assert!(!claims.nats.request_nonce.is_empty());
    assert!(req.xkey_header.is_none());
}

#[test]
fn the_request_json_uses_the_jwt_library_field_names() {
    let (_, service, req) = exchange(false);
    let claims = service.read(&req);
    let v = serde_json::to_value(&claims).expect("json");
    let nats = &v["nats"];
    for field in [
        "server_id",
        "user_nkey",
        "client_info",
        "connect_opts",
        "type",
        "version",
    ] {
        assert!(nats.get(field).is_some(), "missing nats.{field} in {v}");
    }
    assert_eq!(nats["client_info"]["type"], "nats");
    assert_eq!(nats["connect_opts"]["protocol"], 1);
    assert!(nats.get("client_tls").is_none());
}

#[test]
fn a_granted_user_gets_its_account_permissions_and_name() {
    let (keys, service, req) = exchange(false);
    let user = Service::user(&service.read(&req), "B");
    let answer = service.answer(&req, &service.issuer, Some(user), "");
    let grant = req.expect.check(&keys, &answer, &facts()).expect("granted");
    assert_eq!(grant.account, "B");
    assert_eq!(grant.name, "bob");
    let perms = grant.permissions.expect("permissions");
    assert_eq!(
        perms.publish.and_then(|p| p.allow),
        Some(vec!["b.>".to_string()])
    );
    assert_eq!(grant.max_subscriptions, None, "-1 means no limit");
    assert_eq!(grant.expires_at, None);
}

#[test]
fn an_encrypted_exchange_works_both_ways() {
    let (keys, service, req) = exchange(true);
    assert_eq!(req.xkey_header.as_deref(), Some(keys.xkey().as_str()));
    assert!(!req.payload.starts_with(b"eyJ"), "the request is sealed");
    let claims = service.read(&req);
    assert_eq!(claims.nats.server.xkey, keys.xkey());
    let answer = service.answer(&req, &service.issuer, Some(Service::user(&claims, "B")), "");
    assert!(!answer.starts_with(b"eyJ"), "the response is sealed");
    let grant = req.expect.check(&keys, &answer, &facts()).expect("granted");
    assert_eq!(grant.account, "B");
}

#[test]
fn an_error_from_the_service_is_a_refusal_with_its_text() {
    let (keys, service, req) = exchange(false);
    let answer = service.answer(&req, &service.issuer, None, "bad password");
    let err = refusal(&keys, &req, &answer);
    assert!(
        matches!(&err, CalloutError::Denied(e) if e == "bad password"),
        "{err}"
    );
}

#[test]
fn a_response_signed_by_another_key_is_refused() {
    let (keys, service, req) = exchange(false);
    let user = Service::user(&service.read(&req), "B");
    let intruder = KeyPair::new_account();
    let answer = service.answer(&req, &intruder, Some(user), "");
    let err = refusal(&keys, &req, &answer);
    assert!(
        matches!(err, CalloutError::WrongResponseIssuer { .. }),
        "{err}"
    );
}

#[test]
fn a_user_jwt_signed_by_another_key_is_refused() {
    let (keys, service, req) = exchange(false);
    let claims = service.read(&req);
    let intruder = KeyPair::new_account();
    let mut user = Service::user(&claims, "B");
    let user_jwt = jwt::encode(&mut user, &intruder).expect("user jwt");
    let mut r = AuthorizationResponseClaims::default();
    r.claims.sub = claims.nats.user_nkey.clone();
    r.claims.aud = claims.nats.server.id.clone();
    r.nats.jwt = user_jwt;
    let answer = jwt::encode(&mut r, &service.issuer).expect("response");
    let err = refusal(&keys, &req, answer.as_bytes());
    assert!(matches!(err, CalloutError::WrongIssuer { .. }), "{err}");
}

#[test]
fn a_response_for_another_request_or_server_is_refused() {
    let (keys, service, req) = exchange(false);
    let (_, _, other) = exchange(false);
    // Answered for the other request's user key.
    let mut claims = service.read(&req);
    claims.nats.user_nkey = other.expect.user_nkey().to_string();
    let mut r = AuthorizationResponseClaims::default();
    r.claims.sub = claims.nats.user_nkey.clone();
    r.claims.aud = claims.nats.server.id.clone();
    r.nats.error = "x".into();
    let answer = jwt::encode(&mut r, &service.issuer).expect("response");
    let err = refusal(&keys, &req, answer.as_bytes());
    assert!(matches!(err, CalloutError::WrongUser { .. }), "{err}");
    // Answered for another server.
    r.claims.sub = req.expect.user_nkey().to_string();
    r.claims.aud = ServerKeys::generate().id();
    r.claims.iat = 0;
    let answer = jwt::encode(&mut r, &service.issuer).expect("response");
    let err = refusal(&keys, &req, answer.as_bytes());
    assert!(matches!(err, CalloutError::WrongServer { .. }), "{err}");
}

#[test]
fn expired_claims_are_refused() {
    let (keys, service, req) = exchange(false);
    let mut user = Service::user(&service.read(&req), "B");
    user.claims.exp = NOW - 10;
    let answer = service.answer(&req, &service.issuer, Some(user), "");
    let err = refusal(&keys, &req, &answer);
    assert!(
        matches!(err, CalloutError::UserJwt(JwtError::Expired)),
        "{err}"
    );
}

#[test]
fn a_user_without_an_account_or_with_issuer_account_is_refused() {
    let (keys, service, req) = exchange(false);
    let user = Service::user(&service.read(&req), "");
    let answer = service.answer(&req, &service.issuer, Some(user), "");
    let err = refusal(&keys, &req, &answer);
    assert!(matches!(err, CalloutError::NoAccount), "{err}");

    let mut user = Service::user(&service.read(&req), "B");
    user.nats.issuer_account = KeyPair::new_account().public_key();
    let answer = service.answer(&req, &service.issuer, Some(user), "");
    let err = refusal(&keys, &req, &answer);
    assert!(matches!(err, CalloutError::IssuerAccount(_)), "{err}");
}

#[test]
fn garbage_and_empty_answers_are_refused() {
    let (keys, _, req) = exchange(false);
    assert!(matches!(
        req.expect.check(&keys, b"", &facts()),
        Err(CalloutError::NoReason)
    ));
    assert!(matches!(
        req.expect.check(&keys, b"eyJ.x.y", &facts()),
        Err(CalloutError::Response(_))
    ));
    let (keys, _, req) = exchange(true);
    assert!(matches!(
        req.expect
            .check(&keys, b"not sealed by the service", &facts()),
        Err(CalloutError::Decrypt(_))
    ));
}

#[test]
fn positive_limits_and_an_expiry_are_granted() {
    let (keys, service, req) = exchange(false);
    let mut user = Service::user(&service.read(&req), "B");
    user.nats.limits.limits.nats.subs = 3;
    user.nats.limits.limits.nats.payload = 0;
    user.claims.exp = NOW + 60;
    let answer = service.answer(&req, &service.issuer, Some(user), "");
    let grant = req.expect.check(&keys, &answer, &facts()).expect("granted");
    assert_eq!(grant.max_subscriptions, Some(3));
    assert_eq!(grant.max_payload, None);
    assert_eq!(grant.expires_at, Some(NOW + 60));
}

/// Operator mode: an account whose JWT enables the callout for its users.
fn callout_account(
    auth: &KeyPair,
    allowed: &[&KeyPair],
    signing_key: Option<&KeyPair>,
) -> AccountClaims {
    let mut a = AccountClaims::new(&auth.public_key());
    a.nats.authorization.auth_users = vec![KeyPair::new_user().public_key()];
    a.nats.authorization.allowed_accounts = allowed.iter().map(|k| k.public_key()).collect();
    if let Some(sk) = signing_key {
        a.nats.signing_keys = vec![crate::auth::jwt::SigningKey::Plain(sk.public_key())];
    }
    a
}

/// A response to the request `claims` signed by `signer`, carrying a user JWT signed by
/// `user_signer`.
fn operator_answer(
    claims: &AuthorizationRequestClaims,
    signer: &KeyPair,
    user_signer: &KeyPair,
) -> Vec<u8> {
    let mut u = UserClaims::new(&claims.nats.user_nkey);
    u.claims.iat = NOW;
    u.nats.limits.permissions.subscribe.allow = vec!["in.>".into()];
    let mut r = AuthorizationResponseClaims::default();
    r.claims.sub = claims.nats.user_nkey.clone();
    r.claims.aud = claims.nats.server.id.clone();
    r.nats.jwt = jwt::encode(&mut u, user_signer).expect("user jwt");
    jwt::encode(&mut r, signer).expect("response").into_bytes()
}

#[test]
fn in_operator_mode_the_user_jwt_signer_places_the_user() {
    let (auth, b, c, sk) = (
        KeyPair::new_account(),
        KeyPair::new_account(),
        KeyPair::new_account(),
        KeyPair::new_account(),
    );
    let account = callout_account(&auth, &[&b], Some(&sk));
    let policy = Policy::account(&account).expect("enabled");
    assert_eq!(policy.subject, auth.public_key());
    let keys = ServerKeys::generate();
    let service = Service {
        issuer: KeyPair::new_account(),
        xkey: None,
    };

    // Signed by the account's signing key, placing the user in B (an allowed account).
    let req = request(&keys, &policy, asking()).expect("request");
    let claims = service.read(&req);
    assert_eq!(claims.claims.sub, auth.public_key());
    let answer = operator_answer(&claims, &sk, &b);
    let grant = req.expect.check(&keys, &answer, &facts()).expect("granted");
    assert_eq!(grant.account, b.public_key());
    let grant = grant
        .in_account(&AccountClaims::new(&b.public_key()))
        .expect("B accepts a user signed by its own key");
    assert!(grant.permissions.is_some());

    // Placed in C, which the callout account may not place users in.
    let req = request(&keys, &policy, asking()).expect("request");
    let answer = operator_answer(&service.read(&req), &auth, &c);
    let err = refusal(&keys, &req, &answer);
    assert!(matches!(err, CalloutError::NotAllowedAccount(_)), "{err}");

    // A response signed by a key the account does not know.
    let req = request(&keys, &policy, asking()).expect("request");
    let answer = operator_answer(&service.read(&req), &c, &b);
    let err = refusal(&keys, &req, &answer);
    assert!(
        matches!(err, CalloutError::WrongResponseIssuer { .. }),
        "{err}"
    );

    // The target account must know the user JWT's issuer.
    let req = request(&keys, &policy, asking()).expect("request");
    let answer = operator_answer(&service.read(&req), &auth, &b);
    let grant = req.expect.check(&keys, &answer, &facts()).expect("granted");
    let err = grant
        .in_account(&AccountClaims::new(&KeyPair::new_account().public_key()))
        .expect_err("unknown issuer");
    assert!(matches!(err, CalloutError::UnknownUserIssuer(_)), "{err}");
}

#[test]
fn an_account_without_auth_users_has_no_callout() {
    let mut a = AccountClaims::new(&KeyPair::new_account().public_key());
    assert!(Policy::account(&a).is_none());
    a.nats.authorization.allowed_accounts = vec!["*".into()];
    assert!(Policy::account(&a).is_none());
}
