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
  local i
  for i in $(seq 200); do curl -fs -o /dev/null "$1" && return 0; sleep 0.05; done
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
  local i
  for i in $(seq 200); do ss -Htln "sport = :$1" | grep -q . && return 0; sleep 0.05; done
  echo "nothing listens on $1" >&2
  return 1
}

stop() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# build_examples EXAMPLE...: the release build of the examples (thin LTO, one
# codegen unit, with the redis and memcached features), copied into
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
    cargo build --release --quiet --features redis,memcached "${args[@]}"
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
