#!/usr/bin/env bash
# A real SMTP server (aiosmtpd from PyPI) on loopback, with a CA-signed certificate for
# localhost: STARTTLS required then AUTH on one port, TLS from the first byte (SMTPS) on
# another; every message received is appended to a mailbox file (JSON lines).
#   smtp.sh start   install (once, into a private venv) and start; prints KEY=VALUE settings
#   smtp.sh stop    stop the server started here
#   smtp.sh env     print the settings
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=${TB_SMTP_DIR:-/tmp/tenure-smtp}
venv=${TB_SMTP_VENV:-$(cd "$here/../.." && pwd)/target/tools/smtp-venv}
starttls_port=${TB_SMTP_PORT:-18587}
tls_port=${TB_SMTPS_PORT:-18465}
user=tenure-mailer
password=smtp-test-password
AIOSMTPD_VERSION=1.4.6
log() { printf '[smtp] %s\n' "$*" >&2; }

env_out() {
  cat <<ENV
TENURE_TEST_SMTP_HOST=localhost
TENURE_TEST_SMTP_STARTTLS_PORT=$starttls_port
TENURE_TEST_SMTP_TLS_PORT=$tls_port
TENURE_TEST_SMTP_USER=$user
TENURE_TEST_SMTP_PASSWORD=$password
TENURE_TEST_SMTP_CA=$dir/tls/ca.pem
TENURE_TEST_SMTP_MAILBOX=$dir/mailbox.jsonl
ENV
}

install() {
  "$venv/bin/python" -c "import aiosmtpd" 2>/dev/null && return
  python3 -c 'import venv, ensurepip' 2>/dev/null || {
    log "installing python3-venv"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >&2
  }
  log "installing aiosmtpd $AIOSMTPD_VERSION into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "aiosmtpd==$AIOSMTPD_VERSION" >&2
}

certificates() {
  [ -f "$dir/tls/cert.pem" ] && return
  command -v openssl >/dev/null || {
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssl >&2
  }
  mkdir -p "$dir/tls"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=Tenure test SMTP CA" \
    -keyout "$dir/tls/ca.key" -out "$dir/tls/ca.pem" >/dev/null 2>&1
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$dir/tls/key.pem" \
    -out "$dir/tls/req.csr" >/dev/null 2>&1
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' > "$dir/tls/ext.cnf"
  openssl x509 -req -in "$dir/tls/req.csr" -CA "$dir/tls/ca.pem" -CAkey "$dir/tls/ca.key" -CAcreateserial \
    -days 3650 -extfile "$dir/tls/ext.cnf" -out "$dir/tls/cert.pem" >/dev/null 2>&1
}

running() { [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; }

answers() {
  python3 - "$starttls_port" <<'PY' 2>/dev/null
import socket, sys
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1) as s:
    assert s.recv(100).startswith(b"220")
PY
}

start() {
  install
  certificates
  mkdir -p "$dir"
  touch "$dir/mailbox.jsonl"
  if ! running; then
    # 9>&-: the server must not inherit the start lock.
    nohup "$venv/bin/python" "$here/smtp_server.py" --starttls-port "$starttls_port" --tls-port "$tls_port" \
      --cert "$dir/tls/cert.pem" --key "$dir/tls/key.pem" --user "$user" --password "$password" \
      --mailbox "$dir/mailbox.jsonl" > "$dir/server.log" 2>&1 9>&- &
    echo $! > "$dir/pid"
  fi
  for _ in $(seq 1 100); do
    if answers; then env_out; return; fi
    running || { log "the SMTP server exited: $(tail -n 5 "$dir/server.log")"; exit 1; }
    sleep 0.1
  done
  log "the SMTP server did not answer on 127.0.0.1:$starttls_port"
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
