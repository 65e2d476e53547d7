//! `json-validator`: a Natrium transformer that drops JSON messages that do not match a schema.
//!
//! Valid messages pass unchanged (outcome `pass`, no copy); invalid ones are dropped with a
//! reason that names the offending location (a JSON Pointer) — the broker logs it, and sends it
//! to the publisher when the binding says `on_failure: reject`.
//!
//! ```text
//! schema: {"type":"object","required":["id","qty"],
//!          "properties":{"id":{"type":"string","minLength":1},
//!                        "qty":{"type":"integer","minimum":1}}}
//! {"id":"a1","qty":2}   -> pass
//! {"id":"a1","qty":0}   -> drop "schema violation at /qty: 0 is less than the minimum 1"
//! not json              -> drop "payload is not JSON: expected ident at line 1 column 2"
//! ```
//!
//! The schema language is a useful subset of JSON Schema (draft 2020-12 semantics), compiled
//! once from the configuration:
//! `type` (a name or a list), `enum`, `const`, `minimum`, `maximum`, `exclusiveMinimum`,
//! `exclusiveMaximum`, `multipleOf`, `minLength`, `maxLength` (in characters), `required`,
//! `properties`, `additionalProperties` (a boolean or a schema), `minProperties`,
//! `maxProperties`, `items` (a schema for every element), `minItems`, `maxItems`,
//! `uniqueItems`, `allOf`, `anyOf`, `oneOf`, `not`, and the boolean schemas `true`/`false`.
//! Annotations (`$schema`, `$id`, `title`, `description`, `default`, `examples`, `$comment`)
//! are ignored; any other keyword (e.g. `pattern`, `$ref`, `format`) is rejected at load, so a
//! schema never silently checks less than its author thinks.
//!
//! Configuration:
//!
//! ```json
//! {
//!   "schema": { "type": "object" },
//!   "rules": [ { "subject": "orders.*.created", "schema": { "...": "..." } } ]
//! }
//! ```
//! The first rule whose subject filter matches applies; otherwise `schema` (if given); a message
//! neither covers passes.
//!
//! **Schemas in the broker** (`"schemas_from_kv": true`; the build with cargo feature `kv`,
//! `json-validator-kv.wasm`, which imports `natrium:plugin/kv`; its binding granted a bucket:
//! `kv: { bucket: schemas }`): the schema for a message is first looked up in that JetStream
//! key-value bucket under the message's subject (`nats kv put schemas orders.created
//! '{"type":"object"}'`); a subject with no key falls back to `rules` and `schema`. Every message
//! reads its key, so a changed schema applies from the next message on, without a restart; the
//! compiled schema is reused while the stored bytes are unchanged. A stored schema that does not
//! compile, or a lookup that fails, drops the message with the reason. A configuration that does not compile refuses the plugin at load
//! (`#[init]`: start-up, `natrium -t` and reload fail with the reason); should it still reach a
//! call, every message drops with the reason (the validator fails closed).

use natrium_plugin_sdk::prelude::*;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::fmt::Write as _;

/// A compiled schema.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Schema {
    /// `false` schema: nothing is valid.
    never: bool,
    types: Option<Vec<JsonType>>,
    enumeration: Option<Vec<Value>>,
    constant: Option<Value>,
    minimum: Option<f64>,
    maximum: Option<f64>,
    exclusive_minimum: Option<f64>,
    exclusive_maximum: Option<f64>,
    multiple_of: Option<f64>,
    min_length: Option<usize>,
    max_length: Option<usize>,
    required: Vec<String>,
    properties: Vec<(String, Schema)>,
    additional: Option<Box<Schema>>,
    min_properties: Option<usize>,
    max_properties: Option<usize>,
    items: Option<Box<Schema>>,
    min_items: Option<usize>,
    max_items: Option<usize>,
    unique_items: bool,
    all_of: Vec<Schema>,
    any_of: Vec<Schema>,
    one_of: Vec<Schema>,
    not: Option<Box<Schema>>,
}

/// The JSON Schema type names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonType {
    /// `null`
    Null,
    /// `boolean`
    Boolean,
    /// `object`
    Object,
    /// `array`
    Array,
    /// `number`
    Number,
    /// `integer` (a number with no fractional part, `1.0` included)
    Integer,
    /// `string`
    String,
}

impl JsonType {
    fn parse(name: &str) -> Option<JsonType> {
        Some(match name {
            "null" => JsonType::Null,
            "boolean" => JsonType::Boolean,
            "object" => JsonType::Object,
            "array" => JsonType::Array,
            "number" => JsonType::Number,
            "integer" => JsonType::Integer,
            "string" => JsonType::String,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            JsonType::Null => "null",
            JsonType::Boolean => "boolean",
            JsonType::Object => "object",
            JsonType::Array => "array",
            JsonType::Number => "number",
            JsonType::Integer => "integer",
            JsonType::String => "string",
        }
    }

    fn matches(self, v: &Value) -> bool {
        match (self, v) {
            (JsonType::Null, Value::Null)
            | (JsonType::Boolean, Value::Bool(_))
            | (JsonType::Object, Value::Object(_))
            | (JsonType::Array, Value::Array(_))
            | (JsonType::Number, Value::Number(_))
            | (JsonType::String, Value::String(_)) => true,
            (JsonType::Integer, Value::Number(n)) => {
                n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
            }
            _ => false,
        }
    }
}

fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Object(_) => "object",
        Value::Array(_) => "array",
        Value::Number(_) => "number",
        Value::String(_) => "string",
    }
}

const ANNOTATIONS: &[&str] = &[
    "$schema",
    "$id",
    "$comment",
    "title",
    "description",
    "default",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
];

impl Schema {
    /// Compiles a schema; `at` is where it sits in the configuration (for errors).
    pub fn compile(v: &Value, at: &str) -> Result<Schema, String> {
        let obj = match v {
            Value::Bool(true) => return Ok(Schema::default()),
            Value::Bool(false) => {
                return Ok(Schema {
                    never: true,
                    ..Schema::default()
                })
            }
            Value::Object(o) => o,
            other => {
                return Err(format!(
                    "{at}: a schema is an object or a boolean, not {}",
                    type_of(other)
                ))
            }
        };
        let mut s = Schema::default();
        for (key, val) in obj {
            let here = format!("{at}/{key}");
            let num = || {
                val.as_f64()
                    .ok_or_else(|| format!("{here}: expected a number"))
            };
            let count = || {
                val.as_u64()
                    .and_then(|n| usize::try_from(n).ok())
                    .ok_or_else(|| format!("{here}: expected a non-negative integer"))
            };
            let list = || {
                val.as_array()
                    .filter(|a| !a.is_empty())
                    .ok_or_else(|| format!("{here}: expected a non-empty array"))
            };
            let subschemas = || -> Result<Vec<Schema>, String> {
                list()?
                    .iter()
                    .enumerate()
                    .map(|(i, x)| Schema::compile(x, &format!("{here}/{i}")))
                    .collect()
            };
            match key.as_str() {
                "type" => {
                    let names: Vec<&Value> = match val {
                        Value::Array(a) => a.iter().collect(),
                        other => vec![other],
                    };
                    let types = names
                        .into_iter()
                        .map(|n| {
                            n.as_str()
                                .and_then(JsonType::parse)
                                .ok_or_else(|| format!("{here}: unknown type {n}"))
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    s.types = Some(types);
                }
                "enum" => s.enumeration = Some(list()?.clone()),
                "const" => s.constant = Some(val.clone()),
                "minimum" => s.minimum = Some(num()?),
                "maximum" => s.maximum = Some(num()?),
                "exclusiveMinimum" => s.exclusive_minimum = Some(num()?),
                "exclusiveMaximum" => s.exclusive_maximum = Some(num()?),
                "multipleOf" => {
                    let m = num()?;
                    if m <= 0.0 {
                        return Err(format!("{here}: must be greater than 0"));
                    }
                    s.multiple_of = Some(m);
                }
                "minLength" => s.min_length = Some(count()?),
                "maxLength" => s.max_length = Some(count()?),
                "minItems" => s.min_items = Some(count()?),
                "maxItems" => s.max_items = Some(count()?),
                "minProperties" => s.min_properties = Some(count()?),
                "maxProperties" => s.max_properties = Some(count()?),
                "uniqueItems" => {
                    s.unique_items = val
                        .as_bool()
                        .ok_or_else(|| format!("{here}: expected a boolean"))?
                }
                "required" => {
                    s.required = val
                        .as_array()
                        .and_then(|a| a.iter().map(|x| x.as_str().map(str::to_owned)).collect())
                        .ok_or_else(|| format!("{here}: expected an array of strings"))?
                }
                "properties" => {
                    let props = val
                        .as_object()
                        .ok_or_else(|| format!("{here}: expected an object"))?;
                    for (name, sub) in props {
                        s.properties.push((
                            name.clone(),
                            Schema::compile(sub, &format!("{here}/{name}"))?,
                        ));
                    }
                }
                "additionalProperties" => {
                    s.additional = Some(Box::new(Schema::compile(val, &here)?))
                }
                "items" => s.items = Some(Box::new(Schema::compile(val, &here)?)),
                "not" => s.not = Some(Box::new(Schema::compile(val, &here)?)),
                "allOf" => s.all_of = subschemas()?,
                "anyOf" => s.any_of = subschemas()?,
                "oneOf" => s.one_of = subschemas()?,
                k if ANNOTATIONS.contains(&k) => {}
                k => {
                    return Err(format!(
                        "{here}: keyword {k:?} is not supported by json-validator"
                    ))
                }
            }
        }
        Ok(s)
    }

    /// Validates `v`; the error names the first violation found.
    pub fn validate(&self, v: &Value) -> Result<(), String> {
        let mut path = String::new();
        self.check(v, &mut path)
    }

    fn check(&self, v: &Value, path: &mut String) -> Result<(), String> {
        let fail = |path: &str, what: String| {
            let at = if path.is_empty() { "/" } else { path };
            Err(format!("schema violation at {at}: {what}"))
        };
        if self.never {
            return fail(path, "no value is allowed here".into());
        }
        if let Some(types) = &self.types {
            if !types.iter().any(|t| t.matches(v)) {
                let names: Vec<&str> = types.iter().map(|t| t.name()).collect();
                return fail(
                    path,
                    format!("expected {}, got {}", names.join(" or "), type_of(v)),
                );
            }
        }
        if let Some(c) = &self.constant {
            if !json_eq(c, v) {
                return fail(path, format!("expected {c}"));
            }
        }
        if let Some(e) = &self.enumeration {
            if !e.iter().any(|x| json_eq(x, v)) {
                return fail(
                    path,
                    format!("{} is not one of {}", short(v), Value::Array(e.clone())),
                );
            }
        }
        match v {
            Value::Number(n) => {
                let x = n.as_f64().unwrap_or(f64::NAN);
                if let Some(m) = self.minimum.filter(|m| x < *m) {
                    return fail(path, format!("{n} is less than the minimum {m}"));
                }
                if let Some(m) = self.maximum.filter(|m| x > *m) {
                    return fail(path, format!("{n} is greater than the maximum {m}"));
                }
                if let Some(m) = self.exclusive_minimum.filter(|m| x <= *m) {
                    return fail(path, format!("{n} is not greater than {m}"));
                }
                if let Some(m) = self.exclusive_maximum.filter(|m| x >= *m) {
                    return fail(path, format!("{n} is not less than {m}"));
                }
                if let Some(m) = self.multiple_of {
                    let q = x / m;
                    if !q.is_finite() || (q - q.round()).abs() > 1e-9 {
                        return fail(path, format!("{n} is not a multiple of {m}"));
                    }
                }
            }
            Value::String(s) => {
                let len = s.chars().count();
                if let Some(m) = self.min_length.filter(|m| len < *m) {
                    return fail(
                        path,
                        format!("string of {len} characters is shorter than {m}"),
                    );
                }
                if let Some(m) = self.max_length.filter(|m| len > *m) {
                    return fail(
                        path,
                        format!("string of {len} characters is longer than {m}"),
                    );
                }
            }
            Value::Array(items) => {
                if let Some(m) = self.min_items.filter(|m| items.len() < *m) {
                    return fail(path, format!("{} items, fewer than {m}", items.len()));
                }
                if let Some(m) = self.max_items.filter(|m| items.len() > *m) {
                    return fail(path, format!("{} items, more than {m}", items.len()));
                }
                if self.unique_items {
                    for (i, a) in items.iter().enumerate() {
                        if items[..i].iter().any(|b| json_eq(a, b)) {
                            return fail(path, format!("item {i} is a duplicate"));
                        }
                    }
                }
                if let Some(item_schema) = &self.items {
                    for (i, item) in items.iter().enumerate() {
                        let len = path.len();
                        let _ = write!(path, "/{i}");
                        item_schema.check(item, path)?;
                        path.truncate(len);
                    }
                }
            }
            Value::Object(obj) => self.check_object(obj, path)?,
            _ => {}
        }
        for s in &self.all_of {
            s.check(v, path)?;
        }
        if !self.any_of.is_empty() && !self.any_of.iter().any(|s| s.validate(v).is_ok()) {
            return fail(path, "matches none of anyOf".into());
        }
        if !self.one_of.is_empty() {
            let n = self.one_of.iter().filter(|s| s.validate(v).is_ok()).count();
            if n != 1 {
                return fail(path, format!("matches {n} of oneOf, not exactly 1"));
            }
        }
        if let Some(not) = &self.not {
            if not.validate(v).is_ok() {
                return fail(path, "matches the schema under not".into());
            }
        }
        Ok(())
    }

    fn check_object(&self, obj: &Map<String, Value>, path: &mut String) -> Result<(), String> {
        let at = |path: &str| {
            if path.is_empty() {
                "/".to_owned()
            } else {
                path.to_owned()
            }
        };
        for r in &self.required {
            if !obj.contains_key(r) {
                return Err(format!(
                    "schema violation at {}: missing required property {r:?}",
                    at(path)
                ));
            }
        }
        if let Some(m) = self.min_properties.filter(|m| obj.len() < *m) {
            return Err(format!(
                "schema violation at {}: {} properties, fewer than {m}",
                at(path),
                obj.len()
            ));
        }
        if let Some(m) = self.max_properties.filter(|m| obj.len() > *m) {
            return Err(format!(
                "schema violation at {}: {} properties, more than {m}",
                at(path),
                obj.len()
            ));
        }
        for (name, value) in obj {
            let schema = match self.properties.iter().find(|(n, _)| n == name) {
                Some((_, s)) => s,
                None => match &self.additional {
                    Some(s) if s.never => {
                        return Err(format!(
                            "schema violation at {}: property {name:?} is not allowed",
                            at(path)
                        ))
                    }
                    Some(s) => s,
                    None => continue,
                },
            };
            let len = path.len();
            path.push('/');
            // JSON Pointer escaping.
            path.push_str(&name.replace('~', "~0").replace('/', "~1"));
            schema.check(value, path)?;
            path.truncate(len);
        }
        Ok(())
    }
}

/// JSON equality where numbers compare by value (`1 == 1.0`).
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// A value for an error message, cut short.
fn short(v: &Value) -> String {
    let mut s = v.to_string();
    if s.len() > 64 {
        let mut cut = 61;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("...");
    }
    s
}

/// The plugin's configuration as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    schema: Option<Value>,
    #[serde(default)]
    rules: Vec<RawRule>,
    #[serde(default)]
    schemas_from_kv: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    subject: String,
    schema: Value,
}

/// The compiled configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Validator {
    rules: Vec<(Vec<String>, Schema)>,
    default: Option<Schema>,
    /// Look each message's schema up in the binding's KV bucket, under its subject, first.
    from_kv: bool,
}

impl Validator {
    /// Compiles a configuration.
    pub fn from_json(json: &str) -> Result<Validator, String> {
        let raw: RawConfig =
            serde_json::from_str(json).map_err(|e| format!("invalid configuration: {e}"))?;
        if raw.schema.is_none() && raw.rules.is_empty() && !raw.schemas_from_kv {
            return Err("give a schema, rules, or schemas_from_kv".into());
        }
        if raw.schemas_from_kv && !cfg!(feature = "kv") {
            return Err("schemas_from_kv needs the build with KV lookups \
                        (json-validator-kv.wasm, cargo feature `kv`)"
                .into());
        }
        let mut rules = Vec::new();
        for (i, r) in raw.rules.iter().enumerate() {
            let filter: Vec<String> = r.subject.split('.').map(str::to_owned).collect();
            if filter
                .iter()
                .enumerate()
                .any(|(j, t)| t.is_empty() || (t == ">" && j + 1 != filter.len()))
            {
                return Err(format!(
                    "rules[{i}]: invalid subject filter {:?}",
                    r.subject
                ));
            }
            rules.push((
                filter,
                Schema::compile(&r.schema, &format!("rules[{i}].schema"))?,
            ));
        }
        let default = raw
            .schema
            .as_ref()
            .map(|s| Schema::compile(s, "schema"))
            .transpose()?;
        Ok(Validator {
            rules,
            default,
            from_kv: raw.schemas_from_kv,
        })
    }

    /// The schema for `subject`, if any.
    pub fn schema_for(&self, subject: &str) -> Option<&Schema> {
        let tokens: Vec<&str> = subject.split('.').collect();
        self.rules
            .iter()
            .find(|(f, _)| matches_filter(f, &tokens))
            .map(|(_, s)| s)
            .or(self.default.as_ref())
    }

    /// `Ok` when the message may pass, or the reason to drop it.
    pub fn check(&self, subject: &str, payload: &[u8]) -> Result<(), String> {
        #[cfg(feature = "kv")]
        if self.from_kv {
            return KV_SCHEMAS.with(|cache| {
                let mut cache = cache.borrow_mut();
                match cache.lookup(subject)? {
                    Some(schema) => validate_payload(schema, payload),
                    None => self.check_configured(subject, payload),
                }
            });
        }
        self.check_configured(subject, payload)
    }

    /// The check against the schemas of the configuration.
    fn check_configured(&self, subject: &str, payload: &[u8]) -> Result<(), String> {
        match self.schema_for(subject) {
            Some(schema) => validate_payload(schema, payload),
            None => Ok(()),
        }
    }
}

fn validate_payload(schema: &Schema, payload: &[u8]) -> Result<(), String> {
    let value: Value =
        serde_json::from_slice(payload).map_err(|e| format!("payload is not JSON: {e}"))?;
    schema.validate(&value)
}

#[cfg(feature = "kv")]
/// Schemas read from the KV bucket, compiled, per key. Each message still reads its key (so a
/// changed schema applies to the next message); the schema is compiled again only when the
/// stored bytes changed.
#[derive(Default)]
pub struct KvSchemas {
    compiled: std::collections::HashMap<String, (Vec<u8>, Schema)>,
}

/// Keys whose compiled schema is kept; beyond that the cache starts afresh.
#[cfg(feature = "kv")]
const MAX_CACHED_SCHEMAS: usize = 1024;

#[cfg(feature = "kv")]
impl KvSchemas {
    /// The schema stored under `key` (`None`: no such key), compiled; an error when the bucket
    /// cannot be read or the stored schema does not compile (the message is dropped: the
    /// validator fails closed).
    pub fn lookup(&mut self, key: &str) -> Result<Option<&Schema>, String> {
        let Some(raw) = kv::get(key).map_err(|e| format!("schema lookup for {key:?}: {e}"))? else {
            self.compiled.remove(key);
            return Ok(None);
        };
        let fresh = self
            .compiled
            .get(key)
            .is_some_and(|(bytes, _)| *bytes == raw);
        if !fresh {
            let value: Value = serde_json::from_slice(&raw)
                .map_err(|e| format!("schema under kv key {key:?} is not JSON: {e}"))?;
            let schema = Schema::compile(&value, &format!("kv[{key}]"))?;
            if self.compiled.len() >= MAX_CACHED_SCHEMAS {
                self.compiled.clear();
            }
            self.compiled.insert(key.to_owned(), (raw, schema));
        }
        Ok(self.compiled.get(key).map(|(_, s)| s))
    }
}

#[cfg(feature = "kv")]
thread_local! {
    /// This instance's compiled KV schemas (an instance runs one call at a time).
    static KV_SCHEMAS: std::cell::RefCell<KvSchemas> = std::cell::RefCell::new(KvSchemas::default());
}

fn matches_filter(filter: &[String], tokens: &[&str]) -> bool {
    let mut i = 0;
    for f in filter {
        match f.as_str() {
            ">" => return tokens.len() > i,
            "*" if i < tokens.len() => {}
            lit if tokens.get(i) == Some(&lit) => {}
            _ => return false,
        }
        i += 1;
    }
    i == tokens.len()
}

impl<'de> Deserialize<'de> for Validator {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Validator::from_json(&v.to_string()).map_err(serde::de::Error::custom)
    }
}

static VALIDATOR: Config<Validator> = Config::new();

/// A configuration that does not compile refuses the plugin at load (start-up, `natrium -t`,
/// reload) with the reason, rather than dropping every message later.
#[init]
fn check_config(_config: &str) -> Result<(), String> {
    VALIDATOR
        .get()
        .map(|_| ())
        .map_err(|e| format!("json-validator: {e}"))
}

#[transformer]
fn validate(_account: &str, msg: Message) -> Outcome {
    let validator = match VALIDATOR.get() {
        Ok(v) => v,
        Err(e) => return Outcome::Drop(format!("json-validator misconfigured: {e}")),
    };
    match validator.check(&msg.subject, &msg.payload) {
        Ok(()) => Outcome::Pass,
        Err(reason) => Outcome::Drop(reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema(v: Value) -> Schema {
        match Schema::compile(&v, "schema") {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        }
    }

    fn err(s: &Schema, v: Value) -> String {
        match s.validate(&v) {
            Ok(()) => panic!("{v} should fail"),
            Err(e) => e,
        }
    }

    fn order() -> Schema {
        schema(json!({
            "type": "object",
            "required": ["id", "qty", "items"],
            "additionalProperties": false,
            "properties": {
                "id": {"type": "string", "minLength": 1, "maxLength": 8},
                "qty": {"type": "integer", "minimum": 1, "maximum": 100},
                "status": {"enum": ["new", "paid"]},
                "items": {"type": "array", "minItems": 1, "items": {
                    "type": "object", "required": ["sku"],
                    "properties": {"sku": {"type": "string"}, "price": {"type": "number", "exclusiveMinimum": 0}}
                }},
                "a/b": {"const": 1}
            }
        }))
    }

    #[cfg(feature = "kv")]
    #[test]
    fn schemas_from_kv_apply_per_subject_and_follow_changes() {
        use natrium_plugin_sdk::testing::{kv_delete, kv_put};
        let v = Validator::from_json(
            r#"{"schemas_from_kv": true, "rules": [{"subject": "cfg.>", "schema": {"type": "string"}}]}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let dropped = |payload: &[u8]| match v.check("orders.new", payload) {
            Ok(()) => panic!("{} should be dropped", String::from_utf8_lossy(payload)),
            Err(e) => e,
        };
        assert_eq!(
            v.check("orders.new", b"not json"),
            Ok(()),
            "no key, no rule: pass"
        );
        assert!(
            v.check("cfg.a", b"1").is_err(),
            "no key: the configured rule"
        );
        kv_put("orders.new", r#"{"type":"object","required":["id"]}"#);
        assert_eq!(v.check("orders.new", br#"{"id":1}"#), Ok(()));
        let e = dropped(b"{}");
        assert!(e.contains("id"), "{e}");
        kv_put("orders.new", r#"{"type":"object","required":["sku"]}"#);
        assert!(
            v.check("orders.new", br#"{"id":1}"#).is_err(),
            "the new schema, at once"
        );
        assert_eq!(v.check("orders.new", br#"{"sku":1}"#), Ok(()));
        kv_put("orders.new", r#"{"pattern":"x"}"#);
        let e = dropped(b"{}");
        assert!(
            e.contains("kv[orders.new]"),
            "a bad stored schema fails closed: {e}"
        );
        kv_delete("orders.new");
        assert_eq!(
            v.check("orders.new", b"{}"),
            Ok(()),
            "deleted: back to pass"
        );
        assert!(Validator::from_json("{}").is_err());
    }

    #[test]
    fn valid_documents_pass() {
        let s = order();
        assert_eq!(s.validate(&json!({"id": "a1", "qty": 2.0, "items": [{"sku": "x", "price": 1.5}], "status": "paid"})), Ok(()));
        assert_eq!(
            s.validate(&json!({"id": "é", "qty": 100, "items": [{"sku": "x"}], "a/b": 1.0})),
            Ok(())
        );
    }

    #[test]
    fn violations_name_the_place() {
        let s = order();
        let ok = json!({"id": "a1", "qty": 2, "items": [{"sku": "x"}]});
        let with = |k: &str, v: Value| {
            let mut d = ok.clone();
            d[k] = v;
            d
        };
        assert_eq!(
            err(&s, json!([])),
            "schema violation at /: expected object, got array"
        );
        assert_eq!(
            err(&s, json!({"id": "a", "qty": 1})),
            "schema violation at /: missing required property \"items\""
        );
        assert_eq!(
            err(&s, with("qty", json!(0))),
            "schema violation at /qty: 0 is less than the minimum 1"
        );
        assert_eq!(
            err(&s, with("qty", json!(1.5))),
            "schema violation at /qty: expected integer, got number"
        );
        assert_eq!(
            err(&s, with("id", json!(""))),
            "schema violation at /id: string of 0 characters is shorter than 1"
        );
        assert_eq!(
            err(&s, with("id", json!("123456789"))),
            "schema violation at /id: string of 9 characters is longer than 8"
        );
        assert_eq!(
            err(&s, with("status", json!("lost"))),
            "schema violation at /status: \"lost\" is not one of [\"new\",\"paid\"]"
        );
        assert_eq!(
            err(&s, with("extra", json!(1))),
            "schema violation at /: property \"extra\" is not allowed"
        );
        assert_eq!(
            err(
                &s,
                with("items", json!([{"sku": "x"}, {"sku": "y", "price": 0}]))
            ),
            "schema violation at /items/1/price: 0 is not greater than 0"
        );
        assert_eq!(
            err(&s, with("items", json!([]))),
            "schema violation at /items: 0 items, fewer than 1"
        );
        assert_eq!(
            err(&s, with("a/b", json!(2))),
            "schema violation at /a~1b: expected 1"
        );
    }

    #[test]
    fn combinators() {
        let s = schema(
            json!({"anyOf": [{"type": "string"}, {"type": "integer"}], "not": {"const": 13}}),
        );
        assert_eq!(s.validate(&json!("x")), Ok(()));
        assert_eq!(s.validate(&json!(12)), Ok(()));
        assert!(err(&s, json!(13)).contains("under not"));
        assert!(err(&s, json!(null)).contains("anyOf"));
        let one = schema(json!({"oneOf": [{"minimum": 0}, {"maximum": 10}]}));
        assert!(err(&one, json!(5)).contains("matches 2 of oneOf"));
        assert_eq!(one.validate(&json!(-1)), Ok(()));
        let all = schema(json!({"allOf": [{"type": "number"}, {"multipleOf": 0.5}]}));
        assert_eq!(all.validate(&json!(2.5)), Ok(()));
        assert!(err(&all, json!(2.3)).contains("multiple of"));
        let uniq = schema(json!({"uniqueItems": true, "maxItems": 3}));
        assert!(err(&uniq, json!([1, 2, 1.0])).contains("item 2 is a duplicate"));
        assert!(err(&uniq, json!([1, 2, 3, 4])).contains("more than 3"));
        assert!(err(&schema(json!(false)), json!(1)).contains("no value"));
        assert_eq!(schema(json!(true)).validate(&json!({"a": 1})), Ok(()));
    }

    #[test]
    fn bad_schemas_are_rejected() {
        for (s, needle) in [
            (json!({"type": "float"}), "unknown type"),
            (json!({"minimum": "1"}), "expected a number"),
            (json!({"pattern": "^a"}), "\"pattern\" is not supported"),
            (
                json!({"properties": {"a": {"minLength": -1}}}),
                "schema/properties/a/minLength",
            ),
            (json!({"enum": []}), "non-empty array"),
            (json!(3), "object or a boolean"),
            (json!({"multipleOf": 0}), "greater than 0"),
        ] {
            match Schema::compile(&s, "schema") {
                Ok(_) => panic!("{s} accepted"),
                Err(e) => assert!(e.contains(needle), "{e:?} should mention {needle:?}"),
            }
        }
        assert_eq!(
            schema(json!({"title": "t", "$schema": "x", "description": "d"})),
            Schema::default()
        );
    }

    #[test]
    fn rules_by_subject() {
        let v = match Validator::from_json(
            r#"{"rules":[{"subject":"orders.*.created","schema":{"required":["id"]}}],
                "schema":{"type":"object"}}"#,
        ) {
            Ok(v) => v,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(v.check("orders.acme.created", br#"{"id":1}"#), Ok(()));
        assert!(v
            .check("orders.acme.created", br#"{}"#)
            .is_err_and(|e| e.contains("missing")));
        assert_eq!(v.check("other", br#"{}"#), Ok(()));
        assert!(v
            .check("other", b"[1]")
            .is_err_and(|e| e.contains("expected object")));
        assert!(v
            .check("other", b"nope")
            .is_err_and(|e| e.starts_with("payload is not JSON")));
        let only_rules = Validator::from_json(r#"{"rules":[{"subject":"a.>","schema":false}]}"#);
        assert!(only_rules.is_ok_and(|v| v.check("b", b"not json").is_ok()));
        assert!(Validator::from_json("{}").is_err());
        assert!(Validator::from_json(r#"{"schema":{},"extra":1}"#).is_err());
    }

    #[test]
    fn init_refuses_a_bad_configuration() {
        natrium_plugin_sdk::testing::set_config(r#"{"schema":{"type":"nope"}}"#);
        let e = check_config(r#"{"schema":{"type":"nope"}}"#).unwrap_err();
        assert!(e.contains("unknown type"), "{e}");
    }

    #[test]
    fn the_export_fails_closed() {
        natrium_plugin_sdk::testing::set_config(r#"{"schema":{"type":"nope"}}"#);
        let out = validate("A", Message::new("s", b"{}".to_vec()));
        assert!(
            matches!(out, Outcome::Drop(r) if r.contains("misconfigured") && r.contains("unknown type"))
        );
    }
}
