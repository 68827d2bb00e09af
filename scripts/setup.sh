#!/usr/bin/env bash
# Makes a fresh Debian 12 machine ready to run and test Sandboxer (as root):
# Docker answering, busybox-static (test image), gVisor's runsc registered,
# debootstrap, the default sandbox image `sandboxer-base:bookworm`, and a
# throwaway PostgreSQL cluster for the tests (scripts/test-postgres.sh: its
# own directory and port, as the unprivileged `postgres` user; `stop`
# removes it). Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

bash .ci/docker-setup.sh

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
# tool:package; ip, nsenter and openssl run the extra Docker Engines of the
# multi-node tests (scripts/extra-dockerd.sh), psql the drills' databases.
for pair in debootstrap:debootstrap sqlite3:sqlite3 ip:iproute2 nsenter:util-linux \
  openssl:openssl psql:postgresql-client; do
  tool=${pair%%:*} package=${pair#*:}
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "setup: installing $package"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$package"
  fi
done

image="${SANDBOXER_IMAGE:-sandboxer-base:bookworm}"
if [ "$image" = "sandboxer-base:bookworm" ]; then
  # Built when missing or made from an older recipe (its label says which).
  echo "setup: the default image $image (debootstrap + docker import when it is not current)"
  cargo run -q -p sandboxer -- image build --tag "$image" --if-outdated
elif docker image inspect "$image" >/dev/null 2>&1; then
  echo "setup: image $image is there"
else
  echo "setup: building $image from the default recipe (debootstrap + docker import)"
  cargo run -q -p sandboxer -- image build --tag "$image"
fi
echo "setup: the test PostgreSQL cluster at $(bash scripts/test-postgres.sh start)"
echo "setup: ready"
