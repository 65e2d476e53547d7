#!/usr/bin/env bash
# JetStream: natrium (A) against nats-server (B) with `natrium-bench js-pub`, `js-pull`,
# `js-push`, `js-ordered` and `kv`.
#
# Every run starts a fresh server with `-js -sd <fresh directory>` on 127.0.0.1; the bench
# (re)creates a file-backed stream (limits retention, 1 replica) on its subject, publishes with a
# reply inbox and verifies every PubAck (seqs exactly 1..N, once each) and the final stream info
# (messages == N, bytes > 0); the consumer scenarios then consume every message, checking each
# one (order, subject, payload) and the final consumer info. Runs alternate A,B,A,B,... (RUNS
# times each); medians per metric go into a Markdown table (also written to
# bench/jetstream-results.md) with the ratio natrium/nats-server.
#
#   sync128    js-pub --mode sync,  128 B   one message in flight: msgs/s, ack latency p50/p99
#   sync4k     js-pub --mode sync,  4 KiB
#   async128   js-pub --mode async, 128 B   INFLIGHT unacknowledged messages: msgs/s
#   async4k    js-pub --mode async, 4 KiB
#   pull128    js-pull, PULL_MSGS x 128 B, PULL_BATCH per request, explicit acks: msgs/s
#   pullnoack128  the same, ack policy none
#   push128    js-push, PUSH_MSGS x 128 B, durable push consumer with flow control and
#              heartbeats, explicit acks: msgs/s
#   pushnoack128  the same, ack policy none
#   ordered128 js-ordered, PUSH_MSGS x 128 B, an ordered consumer (ephemeral, ack none, memory,
#              flow control; consumer sequences gap-free): msgs/s
#   kvput      kv --mode put, KV_MSGS sequential 128 B puts over KV_KEYS keys (history 1, PubAck
#              checked): ops/s, latency p50/p99
#   kvget      kv --mode get, KV_KEYS puts, then KV_MSGS sequential direct gets of pseudo-random
#              keys (value and sequence checked): ops/s, latency p50/p99
#
# Usage:  bench/jetstream.sh
# Environment:
#   RUNS=3                  runs per server per scenario
#   SCENARIOS="sync128 sync4k async128 async4k pull128 pullnoack128 push128 pushnoack128
#              ordered128 kvput kvget"   subset/order
#   SYNC_MSGS=5000          measured messages per sync run (plus 100 warm-up ones)
#   ASYNC_MSGS=200000       measured messages per async 128 B run
#   ASYNC4K_MSGS=50000      measured messages per async 4 KiB run (~200 MB on disk)
#   INFLIGHT=256            async window
#   PULL_MSGS=200000        messages per pull-consumer run (stored first, then consumed)
#   PULL_BATCH=100          messages per pull request
#   PUSH_MSGS=200000        messages per push/ordered-consumer run (stored first, then consumed)
#   KV_MSGS=5000            measured KV operations per run (plus 100 warm-up ones)
#   KV_KEYS=100             distinct KV keys
#   NATRIUM_BIN=path        use this binary as A instead of building natrium
#                           (NATRIUM_BIN=/usr/sbin/nats-server validates the harness: A = B)
#   NATS_BIN=/usr/sbin/nats-server   server B
#   BENCH_BIN=path          use this natrium-bench instead of building it
#   STORE_ROOT=${TMPDIR:-/tmp}   where the per-run store directories are made (and removed)
#   BASE_PORT=26220         first port tried (below the ephemeral range)
#   MAX_BUSY=25 MAX_WAIT=0  before each run, wait up to MAX_WAIT s until other processes use
#                           less than MAX_BUSY % of the CPUs; the figure (sampled over 1 s) is
#                           recorded either way, "(busy)" when it stayed above MAX_BUSY
#   OUT=bench/jetstream-results.md
#   CARGO_TARGET_DIR        honoured for building and finding the binaries
#   SKIP_BUILD=1            don't run cargo (binaries must already exist)
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
RUNS="${RUNS:-3}"
SCENARIOS="${SCENARIOS:-sync128 sync4k async128 async4k pull128 pullnoack128 push128 pushnoack128 ordered128 kvput kvget}"
SYNC_MSGS="${SYNC_MSGS:-5000}"
ASYNC_MSGS="${ASYNC_MSGS:-200000}"
ASYNC4K_MSGS="${ASYNC4K_MSGS:-50000}"
INFLIGHT="${INFLIGHT:-256}"
PULL_MSGS="${PULL_MSGS:-200000}"
PULL_BATCH="${PULL_BATCH:-100}"
PUSH_MSGS="${PUSH_MSGS:-200000}"
KV_MSGS="${KV_MSGS:-5000}"
KV_KEYS="${KV_KEYS:-100}"
NATS_BIN="${NATS_BIN:-/usr/sbin/nats-server}"
NATRIUM_BIN="${NATRIUM_BIN:-}"
BENCH_BIN="${BENCH_BIN:-}"
STORE_ROOT="${STORE_ROOT:-${TMPDIR:-/tmp}}"
BASE_PORT="${BASE_PORT:-26220}"
MAX_BUSY="${MAX_BUSY:-25}"
MAX_WAIT="${MAX_WAIT:-0}"
OUT="${OUT:-$ROOT/bench/jetstream-results.md}"
SKIP_BUILD="${SKIP_BUILD:-0}"
TIMEOUT=60 # hard cap per natrium-bench invocation (seconds)

die() { echo "jetstream.sh: ERROR: $*" >&2; exit 1; }
SCRIPT=jetstream.sh
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# ---------------------------------------------------------------- scenarios
# id | bench arguments | metrics ("json_key:direction:label", ";"-separated)
scenario_def() {
  case "$1" in
    sync128)  echo "js-pub --mode sync --msgs $SYNC_MSGS --size 128|msgs_per_sec:up:sync publish, 128 B (msgs/s);p50_us:down:sync publish, 128 B, ack latency p50 (µs);p99_us:down:sync publish, 128 B, ack latency p99 (µs)" ;;
    sync4k)   echo "js-pub --mode sync --msgs $SYNC_MSGS --size 4096|msgs_per_sec:up:sync publish, 4 KiB (msgs/s);p50_us:down:sync publish, 4 KiB, ack latency p50 (µs);p99_us:down:sync publish, 4 KiB, ack latency p99 (µs)" ;;
    async128) echo "js-pub --mode async --inflight $INFLIGHT --msgs $ASYNC_MSGS --size 128|msgs_per_sec:up:async publish, $INFLIGHT in flight, 128 B (msgs/s)" ;;
    async4k)  echo "js-pub --mode async --inflight $INFLIGHT --msgs $ASYNC4K_MSGS --size 4096|msgs_per_sec:up:async publish, $INFLIGHT in flight, 4 KiB (msgs/s)" ;;
    pull128)  echo "js-pull --ack explicit --batch $PULL_BATCH --msgs $PULL_MSGS --size 128|msgs_per_sec:up:pull consume, batch $PULL_BATCH, explicit acks, 128 B (msgs/s)" ;;
    pullnoack128) echo "js-pull --ack none --batch $PULL_BATCH --msgs $PULL_MSGS --size 128|msgs_per_sec:up:pull consume, batch $PULL_BATCH, no acks, 128 B (msgs/s)" ;;
    push128)  echo "js-push --ack explicit --msgs $PUSH_MSGS --size 128|msgs_per_sec:up:push consume, flow control, explicit acks, 128 B (msgs/s)" ;;
    pushnoack128) echo "js-push --ack none --msgs $PUSH_MSGS --size 128|msgs_per_sec:up:push consume, flow control, no acks, 128 B (msgs/s)" ;;
    ordered128) echo "js-ordered --msgs $PUSH_MSGS --size 128|msgs_per_sec:up:ordered consumer, 128 B (msgs/s)" ;;
    kvput)    echo "kv --mode put --msgs $KV_MSGS --keys $KV_KEYS --size 128|msgs_per_sec:up:KV put, $KV_KEYS keys, 128 B (ops/s);p50_us:down:KV put latency p50 (µs);p99_us:down:KV put latency p99 (µs)" ;;
    kvget)    echo "kv --mode get --msgs $KV_MSGS --keys $KV_KEYS --size 128|msgs_per_sec:up:KV get (direct), $KV_KEYS keys, 128 B (ops/s);p50_us:down:KV get latency p50 (µs);p99_us:down:KV get latency p99 (µs)" ;;
    *) return 1 ;;
  esac
}
for s in $SCENARIOS; do scenario_def "$s" >/dev/null || die "unknown scenario '$s'"; done
[[ "$MAX_WAIT" =~ ^[0-9]+$ ]] || die "MAX_WAIT must be a non-negative integer"
for v in RUNS SYNC_MSGS ASYNC_MSGS ASYNC4K_MSGS INFLIGHT PULL_MSGS PULL_BATCH PUSH_MSGS KV_MSGS KV_KEYS; do
  [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer"
done

# -------------------------------------------------------------------- build
if [[ "$SKIP_BUILD" != 1 ]]; then
  cd "$ROOT" || die "cannot cd to $ROOT"
  pkgs=()
  [[ -z "$NATRIUM_BIN" ]] && pkgs+=(-p natrium)
  [[ -z "$BENCH_BIN" ]] && pkgs+=(-p natrium-bench)
  if (( ${#pkgs[@]} > 0 )); then
    echo "== cargo build --release ${pkgs[*]}" >&2
    if ! cargo build --release "${pkgs[@]}" >&2; then
      if [[ -z "$NATRIUM_BIN" && -z "$BENCH_BIN" ]] && cargo build --release -p natrium-bench >&2; then
        die "natrium (host/) failed to build; natrium-bench itself is fine. Fix host/ or set NATRIUM_BIN=... to compare another binary."
      fi
      die "cargo build failed (see above)"
    fi
  fi
fi
NATRIUM_BIN="${NATRIUM_BIN:-$TARGET_DIR/release/natrium}"
BENCH="${BENCH_BIN:-$TARGET_DIR/release/natrium-bench}"
[[ -x "$BENCH" ]] || die "natrium-bench binary not found at $BENCH"
[[ -x "$NATRIUM_BIN" ]] || die "natrium binary not found/executable at $NATRIUM_BIN (host/ not built yet?)"
[[ -x "$NATS_BIN" ]] || die "nats-server not found at $NATS_BIN"
[[ -d "$STORE_ROOT" && -w "$STORE_ROOT" ]] || die "STORE_ROOT $STORE_ROOT is not a writable directory"
STORE_FS="$(stat -f -c %T "$STORE_ROOT" 2>/dev/null || echo unknown)"

# ------------------------------------------------------------ server control
NEXT_PORT="$BASE_PORT"
LOGDIR="$(mktemp -d /tmp/natrium-jetstream.XXXXXX)"
STORE_DIR=""
remove_store() {
  [[ -n "$STORE_DIR" ]] && rm -rf -- "$STORE_DIR"
  STORE_DIR=""
}
trap 'cleanup; remove_store' EXIT

# start_server NAME BIN LOG -> sets SERVER_PID, PORT and STORE_DIR (a fresh store directory)
start_server() {
  local name="$1" bin="$2" log="$3" tries=0
  while :; do
    # Pick a port nobody answers on (a stale server would skew the run).
    PORT="$NEXT_PORT"
    NEXT_PORT=$(( NEXT_PORT >= BASE_PORT + 500 ? BASE_PORT : NEXT_PORT + 1 ))
    if ! port_free "$PORT"; then
      (( ++tries < 50 )) || die "no free port found near $BASE_PORT"
      continue
    fi
    STORE_DIR="$(mktemp -d "$STORE_ROOT/natrium-js-store.XXXXXX")" || die "cannot create a store directory in $STORE_ROOT"
    "$bin" -js -sd "$STORE_DIR" -a 127.0.0.1 -p "$PORT" >"$log" 2>&1 &
    SERVER_PID=$!
    if "$BENCH" wait --url "127.0.0.1:$PORT" --timeout 10 >/dev/null 2>&1; then
      return 0
    fi
    stop_server
    remove_store
    # Port taken by something that is not a NATS server: try the next one.
    if grep -qi 'in use' "$log" && (( ++tries < 50 )); then
      continue
    fi
    echo "jetstream.sh: ERROR: $name ($bin -js -sd DIR -a 127.0.0.1 -p $PORT) did not start or does not answer CONNECT/PING. Last log lines:" >&2
    tail -n 20 "$log" >&2
    return 1
  done
}

# --------------------------------------------------------------------- run
declare -A VALUES # "scenario|key|A" -> space-separated values
declare -A NOTES  # "scenario|A" -> "busy% load1, " per run
FAILURES=0
T0=$SECONDS
echo "== machine: $(nproc) CPUs; load before start: $(cut -d' ' -f1-3 /proc/loadavg); stores on $STORE_ROOT ($STORE_FS)" >&2
# Everything shares the machine's cores with the generator: other work makes the numbers noisy.
load1="$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo 0)"
if awk -v l="$load1" 'BEGIN { exit !(l > 0.7) }'; then
  echo "jetstream.sh: warning: 1-minute load average is $load1; other work on this machine will add noise" >&2
fi

for sc in $SCENARIOS; do
  def="$(scenario_def "$sc")"
  args="${def%%|*}"
  metrics="${def#*|}"
  for run in $(seq 1 "$RUNS"); do
    for side in A B; do
      if [[ $side == A ]]; then name=natrium; bin="$NATRIUM_BIN"; else name=nats-server; bin="$NATS_BIN"; fi
      log="$LOGDIR/$sc-$run-$name.log"
      if (( MAX_WAIT > 0 )); then wait_quiet; else wait_quiet 2>/dev/null; fi
      if ! start_server "$name" "$bin" "$log"; then
        if [[ $side == A ]]; then
          die "natrium does not start with -js -sd ($NATRIUM_BIN). Nothing to compare. (Validate the harness with NATRIUM_BIN=$NATS_BIN.)"
        fi
        die "nats-server failed to start"
      fi
      # shellcheck disable=SC2086 # $args is a deliberate word list
      bench_once $args
      remove_store
      if [[ -n "$BENCH_FAILED" ]]; then
        FAILURES=$((FAILURES + 1))
        printf '%-9s run %d %-11s FAILED: %s (log %s)\n' "$sc" "$run" "$name" "$BENCH_FAILED" "$log" >&2
        continue
      fi
      printf '%-9s run %d %-11s [busy/load %s] %s\n' "$sc" "$run" "$name" "$QUIET_NOTE" "$BENCH_HUMAN" >&2
      NOTES["$sc|$side"]+="${QUIET_NOTE// /\/}, "
      record_ab "$sc" "$side" "$metrics"
    done
  done
done

# describe: what each family of the scenarios run does, for the results file.
describe() {
  local s all=" $SCENARIOS "
  if [[ "$all" == *" sync"* || "$all" == *" async"* ]]; then
    echo "Publish (\`natrium-bench js-pub\`): deletes and creates stream \`BENCH\` (file storage, limits"
    echo "retention, discard old, 1 replica) on subject \`bench.js-pub\`, publishes 100 unmeasured"
    echo "warm-up messages one at a time, then the measured ones, each with its own reply subject"
    echo "under one \`_INBOX.<nonce>.*\` subscription. Sync: one message in flight; latency = PUB written"
    echo "→ PubAck parsed. Async: at most $INFLIGHT unacknowledged messages; msgs/s from the first"
    echo "measured PUB to the last ack. Every ack must arrive once, without an error, with the seqs"
    echo "exactly 1..N; \`\$JS.API.STREAM.INFO\` must then show N messages and a non-zero byte count."
    echo
  fi
  local consumers=0
  for s in pull push ordered; do
    [[ "$all" == *" $s"* ]] || continue
    consumers=1
    case $s in
      pull) echo "Pull (\`natrium-bench js-pull\`): the stream is filled with the messages (256 PubAcks in flight), then a"
            echo "durable pull consumer fetches them, $PULL_BATCH per request, two requests outstanding." ;;
      push) echo "Push (\`natrium-bench js-push\`): the stream is filled, the deliver subject subscribed, then a durable"
            echo "push consumer (\`flow_control\`, 1 s \`idle_heartbeat\`) is created; flow control requests are"
            echo "answered at once. msgs/s from the create request to the last message." ;;
      ordered) echo "Ordered (\`natrium-bench js-ordered\`): as push, with the consumer async-nats makes for an ordered"
               echo "consumer (ephemeral via \`CONSUMER.CREATE.<stream>\`, ack none, max_deliver 1, mem_storage, R1,"
               echo "flow control, 5 s heartbeats); a heartbeat's \`Nats-Last-Consumer\` must match." ;;
    esac
    echo
  done
  if (( consumers )); then
    echo "Consumers: every message must arrive once, in order (stream and consumer sequence 1..N in"
    echo "its ack subject, first delivery), on the stream's subject with the published bytes;"
    echo "\`CONSUMER.INFO\` must then show nothing pending (and, with acks, the ack floor at N)."
    echo
  fi
  if [[ "$all" == *" kv"* ]]; then
    echo "KV (\`natrium-bench kv\`): bucket \`BENCH\` = stream \`KV_BENCH\` on \`\$KV.BENCH.>\` (history 1,"
    echo "\`allow_direct\`, \`allow_rollup_hdrs\`, \`deny_delete\`, discard new, file storage). One operation"
    echo "in flight, 100 unmeasured first; latency = request written → reply parsed. Put: \`PUB \$KV.BENCH.k<n>\`"
    echo "with a reply, keys round robin, every PubAck checked, then the stream must hold $KV_KEYS messages."
    echo "Get: one put per key, then \`\$JS.API.DIRECT.GET.KV_BENCH.\$KV.BENCH.k<n>\` (empty body) for"
    echo "fixed-seed random keys; each reply must carry the key's last value and its \`Nats-Sequence\`."
    echo
  fi
}

# ------------------------------------------------------------------- table
fmt() { # fmt VALUE KEY
  [[ -z "$1" ]] && { echo "FAIL"; return; }
  case "$2" in
    *_us) awk -v v="$1" 'BEGIN { printf "%.1f", v }' ;;
    *) awk -v v="$1" 'BEGIN { printf "%.0f", v }' ;;
  esac
}
ab_table >"$LOGDIR/table.md"

elapsed=$((SECONDS - T0))
{
  echo "# JetStream: natrium vs nats-server"
  echo
  echo "Generated by \`bench/jetstream.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, $(uname -sr)."
  echo "Median of $RUNS run(s) per server, alternating A,B; every run on a fresh server process on 127.0.0.1"
  echo "started with \`-js -sd <fresh directory>\` (stores on \`$STORE_ROOT\`, $STORE_FS), removed after the run."
  echo "A (natrium) = \`$NATRIUM_BIN\`; B (nats-server) = \`$NATS_BIN\` ($("$NATS_BIN" --version 2>/dev/null | head -n 1))."
  echo "Throughput rows: higher is better, ratio > 1 means natrium is faster."
  echo "Latency rows: lower is better, ratio < 1 means natrium is better."
  echo
  cat "$LOGDIR/table.md"
  echo
  if (( FAILURES > 0 )); then
    echo "**$FAILURES run(s) failed** (missing, error or duplicate acks, wrong stream state, crashes or timeouts); see the script's output."
    echo
  fi
  describe
  echo "Machine before each run (other work's CPU use over 1 s / 1-minute load average):"
  echo
  for sc in $SCENARIOS; do
    na="${NOTES["$sc|A"]:-}"; nb="${NOTES["$sc|B"]:-}"
    echo "- $sc: natrium [${na%, }] nats-server [${nb%, }]"
  done
  echo
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
    echo "  (\`natrium-bench ${def%%|*}\`)"
  done
  echo
  echo "Total time: ${elapsed}s."
} >"$OUT"

echo
cat "$LOGDIR/table.md"
echo
echo "(written to $OUT; server logs in $LOGDIR)"
if (( FAILURES > 0 )); then
  echo "jetstream.sh: $FAILURES run(s) failed" >&2
  exit 1
fi
