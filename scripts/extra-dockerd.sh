#!/usr/bin/env bash
# Extra Docker Engines on this machine, for multi-node tests and drills. Each
# is a dockerd of its own (config file, data root, exec root, containerd,
# cgroup parent) inside a network namespace of its own, so it never touches
# the host's docker0 bridge or iptables. Runs as root.
#
#   extra-dockerd.sh start NAME [--tcp]  # prints its DOCKER_HOST
#   extra-dockerd.sh load NAME IMAGE...  # copies images from the host engine
#   extra-dockerd.sh pause NAME          # stops the daemon; data, netns and
#                                        # running containers stay (--live-restore)
#   extra-dockerd.sh resume NAME         # starts it again; prints its DOCKER_HOST
#   extra-dockerd.sh stop NAME           # removes all of it; idempotent
#   extra-dockerd.sh host NAME           # its DOCKER_HOST
#   extra-dockerd.sh certs NAME          # (--tcp) the client certificate dir
#   extra-dockerd.sh ls                  # NAME HOST STATE of each engine
#
# Plain: DOCKER_HOST=unix:///run/sandboxer-engines/NAME/docker.sock.
# --tcp: a veth pair to the namespace and mutual TLS on port 2376, reached as
#   DOCKER_HOST=tcp://10.213.X.Y:2376 DOCKER_TLS_VERIFY=1
#   DOCKER_CERT_PATH=/run/sandboxer-engines/NAME/client
# (the unix socket is there too). There is no bridge network: a container
# has loopback only, or the engine's namespace with --network host. The
# storage driver is the host engine's; `docker info` shows the host's engine
# ID (dockerd 20.10 derives it from /etc/docker/key.json, not settable).
# State: /run/sandboxer-engines/NAME, exec root /run/sbx-NAME (short, for
# unix socket paths), data root /var/lib/sandboxer-engines/NAME.
set -euo pipefail

ENGINES=/run/sandboxer-engines
DATA_ROOT=/var/lib/sandboxer-engines
PORT=2376

die() {
  echo "extra-dockerd: $*" >&2
  exit 1
}

usage() {
  sed -n '7,15p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# Sets the paths and names of engine $1.
engine() {
  NAME=$1
  # Bounded so the exec root's socket paths stay under the 108-byte limit.
  [[ $NAME =~ ^[a-z0-9][a-z0-9-]{0,31}$ ]] || die "NAME must be 1-32 of [a-z0-9-]: '$NAME'"
  DIR=$ENGINES/$NAME
  EXEC=/run/sbx-$NAME
  DATA=$DATA_ROOT/$NAME
  NETNS=sbx-$NAME
  local hash
  hash=$(printf %s "$NAME" | sha256sum | cut -c1-8)
  # Interface names are at most 15 characters.
  VETH_HOST=vh-$hash
  VETH_NS=vn-$hash
}

tcp_ip() { cat "$DIR/tcp-ip" 2>/dev/null; }

docker_host() {
  if [ -f "$DIR/tcp-ip" ]; then
    echo "tcp://$(tcp_ip):$PORT"
  else
    echo "unix://$DIR/docker.sock"
  fi
}

# docker without the caller's client settings, which are for the host engine.
client() { env -u DOCKER_HOST -u DOCKER_TLS_VERIFY -u DOCKER_CERT_PATH -u DOCKER_CONTEXT docker "$@"; }

# docker against the engine by the host `start` printed (TLS when --tcp).
engine_cli() {
  if [ -f "$DIR/tcp-ip" ]; then
    client --tlsverify --tlscacert "$DIR/client/ca.pem" --tlscert "$DIR/client/cert.pem" \
      --tlskey "$DIR/client/key.pem" -H "$(docker_host)" "$@"
  else
    client -H "unix://$DIR/docker.sock" "$@"
  fi
}

local_cli() { client -H "unix://$DIR/docker.sock" "$@"; }

# The daemon's pid, only while that pid is still this engine's dockerd.
daemon_pid() {
  local pid
  pid=$(cat "$DIR/dockerd.pid" 2>/dev/null) || return 1
  [ -n "$pid" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "--pidfile $DIR/dockerd.pid " || return 1
  echo "$pid"
}

# A free /30 in 10.213.0.0/16, derived from the name so engines differ;
# sets NS_IP and HOST_IP.
pick_subnet() {
  local i h x y
  for i in $(seq 0 31); do
    h=$(printf '%s/%s' "$NAME" "$i" | sha256sum | cut -c1-4)
    x=$((16#${h:0:2}))
    y=$((16#${h:2:2} & 252))
    if [ -z "$(ip -4 -o addr show to "10.213.$x.$y/30")" ]; then
      HOST_IP=10.213.$x.$((y + 1))
      NS_IP=10.213.$x.$((y + 2))
      return 0
    fi
  done
  die "no free /30 in 10.213.0.0/16 for $NAME"
}

# A CA, a server certificate for the namespace's address and a client
# certificate, laid out as DOCKER_CERT_PATH expects under $DIR/client.
make_certs() {
  local t=$DIR/tls c=$DIR/client
  mkdir -p "$t" "$c"
  chmod 700 "$t" "$c"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
    -subj "/CN=sandboxer engine $NAME CA" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    -keyout "$t/ca-key.pem" -out "$t/ca.pem" 2>/dev/null
  sign "$t/server" "$NAME" "subjectAltName=IP:$NS_IP
extendedKeyUsage=serverAuth"
  sign "$t/client" client "extendedKeyUsage=clientAuth"
  cp "$t/ca.pem" "$c/ca.pem"
  cp "$t/client-cert.pem" "$c/cert.pem"
  cp "$t/client-key.pem" "$c/key.pem"
}

sign() {
  local stem=$1 cn=$2 ext=$3 t=$DIR/tls
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$cn" \
    -keyout "$stem-key.pem" -out "$stem.csr" 2>/dev/null
  openssl x509 -req -in "$stem.csr" -CA "$t/ca.pem" -CAkey "$t/ca-key.pem" -CAcreateserial \
    -days 30 -extfile <(printf '%s\n' "$ext") -out "$stem-cert.pem" 2>/dev/null
}

# Starts dockerd with the engine's flags (the same on every resume); sets
# LAUNCHED to its pid.
launch() {
  local args=(
    --config-file "$DIR/daemon.json"
    --data-root "$DATA"
    --exec-root "$EXEC"
    --pidfile "$DIR/dockerd.pid"
    -H "unix://$DIR/docker.sock"
    --bridge=none --iptables=false --ip6tables=false
    # Running containers survive a daemon stop (pause, drills).
    --live-restore
    # Its containers in cgroups of its own, so `stop` can find every process.
    --cgroup-parent "/sbx-$NAME"
    # Apart even if it ever shares a system containerd with the host engine.
    --containerd-namespace "sbx-$NAME"
    --containerd-plugins-namespace "sbx-$NAME-plugins"
  )
  local driver
  driver=$(cat "$DIR/storage-driver" 2>/dev/null || true)
  [ -z "$driver" ] || args+=(--storage-driver "$driver")
  if [ -f "$DIR/tcp-ip" ]; then
    args+=(-H "tcp://$(tcp_ip):$PORT" --tlsverify --tlscacert "$DIR/tls/ca.pem"
      --tlscert "$DIR/tls/server-cert.pem" --tlskey "$DIR/tls/server-key.pem")
  fi
  # nsenter --net, not `ip netns exec`: that one remounts /sys in a new mount
  # namespace, hiding the cgroup mounts, and dockerd fails. setsid and no
  # inherited streams: the daemon outlives this script, and a caller reading
  # our stdout sees its end. A caller's client settings (DOCKER_TLS_VERIFY,
  # DOCKER_CERT_PATH) would become the daemon's TLS defaults.
  echo "--- $(date -Is) dockerd ${args[*]}" >>"$DIR/dockerd.log"
  setsid nsenter --net="/run/netns/$NETNS" -- \
    env -u DOCKER_HOST -u DOCKER_TLS_VERIFY -u DOCKER_CERT_PATH dockerd "${args[@]}" \
    </dev/null >>"$DIR/dockerd.log" 2>&1 &
  LAUNCHED=$!
}

# Waits (60 s at most) until the engine answers at its DOCKER_HOST.
wait_ready() {
  local deadline=$((SECONDS + 60))
  while [ $SECONDS -lt $deadline ]; do
    engine_cli info >/dev/null 2>&1 && return 0
    kill -0 "$LAUNCHED" 2>/dev/null || return 1
    sleep 0.2
  done
  return 1
}

log_tail() {
  echo "extra-dockerd: $NAME failed to start" >&2
  [ ! -f "$DIR/dockerd.log" ] || tail -n 30 "$DIR/dockerd.log" >&2
}

# SIGTERM, SIGKILL after 10 s; returns when the daemon is gone.
stop_daemon() {
  local pid i
  pid=$(daemon_pid) || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
}

cmd_start() {
  if [ $# -lt 1 ] || [ $# -gt 2 ]; then usage; fi
  engine "$1"
  local tcp=false
  case ${2:-} in
    "") ;;
    --tcp) tcp=true ;;
    *) usage ;;
  esac
  if [ -e "$DIR" ] || [ -e "/run/netns/$NETNS" ]; then die "$NAME exists; stop it first"; fi
  mkdir -p "$DIR" "$DATA"
  # From here on, a failure takes down whatever was made.
  trap 'log_tail; ( cmd_stop "$NAME" ) >/dev/null 2>&1; exit 1' EXIT
  echo '{}' >"$DIR/daemon.json"
  # The host engine's storage driver is the one known to work here.
  docker info --format '{{.Driver}}' >"$DIR/storage-driver" 2>/dev/null || rm -f "$DIR/storage-driver"
  ip netns add "$NETNS"
  ip -n "$NETNS" link set lo up
  if $tcp; then
    pick_subnet
    ip link add "$VETH_HOST" type veth peer name "$VETH_NS" netns "$NETNS"
    ip addr add "$HOST_IP/30" dev "$VETH_HOST"
    ip link set "$VETH_HOST" up
    ip -n "$NETNS" addr add "$NS_IP/30" dev "$VETH_NS"
    ip -n "$NETNS" link set "$VETH_NS" up
    make_certs
    echo "$NS_IP" >"$DIR/tcp-ip"
  fi
  launch
  wait_ready
  trap - EXIT
  docker_host
}

cmd_resume() {
  [ $# -eq 1 ] || usage
  engine "$1"
  if [ ! -d "$DIR" ] || [ ! -e "/run/netns/$NETNS" ]; then die "no engine $NAME"; fi
  if ! daemon_pid >/dev/null; then
    launch
    if ! wait_ready; then
      log_tail
      stop_daemon
      exit 1
    fi
  fi
  docker_host
}

cmd_pause() {
  [ $# -eq 1 ] || usage
  engine "$1"
  [ -d "$DIR" ] || die "no engine $NAME"
  stop_daemon
}

cmd_load() {
  [ $# -ge 2 ] || usage
  engine "$1"
  shift
  daemon_pid >/dev/null || die "$NAME is not running"
  local image
  for image in "$@"; do
    # No registry on this machine: the host engine's copy, streamed over.
    docker save "$image" | local_cli load -q >&2
  done
}

# Kills every process of the engine: its namespace (dockerd, containerd,
# shims, fuse-overlayfs, --network host containers), its cgroups (the other
# containers) and shims by their containerd namespace. Repeated, as a shim
# may still be reaping.
kill_all() {
  local _ pids
  for _ in 1 2 3; do
    pids=$(
      {
        ip netns pids "$NETNS" 2>/dev/null
        find /sys/fs/cgroup/*/"sbx-$NAME" /sys/fs/cgroup/"sbx-$NAME" -name cgroup.procs \
          -exec cat {} + 2>/dev/null
        pgrep -f -- "-namespace sbx-$NAME " 2>/dev/null
      } | sort -u
    )
    [ -n "$pids" ] || return 0
    # A frozen cgroup would hold back the SIGKILL.
    find /sys/fs/cgroup/freezer/"sbx-$NAME" -name freezer.state 2>/dev/null |
      while read -r f; do echo THAWED >"$f"; done
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null
    sleep 0.3
  done
}

cmd_stop() {
  [ $# -eq 1 ] || usage
  engine "$1"
  # Every step is best effort: parts may already be gone.
  set +e
  trap - EXIT
  if daemon_pid >/dev/null; then
    # Through the API first, so containers, shims and mounts go cleanly.
    local ids
    ids=$(timeout 10 local_cli ps -aq 2>/dev/null)
    # shellcheck disable=SC2086
    [ -z "$ids" ] || timeout 30 local_cli rm -f $ids >/dev/null 2>&1
  fi
  stop_daemon
  # A killed shim leaves its socket behind, outside our dirs.
  local sockets
  sockets=$(find "$EXEC/containerd" -name address -exec cat {} + 2>/dev/null |
    sed -n 's#^unix://\(/run/containerd/s/[0-9a-f]*\)$#\1#p')
  kill_all
  # shellcheck disable=SC2086
  [ -z "$sockets" ] || rm -f $sockets
  # Deepest first, lazily: a busy mount must not stop the rest.
  awk -v d="$DATA" -v e="$EXEC" -v s="$DIR" \
    '{ m = $2; if (index(m, d "/") == 1 || m == d || index(m, e "/") == 1 || m == e || index(m, s "/") == 1) print length(m), m }' \
    /proc/mounts | sort -rn | cut -d' ' -f2- |
    while read -r m; do umount -l "$m" 2>/dev/null; done
  local d
  for d in /sys/fs/cgroup/*/"sbx-$NAME" /sys/fs/cgroup/"sbx-$NAME"; do
    [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  ip link del "$VETH_HOST" 2>/dev/null
  ip netns del "$NETNS" 2>/dev/null
  rm -rf "$DIR" "$EXEC" "$DATA"
  return 0
}

cmd_host() {
  [ $# -eq 1 ] || usage
  engine "$1"
  [ -d "$DIR" ] || die "no engine $NAME"
  docker_host
}

cmd_certs() {
  [ $# -eq 1 ] || usage
  engine "$1"
  [ -d "$DIR/client" ] || die "$NAME has no TLS (started without --tcp?)"
  echo "$DIR/client"
}

cmd_ls() {
  [ $# -eq 0 ] || usage
  local d state
  for d in "$ENGINES"/*/; do
    [ -d "$d" ] || continue
    engine "$(basename "$d")"
    if daemon_pid >/dev/null; then state=running; else state=paused; fi
    printf '%s\t%s\t%s\n' "$NAME" "$(docker_host)" "$state"
  done
}

[ $# -ge 1 ] || usage
command=$1
shift
case $command in
  start | load | pause | resume | stop | host | certs | ls) "cmd_$command" "$@" ;;
  *) usage ;;
esac
