#!/usr/bin/env bash
# Debian packages and services the sandbox needs on the machine running the
# tests: docker.io (a real Docker daemon for the systemd hosts), debootstrap
# (to build the base image). Starts dockerd when it is not running.
set -euo pipefail
need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
command -v git >/dev/null 2>&1 || need+=(git)
# gpg signs the Nomad stand-in release's SHA256SUMS with a test key (tests/standins/nomad/build_release.py).
command -v gpg >/dev/null 2>&1 || need+=(gnupg)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing Debian packages: ${need[*]} (run as root, or install them)" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if ! docker info >/dev/null 2>&1; then
  mkdir -p /var/log
  nohup dockerd >/var/log/sandbox-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || { echo "dockerd did not start; see /var/log/sandbox-dockerd.log" >&2; exit 1; }
fi
echo "host deps ready: $(docker version --format 'docker {{.Server.Version}}')"
