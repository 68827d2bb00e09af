#!/usr/bin/env bash
# Makes this machine ready for the Docker adapter's tests: Docker answering,
# Debian's static busybox (the test image is built from it by the tests) and
# gVisor's runsc registered as runtime `runsc` with --network=none.
# Idempotent; run as root on Debian 12. Builds no image.
set -euo pipefail

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
installed busybox-static || missing+=(busybox-static)
command -v runsc >/dev/null 2>&1 || missing+=(runsc)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "docker-setup: installing ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}"
fi

# Docker must answer; start dockerd if it is installed but not running.
if ! docker info >/dev/null 2>&1; then
  if command -v dockerd >/dev/null 2>&1; then
    echo "docker-setup: starting dockerd"
    as_root sh -c 'nohup dockerd >/var/log/dockerd.log 2>&1 &'
    for _ in $(seq 1 60); do
      docker info >/dev/null 2>&1 && break
      sleep 1
    done
  fi
  if ! docker info >/dev/null 2>&1; then
    echo "docker-setup: Docker is required for the tests (the Docker Engine must answer on its socket; install docker.io and start dockerd)" >&2
    exit 1
  fi
fi

# Register runsc with --network=none (runsc on these machines has no
# network stack of its own), keeping every other key of daemon.json.
config=/etc/docker/daemon.json
changed=$(as_root python3 - "$config" "$(command -v runsc)" <<'PY'
import json, os, sys
path, runsc = sys.argv[1], sys.argv[2]
data = {}
if os.path.exists(path) and os.path.getsize(path) > 0:
    with open(path) as f:
        data = json.load(f)
runtimes = data.setdefault("runtimes", {})
if "runsc" in runtimes:
    print("no")
    sys.exit(0)
runtimes["runsc"] = {"path": runsc, "runtimeArgs": ["--network=none"]}
os.makedirs(os.path.dirname(path), exist_ok=True)
tmp = path + ".tmp"
with open(tmp, "w") as f:
    json.dump(data, f, indent=2)
os.replace(tmp, path)
print("yes")
PY
)
if [ "$changed" = yes ]; then
  echo "docker-setup: registered runtime runsc; reloading dockerd"
  pid=$(cat /var/run/docker.pid 2>/dev/null || pidof dockerd || true)
  [ -n "$pid" ] && as_root kill -HUP "$pid"
  for _ in $(seq 1 30); do
    docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q '"runsc"' && break
    sleep 1
  done
fi
if ! docker info --format '{{json .Runtimes}}' | grep -q '"runsc"'; then
  echo "docker-setup: runtime runsc is not registered with dockerd" >&2
  exit 1
fi
echo "docker-setup: ready (runtimes: $(docker info --format '{{range $k, $v := .Runtimes}}{{$k}} {{end}}'))"
