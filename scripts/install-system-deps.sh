#!/usr/bin/env bash
# Installs the Debian packages that the tests, the demo and the benchmarks use,
# but only those that are missing, so a warm machine pays nothing.
set -euo pipefail

packages=(
  postgresql redis-server   # real servers for the integration tests; redis-server also runs
                            # the tests' Redis Cluster nodes and, with --sentinel, their sentinel
  redis-tools               # redis-cli --cluster create (tests/support/redis_cluster.py)
  chromium                  # the browser the accounts page is tested in
  nginx-light wrk           # the benchmark's yardstick and load generator
  valgrind                  # callgrind: make bench-instructions counts instructions per request
  prometheus                # promtool for the alert rule tests
  podman docker-compose     # the compose stack, run for real by make compose-test
  debootstrap               # builds the local python:3.11-slim base (no registry here)
  uidmap slirp4netns fuse-overlayfs  # what podman needs to run containers
  runc                      # the OCI runtime deploy/local-images/build.sh configures (podman alone may bring crun)
  golang-github-containernetworking-plugin-dnsname  # container names resolve on podman's CNI networks
  openssl                   # deploy/compose/make-secrets.sh (passwords, the JWT key)
)
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing Debian packages: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
