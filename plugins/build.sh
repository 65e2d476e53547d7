#!/usr/bin/env bash
# Builds every example plugin as a WebAssembly component into <repo>/target/plugins/:
#
#   target/plugins/jwt-authorizer.wasm     world authorizer   (Rust, wasm32-wasip2)
#   target/plugins/partition-mapper.wasm   world mapper       (Rust, wasm32-wasip2)
#   target/plugins/pii-redactor.wasm       world transformer  (Rust, wasm32-wasip2)
#   target/plugins/json-validator.wasm     world transformer  (Rust, wasm32-wasip2)
#   target/plugins/json-validator-kv.wasm  the same with schemas from a KV bucket (feature kv)
#   target/plugins/size-gate.wasm          world batch-transformer (Rust, wasm32-wasip2)
#   target/plugins/audit-tagger.wasm       world transformer  (Python, componentize-py)
#
# Installs what is missing (the wasm32-wasip2 Rust target; componentize-py from PyPI, in a venv
# under target/ when it is not on PATH). Re-running is cheap: cargo rebuilds only what changed,
# the Python component is rebuilt only when its sources or the WIT are newer than it, and a
# component is copied only when it differs.
#
# Usage: plugins/build.sh [--no-python]
#   NATRIUM_PLUGIN_OUT=dir   write the components there instead of target/plugins
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
out="${NATRIUM_PLUGIN_OUT:-$root/target/plugins}"
python=1
for arg in "$@"; do
    case "$arg" in
        --no-python) python=0 ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "build.sh: unknown argument $arg" >&2; exit 2 ;;
    esac
done
mkdir -p "$out"

# Copies $1 to $2 unless they are already identical (keeps mtimes stable for callers' caches).
install_if_changed() {
    if ! cmp -s "$1" "$2"; then
        cp "$1" "$2.tmp" && mv "$2.tmp" "$2"
    fi
}

# --- Rust plugins ------------------------------------------------------------------------------
rust_plugins=(jwt-authorizer partition-mapper pii-redactor json-validator size-gate)

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
    echo "build.sh: installing the wasm32-wasip2 target" >&2
    rustup target add wasm32-wasip2
fi

pkgs=()
for p in "${rust_plugins[@]}"; do pkgs+=(-p "$p"); done
cargo build --manifest-path "$here/Cargo.toml" --release --target wasm32-wasip2 "${pkgs[@]}"

target_dir="${CARGO_TARGET_DIR:-$here/target}"
for p in "${rust_plugins[@]}"; do
    install_if_changed "$target_dir/wasm32-wasip2/release/${p//-/_}.wasm" "$out/$p.wasm"
done
# The json-validator that reads schemas from a KV bucket (imports natrium:plugin/kv): the same
# crate with feature `kv`, built after the plain one was copied (same output file name).
cargo build --manifest-path "$here/Cargo.toml" --release --target wasm32-wasip2 \
    -p json-validator --features kv
install_if_changed "$target_dir/wasm32-wasip2/release/json_validator.wasm" "$out/json-validator-kv.wasm"

# --- Python plugin (componentize-py) -----------------------------------------------------------
COMPONENTIZE_PY_VERSION=0.25.1

find_componentize_py() {
    if command -v componentize-py >/dev/null 2>&1; then
        command -v componentize-py
        return
    fi
    local venv="$root/target/componentize-py-venv"
    if [ ! -x "$venv/bin/componentize-py" ]; then
        echo "build.sh: installing componentize-py $COMPONENTIZE_PY_VERSION into $venv" >&2
        if python3 -m venv "$venv" >/dev/null 2>&1; then
            "$venv/bin/python" -m pip install --quiet "componentize-py==$COMPONENTIZE_PY_VERSION" >&2
        else
            # No venv module (e.g. Debian without python3-venv): a user install instead.
            rm -rf "$venv"
            python3 -m pip install --quiet --user "componentize-py==$COMPONENTIZE_PY_VERSION" >&2 ||
                python3 -m pip install --quiet --user --break-system-packages \
                    "componentize-py==$COMPONENTIZE_PY_VERSION" >&2
            command -v componentize-py || echo "$(python3 -m site --user-base)/bin/componentize-py"
            return
        fi
    fi
    echo "$venv/bin/componentize-py"
}

built=("${rust_plugins[@]}" json-validator-kv)
if [ "$python" = 1 ]; then
    src="$here/audit-tagger-py"
    dest="$out/audit-tagger.wasm"
    stale=1
    if [ -f "$dest" ] && [ -z "$(find "$src" "$root/wit" -newer "$dest" \( -name '*.py' -o -name '*.wit' \) -print -quit)" ]; then
        stale=0
    fi
    if [ "$stale" = 1 ]; then
        cpy="$(find_componentize_py)"
        # --stub-wasi: the component imports nothing but natrium:plugin (no WASI at all).
        (cd "$src" && PYTHONDONTWRITEBYTECODE=1 "$cpy" -d "$root/wit" -w transformer \
            componentize app -p . -o "$dest.tmp" --stub-wasi >/dev/null)
        mv "$dest.tmp" "$dest"
    fi
    built+=(audit-tagger)
fi

for p in "${built[@]}"; do
    echo "$out/$p.wasm"
done
