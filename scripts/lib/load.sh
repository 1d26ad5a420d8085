# shellcheck shell=bash
# Helpers of the load scripts (scripts/loadtest, scripts/soak), sourced after
# `cd` to the repository and after OUT (the folder for raw outputs) is set:
# background servers stopped by pid on exit, free ports, waits, the release
# build of the examples, and wrk's figures.

PIDS=()

log() { printf '==> %s\n' "$*" >&2; }
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM

# need_tools COMMAND=PACKAGE...: installs the Debian packages of the missing
# commands with apt-get as root; otherwise says what to install and exits.
need_tools() {
  local missing=() pair
  for pair in "$@"; do
    command -v "${pair%%=*}" >/dev/null || missing+=("${pair#*=}")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing: ${missing[*]}; run as root or: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  log "installing ${missing[*]}"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# free_port: a free loopback port below the ephemeral range.
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 12000))
    [ -z "$(ss -Htan "sport = :$p" 2>/dev/null)" ] && { echo "$p"; return; }
  done
}

wait_http() {
  for _ in $(seq 200); do curl -fs -o /dev/null "$1" && return 0; sleep 0.05; done
  echo "no answer from $1" >&2
  return 1
}

# start NAME CMD...: starts a server in the background, output in
# $OUT/NAME.log; its pid is in LAST_PID.
start() {
  local name=$1
  shift
  "$@" >"$OUT/$name.log" 2>&1 &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}

# wait_port PORT: until something listens there (without sending a request).
wait_port() {
  for _ in $(seq 200); do ss -Htln "sport = :$1" | grep -q . && return 0; sleep 0.05; done
  echo "nothing listens on $1" >&2
  return 1
}

stop() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# build_examples EXAMPLE...: the release build of the examples (thin LTO, one
# codegen unit, with the redis, memcached, sqlite and file features), copied into
# $OUT/bin so that another build in a shared CARGO_TARGET_DIR cannot swap
# the binaries during the run; BIN is that folder.
build_examples() {
  local example args=() paths=()
  for example in "$@"; do
    args+=(--example "$example")
    paths+=("${CARGO_TARGET_DIR:-target}/release/examples/$example")
  done
  log "building the release examples"
  CARGO_PROFILE_RELEASE_LTO=thin CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 \
    cargo build --release --quiet --features redis,memcached,sqlite,file "${args[@]}"
  BIN=$OUT/bin
  mkdir -p "$BIN"
  cp "${paths[@]}" "$BIN/"
}

# The bundled upstream's count of calls (`httpbin --serve-upstream`), at
# $UPSTREAM.
upstream_calls() { curl -fs "$UPSTREAM/count"; }

wrk_rps() { awk '/^Requests\/sec:/ {printf "%.0f\n", $2; exit}' "$1"; }
wrk_requests() { awk '/ requests in / {print $1; exit}' "$1"; }
wrk_errors() {
  awk '/Socket errors:/ { gsub(/,/, ""); s = $4 + $6 + $8 + $10 } /Non-2xx or 3xx responses:/ { n = $5 }
       END { print (s + 0) + (n + 0) }' "$1"
}

# build_peers: the release build of the Rust peers (benches/peers, a cargo
# workspace of its own with its own Cargo.lock, built in PEERS_TARGET_DIR,
# benches/peers/target by default), the binaries (peer-NAME) copied into
# $OUT/bin as build_examples does; BIN is that folder.
build_peers() {
  local dir=${PEERS_TARGET_DIR:-benches/peers/target}
  log "building the peers (benches/peers)"
  CARGO_TARGET_DIR=$dir cargo build --release --quiet --locked --manifest-path benches/peers/Cargo.toml
  BIN=$OUT/bin
  mkdir -p "$BIN"
  find "$dir/release" -maxdepth 1 -type f -name 'peer-*' -perm -u+x -exec cp {} "$BIN/" \;
}

# seconds SPEC: 90, 90s, 10m or 1h as seconds.
seconds() {
  case $1 in
    *h) echo $((${1%h} * 3600)) ;;
    *m) echo $((${1%m} * 60)) ;;
    *s) echo "${1%s}" ;;
    *) echo "$1" ;;
  esac
}

# plot_python: prints the path of the python of a venv that has matplotlib,
# under ${XDG_CACHE_HOME:-~/.cache}/tower-cache (made, and matplotlib
# installed into it with pip, on first use).
plot_python() {
  local venv=${XDG_CACHE_HOME:-$HOME/.cache}/tower-cache/plot-venv
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import matplotlib' 2>/dev/null; then
    log "making a venv with matplotlib in $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q matplotlib >&2
  fi
  echo "$venv/bin/python"
}

# instructions NAME PORT N -- [VAR=VALUE...] SERVER-COMMAND...: the
# instructions a server executes per request, counted by callgrind (a figure
# the machine's noise does not move). The server runs under valgrind with one
# tokio worker (TOKIO_WORKER_THREADS=1) and must listen on 127.0.0.1:PORT;
# scripts/lib/keepalive.py sends warm-up GETs / (the first, a miss for a
# cache), has callgrind zero its counters (callgrind_control -z), sends N
# sequential GETs on the same keep-alive connection and has callgrind dump
# them (-d): prints the dump's total / N, so the start, the warm-up and the
# exit do not count. Outputs in $OUT/cg.NAME.*. Needs valgrind.
instructions() {
  local name=$1 port=$2 n=$3 pid out=$OUT/cg.$1 vars=()
  shift 4
  while [[ ${1:-} == *=* ]]; do vars+=("$1"); shift; done
  rm -f "$out".callgrind*
  env "${vars[@]}" TOKIO_WORKER_THREADS=1 valgrind --tool=callgrind --callgrind-out-file="$out.callgrind" "$@" >"$out.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  for _ in $(seq 1200); do
    ss -Htln "sport = :$port" | grep -q . && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if ! python3 scripts/lib/keepalive.py "$port" "$n" "$pid" >"$out.client" 2>&1; then
    log "instructions $name: the client failed: $(tail -n 3 "$out.client")"
    stop "$pid"
    return 1
  fi
  stop "$pid"
  awk -v n="$n" '/^(summary|totals):/ { printf "%.0f\n", $2 / n; exit }' "$out.callgrind.1"
}
