#!/bin/sh
# Runs in the new release before the switch.
echo "installing $DEPLOY_APP $DEPLOY_VERSION on $DEPLOY_AGENT_ID"
