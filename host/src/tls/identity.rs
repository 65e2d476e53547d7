//! The identity in a client certificate: subject DN (RFC 4514 string, as nats-server prints
//! it), subject alternative names and SHA-256 fingerprint. Used by `verify_and_map` and handed
//! to authorizer plugins.

use sha2::{Digest, Sha256};
use x509_parser::der_parser::Oid;
use x509_parser::extensions::GeneralName;
use x509_parser::x509::X509Name;

/// What a (verified) client certificate says about its holder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertIdentity {
    /// Subject DN, RFC 4514 order (last RDN first), e.g. `CN=client,O=Natrium`.
    pub subject: String,
    /// SAN e-mail addresses (rfc822Name).
    pub emails: Vec<String>,
    /// SAN DNS names.
    pub dns: Vec<String>,
    /// SAN IP addresses, textual.
    pub ips: Vec<String>,
    /// SAN URIs.
    pub uris: Vec<String>,
    /// SHA-256 of the DER certificate, lower-case hex.
    pub fingerprint: String,
}

impl CertIdentity {
    /// Parses a DER certificate; `None` if it is not a certificate x509-parser understands.
    pub fn from_der(der: &[u8]) -> Option<CertIdentity> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let mut id = CertIdentity {
            subject: rfc4514(cert.subject()),
            fingerprint: hex(&Sha256::digest(der)),
            ..CertIdentity::default()
        };
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::RFC822Name(s) => id.emails.push((*s).to_string()),
                    GeneralName::DNSName(s) => id.dns.push((*s).to_string()),
                    GeneralName::URI(s) => id.uris.push((*s).to_string()),
                    GeneralName::IPAddress(b) => {
                        if let Some(ip) = ip_string(b) {
                            id.ips.push(ip);
                        }
                    }
                    _ => {}
                }
            }
        }
        Some(id)
    }

    /// All SANs as plain strings: DNS names, IP addresses, e-mail addresses, URIs.
    pub fn sans(&self) -> Vec<String> {
        let mut v = Vec::with_capacity(
            self.dns.len() + self.ips.len() + self.emails.len() + self.uris.len(),
        );
        v.extend(self.dns.iter().cloned());
        v.extend(self.ips.iter().cloned());
        v.extend(self.emails.iter().cloned());
        v.extend(self.uris.iter().cloned());
        v
    }

    /// The user names `verify_and_map` tries, in nats-server's order: e-mail SANs, DNS SANs,
    /// URI SANs, then the subject DN.
    pub fn map_candidates(&self) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        v.extend(self.emails.iter().cloned());
        v.extend(self.dns.iter().cloned());
        v.extend(self.uris.iter().cloned());
        v.push(self.subject.clone());
        v
    }

    /// The form handed to authorizer plugins.
    pub fn to_plugin(&self) -> crate::plugin::TlsIdentity {
        crate::plugin::TlsIdentity {
            subject: self.subject.clone(),
            sans: self.sans(),
            fingerprint: self.fingerprint.clone(),
        }
    }
}

fn hex(b: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

fn ip_string(b: &[u8]) -> Option<String> {
    match b.len() {
        4 => {
            let a: [u8; 4] = b.try_into().ok()?;
            Some(std::net::Ipv4Addr::from(a).to_string())
        }
        16 => {
            let a: [u8; 16] = b.try_into().ok()?;
            Some(std::net::Ipv6Addr::from(a).to_string())
        }
        _ => None,
    }
}

/// Short names Go's `pkix.RDNSequence.String` uses (and so nats-server); other attribute types
/// are printed as a dotted OID with a `#`-hex DER value.
fn short_name(oid: &Oid) -> Option<&'static str> {
    Some(match oid.to_id_string().as_str() {
        "2.5.4.6" => "C",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.3" => "CN",
        "2.5.4.5" => "SERIALNUMBER",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.17" => "POSTALCODE",
        _ => return None,
    })
}

/// RFC 4514 escaping as Go does it.
fn escape(v: &str, out: &mut String) {
    let n = v.chars().count();
    for (k, c) in v.chars().enumerate() {
        let esc = match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' => true,
            ' ' => k == 0 || k + 1 == n,
            '#' => k == 0,
            _ => false,
        };
        if esc {
            out.push('\\');
        }
        out.push(c);
    }
}

/// DER of a string as Go's `asn1.Marshal` would write it (PrintableString when possible,
/// else UTF8String).
fn go_der_string(s: &str) -> Vec<u8> {
    let printable = s.bytes().all(|b| {
        b.is_ascii_alphanumeric()
            || matches!(
                b,
                b' ' | b'\'' | b'(' | b')' | b'+' | b',' | b'-' | b'.' | b'/' | b':' | b'=' | b'?'
            )
    });
    let tag = if printable { 0x13 } else { 0x0c };
    let mut v = vec![tag];
    der_len(s.len(), &mut v);
    v.extend_from_slice(s.as_bytes());
    v
}

/// A DER length (definite form).
fn der_len(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// The subject as Go's `pkix.RDNSequence.String()` prints it: RDNs last to first, `+` between
/// the attributes of a multi-valued RDN.
pub fn rfc4514(name: &X509Name<'_>) -> String {
    let rdns: Vec<_> = name.iter().collect();
    let mut out = String::new();
    for (i, rdn) in rdns.iter().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for (j, atv) in rdn.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            let oid = atv.attr_type();
            let value = atv.as_str().ok();
            match (short_name(oid), value) {
                (Some(short), Some(v)) => {
                    out.push_str(short);
                    out.push('=');
                    escape(v, &mut out);
                }
                (None, Some(v)) => {
                    out.push_str(&oid.to_id_string());
                    out.push_str("=#");
                    out.push_str(&hex(&go_der_string(v)));
                }
                (name, None) => {
                    // Not a string: `#` and the value's DER (tag, length, contents).
                    let any = atv.attr_value();
                    let tag = any.tag().0;
                    let mut der = Vec::new();
                    if tag < 31 {
                        let class = (any.class() as u8) << 6;
                        let constructed = if any.header.is_constructed() { 0x20 } else { 0 };
                        der.push(class | constructed | tag as u8);
                        der_len(any.data.len(), &mut der);
                    }
                    der.extend_from_slice(any.data);
                    out.push_str(&name.map_or_else(|| oid.to_id_string(), str::to_string));
                    out.push_str("=#");
                    out.push_str(&hex(&der));
                }
            }
        }
    }
    out
}

/// Whether two RFC 4514 DN strings name the same subject, whatever the order of their RDNs
/// (attribute types compared case-insensitively).
pub fn dn_equal(a: &str, b: &str) -> bool {
    fn parts(s: &str) -> Option<Vec<(String, String)>> {
        let mut v = Vec::new();
        let mut cur = String::new();
        let mut chars = s.chars();
        let mut items = Vec::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    cur.push(c);
                    if let Some(n) = chars.next() {
                        cur.push(n);
                    }
                }
                ',' | '+' | ';' => items.push(std::mem::take(&mut cur)),
                _ => cur.push(c),
            }
        }
        items.push(cur);
        for it in items {
            let (t, val) = it.split_once('=')?;
            v.push((t.trim().to_ascii_uppercase(), val.trim().to_string()));
        }
        v.sort();
        Some(v)
    }
    match (parts(a), parts(b)) {
        (Some(x), Some(y)) => !x.is_empty() && x == y,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn der(path: &str) -> Vec<u8> {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/certs")
            .join(path);
        let data = std::fs::read(&p).expect("test cert");
        let mut slice = data.as_slice();
        let mut certs = rustls_pemfile::certs(&mut slice);
        certs.next().expect("one cert").expect("pem").to_vec()
    }

    #[test]
    fn client_cert_identity() {
        let d = der("client-cert.pem");
        let id = CertIdentity::from_der(&d).expect("parses");
        assert_eq!(id.subject, "CN=natrium-test-client");
        assert_eq!(id.dns, vec!["localhost"]);
        assert_eq!(id.ips, vec!["127.0.0.1"]);
        assert!(id.emails.is_empty());
        assert_eq!(id.sans(), vec!["localhost", "127.0.0.1"]);
        assert_eq!(id.fingerprint, hex(&Sha256::digest(&d)));
        assert_eq!(id.fingerprint.len(), 64);
        assert!(id
            .fingerprint
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert_eq!(
            id.map_candidates(),
            vec!["localhost", "CN=natrium-test-client"]
        );
    }

    #[test]
    fn mapped_cert_identity() {
        let id = CertIdentity::from_der(&der("mapped-cert.pem")).expect("parses");
        assert_eq!(id.subject, "CN=mapped-client,O=Natrium");
        assert_eq!(id.emails, vec!["alice@natrium.test"]);
        assert_eq!(id.uris, vec!["spiffe://natrium/alice"]);
        assert!(id.dns.is_empty() && id.ips.is_empty());
        // openssl x509 -noout -fingerprint -sha256 -in tests/certs/mapped-cert.pem
        assert_eq!(
            id.fingerprint,
            "79fff2afe57da96c994abbaa8fde6e5d1cf1c0289a6ef2ed38ea7534ab6fbbd2"
        );
        let p = id.to_plugin();
        assert_eq!(p.sans, vec!["alice@natrium.test", "spiffe://natrium/alice"]);
        assert_eq!(
            id.map_candidates(),
            vec![
                "alice@natrium.test",
                "spiffe://natrium/alice",
                "CN=mapped-client,O=Natrium"
            ]
        );
    }

    #[test]
    fn not_a_certificate() {
        assert!(CertIdentity::from_der(b"garbage").is_none());
    }

    #[test]
    fn dn_comparison() {
        assert!(dn_equal("CN=a,O=Natrium", "O=Natrium,CN=a"));
        assert!(dn_equal("cn=a, o=Natrium", "CN=a,O=Natrium"));
        assert!(!dn_equal("CN=a,O=Natrium", "CN=b,O=Natrium"));
        assert!(!dn_equal("CN=a", "CN=a,O=Natrium"));
        assert!(!dn_equal("alice", "alice"));
    }

    #[test]
    fn escaping_and_der() {
        let mut s = String::new();
        escape(" a,b#", &mut s);
        assert_eq!(s, "\\ a\\,b#");
        assert_eq!(go_der_string("ab"), vec![0x13, 2, b'a', b'b']);
        assert_eq!(go_der_string("a@b")[0], 0x0c);
        let long = go_der_string(&"a".repeat(300));
        assert_eq!(&long[..4], &[0x13, 0x82, 0x01, 0x2c]);
        let mut l = Vec::new();
        der_len(200, &mut l);
        assert_eq!(l, vec![0x81, 200]);
    }
}
