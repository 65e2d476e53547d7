//! Sandbox tests against real guests (tests/guests/, built by tests/guests/build.sh into
//! <repo>/target/test-guests/). Every hostile guest must fail in its own distinct way, and
//! the plugin must work again right after.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::*;

fn guest_dir() -> PathBuf {
    match std::env::var_os("NATRIUM_TEST_GUESTS") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-guests"),
    }
}

fn guest(name: &str) -> PathBuf {
    let p = guest_dir().join(format!("{name}.wasm"));
    assert!(
        p.is_file(),
        "test guest {} is missing: run tests/guests/build.sh first",
        p.display()
    );
    p
}

/// One engine for all tests, caching compiled guests under target/ so reruns are fast.
fn engine() -> &'static PluginEngine {
    static ENGINE: OnceLock<PluginEngine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        match PluginEngine::new(EngineConfig {
            cache_dir: Some(guest_dir().join("cache")),
        }) {
            Ok(e) => e,
            Err(e) => panic!("engine: {e}"),
        }
    })
}

/// Generous deadline: a loaded 2-core machine can deschedule a thread for milliseconds, and
/// a wall-clock deadline counts that time too. Tests of the deadline set their own.
fn spec(name: &str, role: Role) -> PluginSpec {
    let mut s = PluginSpec::new(name, guest(name), role);
    s.deadline = Duration::from_secs(1);
    s
}

fn transformer(spec: &PluginSpec) -> Transformer {
    match engine().load_transformer(spec) {
        Ok(t) => t,
        Err(e) => panic!("load: {e}"),
    }
}

fn msg(subject: &str) -> Message {
    Message {
        subject: subject.to_string(),
        reply: None,
        headers: Vec::new(),
        payload: Bytes::from_static(b"hello"),
    }
}

fn ok<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("unexpected error: {e}"),
    }
}

#[test]
fn passthrough_outcomes_and_host_imports() {
    let mut s = spec("passthrough", Role::Transformer);
    s.config_json = r#"{"greeting":"hi"}"#.into();
    let t = transformer(&s);
    assert_eq!(ok(t.transform("A", &msg("a.b"))), Outcome::Pass);

    let mut m = msg("rewrite");
    m.reply = Some("_INBOX.1".into());
    m.headers = vec![("X-In".into(), "1".into())];
    let Outcome::Replace(r) = ok(t.transform("A", &m)) else {
        panic!("expected a replacement")
    };
    assert_eq!(r.subject, "rewritten");
    assert_eq!(r.reply.as_deref(), Some("_INBOX.1"));
    assert_eq!(
        r.headers,
        vec![
            ("X-In".into(), "1".into()),
            ("X-Rewritten".into(), "yes".into())
        ]
    );
    assert_eq!(&r.payload[..], b"HELLO");

    assert_eq!(
        ok(t.transform("A", &msg("drop"))),
        Outcome::Drop("dropped by request".into())
    );
    let Outcome::Replace(c) = ok(t.transform("A", &msg("config"))) else {
        panic!("expected the config")
    };
    assert_eq!(&c.payload[..], br#"{"greeting":"hi"}"#);

    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let Outcome::Replace(n) = ok(t.transform("A", &msg("now"))) else {
        panic!("expected the time")
    };
    let now: u64 = ok(std::str::from_utf8(&n.payload)
        .map_err(|e| e.to_string())
        .and_then(|s| s.parse::<u64>().map_err(|e| e.to_string())));
    assert!(
        now >= before && now - before < 60_000_000_000,
        "{now} vs {before}"
    );

    assert_eq!(ok(t.transform("A", &msg("log"))), Outcome::Pass);

    let batch = [msg("a"), msg("drop"), msg("b")];
    let out = ok(t.transform_batch("A", &batch));
    assert_eq!(out.len(), 3);
    assert_eq!(out[0], Outcome::Pass);
    assert!(matches!(out[1], Outcome::Drop(_)));
    assert!(ok(t.transform_batch("A", &[])).is_empty());

    let st = t.stats();
    assert_eq!(st.name, "passthrough");
    assert_eq!(st.role, "transformer");
    assert_eq!(st.errors.total(), 0);
    assert_eq!(st.instances_created, 1, "one instance, reused: {st:?}");
}

#[test]
fn malformed_batch_is_an_error_and_the_plugin_recovers() {
    let t = transformer(&spec("passthrough", Role::Transformer));
    let e = t.transform_batch("A", &[msg("short"), msg("b")]);
    assert!(
        matches!(e, Err(PluginError::Malformed(ref m)) if m.contains("1 outcomes for 2")),
        "{e:?}"
    );
    assert_eq!(ok(t.transform_batch("A", &[msg("a"), msg("b")])).len(), 2);
    let st = t.stats();
    assert_eq!(st.errors.malformed, 1);
    assert_eq!(st.instances_recycled, 1);
}

#[test]
fn stdio_is_captured_and_blocking_traps_outside_tokio() {
    let t = transformer(&spec("passthrough", Role::Transformer));
    assert_eq!(ok(t.transform("A", &msg("print"))), Outcome::Pass);
    let e = t.transform("A", &msg("sleep"));
    assert!(
        matches!(e, Err(PluginError::Trap(ref m)) if m.contains("may not block")),
        "{e:?}"
    );
    assert_eq!(ok(t.transform("A", &msg("a"))), Outcome::Pass);
}

/// wasmtime-wasi's sync bindings would call `Handle::block_on` here and panic the worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_and_sleep_on_a_tokio_worker_do_not_panic() {
    let t = transformer(&spec("passthrough", Role::Transformer));
    assert_eq!(ok(t.transform("A", &msg("print"))), Outcome::Pass);
    let e = t.transform("A", &msg("sleep"));
    assert!(matches!(e, Err(PluginError::Trap(_))), "{e:?}");
    assert_eq!(ok(t.transform("A", &msg("a"))), Outcome::Pass);
}

#[test]
fn infinite_loop_times_out_within_the_deadline() {
    let mut s = spec("looper", Role::Transformer);
    s.deadline = Duration::from_millis(5);
    let t = transformer(&s);
    assert_eq!(ok(t.transform("A", &msg("ok"))), Outcome::Pass);
    for _ in 0..3 {
        let start = Instant::now();
        let e = t.transform("A", &msg("spin"));
        let took = start.elapsed();
        assert_eq!(e, Err(PluginError::Timeout));
        assert!(
            took >= Duration::from_millis(4),
            "stopped too early: {took:?}"
        );
        // Generous: the machine may be busy compiling.
        assert!(took < Duration::from_millis(250), "took {took:?}");
        assert_eq!(ok(t.transform("A", &msg("ok"))), Outcome::Pass);
    }
    let e = t.transform_batch("A", &[msg("ok"), msg("spin")]);
    assert_eq!(e, Err(PluginError::Timeout));
    let st = t.stats();
    assert_eq!(st.errors.timeout, 4);
    assert_eq!(st.instances_recycled, 4);
    assert_eq!(st.calls, 8);
}

#[test]
fn memory_bomb_is_out_of_memory() {
    let mut s = spec("membomb", Role::Transformer);
    s.memory_limit = 16 * 1024 * 1024;
    s.deadline = Duration::from_secs(2);
    let t = transformer(&s);
    for _ in 0..2 {
        assert_eq!(
            t.transform("A", &msg("bomb")),
            Err(PluginError::OutOfMemory)
        );
        assert_eq!(ok(t.transform("A", &msg("ok"))), Outcome::Pass);
    }
    let st = t.stats();
    assert_eq!(st.errors.out_of_memory, 2);
    assert_eq!(st.instances_recycled, 2);
}

#[test]
fn memory_cap_below_the_initial_memory_is_a_load_error() {
    let mut s = spec("passthrough", Role::Transformer);
    s.memory_limit = 64 * 1024;
    match engine().load_transformer(&s) {
        Err(PluginError::Load(m)) => {
            assert!(
                m.contains("plugin 'passthrough'") && m.contains("cannot instantiate"),
                "{m}"
            )
        }
        Err(e) => panic!("wrong error {e:?}"),
        Ok(_) => panic!("loaded with 64 KiB of memory"),
    }
}

#[test]
fn traps_and_panics_are_traps() {
    let t = transformer(&spec("trapper", Role::Transformer));
    for subject in ["panic", "unreachable", "panic"] {
        let e = t.transform("A", &msg(subject));
        assert!(matches!(e, Err(PluginError::Trap(_))), "{subject}: {e:?}");
        assert_eq!(ok(t.transform("A", &msg("fine"))), Outcome::Pass);
    }
    let st = t.stats();
    assert_eq!(st.errors.trap, 3);
    assert_eq!(st.instances_recycled, 3);
    assert_eq!(st.errors.total(), 3);
}

#[test]
fn wrong_world_names_the_missing_export() {
    let e = engine().load_transformer(&spec("wrong-world", Role::Transformer));
    let Err(PluginError::Load(m)) = e else {
        panic!("expected a load error, got {:?}", e.map(|_| ()))
    };
    assert!(
        m.starts_with("plugin 'wrong-world' (")
            && m.ends_with(
                "wrong-world.wasm): is not a transformer: missing export \
                 natrium:plugin/transformation@0.1.0 (or \
                 natrium:plugin/batch-transformation@0.1.0) (it is mapper)"
            ),
        "{m}"
    );
    let e = engine().load_authorizer(&spec("wrong-world", Role::Authorizer));
    assert!(
        matches!(e, Err(PluginError::Load(ref m)) if m.contains("is not an authorizer: missing export natrium:plugin/authorization@0.1.0")),
        "{:?}",
        e.map(|_| ())
    );
}

#[test]
fn mapper_maps_and_caches_deterministic_results() {
    let m = match engine().load_mapper(&spec("wrong-world", Role::Mapper)) {
        Ok(m) => m,
        Err(e) => panic!("{e}"),
    };
    assert!(m.is_deterministic());
    assert_eq!(ok(m.map("A", "old.x")), Some("new.x".to_string()));
    assert_eq!(ok(m.map("A", "other")), None);
    let calls = m.stats().calls;
    assert_eq!(ok(m.map("A", "old.x")), Some("new.x".to_string()));
    assert_eq!(ok(m.map("A", "other")), None);
    let st = m.stats();
    assert_eq!(st.calls, calls, "served from the cache");
    assert_eq!(st.cache_hits, 2);
    assert!(matches!(m.map("trap", "old.x"), Err(PluginError::Trap(_))));
    assert_eq!(ok(m.map("B", "old.y")), Some("new.y".to_string()));
}

#[test]
fn authorizer_decides_and_fails_closed() {
    let mut s = spec("authz", Role::Authorizer);
    s.deadline = Duration::from_millis(50);
    let a = match engine().load_authorizer(&s) {
        Ok(a) => a,
        Err(e) => panic!("{e}"),
    };
    let req = ConnectRequest {
        user: Some("alice".into()),
        pass: Some("secret".into()),
        client_ip: "127.0.0.1".into(),
        client_port: 5000,
        ..ConnectRequest::default()
    };
    let Decision::Allow(d) = ok(a.authorize_blocking(&req)) else {
        panic!("alice denied")
    };
    assert_eq!(d.account, "A");
    assert_eq!(d.user, "alice");
    assert_eq!(d.publish.allow, ["orders.>"]);
    assert_eq!(d.publish.deny, ["orders.secret"]);
    assert_eq!(
        d.allow_responses,
        Some(ResponsePermission {
            max_msgs: 1,
            expires_ms: 500
        })
    );
    assert_eq!(d.limits.max_subscriptions, Some(10));
    assert_eq!(d.expires_at, None);

    let bob = ConnectRequest {
        user: Some("bob".into()),
        ..req.clone()
    };
    assert_eq!(
        ok(a.authorize_blocking(&bob)),
        Decision::Deny("unknown user from 127.0.0.1".into())
    );

    let looping = ConnectRequest {
        user: Some("loop".into()),
        ..req.clone()
    };
    assert_eq!(a.authorize_blocking(&looping), Err(PluginError::Timeout));

    let rt = ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build());
    rt.block_on(async {
        assert!(matches!(
            ok(a.authorize(req.clone()).await),
            Decision::Allow(_)
        ));
        assert_eq!(a.authorize(looping).await, Err(PluginError::Timeout));
    });
    assert_eq!(a.stats().errors.timeout, 2);
}

#[test]
fn concurrent_callers_get_their_own_instances() {
    let t = transformer(&spec("passthrough", Role::Transformer));
    std::thread::scope(|s| {
        for i in 0..4 {
            let t = &t;
            s.spawn(move || {
                for j in 0..200 {
                    let subject = if (i + j) % 50 == 0 { "drop" } else { "a.b" };
                    let out = ok(t.transform("A", &msg(subject)));
                    assert_eq!(subject == "drop", matches!(out, Outcome::Drop(_)));
                }
            });
        }
    });
    let st = t.stats();
    assert_eq!(st.calls, 800);
    assert!(st.instances_created <= 4, "{st:?}");
    assert_eq!(st.errors.total(), 0);
}

#[test]
fn compiled_components_are_cached_on_disk() {
    let dir = ok(tempfile::tempdir());
    let cache = dir.path().join("cache");
    let make = || match PluginEngine::new(EngineConfig {
        cache_dir: Some(cache.clone()),
    }) {
        Ok(e) => e,
        Err(e) => panic!("{e}"),
    };
    let s = spec("passthrough", Role::Transformer);
    let cold = Instant::now();
    ok(make().load_transformer(&s));
    let cold = cold.elapsed();
    let files: Vec<_> = ok(std::fs::read_dir(&cache))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("cwasm"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].extension().and_then(|e| e.to_str()), Some("cwasm"));

    let warm = Instant::now();
    let t = ok(make().load_transformer(&s));
    let warm = warm.elapsed();
    assert_eq!(ok(t.transform("A", &msg("a"))), Outcome::Pass);
    eprintln!("load: cold {cold:?}, from cache {warm:?}");

    // A damaged artifact is ignored (recompiled and rewritten), never fatal.
    ok(std::fs::write(&files[0], b"garbage"));
    let t = ok(make().load_transformer(&s));
    assert_eq!(ok(t.transform("A", &msg("a"))), Outcome::Pass);
    assert!(ok(std::fs::metadata(&files[0])).len() > 1000);
}

#[test]
fn unreadable_or_invalid_files_are_load_errors() {
    let dir = ok(tempfile::tempdir());
    let missing = PluginSpec::new("nope", dir.path().join("nope.wasm"), Role::Transformer);
    let e = engine().load_transformer(&missing).map(|_| ());
    assert!(
        matches!(e, Err(PluginError::Load(ref m)) if m.contains("plugin 'nope'") && m.contains("cannot read")),
        "{e:?}"
    );

    let junk = dir.path().join("junk.wasm");
    ok(std::fs::write(&junk, b"\0asm junk"));
    let e = engine()
        .load_transformer(&PluginSpec::new("junk", &junk, Role::Transformer))
        .map(|_| ());
    assert!(
        matches!(e, Err(PluginError::Load(ref m)) if m.contains("plugin 'junk'") && m.contains("not a valid component")),
        "{e:?}"
    );
}

/// A `batch-transformer` guest gets a whole batch in one call, reads what it needs through
/// `pending`, and decides only for the messages that change; a bad answer is `Malformed`
/// and costs the instance, and the next batch works.
#[test]
fn batch_transformer_decides_per_message_in_one_call() {
    let t = transformer(&spec("batch-pass", Role::Transformer));
    assert!(t.is_batch());
    let mut rewrite = msg("rewrite");
    rewrite.reply = Some("_INBOX.1".into());
    rewrite.headers = vec![("A".into(), "1".into())];
    let batch = [msg("a"), rewrite, msg("drop"), msg("b")];
    let refs: Vec<MessageRef<'_>> = batch.iter().map(Message::as_ref).collect();
    let out = ok(t.transform_pending("A", &refs));
    assert_eq!(out.len(), 4);
    assert_eq!(out[0], Outcome::Pass);
    assert_eq!(
        out[1],
        Outcome::Replace(Message {
            subject: "rewritten".into(),
            reply: Some("_INBOX.1".into()),
            headers: vec![("A".into(), "1".into())],
            payload: Bytes::from_static(b"HELLO"),
        })
    );
    assert_eq!(out[2], Outcome::Drop("dropped 5 bytes".into()));
    assert_eq!(out[3], Outcome::Pass);
    // The one-message entry points work on a batch guest too.
    assert_eq!(ok(t.transform("A", &msg("x"))), Outcome::Pass);
    assert_eq!(
        ok(t.transform_batch("A", &[msg("drop")])),
        vec![Outcome::Drop("dropped 5 bytes".into())]
    );
    let e = t.transform_batch("A", &[msg("a"), msg("twice")]);
    assert!(matches!(e, Err(PluginError::Malformed(_))), "{e:?}");
    assert_eq!(ok(t.transform_batch("A", &[msg("a")])), vec![Outcome::Pass]);
    assert_eq!(t.stats().instances_recycled, 1);

    let mut pass = spec("batch-pass", Role::Transformer);
    pass.config_json = r#"{"mode":"pass"}"#.into();
    let t = transformer(&pass);
    let out = ok(t.transform_batch("A", &[msg("rewrite"), msg("drop")]));
    assert_eq!(out, vec![Outcome::Pass, Outcome::Pass]);
}

/// Numbers for the report: `cargo test -p natrium --lib plugin::tests::measure -- --ignored --nocapture`
#[test]
#[ignore]
fn measure() {
    let t = transformer(&spec("passthrough", Role::Transformer));
    let m = Message {
        subject: "orders.eu.created".into(),
        reply: None,
        headers: vec![("Nats-Msg-Id".into(), "abc".into())],
        payload: Bytes::from(vec![b'x'; 128]),
    };
    for _ in 0..10_000 {
        ok(t.transform("A", &m));
    }
    let n = 200_000;
    let start = Instant::now();
    for _ in 0..n {
        ok(t.transform("A", &m));
    }
    let per_call = start.elapsed() / n;
    let batch: Vec<Message> = (0..16).map(|_| m.clone()).collect();
    let start = Instant::now();
    for _ in 0..n / 16 {
        ok(t.transform_batch("A", &batch));
    }
    let per_msg_batched = start.elapsed() / n;
    let mut pass = spec("batch-pass", Role::Transformer);
    pass.config_json = r#"{"mode":"pass"}"#.into();
    let bt = transformer(&pass);
    let start = Instant::now();
    let batch: Vec<MessageRef<'_>> = (0..64).map(|_| m.as_ref()).collect();
    for _ in 0..n / 64 {
        ok(bt.transform_pending("A", &batch));
    }
    let per_msg_pending = start.elapsed() / n;
    eprintln!("batch-transformer pass-through, batches of 64: {per_msg_pending:?}/msg");

    // Instantiation: a trap forces a fresh instance for the next call.
    let tr = transformer(&spec("trapper", Role::Transformer));
    let rounds = 500;
    let mut fresh = Duration::ZERO;
    for _ in 0..rounds {
        let _ = tr.transform("A", &msg("panic"));
        let start = Instant::now();
        ok(tr.transform("A", &msg("ok")));
        fresh += start.elapsed();
    }
    let reused = Instant::now();
    for _ in 0..rounds {
        ok(tr.transform("A", &msg("ok")));
    }
    let reused = reused.elapsed() / rounds;
    eprintln!(
        "transform, 128-byte payload, reused instance: {per_call:?}/call; batch of 16: {per_msg_batched:?}/msg; \
         call on a fresh instance: {:?} (reused: {reused:?})",
        fresh / rounds
    );
}

#[test]
fn a_pinned_hash_must_match_the_file() {
    use sha2::Digest;
    let mut s = spec("authz", Role::Authorizer);
    let bytes = ok(std::fs::read(&s.path));
    let actual: String = sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();

    s.sha256 = Some(actual.clone());
    let a = ok(engine().load_authorizer(&s));
    assert_eq!(a.sha256(), actual, "the handle reports the hash it loaded");

    let wrong = "ab".repeat(32);
    s.sha256 = Some(wrong.clone());
    let Err(PluginError::Load(m)) = engine().load_authorizer(&s).map(|_| ()) else {
        panic!("a wrong pin must refuse the load")
    };
    assert!(
        m.contains(&format!(
            "sha256 mismatch: the binding pins {wrong}, the file is {actual}"
        )),
        "{m}"
    );
}

/// The table `diagnose` names imports by must agree with the linker: every guest the linker
/// accepts has no import the table calls ungranted, and the one it refuses is named.
#[test]
fn the_diagnosis_agrees_with_the_linker() {
    for name in [
        "passthrough",
        "batch-pass",
        "authz",
        "wrong-world",
        "trapper",
    ] {
        let d = ok(engine().diagnose(&guest(name)));
        let Some(i) = d.inspection else {
            panic!("{name}: {:?}", d.compile_error)
        };
        assert_eq!(i.link_error, None, "{name}");
        let ungranted: Vec<_> = i.ungranted().collect();
        assert!(ungranted.is_empty(), "{name}: {ungranted:?}");
    }
    let d = ok(engine().diagnose(&guest("http-importer")));
    let i = d
        .inspection
        .unwrap_or_else(|| panic!("{:?}", d.compile_error));
    assert!(i.link_error.is_some());
    let names: Vec<&str> = i.ungranted().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["wasi:http/client@0.2.0"]);
    assert_eq!(i.worlds, [diagnose::World::Authorizer]);
}
