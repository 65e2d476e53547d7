//! `natrium plugin check FILE [--world W]`: is the file a component, which natrium worlds it
//! satisfies, which imports natrium does not grant (each with its fix), and its sha256 to pin.
//! The words are `plugin::diagnose`'s, the same the broker's load errors use.

use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::plugin::diagnose::World;
use crate::plugin::Diagnosis;

/// Whether the diagnosed file loads (into a binding of `world`'s role when given).
pub(crate) fn loadable(d: &Diagnosis, world: Option<World>) -> bool {
    d.inspection.as_ref().is_some_and(|i| {
        i.link_error.is_none()
            && match world {
                Some(w) => i.worlds.contains(&w),
                None => !i.worlds.is_empty(),
            }
    })
}

/// The readable report.
pub(crate) fn text(file: &str, d: &Diagnosis, world: Option<World>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{file}");
    let _ = writeln!(out, "  sha256: {}", d.sha256);
    let _ = writeln!(out, "  size: {} bytes", d.size);
    if let Some(problem) = d.form.problem() {
        let _ = writeln!(out, "  not loadable: {problem}");
        return out;
    }
    let Some(i) = &d.inspection else {
        let why = d.compile_error.as_deref().unwrap_or("does not compile");
        let _ = writeln!(out, "  not loadable: not a valid component: {why}");
        return out;
    };
    let names: Vec<&str> = i.worlds.iter().map(|w| w.as_str()).collect();
    let _ = writeln!(
        out,
        "  worlds: {}{}",
        if names.is_empty() {
            "none (exports no natrium world)".to_string()
        } else {
            names.join(", ")
        },
        if i.lifecycle {
            " (+ lifecycle: checks its configuration at load)".to_string()
        } else {
            String::new()
        }
    );
    let ungranted: Vec<_> = i.ungranted().collect();
    let _ = writeln!(
        out,
        "  imports: {} ({})",
        i.imports.len(),
        if ungranted.is_empty() {
            "all granted".to_string()
        } else {
            format!("{} not granted", ungranted.len())
        }
    );
    for imp in &ungranted {
        let _ = writeln!(
            out,
            "    not granted: {}\n      fix: {}",
            imp.name,
            imp.fix()
        );
    }
    if let (Some(e), true) = (&i.link_error, ungranted.is_empty()) {
        let _ = writeln!(out, "  cannot link: {e}");
    }
    if i.kv {
        let _ = writeln!(
            out,
            "  reads key-value buckets: its binding must grant one (kv: {{ bucket: NAME }})"
        );
    }
    if let Some(w) = world {
        if !i.worlds.contains(&w) {
            let _ = writeln!(out, "  not a {}: missing export {}", w.as_str(), w.export());
        }
    }
    if loadable(d, world) {
        let _ = writeln!(
            out,
            "  loadable: yes{}\n  pin it in the binding: sha256: \"{}\"",
            world.map_or(String::new(), |w| format!(" (as {})", w.as_str())),
            d.sha256
        );
    } else {
        let _ = writeln!(out, "  loadable: no");
    }
    out
}

/// The JSON report.
pub(crate) fn json(file: &str, d: &Diagnosis, world: Option<World>) -> Value {
    let mut v = json!({
        "file": file,
        "sha256": d.sha256,
        "size": d.size,
        "component": d.form.problem().is_none(),
        "problem": d.form.problem().map(String::from).or_else(|| d.compile_error.clone()),
        "loadable": loadable(d, world),
    });
    if let Some(i) = &d.inspection {
        v["worlds"] = json!(i.worlds.iter().map(|w| w.as_str()).collect::<Vec<_>>());
        v["lifecycle"] = json!(i.lifecycle);
        v["kv"] = json!(i.kv);
        v["imports"] = json!(i
            .imports
            .iter()
            .map(|imp| json!({
                "name": imp.name,
                "granted": imp.granted,
                "fix": (!imp.granted).then(|| imp.fix()),
            }))
            .collect::<Vec<_>>());
        v["link_error"] = json!(i.link_error);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::diagnose::{Form, Import, Inspection};

    fn diagnosis(inspection: Option<Inspection>, form: Form) -> Diagnosis {
        Diagnosis {
            sha256: "ab".repeat(32),
            size: 1234,
            form,
            compile_error: None,
            inspection,
        }
    }

    fn authorizer(imports: &[&str], link_error: Option<&str>) -> Inspection {
        Inspection {
            worlds: vec![World::Authorizer],
            lifecycle: true,
            kv: false,
            imports: imports.iter().map(|n| Import::new(n)).collect(),
            link_error: link_error.map(String::from),
        }
    }

    #[test]
    fn a_loadable_component_gets_its_pin() {
        let d = diagnosis(
            Some(authorizer(&["natrium:plugin/host@0.1.0"], None)),
            Form::Component,
        );
        let hex = "ab".repeat(32);
        assert_eq!(
            text("a.wasm", &d, Some(World::Authorizer)),
            format!(
                "a.wasm\n  sha256: {hex}\n  size: 1234 bytes\n  worlds: authorizer (+ lifecycle: \
                 checks its configuration at load)\n  imports: 1 (all granted)\n  loadable: yes \
                 (as authorizer)\n  pin it in the binding: sha256: \"{hex}\"\n"
            )
        );
        assert!(loadable(&d, None) && !loadable(&d, Some(World::Mapper)));
    }

    #[test]
    fn what_is_wrong_comes_with_the_fix() {
        let http = diagnosis(
            Some(authorizer(&["wasi:http/types@0.2.4"], Some("link error"))),
            Form::Component,
        );
        let t = text("js.wasm", &http, None);
        assert!(
            t.contains("    not granted: wasi:http/types@0.2.4\n      fix: "),
            "{t}"
        );
        assert!(
            !t.contains("cannot link"),
            "the import is the explanation: {t}"
        );
        assert!(t.ends_with("  loadable: no\n"), "{t}");

        let core = diagnosis(None, Form::CoreModule);
        let t = text("m.wasm", &core, None);
        assert!(
            t.contains("  not loadable: is a core WebAssembly module"),
            "{t}"
        );
        let j = json("m.wasm", &core, None);
        assert_eq!(j["component"], false);
        assert_eq!(j["loadable"], false);
    }
}
