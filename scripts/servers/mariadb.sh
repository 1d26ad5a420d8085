# shellcheck shell=bash
# A private MariaDB for the database backend's MySQL tests, sourced by
# scripts/test: its own datadir, socket and free loopback port in $TMP_DIR,
# a database named `test`. Exports MYSQL_URL; a MYSQL_URL already set is
# reused and nothing is started.

start_mariadb() {
  if [ -n "${MYSQL_URL:-}" ]; then
    log "mariadb: using MYSQL_URL from the environment"
    return 0
  fi
  need_packages mariadb-server || return 1
  local dir port user server
  dir="$TMP_DIR/my"
  mkdir -p "$dir"
  user=$(id -un)
  server=$(PATH="$PATH:/usr/sbin:/sbin" command -v mariadbd)
  if [ -z "$server" ]; then
    log "mariadb: mariadbd not found"
    return 1
  fi
  # --no-defaults first: /etc/mysql stays out of it. Root gets an empty
  # password over TCP (the default unix_socket auth refuses TCP logins).
  if ! mariadb-install-db --no-defaults --user="$user" --datadir="$dir/data" \
    --auth-root-authentication-method=normal --skip-test-db >"$dir/install.log" 2>&1; then
    log "mariadb: mariadb-install-db failed: $(tail -n 5 "$dir/install.log")"
    return 1
  fi
  pick_port port
  "$server" --no-defaults --user="$user" --datadir="$dir/data" --socket="$dir/sock" \
    --pid-file="$dir/pid" --port="$port" --bind-address=127.0.0.1 \
    --log-error="$dir/err.log" >/dev/null 2>&1 &
  PIDS+=("$!")
  if ! wait_for mariadb-admin --no-defaults -h127.0.0.1 -P"$port" -uroot ping; then
    log "mariadb: the server did not start: $(tail -n 5 "$dir/err.log")"
    return 1
  fi
  if ! mariadb --no-defaults -h127.0.0.1 -P"$port" -uroot -e 'create database test'; then
    log "mariadb: could not create the test database"
    return 1
  fi
  export MYSQL_URL="mysql://root@127.0.0.1:$port/test"
  log "mariadb: $MYSQL_URL"
}
