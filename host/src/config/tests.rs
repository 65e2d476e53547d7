use std::path::Path;
use std::time::Duration;

use super::*;

fn tree(text: &str) -> Map {
    match parse_tree_str(text, Path::new("t.conf")) {
        Ok(m) => m,
        Err(e) => panic!("parse failed: {e}"),
    }
}

fn opts(text: &str) -> Options {
    match parse_str(text, Path::new("t.conf")) {
        Ok(o) => o,
        Err(e) => panic!("apply failed: {e}"),
    }
}

fn err(text: &str) -> String {
    match parse_str(text, Path::new("t.conf")) {
        Ok(_) => panic!("expected an error for {text:?}"),
        Err(e) => e.to_string(),
    }
}

fn kind<'m>(m: &'m Map, key: &str) -> &'m Kind {
    match m.get(key) {
        Some(v) => &v.kind,
        None => panic!("missing key {key}"),
    }
}

// ---- syntax -------------------------------------------------------------------------------

#[test]
fn key_separators() {
    let m = tree("a: 1\nb = 2\nc 3\nd:4\ne=5\n'f g': 6\n\"h\" = 7");
    for (k, v) in [
        ("a", 1),
        ("b", 2),
        ("c", 3),
        ("d", 4),
        ("e", 5),
        ("f g", 6),
        ("h", 7),
    ] {
        assert_eq!(kind(&m, k), &Kind::Integer(v), "{k}");
    }
}

#[test]
fn scalars() {
    let m = tree(
        "s: hello\nq: \"a b\"\nsq: 'x \\n y'\nf: 1.5\nn: -42\nip: 127.0.0.1:4222\n\
         t1: true\nt2: yes\nt3: ON\nf1: false\nf2: no\nf3: off\nqb: \"true\"\nw: 1x\n",
    );
    assert_eq!(kind(&m, "s"), &Kind::String("hello".into()));
    assert_eq!(kind(&m, "q"), &Kind::String("a b".into()));
    assert_eq!(kind(&m, "sq"), &Kind::String("x \\n y".into()));
    assert_eq!(kind(&m, "f"), &Kind::Float(1.5));
    assert_eq!(kind(&m, "n"), &Kind::Integer(-42));
    assert_eq!(kind(&m, "ip"), &Kind::String("127.0.0.1:4222".into()));
    for k in ["t1", "t2", "t3"] {
        assert_eq!(kind(&m, k), &Kind::Bool(true));
    }
    for k in ["f1", "f2", "f3"] {
        assert_eq!(kind(&m, k), &Kind::Bool(false));
    }
    assert_eq!(kind(&m, "qb"), &Kind::String("true".into()));
    assert_eq!(kind(&m, "w"), &Kind::String("1x".into()));
}

#[test]
fn string_escapes() {
    let m = tree(r#"a: "t\tn\nr\rq\"b\\x\x41""#);
    assert_eq!(kind(&m, "a"), &Kind::String("t\tn\nr\rq\"b\\xA".into()));
    assert!(err(r#"a: "\q""#).contains("invalid escape"));
    assert!(err(r#"a: "\xZZ""#).contains("hexadecimal"));
}

#[test]
fn sizes_match_nats_server() {
    // Checked against nats-server 2.9.10: bare letter = decimal, b/i/ib = binary.
    let cases: &[(&str, i64)] = &[
        ("1k", 1000),
        ("1K", 1000),
        ("1kb", 1024),
        ("1KB", 1024),
        ("1ki", 1024),
        ("1KiB", 1024),
        ("2m", 2_000_000),
        ("1mb", 1 << 20),
        ("64MiB", 64 << 20),
        ("1mi", 1 << 20),
        ("1g", 1_000_000_000),
        ("1GB", 1 << 30),
        ("1gib", 1 << 30),
        ("1t", 1_000_000_000_000),
        ("1tb", 1 << 40),
        ("1p", 1_000_000_000_000_000),
        ("1pib", 1 << 50),
        ("1e", 1_000_000_000_000_000_000),
        ("1eb", 1 << 60),
    ];
    for (text, want) in cases {
        let m = tree(&format!("x: {text}"));
        assert_eq!(kind(&m, "x"), &Kind::Integer(*want), "{text}");
        assert_eq!(m.get("x").and_then(|v| v.literal.as_deref()), Some(*text));
    }
    assert!(err("x: 10e").contains("out of range"));
    assert!(err("x: 99999999999999999999").contains("out of range"));
    // Not a size suffix: a string.
    assert_eq!(kind(&tree("x: 1kbb"), "x"), &Kind::String("1kbb".into()));
}

#[test]
fn comments() {
    let m = tree(
        "# hash\n// slashes\na: 1 # trailing\nb: 2 // trailing\nc: x#y\n\
         m { # in map\n  k: v // here\n}\narr: [1, # c\n 2 // c\n]\n",
    );
    assert_eq!(kind(&m, "a"), &Kind::Integer(1));
    assert_eq!(kind(&m, "b"), &Kind::Integer(2));
    // As in nats-server, '#' inside an unquoted word does not start a comment.
    assert_eq!(kind(&m, "c"), &Kind::String("x#y".into()));
    assert_eq!(m.len(), 5);
}

#[test]
fn maps_nested_and_separators() {
    let m = tree("outer {\n inner { a: 1, b: 2; c: 3\n d = [1] }\n x: y }\nflat {a:1,b:2}");
    let outer = m.get("outer").and_then(Value::as_map).expect("map");
    let inner = outer.get("inner").and_then(Value::as_map).expect("map");
    assert_eq!(inner.len(), 4);
    assert_eq!(outer.get("x").and_then(Value::as_str), Some("y"));
    assert_eq!(m.get("flat").and_then(Value::as_map).map(Map::len), Some(2));
    // Key followed directly by a brace, and brace on the next line.
    let m = tree("a{ b: 1 }\nc\n{\n d: 2\n}");
    assert!(m.get("a").and_then(Value::as_map).is_some());
    assert!(m.get("c").and_then(Value::as_map).is_some());
}

#[test]
fn arrays() {
    let m = tree("a: [1, 2, 3]\nb: [\n  x\n  y,\n  \"z\"\n]\nc: []\nd: [1,2,]\ne: [{k: 1}, [2]]");
    let len = |k: &str| m.get(k).and_then(Value::as_array).map(<[Value]>::len);
    assert_eq!(len("a"), Some(3));
    assert_eq!(len("b"), Some(3));
    assert_eq!(len("c"), Some(0));
    assert_eq!(len("d"), Some(2));
    assert_eq!(len("e"), Some(2));
    assert!(err("a: [1 2]").contains("array value terminator"));
    assert!(err("a: [,1]").contains("unexpected array value terminator"));
}

#[test]
fn top_level_braces_and_semicolons() {
    let m = tree("{\n port: 4222; debug: true\n}\n");
    assert_eq!(kind(&m, "port"), &Kind::Integer(4222));
    assert_eq!(kind(&m, "debug"), &Kind::Bool(true));
}

#[test]
fn block_string() {
    let m = tree("a: (\nline one\n  line two\n)\nb: 1");
    assert_eq!(
        kind(&m, "a"),
        &Kind::String("\nline one\n  line two".into())
    );
    assert_eq!(kind(&m, "b"), &Kind::Integer(1));
}

#[test]
fn duplicate_key_last_wins() {
    let m = tree("a: 1\na: 2");
    assert_eq!(m.len(), 1);
    assert_eq!(kind(&m, "a"), &Kind::Integer(2));
}

#[test]
fn crlf_and_bom() {
    let m = tree("\u{feff}a: 1\r\nb: two\r\n");
    assert_eq!(kind(&m, "a"), &Kind::Integer(1));
    assert_eq!(kind(&m, "b"), &Kind::String("two".into()));
}

#[test]
fn positions() {
    let m = tree("a: 1\n  b: \"x\"\nc {\n   d: [1,\n  2]\n}");
    let b = m.entry("b").expect("b");
    assert_eq!((b.key_pos.line, b.key_pos.column), (2, 3));
    assert_eq!((b.value.pos.line, b.value.pos.column), (2, 6));
    let c = m.get("c").and_then(Value::as_map).expect("c");
    let d = c.get("d").and_then(Value::as_array).expect("d");
    assert_eq!((d[1].pos.line, d[1].pos.column), (5, 3));
    assert_eq!(b.key_pos.to_string(), "t.conf:2:3");
}

// ---- errors -------------------------------------------------------------------------------

#[test]
fn syntax_errors_have_positions() {
    assert_eq!(
        err("port: 4222 4223"),
        "t.conf:1:12: expected a value to end with a new line, comment, ',' or ';', but got '4'"
    );
    assert!(err("a {\n b: 1\n").starts_with("t.conf:1:3: unexpected EOF processing map"));
    assert!(err("a: [1,\n").starts_with("t.conf:1:4: unexpected EOF processing array"));
    assert!(err("a: \"open").starts_with("t.conf:1:4: unexpected EOF in quoted string"));
    assert!(err("a:\nb: 1").starts_with("t.conf:1:3: expected a value for \"a\""));
    assert!(err("a").contains("unexpected EOF"));
    assert!(err(": 1").starts_with("t.conf:1:1: unexpected key separator"));
    assert!(err("a: (\nno end").contains("block string"));
}

#[test]
fn never_panics_on_garbage() {
    let inputs = [
        "",
        "{",
        "}",
        "[",
        "]",
        "\"",
        "'",
        "(",
        "$",
        "a: $",
        "a: -",
        "a: .",
        "a=\"\\",
        "a=\"\\x",
        "a=\"\\x4",
        "\u{0}",
        "é: ü",
        "a: [{[{",
        "a: 1\u{2028}b: 2",
        "include",
        "include ",
        "a: 0x",
        "a: --1",
        "a: 1..2",
        "a: -.5",
        "🙂: 🙂",
        "a { include }",
        "a: \"\\xé1\"",
    ];
    for input in inputs {
        let _ = parse_tree_str(input, Path::new("t.conf"));
        let _ = parse_str(input, Path::new("t.conf"));
    }
}

#[test]
fn unknown_top_level_key() {
    assert_eq!(
        err("port: 1\n  foo: 1"),
        "t.conf:2:3: unknown field \"foo\""
    );
    assert_eq!(
        err("authorization { bogus: 1 }"),
        "t.conf:1:17: unknown field \"bogus\""
    );
    assert!(err("cluster { foo: 1 }").contains("unknown field \"foo\""));
    assert!(err("jetstream { foo: 1 }").contains("unknown field \"foo\""));
    assert!(err("tls { foo: 1 }").contains("unknown field [\"foo\"]"));
    // nats-server has no max_pings_out key (it is ping_max).
    assert!(err("max_pings_out: 3").contains("unknown field"));
}

#[test]
fn keys_are_case_insensitive() {
    let o = opts("PORT: 5000\nAuthorization { USER: a, PASSWORD: b }");
    assert_eq!(o.listen.port, 5000);
    assert_eq!(o.auth.username.as_deref(), Some("a"));
}

// ---- variables and includes --------------------------------------------------------------

#[test]
fn variables_from_enclosing_scopes() {
    let m = tree("A: 1\nouter {\n B: 2\n inner { x: $A, y: $B }\n arr: [$A, {z: $B}]\n}");
    let outer = m.get("outer").and_then(Value::as_map).expect("outer");
    let inner = outer.get("inner").and_then(Value::as_map).expect("inner");
    assert_eq!(inner.get("x").and_then(Value::as_int), Some(1));
    assert_eq!(inner.get("y").and_then(Value::as_int), Some(2));
    // The value takes the position of the reference, for error messages.
    assert_eq!(inner.get("x").map(|v| v.pos.line), Some(4));
}

#[test]
fn variable_must_be_defined_earlier() {
    assert_eq!(
        err("a: $NATRIUM_TEST_NOPE_VAR\nNATRIUM_TEST_NOPE_VAR: 1"),
        "t.conf:1:4: variable reference for 'NATRIUM_TEST_NOPE_VAR' can not be found"
    );
}

#[test]
fn variables_used_are_not_unknown_fields() {
    let o = opts("TOKEN: s3cr3t\nauthorization { token: $TOKEN }");
    assert_eq!(o.auth.token.as_deref(), Some("s3cr3t"));
    // Defined but never used: still an unknown field, as in nats-server.
    assert!(err("UNUSED: 1").contains("unknown field \"UNUSED\""));
}

#[test]
fn failure_backoff() {
    use crate::options::FailureBackoff;
    assert_eq!(
        opts("authorization { user: a, password: b }")
            .auth
            .failure_backoff,
        None
    );
    let o = opts(
        "authorization {\n  user: a\n  password: b\n  \
         failure_backoff { max_failures: 3, window: \"1m\", delay: \"500ms\" }\n}",
    );
    assert_eq!(
        o.auth.failure_backoff,
        Some(FailureBackoff {
            max_failures: 3,
            window: Duration::from_secs(60),
            delay: Duration::from_millis(500),
        })
    );
    // Keys left out keep their defaults.
    let o = opts("authorization { failure_backoff {} }");
    assert_eq!(o.auth.failure_backoff, Some(FailureBackoff::default()));
    for (conf, want) in [
        ("max_failures: 0", "max_failures"),
        ("window: \"0s\"", "must be positive"),
        ("delay: 1", "a duration string"),
        ("delay: \"20s\"", "must not exceed window"),
        ("tries: 3", "unknown field \"tries\""),
    ] {
        let e = err(&format!(
            "authorization {{\n failure_backoff {{ {conf} }}\n}}"
        ));
        assert!(e.contains(want), "{conf}: {e}");
        assert!(e.contains(":2:"), "{conf}: no line in {e}");
    }
}

#[test]
fn auth_callout() {
    use crate::options::AuthCallout;
    let issuer = ::nkeys::KeyPair::new_account().public_key();
    let xkey = ::nkeys::XKey::new().public_key();
    let o = opts(&format!(
        "accounts {{ AUTH {{ users: [{{user: auth, password: pwd}}] }}, B {{}} }}\n\
         authorization {{ auth_callout {{ issuer: {issuer}, auth_users: [auth], \
         account: AUTH, xkey: {xkey} }} }}"
    ));
    assert_eq!(
        o.auth.callout,
        Some(AuthCallout {
            issuer: issuer.clone(),
            auth_users: vec!["auth".into()],
            account: "AUTH".into(),
            xkey: Some(xkey),
        })
    );
    assert!(validate(&o).is_ok());
    // The account defaults to $G, where the auth user must then be.
    let o = opts(&format!(
        "authorization {{ users: [{{user: auth, password: pwd}}]\n\
         auth_callout {{ issuer: {issuer}, auth_users: auth }} }}"
    ));
    assert_eq!(
        o.auth.callout.as_ref().map(|c| c.account.as_str()),
        Some("$G")
    );
    assert!(validate(&o).is_ok());

    for (conf, want) in [
        ("auth_users: [a]", "requires an issuer"),
        ("issuer: UABC", "account public NKey"),
        (&format!("issuer: {issuer}"), "requires auth_users"),
        (
            &format!("issuer: {issuer}, auth_users: a, xkey: XBAD"),
            "curve public key",
        ),
        (
            &format!("issuer: {issuer}, auth_users: a, nope: 1"),
            "unknown field",
        ),
    ] {
        let e = err(&format!("authorization {{ auth_callout {{ {conf} }} }}"));
        assert!(e.contains(want), "{conf}: {e}");
    }
    for (conf, want) in [
        (
            "auth_users: [ghost]",
            "auth user \"ghost\" is not a user of account \"$G\"",
        ),
        (
            "auth_users: [auth], account: NOPE",
            "account \"NOPE\" is not configured",
        ),
    ] {
        let o = opts(&format!(
            "authorization {{ users: [{{user: auth, password: pwd}}]\n\
             auth_callout {{ issuer: {issuer}, {conf} }} }}"
        ));
        let e = validate(&o)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains(want), "{conf}: {e}");
    }
}

#[test]
fn bcrypt_is_not_a_variable() {
    let o = opts("authorization { user: a, password: $2a$11$abcdefghijklmnopqrstuv }");
    assert_eq!(
        o.auth.password.as_deref(),
        Some("$2a$11$abcdefghijklmnopqrstuv")
    );
}

#[test]
fn environment_variables_are_typed() {
    // Unique names: tests run in parallel in one process.
    std::env::set_var("NATRIUM_CFG_TEST_PORT", "4333");
    std::env::set_var("NATRIUM_CFG_TEST_SIZE", "2MB");
    std::env::set_var("NATRIUM_CFG_TEST_NAME", "my server");
    std::env::set_var("NATRIUM_CFG_TEST_BOOL", "yes");
    let o = opts(
        "port: $NATRIUM_CFG_TEST_PORT\nmax_payload: $NATRIUM_CFG_TEST_SIZE\n\
         client_advertise: $NATRIUM_CFG_TEST_NAME\ndebug: $NATRIUM_CFG_TEST_BOOL",
    );
    assert_eq!(o.listen.port, 4333);
    assert_eq!(o.limits.max_payload, 2 << 20);
    assert_eq!(o.listen.client_advertise.as_deref(), Some("my server"));
    assert!(o.logging.debug);
    // A file definition shadows the environment.
    std::env::set_var("NATRIUM_CFG_TEST_SHADOW", "1");
    let m = tree("NATRIUM_CFG_TEST_SHADOW: 2\nx: $NATRIUM_CFG_TEST_SHADOW");
    assert_eq!(m.get("x").and_then(Value::as_int), Some(2));
}

#[test]
fn includes_relative_to_including_file() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    std::fs::create_dir(dir.path().join("sub"))?;
    std::fs::write(
        dir.path().join("main.conf"),
        "port: 1234\ninclude sub/auth.conf\nhttp_port: 8222\n",
    )?;
    std::fs::write(
        dir.path().join("sub/auth.conf"),
        "authorization {\n  include 'users.conf'\n}\ndebug: true",
    )?;
    std::fs::write(
        dir.path().join("sub/users.conf"),
        "user: bob\npassword: \"pw\"\n",
    )?;
    let o = load(&dir.path().join("main.conf"))?;
    assert_eq!(o.listen.port, 1234);
    assert_eq!(o.listen.http_port, Some(8222));
    assert!(o.logging.debug);
    assert_eq!(o.auth.username.as_deref(), Some("bob"));
    assert_eq!(o.auth.password.as_deref(), Some("pw"));
    assert_eq!(
        o.config_file.as_deref(),
        Some(dir.path().join("main.conf").as_path())
    );

    // Quoted form, and parse_str resolving against the origin's directory.
    let o = parse_str(
        "include \"sub/auth.conf\"",
        &dir.path().join("virtual.conf"),
    )?;
    assert!(o.logging.debug);
    assert_eq!(o.config_file, None);
    Ok(())
}

#[test]
fn nesting_is_limited_with_the_position_of_the_level_too_many() {
    use super::parser::MAX_NESTING;
    const DEEP: usize = 100_000;
    // (opening text, closing text, levels each opens); `a: ` comes first, so the bracket of
    // the level past the limit is at column 3 + 1 + the length of the limit's openings.
    for (open, close, levels) in [("{a: ", "}", 1), ("[", "]", 1), ("{a: [", "]}", 2)] {
        let text = format!("a: {}{}", open.repeat(DEEP), close.repeat(DEEP));
        let column = 3 + 1 + open.len() * MAX_NESTING / levels;
        let want =
            format!("t.conf:1:{column}: maps and arrays nested more than {MAX_NESTING} deep");
        assert_eq!(err(&text), want, "{open}");
    }
    // Unclosed, one level a line: still the limit (not the missing bracket), on its line.
    for text in [
        format!("a {}", "{\na ".repeat(DEEP)),
        format!("a: {}", "[\n".repeat(DEEP)),
    ] {
        let e = err(&text);
        let want = format!("t.conf:{}:", MAX_NESTING + 1);
        assert!(
            e.starts_with(&want) && e.contains("nested more than"),
            "{e}"
        );
    }
    // The limit itself is fine.
    let ok = format!("a: {}{}", "[".repeat(MAX_NESTING), "]".repeat(MAX_NESTING));
    assert!(parse_tree_str(&ok, Path::new("t.conf")).is_ok());
}

#[test]
fn nesting_counts_across_includes() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let half = super::parser::MAX_NESTING / 2 + 1;
    let levels =
        |n: usize, inner: &str| format!("{}{inner}\n{}", "x {\n".repeat(n), "}\n".repeat(n));
    std::fs::write(
        dir.path().join("main.conf"),
        levels(half, "include inner.conf"),
    )?;
    std::fs::write(dir.path().join("inner.conf"), levels(half, "y: 1"))?;
    let e = load(&dir.path().join("main.conf"))
        .map(|_| ())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    let want = format!(
        "main.conf:{}:1: error parsing include file 'inner.conf': {}:{}:3: maps and arrays nested",
        half + 1,
        dir.path().join("inner.conf").display(),
        super::parser::MAX_NESTING - half + 1,
    );
    assert!(e.contains(&want), "{e}\nwanted {want}");
    // Each half alone is fine.
    std::fs::write(dir.path().join("main.conf"), levels(half, "y: 1"))?;
    assert!(parse_tree(&dir.path().join("main.conf")).is_ok());
    Ok(())
}

#[test]
fn include_errors() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let main = dir.path().join("main.conf");
    std::fs::write(&main, "port: 1\ninclude missing.conf\n")?;
    let e = load(&main)
        .map(|_| ())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        e.contains("main.conf:2:1: error parsing include file 'missing.conf'"),
        "{e}"
    );

    // Errors inside an included file carry the included file's position.
    std::fs::write(dir.path().join("bad.conf"), "a: [1\n")?;
    std::fs::write(&main, "include bad.conf\n")?;
    let e = load(&main)
        .map(|_| ())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        e.contains("bad.conf:1:4: unexpected EOF processing array"),
        "{e}"
    );

    // A file including itself is an error, not a stack overflow.
    std::fs::write(&main, "include main.conf\n")?;
    let e = load(&main)
        .map(|_| ())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("nested too deeply"), "{e}");
    Ok(())
}

#[test]
fn missing_file() {
    let e = load(Path::new("/nonexistent/natrium.conf"))
        .err()
        .map(|e| e.to_string());
    assert!(e.is_some_and(|e| e.starts_with("error opening config file /nonexistent/natrium.conf")));
}

// ---- mapping onto Options -------------------------------------------------------------------

#[test]
fn listen_host_port() {
    let o = opts("listen: 127.0.0.1:4333");
    assert_eq!((o.listen.host.as_str(), o.listen.port), ("127.0.0.1", 4333));
    let o = opts("listen: \"[::1]:4334\"");
    assert_eq!((o.listen.host.as_str(), o.listen.port), ("::1", 4334));
    let o = opts("listen: 4335");
    assert_eq!((o.listen.host.as_str(), o.listen.port), ("0.0.0.0", 4335));
    let o = opts("net: 10.0.0.1\nport: -1");
    assert_eq!((o.listen.host.as_str(), o.listen.port), ("10.0.0.1", -1));
    assert_eq!(opts("host: localhost").listen.host, "localhost");
    assert!(err("listen: localhost").contains("could not parse address string \"localhost\""));
    assert!(err("port: 70000").contains("out of range"));
    assert!(err("port: \"abc\"").contains("expected an integer, got string"));
}

#[test]
fn monitoring() {
    let o = opts("http: 8222");
    // An empty host means "the client listener's host", as in nats-server.
    assert_eq!(
        (o.listen.http_host.as_str(), o.listen.http_port),
        ("", Some(8222))
    );
    let o = opts("http: \"127.0.0.1:9222\"");
    assert_eq!(
        (o.listen.http_host.as_str(), o.listen.http_port),
        ("127.0.0.1", Some(9222))
    );
    assert_eq!(opts("monitor_port: 8223").listen.http_port, Some(8223));
    assert_eq!(opts("http_port: -1").listen.http_port, Some(-1));
}

#[test]
fn identity_and_logging() {
    let o = opts(
        "server_name: n1\nserver_tags: [\"a:1\", b]\nclient_advertise: \"x:4222\"\n\
         debug: true\ntrace: true\nlogtime: false\nlog_file: /tmp/n.log\npid_file: /tmp/n.pid\n\
         ports_file_dir: /tmp",
    );
    assert_eq!(o.server_name, "n1");
    assert_eq!(o.server_tags, vec!["a:1".to_string(), "b".to_string()]);
    assert_eq!(o.listen.client_advertise.as_deref(), Some("x:4222"));
    assert!(o.logging.debug && o.logging.trace && !o.logging.logtime);
    assert_eq!(o.logging.file.as_deref(), Some(Path::new("/tmp/n.log")));
    assert_eq!(o.files.pid_file.as_deref(), Some(Path::new("/tmp/n.pid")));
    assert_eq!(o.files.ports_file_dir.as_deref(), Some(Path::new("/tmp")));
    let o = opts("logfile: a.log\npidfile: a.pid\nserver_tags: single");
    assert_eq!(o.logging.file.as_deref(), Some(Path::new("a.log")));
    assert_eq!(o.files.pid_file.as_deref(), Some(Path::new("a.pid")));
    assert_eq!(o.server_tags, vec!["single".to_string()]);
    assert!(err("debug: 1").contains("expected a boolean, got integer"));
}

#[test]
fn limits() {
    let o = opts(
        "max_payload: 2MB\nmax_control_line: 8KB\nmax_connections: 100\nmax_pending: 128MB\nping_max: 5",
    );
    assert_eq!(o.limits.max_payload, 2 << 20);
    assert_eq!(o.limits.max_control_line, 8 << 10);
    assert_eq!(o.limits.max_connections, 100);
    assert_eq!(o.limits.max_pending, 128 << 20);
    assert_eq!(o.limits.max_pings_out, 5);
    assert_eq!(opts("max_conn: 7").limits.max_connections, 7);
    assert_eq!(opts("max_connections: -1").limits.max_connections, u32::MAX);
    // 0 means "default", as in nats-server.
    assert_eq!(opts("max_payload: 0").limits.max_payload, 1 << 20);
    assert_eq!(
        err("max_payload: 5GB"),
        "t.conf:1:14: invalid value for \"max_payload\": max_payload value is too big"
    );
    assert!(err("max_control_line: 3GB").contains("max_control_line value is too big"));
    assert!(err("max_payload: -1").contains("must not be negative"));
    assert!(err("max_payload: 1x").contains("expected an integer, got string"));
}

#[test]
fn validate_payload_vs_pending() {
    let o = opts("max_payload: 65MB");
    assert_eq!(
        validate(&o).err().map(|e| e.to_string()).as_deref(),
        Some("max_payload (68157440) cannot be higher than max_pending (67108864)")
    );
    assert!(validate(&opts("max_payload: 65MB\nmax_pending: 100MB")).is_ok());
    assert!(validate(&opts("server_name: \"a b\"")).is_err());
}

#[test]
fn durations() {
    let o = opts(
        "ping_interval: \"2m\"\nwrite_deadline: \"1.5s\"\nlame_duck_duration: \"1h30m\"\n\
         lame_duck_grace_period: \"500ms\"",
    );
    assert_eq!(o.limits.ping_interval, Duration::from_secs(120));
    assert_eq!(o.limits.write_deadline, Duration::from_millis(1500));
    assert_eq!(o.limits.lame_duck_duration, Duration::from_secs(5400));
    assert_eq!(o.limits.lame_duck_grace_period, Duration::from_millis(500));
    assert!(o.config_warnings.is_empty());

    // Plain integers are seconds, with a warning (nats-server does the same).
    let o = opts("ping_interval: 60\nwrite_deadline: 3");
    assert_eq!(o.limits.ping_interval, Duration::from_secs(60));
    assert_eq!(o.limits.write_deadline, Duration::from_secs(3));
    assert_eq!(o.config_warnings.len(), 2);
    assert!(o.config_warnings[0].contains("ping_interval should be converted to a duration"));

    // Unquoted 2m is the size 2000000, never silently 2000000 seconds.
    assert!(err("ping_interval: 2m").contains("quote durations"));
    assert!(err("write_deadline: \"1x\"").contains("time: unknown unit \"x\" in duration \"1x\""));
    assert!(err("lame_duck_duration: \"10s\"").contains("minimum is 30 seconds"));
    assert!(err("lame_duck_duration: 60").contains("expected a duration string"));
    assert!(err("ping_interval: 1.5").contains("expected a duration"));
}

#[test]
fn go_duration_parser() {
    let ok = |s: &str| parse_duration(s).unwrap_or(Duration::MAX);
    assert_eq!(ok("0"), Duration::ZERO);
    assert_eq!(ok("300ms"), Duration::from_millis(300));
    assert_eq!(ok("1h2m3s"), Duration::from_secs(3723));
    assert_eq!(ok("1.5h"), Duration::from_secs(5400));
    assert_eq!(ok(".5s"), Duration::from_millis(500));
    assert_eq!(ok("10us"), Duration::from_micros(10));
    assert_eq!(ok("10µs"), Duration::from_micros(10));
    assert_eq!(ok("7ns"), Duration::from_nanos(7));
    assert_eq!(ok("+1s"), Duration::from_secs(1));
    let err = |s: &str| parse_duration(s).err().map(|e| e.to_string());
    assert_eq!(
        err("10").as_deref(),
        Some("time: missing unit in duration \"10\"")
    );
    assert_eq!(err("").as_deref(), Some("time: invalid duration \"\""));
    assert_eq!(err("s").as_deref(), Some("time: invalid duration \"s\""));
    assert_eq!(
        err("-1s").as_deref(),
        Some("negative duration \"-1s\" is not allowed")
    );
    assert_eq!(
        parse_duration("1d"),
        Err(DurationError::UnknownUnit {
            input: "1d".into(),
            unit: "d".into()
        })
    );
    assert_eq!(
        err("1d").as_deref(),
        Some("time: unknown unit \"d\" in duration \"1d\"")
    );
    assert!(matches!(
        parse_duration("9999999999h"),
        Err(DurationError::Invalid { .. })
    ));
}

#[test]
fn authorization_block() {
    let o = opts("authorization {\n user: alice\n password: \"s e c\"\n timeout: 1.5\n}");
    assert_eq!(o.auth.username.as_deref(), Some("alice"));
    assert_eq!(o.auth.password.as_deref(), Some("s e c"));
    assert_eq!(o.limits.auth_timeout, Duration::from_millis(1500));
    assert!(o.auth_required());
    let o = opts("authorization { token: abc, timeout: 3 }");
    assert_eq!(o.auth.token.as_deref(), Some("abc"));
    assert_eq!(o.limits.auth_timeout, Duration::from_secs(3));
    assert_eq!(
        opts("authorization { timeout: \"2s\" }")
            .limits
            .auth_timeout,
        Duration::from_secs(2)
    );
    assert!(
        err("authorization { user: a, token: b }").contains("Cannot have a user/pass and token")
    );
    assert!(err("authorization { timeout: -1 }").contains("non-negative"));
    let o = opts("authorization { users: [ {user: a, password: b} ] }");
    assert!(o.unsupported.is_empty(), "{:?}", o.unsupported);
    assert_eq!(o.auth.users.len(), 1);
    assert_eq!(o.auth.users[0].user.as_deref(), Some("a"));
}

#[test]
fn tls_block() {
    let o = opts(
        "tls {\n cert_file: \"./c.pem\"\n key_file: ./k.pem\n ca_file: ca.pem\n verify: true\n \
         timeout: 0.5\n handshake_first: true\n}",
    );
    let t = o.tls.expect("tls");
    assert_eq!(t.cert_file.as_deref(), Some(Path::new("./c.pem")));
    assert_eq!(t.key_file.as_deref(), Some(Path::new("./k.pem")));
    assert_eq!(t.ca_file.as_deref(), Some(Path::new("ca.pem")));
    assert!(t.verify && t.handshake_first);
    assert_eq!(t.timeout, Duration::from_millis(500));
    let t = opts("tls { cert_file: c, key_file: k }").tls.expect("tls");
    assert_eq!(t.timeout, Duration::from_secs(2));
    assert!(!t.verify);
    assert!(err("tls { key_file: k }").contains("missing 'cert_file'"));
    assert!(err("tls { cert_file: c }").contains("missing 'key_file'"));
    let o = opts("tls { cert_file: c, key_file: k, cipher_suites: [a] }");
    assert_eq!(o.unsupported.len(), 1);
    // verify_and_map is supported and implies verify.
    let o = opts("tls { cert_file: c, key_file: k, ca_file: ca, verify_and_map: true }");
    assert!(o.unsupported.is_empty(), "{:?}", o.unsupported);
    let t = o.tls.expect("tls");
    assert!(t.verify && t.verify_and_map);
    let t = opts("tls { cert_file: c, key_file: k, verify_and_map: false }")
        .tls
        .expect("tls");
    assert!(!t.verify && !t.verify_and_map);
}

#[test]
fn jetstream_forms() {
    assert!(opts("jetstream: true").jetstream.enabled);
    assert!(!opts("jetstream: off").jetstream.enabled);
    assert!(opts("jetstream: enabled").jetstream.enabled);
    assert!(!opts("jetstream: \"disabled\"").jetstream.enabled);
    assert!(err("jetstream: maybe").contains("expected 'enabled' or 'disabled'"));
    let o = opts(
        "jetstream {\n store_dir: /data/js\n max_mem: 1G\n max_file_store: 10GB\n domain: hub\n}",
    );
    assert!(o.jetstream.enabled);
    assert_eq!(
        o.jetstream.store_dir.as_deref(),
        Some(Path::new("/data/js"))
    );
    assert!(o.unsupported.is_empty(), "{:?}", o.unsupported);
    assert_eq!(o.jetstream.max_memory, Some(1_000_000_000)); // "G" is decimal, "GB" binary
    assert_eq!(o.jetstream.max_storage, Some(10 << 30));
    assert_eq!(o.jetstream.domain.as_deref(), Some("hub"));
    assert_eq!(
        opts("jetstream { sync_interval: always }")
            .jetstream
            .sync_interval,
        Some(std::time::Duration::ZERO)
    );
    assert_eq!(
        opts("jetstream { sync_interval: \"10s\" }")
            .jetstream
            .sync_interval,
        Some(std::time::Duration::from_secs(10))
    );
    let o = opts("accounts { A { jetstream { max_mem: 1M, max_file: 2M, max_streams: 3 } } }");
    let (name, l) = &o.jetstream.account_limits[0];
    assert_eq!(name, "A");
    assert_eq!(
        (l.max_memory, l.max_storage, l.max_streams),
        (1_000_000, 2_000_000, 3)
    );
    let o = opts("jetstream { enabled: false, strict: true }\nstore_dir: /x");
    assert!(!o.jetstream.enabled);
    assert_eq!(o.jetstream.store_dir.as_deref(), Some(Path::new("/x")));
}

#[test]
fn account_jetstream_limits() {
    let limits = |text: &str| {
        let o = opts(text);
        match o.jetstream.account_limits.first() {
            Some((_, l)) => *l,
            None => panic!("no account limits in {text:?}"),
        }
    };
    // nats-server's boolean `max_stream_bytes` is "max bytes required".
    let l = limits("accounts { A { jetstream { max_stream_bytes: true } } }");
    assert!(l.max_bytes_required);
    assert_eq!(
        (l.memory_max_stream_bytes, l.storage_max_stream_bytes),
        (-1, -1)
    );
    assert!(limits("accounts { A { jetstream { max_bytes_required: true } } }").max_bytes_required);
    assert!(limits("accounts { A { jetstream { max_bytes: true } } }").max_bytes_required);
    // Every spelling nats-server takes.
    let l = limits(
        "accounts { A { jetstream { mem: 1K, disk: 2K, streams: 3, consumers: 4, \
         max_ack_pending: 5, mem_max_stream_bytes: 6, disk_max_stream_bytes: 7 } } }",
    );
    assert_eq!(
        (l.max_memory, l.max_storage, l.max_streams, l.max_consumers),
        (1000, 2000, 3, 4)
    );
    assert_eq!(
        (
            l.max_ack_pending,
            l.memory_max_stream_bytes,
            l.storage_max_stream_bytes,
            l.max_bytes_required
        ),
        (5, 6, 7, false)
    );
    let l = limits(
        "accounts { A { jetstream { max_disk: 1, memory_max_stream_bytes: 2, \
         store_max_stream_bytes: 3 } } }",
    );
    assert_eq!(
        (
            l.max_storage,
            l.memory_max_stream_bytes,
            l.storage_max_stream_bytes
        ),
        (1, 2, 3)
    );
    // A size for `max_stream_bytes` is the per-stream limit of both storage types.
    let l = limits("accounts { A { jetstream { max_stream_bytes: 1MB } } }");
    assert!(!l.max_bytes_required);
    assert_eq!(
        (l.memory_max_stream_bytes, l.storage_max_stream_bytes),
        (1 << 20, 1 << 20)
    );
    // Wrong types and unknown keys are errors with positions, as in nats-server.
    let e = err("accounts { A { jetstream { max_bytes_required: 1 } } }");
    assert!(e.contains("expected a boolean, got integer"), "{e}");
    let e = err("accounts { A { jetstream { max_streams: true } } }");
    assert!(e.contains("expected an integer, got boolean"), "{e}");
    let e = err("accounts {\n A { jetstream { bogus: 1 } } }");
    assert!(
        e.contains("t.conf:2:") && e.contains("unknown field \"bogus\""),
        "{e}"
    );
    assert!(opts("accounts { A { jetstream: disabled } }")
        .jetstream
        .account_limits
        .is_empty());
}

#[test]
fn cluster_block() {
    let o = opts(
        "cluster {\n name: c1\n listen: 0.0.0.0:6222\n routes: [\n  nats://a:6222\n  nats://b:6222\n ]\n \
         no_advertise: true\n}",
    );
    assert_eq!(o.cluster.name.as_deref(), Some("c1"));
    assert_eq!(o.cluster.listen.as_deref(), Some("0.0.0.0:6222"));
    assert_eq!(
        o.cluster.routes,
        vec!["nats://a:6222".to_string(), "nats://b:6222".to_string()]
    );
    assert_eq!(
        o.unsupported,
        vec!["cluster.no_advertise (t.conf:8)".to_string()]
    );
    let o = opts("cluster { host: 127.0.0.1, port: 7000 }");
    assert_eq!(o.cluster.listen.as_deref(), Some("127.0.0.1:7000"));
    let o = opts("cluster { port: 7001 }");
    assert_eq!(o.cluster.listen.as_deref(), Some("0.0.0.0:7001"));
}

#[test]
fn unsupported_features_are_recorded() {
    let o = opts(
        "accounts {\n A: { users: [{user: a, password: b}] }\n}\nleafnodes { port: 7422 }\n\
         websocket { port: 8080 }\nmqtt { port: 1883 }\ngateway { name: g }\nsystem_account: SYS\n\
         no_auth_user: a\nmappings { a: b }",
    );
    let keys: Vec<&str> = o
        .unsupported
        .iter()
        .map(|s| s.split(' ').next().unwrap_or(""))
        .collect();
    assert_eq!(keys, ["leafnodes", "websocket", "mqtt", "gateway"]);
    assert_eq!(o.unsupported[0], "leafnodes (t.conf:4)");
}

#[test]
fn documented_nested_keys_natrium_lacks_are_recorded() {
    let o = opts(
        r#"authorization {
  users: [ { user: u, password: p, allowed_connection_types: ["STANDARD"] } ]
}
accounts {
  A: {
    users: [ { user: a, password: a, connection_types: ["STANDARD"] } ]
    exports: [ { service: "svc", latency: { sampling: 50%, subject: lat }, response_threshold: "1s" } ]
  }
  B: {
    imports: [ { service: { account: A, subject: "svc" }, share: true } ]
    mappings: { x: [ { destination: y, weight: 100%, cluster: c1 } ] }
  }
}
mappings { m: [ { destination: n, cluster: c2 } ] }
jetstream { store: /tmp/js, prev_ek: k }
"#,
    );
    let keys: Vec<&str> = o
        .unsupported
        .iter()
        .map(|s| s.split(' ').next().unwrap_or(""))
        .collect();
    assert_eq!(
        keys,
        [
            "authorization.users.allowed_connection_types",
            "accounts.A.users.connection_types",
            "accounts.A.exports.latency",
            "accounts.A.exports.response_threshold",
            "accounts.B.imports.share",
            "accounts.B.mappings.x.cluster",
            "mappings.m.cluster",
            "jetstream.prev_ek",
        ]
    );
    assert_eq!(
        o.unsupported[0],
        "authorization.users.allowed_connection_types (t.conf:2)"
    );
    // `store` is another spelling of `store_dir`.
    assert_eq!(o.jetstream.store_dir.as_deref(), Some(Path::new("/tmp/js")));
    // A resolver's JWT limit and cache expiry are read but not enforced.
    let o = opts("resolver { type: cache, dir: /tmp/r, limit: 10, ttl: \"1h\", timeout: \"2s\" }");
    assert_eq!(o.unsupported.len(), 2, "{:?}", o.unsupported);
    assert!(
        o.unsupported[0].starts_with("resolver.limit "),
        "{:?}",
        o.unsupported
    );
    assert!(
        o.unsupported[1].starts_with("resolver.ttl "),
        "{:?}",
        o.unsupported
    );
}

#[test]
fn wrong_shapes_are_errors() {
    assert!(err("authorization: 1").contains("expected a map, got integer"));
    assert!(err("server_tags: 1").contains("expected a string or an array of strings"));
    assert!(err("server_tags: [1]").contains("expected a string, got integer"));
    assert!(err("cluster { routes: {a: 1} }").contains("expected a string or an array"));
}

#[test]
fn never_panics_on_random_input() {
    // Deterministic xorshift over an alphabet of syntax characters and multibyte text.
    let alphabet: Vec<char> = "ab$:=,;{}[]()\"'\\#/ \t\n\r-.0123456789kKmMbBiIx\u{2028}é🙂"
        .chars()
        .collect();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..3000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let len = (state % 40) as usize;
        let text: String = (0..len)
            .map(|i| {
                let r = state.rotate_left(i as u32 * 5);
                alphabet[(r % alphabet.len() as u64) as usize]
            })
            .collect();
        let _ = parse_str(&text, Path::new("t.conf"));
    }
}

// ---- plugins ------------------------------------------------------------------------------

#[test]
fn plugins_block() {
    use crate::options::{FailurePolicy, Role};
    let o = opts(
        r#"
plugins {
  redact: {
    path: "plugins/redact.wasm"
    role: transformer
    config: { emails: true, cards: [visa, "amex"], limit: 1KB, ratio: 0.5, nested { Key: "V" } }
    accounts: [A, B]
    subjects: ["orders.>", "pay.*"]
    on_failure: drop
    deadline: "2ms"
    memory: 16MB
  }
  auth: { path: /abs/auth.wasm, role: Authorizer, sha256: "8A2CE5E3DC699E0DD5D9E1AA6A222D509DF3E48F8BD105BBFE3FACE4F1BBEA74" }
  route { path: m.wasm, role: mapper, subjects: "x.>", account: T }
}
"#,
    );
    assert_eq!(o.plugins.specs.len(), 3);
    assert_eq!(
        o.plugins.specs[1].sha256.as_deref(),
        Some("8a2ce5e3dc699e0dd5d9e1aa6a222d509df3e48f8bd105bbfe3face4f1bbea74"),
        "a pin is kept in lower case"
    );
    assert_eq!(o.plugins.specs[0].sha256, None);
    let r = &o.plugins.specs[0];
    assert_eq!(r.name, "redact");
    assert_eq!(r.path, Path::new("plugins/redact.wasm"));
    assert_eq!(r.role, Role::Transformer);
    let cfg: serde_json::Value = match serde_json::from_str(&r.config_json) {
        Ok(v) => v,
        Err(e) => panic!("bad json {}: {e}", r.config_json),
    };
    assert_eq!(
        cfg,
        serde_json::json!({"emails": true, "cards": ["visa", "amex"], "limit": 1024,
                           "ratio": 0.5, "nested": {"Key": "V"}})
    );
    assert_eq!(r.accounts, ["A", "B"]);
    assert_eq!(r.subjects, ["orders.>", "pay.*"]);
    assert_eq!(r.on_failure, FailurePolicy::Drop);
    assert_eq!(r.deadline, Duration::from_millis(2));
    assert_eq!(r.memory_limit, 16 * 1024 * 1024);

    let a = &o.plugins.specs[1];
    assert_eq!((a.name.as_str(), a.role), ("auth", Role::Authorizer));
    assert_eq!(a.path, Path::new("/abs/auth.wasm"));
    assert_eq!(a.config_json, "{}");
    assert_eq!(a.deadline, Role::Authorizer.default_deadline());
    assert_eq!(a.on_failure, FailurePolicy::Reject);
    assert!(a.accounts.is_empty() && a.subjects.is_empty());

    let m = &o.plugins.specs[2];
    assert_eq!(m.role, Role::Mapper);
    assert_eq!(m.subjects, ["x.>"]);
    assert_eq!(m.accounts, ["T"]);
    assert!(m.applies_to("T", "x.y.z"));
    assert!(!m.applies_to("T", "y.z"));
    assert!(!m.applies_to("U", "x.y"));
}

#[test]
fn plugin_paths_are_relative_to_the_config_file() {
    let o = match parse_str(
        "plugins { p: { path: \"lib/p.wasm\", role: mapper } }\nplugin_cache_dir: cache",
        Path::new("/etc/natrium/server.conf"),
    ) {
        Ok(o) => o,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(
        o.plugins.specs[0].path,
        Path::new("/etc/natrium/lib/p.wasm")
    );
    assert_eq!(
        o.plugins.cache_dir.as_deref(),
        Some(Path::new("/etc/natrium/cache"))
    );
}

#[test]
fn plugin_grants_and_signers() {
    let key = nkeys::KeyPair::new_account().public_key();
    let o = opts(&format!(
        r#"
plugins {{
  v: {{ path: v.wasm, role: transformer, accounts: [A, B], kv: {{ bucket: schemas }}, signed_by: operator }}
  m: {{ path: /p/m.wasm, role: mapper, account: A, kv_bucket: "tenant-settings", signed_by: account, signature: /s/m.sig }}
  k: {{ path: k.wasm, role: mapper, signed_by: "{key}" }}
}}
"#
    ));
    let [v, m, k] = &o.plugins.specs[..] else {
        panic!("three bindings: {:?}", o.plugins.specs);
    };
    assert_eq!(v.kv_bucket.as_deref(), Some("schemas"));
    assert_eq!(v.signed_by, Some(crate::options::Signer::Operator));
    assert_eq!(v.signature, None, "<path>.sig by default");
    assert_eq!(m.kv_bucket.as_deref(), Some("tenant-settings"));
    assert_eq!(m.signed_by, Some(crate::options::Signer::Account));
    assert_eq!(m.signature.as_deref(), Some(Path::new("/s/m.sig")));
    assert_eq!(k.signed_by, Some(crate::options::Signer::Key(key)));
    assert_eq!(k.kv_bucket, None);
}

#[test]
fn plugin_errors_have_positions() {
    let cases = [
        (
            "plugins {\n  p: { path: x.wasm, role: filter }\n}",
            "t.conf:2:",
            "unknown role \"filter\"",
        ),
        (
            "plugins {\n  p: { role: mapper }\n}",
            "t.conf:2:",
            "missing 'path'",
        ),
        (
            "plugins {\n  p: { path: x.wasm }\n}",
            "t.conf:2:",
            "missing 'role'",
        ),
        (
            "plugins {\n  p: { path: x.wasm, role: mapper,\n on_failure: explode }\n}",
            "t.conf:3:",
            "unknown failure policy",
        ),
        (
            "plugins {\n  p: { path: x.wasm, role: authorizer, on_failure: pass }\n}",
            "t.conf:2:",
            "fails closed",
        ),
        (
            "plugins {\n  p: { path: x.wasm, role: mapper\n sha256: \"abc\" }\n}",
            "t.conf:3:",
            "sha256 must be 64 hex digits",
        ),
        (
            "plugins {\n  p: { path: x.wasm, role: mapper\n deadline: \"5 parsecs\" }\n}",
            "t.conf:3:",
            "plugins.p.deadline",
        ),
        (
            "plugins {\n  p: { path: x.wasm, role: mapper\n deadline: \"0s\" }\n}",
            "t.conf:3:",
            "greater than zero",
        ),
        (
            "plugins {\n  p: { path: x.wasm, role: mapper\n memory: 100 }\n}",
            "t.conf:3:",
            "at least 64KiB",
        ),
        (
            "plugins {\n  p: { path: x.wasm, role: mapper\n subjects: [\"a..b\"] }\n}",
            "t.conf:3:",
            "invalid subject filter",
        ),
        (
            "plugins {\n  p: { path: x.wasm, role: mapper\n colour: blue }\n}",
            "t.conf:3:",
            "unknown field \"colour\"",
        ),
        ("plugins: [1, 2]", "t.conf:1:", "expected a map"),
        ("plugins { p: 3 }", "t.conf:1:", "expected a map"),
        (
            "plugins {\n  p: { path: x.wasm, role: mapper\n kv: { bucket: \"a.b\" } }\n}",
            "t.conf:3:",
            "invalid bucket name",
        ),
        (
            "plugins {\n  p: { path: x.wasm, role: mapper\n kv: { name: x } }\n}",
            "t.conf:3:",
            "unknown field \"name\"",
        ),
        (
            "plugins {\n  p: { path: x.wasm, role: mapper, kv: schemas }\n}",
            "t.conf:2:",
            "kv needs the binding's accounts",
        ),
        (
            "plugins {\n  p: { path: x.wasm, role: authorizer, kv: s, accounts: [A, B] }\n}",
            "t.conf:2:",
            "exactly one account",
        ),
        (
            "plugins {\n  p: { path: x.wasm, role: mapper\n signed_by: someone }\n}",
            "t.conf:3:",
            "signed_by must be account, operator",
        ),
        (
            "plugins {\n  p: { path: x.wasm, role: mapper, signed_by: account }\n}",
            "t.conf:2:",
            "signed_by: account needs exactly one account",
        ),
        (
            "plugins {\n  p: { path: x.wasm, role: mapper, signature: x.sig }\n}",
            "t.conf:2:",
            "signature is checked only with signed_by",
        ),
    ];
    for (text, pos, msg) in cases {
        let e = err(text);
        assert!(e.starts_with(pos), "{text:?}: {e}");
        assert!(e.contains(msg), "{text:?}: {e}");
    }
}

#[test]
fn operator_mode_settings() {
    use crate::auth::jwt::{encode, AccountClaims, OperatorClaims};
    use crate::options::ResolverSpec;
    let op = ::nkeys::KeyPair::new_operator();
    let acc = ::nkeys::KeyPair::new_account();
    let op_jwt = encode(&mut OperatorClaims::new(&op.public_key()), &op).expect("jwt");
    let acc_jwt = encode(&mut AccountClaims::new(&acc.public_key()), &op).expect("jwt");
    let o = opts(&format!(
        "operator: \"{op_jwt}\"\nresolver: MEMORY\nresolver_preload {{\n {}: \"{acc_jwt}\"\n}}\n",
        acc.public_key()
    ));
    assert_eq!(o.operator.jwts, vec![op_jwt.clone()]);
    assert_eq!(o.operator.resolver, Some(ResolverSpec::Memory));
    assert_eq!(
        o.operator.preload,
        vec![(acc.public_key(), acc_jwt.clone())]
    );
    assert!(o.auth_required());
    assert!(validate(&o).is_ok());

    let o = opts(&format!(
        "operator: [\"{op_jwt}\"]\nresolver {{ type: full, dir: \"./jwt\", allow_delete: true }}"
    ));
    assert_eq!(
        o.operator.resolver,
        Some(ResolverSpec::Dir {
            dir: "./jwt".into(),
            cache: false,
            allow_delete: true,
            limit: 0
        })
    );

    let e = err(&format!("operator: \"{op_jwt}\"\nresolver: FOO"));
    assert!(
        e.contains("t.conf:2") && e.contains("error parsing account resolver"),
        "{e}"
    );
    let e = err("operator: \"nope.jwt\"\nresolver: MEMORY");
    assert!(
        e.contains("t.conf:1") && e.contains("error parsing operator JWT"),
        "{e}"
    );
    let e = err(&format!(
        "operator: \"{op_jwt}\"\nresolver {{ type: full }}"
    ));
    assert!(e.contains("dir has no value"), "{e}");
    let e = err(&format!(
        "resolver: MEMORY\nresolver_preload {{ {}: \"{acc_jwt}\" }}",
        ::nkeys::KeyPair::new_account().public_key()
    ));
    assert!(e.contains("preload account error"), "{e}");
    // In operator mode users and accounts come from JWTs only.
    let o = opts(&format!(
        "operator: \"{op_jwt}\"\nresolver: MEMORY\naccounts {{ A {{ users: [{{user: a}}] }} }}"
    ));
    assert!(validate(&o).is_err());
    let o = opts(&format!("operator: \"{op_jwt}\""));
    assert!(validate(&o)
        .err()
        .is_some_and(|e| e.to_string().contains("account resolver")));
}

#[test]
fn a_second_authorizer_is_a_conflict_naming_both() {
    let o = opts(
        "plugins {\n  a: { path: a.wasm, role: authorizer }\n  m: { path: m.wasm, role: mapper }\n  \
         b: { path: b.wasm, role: authorizer }\n}",
    );
    match validate(&o) {
        Err(ConfigError::MultipleAuthorizers { names }) => assert_eq!(names, ["a", "b"]),
        other => panic!("{other:?}"),
    }
    let one = opts("plugins { a: { path: a.wasm, role: authorizer } }");
    assert!(validate(&one).is_ok());
}
