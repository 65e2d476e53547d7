#!/usr/bin/env bash
# Builds {{name}}.wasm (world {{world}}) from src/lib.rs: a WebAssembly component for natrium.
# Installs the wasm32-wasip2 Rust target when it is missing. Honours CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")"
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
    echo "build.sh: installing the wasm32-wasip2 target" >&2
    rustup target add wasm32-wasip2
fi
cargo build --release --target wasm32-wasip2
cp "${CARGO_TARGET_DIR:-target}/wasm32-wasip2/release/{{crate}}.wasm" {{name}}.wasm
echo "$PWD/{{name}}.wasm"
