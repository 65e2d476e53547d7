//! `natrium plugin new NAME --lang L --world W`: a plugin project that builds, tests and loads.
//!
//! The project's files are the templates under `templates/<lang>/`, compiled into the binary
//! with `include_str!`, with `{{placeholders}}` filled in. Every project gets the same small
//! example decision for its world in each language (see [`example`]), a `build.sh` that
//! installs what it needs, a test, a README and `samples.json`: inputs for `natrium plugin
//! run` and the decisions they must get (the Python and JavaScript tests run them; so does
//! the end-to-end test of this command for every language).
//!
//! Versions come from the repository, so a new project builds exactly as the example plugins
//! do: the WIT is `wit/natrium-plugin.wit`; componentize-py is the version `plugins/build.sh`
//! installs; componentize-js and everything it runs are pinned by the lockfile of
//! `plugins/json-shaper-js` (unit tests below keep these in step).
//!
//! The Rust SDK is not on crates.io: a Rust project depends on `plugin-sdk` by path. When the
//! project is created inside a natrium checkout (or the binary runs from one, or `--sdk`
//! names one), that path is filled in — relative when the project is inside the checkout —
//! and the checkout's `plugins/Cargo.lock` is copied so the project resolves the same
//! versions as the example plugins (and can share their target directory). Otherwise the
//! dependency points at `../natrium/plugin-sdk`, a sibling checkout, with a comment saying so.

use std::fs;
use std::path::{Component, Path, PathBuf};

use serde_json::{json, Value};

use super::args::{self, valued};
use super::{Done, ToolError};
use crate::plugin::diagnose::World;

/// The componentize-py release the Python recipe uses (the one `plugins/build.sh` installs).
pub(crate) const COMPONENTIZE_PY: &str = "0.25.1";
/// The componentize-js release the JavaScript recipe uses (pinned, with its dependencies, by
/// `plugins/json-shaper-js/package-lock.json`).
pub(crate) const COMPONENTIZE_JS: &str = "0.23.0";

const WIT: &str = include_str!("../../../wit/natrium-plugin.wit");
const JS_LOCK: &str = include_str!("../../../plugins/json-shaper-js/package-lock.json");
/// The package name in [`JS_LOCK`], replaced by the project's.
const JS_LOCK_NAME: &str = "\"name\": \"natrium-json-shaper-js\"";

pub(crate) const USAGE: &str = "\
Usage: natrium plugin new NAME --lang L --world W [--dir D] [--sdk PATH]

Writes a plugin project that builds, tests and loads: the plugin (a small working example
for the world), build.sh (installs what it needs), a test, samples.json and a README.
Refuses to write into a directory that exists.

Options:
    --lang L     rust, python or javascript
    --world W    authorizer, mapper, transformer or batch-transformer
    --dir D      The project directory (default: ./NAME)
    --sdk PATH   Rust: the natrium checkout (or its plugin-sdk directory) to depend on
                 (default: the checkout the project or this binary is in, if any)
";

/// A language `new` writes projects in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lang {
    Rust,
    Python,
    JavaScript,
}

impl Lang {
    const ALL: [Lang; 3] = [Lang::Rust, Lang::Python, Lang::JavaScript];

    fn as_str(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Python => "python",
            Lang::JavaScript => "javascript",
        }
    }

    fn parse(s: &str) -> Option<Lang> {
        match s {
            "js" => Some(Lang::JavaScript),
            "py" => Some(Lang::Python),
            s => Lang::ALL.into_iter().find(|l| l.as_str() == s),
        }
    }
}

/// One world's example: what it decides, and how to see it decide.
struct Example {
    /// One sentence for the README.
    what: &'static str,
    /// The SDK macro (Rust).
    sdk_macro: &'static str,
    /// The binding's `role`.
    role: &'static str,
    /// The configuration the samples run with.
    config: Value,
    /// `natrium plugin run` input flags, and what the JSON report must contain.
    samples: Vec<(Vec<&'static str>, Value)>,
}

fn example(world: World) -> Example {
    match world {
        World::Authorizer => Example {
            what: "It admits a client whose CONNECT token is one of the configured tokens into \
                   that token's account, with rights on the account's own subjects, and refuses \
                   everyone else with a reason.",
            sdk_macro: "authorizer",
            role: "authorizer",
            config: json!({"tokens": {"s3cret": "ACME"}}),
            samples: vec![
                (
                    vec!["--token", "s3cret", "--user", "alice"],
                    json!({"decision": "allow", "account": "ACME", "user": "alice",
                           "publish": {"allow": ["acme.>"], "deny": []}}),
                ),
                (
                    vec!["--token", "guess"],
                    json!({"decision": "deny", "reason": "unknown token"}),
                ),
            ],
        },
        World::Mapper => Example {
            what: "It moves subjects from the `legacy.` prefix to `v2.` and keeps every other \
                   subject; the result is deterministic, so the broker caches it.",
            sdk_macro: "mapper(deterministic)",
            role: "mapper",
            config: json!({}),
            samples: vec![
                (
                    vec!["--subject", "legacy.orders.1"],
                    json!({"decision": "map", "subject": "v2.orders.1"}),
                ),
                (
                    vec!["--subject", "orders.1"],
                    json!({"decision": "map", "subject": null}),
                ),
            ],
        },
        World::Transformer => Example {
            what: "It stamps every message with the account it was published in (header \
                   `Account`) and drops empty messages with a reason.",
            sdk_macro: "transformer",
            role: "transformer",
            config: json!({}),
            samples: vec![
                (
                    vec![
                        "--account",
                        "ACME",
                        "--subject",
                        "orders.1",
                        "--payload",
                        "hi",
                    ],
                    json!({"decision": "replace", "message": {"subject": "orders.1",
                           "headers": [["Account", "ACME"]], "payload": "hi"}}),
                ),
                (
                    vec!["--subject", "orders.1"],
                    json!({"decision": "drop", "reason": "empty message on orders.1"}),
                ),
            ],
        },
        World::BatchTransformer => Example {
            what: "It drops messages whose payload is over `max_bytes` (default 1024), reading \
                   only payload lengths, so everything else passes without being copied.",
            sdk_macro: "batch_transformer",
            role: "transformer",
            config: json!({"max_bytes": 4}),
            samples: vec![
                (
                    vec!["--subject", "logs.app", "--payload", "too long"],
                    json!({"decision": "drop",
                           "reason": "payload of 8 bytes is over the limit of 4"}),
                ),
                (
                    vec!["--subject", "logs.app", "--payload", "ok"],
                    json!({"decision": "pass"}),
                ),
            ],
        },
    }
}

/// A template: its path in the project, its text.
type Template = (&'static str, &'static str);

/// The plugin source of `lang` for `world`.
fn source(lang: Lang, world: World) -> Template {
    macro_rules! per_world {
        ($dir:literal, $file:literal, $ext:literal) => {
            match world {
                World::Authorizer => (
                    $file,
                    include_str!(concat!("templates/", $dir, "/authorizer.", $ext)),
                ),
                World::Mapper => (
                    $file,
                    include_str!(concat!("templates/", $dir, "/mapper.", $ext)),
                ),
                World::Transformer => (
                    $file,
                    include_str!(concat!("templates/", $dir, "/transformer.", $ext)),
                ),
                World::BatchTransformer => (
                    $file,
                    include_str!(concat!("templates/", $dir, "/batch-transformer.", $ext)),
                ),
            }
        };
    }
    match lang {
        Lang::Rust => per_world!("rust", "src/lib.rs", "rs"),
        Lang::Python => per_world!("python", "app.py", "py"),
        Lang::JavaScript => per_world!("javascript", "app.js", "js"),
    }
}

/// Everything else `lang` needs, world-independent (placeholders aside).
fn scaffold(lang: Lang) -> Vec<Template> {
    match lang {
        Lang::Rust => vec![
            ("Cargo.toml", include_str!("templates/rust/Cargo.toml")),
            ("build.sh", include_str!("templates/rust/build.sh")),
            ("README.md", include_str!("templates/rust/README.md")),
            (".gitignore", include_str!("templates/rust/gitignore")),
        ],
        Lang::Python => vec![
            ("build.sh", include_str!("templates/python/build.sh")),
            (
                "test_plugin.py",
                include_str!("templates/python/test_plugin.py"),
            ),
            ("README.md", include_str!("templates/python/README.md")),
            (".gitignore", include_str!("templates/python/gitignore")),
            ("wit/natrium-plugin.wit", WIT),
        ],
        Lang::JavaScript => vec![
            ("build.sh", include_str!("templates/javascript/build.sh")),
            (
                "package.json",
                include_str!("templates/javascript/package.json"),
            ),
            (
                "plugin.test.mjs",
                include_str!("templates/javascript/plugin.test.mjs"),
            ),
            ("README.md", include_str!("templates/javascript/README.md")),
            (".gitignore", include_str!("templates/javascript/gitignore")),
            ("wit/natrium-plugin.wit", WIT),
        ],
    }
}

/// Where the Rust SDK comes from.
#[derive(Debug, PartialEq, Eq)]
enum Sdk {
    /// A natrium checkout: its root, and the dependency's path as written in Cargo.toml.
    Found { root: PathBuf, path: String },
    /// No checkout known: the placeholder path.
    Placeholder,
}

const SDK_PLACEHOLDER: &str = "../natrium/plugin-sdk";

impl Sdk {
    fn dependency(&self) -> String {
        match self {
            Sdk::Found { path, .. } => {
                format!("natrium-plugin-sdk = {{ path = {} }}", toml_string(path))
            }
            Sdk::Placeholder => format!(
                "# natrium-plugin-sdk is not on crates.io yet: this path must name the plugin-sdk\n\
                 # directory of a natrium checkout (`natrium plugin new --sdk PATH` fills it in).\n\
                 natrium-plugin-sdk = {{ path = \"{SDK_PLACEHOLDER}\" }}"
            ),
        }
    }

    fn note(&self) -> String {
        match self {
            Sdk::Found { path, .. } => format!("by path, from the natrium checkout (`{path}`)"),
            Sdk::Placeholder => format!(
                "by path: `{SDK_PLACEHOLDER}` is a placeholder, point it at your natrium \
                 checkout's `plugin-sdk`"
            ),
        }
    }
}

fn toml_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

/// The natrium checkout at or above `dir`: the directory whose `plugin-sdk/Cargo.toml` is the
/// SDK's.
fn checkout_above(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .find(|d| {
            fs::read_to_string(d.join("plugin-sdk").join("Cargo.toml"))
                .is_ok_and(|t| t.contains("name = \"natrium-plugin-sdk\""))
        })
        .map(Path::to_path_buf)
}

/// `to` relative to `from` (both absolute, lexically normalized), when `to` lies under an
/// ancestor of `from` that is the checkout `root`.
fn relative(from: &Path, to: &Path, root: &Path) -> Option<String> {
    let up = from.strip_prefix(root).ok()?.components().count();
    let down = to.strip_prefix(root).ok()?;
    let mut s = "../".repeat(up);
    s.push_str(&down.to_string_lossy());
    Some(s)
}

/// Removes `.` and `..` lexically (the project directory does not exist yet).
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

fn find_sdk(project: &Path, given: Option<&str>) -> Result<Sdk, ToolError> {
    if let Some(g) = given {
        let g = normalize(&absolute(Path::new(g))?);
        let root = if g.ends_with("plugin-sdk") {
            g.parent().map(Path::to_path_buf)
        } else {
            Some(g.clone())
        };
        let root = root
            .filter(|r| checkout_above(r).as_deref() == Some(r.as_path()))
            .ok_or_else(|| {
                ToolError::Input(format!(
                    "--sdk {}: not a natrium checkout (no plugin-sdk/Cargo.toml there)",
                    g.display()
                ))
            })?;
        let path = root.join("plugin-sdk").to_string_lossy().into_owned();
        return Ok(Sdk::Found { root, path });
    }
    if let Some(root) = checkout_above(project) {
        let path = relative(project, &root.join("plugin-sdk"), &root)
            .unwrap_or_else(|| root.join("plugin-sdk").to_string_lossy().into_owned());
        return Ok(Sdk::Found { root, path });
    }
    let exe = std::env::current_exe()
        .ok()
        .and_then(|e| fs::canonicalize(e).ok());
    if let Some(root) = exe
        .as_deref()
        .and_then(Path::parent)
        .and_then(checkout_above)
    {
        let path = root.join("plugin-sdk").to_string_lossy().into_owned();
        return Ok(Sdk::Found { root, path });
    }
    Ok(Sdk::Placeholder)
}

fn absolute(p: &Path) -> Result<PathBuf, ToolError> {
    std::path::absolute(p).map_err(|e| ToolError::Input(format!("{}: {e}", p.display())))
}

/// A `natrium plugin run` argument as a shell word.
fn shell_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.,:/=@%+".contains(&b));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The files of project `name`, paths relative to its directory.
fn render(name: &str, lang: Lang, world: World, sdk: &Sdk) -> Vec<(String, String)> {
    let ex = example(world);
    let config = ex.config.to_string();
    let first = ex
        .samples
        .first()
        .map(|(a, _)| a.clone())
        .unwrap_or_default();
    let mut run_example = Vec::new();
    if config != "{}" {
        run_example.push("--config".to_string());
        run_example.push(shell_word(&config));
    }
    run_example.extend(first.iter().map(|a| shell_word(a)));
    // What the interpreted languages need beyond the broker's defaults (measured; README
    // "Plugins in Rust, Python and JavaScript"): a new Python instance starts its interpreter
    // within its first call's deadline (5-10 ms, over a mapper's or transformer's default 5 ms);
    // SpiderMonkey's heap grows to ~70 MiB before it collects (over the default 64 MB cap).
    let (limit_flags, limit_conf) = match lang {
        Lang::Rust => ("", ""),
        Lang::Python => ("--deadline 100ms ", ", deadline: \"100ms\""),
        Lang::JavaScript => ("--memory 128MB ", ", memory: 128MB"),
    };
    let samples = json!({
        "world": world.as_str(),
        "config": ex.config,
        "samples": ex.samples.iter().map(|(args, expect)| json!({"args": args, "expect": expect}))
            .collect::<Vec<_>>(),
    });
    let vars: [(&str, String); 14] = [
        ("{{name}}", name.to_string()),
        ("{{crate}}", name.replace('-', "_")),
        ("{{world}}", world.as_str().to_string()),
        ("{{role}}", ex.role.to_string()),
        ("{{macro}}", ex.sdk_macro.to_string()),
        ("{{what}}", ex.what.to_string()),
        (
            "{{run_example}}",
            format!("{limit_flags}{}", run_example.join(" ")),
        ),
        ("{{binding_limits}}", limit_conf.to_string()),
        ("{{limit_flags}}", limit_flags.trim_end().to_string()),
        ("{{config_conf}}", config),
        ("{{sdk_dependency}}", sdk.dependency()),
        ("{{sdk_note}}", sdk.note()),
        ("{{componentize_py}}", COMPONENTIZE_PY.to_string()),
        ("{{componentize_js}}", COMPONENTIZE_JS.to_string()),
    ];
    let fill = |text: &str| {
        vars.iter()
            .fold(text.to_string(), |t, (k, v)| t.replace(k, v))
    };
    let mut files: Vec<(String, String)> = std::iter::once(source(lang, world))
        .chain(scaffold(lang))
        .map(|(path, text)| {
            // The WIT is copied as it is.
            let text = if text == WIT {
                text.to_string()
            } else {
                fill(text)
            };
            (path.to_string(), text)
        })
        .collect();
    files.push((
        "samples.json".into(),
        format!(
            "{}\n",
            serde_json::to_string_pretty(&samples).unwrap_or_default()
        ),
    ));
    match lang {
        Lang::JavaScript => files.push((
            "package-lock.json".into(),
            JS_LOCK.replace(JS_LOCK_NAME, &format!("\"name\": \"{name}\"")),
        )),
        Lang::Rust => {
            if let Sdk::Found { root, .. } = sdk {
                if let Ok(lock) = fs::read_to_string(root.join("plugins").join("Cargo.lock")) {
                    files.push(("Cargo.lock".into(), lock));
                }
            }
        }
        Lang::Python => {}
    }
    files
}

/// A project name: lower-case letters, digits and `-`, starting with a letter (a crate, npm
/// package and file name at once).
fn check_name(name: &str) -> Result<(), ToolError> {
    let ok = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(ToolError::Usage(format!(
            "NAME {name:?}: lower-case letters, digits and '-', starting with a letter \
             (at most 64)"
        )))
    }
}

pub(crate) fn new(args: &[String]) -> Result<Done, ToolError> {
    let a = args::parse(
        args,
        &[
            valued("lang"),
            valued("world"),
            valued("dir"),
            valued("sdk"),
        ],
    )?;
    if a.has("help") {
        return Ok(Done::Help);
    }
    let name = match a.positional.as_slice() {
        [n] => n.as_str(),
        [] => return Err(ToolError::Usage("which plugin? give NAME".into())),
        more => {
            return Err(ToolError::Usage(format!(
                "one NAME, not {}: {}",
                more.len(),
                more.join(" ")
            )))
        }
    };
    check_name(name)?;
    let lang = a
        .value("lang")
        .ok_or_else(|| ToolError::Usage("--lang is required (rust, python, javascript)".into()))?;
    let lang = Lang::parse(lang).ok_or_else(|| {
        ToolError::Usage(format!(
            "unknown language {lang:?} (rust, python, javascript)"
        ))
    })?;
    let world = super::world(&a)?.ok_or_else(|| {
        ToolError::Usage(
            "--world is required (authorizer, mapper, transformer, batch-transformer)".into(),
        )
    })?;
    let dir = PathBuf::from(a.value("dir").unwrap_or(name));
    if fs::symlink_metadata(&dir).is_ok() {
        return Err(ToolError::Input(format!(
            "{} exists: refusing to overwrite it (choose another --dir, or remove it)",
            dir.display()
        )));
    }
    let project = normalize(&absolute(&dir)?);
    let sdk = match lang {
        Lang::Rust => find_sdk(&project, a.value("sdk"))?,
        _ => Sdk::Placeholder,
    };
    let files = render(name, lang, world, &sdk);
    write(&dir, &files)?;

    println!(
        "Created {} ({} {} plugin {name}):",
        dir.display(),
        lang.as_str(),
        world.as_str()
    );
    for (path, _) in &files {
        println!("    {path}");
    }
    if lang == Lang::Rust && sdk == Sdk::Placeholder {
        println!(
            "note: no natrium checkout found: set the natrium-plugin-sdk path in Cargo.toml \
             (or run again with --sdk PATH)"
        );
    }
    let test = match lang {
        Lang::Rust => "cargo test",
        Lang::Python => "python3 -m unittest -v",
        Lang::JavaScript => "node --test",
    };
    println!(
        "Next:\n    cd {} && ./build.sh && {test}\n    natrium plugin check {name}.wasm --world {}\n\
         (README.md has the rest: run, bench, the broker configuration.)",
        shell_word(&dir.display().to_string()),
        world.as_str()
    );
    Ok(Done::Ok)
}

/// Creates `dir` (which must not exist) and the files in it; `build.sh` is executable.
fn write(dir: &Path, files: &[(String, String)]) -> Result<(), ToolError> {
    let err = |p: &Path, e: std::io::Error| ToolError::Write(format!("{}: {e}", p.display()));
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|e| err(parent, e))?;
    }
    // create_dir, not create_dir_all: fails if another process made it meanwhile.
    fs::create_dir(dir).map_err(|e| err(dir, e))?;
    for (rel, text) in files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| err(parent, e))?;
        }
        fs::write(&path, text).map_err(|e| err(&path, e))?;
        #[cfg(unix)]
        if rel.ends_with(".sh") {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755))
                .map_err(|e| err(&path, e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_python_version_is_the_one_plugins_build_sh_installs() {
        let build = include_str!("../../../plugins/build.sh");
        assert!(
            build.contains(&format!("COMPONENTIZE_PY_VERSION={COMPONENTIZE_PY}\n")),
            "plugins/build.sh and new.rs disagree on the componentize-py version"
        );
    }

    #[test]
    fn the_javascript_lockfile_pins_the_version_the_template_names() {
        let lock: Value = serde_json::from_str(JS_LOCK).expect("package-lock.json is JSON");
        assert_eq!(
            lock["packages"]["node_modules/@bytecodealliance/componentize-js"]["version"],
            COMPONENTIZE_JS
        );
        let package = render("x", Lang::JavaScript, World::Mapper, &Sdk::Placeholder)
            .into_iter()
            .find(|(path, _)| path == "package.json")
            .map(|(_, text)| text)
            .unwrap_or_default();
        let package: Value = serde_json::from_str(&package).expect("package.json is JSON");
        assert_eq!(
            package["devDependencies"], lock["packages"][""]["devDependencies"],
            "the template's package.json must match the lock's root, or `npm ci` refuses"
        );
        assert_eq!(
            JS_LOCK.matches(JS_LOCK_NAME).count(),
            2,
            "name, packages[\"\"].name"
        );
    }

    #[test]
    fn every_placeholder_is_filled_for_every_language_and_world() {
        for lang in Lang::ALL {
            for world in World::ALL {
                let sdk = Sdk::Found {
                    root: PathBuf::from("/nowhere"),
                    path: "../plugin-sdk".into(),
                };
                for (path, text) in render("my-plugin", lang, world, &sdk) {
                    assert!(!text.contains("{{"), "{lang:?} {world:?} {path}: {text}");
                    if path != "wit/natrium-plugin.wit" && path != "package-lock.json" {
                        assert!(!text.contains("json-shaper"), "{lang:?} {world:?} {path}");
                    }
                }
            }
        }
    }

    #[test]
    fn names_must_suit_a_crate_a_package_and_a_file() {
        for ok in ["a", "my-plugin", "tagger2"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "My", "2x", "a_b", "a-", "a/b", "../x", &"a".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_sdk_path_is_relative_inside_a_checkout() {
        let root = Path::new("/src/natrium");
        assert_eq!(
            relative(
                Path::new("/src/natrium/plugins/mine"),
                &root.join("plugin-sdk"),
                root
            )
            .as_deref(),
            Some("../../plugin-sdk")
        );
        assert_eq!(
            relative(Path::new("/elsewhere/mine"), &root.join("plugin-sdk"), root),
            None
        );
        assert!(Sdk::Placeholder.dependency().contains(SDK_PLACEHOLDER));
    }

    #[test]
    fn run_examples_are_shell_words() {
        assert_eq!(shell_word("--token"), "--token");
        assert_eq!(shell_word("too long"), "'too long'");
        assert_eq!(shell_word(r#"{"a":1}"#), r#"'{"a":1}'"#);
        assert_eq!(shell_word("it's"), r"'it'\''s'");
    }
}
