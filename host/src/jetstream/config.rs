//! Stream configuration: the JSON shape of nats-server's `StreamConfig`, its defaults and its
//! validation. Fields natrium does not interpret (placement, metadata …) are kept
//! and echoed back, so a client comparing configs sees what it sent.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::errors::ApiError;

/// nats-server's default duplicate window: two minutes.
pub const DEFAULT_DUPLICATE_WINDOW_NS: i64 = 120_000_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Retention {
    #[default]
    Limits,
    Interest,
    #[serde(rename = "workqueue")]
    WorkQueue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Storage {
    #[default]
    File,
    Memory,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Discard {
    #[default]
    Old,
    New,
}

/// `subject_transform`: stored subjects are rewritten from `src` to `dest`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectTransform {
    #[serde(default)]
    pub src: String,
    pub dest: String,
}

/// `republish`: after storing, a copy goes out on `dest` (mapped from `src`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Republish {
    #[serde(default)]
    pub src: String,
    pub dest: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub headers_only: bool,
}

/// A mirror or source: another stream of the same account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamSource {
    pub name: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub opt_start_seq: u64,
    /// RFC 3339: only messages stored at or after it are copied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opt_start_time: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub filter_subject: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl StreamSource {
    /// `opt_start_time` in Unix nanoseconds (0 when unset).
    pub fn start_time_ns(&self) -> i64 {
        self.opt_start_time
            .as_deref()
            .and_then(crate::timefmt::parse_rfc3339)
            .unwrap_or(0)
    }
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

fn no_compression() -> String {
    "none".to_string()
}

fn minus_one() -> i64 {
    -1
}

fn one() -> i64 {
    1
}

/// A stream's configuration, as sent in `STREAM.CREATE`/`UPDATE` and echoed in StreamInfo.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamConfig {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subjects: Vec<String>,
    #[serde(default)]
    pub retention: Retention,
    #[serde(default = "minus_one")]
    pub max_consumers: i64,
    #[serde(default = "minus_one")]
    pub max_msgs: i64,
    #[serde(default = "minus_one")]
    pub max_bytes: i64,
    /// Nanoseconds; 0 = unlimited.
    #[serde(default)]
    pub max_age: i64,
    #[serde(default = "minus_one")]
    pub max_msgs_per_subject: i64,
    #[serde(default = "minus_one")]
    pub max_msg_size: i64,
    #[serde(default)]
    pub discard: Discard,
    #[serde(default)]
    pub storage: Storage,
    #[serde(default = "one")]
    pub num_replicas: i64,
    #[serde(default)]
    pub no_ack: bool,
    /// Nanoseconds.
    #[serde(default)]
    pub duplicate_window: i64,
    #[serde(default)]
    pub sealed: bool,
    #[serde(default)]
    pub deny_delete: bool,
    #[serde(default)]
    pub deny_purge: bool,
    #[serde(default)]
    pub allow_rollup_hdrs: bool,
    #[serde(default)]
    pub allow_direct: bool,
    #[serde(default)]
    pub mirror_direct: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub discard_new_per_subject: bool,
    /// `none` or `s2`, echoed as nats-server 2.10 does (`none` when unset). Natrium stores
    /// messages uncompressed either way; the choice changes nothing a client can observe.
    #[serde(default = "no_compression")]
    pub compression: String,
    /// The sequence of the stream's first message (nats-server 2.10), set at creation.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub first_seq: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_transform: Option<SubjectTransform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub republish: Option<Republish>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<StreamSource>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<StreamSource>,
    /// Everything else the client sent, echoed back unchanged.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A stream name is a single token that is also safe as a directory name.
pub fn check_name(name: &str) -> Result<(), ApiError> {
    if name.is_empty() {
        return Err(ApiError::invalid_config("stream name is required"));
    }
    if name.contains(['/', '\\']) {
        return Err(ApiError::name_has_path_separators());
    }
    if name.len() > 255
        || name == "."
        || name == ".."
        || name
            .bytes()
            .any(|b| b == b'.' || b == b'*' || b == b'>' || b.is_ascii_whitespace() || b < 0x20)
    {
        return Err(ApiError::invalid_config(
            "stream name is required and can not contain '.', '*', '>'",
        ));
    }
    Ok(())
}

impl StreamConfig {
    /// Fills nats-server's defaults (zero means "unset" for the limits) and validates.
    pub fn normalize(mut self) -> Result<StreamConfig, ApiError> {
        check_name(&self.name)?;
        for v in [
            &mut self.max_msgs,
            &mut self.max_bytes,
            &mut self.max_msgs_per_subject,
            &mut self.max_msg_size,
            &mut self.max_consumers,
        ] {
            if *v == 0 {
                *v = -1;
            }
        }
        if self.num_replicas == 0 {
            self.num_replicas = 1;
        }
        if self.num_replicas > 1 {
            return Err(ApiError::replicas_not_supported());
        }
        if self.num_replicas < 0 {
            return Err(ApiError::invalid_config(
                "replicas count cannot be negative",
            ));
        }
        if self.max_age < 0 {
            return Err(ApiError::invalid_config("max age needs to be >= 0"));
        }
        if self.duplicate_window < 0 {
            return Err(ApiError::invalid_config(
                "duplicates window can not be negative",
            ));
        }
        if self.duplicate_window == 0 {
            self.duplicate_window =
                if self.max_age != 0 && self.max_age < DEFAULT_DUPLICATE_WINDOW_NS {
                    self.max_age
                } else {
                    DEFAULT_DUPLICATE_WINDOW_NS
                };
        }
        if self.max_age != 0 && self.duplicate_window > self.max_age {
            return Err(ApiError::invalid_config(
                "duplicates window can not be larger then max age",
            ));
        }
        if self.discard_new_per_subject
            && (self.discard != Discard::New || self.max_msgs_per_subject <= 0)
        {
            return Err(ApiError::invalid_config(
                "discard new per subject requires discard new policy to be set and max msgs per subject > 0",
            ));
        }
        if let Some(m) = &self.mirror {
            if !self.subjects.is_empty() {
                return Err(ApiError::mirror_with_subjects());
            }
            if !self.sources.is_empty() {
                return Err(ApiError::mirror_with_sources());
            }
            check_name(&m.name)?;
            if self.first_seq > 0 {
                return Err(ApiError::mirror_with_first_seq());
            }
        }
        if self.compression.is_empty() {
            self.compression = no_compression();
        }
        if !matches!(self.compression.as_str(), "none" | "s2") {
            return Err(ApiError::invalid_json(format!(
                "unknown compression {:?}",
                self.compression
            )));
        }
        if self.mirror_direct && self.mirror.is_none() {
            return Err(ApiError::invalid_config(
                "stream has no mirror but does have mirror direct",
            ));
        }
        for src in self.mirror.iter().chain(self.sources.iter()) {
            if let Some(t) = &src.opt_start_time {
                if crate::timefmt::parse_rfc3339(t).is_none() {
                    return Err(ApiError::invalid_json(format!(
                        "parsing time \"{t}\": not an RFC 3339 time"
                    )));
                }
            }
        }
        for s in &self.sources {
            check_name(&s.name)?;
            if s.name == self.name {
                return Err(ApiError::invalid_config("stream can not source itself"));
            }
        }
        if self.subjects.is_empty() && self.mirror.is_none() && self.sources.is_empty() {
            self.subjects = vec![self.name.clone()];
        }
        let mut seen = std::collections::HashSet::new();
        for s in &self.subjects {
            if !crate::subject::is_valid_subject(s.as_bytes()) {
                return Err(ApiError::invalid_config(format!("invalid subject: {s}")));
            }
            if !seen.insert(s.as_str()) {
                return Err(ApiError::invalid_config("duplicate subjects detected"));
            }
            if !self.no_ack && subjects_overlap(s, "$JS.API.>") {
                return Err(ApiError::invalid_config(
                    "subjects that overlap with jetstream api require no-ack to be true",
                ));
            }
        }
        if let Some(t) = &self.subject_transform {
            if t.dest.is_empty() || !crate::subject::is_valid_subject(t.dest.as_bytes()) {
                return Err(ApiError::invalid_config(format!(
                    "invalid subject transform destination: {}",
                    t.dest
                )));
            }
        }
        if let Some(r) = &self.republish {
            if !crate::subject::is_valid_subject(r.dest.as_bytes()) {
                return Err(ApiError::invalid_config(format!(
                    "invalid republish destination: {}",
                    r.dest
                )));
            }
            if self.subjects.iter().any(|s| subjects_overlap(s, &r.dest)) {
                return Err(ApiError::invalid_config(
                    "stream configuration for republish destination forms a cycle",
                ));
            }
        }
        Ok(self)
    }
}

/// Whether two subject filters can match a common subject.
pub fn subjects_overlap(a: &str, b: &str) -> bool {
    let (ta, tb): (Vec<&str>, Vec<&str>) = (a.split('.').collect(), b.split('.').collect());
    let mut i = 0;
    loop {
        match (ta.get(i), tb.get(i)) {
            (Some(&">"), Some(_)) | (Some(_), Some(&">")) => return true,
            (None, None) => return true,
            (None, _) | (_, None) => return false,
            (Some(x), Some(y)) => {
                if *x != "*" && *y != "*" && x != y {
                    return false;
                }
            }
        }
        i += 1;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn cfg(json: &str) -> Result<StreamConfig, ApiError> {
        serde_json::from_str::<StreamConfig>(json)
            .map_err(ApiError::invalid_json)?
            .normalize()
    }

    #[test]
    fn zero_limits_mean_unlimited_and_subjects_default_to_the_name() {
        let c = cfg(r#"{"name":"ORDERS","max_msgs":0,"max_bytes":0}"#).unwrap();
        assert_eq!(c.max_msgs, -1);
        assert_eq!(c.max_bytes, -1);
        assert_eq!(c.subjects, vec!["ORDERS".to_string()]);
        assert_eq!(c.duplicate_window, DEFAULT_DUPLICATE_WINDOW_NS);
        assert_eq!(c.num_replicas, 1);
    }

    #[test]
    fn short_max_age_shortens_the_duplicate_window() {
        let c = cfg(r#"{"name":"S","max_age":1000000000}"#).unwrap();
        assert_eq!(c.duplicate_window, 1_000_000_000);
    }

    #[test]
    fn bad_names_and_replicas_are_refused() {
        assert_eq!(cfg(r#"{"name":"a.b"}"#).unwrap_err().err_code, 10052);
        assert_eq!(cfg(r#"{"name":"a/b"}"#).unwrap_err().err_code, 10128);
        assert_eq!(
            cfg(r#"{"name":"S","num_replicas":3}"#)
                .unwrap_err()
                .err_code,
            10074
        );
        assert_eq!(cfg(r#"{"name":""}"#).unwrap_err().err_code, 10052);
    }

    #[test]
    fn unknown_fields_round_trip() {
        let c = cfg(r#"{"name":"S","compression":"none","metadata":{"a":"b"}}"#).unwrap();
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["compression"], "none");
        assert_eq!(v["metadata"]["a"], "b");
    }

    #[test]
    fn overlap() {
        assert!(subjects_overlap("a.>", "a.b"));
        assert!(subjects_overlap("a.*", "a.b"));
        assert!(subjects_overlap("*.b", "a.*"));
        assert!(!subjects_overlap("a.b", "a.c"));
        assert!(!subjects_overlap("a.*", "a.b.c"));
        assert!(subjects_overlap(">", "x"));
        assert!(!subjects_overlap("a", "a.b"));
    }
}
