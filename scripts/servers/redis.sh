# Redis servers for the tests, sourced by scripts/test: one server
# (REDIS_URL), a primary with one replica (REDIS_REPLICA_URL, primary first)
# and a 3-node Redis Cluster (REDIS_CLUSTER_URL), on free loopback ports in
# $TMP_DIR. A URL already set in the environment is reused instead.
# The outage and fault tests start (and stop) their own redis-server, so the
# package is installed even when every URL is given.

REDIS_ARGS=(--bind 127.0.0.1 --save '' --appendonly no --repl-diskless-sync-delay 0)

# redis_start PORT DIR [ARGS...]: one redis-server as a direct child.
redis_start() {
  local port=$1 dir=$2
  shift 2
  mkdir -p "$dir"
  redis-server --port "$port" "${REDIS_ARGS[@]}" --dir "$dir" --logfile "$dir/log" "$@" &
  PIDS+=($!)
  if ! wait_for redis-cli -p "$port" ping; then
    log "redis-server on port $port did not answer; its log: $(tail -n 5 "$dir/log" 2>/dev/null)"
    return 1
  fi
}

start_redis() {
  need_packages redis-server redis-tools || return 1
  if [ -n "${REDIS_URL:-}" ]; then
    log "redis: reusing REDIS_URL"
  else
    local port
    pick_port port
    redis_start "$port" "$TMP_DIR/redis-$port" || return 1
    export REDIS_URL="redis://127.0.0.1:$port/0"
    log "redis: $REDIS_URL"
  fi
}

start_redis_replica() {
  if [ -n "${REDIS_REPLICA_URL:-}" ]; then
    log "redis primary+replica: reusing REDIS_REPLICA_URL"
    return 0
  fi
  command -v redis-server >/dev/null || return 1
  local primary replica
  pick_port primary
  pick_port replica
  redis_start "$primary" "$TMP_DIR/redis-$primary" || return 1
  redis_start "$replica" "$TMP_DIR/redis-$replica" --replicaof 127.0.0.1 "$primary" || return 1
  if ! wait_for sh -c "redis-cli -p $replica info replication | grep -q master_link_status:up"; then
    log "redis replica on $replica never linked to its primary on $primary"
    return 1
  fi
  export REDIS_REPLICA_URL="redis://127.0.0.1:$primary,127.0.0.1:$replica/0"
  log "redis primary+replica: $REDIS_REPLICA_URL"
}

start_redis_cluster() {
  if [ -n "${REDIS_CLUSTER_URL:-}" ]; then
    log "redis cluster: reusing REDIS_CLUSTER_URL"
    return 0
  fi
  command -v redis-server >/dev/null || return 1
  local nodes=() port bus
  for _ in 1 2 3; do
    pick_port port
    # The default bus port is port + 10000, which may be taken or too high.
    pick_port bus
    redis_start "$port" "$TMP_DIR/redis-cluster-$port" \
      --cluster-enabled yes --cluster-config-file nodes.conf --cluster-port "$bus" || return 1
    nodes+=("127.0.0.1:$port")
  done
  if ! redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >"$TMP_DIR/redis-cluster-create.log" 2>&1; then
    log "redis-cli --cluster create failed: $(tail -n 5 "$TMP_DIR/redis-cluster-create.log")"
    return 1
  fi
  for node in "${nodes[@]}"; do
    if ! wait_for sh -c "redis-cli -p ${node##*:} cluster info | grep -q cluster_state:ok"; then
      log "redis cluster node $node never reached cluster_state:ok"
      return 1
    fi
  done
  local IFS=,
  export REDIS_CLUSTER_URL="redis+cluster://${nodes[*]}"
  log "redis cluster: $REDIS_CLUSTER_URL"
}

# A Redis that speaks only TLS, with a certificate from a throwaway CA:
# REDIS_TLS_URL is rediss://...?ca_file=<that CA>.
start_redis_tls() {
  if [ -n "${REDIS_TLS_URL:-}" ]; then
    log "redis over TLS: reusing REDIS_TLS_URL"
    return 0
  fi
  command -v redis-server >/dev/null || return 1
  need_packages openssl || return 1
  local port dir
  pick_port port
  dir="$TMP_DIR/redis-tls-$port"
  mkdir -p "$dir"
  if ! (
    cd "$dir" &&
      openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=tower-cache test CA" \
        -keyout ca.key -out ca.pem &&
      openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout server.key -out server.csr &&
      printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >server.ext &&
      openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
        -extfile server.ext -out server.pem
  ) >"$dir/openssl.log" 2>&1; then
    log "could not make test certificates: $(tail -n 5 "$dir/openssl.log")"
    return 1
  fi
  redis-server --port 0 --tls-port "$port" "${REDIS_ARGS[@]}" --dir "$dir" --logfile "$dir/log" \
    --tls-cert-file "$dir/server.pem" --tls-key-file "$dir/server.key" \
    --tls-ca-cert-file "$dir/ca.pem" --tls-auth-clients no &
  PIDS+=($!)
  if ! wait_for redis-cli --tls --cacert "$dir/ca.pem" -h 127.0.0.1 -p "$port" ping; then
    log "redis-server over TLS on port $port did not answer; its log: $(tail -n 5 "$dir/log" 2>/dev/null)"
    return 1
  fi
  export REDIS_TLS_URL="rediss://127.0.0.1:$port/0?ca_file=$dir/ca.pem"
  log "redis over TLS: $REDIS_TLS_URL"
}
