#!/usr/bin/env bash
# Runs a Makefile target (demo, test, build, deps, ...) on a machine that may
# not have make yet: installs it first (with sudo when not root).
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v make >/dev/null 2>&1; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends make
fi
exec make "$@"
