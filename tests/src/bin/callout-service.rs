//! An auth callout service (nats-server 2.10, ADR-26) with the decision logic of the
//! `jwt-authorizer` Wasm plugin: a CONNECT whose `auth_token` is an HS256 JWT signed with the
//! shared secret, unexpired, with a known `tenant` claim, is admitted into that tenant's
//! account, publishing and subscribing on `<tenant>.>` (and `_INBOX.>`); anything else is
//! refused with the reason. `bench/callout.sh` measures connect latency through it against
//! the plugin; it is also a small, complete example of a callout service.
//!
//! ```text
//! callout-service keys    # prints "<issuer seed> <issuer public> <xkey seed> <xkey public>"
//! callout-service --url 127.0.0.1:4222 --user auth --pass pwd \
//!     --issuer-seed SA… --hs256-secret S --tenant bench=BENCH [--xkey-seed SX…]
//! ```

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use data_encoding::BASE64URL_NOPAD;
use futures::StreamExt;
use hmac::{Hmac, Mac};
use natrium_tests::callout::{Answer, Request, Responder, SUBJECT};
use nkeys::{KeyPair, XKey};
use sha2::Sha256;

struct Args {
    url: String,
    user: String,
    pass: String,
    issuer_seed: String,
    secret: String,
    tenant: String,
    account: String,
    xkey_seed: Option<String>,
}

fn parse_args() -> Result<Option<Args>> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().map(String::as_str) == Some("keys") {
        let kp = KeyPair::new_account();
        let xkey = XKey::new();
        println!(
            "{} {} {} {}",
            kp.seed().map_err(|e| anyhow!("{e}"))?,
            kp.public_key(),
            xkey.seed().map_err(|e| anyhow!("{e}"))?,
            xkey.public_key()
        );
        return Ok(None);
    }
    let mut it = argv.into_iter();
    let mut a = Args {
        url: "127.0.0.1:4222".into(),
        user: "auth".into(),
        pass: String::new(),
        issuer_seed: String::new(),
        secret: String::new(),
        tenant: "bench".into(),
        account: "BENCH".into(),
        xkey_seed: None,
    };
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => a.url = value()?,
            "--user" => a.user = value()?,
            "--pass" => a.pass = value()?,
            "--issuer-seed" => a.issuer_seed = value()?,
            "--hs256-secret" => a.secret = value()?,
            "--tenant" => {
                let v = value()?;
                let (t, acc) = v.split_once('=').context("--tenant TENANT=ACCOUNT")?;
                (a.tenant, a.account) = (t.to_string(), acc.to_string());
            }
            "--xkey-seed" => a.xkey_seed = Some(value()?),
            other => bail!("unknown argument {other:?}"),
        }
    }
    if a.issuer_seed.is_empty() || a.secret.is_empty() {
        bail!("--issuer-seed and --hs256-secret are required");
    }
    Ok(Some(a))
}

/// The decision: the same checks as the `jwt-authorizer` plugin's HS256 path.
fn decide<'a>(a: &'a Args, req: &Request, subjects: &'a [&'a str]) -> Answer<'a> {
    match check_token(a, req.connect("auth_token")) {
        Ok(()) => Answer::Grant {
            account: &a.account,
            name: "callout",
            publish: &subjects[..1],
            subscribe: subjects,
        },
        Err(why) => Answer::Deny(why),
    }
}

fn check_token(a: &Args, token: &str) -> Result<(), &'static str> {
    let (signed, sig) = token.rsplit_once('.').ok_or("token is not a JWT")?;
    let sig = BASE64URL_NOPAD
        .decode(sig.as_bytes())
        .map_err(|_| "bad signature encoding")?;
    let mut mac = Hmac::<Sha256>::new_from_slice(a.secret.as_bytes()).map_err(|_| "bad secret")?;
    mac.update(signed.as_bytes());
    mac.verify_slice(&sig).map_err(|_| "bad signature")?;
    let body = signed.split('.').nth(1).ok_or("token is not a JWT")?;
    let claims: serde_json::Value = BASE64URL_NOPAD
        .decode(body.as_bytes())
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or("bad claims")?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if claims["exp"].as_u64().is_some_and(|exp| exp <= now) {
        return Err("token expired");
    }
    if claims["tenant"].as_str() != Some(a.tenant.as_str()) {
        return Err("unknown tenant");
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let Some(args) = parse_args()? else {
        return Ok(());
    };
    let responder = Responder {
        issuer: KeyPair::from_seed(&args.issuer_seed).map_err(|e| anyhow!("issuer seed: {e}"))?,
        xkey: match &args.xkey_seed {
            Some(s) => Some(XKey::from_seed(s).map_err(|e| anyhow!("xkey seed: {e}"))?),
            None => None,
        },
    };
    let client =
        async_nats::ConnectOptions::with_user_and_password(args.user.clone(), args.pass.clone())
            .connect(&args.url)
            .await?;
    let mut requests = client.subscribe(SUBJECT).await?;
    client.flush().await?;
    eprintln!("callout-service: answering {SUBJECT}");
    let tenant_subjects = format!("{}.>", args.tenant);
    let subjects = [tenant_subjects.as_str(), "_INBOX.>"];
    while let Some(msg) = requests.next().await {
        let Some(reply) = msg.reply.clone() else {
            continue;
        };
        let answer = responder
            .read(&msg)
            .and_then(|req| responder.respond(&req, &decide(&args, &req, &subjects)));
        match answer {
            Ok(bytes) => client.publish(reply, bytes.into()).await?,
            Err(e) => eprintln!("callout-service: {e:#}"),
        }
    }
    Ok(())
}
