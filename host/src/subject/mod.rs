//! Subjects: token validation and the subscription index.
//!
//! A subject is a `.`-separated list of non-empty tokens. In a subscription, a token that is
//! exactly `*` matches any one token and a final `>` matches one or more tokens; a publish
//! subject is matched literally (a `*` there only matches a `*` subscription, as in nats-server).

pub mod mapping;
mod sublist;

pub use sublist::{Entry, SubResult, Sublist};

/// Characters nats-server refuses inside a token.
#[inline]
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0c)
}

/// A subject valid for SUB: non-empty tokens, no whitespace, `>` only as the last token.
pub fn is_valid_subject(subject: &[u8]) -> bool {
    if subject.is_empty() {
        return false;
    }
    let mut after_fwc = false;
    for token in subject.split(|&b| b == b'.') {
        if token.is_empty() || after_fwc {
            return false;
        }
        if token.iter().any(|&b| is_space(b)) {
            return false;
        }
        if token == b">" {
            after_fwc = true;
        }
    }
    true
}

/// A subject valid for PUB in pedantic mode: valid and without wildcard tokens.
pub fn is_valid_literal_subject(subject: &[u8]) -> bool {
    is_valid_subject(subject)
        && subject
            .split(|&b| b == b'.')
            .all(|t| t != b"*" && t != b">")
}

/// A queue group name: non-empty, no whitespace.
pub fn is_valid_queue(queue: &[u8]) -> bool {
    !queue.is_empty() && !queue.iter().any(|&b| is_space(b))
}

/// True when `subject` (literal) is matched by `filter` (may hold wildcards).
pub fn matches(filter: &[u8], subject: &[u8]) -> bool {
    let mut f = filter.split(|&b| b == b'.');
    let mut s = subject.split(|&b| b == b'.');
    loop {
        match (f.next(), s.next()) {
            (None, None) => return true,
            (Some(b">"), Some(_)) => return true,
            (Some(ft), Some(st)) if ft == b"*" || ft == st => continue,
            _ => return false,
        }
    }
}

/// True when every subject `pattern` matches is also matched by `filter` (both may hold
/// wildcards): `foo.*` is within `foo.>` and `*.*`, but not within `foo.bar` or `*`.
pub fn is_subset(pattern: &[u8], filter: &[u8]) -> bool {
    let mut f = filter.split(|&b| b == b'.');
    let mut p = pattern.split(|&b| b == b'.');
    loop {
        match (f.next(), p.next()) {
            (None, None) => return true,
            (Some(b">"), Some(_)) => return true,
            (Some(b"*"), Some(pt)) if pt != b">" => continue,
            (Some(ft), Some(pt)) if ft == pt && ft != b">" && ft != b"*" => continue,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsets_of_filters() {
        for (pattern, filter) in [
            ("foo.bar", "foo.bar"),
            ("foo.bar", "foo.*"),
            ("foo.*", "foo.*"),
            ("foo.*", "foo.>"),
            ("foo.>", "foo.>"),
            ("foo.*.baz", "*.*.*"),
            ("$KV.b.>", "$KV.b.>"),
            ("anything.at.all", ">"),
            (">", ">"),
        ] {
            assert!(
                is_subset(pattern.as_bytes(), filter.as_bytes()),
                "{pattern} in {filter}"
            );
        }
        for (pattern, filter) in [
            ("foo.>", "foo.*"),
            ("foo.*", "foo.bar"),
            ("foo", "foo.>"),
            ("foo.bar.baz", "foo.*"),
            ("foo.bar", "foo.bar.baz"),
            (">", "*"),
            ("*", "foo"),
            ("$KV.b.>", "$KV.c.>"),
        ] {
            assert!(
                !is_subset(pattern.as_bytes(), filter.as_bytes()),
                "{pattern} not in {filter}"
            );
        }
    }

    #[test]
    fn validates_subjects_like_nats_server() {
        for ok in [
            "foo", "foo.bar", "foo.*", "foo.>", "*", ">", "*.*.>", "a*.b>", "$SYS.x",
        ] {
            assert!(is_valid_subject(ok.as_bytes()), "{ok} should be valid");
        }
        for bad in [
            "",
            ".",
            "foo.",
            ".foo",
            "foo..bar",
            "foo.>.bar",
            "foo bar",
            "foo\tbar",
            ">.a",
        ] {
            assert!(
                !is_valid_subject(bad.as_bytes()),
                "{bad:?} should be invalid"
            );
        }
    }

    #[test]
    fn literal_subjects_have_no_wildcard_tokens() {
        assert!(is_valid_literal_subject(b"foo.bar"));
        assert!(is_valid_literal_subject(b"foo.a*"));
        assert!(!is_valid_literal_subject(b"foo.*"));
        assert!(!is_valid_literal_subject(b"foo.>"));
    }

    #[test]
    fn filter_matching() {
        assert!(matches(b"foo.*", b"foo.bar"));
        assert!(!matches(b"foo.*", b"foo.bar.baz"));
        assert!(matches(b"foo.>", b"foo.bar.baz"));
        assert!(!matches(b"foo.>", b"foo"));
        assert!(matches(b">", b"a"));
        assert!(!matches(b"foo", b"foo.bar"));
        assert!(!matches(b"foo.bar", b"foo"));
    }
}
