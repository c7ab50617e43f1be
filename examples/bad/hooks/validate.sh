#!/bin/sh
# Fails when the bundle carries a FAIL_VALIDATE file: the agent then switches
# back to the previous release.
if [ -f "$DEPLOY_RELEASE_DIR/FAIL_VALIDATE" ]; then
  echo "health check failed: FAIL_VALIDATE present" >&2
  exit 1
fi
echo "healthy"
