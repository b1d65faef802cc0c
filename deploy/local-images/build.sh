#!/usr/bin/env bash
# Builds the images the compose stack pulls from a registry, locally, for a
# machine that reaches Debian's and PyPI's package mirrors but no container
# registry: a `python:3.11-slim` made from Debian bookworm with debootstrap
# (bookworm's python3 is 3.11), and stand-ins for postgres, redis and
# prometheus and nginx built on it from Debian's packages. Each image is tagged with the
# name the compose file and the Dockerfile use, and skipped when it exists,
# so a warm machine pays nothing. Also writes the podman settings that work
# without systemd (containers.conf) when that file is missing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
base_tag="docker.io/library/python:3.11-slim"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

# Without systemd: cgroupfs, file events, runc, and ulimits podman can set.
if [ ! -f /etc/containers/containers.conf ]; then
  echo "writing /etc/containers/containers.conf"
  $sudo mkdir -p /etc/containers
  $sudo tee /etc/containers/containers.conf >/dev/null <<'CONF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
fi

build_base() {
  local rootfs
  rootfs="$(mktemp -d)"
  trap '$sudo rm -rf "$rootfs"' RETURN
  echo "building $base_tag from Debian bookworm (debootstrap, a few minutes once)"
  $sudo debootstrap --variant=minbase \
    --include=python3,python3-venv,python3-pip,ca-certificates \
    bookworm "$rootfs" "$mirror" >/dev/null
  # The host's extra CAs (a TLS-inspecting egress, a company CA), so pip and
  # apt inside a build reach the same package index the host reaches.
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    $sudo cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
  fi
  $sudo chroot "$rootfs" update-ca-certificates >/dev/null
  # Look like the official image: `python` and `pip` on PATH, pip allowed to
  # install into the system interpreter, pip trusting the system CA bundle.
  $sudo ln -sf /usr/bin/python3 "$rootfs/usr/local/bin/python"
  $sudo ln -sf /usr/bin/pip3 "$rootfs/usr/local/bin/pip"
  $sudo rm -f "$rootfs"/usr/lib/python3.*/EXTERNALLY-MANAGED
  printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' | $sudo tee "$rootfs/etc/pip.conf" >/dev/null
  $sudo rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin
  $sudo tar -C "$rootfs" -c . | podman import \
    --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/bin:/usr/sbin:/bin:/sbin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    - "$base_tag" >/dev/null
}

podman image exists "$base_tag" || build_base

# name:tag  Containerfile directory
standins=(
  "docker.io/library/postgres:15 postgres"
  "docker.io/library/redis:7 redis"
  "docker.io/prom/prometheus:v2.42.0 prometheus"
  "docker.io/library/nginx:1.22 nginx"
)
for entry in "${standins[@]}"; do
  read -r tag dir <<<"$entry"
  if ! podman image exists "$tag"; then
    echo "building stand-in $tag from Debian packages"
    podman build --quiet --build-arg "BASE_IMAGE=$base_tag" -t "$tag" "$here/$dir" >/dev/null
  fi
done
