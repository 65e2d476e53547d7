#!/usr/bin/env bash
# Builds {{name}}.wasm (world {{world}}) from app.py with componentize-py: a WebAssembly
# component for natrium. Uses $COMPONENTIZE_PY, else componentize-py {{componentize_py}} from
# PATH, else installs that version from PyPI into .venv here.
set -euo pipefail
cd "$(dirname "$0")"
version={{componentize_py}}
cpy="${COMPONENTIZE_PY:-}"
if [ -z "$cpy" ] && command -v componentize-py >/dev/null 2>&1 &&
    [ "$(componentize-py --version)" = "componentize-py $version" ]; then
    cpy=componentize-py
fi
if [ -z "$cpy" ]; then
    if [ ! -x .venv/bin/componentize-py ]; then
        echo "build.sh: installing componentize-py $version into .venv" >&2
        python3 -m venv .venv
        .venv/bin/python -m pip install --quiet "componentize-py==$version"
    fi
    cpy=.venv/bin/componentize-py
fi
# --stub-wasi: the component imports nothing but natrium:plugin (no WASI at all).
PYTHONDONTWRITEBYTECODE=1 "$cpy" -d wit -w {{world}} componentize app -p . -o {{name}}.wasm.tmp \
    --stub-wasi >/dev/null
mv {{name}}.wasm.tmp {{name}}.wasm
echo "$PWD/{{name}}.wasm"
