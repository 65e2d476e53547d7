//! Parser for nats-server's configuration syntax into a [`Map`].
//!
//! The format is context sensitive (an unquoted string ends at different characters than a
//! key, `include` is only a keyword when followed by blanks), so this is a hand-written
//! recursive-descent parser working on characters rather than a separate token stream.
//! The behaviour follows nats-server's `conf/lex.go` + `conf/parse.go`:
//! - `key: value`, `key = value`, `key value`; quoted keys;
//! - values end at a newline, `;`, `,`, a comment (`#`, `//`), or the enclosing `}`/`]`;
//! - a top-level file may be wrapped in `{ }`;
//! - unquoted `true/false/yes/no/on/off` are booleans, `$NAME` a variable reference;
//! - integers may carry a size suffix (`k`=1000, `kb`/`ki`/`kib`=1024, ... up to `e`/`eib`);
//! - `include path` merges another file's keys (path relative to the including file);
//! - `( ... )` with `)` alone on a line is a raw multi-line string.
//!
//! Maps and arrays nest at most [`MAX_NESTING`] deep, counted across includes and
//! environment variables: the parser recurses once per level, and a file of 100,000 `{` must
//! be an error with its position, not a stack overflow.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::value::{Entry, Kind, Map, Pos, Value};
use super::ConfigError;

/// Includes and environment variables that expand to variables are followed at most this
/// deep, so that a file including itself is an error rather than a stack overflow.
const MAX_DEPTH: usize = 16;

/// Maps and arrays inside one another, at most (real configurations use fewer than ten).
pub const MAX_NESTING: usize = 64;

pub(crate) struct Parser<'a> {
    src: &'a str,
    /// Byte offset of the next character.
    at: usize,
    line: u32,
    column: u32,
    file: Arc<Path>,
    /// Maps currently being built, outermost first: the scopes `$VAR` is looked up in.
    scopes: Vec<Map>,
    depth: usize,
    /// Maps and arrays open around the next character, including those of the files and
    /// variables this text was included from.
    nesting: usize,
}

/// Parses a whole document, which sits `nesting` maps and arrays deep (0 for a file; an
/// included file continues its includer's count). `file` is used for positions and to
/// resolve includes.
pub(crate) fn parse_document(
    src: &str,
    file: &Path,
    depth: usize,
    nesting: usize,
) -> Result<Map, ConfigError> {
    let mut p = Parser::new(src, Arc::from(file), depth, nesting);
    p.document()
}

impl<'a> Parser<'a> {
    fn new(src: &'a str, file: Arc<Path>, depth: usize, nesting: usize) -> Self {
        // A leading byte-order mark is not content.
        let src = src.strip_prefix('\u{feff}').unwrap_or(src);
        Parser {
            src,
            at: 0,
            line: 1,
            column: 1,
            file,
            scopes: Vec::new(),
            depth,
            nesting,
        }
    }

    // ---- character level -------------------------------------------------------------

    fn peek(&self) -> Option<char> {
        self.src[self.at..].chars().next()
    }

    fn peek2(&self) -> Option<char> {
        let mut it = self.src[self.at..].chars();
        it.next();
        it.next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.at += c.len_utf8();
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    fn pos(&self) -> Pos {
        Pos {
            file: self.file.clone(),
            line: self.line,
            column: self.column,
        }
    }

    fn err(&self, pos: Pos, msg: impl Into<String>) -> ConfigError {
        ConfigError::Syntax {
            pos,
            msg: msg.into(),
        }
    }

    fn at_comment(&self) -> bool {
        matches!(self.peek(), Some('#')) || (self.peek() == Some('/') && self.peek2() == Some('/'))
    }

    /// Skips to (not past) the end of the line.
    fn skip_comment(&mut self) {
        while let Some(c) = self.peek() {
            if c == '\n' || c == '\r' {
                break;
            }
            self.bump();
        }
    }

    /// Spaces and tabs only.
    fn skip_blanks(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.bump();
        }
    }

    /// Any whitespace, newlines and comments.
    fn skip_space(&mut self) {
        loop {
            match self.peek() {
                Some(c) if c.is_whitespace() => {
                    self.bump();
                }
                _ if self.at_comment() => self.skip_comment(),
                _ => break,
            }
        }
    }

    // ---- structure ---------------------------------------------------------------------

    fn document(&mut self) -> Result<Map, ConfigError> {
        self.scopes.push(Map::new());
        loop {
            self.skip_space();
            match self.peek() {
                None => break,
                // nats-server accepts a top-level document wrapped in braces, and stray
                // separators between top-level entries.
                Some('{' | '}' | ';' | ',') => {
                    self.bump();
                }
                Some(_) => self.entry(false)?,
            }
        }
        Ok(self.scopes.pop().unwrap_or_default())
    }

    /// `key [sep] value` or `include path`, plus what may follow the value on its line.
    fn entry(&mut self, in_map: bool) -> Result<(), ConfigError> {
        let key_pos = self.pos();
        let (key, quoted) = self.key()?;
        if !quoted && key.eq_ignore_ascii_case("include") && matches!(self.peek(), Some(' ' | '\t'))
        {
            self.skip_blanks();
            self.include(key_pos)?;
            return self.value_end(in_map);
        }
        // Between key and separator any whitespace is allowed, newlines included.
        while matches!(self.peek(), Some(c) if c.is_whitespace()) {
            self.bump();
        }
        if matches!(self.peek(), Some(':' | '=')) {
            self.bump();
            self.skip_blanks();
        }
        let value = self.value(&key)?;
        self.current().insert(Entry {
            key,
            key_pos,
            value,
            used_as_variable: false,
        });
        self.value_end(in_map)
    }

    fn current(&mut self) -> &mut Map {
        if self.scopes.is_empty() {
            self.scopes.push(Map::new());
        }
        let last = self.scopes.len() - 1;
        &mut self.scopes[last]
    }

    fn key(&mut self) -> Result<(String, bool), ConfigError> {
        let pos = self.pos();
        match self.peek() {
            Some(q @ ('"' | '\'')) => {
                self.bump();
                let start = self.at;
                loop {
                    match self.bump() {
                        Some(c) if c == q => break,
                        Some(_) => {}
                        None => return Err(self.err(pos, "unexpected EOF in quoted key")),
                    }
                }
                let end = self.at - q.len_utf8();
                Ok((self.src[start..end].to_string(), true))
            }
            Some(c @ (':' | '=')) => Err(self.err(pos, format!("unexpected key separator '{c}'"))),
            Some(c @ (']' | '[' | '{')) => {
                Err(self.err(pos, format!("unexpected '{c}', expected a key")))
            }
            _ => {
                let start = self.at;
                while let Some(c) = self.peek() {
                    // `{`/`[` also end a key so that `authorization{` works.
                    if c.is_whitespace() || matches!(c, ':' | '=' | '{' | '[') {
                        break;
                    }
                    self.bump();
                }
                Ok((self.src[start..self.at].to_string(), false))
            }
        }
    }

    /// After a value: blanks, then a comment, newline, `;`, `,`, EOF, or the closing `}`.
    fn value_end(&mut self, in_map: bool) -> Result<(), ConfigError> {
        self.skip_blanks();
        if self.at_comment() {
            self.skip_comment();
            return Ok(());
        }
        match self.peek() {
            None | Some('\n' | '\r' | ';' | ',') => {
                self.bump();
                Ok(())
            }
            // In a map the `}` is the map's; at top level it may close a wrapping `{`.
            Some('}') => {
                if !in_map {
                    self.bump();
                }
                Ok(())
            }
            Some(c) => Err(self.err(
                self.pos(),
                format!(
                    "expected a value to end with a new line, comment, ',' or ';', but got '{c}'"
                ),
            )),
        }
    }

    fn value(&mut self, key: &str) -> Result<Value, ConfigError> {
        let pos = self.pos();
        match self.peek() {
            None => Err(self.err(
                pos,
                format!("unexpected EOF, expected a value for \"{key}\""),
            )),
            Some('\n' | '\r') => Err(self.err(
                pos,
                format!("expected a value for \"{key}\" but found a new line"),
            )),
            Some('[') => self.array(),
            Some('{') => self.map(),
            Some('"') => self.dq_string().map(|s| Value::new(Kind::String(s), pos)),
            Some('\'') => self.sq_string().map(|s| Value::new(Kind::String(s), pos)),
            Some('(') => self
                .block_string()
                .map(|s| Value::new(Kind::String(s), pos)),
            Some(_) => self.bare(key),
        }
    }

    /// Runs `inner` (a map or an array opening at `pos`) one level deeper, or refuses.
    fn nested(
        &mut self,
        pos: Pos,
        inner: fn(&mut Self, Pos) -> Result<Value, ConfigError>,
    ) -> Result<Value, ConfigError> {
        if self.nesting >= MAX_NESTING {
            return Err(self.err(
                pos,
                format!("maps and arrays nested more than {MAX_NESTING} deep"),
            ));
        }
        self.nesting += 1;
        let value = inner(self, pos);
        self.nesting -= 1;
        value
    }

    fn map(&mut self) -> Result<Value, ConfigError> {
        self.nested(self.pos(), Self::map_inner)
    }

    fn map_inner(&mut self, pos: Pos) -> Result<Value, ConfigError> {
        self.bump(); // '{'
        self.scopes.push(Map::new());
        loop {
            self.skip_space();
            match self.peek() {
                None => {
                    return Err(self.err(pos, "unexpected EOF processing map (missing '}')"));
                }
                Some('}') => {
                    self.bump();
                    break;
                }
                Some(',') => {
                    return Err(self.err(self.pos(), "unexpected map value terminator ','"));
                }
                Some(_) => self.entry(true)?,
            }
        }
        let map = self.scopes.pop().unwrap_or_default();
        Ok(Value::new(Kind::Map(map), pos))
    }

    fn array(&mut self) -> Result<Value, ConfigError> {
        self.nested(self.pos(), Self::array_inner)
    }

    fn array_inner(&mut self, pos: Pos) -> Result<Value, ConfigError> {
        self.bump(); // '['
        let mut items = Vec::new();
        loop {
            self.skip_space();
            match self.peek() {
                None => {
                    return Err(self.err(pos, "unexpected EOF processing array (missing ']')"));
                }
                Some(']') => {
                    self.bump();
                    break;
                }
                Some(',') => {
                    return Err(self.err(self.pos(), "unexpected array value terminator ','"));
                }
                Some(_) => {}
            }
            items.push(self.value("array element")?);
            self.skip_blanks();
            if self.at_comment() {
                self.skip_comment();
            }
            match self.peek() {
                Some(',' | '\n' | '\r') => {
                    self.bump();
                }
                Some(']') | None => {}
                Some(c) => {
                    return Err(self.err(
                        self.pos(),
                        format!("expected an array value terminator ',' or ']', but got '{c}'"),
                    ));
                }
            }
        }
        Ok(Value::new(Kind::Array(items), pos))
    }

    fn dq_string(&mut self) -> Result<String, ConfigError> {
        let pos = self.pos();
        self.bump(); // '"'
        let mut out = String::new();
        loop {
            let here = self.pos();
            match self.bump() {
                None => return Err(self.err(pos, "unexpected EOF in quoted string")),
                Some('"') => return Ok(out),
                Some('\\') => match self.bump() {
                    Some('t') => out.push('\t'),
                    Some('n') => out.push('\n'),
                    Some('r') => out.push('\r'),
                    Some('"') => out.push('"'),
                    Some('\\') => out.push('\\'),
                    Some('x') => {
                        let hex: String = [self.bump(), self.bump()].iter().flatten().collect();
                        match u8::from_str_radix(&hex, 16) {
                            // Bytes above 0x7f are taken as Latin-1 code points: a Rust
                            // String cannot hold a lone non-UTF-8 byte.
                            Ok(b) if hex.len() == 2 => out.push(char::from(b)),
                            _ => {
                                return Err(self.err(
                                    here,
                                    format!(
                                    "expected two hexadecimal digits after '\\x', but got '{hex}'"
                                ),
                                ))
                            }
                        }
                    }
                    other => {
                        let shown = other.map(String::from).unwrap_or_else(|| "EOF".into());
                        return Err(self.err(
                            here,
                            format!(
                                "invalid escape character '{shown}'; only \\xXX, \\t, \\n, \\r, \\\", \\\\ are allowed"
                            ),
                        ));
                    }
                },
                Some(c) => out.push(c),
            }
        }
    }

    fn sq_string(&mut self) -> Result<String, ConfigError> {
        let pos = self.pos();
        self.bump(); // '\''
        let start = self.at;
        loop {
            match self.bump() {
                None => return Err(self.err(pos, "unexpected EOF in quoted string")),
                Some('\'') => return Ok(self.src[start..self.at - 1].to_string()),
                Some(_) => {}
            }
        }
    }

    /// `( ... )` where the closing `)` stands alone on its line: a raw multi-line string.
    fn block_string(&mut self) -> Result<String, ConfigError> {
        let pos = self.pos();
        self.bump(); // '('
        let start = self.at;
        loop {
            let line_start = self.at;
            let rest = &self.src[line_start..];
            let line_len = rest.find('\n').unwrap_or(rest.len());
            let line = rest[..line_len].trim_end_matches('\r');
            if line == ")" && line_start > start {
                // Content excludes the newline before `)`.
                let end = line_start - 1;
                let text = self.src[start..end].trim_end_matches('\r').to_string();
                for _ in 0..line.chars().count() {
                    self.bump();
                }
                return Ok(text);
            }
            if line_len == rest.len() {
                return Err(self.err(
                    pos,
                    "unexpected EOF in block string (missing ')' on its own line)",
                ));
            }
            while self.at < line_start + line_len + 1 {
                self.bump();
            }
        }
    }

    /// An unquoted token: boolean, variable, number (with size suffix) or string.
    fn bare(&mut self, key: &str) -> Result<Value, ConfigError> {
        let pos = self.pos();
        let start = self.at;
        while let Some(c) = self.peek() {
            if matches!(c, ' ' | '\t' | '\n' | '\r' | ';' | ',' | ']' | '}') {
                break;
            }
            self.bump();
        }
        let text = &self.src[start..self.at];
        if text.is_empty() {
            let c = self.peek().map(String::from).unwrap_or_default();
            return Err(self.err(
                pos,
                format!("unexpected '{c}', expected a value for \"{key}\""),
            ));
        }
        if let Some(name) = text.strip_prefix('$') {
            return self.variable(name, pos);
        }
        match text.to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" => return Ok(Value::new(Kind::Bool(true), pos)),
            "false" | "no" | "off" => return Ok(Value::new(Kind::Bool(false), pos)),
            _ => {}
        }
        match classify_number(text) {
            Number::Integer(i) => Ok(Value {
                kind: Kind::Integer(i),
                pos,
                literal: Some(text.into()),
            }),
            Number::Float(f) => Ok(Value {
                kind: Kind::Float(f),
                pos,
                literal: Some(text.into()),
            }),
            Number::OutOfRange => Err(self.err(pos, format!("integer '{text}' is out of range"))),
            Number::Text => Ok(Value::new(Kind::String(text.to_string()), pos)),
        }
    }

    fn include(&mut self, pos: Pos) -> Result<(), ConfigError> {
        let name = match self.peek() {
            Some('"') => self.dq_string()?,
            Some('\'') => self.sq_string()?,
            Some('\n' | '\r') | None => {
                return Err(self.err(self.pos(), "expected include value but found new line"));
            }
            Some(_) => {
                let start = self.at;
                while let Some(c) = self.peek() {
                    if matches!(c, ' ' | '\t' | '\n' | '\r' | ';' | '}') {
                        break;
                    }
                    self.bump();
                }
                self.src[start..self.at].to_string()
            }
        };
        if self.depth >= MAX_DEPTH {
            return Err(self.err(
                pos,
                format!("includes nested too deeply at '{name}' (cycle?)"),
            ));
        }
        let base = self
            .file
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let path: PathBuf = base.join(&name);
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Include {
            pos: pos.clone(),
            name: name.clone(),
            source: Box::new(ConfigError::Open {
                path: path.clone(),
                source,
            }),
        })?;
        // As in nats-server, an included file is parsed on its own (it sees only its own
        // variables and the environment); its keys then land in the current map.
        let map = parse_document(&text, &path, self.depth + 1, self.nesting).map_err(|e| {
            ConfigError::Include {
                pos,
                name,
                source: Box::new(e),
            }
        })?;
        for entry in map.iter() {
            self.current().insert(entry.clone());
        }
        Ok(())
    }

    /// `$NAME`: the nearest enclosing map that already defines NAME, else the environment.
    fn variable(&mut self, name: &str, pos: Pos) -> Result<Value, ConfigError> {
        // bcrypt hashes (`$2a$...`) are written unquoted in nats configs; they are not variables.
        if ["2a$", "2b$", "2y$"].iter().any(|p| name.starts_with(p)) {
            return Ok(Value::new(Kind::String(format!("${name}")), pos));
        }
        for scope in self.scopes.iter_mut().rev() {
            if let Some(entry) = scope.entry_mut(name) {
                entry.used_as_variable = true;
                let mut v = entry.value.clone();
                v.pos = pos;
                return Ok(v);
            }
        }
        if let Ok(text) = std::env::var(name) {
            if self.depth >= MAX_DEPTH {
                return Err(self.err(pos, format!("variable '{name}' expands too deeply")));
            }
            // Environment values are typed like file values: "4222" is an integer, "1MB" a size.
            let mut sub = Parser::new(&text, self.file.clone(), self.depth + 1, self.nesting);
            sub.scopes.push(Map::new());
            let parsed = if text.trim().is_empty() {
                None
            } else {
                sub.value(name).ok().filter(|_| {
                    sub.skip_blanks();
                    sub.peek().is_none()
                })
            };
            let mut v =
                parsed.unwrap_or_else(|| Value::new(Kind::String(text.clone()), pos.clone()));
            v.pos = pos;
            return Ok(v);
        }
        Err(ConfigError::Variable {
            pos,
            name: name.to_string(),
        })
    }
}

enum Number {
    Integer(i64),
    Float(f64),
    OutOfRange,
    Text,
}

/// Number syntax as nats-server reads it: `-?digits[suffix]` or `-?digits.digits`.
/// Anything else that merely starts with a digit (`127.0.0.1:4222`, `1x`) is a string.
fn classify_number(text: &str) -> Number {
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let digits_end = unsigned
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(unsigned.len());
    if digits_end == 0 {
        return Number::Text;
    }
    let (digits, rest) = unsigned.split_at(digits_end);
    let negative = text.starts_with('-');
    if let Some(frac) = rest.strip_prefix('.') {
        if !frac.is_empty() && frac.chars().all(|c| c.is_ascii_digit()) {
            return match text.parse::<f64>() {
                Ok(f) if f.is_finite() => Number::Float(f),
                _ => Number::OutOfRange,
            };
        }
        return Number::Text;
    }
    let Some(mult) = size_multiplier(rest) else {
        return Number::Text;
    };
    let Ok(n) = digits.parse::<i64>() else {
        return Number::OutOfRange;
    };
    let n = if negative { -n } else { n };
    match n.checked_mul(mult) {
        Some(v) => Number::Integer(v),
        None => Number::OutOfRange,
    }
}

/// nats-server's size suffixes: a bare letter is decimal, `b`/`i`/`ib` binary
/// (so `1k` = 1000 but `1kb` = `1ki` = `1kib` = 1024). Case-insensitive.
pub(crate) fn size_multiplier(suffix: &str) -> Option<i64> {
    let s = suffix.to_ascii_lowercase();
    let mut chars = s.chars();
    let Some(letter) = chars.next() else {
        return Some(1);
    };
    let binary = match chars.as_str() {
        "" => false,
        "b" | "i" | "ib" => true,
        _ => return None,
    };
    let exp = match letter {
        'k' => 1,
        'm' => 2,
        'g' => 3,
        't' => 4,
        'p' => 5,
        'e' => 6,
        _ => return None,
    };
    let base: i64 = if binary { 1024 } else { 1000 };
    base.checked_pow(exp)
}
