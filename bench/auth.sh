#!/usr/bin/env bash
# What authentication and permissions cost: connects/s with no auth, a password user, an NKey
# user and an operator-mode (JWT) user, on natrium and on nats-server; and pubsub 1->1 throughput
# for a user without permissions vs a user with a 100-rule publish permission set, on natrium.
#
#   connect (sequential, each TCP connect -> INFO -> CONNECT -> PING -> PONG -> close):
#     none       no authentication
#     password   a configured user with a plain-text password
#     nkey       an NKey user: CONNECT carries nkey + the INFO nonce signed with the user's seed
#     jwt        operator mode (operator JWT, resolver: MEMORY with resolver_preload): CONNECT
#                carries the user JWT (from a .creds file) + the signed nonce
#   msgs/s, pubsub 1->1, 128-byte messages, publisher and subscriber logged in as:
#     open       a user without permissions
#     limited    a user with 100 publish allow rules (99 never match; the subject published on,
#                bench.pubsub, is the last) and 4 deny rules; subscribe unrestricted. The publisher
#                publishes on one subject, so after the first message every check is a cache hit.
#
# Keys, JWTs and configs are made fresh on every run of this script by
# `natrium-bench gen-operator DIR` (bench/src/genauth.rs); the same config files are given to
# natrium and to nats-server. Every configuration runs RUNS times, alternating within each group,
# each run on a fresh server on 127.0.0.1; medians are reported with ratios against the group's
# baseline. Before measuring, the script checks that every auth configuration refuses a client
# without credentials and that user `limited` gets a Permissions Violation outside its rules.
#
# Usage:  bench/auth.sh
# Environment:
#   RUNS=3                  runs per connect configuration
#   PERM_RUNS=7             runs per permission configuration (throughput is noisier)
#   GROUPS_="connect perms" which groups to run
#   MSGS=5000000            messages per pubsub run
#   CONNS=2000              measured connections per connect run (plus 100 warm-up)
#   NATS_BIN=/usr/sbin/nats-server   reference server for the connect group ("" to skip)
#   MAX_BUSY=25             before each run, wait until the other processes on the machine use
#                           less than this % of all CPUs (sampled over 1 s) ...
#   MAX_WAIT=60             ... but at most this many seconds per run (then run anyway, noted)
#   BASE_PORT=26220         first port tried
#   OUT=bench/auth-results.md
#   SKIP_BUILD=1            don't run cargo; the release binaries must exist
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
RUNS="${RUNS:-3}"
PERM_RUNS="${PERM_RUNS:-7}"
GROUPS_="${GROUPS_:-connect perms}"
MSGS="${MSGS:-5000000}"
CONNS="${CONNS:-2000}"
NATS_BIN="${NATS_BIN-/usr/sbin/nats-server}"
MAX_BUSY="${MAX_BUSY:-25}"
MAX_WAIT="${MAX_WAIT:-60}"
BASE_PORT="${BASE_PORT:-26220}"
OUT="${OUT:-$ROOT/bench/auth-results.md}"
SKIP_BUILD="${SKIP_BUILD:-0}"
NATRIUM="$TARGET_DIR/release/natrium"
BENCH="$TARGET_DIR/release/natrium-bench"
TIMEOUT=90 # hard cap per natrium-bench invocation (seconds)

die() { echo "auth.sh: ERROR: $*" >&2; exit 1; }
SCRIPT=auth.sh
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer"
[[ "$PERM_RUNS" =~ ^[1-9][0-9]*$ ]] || die "PERM_RUNS must be a positive integer"

# -------------------------------------------------------------------- build
if [[ "$SKIP_BUILD" != 1 ]]; then
  cd "$ROOT" || die "cannot cd to $ROOT"
  echo "== cargo build --release -p natrium -p natrium-bench" >&2
  cargo build --release -p natrium -p natrium-bench >&2 || die "cargo build failed"
fi
for f in "$NATRIUM" "$BENCH"; do [[ -x "$f" ]] || die "$f not built"; done
HAVE_NATS=0
if [[ -n "$NATS_BIN" ]]; then
  if [[ -x "$NATS_BIN" ]]; then HAVE_NATS=1; else echo "auth.sh: warning: $NATS_BIN not found; natrium only" >&2; fi
fi

LOGDIR="$(mktemp -d /tmp/natrium-auth.XXXXXX)"
KEYS="$LOGDIR/keys"
"$BENCH" gen-operator "$KEYS" >&2 || die "natrium-bench gen-operator failed"
NKEY_SEED="$(cat "$KEYS/nkey-user.seed")"

# ------------------------------------------------------------ configurations
C="connect --conns $CONNS --warmup 100"
P="pubsub --msgs $MSGS --size 128 --subs 1"
CM="connects_per_sec p50_us p99_us handshake_p50_us handshake_p99_us"
# id | group | server (natrium|nats) | conf | bench args | metrics
config_def() {
  case "$1" in
    c-none)     echo "connect|natrium|none|$C|$CM" ;;
    c-password) echo "connect|natrium|password|$C --user bench --pass bench-password|$CM" ;;
    c-nkey)     echo "connect|natrium|nkey|$C --nkey-seed $NKEY_SEED|$CM" ;;
    c-jwt)      echo "connect|natrium|jwt|$C --creds $KEYS/jwt-user.creds|$CM" ;;
    n-none)     echo "connect|nats|none|$C|$CM" ;;
    n-password) echo "connect|nats|password|$C --user bench --pass bench-password|$CM" ;;
    n-nkey)     echo "connect|nats|nkey|$C --nkey-seed $NKEY_SEED|$CM" ;;
    n-jwt)      echo "connect|nats|jwt|$C --creds $KEYS/jwt-user.creds|$CM" ;;
    p-open)     echo "perms|natrium|perms|$P --user open --pass open-pass|delivered_msgs_per_sec msgs_per_sec" ;;
    p-limited)  echo "perms|natrium|perms|$P --user limited --pass limited-pass|delivered_msgs_per_sec msgs_per_sec" ;;
    *) return 1 ;;
  esac
}
group_ids() {
  case "$1" in
    connect)
      if (( HAVE_NATS )); then echo "c-none n-none c-password n-password c-nkey n-nkey c-jwt n-jwt"
      else echo "c-none c-password c-nkey c-jwt"; fi ;;
    perms) echo "p-open p-limited" ;;
    *) return 1 ;;
  esac
}
group_runs() { if [[ "$1" == perms ]]; then echo "$PERM_RUNS"; else echo "$RUNS"; fi; }
for g in $GROUPS_; do group_ids "$g" >/dev/null || die "unknown group '$g'"; done

# ------------------------------------------------------------ server control
NEXT_PORT="$BASE_PORT"


# start_server natrium|nats CONF LOG -> SERVER_PID, PORT
start_server() {
  local which="$1" conf="$2" log="$3" tries=0 bin
  if [[ "$which" == nats ]]; then bin="$NATS_BIN"; else bin="$NATRIUM"; fi
  while :; do
    PORT="$NEXT_PORT"
    NEXT_PORT=$(( NEXT_PORT >= BASE_PORT + 500 ? BASE_PORT : NEXT_PORT + 1 ))
    if ! port_free "$PORT"; then
      (( ++tries < 50 )) || die "no free port found near $BASE_PORT"
      continue
    fi
    "$bin" -c "$conf" -a 127.0.0.1 -p "$PORT" >"$log" 2>&1 &
    SERVER_PID=$!
    # Ready = the "Server is ready" log line (both servers print it; a probe without
    # credentials would be refused by the authenticating configurations).
    for _ in $(seq 1 300); do
      if grep -q 'Server is ready' "$log"; then return 0; fi
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    stop_server
    if grep -qi 'in use' "$log" && (( ++tries < 50 )); then continue; fi
    echo "auth.sh: ERROR: $bin -c $conf did not start. Last log lines:" >&2
    tail -n 20 "$log" >&2
    return 1
  done
}


# raw_exchange PORT LINES -> what the server sent within 1 s (bounded), for the sanity checks.
raw_exchange() {
  local port="$1" lines="$2" out=""
  exec 5<>"/dev/tcp/127.0.0.1/$port" || return 1
  IFS= read -r -t 2 _info <&5
  printf '%b' "$lines" >&5
  local line
  for _ in $(seq 1 20); do
    IFS= read -r -t 1 line <&5 || break
    out+="${line%$'\r'}"$'\n'
  done
  exec 5<&- 5>&-
  printf '%s' "$out"
}

# ---------------------------------------------------------- sanity checks
# Every auth configuration must refuse a client without credentials, and user `limited` must be
# refused outside its publish rules (and allowed on bench.pubsub).
SANITY=()
sanity() {
  local which servers="natrium"
  (( HAVE_NATS )) && servers="natrium nats"
  for which in $servers; do
    for conf in password nkey jwt; do
      start_server "$which" "$KEYS/$conf.conf" "$LOGDIR/sanity-$which-$conf.log" || die "$which failed to start with $conf.conf"
      if "$BENCH" connect --conns 1 --warmup 0 --url "127.0.0.1:$PORT" --timeout 10 >/dev/null 2>"$LOGDIR/sanity.err"; then
        stop_server; die "$which with $conf.conf accepted a client without credentials"
      fi
      SANITY+=("$which $conf.conf: no credentials -> $(grep -o "Authorization Violation" "$LOGDIR/sanity.err" | head -n 1 || true)")
      stop_server
    done
  done
  start_server natrium "$KEYS/perms.conf" "$LOGDIR/sanity-perms.log" || die "natrium failed to start with perms.conf"
  local got
  got="$(raw_exchange "$PORT" 'CONNECT {"verbose":false,"user":"limited","pass":"limited-pass"}\r\nPUB bench.private.x 2\r\nhi\r\nPUB bench.pubsub 2\r\nhi\r\nPUB nope 2\r\nhi\r\nPING\r\n')"
  stop_server
  local want1="-ERR 'Permissions Violation for Publish to \"bench.private.x\"'"
  local want2="-ERR 'Permissions Violation for Publish to \"nope\"'"
  if ! grep -qF -e "$want1" <<<"$got" || ! grep -qF -e "$want2" <<<"$got" || ! grep -q '^PONG' <<<"$got" ||
     grep -qF '"bench.pubsub"' <<<"$got"; then
    die "user limited: unexpected answers to denied/allowed publishes: $(tr '\n' '|' <<<"$got")"
  fi
  SANITY+=("natrium perms.conf: limited publishing to bench.private.x (deny) and nope (no allow) -> Permissions Violation, to bench.pubsub -> accepted, connection stays up (PONG)")
}

# --------------------------------------------------------------------- run
declare -A VALUES   # "id|key" -> space-separated values
declare -A NOTES    # "id" -> "busy% load1" per run
FAILURES=0
T0=$SECONDS
echo "== machine: $(nproc) CPUs; load before start: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
sanity
for s in "${SANITY[@]}"; do echo "sanity: $s" >&2; done

for g in $GROUPS_; do
  for run in $(seq 1 "$(group_runs "$g")"); do
    for id in $(group_ids "$g"); do
      IFS="|" read -r _ which conf args metrics <<<"$(config_def "$id")"
      log="$LOGDIR/$id-$run.log"
      wait_quiet
      start_server "$which" "$KEYS/$conf.conf" "$log" || die "$which failed to start ($id)"
      # shellcheck disable=SC2086 # $args is a deliberate word list
      "$BENCH" $args --url "127.0.0.1:$PORT" --timeout "$TIMEOUT" \
        >"$LOGDIR/bench.out" 2>"$LOGDIR/bench.err" &
      BENCH_PID=$!
      wait "$BENCH_PID"; rc=$?; BENCH_PID=""
      out="$(cat "$LOGDIR/bench.out")"
      alive=1; kill -0 "$SERVER_PID" 2>/dev/null || alive=0
      stop_server
      human="$(grep -v '^{' <<<"$out" | head -n 1)"
      json="$(grep '^{' <<<"$out" | tail -n 1)"
      if (( rc != 0 )) || [[ -z "$json" ]] || grep -q '"error"' <<<"$json"; then
        FAILURES=$((FAILURES + 1))
        msg="$(tail -n 1 "$LOGDIR/bench.err")"
        (( alive )) || msg="server died during the run; $msg"
        printf '%-11s run %d FAILED: %s (log %s)\n' "$id" "$run" "$msg" "$log" >&2
        continue
      fi
      printf '%-11s run %d [busy/load %s] %s\n' "$id" "$run" "$QUIET_NOTE" "$human" >&2
      NOTES["$id"]+="${QUIET_NOTE// /\/}, "
      for key in $metrics; do
        v="$(json_get "$key" <<<"$json")"
        [[ -n "$v" ]] && VALUES["$id|$key"]+="$v "
      done
    done
  done
done

# ------------------------------------------------------------------- table
med() { # shellcheck disable=SC2086
  median ${VALUES["$1|$2"]:-}; }
ratio() {
  if [[ -n "$1" && -n "$2" ]] && awk -v b="$2" 'BEGIN { exit !(b != 0) }'; then
    awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'
  else
    echo "n/a"
  fi
}
num0() { [[ -z "$1" ]] && { echo FAIL; return; }; awk -v v="$1" 'BEGIN { printf "%.0f", v }'; }
num1() { [[ -z "$1" ]] && { echo FAIL; return; }; awk -v v="$1" 'BEGIN { printf "%.1f", v }'; }
label() {
  case "$1" in
    none) echo "no authentication" ;;
    password) echo "password user (plain text)" ;;
    nkey) echo "NKey user (signed nonce)" ;;
    jwt) echo "operator mode, user JWT from a .creds file (signed nonce)" ;;
  esac
}

{
  if [[ " $GROUPS_ " == *" connect "* ]]; then
    echo "| connect (sequential, TCP connect → PONG) | natrium connects/s | p50 µs | p99 µs | CONNECT→PONG p50 µs | CONNECT→PONG p99 µs | vs no auth |$( (( HAVE_NATS )) && echo " nats-server connects/s | p50 µs | p99 µs | vs no auth | natrium/nats-server connects/s |")"
    echo "|---|---:|---:|---:|---:|---:|---:|$( (( HAVE_NATS )) && echo "---:|---:|---:|---:|---:|")"
    base="$(med c-none connects_per_sec)"; nbase="$(med n-none connects_per_sec)"
    for k in none password nkey jwt; do
      cps="$(med c-$k connects_per_sec)"
      row="| $(label $k) | $(num0 "$cps") | $(num1 "$(med c-$k p50_us)") | $(num1 "$(med c-$k p99_us)") | $(num1 "$(med c-$k handshake_p50_us)") | $(num1 "$(med c-$k handshake_p99_us)") | $(ratio "$cps" "$base") |"
      if (( HAVE_NATS )); then
        ncps="$(med n-$k connects_per_sec)"
        row+=" $(num0 "$ncps") | $(num1 "$(med n-$k p50_us)") | $(num1 "$(med n-$k p99_us)") | $(ratio "$ncps" "$nbase") | $(ratio "$cps" "$ncps") |"
      fi
      echo "$row"
    done
    echo
  fi
  if [[ " $GROUPS_ " == *" perms "* ]]; then
    echo "| pubsub 1→1, 128 B, natrium | delivered msgs/s (median) | publisher msgs/s (median) | vs no permissions |"
    echo "|---|---:|---:|---:|"
    b="$(med p-open delivered_msgs_per_sec)"
    echo "| user without permissions | $(num0 "$b") | $(num0 "$(med p-open msgs_per_sec)") | 1.00 (baseline) |"
    v="$(med p-limited delivered_msgs_per_sec)"
    echo "| user with 100 publish allow rules (match is the last) + 4 deny rules | $(num0 "$v") | $(num0 "$(med p-limited msgs_per_sec)") | $(ratio "$v" "$b") |"
    echo
  fi
} >"$LOGDIR/table.md"

elapsed=$((SECONDS - T0))
{
  echo "# What authentication and permissions cost"
  echo
  echo "Generated by \`bench/auth.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, $(uname -sr)."
  echo "natrium = \`$NATRIUM\` (release build)$( (( HAVE_NATS )) && echo "; nats-server = \`$NATS_BIN\` ($("$NATS_BIN" --version 2>/dev/null | head -n 1))")."
  echo "Medians of $RUNS run(s) per connect configuration and $PERM_RUNS per permission configuration,"
  echo "alternating configurations (and servers) within each group; every run on a fresh server"
  echo "process on 127.0.0.1 with the same config file for both servers, the load generator"
  echo "(\`natrium-bench\`) on the same cores. Load average when the script started: $LOAD_START."
  echo
  cat "$LOGDIR/table.md"
  if (( FAILURES > 0 )); then
    echo "**$FAILURES run(s) failed** (see the script's output); medians are over the runs that passed."
    echo
  fi
  echo "Connect runs: $CONNS measured connections after 100 warm-up ones, strictly sequential, each"
  echo "TCP connect → INFO → CONNECT (+ PING) → PONG → close; connects/s is wall time over the"
  echo "measured connections. NKey and JWT clients sign the nonce of each INFO (ed25519, inside the"
  echo "measured time); the JWT client sends the same user JWT every time, as a \`.creds\` client does."
  echo "Keys, JWTs and configs were made by \`natrium-bench gen-operator\` for this run."
  echo "Pubsub runs: $MSGS messages of 128 B on \`bench.pubsub\`, publisher paced by an 8 MiB window,"
  echo "every message verified to arrive in order; publisher and subscriber log in as the same user."
  echo
  echo "Sanity checks before measuring:"
  echo
  for s in "${SANITY[@]}"; do echo "- $s"; done
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
      IFS="|" read -r _ which conf args metrics <<<"$(config_def "$id")"
      for key in $metrics; do
        v="${VALUES["$id|$key"]:-}"
        echo "- $id $key: [${v% }]"
      done
      a2="${args//$KEYS/KEYS}"; echo "  ($which -c $conf.conf; \`natrium-bench ${a2//$NKEY_SEED/\$(cat KEYS/nkey-user.seed)}\`)"
    done
  done
  echo
  echo "Total time: ${elapsed}s."
} >"$OUT"

echo
cat "$LOGDIR/table.md"
echo "(written to $OUT; server logs and keys in $LOGDIR)"
if (( FAILURES > 0 )); then
  echo "auth.sh: $FAILURES run(s) failed" >&2
  exit 1
fi
