# memcached servers for the tests, sourced by scripts/test: three instances on
# free loopback ports. MEMCACHED_URL is the first alone, MEMCACHED_URLS all
# three. URLs already set in the environment are reused instead. The outage,
# hashing and fault tests start (and stop) their own memcached, so the package
# is installed even when the URLs are given.

# memcached_start PORT: one memcached as a direct child (64 MiB, 1 MiB items).
memcached_start() {
  local port=$1
  memcached -u nobody -l 127.0.0.1 -p "$port" -U 0 -m 64 &
  PIDS+=($!)
  if ! wait_for bash -c "exec 3<>/dev/tcp/127.0.0.1/$port"; then
    log "memcached on port $port did not accept connections"
    return 1
  fi
}

start_memcached() {
  need_packages memcached || return 1
  if [ -n "${MEMCACHED_URL:-}" ] && [ -n "${MEMCACHED_URLS:-}" ]; then
    log "memcached: reusing MEMCACHED_URL and MEMCACHED_URLS"
    return 0
  fi
  local port servers=()
  for _ in 1 2 3; do
    pick_port port
    memcached_start "$port" || return 1
    servers+=("127.0.0.1:$port")
  done
  local IFS=,
  export MEMCACHED_URL="${MEMCACHED_URL:-memcached://${servers[0]}}"
  export MEMCACHED_URLS="${MEMCACHED_URLS:-memcached://${servers[*]}}"
  log "memcached: $MEMCACHED_URL and $MEMCACHED_URLS"
}
