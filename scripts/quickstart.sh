#!/usr/bin/env bash
# Quick start on a fresh Debian/Ubuntu machine with Node.js 20, Go and root
# (or sudo): builds the pinned nats-server, nats CLI and grpcurl
# (scripts/tools.sh), installs Chromium for the browser test when missing and
# the npm packages, then runs the end-to-end demo (`npm run demo`). Safe to
# run again.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "quickstart: $*" >&2; exit 1; }

command -v node >/dev/null || die "node is not installed: install Node.js 20.11 or later first"
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 20 ] || die "Node.js 20.11 or later is required (found $(node --version))"
command -v npm >/dev/null || die "npm is not installed"

# The pinned nats-server, nats CLI and grpcurl (scripts/tools.sh), built with
# Go from the module proxy into ~/.cache/nats-deploy/tools the first time
# (about 3 minutes on 2 cores), reused after that.
command -v go >/dev/null || die "go is not installed: Go 1.26 or later is needed once, to build the pinned nats-server, nats CLI and grpcurl (scripts/tools.sh)"
bash scripts/tools.sh >/dev/null
tools_bin=$(bash scripts/tools.sh --path)
export PATH="$tools_bin:$PATH"
echo "quickstart: using nats-server $(nats-server --version | sed 's/^nats-server: //'), nats CLI $(nats --version) from $tools_bin"

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
