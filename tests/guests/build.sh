#!/usr/bin/env bash
# Builds the plugin host's test guests (hostile and well-behaved WebAssembly components) into
# <repo>/target/test-guests/<name>.wasm, where host/src/plugin/tests.rs looks for them.
# Idempotent: cargo rebuilds only what changed. Needs the wasm32-wasip2 target (installed
# here when missing).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$root/target/test-guests"
mkdir -p "$out"
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
    rustup target add wasm32-wasip2
fi
guests=(passthrough batch-pass looper membomb trapper wrong-world authz http-importer)
for g in "${guests[@]}"; do
    crate="${g//-/_}"
    cargo build --quiet --release --target wasm32-wasip2 \
        --manifest-path "$here/$g/Cargo.toml" --target-dir "$out/build"
    cp -f "$out/build/wasm32-wasip2/release/$crate.wasm" "$out/$g.wasm.tmp"
    mv -f "$out/$g.wasm.tmp" "$out/$g.wasm"
done
echo "test guests built into $out: ${guests[*]}"
