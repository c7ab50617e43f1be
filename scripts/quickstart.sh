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

# Debian's Chromium (the dashboard's browser test), tmux and zsh (deployctl's
# terminal test), for `npm test`; the demo needs none of them, and each test
# skips with a message without its tool.
missing=""
for tool in chromium tmux zsh; do command -v "$tool" >/dev/null || missing="$missing $tool"; done
if [ -n "$missing" ] && command -v apt-get >/dev/null; then
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  echo "quickstart: installing$missing with apt-get (for the tests)"
  $SUDO apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null || echo "quickstart: could not install$missing; the tests that need them will be skipped"
fi

npm ci
npm run demo -- "$@"
