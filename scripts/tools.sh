#!/usr/bin/env bash
# Installs the pinned external tools the project is tested with, built with
# `go install` from the Go module proxy into a cache outside the repository.
# The versions below are the only place they are named.
#
#   scripts/tools.sh            build what is missing, print `export PATH=…`
#   scripts/tools.sh --path     print only the bin directory (for scripts)
#
# Cache: $DEPLOY_TOOLS_CACHE, else $XDG_CACHE_HOME/nats-deploy/tools, else
# ~/.cache/nats-deploy/tools. Each tool@version has its own directory, so a
# version bump builds the new one and a second run with nothing new takes
# well under a second.
set -euo pipefail
# nats-server 2.15 and natscli 0.5.0 declare go 1.26.0 in their go.mod.

# nats-server: the newest release line that builds on Go 1.26 (2.15.x); our
# minimum supported server is 2.11 (services/shared/src/server-version.ts).
NATS_SERVER_VERSION=v2.15.2
# nats CLI: v0.5.0, not v0.5.1 (not served by the module proxy here).
NATSCLI_VERSION=v0.5.0
GRPCURL_VERSION=v1.9.4
GRPC_HEALTH_PROBE_VERSION=v0.4.62

cache="${DEPLOY_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nats-deploy/tools}"
bin="$cache/bin"
mkdir -p "$bin"

install_tool() { # name module@version
  local name=$1 spec=$2
  local dir="$cache/$name@${spec##*@}"
  if [[ ! -x "$dir/$name" ]]; then
    if ! command -v go >/dev/null 2>&1; then
      echo "tools.sh: go is not installed; it is needed to build $spec" >&2
      exit 1
    fi
    echo "tools.sh: building $spec (first run only)" >&2
    local start=$SECONDS
    mkdir -p "$dir"
    # CGO off: static binaries, no C toolchain needed.
    CGO_ENABLED=0 GOBIN="$dir" GOFLAGS=-trimpath go install "$spec" >&2
    echo "tools.sh: built $name in $((SECONDS - start)) s" >&2
  fi
  ln -sfn "$dir/$name" "$bin/$name"
}

# Built one after another: in parallel they contend for the machine's 2 cores
# and the go build cache lock, and take no less time.
install_tool nats-server "github.com/nats-io/nats-server/v2@$NATS_SERVER_VERSION"
install_tool nats "github.com/nats-io/natscli/nats@$NATSCLI_VERSION"
install_tool grpcurl "github.com/fullstorydev/grpcurl/cmd/grpcurl@$GRPCURL_VERSION"
install_tool grpc-health-probe "github.com/grpc-ecosystem/grpc-health-probe@$GRPC_HEALTH_PROBE_VERSION"

if [[ "${1:-}" == "--path" ]]; then
  echo "$bin"
else
  echo "export PATH=\"$bin:\$PATH\""
fi
