#!/usr/bin/env bash
# A real SCIM 2.0 server (scim2-server from PyPI, in memory) on loopback, behind
# scim_server.py's test-control layer (fault injection, a no-PATCH mode, a request log).
#   scim2-server.sh start   install (once, into a private venv) and start; prints KEY=VALUE settings
#   scim2-server.sh stop    stop the server started here
#   scim2-server.sh env     print the settings
# Every test uses its own tenant: http://127.0.0.1:$port/<tenant>/v2 (created on first use).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=${TB_SCIM_DIR:-/tmp/tenure-scim}
venv=${TB_SCIM_VENV:-$(cd "$here/../.." && pwd)/target/tools/scim-venv}
port=${TB_SCIM_PORT:-18080}
token=${TB_SCIM_TOKEN:-testtoken}
SCIM2_SERVER_VERSION=0.8.3
log() { printf '[scim] %s\n' "$*" >&2; }

env_out() {
  cat <<ENV
TENURE_TEST_SCIM_BASE=http://127.0.0.1:$port
TENURE_TEST_SCIM_TOKEN=$token
ENV
}

install() {
  "$venv/bin/python" -c "import scim2_server" 2>/dev/null && return
  python3 -c 'import venv, ensurepip' 2>/dev/null || {
    log "installing python3-venv"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >&2
  }
  log "installing scim2-server $SCIM2_SERVER_VERSION into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "scim2-server==$SCIM2_SERVER_VERSION" >&2
}

running() { [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; }

answers() {
  python3 - "$port" <<'PY' 2>/dev/null
import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/ready/v2/ServiceProviderConfig", timeout=1).read()
PY
}

start() {
  install
  mkdir -p "$dir"
  if ! running; then
    # 9>&-: the server must not inherit the start lock.
    nohup "$venv/bin/python" "$here/scim_server.py" --hostname 127.0.0.1 --port "$port" \
      --bearer-token "$token" --dynamic-tenants > "$dir/server.log" 2>&1 9>&- &
    echo $! > "$dir/pid"
  fi
  for _ in $(seq 1 100); do
    if answers; then env_out; return; fi
    running || { log "scim2-server exited: $(tail -n 5 "$dir/server.log")"; exit 1; }
    sleep 0.1
  done
  log "scim2-server did not answer on 127.0.0.1:$port"
  exit 1
}

stop() {
  running || return 0
  local pid; pid=$(cat "$dir/pid")
  kill "$pid"
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || { rm -f "$dir/pid"; return 0; }; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$dir/pid"
}

case "${1:-}" in
  start)
    mkdir -p "$(dirname "$dir")"
    exec 9>"$dir.lock"
    flock 9
    start
    ;;
  stop) stop ;;
  env) env_out ;;
  *) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac
