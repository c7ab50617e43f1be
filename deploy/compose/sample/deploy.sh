#!/bin/sh
# The compose agents' deploy executable for app "web" (apps.web.deploy): what
# an agent runs for a deployment without a bundle. It writes the version it
# "installed" under the agent's root, so `docker compose exec agent-1 cat
# /srv/deploy/web/VERSION` shows the result.
set -eu
echo "deploying $DEPLOY_APP $DEPLOY_VERSION on $DEPLOY_AGENT_ID (deployment $DEPLOY_ID)"
sleep 1
mkdir -p /srv/deploy/web
printf '%s\n' "$DEPLOY_VERSION" > /srv/deploy/web/VERSION.tmp
mv /srv/deploy/web/VERSION.tmp /srv/deploy/web/VERSION
echo "healthy"
