//! `partition-mapper`: a Natrium mapper that spreads a subject space over weighted partitions.
//!
//! Each rule matches subjects with a NATS filter, hashes one of their tokens (a customer id, a
//! device id: something in the subject, never the payload, so the mapping is deterministic and
//! cacheable), picks a partition with probability proportional to its weight, and rewrites the
//! subject from a template:
//!
//! ```text
//! rule:    subject "orders.*.created", key_token 2, weights [1, 1, 2], template
//!          "orders.{partition}.{2}.created"
//! input:   orders.acme.created
//! hash:    splitmix64(fnv1a64("acme"))  ->  jump consistent hash over 4 slots  ->  slot 3 -> p2
//! output:  orders.p2.acme.created
//! ```
//!
//! The hash and the slot choice (Lamping & Veach's jump consistent hash over the weight slots)
//! are fixed and tested against known values: the same key lands in the same partition on every
//! broker, every restart and every build. Adding a partition at the end moves only the keys that
//! the new partition takes.
//!
//! Configuration (the plugin's JSON config):
//!
//! ```json
//! {
//!   "rules": [
//!     {
//!       "subject": "orders.*.created",
//!       "accounts": ["ACME"],
//!       "key_token": 2,
//!       "partitions": 4,
//!       "weights": [1, 1, 1, 2],
//!       "names": ["p0", "p1", "p2", "big"],
//!       "template": "orders.{partition}.{2}.created"
//!     }
//!   ]
//! }
//! ```
//! `accounts` (default: all), `weights` (default: equal), `names` (default `p0`, `p1`, …) are
//! optional; give `partitions` or `weights` (or both, of equal length). In `template`,
//! `{partition}` is the partition's name, `{N}` the N-th token of the subject (1-based) and
//! `{N..}` the tokens from the N-th to the last, joined by dots. The first matching rule wins; a
//! subject no rule matches keeps its subject.

use natrium_plugin_sdk::prelude::*;
use serde::Deserialize;

/// The plugin's configuration as written in the server configuration.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// The rules, tried in order.
    pub rules: Vec<RawRule>,
}

/// One rule as written in the configuration.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    /// NATS subject filter (`*` and `>` allowed).
    pub subject: String,
    /// Accounts this rule applies to (all when absent).
    #[serde(default)]
    pub accounts: Option<Vec<String>>,
    /// 1-based position of the token that is hashed.
    pub key_token: usize,
    /// Number of partitions (equal weights).
    #[serde(default)]
    pub partitions: Option<usize>,
    /// Weight of each partition.
    #[serde(default)]
    pub weights: Option<Vec<u32>>,
    /// Name of each partition (default `p0`, `p1`, ...).
    #[serde(default)]
    pub names: Option<Vec<String>>,
    /// Output subject template.
    pub template: String,
}

/// A validated rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    filter: Vec<String>,
    accounts: Option<Vec<String>>,
    key_token: usize,
    names: Vec<String>,
    /// `cumulative[i]` = sum of the weights of partitions 0..=i.
    cumulative: Vec<u64>,
    template: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Literal(String),
    Partition,
    Token(usize),
    TokensFrom(usize),
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules(pub Vec<Rule>);

/// The most weight slots a rule may have (keeps the slot search trivially cheap).
const MAX_TOTAL_WEIGHT: u64 = 1 << 20;

impl Rules {
    /// Validates a raw configuration.
    pub fn compile(raw: RawConfig) -> Result<Rules, String> {
        raw.rules
            .into_iter()
            .enumerate()
            .map(|(i, r)| Rule::compile(r).map_err(|e| format!("rules[{i}]: {e}")))
            .collect::<Result<Vec<_>, _>>()
            .map(Rules)
    }

    /// Parses and validates a JSON configuration.
    pub fn from_json(json: &str) -> Result<Rules, String> {
        let raw: RawConfig =
            serde_json::from_str(json).map_err(|e| format!("invalid configuration: {e}"))?;
        Rules::compile(raw)
    }

    /// The new subject for `subject` in `account`, or `None` to keep it.
    pub fn map(&self, account: &str, subject: &str) -> Option<String> {
        let tokens: Vec<&str> = subject.split('.').collect();
        self.0
            .iter()
            .find(|r| r.applies(account, &tokens))
            .and_then(|r| r.rewrite(&tokens))
    }
}

impl Rule {
    fn compile(raw: RawRule) -> Result<Rule, String> {
        let filter: Vec<String> = raw.subject.split('.').map(str::to_owned).collect();
        for (i, t) in filter.iter().enumerate() {
            let bad = t.is_empty()
                || t.contains(char::is_whitespace)
                || (t.len() > 1 && (t.contains('*') || t.contains('>')))
                || (t == ">" && i + 1 != filter.len());
            if bad {
                return Err(format!("invalid subject filter {:?}", raw.subject));
            }
        }
        if raw.key_token == 0 {
            return Err("key_token is 1-based: 0 is not a token".into());
        }
        // The key token must exist in every subject the filter matches (`>` is at least one).
        let guaranteed = filter.len();
        if raw.key_token > guaranteed {
            return Err(format!(
                "key_token {} is past the filter's {} tokens",
                raw.key_token, guaranteed
            ));
        }
        let weights: Vec<u32> = match (raw.partitions, raw.weights) {
            (_, Some(w)) if w.is_empty() => return Err("weights is empty".into()),
            (Some(n), Some(w)) if n != w.len() => {
                return Err(format!("partitions is {n} but weights has {}", w.len()))
            }
            (_, Some(w)) => w,
            (Some(0), None) => return Err("partitions must be at least 1".into()),
            (Some(n), None) => vec![1; n],
            (None, None) => return Err("give partitions or weights".into()),
        };
        if weights.iter().all(|&w| w == 0) {
            return Err("all weights are 0".into());
        }
        let mut cumulative = Vec::with_capacity(weights.len());
        let mut total = 0u64;
        for w in &weights {
            total += u64::from(*w);
            cumulative.push(total);
        }
        if total > MAX_TOTAL_WEIGHT {
            return Err(format!("total weight {total} is over {MAX_TOTAL_WEIGHT}"));
        }
        let names = match raw.names {
            Some(n) if n.len() != weights.len() => {
                return Err(format!(
                    "names has {} entries for {} partitions",
                    n.len(),
                    weights.len()
                ))
            }
            Some(n) => n,
            None => (0..weights.len()).map(|i| format!("p{i}")).collect(),
        };
        for n in &names {
            if n.is_empty() || n.contains(['.', '*', '>']) || n.contains(char::is_whitespace) {
                return Err(format!("partition name {n:?} is not a subject token"));
            }
        }
        let template = parse_template(&raw.template)?;
        Ok(Rule {
            filter,
            accounts: raw.accounts,
            key_token: raw.key_token,
            names,
            cumulative,
            template,
        })
    }

    fn applies(&self, account: &str, tokens: &[&str]) -> bool {
        if let Some(accounts) = &self.accounts {
            if !accounts.iter().any(|a| a == account) {
                return false;
            }
        }
        matches_filter(&self.filter, tokens)
    }

    fn rewrite(&self, tokens: &[&str]) -> Option<String> {
        let key = tokens.get(self.key_token - 1)?;
        let partition = &self.names[self.partition_of(key.as_bytes())];
        let mut out = String::with_capacity(64);
        for part in &self.template {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Partition => out.push_str(partition),
                Part::Token(n) => out.push_str(tokens.get(n - 1)?),
                Part::TokensFrom(n) => {
                    let rest = tokens.get(n - 1..).filter(|r| !r.is_empty())?;
                    out.push_str(&rest.join("."));
                }
            }
        }
        Some(out)
    }

    /// The index of the partition that `key` belongs to.
    pub fn partition_of(&self, key: &[u8]) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(1);
        let slot = jump_consistent_hash(key_hash(key), total as u32) as u64;
        // First partition whose cumulative weight exceeds the slot (zero weights never win).
        self.cumulative.partition_point(|&c| c <= slot)
    }
}

/// Parses `lit{partition}lit{2}lit{3..}`.
fn parse_template(t: &str) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut rest = t;
    let mut has_partition = false;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            parts.push(Part::Literal(rest[..open].to_owned()));
        }
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| format!("template {t:?}: unclosed '{{'"))?
            + open;
        let inner = &rest[open + 1..close];
        let index = |s: &str| -> Result<usize, String> {
            match s.parse::<usize>() {
                Ok(n) if n >= 1 => Ok(n),
                _ => Err(format!("template {t:?}: bad placeholder {{{inner}}}")),
            }
        };
        if inner == "partition" {
            has_partition = true;
            parts.push(Part::Partition);
        } else if let Some(n) = inner.strip_suffix("..") {
            parts.push(Part::TokensFrom(index(n)?));
        } else {
            parts.push(Part::Token(index(inner)?));
        }
        rest = &rest[close + 1..];
    }
    if rest.contains('}') {
        return Err(format!("template {t:?}: stray '}}'"));
    }
    if !rest.is_empty() {
        parts.push(Part::Literal(rest.to_owned()));
    }
    if !has_partition {
        return Err(format!("template {t:?} has no {{partition}}"));
    }
    Ok(parts)
}

/// NATS subject matching of literal `tokens` against a filter with `*` and `>`.
fn matches_filter(filter: &[String], tokens: &[&str]) -> bool {
    let mut i = 0;
    for f in filter {
        match f.as_str() {
            ">" => return tokens.len() > i,
            "*" => {
                if i >= tokens.len() {
                    return false;
                }
            }
            lit => {
                if tokens.get(i) != Some(&lit) {
                    return false;
                }
            }
        }
        i += 1;
    }
    i == tokens.len()
}

/// FNV-1a (64 bit) followed by the splitmix64 finalizer: cheap, stable, well mixed.
pub fn key_hash(key: &[u8]) -> u64 {
    let mut h = fnv1a64(key);
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// FNV-1a, 64 bit.
fn fnv1a64(key: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Lamping & Veach, "A Fast, Minimal Memory, Consistent Hash Algorithm" (2014).
pub fn jump_consistent_hash(mut key: u64, buckets: u32) -> u32 {
    let buckets = i64::from(buckets.max(1));
    let (mut b, mut j) = (-1i64, 0i64);
    while j < buckets {
        b = j;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        j = ((b + 1) as f64 * ((1u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
    }
    b as u32
}

static RULES: Config<Rules> = Config::new();

// `Rules` is compiled from `RawConfig`; `Config` deserializes `RawConfig` through this impl.
impl<'de> Deserialize<'de> for Rules {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = RawConfig::deserialize(d)?;
        Rules::compile(raw).map_err(serde::de::Error::custom)
    }
}

#[mapper(deterministic)]
fn partition(account: &str, subject: &str) -> Option<String> {
    match RULES.get() {
        Ok(rules) => rules.map(account, subject),
        Err(e) => {
            // The broker caches deterministic results, so this is logged about once per subject.
            error!(subject = subject; "partition-mapper not configured: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(json: &str) -> Rules {
        match Rules::from_json(json) {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        }
    }

    const ORDERS: &str = r#"{"rules":[{"subject":"orders.*.created","key_token":2,
        "partitions":4,"template":"orders.{partition}.{2}.created"}]}"#;

    #[test]
    fn hash_is_stable() {
        // Pinned values: changing them re-partitions every deployment.
        // Published FNV-1a test vectors.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
        // Vectors of the reference implementation (as used by dgryski/go-jump's tests).
        assert_eq!(jump_consistent_hash(1, 1), 0);
        assert_eq!(jump_consistent_hash(42, 57), 43);
        assert_eq!(jump_consistent_hash(0xDEAD_10CC, 1), 0);
        assert_eq!(jump_consistent_hash(0xDEAD_10CC, 666), 361);
        assert_eq!(jump_consistent_hash(256, 1024), 520);
        assert_eq!(key_hash(b"acme"), PINNED_ACME);
        assert_eq!(jump_consistent_hash(0, 1), 0);
        let pinned: Vec<u32> = ["acme", "globex", "initech", "umbrella", "hooli"]
            .iter()
            .map(|k| jump_consistent_hash(key_hash(k.as_bytes()), 10))
            .collect();
        assert_eq!(pinned, PINNED);
    }
    const PINNED: [u32; 5] = [9, 1, 1, 7, 5];
    const PINNED_ACME: u64 = 1_372_038_925_648_144_367;

    #[test]
    fn maps_and_is_deterministic() {
        let r = rules(ORDERS);
        let a = r.map("ACME", "orders.acme.created");
        assert!(a
            .as_deref()
            .is_some_and(|s| s.starts_with("orders.p") && s.ends_with(".acme.created")));
        assert_eq!(a, r.map("OTHER", "orders.acme.created"));
        assert_eq!(r.map("ACME", "orders.acme.updated"), None);
        assert_eq!(r.map("ACME", "orders.acme"), None);
    }

    #[test]
    fn weights_are_respected() {
        let r = rules(
            r#"{"rules":[{"subject":"k.*","key_token":2,"weights":[1,0,3],
            "template":"{partition}"}]}"#,
        );
        let mut counts = [0usize; 3];
        for i in 0..40_000 {
            let p = r.0[0].partition_of(format!("key-{i}").as_bytes());
            counts[p] += 1;
        }
        assert_eq!(counts[1], 0, "a zero weight gets nothing");
        let share = counts[2] as f64 / 40_000.0;
        assert!(
            (0.72..0.78).contains(&share),
            "share of weight 3/4: {share}"
        );
    }

    #[test]
    fn adding_a_partition_moves_few_keys() {
        let four = rules(
            r#"{"rules":[{"subject":">","key_token":1,"partitions":4,"template":"{partition}"}]}"#,
        );
        let five = rules(
            r#"{"rules":[{"subject":">","key_token":1,"partitions":5,"template":"{partition}"}]}"#,
        );
        let moved = (0..10_000)
            .filter(|i| {
                let k = format!("c{i}");
                four.map("A", &k) != five.map("A", &k)
            })
            .count();
        // Ideal is 1/5 of the keys.
        assert!((1_700..2_300).contains(&moved), "moved {moved}");
    }

    #[test]
    fn template_placeholders() {
        let r = rules(
            r#"{"rules":[{"subject":"t.*.>","accounts":["A"],"key_token":2,"partitions":1,
            "names":["only"],"template":"x.{partition}.{2}.{3..}"}]}"#,
        );
        assert_eq!(r.map("A", "t.k.a.b.c").as_deref(), Some("x.only.k.a.b.c"));
        assert_eq!(r.map("B", "t.k.a.b.c"), None, "other account");
        assert_eq!(r.map("A", "t.k"), None, "> needs a token");
    }

    #[test]
    fn bad_configs_are_explained() {
        for (json, needle) in [
            (
                r#"{"rules":[{"subject":"a.*","key_token":3,"partitions":2,"template":"{partition}"}]}"#,
                "past the filter",
            ),
            (
                r#"{"rules":[{"subject":"a.*","key_token":0,"partitions":2,"template":"{partition}"}]}"#,
                "1-based",
            ),
            (
                r#"{"rules":[{"subject":"a.*","key_token":2,"template":"{partition}"}]}"#,
                "partitions or weights",
            ),
            (
                r#"{"rules":[{"subject":"a.*","key_token":2,"weights":[0,0],"template":"{partition}"}]}"#,
                "all weights",
            ),
            (
                r#"{"rules":[{"subject":"a.*","key_token":2,"partitions":2,"template":"{2}"}]}"#,
                "no {partition}",
            ),
            (
                r#"{"rules":[{"subject":"a.*","key_token":2,"partitions":2,"template":"{x}"}]}"#,
                "bad placeholder",
            ),
            (
                r#"{"rules":[{"subject":"a.>.b","key_token":1,"partitions":2,"template":"{partition}"}]}"#,
                "invalid subject filter",
            ),
            (
                r#"{"rules":[{"subject":"a.*","key_token":2,"partitions":2,"names":["a.b","c"],"template":"{partition}"}]}"#,
                "not a subject token",
            ),
            (r#"{"rulez":[]}"#, "unknown field"),
        ] {
            match Rules::from_json(json) {
                Ok(_) => panic!("accepted {json}"),
                Err(e) => assert!(e.contains(needle), "{e:?} should mention {needle:?}"),
            }
        }
    }

    #[test]
    fn the_export_uses_the_config() {
        natrium_plugin_sdk::testing::set_config(ORDERS);
        let out = partition("ACME", "orders.acme.created");
        assert_eq!(out, rules(ORDERS).map("ACME", "orders.acme.created"));
    }
}
