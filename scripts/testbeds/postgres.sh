#!/usr/bin/env bash
# A real PostgreSQL server on loopback for the PostgreSQL store's tests.
#   postgres.sh start   install PostgreSQL (Debian's packages) if missing, create (once) and start;
#                       prints KEY=VALUE settings
#   postgres.sh stop    stop the server started here
#   postgres.sh restart restart it (fast shutdown: open connections are cut, as in a failover)
#   postgres.sh env     print the settings
# Listens on 127.0.0.1:${TB_POSTGRES_PORT:-55432} only, password authentication (scram-sha-256)
# for role tenure / tenure, database tenure. State lives in $TB_POSTGRES_DIR (/tmp/tenure-postgres).
set -euo pipefail
dir=${TB_POSTGRES_DIR:-/tmp/tenure-postgres}
port=${TB_POSTGRES_PORT:-55432}
log() { printf '[postgres] %s\n' "$*" >&2; }

env_out() {
  cat <<ENV
TENURE_TEST_POSTGRES_URL=postgres://tenure:tenure@127.0.0.1:$port/tenure
ENV
}

bindir() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
  [ -n "$d" ] && [ -x "$d/initdb" ] && echo "$d"
}

install() {
  [ -n "$(bindir)" ] && return
  log "installing PostgreSQL (Debian's packages)"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >&2
  # The package starts the distribution's own cluster; this script runs its own.
  (command -v pg_ctlcluster >/dev/null && pg_ctlcluster --force "$(ls /etc/postgresql)" main stop) >/dev/null 2>&1 || true
}

# Runs a PostgreSQL program as the unprivileged owner of the data directory (the server
# refuses to run as root).
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

init() {
  [ -f "$dir/data/PG_VERSION" ] && return
  local bin; bin=$(bindir)
  log "creating a cluster in $dir"
  mkdir -p "$dir/data" "$dir/run"
  [ "$(id -u)" = 0 ] && chown -R postgres:postgres "$dir"
  printf 'tenure\n' > "$dir/pwfile"; chmod 644 "$dir/pwfile"
  as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
    --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  cat >> "$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir/run'
max_connections = 300
shared_buffers = 128MB
CONF
}

# Statement counts for the scale-out benchmark (pg_stat_statements ships with the server);
# a cluster made before this line gets it at its next start.
track_statements() {
  grep -q "^shared_preload_libraries = 'pg_stat_statements'" "$dir/data/postgresql.conf" && return 1
  cat >> "$dir/data/postgresql.conf" <<CONF
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = all
CONF
}

running() {
  local bin; bin=$(bindir)
  as_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1
}

start() {
  install
  init
  local bin; bin=$(bindir)
  if track_statements && running; then
    restart
  fi
  if ! running; then
    log "starting on 127.0.0.1:$port"
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null
  fi
  # The role and database (once).
  if ! as_owner "$bin/psql" -h "$dir/run" -p "$port" -U postgres -Atqc \
      "SELECT 1 FROM pg_roles WHERE rolname = 'tenure'" postgres | grep -q 1; then
    as_owner "$bin/psql" -h "$dir/run" -p "$port" -U postgres -qc \
      "CREATE ROLE tenure LOGIN PASSWORD 'tenure' CREATEDB" postgres >/dev/null
    as_owner "$bin/psql" -h "$dir/run" -p "$port" -U postgres -qc \
      "CREATE DATABASE tenure OWNER tenure" postgres >/dev/null
  fi
  as_owner "$bin/psql" -h "$dir/run" -p "$port" -U postgres -qc \
    "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" tenure >/dev/null 2>&1
  as_owner "$bin/psql" -h "$dir/run" -p "$port" -U postgres -qc \
    "GRANT pg_read_all_stats TO tenure" postgres >/dev/null
  env_out
}

stop() {
  [ -f "$dir/data/PG_VERSION" ] || return 0
  local bin; bin=$(bindir) || return 0
  if running; then
    log "stopping"
    as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
  fi
}

restart() {
  local bin; bin=$(bindir)
  log "restarting"
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -m fast -w -t 60 restart >/dev/null
}

case "${1:-}" in
  start) start ;;
  restart) restart ;;
  stop) stop ;;
  env) env_out ;;
  *) echo "usage: $0 start|stop|restart|env" >&2; exit 2 ;;
esac
