use data_encoding::BASE64URL_NOPAD;

use super::*;
use crate::auth::nkeys::{self as nk, KeyPair, NkeyError};
use crate::auth::permissions::ResponsePermission;

struct Chain {
    op: KeyPair,
    op_sk: KeyPair,
    op_claims: OperatorClaims,
    acc: KeyPair,
    acc_sk: KeyPair,
    acc_claims: AccountClaims,
}

fn chain() -> Chain {
    let op = KeyPair::new_operator();
    let op_sk = KeyPair::new_operator();
    let mut oc = OperatorClaims::new(&op.public_key());
    oc.claims.name = "OP".into();
    oc.nats.signing_keys.push(op_sk.public_key());
    let tok = encode(&mut oc, &op).expect("encode op");
    let op_claims = decode_operator(&tok).expect("decode op");
    let acc = KeyPair::new_account();
    let acc_sk = KeyPair::new_account();
    let mut ac = AccountClaims::new(&acc.public_key());
    ac.claims.name = "ACC".into();
    ac.nats
        .signing_keys
        .push(SigningKey::Plain(acc_sk.public_key()));
    let tok = encode(&mut ac, &op_sk).expect("encode acc");
    let acc_claims = decode_account(&tok).expect("decode acc");
    Chain {
        op,
        op_sk,
        op_claims,
        acc,
        acc_sk,
        acc_claims,
    }
}

fn user(signer: &KeyPair, issuer_account: Option<&str>) -> (KeyPair, UserClaims) {
    let u = KeyPair::new_user();
    let mut uc = UserClaims::new(&u.public_key());
    uc.claims.name = "bob".into();
    if let Some(a) = issuer_account {
        uc.nats.issuer_account = a.into();
    }
    let tok = encode(&mut uc, signer).expect("encode user");
    (u, decode_user(&tok).expect("decode user"))
}

fn signed_client<'a>(u: &KeyPair, nonce: &'a str, sig: &'a mut String) -> ClientInfo<'a> {
    *sig = nk::sign_nonce(u, nonce).expect("sign");
    let mut ci = ClientInfo::new(now_unix());
    ci.nonce = Some(nonce);
    ci.sig = Some(sig.as_str());
    ci.ip = Some("127.0.0.1".parse().expect("ip"));
    ci
}

#[test]
fn roundtrip_and_format() {
    let c = chain();
    let (_, uc) = user(&c.acc, None);
    assert_eq!(uc.nats.generic.claim_type, "user");
    assert_eq!(uc.nats.generic.version, 2);
    assert_eq!(uc.claims.iss, c.acc.public_key());
    assert_eq!(uc.claims.jti.len(), 52);
    assert_eq!(uc.nats.limits.limits.nats, NatsLimits::UNLIMITED);
    let mut uc2 = uc.clone();
    let tok = encode(&mut uc2, &c.acc).expect("encode");
    let (h, _) = decode_with_header::<UserClaims>(&tok).expect("decode");
    assert_eq!(
        h,
        Header {
            typ: "JWT".into(),
            alg: "ed25519-nkey".into()
        }
    );
    assert!(!tok.contains('='));
    match decode_any(&tok).expect("any") {
        AnyClaims::User(u) => assert_eq!(u.claims.sub, uc.claims.sub),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        decode_any(&encode(&mut c.acc_claims.clone(), &c.op).expect("e")),
        Ok(AnyClaims::Account(_))
    ));
    let _ = (&c.op_claims, &c.acc_sk);
}

#[test]
fn full_chain_ok_direct_and_signing_key() {
    let c = chain();
    validate_operator(&c.op_claims, now_unix()).expect("op");
    validate_account(
        std::slice::from_ref(&c.op_claims),
        &c.acc_claims,
        now_unix(),
    )
    .expect("acc");
    let nonce = nk::generate_nonce();
    let mut sig = String::new();
    let (u, uc) = user(&c.acc, None);
    let au = validate_user(&c.acc_claims, &uc, &signed_client(&u, &nonce, &mut sig)).expect("user");
    assert_eq!(au.account, c.acc.public_key());
    assert_eq!(au.signing_key, None);
    assert_eq!(au.permissions, None);
    assert_eq!(au.limits, ResolvedLimits::default());
    let (u, uc) = user(&c.acc_sk, Some(&c.acc.public_key()));
    let au =
        validate_user(&c.acc_claims, &uc, &signed_client(&u, &nonce, &mut sig)).expect("user sk");
    assert_eq!(au.signing_key, Some(c.acc_sk.public_key()));
}

#[test]
fn tampered_and_malformed() {
    let c = chain();
    let u = KeyPair::new_user();
    let mut uc = UserClaims::new(&u.public_key());
    let tok = encode(&mut uc, &c.acc).expect("encode");
    let parts: Vec<&str> = tok.split('.').collect();
    // Change the claims (give ourselves a name) but keep the signature.
    let mut forged = uc.clone();
    forged.claims.name = "admin".into();
    let body = BASE64URL_NOPAD.encode(&serde_json::to_vec(&forged).expect("json"));
    let t2 = format!("{}.{}.{}", parts[0], body, parts[2]);
    assert_eq!(decode_user(&t2), Err(JwtError::BadSignature));
    // Re-sign with a different account key but claim the old issuer.
    let other = KeyPair::new_account();
    let sig = other
        .sign(format!("{}.{}", parts[0], body).as_bytes())
        .expect("sign");
    let t3 = format!("{}.{}.{}", parts[0], body, BASE64URL_NOPAD.encode(&sig));
    assert_eq!(decode_user(&t3), Err(JwtError::BadSignature));
    // Flip a signature byte.
    let mut raw = BASE64URL_NOPAD.decode(parts[2].as_bytes()).expect("b64");
    raw[0] ^= 0xff;
    let t4 = format!("{}.{}.{}", parts[0], parts[1], BASE64URL_NOPAD.encode(&raw));
    assert_eq!(decode_user(&t4), Err(JwtError::BadSignature));
    // Structure.
    assert_eq!(decode_user("abc"), Err(JwtError::Malformed));
    assert_eq!(decode_user("a.b.c.d"), Err(JwtError::Malformed));
    assert_eq!(decode_user(""), Err(JwtError::Malformed));
    assert!(matches!(
        decode_user("!!.b.c"),
        Err(JwtError::Base64("header"))
    ));
    let bad_alg = BASE64URL_NOPAD.encode(br#"{"typ":"JWT","alg":"HS256"}"#);
    assert!(matches!(
        decode_user(&format!("{bad_alg}.{}.{}", parts[1], parts[2])),
        Err(JwtError::UnsupportedAlgorithm(_))
    ));
    let bad_typ = BASE64URL_NOPAD.encode(br#"{"typ":"XYZ","alg":"ed25519-nkey"}"#);
    assert!(matches!(
        decode_user(&format!("{bad_typ}.{}.{}", parts[1], parts[2])),
        Err(JwtError::UnsupportedType(_))
    ));
    let junk = BASE64URL_NOPAD.encode(b"not json");
    assert!(matches!(
        decode_user(&format!("{}.{junk}.{}", parts[0], parts[2])),
        Err(JwtError::Json { .. })
    ));
    // Wrong type requested.
    assert!(matches!(
        decode_account(&tok),
        Err(JwtError::WrongClaimType { .. })
    ));
    // Newer version.
    let mut v = serde_json::to_value(&uc).expect("v");
    v["nats"]["version"] = 3.into();
    let body = BASE64URL_NOPAD.encode(&serde_json::to_vec(&v).expect("j"));
    assert_eq!(
        decode_user(&format!("{}.{body}.{}", parts[0], parts[2])),
        Err(JwtError::NewerVersion)
    );
}

#[test]
fn wrong_role_issuer_rejected() {
    // A user JWT signed by a user key (not an account).
    let u = KeyPair::new_user();
    let mut uc = UserClaims::new(&u.public_key());
    assert!(matches!(
        encode(&mut uc, &u),
        Err(JwtError::InvalidIssuer(_))
    ));
    // Hand-sign it anyway.
    uc.claims.iss = u.public_key();
    uc.nats.generic = GenericFields {
        claim_type: "user".into(),
        version: 2,
        tags: vec![],
    };
    let h = BASE64URL_NOPAD.encode(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let p = BASE64URL_NOPAD.encode(&serde_json::to_vec(&uc).expect("j"));
    let sig = u.sign(format!("{h}.{p}").as_bytes()).expect("sign");
    let tok = format!("{h}.{p}.{}", BASE64URL_NOPAD.encode(&sig));
    assert!(matches!(decode_user(&tok), Err(JwtError::InvalidIssuer(_))));
}

#[test]
fn legacy_v1_signature_over_claims_only() {
    let acc = KeyPair::new_account();
    let u = KeyPair::new_user();
    let claims = serde_json::json!({
        "jti": "X", "iat": now_unix(), "iss": acc.public_key(), "sub": u.public_key(),
        "type": "user", "nats": {"pub": {"allow": ["a"]}}
    });
    let h = BASE64URL_NOPAD.encode(br#"{"typ":"jwt","alg":"ed25519"}"#);
    let p = BASE64URL_NOPAD.encode(&serde_json::to_vec(&claims).expect("j"));
    let sig = acc.sign(p.as_bytes()).expect("sign");
    let tok = format!("{h}.{p}.{}", BASE64URL_NOPAD.encode(&sig));
    let uc = decode_user(&tok).expect("v1 decodes");
    assert_eq!(
        uc.nats.limits.permissions.publish.allow,
        vec!["a".to_string()]
    );
    // A v1 signature over header.claims is not accepted for v1 claims.
    let sig = acc.sign(format!("{h}.{p}").as_bytes()).expect("sign");
    let tok = format!("{h}.{p}.{}", BASE64URL_NOPAD.encode(&sig));
    assert_eq!(decode_user(&tok), Err(JwtError::BadSignature));
}

#[test]
fn times_expired_not_yet_valid() {
    let c = chain();
    let now = now_unix();
    let nonce = nk::generate_nonce();
    let mut sig = String::new();
    let u = KeyPair::new_user();
    let mut uc = UserClaims::new(&u.public_key());
    uc.claims.exp = now - 10;
    let tok = encode(&mut uc, &c.acc).expect("e");
    let uc = decode_user(&tok).expect("decodes: times are checked by validation");
    assert_eq!(uc.claims.validate_time(now), Err(JwtError::Expired));
    assert_eq!(
        validate_user(&c.acc_claims, &uc, &signed_client(&u, &nonce, &mut sig)),
        Err(JwtError::Expired)
    );
    let mut uc = UserClaims::new(&u.public_key());
    uc.claims.nbf = now + 3600;
    encode(&mut uc, &c.acc).expect("e");
    assert_eq!(
        validate_user(&c.acc_claims, &uc, &signed_client(&u, &nonce, &mut sig)),
        Err(JwtError::NotYetValid)
    );
    // Expiring user: expires_at reported.
    let mut uc = UserClaims::new(&u.public_key());
    uc.claims.exp = now + 100;
    encode(&mut uc, &c.acc).expect("e");
    let au = validate_user(&c.acc_claims, &uc, &signed_client(&u, &nonce, &mut sig)).expect("ok");
    assert_eq!(au.expires_at, Some(now + 100));
    // Expired account.
    let mut ac = c.acc_claims.clone();
    ac.claims.exp = now - 1;
    encode(&mut ac, &c.op).expect("e");
    assert_eq!(
        validate_account(std::slice::from_ref(&c.op_claims), &ac, now),
        Err(JwtError::Expired)
    );
    let (u2, uc2) = user(&c.acc, None);
    assert_eq!(
        validate_user(&ac, &uc2, &signed_client(&u2, &nonce, &mut sig)),
        Err(JwtError::Expired)
    );
    let mut ac = c.acc_claims.clone();
    ac.claims.nbf = now + 100;
    encode(&mut ac, &c.op).expect("e");
    assert_eq!(
        validate_account(std::slice::from_ref(&c.op_claims), &ac, now),
        Err(JwtError::NotYetValid)
    );
}

#[test]
fn wrong_issuers() {
    let c = chain();
    let now = now_unix();
    // Account signed by an unknown operator.
    let rogue = KeyPair::new_operator();
    let mut ac = AccountClaims::new(&c.acc.public_key());
    encode(&mut ac, &rogue).expect("e");
    assert!(matches!(
        validate_account(std::slice::from_ref(&c.op_claims), &ac, now),
        Err(JwtError::UntrustedIssuer(_))
    ));
    assert!(validate_account_with_keys(&[&c.op.public_key()], &ac, now).is_err());
    encode(&mut ac, &c.op).expect("e");
    assert!(validate_account_with_keys(&[&c.op.public_key()], &ac, now).is_ok());
    // Strict signing key usage.
    let mut oc = c.op_claims.clone();
    oc.nats.strict_signing_key_usage = true;
    assert_eq!(
        validate_account(std::slice::from_ref(&oc), &ac, now),
        Err(JwtError::StrictSigningKey)
    );
    assert!(validate_account(std::slice::from_ref(&oc), &c.acc_claims, now).is_ok());
    // Operator not self-signed.
    let mut oc = OperatorClaims::new(&c.op.public_key());
    encode(&mut oc, &rogue).expect("e");
    assert!(validate_operator(&oc, now).is_err());

    let nonce = nk::generate_nonce();
    let mut sig = String::new();
    // User signed by another account.
    let other = KeyPair::new_account();
    let (u, uc) = user(&other, None);
    assert!(matches!(
        validate_user(&c.acc_claims, &uc, &signed_client(&u, &nonce, &mut sig)),
        Err(JwtError::WrongAccount { .. })
    ));
    // User signed by an unknown key claiming our account.
    let (u, uc) = user(&other, Some(&c.acc.public_key()));
    assert!(matches!(
        validate_user(&c.acc_claims, &uc, &signed_client(&u, &nonce, &mut sig)),
        Err(JwtError::UntrustedIssuer(_))
    ));
    // Signing key without issuer_account.
    let (u, uc) = user(&c.acc_sk, None);
    assert_eq!(
        validate_user(&c.acc_claims, &uc, &signed_client(&u, &nonce, &mut sig)),
        Err(JwtError::MissingIssuerAccount)
    );
    // Wrong nonce signature / none.
    let (u, uc) = user(&c.acc, None);
    let other_user = KeyPair::new_user();
    assert!(matches!(
        validate_user(
            &c.acc_claims,
            &uc,
            &signed_client(&other_user, &nonce, &mut sig)
        ),
        Err(JwtError::Signature(NkeyError::BadSignature))
    ));
    assert_eq!(
        validate_user(&c.acc_claims, &uc, &ClientInfo::new(now)),
        Err(JwtError::MissingSignature)
    );
    let _ = u;
    let _ = &c.op_sk;
}

#[test]
fn revocations() {
    let mut c = chain();
    let nonce = nk::generate_nonce();
    let mut sig = String::new();
    let (u, uc) = user(&c.acc, None);
    c.acc_claims
        .nats
        .revocations
        .insert(u.public_key(), uc.claims.iat);
    assert_eq!(
        validate_user(&c.acc_claims, &uc, &signed_client(&u, &nonce, &mut sig)),
        Err(JwtError::Revoked)
    );
    // A JWT issued after the revocation is fine.
    let mut uc2 = uc.clone();
    uc2.claims.iat = uc.claims.iat + 1;
    encode(&mut uc2, &c.acc).expect("e");
    assert!(validate_user(&c.acc_claims, &uc2, &signed_client(&u, &nonce, &mut sig)).is_ok());
    // Wildcard.
    c.acc_claims.nats.revocations.clear();
    c.acc_claims
        .nats
        .revocations
        .insert("*".into(), uc2.claims.iat);
    assert_eq!(
        validate_user(&c.acc_claims, &uc2, &signed_client(&u, &nonce, &mut sig)),
        Err(JwtError::Revoked)
    );
    // Revocations survive an encode/decode round trip.
    let tok = encode(&mut c.acc_claims, &c.op).expect("e");
    assert!(decode_account(&tok)
        .expect("d")
        .is_revoked(&u.public_key(), uc2.claims.iat));
}

#[test]
fn bearer_src_conn_types_times() {
    let c = chain();
    let now = now_unix();
    let u = KeyPair::new_user();
    let mut uc = UserClaims::new(&u.public_key());
    uc.nats.limits.bearer_token = true;
    uc.nats.limits.limits.src = CidrList(vec!["10.0.0.0/8".into(), "127.0.0.0/8".into()]);
    uc.nats.limits.allowed_connection_types = vec!["STANDARD".into(), "FUTURE_TYPE".into()];
    encode(&mut uc, &c.acc).expect("e");
    let mut ci = ClientInfo::new(now);
    ci.ip = Some("127.0.0.5".parse().expect("ip"));
    let au = validate_user(&c.acc_claims, &uc, &ci).expect("bearer needs no sig");
    assert!(au.bearer);
    ci.ip = Some("::ffff:10.1.2.3".parse().expect("ip"));
    assert!(validate_user(&c.acc_claims, &uc, &ci).is_ok());
    ci.ip = Some("192.168.1.1".parse().expect("ip"));
    assert_eq!(
        validate_user(&c.acc_claims, &uc, &ci),
        Err(JwtError::SourceNotAllowed)
    );
    ci.ip = None;
    assert_eq!(
        validate_user(&c.acc_claims, &uc, &ci),
        Err(JwtError::SourceNotAllowed)
    );
    ci.ip = Some("127.0.0.1".parse().expect("ip"));
    ci.connection_type = connection_type::WEBSOCKET;
    assert!(matches!(
        validate_user(&c.acc_claims, &uc, &ci),
        Err(JwtError::ConnectionTypeNotAllowed(_))
    ));
    assert_eq!(
        check_connection_type(&["MQTTX".into()], "STANDARD"),
        Err(JwtError::NoKnownConnectionType)
    );
    assert!(check_connection_type(&["websocket".into()], "WEBSOCKET").is_ok());
    // Bad CIDR rejects.
    assert!(matches!(
        check_src(&["300.1.1.1/8".into()], ci.ip),
        Err(JwtError::InvalidCidr(_))
    ));
    assert!(check_src(&["::1/128".into()], Some("::1".parse().expect("ip"))).is_ok());
    assert!(check_src(
        &["127.0.0.1".into()],
        Some("127.0.0.1".parse().expect("ip"))
    )
    .is_ok());
    // Bearer disallowed by the account.
    let mut ac = c.acc_claims.clone();
    ac.nats.limits.disallow_bearer = true;
    ci.connection_type = connection_type::STANDARD;
    assert_eq!(
        validate_user(&ac, &uc, &ci),
        Err(JwtError::BearerNotAllowed)
    );
    // Comma-separated src string form.
    let v: UserLimits = serde_json::from_str(r#"{"src":"1.2.3.0/24, 5.6.7.8/32"}"#).expect("p");
    assert_eq!(
        v.src.0,
        vec!["1.2.3.0/24".to_string(), "5.6.7.8/32".to_string()]
    );

    // Times: 10:00-12:00 UTC and a range wrapping midnight.
    let day = 1_700_006_400; // a midnight UTC
    let lim = |ranges: &[(&str, &str)], loc: &str| UserLimits {
        times: ranges
            .iter()
            .map(|(s, e)| TimeRange {
                start: (*s).into(),
                end: (*e).into(),
            })
            .collect(),
        locale: loc.into(),
        ..Default::default()
    };
    assert_eq!(day % 86_400, 0);
    let l = lim(&[("10:00:00", "12:00:00")], "UTC");
    assert_eq!(
        check_times(&l, day + 11 * 3600, 0),
        Ok(Some(day + 12 * 3600))
    );
    assert_eq!(
        check_times(&l, day + 9 * 3600, 0),
        Err(JwtError::OutsideTimeWindow)
    );
    assert_eq!(
        check_times(&l, day + 9 * 3600, 2 * 3600),
        Err(JwtError::OutsideTimeWindow)
    );
    let l = lim(&[("10:00:00", "12:00:00")], "");
    assert_eq!(
        check_times(&l, day + 9 * 3600, 2 * 3600),
        Ok(Some(day + 10 * 3600))
    );
    let l = lim(&[("22:00:00", "02:00:00")], "UTC");
    assert_eq!(
        check_times(&l, day + 23 * 3600, 0),
        Ok(Some(day + 26 * 3600))
    );
    assert_eq!(check_times(&l, day + 3600, 0), Ok(Some(day + 2 * 3600)));
    assert_eq!(
        check_times(&l, day + 3 * 3600, 0),
        Err(JwtError::OutsideTimeWindow)
    );
    let l = lim(&[("25:00:00", "02:00:00")], "UTC");
    assert!(matches!(
        check_times(&l, day, 0),
        Err(JwtError::InvalidTimeRange(_))
    ));
    let l = lim(&[("01:00:00", "02:00:00")], "Europe/Paris");
    assert!(matches!(
        check_times(&l, day, 0),
        Err(JwtError::UnsupportedTimeLocale(_))
    ));
}

#[test]
fn permissions_limits_defaults_and_scoped_templates() {
    let mut c = chain();
    let nonce = nk::generate_nonce();
    let mut sig = String::new();
    // User with its own permissions + limits, account limits lower.
    c.acc_claims.nats.limits.nats = NatsLimits {
        subs: 10,
        data: NO_LIMIT,
        payload: 1024,
    };
    let u = KeyPair::new_user();
    let mut uc = UserClaims::new(&u.public_key());
    uc.nats.limits.permissions.publish.allow = vec!["a.>".into()];
    uc.nats.limits.permissions.subscribe.deny = vec!["secret".into()];
    uc.nats.limits.permissions.resp = Some(ResponsePermissionJwt { max: 0, ttl: 0 });
    uc.nats.limits.limits.nats = NatsLimits {
        subs: 100,
        data: 5,
        payload: NO_LIMIT,
    };
    let tok = encode(&mut uc, &c.acc).expect("e");
    let uc = decode_user(&tok).expect("d");
    let au = validate_user(&c.acc_claims, &uc, &signed_client(&u, &nonce, &mut sig)).expect("ok");
    let spec = au.permissions.expect("perms");
    assert_eq!(
        spec.publish.as_ref().and_then(|p| p.allow.clone()),
        Some(vec!["a.>".to_string()])
    );
    assert_eq!(spec.subscribe.as_ref().and_then(|p| p.allow.clone()), None);
    assert_eq!(spec.response, Some(ResponsePermission::default()));
    assert_eq!(
        au.limits,
        ResolvedLimits {
            subs: Some(10),
            payload: Some(1024),
            data: Some(5)
        }
    );

    // Account default permissions apply to a user without any.
    c.acc_claims.nats.default_permissions.publish.deny = vec!["$SYS.>".into()];
    let (u, uc) = user(&c.acc, None);
    let au = validate_user(&c.acc_claims, &uc, &signed_client(&u, &nonce, &mut sig)).expect("ok");
    assert_eq!(
        au.permissions.and_then(|p| p.publish).and_then(|p| p.deny),
        Some(vec!["$SYS.>".to_string()])
    );

    // Scoped signing key with a template.
    let sk = KeyPair::new_account();
    let mut tmpl = UserPermissionLimits::default();
    tmpl.permissions.publish.allow = vec![
        "{{account-name()}}.{{name()}}.>".into(),
        "dept.{{tag(dept)}}".into(),
    ];
    tmpl.permissions.subscribe.allow = vec!["_INBOX.{{subject()}}.>".into()];
    tmpl.permissions.subscribe.deny = vec!["x.{{tag(missing)}}".into()];
    tmpl.limits.nats = NatsLimits {
        subs: 3,
        data: NO_LIMIT,
        payload: NO_LIMIT,
    };
    c.acc_claims
        .nats
        .signing_keys
        .push(SigningKey::Scoped(Box::new(UserScope {
            kind: "user_template".into(),
            key: sk.public_key(),
            role: "dev".into(),
            template: tmpl,
            description: String::new(),
        })));
    let tok = encode(&mut c.acc_claims, &c.op).expect("e");
    c.acc_claims = decode_account(&tok).expect("scoped keys decode");
    assert!(matches!(
        c.acc_claims.signing_key(&sk.public_key()),
        Some(SigningKey::Scoped(_))
    ));
    let u = KeyPair::new_user();
    let mut uc = UserClaims::new(&u.public_key());
    uc.claims.name = "alice".into();
    uc.nats.issuer_account = c.acc.public_key();
    uc.nats.generic.tags = vec!["dept:eng".into(), "dept:ops".into()];
    encode(&mut uc, &sk).expect("e");
    let au =
        validate_user(&c.acc_claims, &uc, &signed_client(&u, &nonce, &mut sig)).expect("scoped");
    let spec = au.permissions.expect("perms");
    assert_eq!(
        spec.publish.and_then(|p| p.allow),
        Some(vec![
            "ACC.alice.>".to_string(),
            "dept.eng".into(),
            "dept.ops".into()
        ])
    );
    let sub = spec.subscribe.expect("sub");
    assert_eq!(
        sub.allow,
        Some(vec![format!("_INBOX.{}.>", u.public_key())])
    );
    assert_eq!(sub.deny, None);
    assert_eq!(au.limits.subs, Some(3));
    // Scoped user carrying its own permissions is rejected.
    uc.nats.limits.permissions.publish.allow = vec![">".into()];
    encode(&mut uc, &sk).expect("e");
    assert_eq!(
        validate_user(&c.acc_claims, &uc, &signed_client(&u, &nonce, &mut sig)),
        Err(JwtError::ScopedUserHasPermissions)
    );
    // Template referencing a missing tag in an allow list fails.
    uc.nats.limits.permissions.publish.allow.clear();
    uc.nats.generic.tags.clear();
    encode(&mut uc, &sk).expect("e");
    assert!(matches!(
        validate_user(&c.acc_claims, &uc, &signed_client(&u, &nonce, &mut sig)),
        Err(JwtError::Template(_))
    ));
}

#[test]
fn parses_nsc_style_account_json() {
    // Shape as written by nsc / nats-io/jwt v2.
    let acc = KeyPair::new_account();
    let j = serde_json::json!({
        "jti": "J", "iat": 1, "iss": "O", "name": "A", "sub": acc.public_key(),
        "nats": {
            "exports": [{"name": "svc", "subject": "svc.>", "type": "service",
                         "response_type": "Stream", "response_threshold": 1000000000,
                         "service_latency": {"sampling": 100, "results": "lat"}}],
            "imports": [{"name": "s", "subject": "x.>", "account": "AB", "type": "stream",
                         "local_subject": "y.>"}],
            "limits": {"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
                       "wildcards": true, "conn": 5, "leaf": -1, "mem_storage": -1,
                       "disk_storage": -1, "streams": -1, "consumer": -1},
            "signing_keys": ["AKEY", {"kind": "user_template", "key": "AK2", "role": "r",
                             "template": {"pub": {"allow": ["a"]}, "sub": {}, "subs": -1}}],
            "revocations": {"UABC": 123, "*": 5},
            "default_permissions": {"pub": {}, "sub": {}},
            "mappings": {"m": [{"subject": "n", "weight": 100}]},
            "authorization": {"auth_users": null},
            "type": "account", "version": 2
        }
    });
    let ac: AccountClaims = serde_json::from_value(j).expect("parse");
    assert_eq!(ac.nats.limits.conn, 5);
    assert_eq!(ac.nats.exports[0].response_type, "Stream");
    assert_eq!(ac.nats.imports[0].local_subject, "y.>");
    assert_eq!(ac.nats.signing_keys.len(), 2);
    assert!(ac.has_issuer("AKEY") && ac.has_issuer("AK2") && !ac.has_issuer("AK3"));
    assert!(ac.is_revoked("UABC", 123));
    assert!(!ac.is_revoked("UABC", 124));
    assert!(ac.is_revoked("UZZZ", 5));
    assert!(ac.nats.default_permissions.is_empty());
}
