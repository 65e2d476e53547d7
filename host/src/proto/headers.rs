//! Reading and writing `NATS/1.0` header blocks (HPUB/HMSG), without allocating to read.

/// The value of the first header named exactly `name` (nats-server matches names
/// case-sensitively), trimmed of surrounding blanks.
pub fn header_value<'a>(block: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let mut lines = block.split(|&b| b == b'\n');
    lines.next()?; // the status line
    for line in lines {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        if &line[..colon] == name.as_bytes() {
            return Some(line[colon + 1..].trim_ascii());
        }
    }
    None
}

/// Every field of a header block, in order (the status line is not a field).
pub fn fields(block: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(block);
    text.split("\r\n")
        .skip(1)
        .filter_map(|line| {
            let (name, value) = line.split_once(':')?;
            Some((name.trim().to_string(), value.trim_start().to_string()))
        })
        .collect()
}

/// The status code of a header block's first line (`NATS/1.0 503` → 503).
pub fn status(block: &[u8]) -> Option<u16> {
    let line = block.split(|&b| b == b'\r' || b == b'\n').next()?;
    let rest = line.strip_prefix(b"NATS/1.0")?.trim_ascii_start();
    let code = rest.split(|&b| b == b' ').next()?;
    std::str::from_utf8(code).ok()?.parse().ok()
}

/// The length of `HeaderBlock::from_fields(fields).finish()`, without building it.
pub fn block_len(fields: &[(String, String)]) -> usize {
    let lines: usize = fields.iter().map(|(n, v)| n.len() + 2 + v.len() + 2).sum();
    "NATS/1.0\r\n".len() + lines + "\r\n".len()
}

/// Builds a header block: the status line, then `name: value` lines.
#[derive(Debug)]
pub struct HeaderBlock(Vec<u8>);

impl HeaderBlock {
    /// A block with `NATS/1.0` and, when given, a status (`NATS/1.0 404 Message Not Found`).
    pub fn new(status: Option<&str>) -> Self {
        let mut b = Vec::with_capacity(128);
        b.extend_from_slice(b"NATS/1.0");
        if let Some(s) = status {
            b.push(b' ');
            b.extend_from_slice(s.as_bytes());
        }
        b.extend_from_slice(b"\r\n");
        HeaderBlock(b)
    }

    /// Continues an existing block (its fields are kept, its final blank line dropped).
    pub fn extend(existing: &[u8]) -> Self {
        let body = existing.strip_suffix(b"\r\n").unwrap_or(existing);
        if body.is_empty() {
            return Self::new(None);
        }
        HeaderBlock(body.to_vec())
    }

    /// A block with `fields` (no status).
    pub fn from_fields(fields: &[(String, String)]) -> Self {
        fields
            .iter()
            .fold(Self::new(None), |b, (name, value)| b.add(name, value))
    }

    /// Adds one field.
    pub fn add(mut self, name: &str, value: &str) -> Self {
        self.0.extend_from_slice(name.as_bytes());
        self.0.extend_from_slice(b": ");
        self.0.extend_from_slice(value.as_bytes());
        self.0.extend_from_slice(b"\r\n");
        self
    }

    /// The finished block, ending in the blank line.
    pub fn finish(mut self) -> Vec<u8> {
        self.0.extend_from_slice(b"\r\n");
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_len_is_the_built_length() {
        for fields in [
            vec![],
            vec![("A".to_string(), "1".to_string())],
            vec![
                ("Long-Name".to_string(), "a value".to_string()),
                ("B".into(), "".into()),
            ],
        ] {
            assert_eq!(
                block_len(&fields),
                HeaderBlock::from_fields(&fields).finish().len()
            );
        }
    }

    #[test]
    fn finds_values_exactly_by_name() {
        let b = b"NATS/1.0\r\nNats-Msg-Id: abc \r\nX:1\r\n\r\n";
        assert_eq!(header_value(b, "Nats-Msg-Id"), Some(&b"abc"[..]));
        assert_eq!(header_value(b, "X"), Some(&b"1"[..]));
        assert_eq!(header_value(b, "nats-msg-id"), None);
        assert_eq!(header_value(b, "Y"), None);
    }

    #[test]
    fn builds_and_extends_blocks() {
        let b = HeaderBlock::new(Some("404 Message Not Found")).finish();
        assert_eq!(b, b"NATS/1.0 404 Message Not Found\r\n\r\n");
        assert_eq!(status(&b), Some(404));
        let e = HeaderBlock::extend(b"NATS/1.0\r\nA: 1\r\n\r\n")
            .add("B", "2")
            .finish();
        assert_eq!(e, b"NATS/1.0\r\nA: 1\r\nB: 2\r\n\r\n");
        assert_eq!(header_value(&e, "B"), Some(&b"2"[..]));
        assert_eq!(status(b"NATS/1.0\r\n\r\n"), None);
    }
}
