# shellcheck shell=bash
# A private PostgreSQL for the database backend's tests, sourced by
# scripts/test: initdb into $TMP_DIR, the server on a free loopback port,
# a database named `test`. Exports DATABASE_URL; a DATABASE_URL already set
# is reused and nothing is started. The fault tests (tests/faults.rs) start
# (and stop) their own PostgreSQL, so the package is installed even when
# DATABASE_URL is given.

start_postgres() {
  need_packages postgresql || return 1
  if [ -n "${DATABASE_URL:-}" ]; then
    log "postgres: using DATABASE_URL from the environment"
    return 0
  fi
  local bin dir port
  bin=$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
    log "postgres: no initdb under /usr/lib/postgresql/*/bin"
    return 1
  fi
  dir="$TMP_DIR/pg"
  mkdir -p "$dir"
  # initdb and postgres refuse to run as root: run them as `postgres`.
  local as_user=() exec_as=()
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres: "$dir"
    as_user=(runuser -u postgres --)
    # setpriv execs, so $! is the server's own pid (runuser would fork).
    exec_as=(setpriv --reuid=postgres --regid=postgres --init-groups --)
  fi
  if ! "${as_user[@]}" "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-sync \
    >"$dir/initdb.log" 2>&1; then
    log "postgres: initdb failed: $(tail -n 5 "$dir/initdb.log")"
    return 1
  fi
  pick_port port
  "${exec_as[@]}" "$bin/postgres" -D "$dir/data" -p "$port" -c listen_addresses=127.0.0.1 \
    -c unix_socket_directories="$dir" -c fsync=off >"$dir/server.log" 2>&1 &
  INT_PIDS+=("$!")
  if ! wait_for "$bin/pg_isready" -h 127.0.0.1 -p "$port"; then
    log "postgres: the server did not start: $(tail -n 5 "$dir/server.log")"
    return 1
  fi
  if ! "$bin/psql" -q "postgres://postgres@127.0.0.1:$port/postgres" -c 'create database test' >/dev/null; then
    log "postgres: could not create the test database"
    return 1
  fi
  export DATABASE_URL="postgres://postgres@127.0.0.1:$port/test"
  log "postgres: $DATABASE_URL"
}
