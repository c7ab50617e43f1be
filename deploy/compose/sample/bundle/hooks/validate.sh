#!/bin/sh
# A failing validate rolls back to the previous release: put a file named
# FAIL_VALIDATE in the bundle to see it.
if [ -f "$DEPLOY_RELEASE_DIR/FAIL_VALIDATE" ]; then
  echo "health check failed: FAIL_VALIDATE present" >&2
  exit 1
fi
test -f "$DEPLOY_RELEASE_DIR/index.html"
echo "healthy"
