#!/bin/sh
# Runs after the switch (and, on rollback, in the previous release again).
echo "starting $DEPLOY_APP $DEPLOY_VERSION"
