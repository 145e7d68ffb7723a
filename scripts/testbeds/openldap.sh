#!/usr/bin/env bash
# A real OpenLDAP server on loopback for the LDAP capability's tests.
#   openldap.sh start   install slapd if missing, create (once) and start; prints KEY=VALUE settings
#   openldap.sh stop    stop the server started here
#   openldap.sh env     print the settings
# LDAP/StartTLS on 127.0.0.1:3890, LDAPS on 127.0.0.1:6360, base dc=example,dc=test,
# bind cn=admin,dc=example,dc=test / admin. State lives in $TB_OPENLDAP_DIR (/tmp/tenure-openldap).
set -euo pipefail
dir=${TB_OPENLDAP_DIR:-/tmp/tenure-openldap}
port=${TB_OPENLDAP_PORT:-3890}
ldaps_port=${TB_OPENLDAP_LDAPS_PORT:-6360}
base="dc=example,dc=test"
admin="cn=admin,$base"
pw=admin
log() { printf '[openldap] %s\n' "$*" >&2; }

env_out() {
  cat <<ENV
TENURE_TEST_LDAP_URL=ldap://127.0.0.1:$port
TENURE_TEST_LDAPS_URL=ldaps://127.0.0.1:$ldaps_port
TENURE_TEST_LDAP_BASE=$base
TENURE_TEST_LDAP_BIND_DN=$admin
TENURE_TEST_LDAP_PASSWORD=$pw
TENURE_TEST_LDAP_CA=$dir/tls/ca.pem
ENV
}

install() {
  command -v slapd >/dev/null && command -v slapadd >/dev/null && command -v ldapsearch >/dev/null && return
  log "installing slapd and ldap-utils"
  echo "slapd slapd/no_configuration boolean true" | debconf-set-selections
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slapd ldap-utils openssl >&2
}

init() {
  # A directory made by an older version of this script (without ppolicy) is made again.
  if [ -f "$dir/slapd.conf" ] && ! grep -q '^overlay ppolicy' "$dir/slapd.conf"; then
    stop
    rm -rf "$dir"
  fi
  [ -f "$dir/slapd.conf" ] && return
  log "creating a directory in $dir"
  mkdir -p "$dir/data" "$dir/tls" "$dir/run"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=Tenure test CA" \
    -keyout "$dir/tls/ca.key" -out "$dir/tls/ca.pem" >/dev/null 2>&1
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$dir/tls/key.pem" -out "$dir/tls/req.csr" >/dev/null 2>&1
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > "$dir/tls/san.ext"
  openssl x509 -req -in "$dir/tls/req.csr" -CA "$dir/tls/ca.pem" -CAkey "$dir/tls/ca.key" -CAcreateserial \
    -days 3650 -extfile "$dir/tls/san.ext" -out "$dir/tls/cert.pem" >/dev/null 2>&1
  cat > "$dir/slapd.conf" <<CONF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload ppolicy
pidfile $dir/run/slapd.pid
TLSCACertificateFile $dir/tls/ca.pem
TLSCertificateFile $dir/tls/cert.pem
TLSCertificateKeyFile $dir/tls/key.pem
database mdb
maxsize 104857600
suffix "$base"
rootdn "$admin"
rootpw $pw
directory $dir/data
index objectClass eq
index uid,cn,mail eq
# ppolicy: pwdAccountLockedTime locks an account (the connector's ldap profile disables that way).
overlay ppolicy
CONF
  cat > "$dir/base.ldif" <<LDIF
dn: $base
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: ou=People,$base
objectClass: organizationalUnit
ou: People

dn: ou=Groups,$base
objectClass: organizationalUnit
ou: Groups

dn: ou=Leavers,$base
objectClass: organizationalUnit
ou: Leavers
LDIF
  slapadd -f "$dir/slapd.conf" -l "$dir/base.ldif" >&2
}

running() { [ -f "$dir/run/slapd.pid" ] && kill -0 "$(cat "$dir/run/slapd.pid")" 2>/dev/null; }

start() {
  install
  init
  if ! running; then
    # 9>&-: the daemon must not inherit the start lock, or it would hold it forever.
    slapd -f "$dir/slapd.conf" -h "ldap://127.0.0.1:$port/ ldaps://127.0.0.1:$ldaps_port/" >&2 9>&-
  fi
  for _ in $(seq 1 50); do
    if LDAPTLS_CACERT="$dir/tls/ca.pem" ldapsearch -x -H "ldaps://127.0.0.1:$ldaps_port" -D "$admin" -w "$pw" \
        -b "$base" -s base '(objectClass=*)' dn >/dev/null 2>&1; then
      env_out
      return
    fi
    sleep 0.1
  done
  log "slapd did not answer on 127.0.0.1:$ldaps_port"
  exit 1
}

stop() {
  running || return 0
  local pid; pid=$(cat "$dir/run/slapd.pid")
  kill "$pid"
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}

case "${1:-}" in
  start)
    # Test processes may start it concurrently: one does the work, the others wait.
    mkdir -p "$(dirname "$dir")"
    exec 9>"$dir.lock"
    flock 9
    start
    ;;
  stop) stop ;;
  env) env_out ;;
  *) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac
