#!/bin/sh
# Runs after the switch (and, on a rollback, in the previous release again).
echo "starting $DEPLOY_APP $DEPLOY_VERSION from $DEPLOY_RELEASE_DIR"
