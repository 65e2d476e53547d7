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
#   target/plugins/json-shaper.wasm        world transformer  (JavaScript, componentize-js)
#
# Installs what is missing (the wasm32-wasip2 Rust target; componentize-py from PyPI, in a venv
# under target/ when it is not on PATH; componentize-js from npm with `npm ci`, at the versions
# json-shaper-js/package-lock.json pins). Re-running is cheap: cargo rebuilds only what changed,
# the Python and JavaScript components are rebuilt only when their sources, lockfile or the WIT
# are newer than them, and a component is copied only when it differs.
#
# Usage: plugins/build.sh [--no-python] [--no-js]
#   NATRIUM_PLUGIN_OUT=dir   write the components there instead of target/plugins
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
out="${NATRIUM_PLUGIN_OUT:-$root/target/plugins}"
python=1
js=1
for arg in "$@"; do
    case "$arg" in
        --no-python) python=0 ;;
        --no-js) js=0 ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
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

# True when $1 is missing or a file under the other arguments (directories; node_modules and
# __pycache__ left out) matching the pattern in $pattern is newer than it.
stale() {
    local dest="$1"
    shift
    [ ! -f "$dest" ] && return 0
    [ -n "$(find "$@" \( -name node_modules -o -name __pycache__ \) -prune -o \
        -newer "$dest" \( "${pattern[@]}" \) -print -quit)" ]
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
    pattern=(-name '*.py' -o -name '*.wit')
    if stale "$dest" "$src" "$root/wit"; then
        cpy="$(find_componentize_py)"
        # --stub-wasi: the component imports nothing but natrium:plugin (no WASI at all).
        (cd "$src" && PYTHONDONTWRITEBYTECODE=1 "$cpy" -d "$root/wit" -w transformer \
            componentize app -p . -o "$dest.tmp" --stub-wasi >/dev/null)
        mv "$dest.tmp" "$dest"
    fi
    built+=(audit-tagger)
fi

# --- JavaScript plugin (componentize-js) -------------------------------------------------------
# componentize-js (and the jco and wizer it runs) at the exact versions package-lock.json pins,
# installed by `npm ci` into json-shaper-js/node_modules. package.json also names
# @bytecodealliance/preview2-shim 0.17.9, which componentize-js 0.23 imports without declaring
# it: left to npm, the copy it finds is 0.26, which gives it no file system ("reading file
# …/wit: No such file or directory", whatever the path). Every WASI feature of its JavaScript
# engine is disabled: the component imports natrium:plugin/host and nothing else (the default
# build would import wasi:http, which natrium does not link).
if [ "$js" = 1 ]; then
    src="$here/json-shaper-js"
    dest="$out/json-shaper.wasm"
    pattern=(-name '*.js' -o -name 'package-lock.json' -o -name '*.wit')
    if stale "$dest" "$src" "$root/wit"; then
        if ! command -v npm >/dev/null 2>&1; then
            echo "build.sh: npm not found: install Node.js 20+ (or pass --no-js)" >&2
            exit 1
        fi
        if [ ! -f "$src/node_modules/.package-lock.json" ] ||
            [ "$src/package-lock.json" -nt "$src/node_modules/.package-lock.json" ]; then
            echo "build.sh: installing componentize-js (npm ci in $src)" >&2
            npm ci --prefix "$src" --no-audit --no-fund --loglevel=error >&2
        fi
        (cd "$src" && ./node_modules/.bin/componentize-js app.js --wit "$root/wit" \
            --world-name transformer --disable stdio random clocks http fetch-event \
            -o "$dest.tmp" >/dev/null)
        mv "$dest.tmp" "$dest"
    fi
    built+=(json-shaper)
fi

for p in "${built[@]}"; do
    echo "$out/$p.wasm"
done
