# Helpers shared by Benchmarks/calls.sh and Benchmarks/calls-tls.sh (sourced, not run).
# shellcheck shell=bash
# The caller sets root (the package) and here (Benchmarks/calls) before sourcing.

# Settings both scripts share; BIN and LOGLEVEL come from the environment when given.
BIN=${BIN:-$root/.build-release/release/sip-registrar}
LOGLEVEL=${LOGLEVEL:-}
HOST=127.0.0.1
OURS_PORT=17060; OURS_TLS=17061; KAM_PORT=17070; KAM_TLS=17071
CLK_TCK=$(getconf CLK_TCK)

# prepare_run TOOL... -- TARGET...: the targets (default: ours kamailio) into `targets`,
# checked with the tools each needs, OUT created and the limits raised; exits 2 on an
# unknown target or a missing tool or binary.
prepare_run() {
  local tools=() t
  while (($#)) && [[ $1 != -- ]]; do tools+=("$1"); shift; done
  (($#)) && shift
  read -r -a targets <<<"${*:-ours kamailio}"
  for t in "${targets[@]}"; do
    case $t in ours | kamailio) ;; *) echo "unknown target $t (ours | kamailio)" >&2; exit 2 ;; esac
  done
  for t in "${tools[@]}"; do command -v "$t" >/dev/null || { echo "needs $t" >&2; exit 2; }; done
  [[ " ${targets[*]} " == *" kamailio "* ]] && ! command -v kamailio >/dev/null && { echo "needs kamailio" >&2; exit 2; }
  [[ " ${targets[*]} " == *" ours "* && ! -x $BIN ]] && { echo "no binary at $BIN (BIN=...)" >&2; exit 2; }
  mkdir -p "$OUT" || exit 1
  ulimit -n "$(ulimit -Hn)" 2>/dev/null
  ulimit -c 0
}

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

# the pid and all its descendants
tree_pids() {
  local all=" $1 " changed=1 pid ppid
  while ((changed)); do
    changed=0
    while read -r pid ppid; do
      if [[ $all == *" $ppid "* && $all != *" $pid "* ]]; then all+="$pid "; changed=1; fi
    done < <(ps -e -o pid=,ppid=)
  done
  echo $all
}
# summed utime+stime (clock ticks) of the given pids (a process's line counts all its threads)
cpu_ticks() {
  local t=0 p line rest f
  for p in "$@"; do
    line=$(cat "/proc/$p/stat" 2>/dev/null) || continue
    rest=${line##*) }
    read -r -a f <<<"$rest"
    t=$((t + f[11] + f[12]))
  done
  echo $t
}
# summed PSS (MB) of the given pids: shared memory (Kamailio's shm) counted once
pss_mb() {
  local kb=0 p v
  for p in "$@"; do
    v=$(awk '/^Pss:/ {print $2; exit}' "/proc/$p/smaps_rollup" 2>/dev/null) || continue
    kb=$((kb + ${v:-0}))
  done
  awk -v k="$kb" 'BEGIN { printf "%.0f", k / 1024 }'
}
stop_pid() {  # stop a process we started and everything it forked
  local root=$1 pids p i alive
  [[ -n $root ]] || return 0
  pids=$(tree_pids "$root")
  kill -TERM $pids 2>/dev/null
  for ((i = 0; i < 30; i++)); do
    alive=0
    for p in $pids; do kill -0 "$p" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 0.1
  done
  kill -KILL $pids 2>/dev/null
  wait "$root" 2>/dev/null
}
# start_ours DIR: our server on the benchmark ports (BIN, HOST, OURS_PORT, OURS_TLS, LOGLEVEL)
# -> TARGET_PID. It runs in DIR: no config/registrar.yaml there, so the built-in defaults
# apply (TLS with a generated ECDSA P-256 development certificate).
start_ours() {
  local dir=$1
  local args=(serve --udp "$HOST:$OURS_PORT" --tcp "$HOST:$OURS_PORT" --tls "$HOST:$OURS_TLS"
              --store memory --admin off)
  [[ -n $LOGLEVEL ]] && args+=(--log-level "$LOGLEVEL")
  echo "$BIN ${args[*]}" >"$dir/cmdline"
  (cd "$dir" && exec "$BIN" "${args[@]}" >target.log 2>&1) &
  TARGET_PID=$!
}
# start_kamailio DIR [ARG...]: Kamailio with calls/kamailio-proxy.cfg on udp HOST:KAM_PORT,
# ARGs added (defines, more listeners) -> TARGET_PID
start_kamailio() {
  local dir=$1
  shift
  mkdir -p "$dir/kam-run"
  (cd "$dir" && exec kamailio -f "$here/kamailio-proxy.cfg" "$@" -DD -E -m "${KAM_SHM_MB:-1024}" -M 16 \
     -l "udp:$HOST:$KAM_PORT" -Y "$dir/kam-run" >target.log 2>&1) &
  TARGET_PID=$!
}
