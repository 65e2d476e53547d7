//! A test authorizer that imports a `wasi:http` interface, as a componentize-js build with its
//! default features does: natrium does not link `wasi:http`, so `natrium plugin check` and the
//! broker's load must name the import and say how to drop it (tests/tests/e2e/plugin_tools.rs).

wit_bindgen::generate!({
    inline: r#"
        package test:http-importer;
        world http-authorizer {
            include natrium:plugin/authorizer@0.1.0;
            import wasi:http/client@0.2.0;
        }
    "#,
    path: ["../../../wit", "wit"],
    world: "test:http-importer/http-authorizer",
    generate_all,
});

use exports::natrium::plugin::authorization::{ConnectRequest, Decision, Guest};

struct HttpImporter;

impl Guest for HttpImporter {
    fn authorize(request: ConnectRequest) -> Decision {
        // A call the guest really makes, so the import stays in the component.
        let url = request.user.unwrap_or_default();
        let status = wasi::http::client::handle(&url);
        Decision::Deny(format!("status {status}"))
    }
}

export!(HttpImporter);
