#!/usr/bin/env bash
# Quick start on a fresh Debian/Ubuntu machine with Node.js 20 and root (or
# sudo): installs nats-server (and Chromium, for the browser test) when
# missing, the npm packages, then runs
# the end-to-end demo (`npm run demo`). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "quickstart: $*" >&2; exit 1; }

command -v node >/dev/null || die "node is not installed: install Node.js 20.11 or later first"
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 20 ] || die "Node.js 20.11 or later is required (found $(node --version))"
command -v npm >/dev/null || die "npm is not installed"

# Debian installs it in /usr/sbin, which is not on every user's PATH.
find_nats() {
  if [ -n "${NATS_SERVER_BIN:-}" ] || command -v nats-server >/dev/null; then return 0; fi
  if [ -x /usr/sbin/nats-server ]; then export NATS_SERVER_BIN=/usr/sbin/nats-server; return 0; fi
  return 1
}

if ! find_nats; then
  command -v apt-get >/dev/null || die "nats-server is missing and apt-get is not available: install nats-server (https://github.com/nats-io/nats-server/releases) and put it on PATH"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  echo "quickstart: installing nats-server with apt-get"
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y nats-server
  find_nats || die "nats-server was installed but is not on PATH"
fi
echo "quickstart: using $("${NATS_SERVER_BIN:-nats-server}" --version)"

# Debian's Chromium, for the dashboard's browser test in `npm test` (the demo
# does not need it; the test skips with a message without it).
if ! command -v chromium >/dev/null && command -v apt-get >/dev/null; then
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  echo "quickstart: installing chromium with apt-get (for the browser test)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null || echo "quickstart: chromium could not be installed; the dashboard browser test will be skipped"
fi

npm ci
npm run demo -- "$@"
