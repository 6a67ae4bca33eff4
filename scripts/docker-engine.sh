#!/usr/bin/env bash
# The private Docker engine of the tests, the demo and the image build: a dockerd of its own
# (its own socket, data and state), so nothing here touches a Docker engine the machine may
# already run, and its images (aimc/vllm-cpu) are kept between runs in .docker-engine/.
#
#   scripts/docker-engine.sh start    start it (if it is not running); prints its socket path
#   scripts/docker-engine.sh stop     stop the dockerd this script started (by its pid file)
#   scripts/docker-engine.sh socket   print the socket path (running or not)
#
# AIMC_DOCKER_ROOT (default: .docker-engine in this checkout) holds the engine's data.
# Needs root and the OS package docker.io (scripts/setup-docker.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
root=${AIMC_DOCKER_ROOT:-$PWD/.docker-engine}
mkdir -p "$root"
root=$(cd "$root" && pwd -P)
# containerd's sockets live under the exec root, and a socket path is at most 107 bytes:
# a short folder named after the data root, so two checkouts never share one.
tag=$(printf '%s' "$root" | sha256sum | cut -c1-12)
run="/run/aimc-docker-$tag"
[ -d /run ] && [ -w /run ] || run="/tmp/aimc-docker-$tag"
sock="$run/docker.sock"
pidfile="$run/dockerd.pid"

ours() {
  # The pid file names a live dockerd started with this exec root: ours to stop.
  local pid
  pid=$(cat "$pidfile" 2>/dev/null) || return 1
  [[ "$pid" =~ ^[1-9][0-9]*$ ]] || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ] || return 1
  tr '\0' '\n' <"/proc/$pid/cmdline" | grep -qxF -- "--exec-root=$run" || return 1
  echo "$pid"
}

case "${1:-}" in
  socket)
    echo "$sock"
    ;;
  start)
    if ours >/dev/null && docker -H "unix://$sock" version >/dev/null 2>&1; then
      echo "$sock"
      exit 0
    fi
    command -v dockerd >/dev/null || { echo "dockerd is missing: run scripts/setup-docker.sh" >&2; exit 1; }
    mkdir -p "$run"
    # The default bridge (docker0) and iptables stay on: published ports (-p) need them.
    setsid dockerd \
      --data-root="$root/data" \
      --exec-root="$run" \
      --pidfile="$pidfile" \
      --host="unix://$sock" \
      >"$root/dockerd.log" 2>&1 </dev/null &
    for _ in $(seq 1 300); do
      if docker -H "unix://$sock" version >/dev/null 2>&1; then
        echo "$sock"
        exit 0
      fi
      sleep 0.2
    done
    echo "dockerd did not start within 60 s; its log: $root/dockerd.log" >&2
    tail -n 20 "$root/dockerd.log" >&2 || true
    exit 1
    ;;
  stop)
    if pid=$(ours); then
      kill -TERM "$pid"
      for _ in $(seq 1 150); do
        kill -0 "$pid" 2>/dev/null || exit 0
        sleep 0.2
      done
      kill -KILL "$pid" 2>/dev/null || true
    fi
    ;;
  *)
    echo "usage: $0 start|stop|socket" >&2
    exit 2
    ;;
esac
