#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests and drills: Debian's
# postgresql-15 binaries, its own data directory and port, run as the
# unprivileged `postgres` user, TLS on (a CA and server certificate made
# here with openssl), trust authentication on loopback only.
#
#   bash scripts/test-postgres.sh start    # idempotent; prints the admin URL
#   bash scripts/test-postgres.sh stop     # stops it and removes its directory
#   bash scripts/test-postgres.sh restart [S]  # stop -m fast, S seconds away, start (drills)
#   bash scripts/test-postgres.sh url      # the admin URL
#
# The tests read SANDBOXER_TEST_POSTGRES (this URL by default) and the CA
# at $DIR/ca.crt; each test makes its own database and drops it.
set -euo pipefail

DIR=${SANDBOXER_TEST_PG_DIR:-/tmp/sandboxer-test-pg}
PORT=${SANDBOXER_TEST_PG_PORT:-55432}
BIN=/usr/lib/postgresql/15/bin
URL="postgres://postgres@127.0.0.1:$PORT/postgres"

as_postgres() {
  if [ "$(id -un)" = postgres ]; then "$@"; else runuser -u postgres -- "$@"; fi
}

install() {
  if [ ! -x "$BIN/postgres" ]; then
    echo "test-postgres: installing postgresql-15" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 openssl >/dev/null
  fi
}

certificates() {
  # A CA of its own and a server certificate for localhost / 127.0.0.1, so
  # sslmode=verify-full can be tested against sslrootcert=$DIR/ca.crt.
  local d=$DIR/tls
  mkdir -p "$d"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=sandboxer test CA" \
    -keyout "$d/ca.key" -out "$DIR/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
    -keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$d/ext"
  openssl x509 -req -in "$d/server.csr" -CA "$DIR/ca.crt" -CAkey "$d/ca.key" \
    -CAcreateserial -days 30 -extfile "$d/ext" -out "$d/server.crt" 2>/dev/null
  chmod 600 "$d/server.key"
}

running() { as_postgres "$BIN/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; }

start() {
  install
  if [ -d "$DIR/data" ] && running; then
    echo "$URL"
    return
  fi
  if [ ! -f "$DIR/data/PG_VERSION" ]; then
    rm -rf "$DIR"
    mkdir -p "$DIR"
    certificates
    chown -R postgres:postgres "$DIR"
    as_postgres "$BIN/initdb" -D "$DIR/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
    cat >>"$DIR/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$DIR'
max_connections = 300
shared_buffers = 128MB
fsync = off
synchronous_commit = off
full_page_writes = off
ssl = on
ssl_cert_file = '$DIR/tls/server.crt'
ssl_key_file = '$DIR/tls/server.key'
EOF
    # Loopback only, TLS or not; trust is enough for a throwaway cluster.
    printf 'local all all trust\nhost all all 127.0.0.1/32 trust\n' >"$DIR/data/pg_hba.conf"
  fi
  as_postgres "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 start >/dev/null
  echo "$URL"
}

stop() {
  if [ -d "$DIR/data" ]; then
    as_postgres "$BIN/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$DIR"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  restart)
    as_postgres "$BIN/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null
    sleep "${2:-0}"
    as_postgres "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 start >/dev/null
    ;;
  url) echo "$URL" ;;
  *)
    echo "usage: $0 start|stop|restart|url" >&2
    exit 2
    ;;
esac
