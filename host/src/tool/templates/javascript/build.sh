#!/usr/bin/env bash
# Builds {{name}}.wasm (world {{world}}) from app.js with componentize-js: a WebAssembly
# component for natrium. Installs componentize-js at the versions package-lock.json pins
# (`npm ci`) when node_modules is missing or older than the lockfile.
#
# Every WASI feature of the JavaScript engine is disabled (--disable …): the component imports
# natrium:plugin and nothing else. (The default build imports wasi:http, which natrium does
# not link: `natrium plugin check` says so.) Use the host's `log`, not console.log.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    echo "build.sh: installing componentize-js (npm ci)" >&2
    npm ci --no-audit --no-fund --loglevel=error >&2
fi
./node_modules/.bin/componentize-js app.js --wit wit --world-name {{world}} \
    --disable stdio random clocks http fetch-event -o {{name}}.wasm.tmp >/dev/null
mv {{name}}.wasm.tmp {{name}}.wasm
echo "$PWD/{{name}}.wasm"
