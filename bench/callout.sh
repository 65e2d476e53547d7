#!/usr/bin/env bash
# Connect latency of the same admission decision made three ways, measured with natrium-bench
# against the release build on the same machine in the same run:
#
#   password   a configured user with a plain-text password (baseline)
#   plugin     target/plugins/jwt-authorizer.wasm: the CONNECT's auth_token is an HS256 JWT
#              (fresh per connection), checked in a Wasm authorizer inside the broker
#   callout    the same token and the same checks in an external auth callout service
#              (tests/src/bin/callout-service.rs, an async-nats client): request JWT signed by
#              the server, response and user JWT signed by the issuer key
#   callout-x  the callout with xkey sealing of requests and responses
#
# Each configuration runs RUNS times, alternating, each run on a fresh server (and service) on
# 127.0.0.1; sequential connects (TCP connect -> INFO -> CONNECT -> PING -> PONG); medians.
#
# Usage:  bench/callout.sh
# Environment:
#   RUNS=3  CONNS=2000 (measured, plus 100 warm-up)  BASE_PORT=25720  MAX_BUSY=25  MAX_WAIT=120
#   OUT=bench/callout-results.md   SKIP_BUILD=1 (the binaries and the plugin must exist)
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
RUNS="${RUNS:-3}"
CONNS="${CONNS:-2000}"
BASE_PORT="${BASE_PORT:-25720}"
MAX_BUSY="${MAX_BUSY:-25}"
MAX_WAIT="${MAX_WAIT:-120}"
OUT="${OUT:-$ROOT/bench/callout-results.md}"
SKIP_BUILD="${SKIP_BUILD:-0}"
NATRIUM="$TARGET_DIR/release/natrium"
BENCH="$TARGET_DIR/release/natrium-bench"
SERVICE="$TARGET_DIR/release/callout-service"
JWT="$ROOT/target/plugins/jwt-authorizer.wasm"
CACHE="$ROOT/target/bench-plugin-cache"
SECRET="natrium-bench-hs256-secret-0123456789"
TIMEOUT=90 # hard cap per natrium-bench invocation (seconds)
SCRIPT=callout.sh
die() { echo "callout.sh: ERROR: $*" >&2; exit 1; }
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SERVICE_PID=""
trap 'kill "$SERVICE_PID" 2>/dev/null; cleanup' EXIT

if [[ "$SKIP_BUILD" != 1 ]]; then
  cd "$ROOT" || die "cannot cd to $ROOT"
  cargo build --release -p natrium -p natrium-bench >&2 || die "cargo build failed"
  cargo build --release -p natrium-tests --bin callout-service >&2 || die "cargo build failed"
  [[ -f "$JWT" ]] || plugins/build.sh --no-python >&2 || die "plugins/build.sh failed"
fi
for f in "$NATRIUM" "$BENCH" "$SERVICE"; do [[ -x "$f" ]] || die "$f not built"; done
[[ -f "$JWT" ]] || die "$JWT missing (plugins/build.sh)"
mkdir -p "$CACHE"

LOGDIR="$(mktemp -d /tmp/natrium-callout.XXXXXX)"
read -r ISSUER_SEED ISSUER XKEY_SEED XKEY <<<"$("$SERVICE" keys)"
cat >"$LOGDIR/password.conf" <<EOF2
authorization { user: bench, password: "bench-password" }
EOF2
cat >"$LOGDIR/plugin.conf" <<EOF2
plugin_cache_dir: "$CACHE"
accounts { BENCH: {} }
plugins {
  jwt: {
    path: "$JWT"
    role: authorizer
    config: {
      hs256_secret: "$SECRET"
      tenant_claim: "tenant"
      user_claim: "sub"
      tenants: { bench: { account: "BENCH", publish: { allow: ["bench.>"] },
                          subscribe: { allow: ["bench.>", "_INBOX.>"] } } }
    }
  }
}
EOF2
for x in callout callout-x; do
  xkey=""; [[ $x == callout-x ]] && xkey=", xkey: $XKEY"
  cat >"$LOGDIR/$x.conf" <<EOF2
accounts {
  AUTH { users: [ { user: auth, password: auth-pwd } ] }
  BENCH {}
}
authorization { auth_callout { issuer: $ISSUER, auth_users: [auth], account: AUTH$xkey } }
EOF2
done

C="connect --conns $CONNS --warmup 100"
bench_args() {
  case "$1" in
    password) echo "$C --user bench --pass bench-password" ;;
    *) echo "$C --jwt-secret $SECRET --jwt-tenant bench" ;;
  esac
}

NEXT_PORT="$BASE_PORT"
start_server() { # CONF LOG -> SERVER_PID PORT
  while :; do
    PORT="$NEXT_PORT"; NEXT_PORT=$((NEXT_PORT + 1))
    port_free "$PORT" || continue
    "$NATRIUM" -c "$1" -a 127.0.0.1 -p "$PORT" >"$2" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 600); do
      grep -q 'Server is ready' "$2" && return 0
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    stop_server; tail -n 20 "$2" >&2; return 1
  done
}
start_service() { # ID LOG
  local xkey=()
  [[ $1 == callout-x ]] && xkey=(--xkey-seed "$XKEY_SEED")
  "$SERVICE" --url "127.0.0.1:$PORT" --user auth --pass auth-pwd --issuer-seed "$ISSUER_SEED" \
    --hs256-secret "$SECRET" --tenant bench=BENCH "${xkey[@]}" >"$2" 2>&1 &
  SERVICE_PID=$!
  for _ in $(seq 1 100); do
    grep -q 'answering' "$2" && return 0
    sleep 0.1
  done
  tail -n 5 "$2" >&2; return 1
}

IDS="password plugin callout callout-x"
declare -A VALUES
FAILURES=0
for run in $(seq 1 "$RUNS"); do
  for id in $IDS; do
    wait_quiet
    log="$LOGDIR/$id-$run.log"
    start_server "$LOGDIR/$id.conf" "$log" || die "natrium did not start ($id)"
    if [[ $id == callout* ]]; then
      start_service "$id" "$LOGDIR/$id-$run.service.log" || die "callout-service did not start"
    fi
    # shellcheck disable=SC2046 # deliberate word list
    "$BENCH" $(bench_args "$id") --url "127.0.0.1:$PORT" --timeout "$TIMEOUT" \
      >"$LOGDIR/bench.out" 2>"$LOGDIR/bench.err"
    rc=$?
    [[ -n "$SERVICE_PID" ]] && { kill "$SERVICE_PID" 2>/dev/null; wait "$SERVICE_PID" 2>/dev/null; SERVICE_PID=""; }
    stop_server
    json="$(grep '^{' "$LOGDIR/bench.out" | tail -n 1)"
    if (( rc != 0 )) || [[ -z "$json" ]] || grep -q '"error"' <<<"$json"; then
      FAILURES=$((FAILURES + 1))
      echo "$id run $run FAILED: $(tail -n 1 "$LOGDIR/bench.err") (log $log)" >&2
      continue
    fi
    echo "$id run $run [busy/load $QUIET_NOTE] $(grep -v '^{' "$LOGDIR/bench.out" | head -n 1)" >&2
    for key in connects_per_sec p50_us p99_us handshake_p50_us handshake_p99_us; do
      VALUES["$id|$key"]+="$(json_get "$key" <<<"$json") "
    done
  done
done

# shellcheck disable=SC2086 # the values are a word list
med() { median ${VALUES["$1|$2"]:-}; }
{
  echo "# Connect latency: password vs Wasm authorizer vs auth callout"
  echo
  echo "Generated by \`bench/callout.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs;"
  echo "release build, medians of $RUNS runs of $CONNS sequential connects, fresh server per run."
  echo
  echo "| connect (TCP connect → PONG) | connects/s | p50 µs | p99 µs | CONNECT→PONG p50 µs | CONNECT→PONG p99 µs |"
  echo "|---|---:|---:|---:|---:|---:|"
  for id in $IDS; do
    case $id in
      password) label="configured user, plain-text password" ;;
      plugin) label="HS256 token, Wasm authorizer (\`jwt-authorizer.wasm\`)" ;;
      callout) label="HS256 token, auth callout service (\`callout-service\`)" ;;
      callout-x) label="the same, xkey-sealed request and response" ;;
    esac
    echo "| $label | $(med $id connects_per_sec) | $(med $id p50_us) | $(med $id p99_us) | $(med $id handshake_p50_us) | $(med $id handshake_p99_us) |"
  done
  if (( FAILURES > 0 )); then echo; echo "$FAILURES run(s) failed; logs in $LOGDIR"; fi
} >"$OUT"
cat "$OUT"
(( FAILURES == 0 ))
