//! Native subject mappings (`mappings {}` at the top level for `$G`, or inside an account):
//! a published subject matching a source is rewritten before routing.
//!
//! ```text
//! mappings {
//!   "orders.*.*": "orders.{{wildcard(2)}}.{{wildcard(1)}}"   # or the legacy "$2.$1" form
//!   "bar": [ { destination: "bar.v1", weight: 90% }, { destination: "bar.v2", weight: 10% } ]
//! }
//! ```

use super::{is_valid_subject, matches};

/// One destination of a mapping: a template and its share of the traffic (percent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    parts: Vec<Part>,
    pub weight: u8,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    /// 1-based index of a `*` (or the `>`) token of the source.
    Wildcard(usize),
}

/// A source filter with its weighted destinations (weights add up to at most 100; the rest of
/// the traffic keeps its subject).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    source: String,
    destinations: Vec<Destination>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MappingError {
    #[error("invalid mapping source {0:?}")]
    Source(String),
    #[error("invalid mapping destination {template:?}: {reason}")]
    Destination {
        template: String,
        #[source]
        reason: DestinationError,
    },
    #[error("mapping weights for {0:?} add up to more than 100%")]
    Weights(String),
}

/// What is wrong with a destination template.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DestinationError {
    #[error("unterminated {{{{")]
    Unterminated,
    #[error("only {{{{wildcard(n)}}}} is supported")]
    UnsupportedFunction,
    /// The wildcard index is not a number.
    #[error("wildcard index")]
    BadIndex,
    #[error("wildcard index {index} out of range (source has {wildcards})")]
    IndexOutOfRange { index: usize, wildcards: usize },
}

impl Destination {
    /// Parses `a.{{wildcard(1)}}.$2` against a source with `wildcards` wildcard tokens.
    pub fn parse(template: &str, weight: u8, wildcards: usize) -> Result<Self, MappingError> {
        let bad = |reason: DestinationError| MappingError::Destination {
            template: template.to_string(),
            reason,
        };
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut rest = template;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("{{") {
                let end = after
                    .find("}}")
                    .ok_or_else(|| bad(DestinationError::Unterminated))?;
                let func = after[..end].trim();
                let arg = func
                    .strip_prefix("wildcard(")
                    .and_then(|a| a.strip_suffix(')'))
                    .ok_or_else(|| bad(DestinationError::UnsupportedFunction))?;
                let n: usize = arg
                    .trim()
                    .parse()
                    .map_err(|_| bad(DestinationError::BadIndex))?;
                push_wildcard(&mut parts, &mut lit, n, wildcards).map_err(bad)?;
                rest = &after[end + 2..];
            } else if let Some(after) = rest.strip_prefix('$') {
                let digits = after.chars().take_while(char::is_ascii_digit).count();
                if digits == 0 {
                    lit.push('$');
                    rest = after;
                    continue;
                }
                let n: usize = after[..digits]
                    .parse()
                    .map_err(|_| bad(DestinationError::BadIndex))?;
                push_wildcard(&mut parts, &mut lit, n, wildcards).map_err(bad)?;
                rest = &after[digits..];
            } else {
                let c = rest.chars().next().unwrap_or_default();
                lit.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Literal(lit));
        }
        Ok(Destination { parts, weight })
    }

    fn render(&self, wildcard_tokens: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        for p in &self.parts {
            match p {
                Part::Literal(s) => out.extend_from_slice(s.as_bytes()),
                Part::Wildcard(i) => {
                    if let Some(t) = wildcard_tokens.get(i - 1) {
                        out.extend_from_slice(t);
                    }
                }
            }
        }
        out
    }
}

fn push_wildcard(
    parts: &mut Vec<Part>,
    lit: &mut String,
    n: usize,
    max: usize,
) -> Result<(), DestinationError> {
    if n == 0 || n > max {
        return Err(DestinationError::IndexOutOfRange {
            index: n,
            wildcards: max,
        });
    }
    if !lit.is_empty() {
        parts.push(Part::Literal(std::mem::take(lit)));
    }
    parts.push(Part::Wildcard(n));
    Ok(())
}

impl Mapping {
    /// `source` → weighted `(template, weight)` destinations.
    pub fn new(source: &str, destinations: &[(String, u8)]) -> Result<Self, MappingError> {
        if !is_valid_subject(source.as_bytes()) {
            return Err(MappingError::Source(source.to_string()));
        }
        let wildcards = source.split('.').filter(|t| *t == "*" || *t == ">").count();
        let total: u32 = destinations.iter().map(|(_, w)| u32::from(*w)).sum();
        if total > 100 {
            return Err(MappingError::Weights(source.to_string()));
        }
        let destinations = destinations
            .iter()
            .map(|(t, w)| Destination::parse(t, *w, wildcards))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Mapping {
            source: source.to_string(),
            destinations,
        })
    }

    /// True when every message gets the same destination (results may be cached).
    pub fn is_deterministic(&self) -> bool {
        self.destinations.len() == 1 && self.destinations[0].weight >= 100
    }

    /// The mapped subject, or `None` when `subject` is not covered or falls in the unmapped
    /// share. `roll` is a number in 0..100 used to pick a weighted destination.
    pub fn apply(&self, subject: &[u8], roll: u8) -> Option<Vec<u8>> {
        if !matches(self.source.as_bytes(), subject) {
            return None;
        }
        let mut wild: Vec<&[u8]> = Vec::new();
        let mut subj_tokens = subject.split(|&b| b == b'.');
        let mut consumed = 0usize;
        for src in self.source.split('.') {
            match src {
                "*" => {
                    let t = subj_tokens.next()?;
                    consumed += t.len() + 1;
                    wild.push(t);
                }
                ">" => {
                    wild.push(subject.get(consumed..)?);
                    break;
                }
                _ => {
                    let t = subj_tokens.next()?;
                    consumed += t.len() + 1;
                }
            }
        }
        let mut acc = 0u32;
        for d in &self.destinations {
            acc += u32::from(d.weight);
            if u32::from(roll) < acc {
                return Some(d.render(&wild));
            }
        }
        None
    }
}

/// The first mapping that covers `subject`, applied.
pub fn apply_all(mappings: &[Mapping], subject: &[u8], roll: u8) -> Option<Vec<u8>> {
    mappings
        .iter()
        .find(|m| matches(m.source.as_bytes(), subject))
        .and_then(|m| m.apply(subject, roll))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(src: &str, dst: &str) -> Mapping {
        Mapping::new(src, &[(dst.to_string(), 100)]).expect("valid mapping")
    }

    #[test]
    fn literal_and_wildcard_forms() {
        assert_eq!(one("foo", "bar").apply(b"foo", 0), Some(b"bar".to_vec()));
        assert_eq!(one("foo", "bar").apply(b"foo.x", 0), None);
        let m = one("orders.*.*", "orders.{{wildcard(2)}}.{{ wildcard(1) }}");
        assert_eq!(m.apply(b"orders.eu.42", 0), Some(b"orders.42.eu".to_vec()));
        let legacy = one("a.*.*", "b.$2.$1");
        assert_eq!(legacy.apply(b"a.x.y", 0), Some(b"b.y.x".to_vec()));
        let fwc = one("in.>", "out.$1");
        assert_eq!(fwc.apply(b"in.a.b.c", 0), Some(b"out.a.b.c".to_vec()));
        assert!(m.is_deterministic());
    }

    #[test]
    fn weights_split_traffic_and_leave_the_rest() {
        let m = Mapping::new("bar", &[("bar.v1".into(), 90), ("bar.v2".into(), 5)])
            .expect("valid weights");
        assert_eq!(m.apply(b"bar", 0), Some(b"bar.v1".to_vec()));
        assert_eq!(m.apply(b"bar", 89), Some(b"bar.v1".to_vec()));
        assert_eq!(m.apply(b"bar", 92), Some(b"bar.v2".to_vec()));
        assert_eq!(m.apply(b"bar", 97), None);
        assert!(!m.is_deterministic());
    }

    #[test]
    fn bad_mappings_are_errors() {
        assert!(Mapping::new("a..b", &[("x".into(), 100)]).is_err());
        assert!(Mapping::new("a.*", &[("x.$2".into(), 100)]).is_err());
        assert!(Mapping::new("a", &[("x".into(), 60), ("y".into(), 60)]).is_err());
        assert!(Mapping::new("a.*", &[("x.{{nope(1)}}".into(), 100)]).is_err());
        let e = Mapping::new("a.*", &[("x.$2".into(), 100)]).expect_err("out of range");
        assert_eq!(
            e,
            MappingError::Destination {
                template: "x.$2".into(),
                reason: DestinationError::IndexOutOfRange {
                    index: 2,
                    wildcards: 1
                }
            }
        );
        assert_eq!(
            e.to_string(),
            "invalid mapping destination \"x.$2\": wildcard index 2 out of range (source has 1)"
        );
        let e = Mapping::new("a.*", &[("x.{{nope(1)}}".into(), 100)]).expect_err("function");
        assert_eq!(
            e.to_string(),
            "invalid mapping destination \"x.{{nope(1)}}\": only {{wildcard(n)}} is supported"
        );
    }
}
