#!/usr/bin/env bash
# A real Active Directory domain controller (Debian's Samba) on loopback.
#   samba-ad.sh start   install (once), provision the domain (once), start; prints KEY=VALUE settings
#   samba-ad.sh reset   stop, restore the freshly provisioned domain, start
#   samba-ad.sh stop    stop the DC started here
#   samba-ad.sh env     print the settings
# LDAPS on 127.0.0.1:636 and LDAP/StartTLS on :389 (Samba's ports are fixed), realm EXAMPLE.TEST,
# base DC=example,DC=test with OU=People, OU=Groups and OU=Leavers, bind
# Administrator@example.test. No systemd, DNS, SMB or NetBIOS; nothing outside $TB_SAMBA_DIR
# (/tmp/tenure-samba) is written apart from the packages.
set -euo pipefail
dir=${TB_SAMBA_DIR:-/tmp/tenure-samba}
realm=EXAMPLE.TEST
domain=EXAMPLE
base="DC=example,DC=test"
admin_pw=${TB_SAMBA_ADMIN_PW:-Passw0rd!Admin}
log() { printf '[samba] %s\n' "$*" >&2; }

env_out() {
  cat <<ENV
TENURE_TEST_AD_URL=ldaps://127.0.0.1:636
TENURE_TEST_AD_STARTTLS_URL=ldap://127.0.0.1:389
TENURE_TEST_AD_BASE=$base
TENURE_TEST_AD_BIND_DN=Administrator@example.test
TENURE_TEST_AD_PASSWORD=$admin_pw
TENURE_TEST_AD_CA=$dir/tls/ca.pem
ENV
}

install() {
  command -v samba >/dev/null && command -v samba-tool >/dev/null && command -v ldapsearch >/dev/null \
    && [ -d /usr/share/samba/setup ] && return
  log "installing samba (AD DC) and ldap-utils"
  apt-get update -qq >&2
  # samba-ad-provision carries the provisioning templates that --no-install-recommends would leave out.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    samba-ad-dc samba winbind samba-ad-provision ldap-utils openssl acl >&2
}

tls() {
  mkdir -p "$dir/tls"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=Tenure test AD CA" \
    -keyout "$dir/tls/ca.key" -out "$dir/tls/ca.pem" >/dev/null 2>&1
  openssl req -newkey rsa:2048 -nodes -subj "/CN=dc1.example.test" \
    -keyout "$dir/tls/key.pem" -out "$dir/tls/req.csr" >/dev/null 2>&1
  printf 'subjectAltName=DNS:dc1.example.test,DNS:localhost,IP:127.0.0.1\n' > "$dir/tls/san.ext"
  openssl x509 -req -in "$dir/tls/req.csr" -CA "$dir/tls/ca.pem" -CAkey "$dir/tls/ca.key" -CAcreateserial \
    -days 3650 -extfile "$dir/tls/san.ext" -out "$dir/tls/cert.pem" >/dev/null 2>&1
  chmod 600 "$dir/tls/key.pem"
}

provision() {
  [ -f "$dir/pristine.tar" ] && return
  log "provisioning domain $realm in $dir (first start only)"
  rm -rf "$dir"; mkdir -p "$dir/run" "$dir/cache" "$dir/log"
  tls
  samba-tool domain provision --targetdir="$dir" --realm="$realm" --domain="$domain" \
    --server-role=dc --dns-backend=NONE --host-name=dc1 --host-ip=127.0.0.1 \
    --adminpass="$admin_pw" --use-rfc2307 \
    --option="interfaces = 127.0.0.1/8" --option="bind interfaces only = yes" \
    --option="disable netbios = yes" --option="server services = ldap, kdc" \
    --option="pid directory = $dir/run" --option="cache directory = $dir/cache" \
    --option="log file = $dir/log/log.%m" --option="prefork children = 2" \
    --option="tls enabled = yes" --option="tls keyfile = $dir/tls/key.pem" \
    --option="tls certfile = $dir/tls/cert.pem" --option="tls cafile = $dir/tls/ca.pem" >&2
  for ou in People Groups Leavers; do
    samba-tool ou create "OU=$ou,$base" -H "$dir/private/sam.ldb" >&2
  done
  (cd "$dir" && tar -cf pristine.tar etc private state bind-dns 2>/dev/null || tar -cf pristine.tar etc private state)
}

running() { [ -f "$dir/run/samba.pid" ] && kill -0 "$(cat "$dir/run/samba.pid")" 2>/dev/null; }

start() {
  install
  provision
  if ! running; then
    samba -D -s "$dir/etc/smb.conf" --option="ldap server require strong auth = yes" >&2 9>&-
  fi
  for _ in $(seq 1 150); do
    if LDAPTLS_CACERT="$dir/tls/ca.pem" ldapsearch -x -H ldaps://127.0.0.1:636 -D "Administrator@example.test" \
        -w "$admin_pw" -b "$base" -s base '(objectClass=*)' dn >/dev/null 2>&1; then
      env_out
      return
    fi
    sleep 0.1
  done
  log "samba did not answer on ldaps://127.0.0.1:636: $(tail -n 5 "$dir/log/log.samba" 2>/dev/null)"
  exit 1
}

stop() {
  running || return 0
  local pid; pid=$(cat "$dir/run/samba.pid")
  kill "$pid"
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  pkill -9 -f "samba -D -s $dir/etc/smb.conf" 2>/dev/null || true
}

reset() {
  stop
  if [ -f "$dir/pristine.tar" ]; then
    (cd "$dir" && rm -rf private state bind-dns && tar -xf pristine.tar)
  fi
  start
}

case "${1:-}" in
  start|reset)
    mkdir -p "$(dirname "$dir")"
    exec 9>"$dir.lock"
    flock 9
    "$1"
    ;;
  stop) stop ;;
  env) env_out ;;
  *) echo "usage: $0 start|reset|stop|env" >&2; exit 2 ;;
esac
