//! Why a file is or is not a plugin natrium can load, with the fix for each problem.
//!
//! One diagnosis serves both audiences: `natrium plugin check` prints it, and the broker's own
//! load (start-up, `natrium -t`, reload) puts the same words into its error. The questions, in
//! the order a build goes wrong:
//!
//! ```text
//!  bytes ──form()──▶ not wasm │ precompiled │ core module (→ build for wasm32-wasip2, or
//!    │                                          `wasm-tools component new` with an adapter)
//!    ▼ component
//!  Component ──inspect()──▶ worlds it satisfies (its exports)
//!                           imports natrium does not grant (each with the fix)
//!                           whether the real linker accepts it
//! ```
//!
//! Which imports are granted is decided by the broker's linker (`sandbox::linker`); the table
//! [`GRANTED`] mirrors it only to *name* the offending imports and give advice. A load is
//! refused on what the linker says, never on the table alone.

use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Linker};
use wasmtime::Engine;

use super::bindings::{
    AUTHORIZATION_EXPORT, BATCH_TRANSFORMATION_EXPORT, KV_IMPORT, LIFECYCLE_EXPORT, MAPPING_EXPORT,
    TRANSFORMATION_EXPORT,
};
use super::sandbox::HostState;
use super::Role;

/// What a file holds, judged by its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// A WebAssembly component (what natrium loads).
    Component,
    /// A core WebAssembly module: built for `wasm32-wasip1` or `wasm32-unknown-unknown`.
    CoreModule,
    /// A `.cwasm` that wasmtime compiled ahead of time (natrium's cache holds these).
    Precompiled,
    /// Not WebAssembly at all.
    NotWasm,
}

/// The binary preamble: `\0asm`, then a version and a layer (0 = core module, 1 = component).
const MAGIC: &[u8; 4] = b"\0asm";

/// What `bytes` is. Pure: looks at the header (and wasmtime's precompiled marker). Anything
/// with the `\0asm` magic that is not a core module is judged a component, for the compiler
/// to accept or refuse with its own words.
pub fn form(bytes: &[u8]) -> Form {
    if Engine::detect_precompiled(bytes).is_some() {
        return Form::Precompiled;
    }
    match bytes {
        [m0, m1, m2, m3, rest @ ..] if [*m0, *m1, *m2, *m3] == *MAGIC => match rest {
            [_, _, 0, 0, ..] => Form::CoreModule,
            _ => Form::Component,
        },
        _ => Form::NotWasm,
    }
}

impl Form {
    /// Why natrium cannot load a file of this form, and what to do; `None` for a component.
    pub fn problem(self) -> Option<&'static str> {
        match self {
            Form::Component => None,
            Form::CoreModule => Some(
                "is a core WebAssembly module, not a component (built for wasm32-wasip1 or \
                 wasm32-unknown-unknown?): build it for wasm32-wasip2 (`cargo build --target \
                 wasm32-wasip2`), or wrap the module: `wasm-tools component new MODULE.wasm \
                 --adapt wasi_snapshot_preview1.reactor.wasm -o COMPONENT.wasm`",
            ),
            Form::Precompiled => {
                Some("is a precompiled artifact; give the component (.wasm) itself")
            }
            Form::NotWasm => Some("is not a WebAssembly file (no `\\0asm` header)"),
        }
    }
}

/// A natrium world: the export that makes a component one, as the component model names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum World {
    Authorizer,
    Mapper,
    Transformer,
    BatchTransformer,
}

impl World {
    pub const ALL: [World; 4] = [
        World::Authorizer,
        World::Mapper,
        World::Transformer,
        World::BatchTransformer,
    ];

    /// The world's name in `wit/natrium-plugin.wit`.
    pub fn as_str(self) -> &'static str {
        match self {
            World::Authorizer => "authorizer",
            World::Mapper => "mapper",
            World::Transformer => "transformer",
            World::BatchTransformer => "batch-transformer",
        }
    }

    pub fn parse(name: &str) -> Option<World> {
        World::ALL.into_iter().find(|w| w.as_str() == name)
    }

    /// The interface a component of this world exports.
    pub fn export(self) -> &'static str {
        match self {
            World::Authorizer => AUTHORIZATION_EXPORT,
            World::Mapper => MAPPING_EXPORT,
            World::Transformer => TRANSFORMATION_EXPORT,
            World::BatchTransformer => BATCH_TRANSFORMATION_EXPORT,
        }
    }

    /// The binding role that loads a component of this world.
    pub fn role(self) -> Role {
        match self {
            World::Authorizer => Role::Authorizer,
            World::Mapper => Role::Mapper,
            World::Transformer | World::BatchTransformer => Role::Transformer,
        }
    }
}

/// The interface packages the broker's linker provides (see `sandbox::linker`), with the
/// version prefix it accepts: natrium's own WIT, and WASI 0.2 as `wasmtime-wasi` links it
/// (sockets and name lookups are linked but refuse every address).
const GRANTED: &[(&str, &str)] = &[
    ("natrium:plugin", "0.1."),
    ("wasi:cli", "0.2."),
    ("wasi:io", "0.2."),
    ("wasi:clocks", "0.2."),
    ("wasi:random", "0.2."),
    ("wasi:filesystem", "0.2."),
    ("wasi:sockets", "0.2."),
];

/// One import of a component, as the component model names it (`wasi:http/types@0.2.4`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    pub name: String,
    /// Whether natrium's linker provides it.
    pub granted: bool,
}

impl Import {
    pub fn new(name: &str) -> Import {
        let (package, version) = split_name(name);
        let granted = GRANTED
            .iter()
            .any(|(p, v)| *p == package && version.is_some_and(|ver| ver.starts_with(v)));
        Import {
            name: name.to_string(),
            granted,
        }
    }

    /// What to do about an import natrium does not grant.
    pub fn fix(&self) -> String {
        let (package, version) = split_name(&self.name);
        let version = version.unwrap_or("");
        match package {
            "wasi:http" => "natrium links no HTTP; componentize-js: build with the http feature \
                 disabled (`jco componentize --disable http`, or `disableFeatures: [\"http\"]`); \
                 componentize-py: do not import the http module (nor a library that does); \
                 other languages: remove the dependency that makes HTTP requests"
                .to_string(),
            "natrium:plugin" => format!(
                "built against natrium:plugin@{version}, this broker speaks \
                 natrium:plugin@0.1.0: rebuild against this natrium's wit/ (or its SDK)"
            ),
            p if p.starts_with("wasi:") && !version.starts_with("0.2.") => format!(
                "natrium links WASI 0.2 only: build for wasm32-wasip2 (this import is \
                 {p}@{version})"
            ),
            "wasi:logging" => "use natrium:plugin/host's `log` instead".to_string(),
            "wasi:config" => {
                "use natrium:plugin/host's `config` (or export `lifecycle` to check it at load) \
                 instead"
                    .to_string()
            }
            p if p.starts_with("wasi:") => format!(
                "natrium offers no {p}; componentize-js: `--disable` the feature that needs it; \
                 other languages: remove the dependency that imports it"
            ),
            _ => "natrium cannot provide it: remove the dependency that imports it, or compose \
                  an implementation into the component (`wac plug`)"
                .to_string(),
        }
    }
}

/// `wasi:http/types@0.2.4` → (`wasi:http`, `Some("0.2.4")`); a plain name is its own package.
fn split_name(name: &str) -> (&str, Option<&str>) {
    let (path, version) = match name.split_once('@') {
        Some((p, v)) => (p, Some(v)),
        None => (name, None),
    };
    let package = path.split_once('/').map_or(path, |(p, _)| p);
    (package, version)
}

/// What a compiled component offers and needs, and whether the broker's linker takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    /// The natrium worlds whose export it has.
    pub worlds: Vec<World>,
    /// It exports `lifecycle` (configuration checked at load).
    pub lifecycle: bool,
    /// It imports `kv`: only a binding that grants a bucket (`kv: { bucket }`) loads it.
    pub kv: bool,
    /// Every top-level import, in the component's order.
    pub imports: Vec<Import>,
    /// The linker's refusal, if it refuses.
    pub link_error: Option<String>,
}

/// Inspects `component` against natrium's worlds and `linker`.
pub(crate) fn inspect(
    engine: &Engine,
    linker: &Linker<HostState>,
    component: &Component,
) -> Inspection {
    let ty = component.component_type();
    let exported: Vec<String> = ty
        .exports(engine)
        .filter(|(_, item)| matches!(item.ty, ComponentItem::ComponentInstance(_)))
        .map(|(name, _)| name.to_string())
        .collect();
    let has = |want: &str| exported.iter().any(|e| e == want);
    let imports: Vec<Import> = ty
        .imports(engine)
        .map(|(name, _)| Import::new(name))
        .collect();
    Inspection {
        worlds: World::ALL.into_iter().filter(|w| has(w.export())).collect(),
        lifecycle: has(LIFECYCLE_EXPORT),
        kv: imports.iter().any(|i| i.name == KV_IMPORT),
        imports,
        link_error: linker
            .instantiate_pre(component)
            .err()
            .map(|e| format!("{e:#}")),
    }
}

impl Inspection {
    /// Whether a binding of `role` can load it.
    pub fn satisfies(&self, role: Role) -> bool {
        self.worlds.iter().any(|w| w.role() == role)
    }

    /// The imports natrium does not grant.
    pub fn ungranted(&self) -> impl Iterator<Item = &Import> {
        self.imports.iter().filter(|i| !i.granted)
    }

    /// Loadable by a binding of `role` (or of any role when `None`).
    pub fn loadable(&self, role: Option<Role>) -> bool {
        self.link_error.is_none()
            && match role {
                Some(r) => self.satisfies(r),
                None => !self.worlds.is_empty(),
            }
    }

    /// Why a binding of `role` (granting a `kv` bucket or not) cannot load it, every problem
    /// with its fix; `None` if it can.
    pub fn refusal(&self, role: Role, kv_granted: bool) -> Option<String> {
        let mut problems = Vec::new();
        if !self.satisfies(role) {
            let want = match role {
                Role::Authorizer => AUTHORIZATION_EXPORT.to_string(),
                Role::Mapper => MAPPING_EXPORT.to_string(),
                Role::Transformer => {
                    format!("{TRANSFORMATION_EXPORT} (or {BATCH_TRANSFORMATION_EXPORT})")
                }
            };
            let article = if role == Role::Authorizer { "an" } else { "a" };
            let is = if self.worlds.is_empty() {
                "it exports no natrium world".to_string()
            } else {
                let names: Vec<&str> = self.worlds.iter().map(|w| w.as_str()).collect();
                format!("it is {}", names.join(" and "))
            };
            problems.push(format!(
                "is not {article} {role}: missing export {want} ({is})"
            ));
        }
        if self.kv && !kv_granted {
            problems.push(format!(
                "imports {KV_IMPORT} (key-value lookups), which this binding does not grant: \
                 give the binding `kv: {{ bucket: NAME }}` (with its accounts), or build the \
                 plugin without KV lookups"
            ));
        }
        let ungranted: Vec<&Import> = self.ungranted().collect();
        for i in &ungranted {
            problems.push(format!(
                "imports {}, which natrium does not grant: {}",
                i.name,
                i.fix()
            ));
        }
        // The linker's word when the table found nothing to blame (a type mismatch, say).
        if let (Some(e), true) = (&self.link_error, ungranted.is_empty()) {
            problems.push(format!("cannot link: {e}"));
        }
        (!problems.is_empty()).then(|| problems.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_tells_a_component_from_a_core_module() {
        assert_eq!(form(b"\0asm\x0d\0\x01\0rest"), Form::Component);
        assert_eq!(form(b"\0asm\x01\0\0\0"), Form::CoreModule);
        assert_eq!(
            form(b"\0asm junk"),
            Form::Component,
            "the compiler says what is wrong"
        );
        assert_eq!(form(b"\0as"), Form::NotWasm);
        assert_eq!(form(b"#!/bin/sh\n"), Form::NotWasm);
        assert_eq!(form(b""), Form::NotWasm);
        assert!(Form::Component.problem().is_none());
        let advice = Form::CoreModule.problem().unwrap_or_default();
        assert!(advice.contains("wasm32-wasip2"), "{advice}");
        assert!(advice.contains("wasm-tools component new"), "{advice}");
    }

    #[test]
    fn wasi_0_2_and_natrium_0_1_are_granted_nothing_else() {
        for granted in [
            "natrium:plugin/host@0.1.0",
            "wasi:cli/environment@0.2.0",
            "wasi:io/streams@0.2.6",
            "wasi:clocks/wall-clock@0.2.3",
            "wasi:random/random@0.2.0",
            "wasi:filesystem/preopens@0.2.0",
            "wasi:sockets/tcp@0.2.0",
        ] {
            assert!(Import::new(granted).granted, "{granted}");
        }
        for refused in [
            "wasi:http/types@0.2.4",
            "wasi:http/outgoing-handler@0.2.0",
            "wasi:io/streams@0.3.0",
            "wasi:cli/environment",
            "natrium:plugin/host@0.2.0",
            "wasi:keyvalue/store@0.2.0-draft",
            "local:thing/api",
        ] {
            assert!(!Import::new(refused).granted, "{refused}");
        }
    }

    #[test]
    fn each_ungranted_import_comes_with_its_fix() {
        let fix = |name: &str| Import::new(name).fix();
        assert!(fix("wasi:http/types@0.2.4").contains("--disable http"));
        assert!(fix("wasi:http/types@0.2.4").contains("componentize-py"));
        assert!(fix("natrium:plugin/host@0.2.0").contains("natrium:plugin@0.2.0"));
        assert!(fix("wasi:io/streams@0.3.0").contains("WASI 0.2"));
        assert!(fix("wasi:logging/logging@0.1.0-draft").contains("log"));
        assert!(fix("wasi:keyvalue/store@0.2.0-draft").contains("no wasi:keyvalue"));
        assert!(fix("acme:db/query").contains("remove the dependency"));
    }

    fn inspection(worlds: Vec<World>, imports: &[&str], link_error: Option<&str>) -> Inspection {
        Inspection {
            worlds,
            lifecycle: false,
            kv: imports.contains(&KV_IMPORT),
            imports: imports.iter().map(|n| Import::new(n)).collect(),
            link_error: link_error.map(String::from),
        }
    }

    #[test]
    fn kv_needs_the_bindings_grant() {
        let reader = inspection(
            vec![World::Transformer],
            &["natrium:plugin/host@0.1.0", KV_IMPORT],
            None,
        );
        assert!(reader.kv);
        assert_eq!(reader.refusal(Role::Transformer, true), None);
        let why = reader.refusal(Role::Transformer, false).unwrap_or_default();
        assert!(
            why.starts_with(
                "imports natrium:plugin/kv@0.1.0 (key-value lookups), which this binding does \
                 not grant: give the binding `kv: { bucket: NAME }`"
            ),
            "{why}"
        );
        let plain = inspection(vec![World::Transformer], &[], None);
        assert_eq!(
            plain.refusal(Role::Transformer, true),
            None,
            "a grant is not a duty"
        );
    }

    #[test]
    fn a_refusal_names_every_problem() {
        let ok = inspection(
            vec![World::Authorizer],
            &["natrium:plugin/host@0.1.0"],
            None,
        );
        assert_eq!(ok.refusal(Role::Authorizer, false), None);
        assert!(ok.loadable(None) && ok.loadable(Some(Role::Authorizer)));
        assert!(!ok.loadable(Some(Role::Mapper)));
        assert_eq!(
            ok.refusal(Role::Mapper, false).as_deref(),
            Some(
                "is not a mapper: missing export natrium:plugin/mapping@0.1.0 \
                 (it is authorizer)"
            )
        );

        let http = inspection(
            vec![World::Authorizer],
            &["wasi:http/types@0.2.4"],
            Some("component imports instance `wasi:http/types@0.2.4`, but ..."),
        );
        let why = http.refusal(Role::Authorizer, false).unwrap_or_default();
        assert!(
            why.starts_with("imports wasi:http/types@0.2.4, which natrium does not grant:"),
            "{why}"
        );
        assert!(
            !why.contains("cannot link"),
            "the table named the culprit: {why}"
        );
        assert!(!http.loadable(None));

        let batch = inspection(vec![World::BatchTransformer], &[], None);
        assert_eq!(
            batch.refusal(Role::Transformer, false),
            None,
            "either transformer world"
        );

        let mismatch = inspection(vec![World::Mapper], &[], Some("type mismatch"));
        assert_eq!(
            mismatch.refusal(Role::Mapper, false).as_deref(),
            Some("cannot link: type mismatch")
        );
    }
}
