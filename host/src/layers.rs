//! The layering rule, checked: a module never imports a module of a higher layer, and
//! `client` (what accounts index) never imports `account`.

use std::path::Path;

/// Layer of each top-level module (see the crate docs).
fn layer(module: &str) -> Option<u8> {
    Some(match module {
        "proto" | "subject" | "config" | "options" | "cli" | "util" | "timefmt" | "logging"
        | "auth::pure" => 1,
        "client" | "account" | "auth" | "jetstream" | "plugin" | "tls" => 2,
        "path" => 3,
        "server" | "system" | "monitor" | "tool" => 4,
        _ => return None,
    })
}

/// `auth`'s building blocks are pure (bytes and keys in, decisions out) and may be used by
/// the configuration model; the rest of `auth` is layer 2.
const PURE_AUTH: &[&str] = &[
    "nkeys",
    "jwt",
    "creds",
    "password",
    "permissions",
    "identity",
    "callout",
];

/// Every `crate::<module>` a file names, `auth::<pure block>` counted as its own module.
fn imports(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        let path: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        let mut parts = path.split("::").filter(|p| !p.is_empty());
        let Some(name) = parts.next() else { continue };
        match (name, parts.next()) {
            ("auth", Some(sub)) if PURE_AUTH.contains(&sub) => found.push("auth::pure".into()),
            _ => found.push(name.to_string()),
        }
    }
    found
}

fn visit(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            visit(&p, files);
        } else if p.extension().is_some_and(|x| x == "rs") {
            files.push(p);
        }
    }
}

#[test]
fn lower_layers_never_import_higher_ones() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    visit(&src, &mut files);
    let mut violations = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap_or(&file);
        let first = rel
            .components()
            .next()
            .map(|c| c.as_os_str().to_string_lossy());
        let mut module = first
            .as_deref()
            .unwrap_or("")
            .trim_end_matches(".rs")
            .to_string();
        if module == "auth" {
            let sub = rel
                .components()
                .nth(1)
                .map(|c| c.as_os_str().to_string_lossy());
            let sub = sub
                .as_deref()
                .unwrap_or("")
                .trim_end_matches(".rs")
                .to_string();
            if PURE_AUTH.contains(&sub.as_str()) {
                module = "auth::pure".into();
            }
        }
        let Some(own) = layer(&module) else { continue };
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        for used in imports(&text) {
            let Some(theirs) = layer(&used) else { continue };
            let circle = module == "client" && used == "account";
            if theirs > own || circle {
                violations.push(format!(
                    "{} (layer {own}) uses crate::{used} (layer {theirs})",
                    rel.display()
                ));
            }
        }
    }
    violations.sort();
    violations.dedup();
    assert!(
        violations.is_empty(),
        "layering violations:\n{}",
        violations.join("\n")
    );
}
