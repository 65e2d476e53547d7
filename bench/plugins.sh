#!/usr/bin/env bash
# What Wasm plugins cost: natrium with and without plugins, measured with natrium-bench on the
# same machine in the same run.
#
#   msgs/s, pubsub 1->1, 128-byte messages:
#     none         no plugin                                   (binary payload, seq checked)
#     passthrough  target/test-guests/passthrough.wasm as a transformer on the bench subject
#                  (world `transformer`: the whole messages of a read in one transform-batch call)
#     batchpass    target/test-guests/batch-pass.wasm in pass mode (world `batch-transformer`:
#                  one call per read batch, messages not copied into the guest)
#     none-pii     no plugin, JSON payloads, half of them carrying an e-mail and a card number
#     pii          target/plugins/pii-redactor.wasm on the bench subject, same payloads; every
#                  PII message must arrive redacted, every other one unchanged
#   connects/s and per-connect latency (TCP connect -> INFO -> CONNECT -> PING -> PONG):
#     c-none       no authentication
#     c-password   a configured user with a plain-text password
#     c-jwt        target/plugins/jwt-authorizer.wasm, a fresh HS256 token per connection
#
# Every configuration runs RUNS times, alternating within each group (none, passthrough,
# none-pii, pii, none, ...), each run on a fresh server on 127.0.0.1; medians are reported, with
# ratios against the baseline of the group. After each plugin run the server's /metrics must show
# the plugin was called (at least once; per connection for the authorizer) and never failed.
#
# Usage:  bench/plugins.sh
# Environment:
#   RUNS=3                  runs per configuration
#   GROUPS_="msgs connect"  which groups to run
#   MSGS=2000000            messages per pubsub run
#   CONNS=2000              measured connections per connect run (plus 100 warm-up)
#   MAX_BUSY=25             before each run, wait until the other processes on the machine use
#                           less than this % of all CPUs (sampled over 1 s) ...
#   MAX_WAIT=180            ... but at most this many seconds per run (then run anyway, noted)
#   BASE_PORT=25220         first port tried
#   OUT=bench/plugin-results.md
#   SKIP_BUILD=1            don't run cargo; the binaries, test guests and plugins must exist
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
RUNS="${RUNS:-3}"
GROUPS_="${GROUPS_:-msgs connect}"
MSGS="${MSGS:-2000000}"
CONNS="${CONNS:-2000}"
MAX_BUSY="${MAX_BUSY:-25}"
MAX_WAIT="${MAX_WAIT:-180}"
BASE_PORT="${BASE_PORT:-25220}"
OUT="${OUT:-$ROOT/bench/plugin-results.md}"
SKIP_BUILD="${SKIP_BUILD:-0}"
NATRIUM="$TARGET_DIR/release/natrium"
BENCH="$TARGET_DIR/release/natrium-bench"
PASSTHROUGH="$ROOT/target/test-guests/passthrough.wasm"
BATCHPASS="$ROOT/target/test-guests/batch-pass.wasm"
PII="$ROOT/target/plugins/pii-redactor.wasm"
JWT="$ROOT/target/plugins/jwt-authorizer.wasm"
CACHE="$ROOT/target/bench-plugin-cache"
JWT_SECRET="natrium-bench-hs256-secret-0123456789"
TIMEOUT=90 # hard cap per natrium-bench invocation (seconds)

die() { echo "plugins.sh: ERROR: $*" >&2; exit 1; }
SCRIPT=plugins.sh
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer"

# -------------------------------------------------------------------- build
if [[ "$SKIP_BUILD" != 1 ]]; then
  cd "$ROOT" || die "cannot cd to $ROOT"
  echo "== cargo build --release -p natrium -p natrium-bench" >&2
  cargo build --release -p natrium -p natrium-bench >&2 || die "cargo build failed"
  echo "== tests/guests/build.sh; plugins/build.sh --no-python" >&2
  tests/guests/build.sh >&2 || die "tests/guests/build.sh failed"
  plugins/build.sh --no-python >&2 || die "plugins/build.sh failed"
fi
for f in "$NATRIUM" "$BENCH"; do [[ -x "$f" ]] || die "$f not built"; done
for f in "$PASSTHROUGH" "$BATCHPASS" "$PII" "$JWT"; do
  [[ -f "$f" ]] || die "$f missing (tests/guests/build.sh, plugins/build.sh)"
done
mkdir -p "$CACHE"

LOGDIR="$(mktemp -d /tmp/natrium-plugins.XXXXXX)"

# ------------------------------------------------------------ configurations
write_confs() {
  cat >"$LOGDIR/none.conf" <<EOF
# no plugins
plugin_cache_dir: "$CACHE"
EOF
  cat >"$LOGDIR/passthrough.conf" <<EOF
plugin_cache_dir: "$CACHE"
plugins {
  passthrough: {
    path: "$PASSTHROUGH"
    role: transformer
    subjects: ["bench.pubsub"]
    on_failure: reject   # a failed call loses the message: the run fails, never hides it
  }
}
EOF
  cat >"$LOGDIR/batchpass.conf" <<EOF
plugin_cache_dir: "$CACHE"
plugins {
  batchpass: {
    path: "$BATCHPASS"
    role: transformer
    subjects: ["bench.pubsub"]
    on_failure: reject
    config: { mode: "pass" }
  }
}
EOF
  cat >"$LOGDIR/pii.conf" <<EOF
plugin_cache_dir: "$CACHE"
plugins {
  redact: {
    path: "$PII"
    role: transformer
    subjects: ["bench.pubsub"]
    on_failure: reject
    config: {}
  }
}
EOF
  cat >"$LOGDIR/password.conf" <<EOF
plugin_cache_dir: "$CACHE"
authorization { user: bench, password: "bench-password" }
EOF
  cat >"$LOGDIR/jwt.conf" <<EOF
plugin_cache_dir: "$CACHE"
# OPS: a configured password user, for the password baseline.
accounts {
  BENCH: {}
  OPS: { users: [ { user: ops, password: "ops-password" } ] }
}
plugins {
  jwt: {
    path: "$JWT"
    role: authorizer
    config: {
      hs256_secret: "$JWT_SECRET"
      tenant_claim: "tenant"
      user_claim: "sub"
      tenants: {
        bench: {
          account: "BENCH"
          publish: { allow: ["bench.>"] }
          subscribe: { allow: ["bench.>", "_INBOX.>"] }
        }
      }
    }
  }
}
EOF
}
write_confs

P="pubsub --msgs $MSGS --size 128 --subs 1"
C="connect --conns $CONNS --warmup 100"
# id | group | conf | plugin name in /metrics (or -) | min calls | bench args | metrics
config_def() {
  case "$1" in
    none)        echo "msgs|none|-|0|$P|delivered_msgs_per_sec" ;;
    # Transformers get a read's messages per call (transform-batch / transform-pending): far
    # fewer calls than messages, but at least one.
    passthrough) echo "msgs|passthrough|passthrough|1|$P|delivered_msgs_per_sec" ;;
    batchpass)   echo "msgs|batchpass|batchpass|1|$P|delivered_msgs_per_sec" ;;
    none-pii)    echo "msgs|none|-|0|$P --payload pii|delivered_msgs_per_sec" ;;
    pii)         echo "msgs|pii|redact|1|$P --payload pii --expect-redacted yes|delivered_msgs_per_sec" ;;
    c-none)      echo "connect|none|-|0|$C|connects_per_sec p50_us p99_us handshake_p50_us handshake_p99_us" ;;
    c-password)  echo "connect|password|-|0|$C --user bench --pass bench-password|connects_per_sec p50_us p99_us handshake_p50_us handshake_p99_us" ;;
    c-jwt)       echo "connect|jwt|jwt|$((CONNS + 100))|$C --jwt-secret $JWT_SECRET --jwt-tenant bench|connects_per_sec p50_us p99_us handshake_p50_us handshake_p99_us" ;;
    *) return 1 ;;
  esac
}
group_ids() {
  case "$1" in
    msgs) echo "none passthrough batchpass none-pii pii" ;;
    connect) echo "c-none c-password c-jwt" ;;
    *) return 1 ;;
  esac
}
for g in $GROUPS_; do group_ids "$g" >/dev/null || die "unknown group '$g'"; done

# ------------------------------------------------------------ server control
NEXT_PORT="$BASE_PORT"


# start_server CONF LOG -> SERVER_PID, PORT, MPORT
start_server() {
  local conf="$1" log="$2" tries=0
  while :; do
    PORT="$NEXT_PORT"; MPORT=$((PORT + 1000))
    NEXT_PORT=$(( NEXT_PORT >= BASE_PORT + 500 ? BASE_PORT : NEXT_PORT + 1 ))
    if ! port_free "$PORT" || ! port_free "$MPORT"; then
      (( ++tries < 50 )) || die "no free port found near $BASE_PORT"
      continue
    fi
    "$NATRIUM" -c "$conf" -a 127.0.0.1 -p "$PORT" -m "$MPORT" >"$log" 2>&1 &
    SERVER_PID=$!
    # Ready = the "Server is ready" log line (a probe without credentials would be refused by
    # the authorizing configurations). The first start compiles the components (then cached in
    # $CACHE): allow up to 60 s.
    for _ in $(seq 1 600); do
      if grep -q 'Server is ready' "$log"; then return 0; fi
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    stop_server
    if grep -qi 'in use' "$log" && (( ++tries < 50 )); then continue; fi
    echo "plugins.sh: ERROR: natrium -c $conf did not start. Last log lines:" >&2
    tail -n 20 "$log" >&2
    return 1
  done
}

# plugin_metric NAME METRIC-PREFIX -> sum of the samples for that plugin
plugin_metric() {
  curl -s --max-time 5 "http://127.0.0.1:$MPORT/metrics" |
    awk -v p="$2{" -v n="plugin=\"$1\"" 'index($0, p) == 1 && index($0, n) { s += $NF } END { print s + 0 }'
}

# --------------------------------------------------------------------- run
declare -A VALUES   # "id|key" -> space-separated values
declare -A NOTES    # "id" -> space-separated "busy% load1" per run
FAILURES=0
T0=$SECONDS
echo "== machine: $(nproc) CPUs; load before start: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

for g in $GROUPS_; do
  for run in $(seq 1 "$RUNS"); do
    for id in $(group_ids "$g"); do
      IFS="|" read -r _ conf pname mincalls args metrics <<<"$(config_def "$id")"
      log="$LOGDIR/$id-$run.log"
      # A quiet machine first, then a fresh server.
      wait_quiet
      start_server "$LOGDIR/$conf.conf" "$log" || die "natrium failed to start ($id)"
      # shellcheck disable=SC2086 # $args is a deliberate word list
      "$BENCH" $args --url "127.0.0.1:$PORT" --timeout "$TIMEOUT" \
        >"$LOGDIR/bench.out" 2>"$LOGDIR/bench.err" &
      BENCH_PID=$!
      wait "$BENCH_PID"; rc=$?; BENCH_PID=""
      out="$(cat "$LOGDIR/bench.out")"
      problem=""
      if [[ "$pname" != - ]]; then
        calls="$(plugin_metric "$pname" natrium_plugin_calls_total)"
        errors="$(plugin_metric "$pname" natrium_plugin_errors_total)"
        (( calls >= mincalls )) || problem="plugin '$pname' called $calls times, expected >= $mincalls"
        (( errors == 0 )) || problem="plugin '$pname' failed $errors times"
      fi
      alive=1; kill -0 "$SERVER_PID" 2>/dev/null || alive=0
      stop_server
      human="$(grep -v '^{' <<<"$out" | head -n 1)"
      json="$(grep '^{' <<<"$out" | tail -n 1)"
      if (( rc != 0 )) || [[ -z "$json" ]] || grep -q '"error"' <<<"$json" || [[ -n "$problem" ]]; then
        FAILURES=$((FAILURES + 1))
        msg="${problem:-$(tail -n 1 "$LOGDIR/bench.err")}"
        (( alive )) || msg="server died during the run; $msg"
        printf '%-12s run %d FAILED: %s (log %s)\n' "$id" "$run" "$msg" "$log" >&2
        continue
      fi
      printf '%-12s run %d [busy/load %s] %s\n' "$id" "$run" "$QUIET_NOTE" "$human" >&2
      NOTES["$id"]+="${QUIET_NOTE// /\/}, "
      for key in $metrics; do
        v="$(json_get "$key" <<<"$json")"
        [[ -n "$v" ]] && VALUES["$id|$key"]+="$v "
      done
    done
  done
done

# ------------------------------------------------------------------- table
med() { # med ID KEY
  # shellcheck disable=SC2086
  median ${VALUES["$1|$2"]:-}
}
ratio() { # ratio A B
  if [[ -n "$1" && -n "$2" ]] && awk -v b="$2" 'BEGIN { exit !(b != 0) }'; then
    awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'
  else
    echo "n/a"
  fi
}
num0() { [[ -z "$1" ]] && { echo FAIL; return; }; awk -v v="$1" 'BEGIN { printf "%.0f", v }'; }
num1() { [[ -z "$1" ]] && { echo FAIL; return; }; awk -v v="$1" 'BEGIN { printf "%.1f", v }'; }
cost() { [[ "$1" == n/a ]] && { echo n/a; return; }; awk -v r="$1" 'BEGIN { printf "%.0f%%", (1 - r) * 100 }'; }

{
  if [[ " $GROUPS_ " == *" msgs "* ]]; then
    echo "| pubsub 1→1, 128 B, delivered msgs/s | median | vs its baseline | throughput cost |"
    echo "|---|---:|---:|---:|"
    b="$(med none delivered_msgs_per_sec)"
    echo "| no plugin (binary payload) | $(num0 "$b") | 1.00 (baseline) | — |"
    v="$(med passthrough delivered_msgs_per_sec)"; r="$(ratio "$v" "$b")"
    echo "| pass-through transformer, per message (\`passthrough.wasm\`) | $(num0 "$v") | $r | $(cost "$r") |"
    v="$(med batchpass delivered_msgs_per_sec)"; r="$(ratio "$v" "$b")"
    echo "| pass-through batch transformer (\`batch-pass.wasm\`) | $(num0 "$v") | $r | $(cost "$r") |"
    b="$(med none-pii delivered_msgs_per_sec)"
    echo "| no plugin (JSON payload, PII in every 2nd message) | $(num0 "$b") | 1.00 (baseline) | — |"
    v="$(med pii delivered_msgs_per_sec)"; r="$(ratio "$v" "$b")"
    echo "| PII redactor (\`pii-redactor.wasm\`), same payload | $(num0 "$v") | $r | $(cost "$r") |"
    echo
  fi
  if [[ " $GROUPS_ " == *" connect "* ]]; then
    echo "| connect (sequential, TCP connect → PONG) | connects/s | p50 µs | p99 µs | CONNECT→PONG p50 µs | CONNECT→PONG p99 µs | connects/s vs no auth |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    base="$(med c-none connects_per_sec)"
    for id in c-none c-password c-jwt; do
      case $id in
        c-none) label="no authentication" ;;
        c-password) label="configured user, plain-text password" ;;
        c-jwt) label="JWT authorizer plugin (\`jwt-authorizer.wasm\`, HS256)" ;;
      esac
      cps="$(med $id connects_per_sec)"
      echo "| $label | $(num0 "$cps") | $(num1 "$(med $id p50_us)") | $(num1 "$(med $id p99_us)") | $(num1 "$(med $id handshake_p50_us)") | $(num1 "$(med $id handshake_p99_us)") | $(ratio "$cps" "$base") |"
    done
    echo
  fi
} >"$LOGDIR/table.md"

elapsed=$((SECONDS - T0))
{
  echo "# What plugins cost"
  echo
  echo "Generated by \`bench/plugins.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, $(uname -sr)."
  echo "natrium = \`$NATRIUM\` (release build). Median of $RUNS run(s) per configuration, alternating"
  echo "configurations within each group; every run on a fresh server process on 127.0.0.1, the"
  echo "load generator (\`natrium-bench\`) on the same cores. Publishers are paced with an 8 MiB window"
  echo "(see bench/src/publisher.rs)."
  echo
  cat "$LOGDIR/table.md"
  if (( FAILURES > 0 )); then
    echo "**$FAILURES run(s) failed** (see the script's output); medians are over the runs that passed."
    echo
  fi
  echo "Verification: every message must arrive, in order (binary payload: sequence number in bytes"
  echo "0..8; JSON payload: sequence number in a \`\"seq\":\"q<hex>\"\` field the redactor never touches)."
  echo "With the redactor every odd message must arrive redacted (no e-mail address, both markers,"
  echo "a \`Natrium-Redacted\` header) and every even one byte-for-byte unchanged; without it every"
  echo "message unchanged. After each plugin run \`/metrics\` must show that the plugin was called (at"
  echo "least once per connection for the authorizer, warm-up included; transformers get a read's"
  echo "worth of messages per call) and never failed."
  echo "Connect runs: $CONNS measured connections after 100 warm-up ones, strictly sequential,"
  echo "each INFO → CONNECT → PING → PONG → close; the JWT run mints a new token per connection."
  echo
  echo "Machine before each run (other work's CPU use over 1 s / 1-minute load average; the"
  echo "script waits up to ${MAX_WAIT}s for less than ${MAX_BUSY}% busy, \"(busy)\" = it did not get there):"
  echo
  for g in $GROUPS_; do
    for id in $(group_ids "$g"); do
      notes="${NOTES["$id"]:-}"
      echo "- $id: ${notes%, }"
    done
  done
  echo
  echo "Raw values per run:"
  echo
  for g in $GROUPS_; do
    for id in $(group_ids "$g"); do
      IFS="|" read -r _ _ _ _ args metrics <<<"$(config_def "$id")"
      for key in $metrics; do
        v="${VALUES["$id|$key"]:-}"
        echo "- $id $key: [${v% }]"
      done
      echo "  (\`natrium-bench $args\`)"
    done
  done
  echo
  echo "Total time: ${elapsed}s."
} >"$OUT"

echo
cat "$LOGDIR/table.md"
echo "(written to $OUT; server logs in $LOGDIR)"
if (( FAILURES > 0 )); then
  echo "plugins.sh: $FAILURES run(s) failed" >&2
  exit 1
fi
