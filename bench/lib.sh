# Shared by the benchmark scripts (compare.sh, plugins.sh, auth.sh, jetstream.sh): server and
# load-generator process control, machine-load sampling and small statistics. Source it after
# setting SCRIPT (the name used in messages); it installs the EXIT/INT/TERM traps.

SERVER_PID=""
BENCH_PID=""

stop_server() {
  local pid="$SERVER_PID"
  SERVER_PID=""
  [[ -n "$pid" ]] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  fi
  wait "$pid" 2>/dev/null
  return 0
}

cleanup() {
  if [[ -n "$BENCH_PID" ]]; then
    kill -TERM "$BENCH_PID" 2>/dev/null
    wait "$BENCH_PID" 2>/dev/null
    BENCH_PID=""
  fi
  stop_server
}
trap cleanup EXIT
trap 'echo "$SCRIPT: interrupted" >&2; exit 130' INT TERM

# Nothing listens on 127.0.0.1:PORT.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# CPU use of everything on the machine over 1 s, in % of all CPUs (sampled between runs, so it
# is other work).
cpu_busy() {
  local a1 a2 a3 a4 a5 a6 a7 a8 b1 b2 b3 b4 b5 b6 b7 b8
  read -r _ a1 a2 a3 a4 a5 a6 a7 a8 _ </proc/stat
  sleep 1
  read -r _ b1 b2 b3 b4 b5 b6 b7 b8 _ </proc/stat
  local idle=$(( (b4 + b5) - (a4 + a5) ))
  local total=$(( (b1+b2+b3+b4+b5+b6+b7+b8) - (a1+a2+a3+a4+a5+a6+a7+a8) ))
  (( total > 0 )) || { echo 0; return; }
  echo $(( 100 * (total - idle) / total ))
}

# Waits (at most MAX_WAIT s) until other work uses under MAX_BUSY %; sets QUIET_NOTE to
# "busy% load1".
wait_quiet() {
  local t0=$SECONDS busy
  busy="$(cpu_busy)"
  while (( busy >= MAX_BUSY && SECONDS - t0 < MAX_WAIT )); do
    sleep 4
    busy="$(cpu_busy)"
  done
  local load1; load1="$(cut -d' ' -f1 /proc/loadavg)"
  QUIET_NOTE="$busy% $load1"
  if (( busy >= MAX_BUSY )); then
    QUIET_NOTE="$QUIET_NOTE(busy)"
    echo "$SCRIPT: warning: machine still ${busy}% busy after ${MAX_WAIT}s; measuring anyway" >&2
  fi
}

# json_get KEY <<< json: the first numeric value of KEY.
json_get() { sed -n "s/.*\"$1\":\(-\{0,1\}[0-9][0-9.eE+-]*\).*/\1/p" | head -n 1; }

# median VALUE...
median() {
  printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {
    if (NR == 0) exit; if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2] + a[NR/2+1]) / 2 }'
}

# ab_table: the Markdown table "natrium vs nats-server" of compare.sh and jetstream.sh. Reads the
# caller's $SCENARIOS, its `scenario_def SC` ("args|key:up|down:label;..."), its `fmt VALUE KEY`
# and its VALUES array ("sc|key|A" / "sc|key|B" -> space-separated values); prints medians and
# the ratio A/B per metric.
ab_table() {
  local sc def m key rest dir label a b ratio hint
  local -a ms
  echo "| scenario | natrium | nats-server | ratio natrium/nats-server |"
  echo "|---|---:|---:|---:|"
  for sc in $SCENARIOS; do
    def="$(scenario_def "$sc")"
    IFS=";" read -ra ms <<<"${def#*|}"
    for m in "${ms[@]}"; do
      key="${m%%:*}"; rest="${m#*:}"; dir="${rest%%:*}"; label="${rest#*:}"
      # shellcheck disable=SC2086
      a="$(median ${VALUES["$sc|$key|A"]:-})"
      # shellcheck disable=SC2086
      b="$(median ${VALUES["$sc|$key|B"]:-})"
      if [[ -n "$a" && -n "$b" ]] && awk -v b="$b" 'BEGIN { exit !(b != 0) }'; then
        ratio="$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", a / b }')"
      else
        ratio="n/a"
      fi
      if [[ $dir == up ]]; then hint="higher is better"; else hint="lower is better"; fi
      echo "| $label — $hint | $(fmt "$a" "$key") | $(fmt "$b" "$key") | $ratio |"
    done
  done
}

# bench_once ARGS...: runs "$BENCH" ARGS against the server on 127.0.0.1:$PORT (in the
# background and `wait`ed, so an interrupt is handled at once), then stops the server. Sets
# BENCH_RC, BENCH_ALIVE (the server survived), BENCH_HUMAN (first text line), BENCH_JSON (last
# JSON line) and BENCH_FAILED (non-empty with the reason when the run did not pass).
bench_once() {
  local out
  "$BENCH" "$@" --url "127.0.0.1:$PORT" --timeout "$TIMEOUT" \
    >"$LOGDIR/bench.out" 2>"$LOGDIR/bench.err" &
  BENCH_PID=$!
  wait "$BENCH_PID"
  BENCH_RC=$?
  BENCH_PID=""
  out="$(cat "$LOGDIR/bench.out")"
  BENCH_ALIVE=1; kill -0 "$SERVER_PID" 2>/dev/null || BENCH_ALIVE=0
  stop_server
  BENCH_HUMAN="$(grep -v '^{' <<<"$out" | head -n 1)"
  BENCH_JSON="$(grep '^{' <<<"$out" | tail -n 1)"
  BENCH_FAILED=""
  if (( BENCH_RC != 0 )) || [[ -z "$BENCH_JSON" ]] || grep -q '"error"' <<<"$BENCH_JSON"; then
    BENCH_FAILED="$(tail -n 1 "$LOGDIR/bench.err")"
    (( BENCH_ALIVE )) || BENCH_FAILED="server process died during the run; $BENCH_FAILED"
    [[ -n "$BENCH_FAILED" ]] || BENCH_FAILED="no result"
  fi
}

# record_ab SC SIDE METRICS: appends each metric named in METRICS ("key:dir:label;...") of
# BENCH_JSON to the caller's VALUES["SC|key|SIDE"] (read back by ab_table).
record_ab() {
  local m key v
  local -a ms
  IFS=";" read -ra ms <<<"$3"
  for m in "${ms[@]}"; do
    key="${m%%:*}"
    v="$(json_get "$key" <<<"$BENCH_JSON")"
    [[ -n "$v" ]] && VALUES["$1|$key|$2"]+="$v "
  done
}
