#!/usr/bin/env bash
# Compare natrium (A) against nats-server (B) with natrium-bench.
#
# For every scenario, runs A,B,A,B,... (RUNS times each), each run on a fresh
# server process bound to 127.0.0.1, takes the median per metric and prints a
# Markdown table (also written to bench/results.md).
#
# Usage:  bench/compare.sh
# Environment:
#   RUNS=3                       runs per server per scenario
#   SCENARIOS="pub pub16 pubsub fanout queue reqrep idle"   subset/order
#   NATRIUM_BIN=path             use this binary as A instead of building natrium
#                                (e.g. NATRIUM_BIN=/usr/sbin/nats-server to validate the harness)
#   NATS_BIN=/usr/sbin/nats-server   server B
#   BASE_PORT=24220              first port tried (each run gets a fresh port; keep it
#                                below the ephemeral range, 32768+ on Linux)
#   IDLE_CONNS=10000             connections for the idle scenario
#   OUT=bench/results.md         where the table is written
#   CARGO_TARGET_DIR             honoured for finding the built binaries
#   SKIP_BUILD=1                 don't run cargo (binaries must already exist)
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
RUNS="${RUNS:-3}"
NATS_BIN="${NATS_BIN:-/usr/sbin/nats-server}"
NATRIUM_BIN="${NATRIUM_BIN:-}"
BASE_PORT="${BASE_PORT:-24220}"
IDLE_CONNS="${IDLE_CONNS:-10000}"
OUT="${OUT:-$ROOT/bench/results.md}"
SCENARIOS="${SCENARIOS:-pub pub16 pubsub fanout queue reqrep idle}"
SKIP_BUILD="${SKIP_BUILD:-0}"
BENCH="$TARGET_DIR/release/natrium-bench"
TIMEOUT=60 # hard cap per benchmark invocation (seconds)

die() { echo "compare.sh: ERROR: $*" >&2; exit 1; }
SCRIPT=compare.sh
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# ---------------------------------------------------------------- scenarios
# id | bench arguments | metrics ("json_key:direction:label", ";"-separated)
scenario_def() {
  case "$1" in
    pub)    echo "pub --msgs 10000000 --size 128|msgs_per_sec:up:pub 1 publisher, 128 B (msgs/s)" ;;
    pub16)  echo "pub --msgs 10000000 --size 16|msgs_per_sec:up:pub 1 publisher, 16 B (msgs/s)" ;;
    pubsub) echo "pubsub --msgs 2000000 --size 128 --subs 1|delivered_msgs_per_sec:up:pubsub 1→1, 128 B (msgs/s)" ;;
    fanout) echo "pubsub --msgs 1000000 --size 128 --subs 4|delivered_msgs_per_sec:up:fan-out 1→4, 128 B (delivered msgs/s)" ;;
    queue)  echo "queue --msgs 1000000 --size 128 --subs 4|msgs_per_sec:up:queue group of 4, 128 B (msgs/s)" ;;
    reqrep) echo "reqrep --msgs 20000 --size 128|p50_us:down:req/reply p50 latency (µs);p99_us:down:req/reply p99 latency (µs)" ;;
    idle)   echo "idle --conns $IDLE_CONNS|kib_per_conn:down:idle memory, $IDLE_CONNS conns (KiB/conn)" ;;
    *) return 1 ;;
  esac
}
for s in $SCENARIOS; do scenario_def "$s" >/dev/null || die "unknown scenario '$s'"; done
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer"

# -------------------------------------------------------------------- build
if [[ "$SKIP_BUILD" != 1 ]]; then
  cd "$ROOT" || die "cannot cd to $ROOT"
  if [[ -z "$NATRIUM_BIN" ]]; then
    echo "== cargo build --release -p natrium -p natrium-bench" >&2
    if ! cargo build --release -p natrium -p natrium-bench >&2; then
      if cargo build --release -p natrium-bench >&2; then
        die "natrium (host/) failed to build; natrium-bench itself is fine. Fix host/ or set NATRIUM_BIN=... to compare another binary."
      fi
      die "cargo build failed (see above)"
    fi
  else
    echo "== cargo build --release -p natrium-bench (NATRIUM_BIN=$NATRIUM_BIN given)" >&2
    cargo build --release -p natrium-bench >&2 || die "natrium-bench failed to build"
  fi
fi
NATRIUM_BIN="${NATRIUM_BIN:-$TARGET_DIR/release/natrium}"
[[ -x "$BENCH" ]] || die "natrium-bench binary not found at $BENCH"
[[ -x "$NATRIUM_BIN" ]] || die "natrium binary not found/executable at $NATRIUM_BIN (host/ not built yet?)"
[[ -x "$NATS_BIN" ]] || die "nats-server not found at $NATS_BIN"

# Servers (and the generator) need many fds for the idle scenario.
hard="$(ulimit -Hn)"
if [[ "$hard" == unlimited ]]; then hard=1048576; fi
ulimit -n "$hard" 2>/dev/null || true
if (( $(ulimit -n) < IDLE_CONNS + 256 )); then
  echo "compare.sh: warning: fd limit $(ulimit -n) is too low for $IDLE_CONNS idle connections" >&2
fi

# Everything shares 2 cores with the generator: a busy machine (e.g. a
# concurrent cargo build) makes the numbers noisy.
load1="$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo 0)"
if awk -v l="$load1" 'BEGIN { exit !(l > 0.7) }'; then
  echo "compare.sh: warning: 1-minute load average is $load1; other work on this machine will add noise" >&2
fi

# ------------------------------------------------------------ server control
NEXT_PORT="$BASE_PORT"
LOGDIR="$(mktemp -d /tmp/natrium-compare.XXXXXX)"


# start_server NAME BIN LOG -> sets SERVER_PID and PORT
start_server() {
  local name="$1" bin="$2" log="$3" tries=0
  while :; do
    # Pick a port nobody answers on (a stale server would skew the run).
    PORT="$NEXT_PORT"
    NEXT_PORT=$(( NEXT_PORT >= BASE_PORT + 500 ? BASE_PORT : NEXT_PORT + 1 ))
    if "$BENCH" wait --url "127.0.0.1:$PORT" --timeout 0.1 >/dev/null 2>&1; then
      (( ++tries < 50 )) || die "no free port found near $BASE_PORT"
      continue
    fi
    "$bin" -a 127.0.0.1 -p "$PORT" >"$log" 2>&1 &
    SERVER_PID=$!
    if "$BENCH" wait --url "127.0.0.1:$PORT" --timeout 10 >/dev/null 2>&1; then
      return 0
    fi
    stop_server
    # Port taken by something that is not a NATS server: try the next one.
    if grep -qi 'in use' "$log" && (( ++tries < 50 )); then
      continue
    fi
    echo "compare.sh: ERROR: $name ($bin -a 127.0.0.1 -p $PORT) did not start or does not answer CONNECT/PING. Last log lines:" >&2
    tail -n 20 "$log" >&2
    return 1
  done
}



# --------------------------------------------------------------------- run
declare -A VALUES # "scenario|key|A" -> space-separated values
FAILURES=0
T0=$SECONDS

for sc in $SCENARIOS; do
  def="$(scenario_def "$sc")"
  args="${def%%|*}"
  metrics="${def#*|}"
  for run in $(seq 1 "$RUNS"); do
    for side in A B; do
      if [[ $side == A ]]; then name=natrium; bin="$NATRIUM_BIN"; else name=nats-server; bin="$NATS_BIN"; fi
      log="$LOGDIR/$sc-$run-$name.log"
      if ! start_server "$name" "$bin" "$log"; then
        if [[ $side == A ]]; then
          die "natrium does not start yet ($NATRIUM_BIN). Nothing to compare. (Validate the harness with NATRIUM_BIN=$NATS_BIN.)"
        fi
        die "nats-server failed to start"
      fi
      extra=()
      [[ $sc == idle ]] && extra=(--server-pid "$SERVER_PID")
      # shellcheck disable=SC2086 # $args is a deliberate word list
      bench_once $args "${extra[@]}"
      if [[ -n "$BENCH_FAILED" ]]; then
        FAILURES=$((FAILURES + 1))
        printf '%-12s run %d %-11s FAILED: %s\n' "$sc" "$run" "$name" "$BENCH_FAILED" >&2
        continue
      fi
      printf '%-12s run %d %-11s %s\n' "$sc" "$run" "$name" "$BENCH_HUMAN" >&2
      record_ab "$sc" "$side" "$metrics"
    done
  done
done

# ------------------------------------------------------------------- table
fmt() { # fmt VALUE KEY
  [[ -z "$1" ]] && { echo "FAIL"; return; }
  case "$2" in
    *_us|kib_per_conn) awk -v v="$1" 'BEGIN { printf "%.2f", v }' ;;
    *) awk -v v="$1" 'BEGIN { printf "%.0f", v }' ;;
  esac
}
ab_table >"$LOGDIR/table.md"

elapsed=$((SECONDS - T0))
{
  echo "# natrium vs nats-server"
  echo
  echo "Generated by \`bench/compare.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, $(uname -sr)."
  echo "Median of $RUNS run(s) per server, alternating A,B; every run on a fresh server process on 127.0.0.1."
  echo "A (natrium) = \`$NATRIUM_BIN\`; B (nats-server) = \`$NATS_BIN\` ($("$NATS_BIN" --version 2>/dev/null | head -n 1))."
  echo "Throughput rows: higher is better, ratio > 1 means natrium is faster."
  echo "Latency and memory rows: lower is better, ratio < 1 means natrium is better."
  echo "Publishers are paced with an 8 MiB window (see bench/src/publisher.rs); every message is verified to arrive."
  echo
  cat "$LOGDIR/table.md"
  echo
  if (( FAILURES > 0 )); then
    echo "**$FAILURES run(s) failed** (missing messages, slow-consumer disconnects, crashes or timeouts); see the script's output."
    echo
  fi
  echo "Raw values per run:"
  echo
  for sc in $SCENARIOS; do
    def="$(scenario_def "$sc")"
    IFS=";" read -ra ms <<<"${def#*|}"
    for m in "${ms[@]}"; do
      key="${m%%:*}"
      va="${VALUES["$sc|$key|A"]:-}"; vb="${VALUES["$sc|$key|B"]:-}"
      echo "- $sc $key: natrium [${va% }] nats-server [${vb% }]"
    done
  done
  echo
  echo "Total time: ${elapsed}s."
} >"$OUT"

echo
cat "$LOGDIR/table.md"
echo
echo "(written to $OUT; server logs in $LOGDIR)"
if (( FAILURES > 0 )); then
  echo "compare.sh: $FAILURES run(s) failed" >&2
  exit 1
fi
