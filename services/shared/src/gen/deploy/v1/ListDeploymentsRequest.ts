// Original file: proto/deploy/v1/deploy.proto

import type { DeploymentState as _deploy_v1_DeploymentState, DeploymentState__Output as _deploy_v1_DeploymentState__Output } from '../../deploy/v1/DeploymentState.js';

export interface ListDeploymentsRequest {
  'app'?: (string);
  'environment'?: (string);
  'state'?: (_deploy_v1_DeploymentState);
  'pageSize'?: (number);
  'pageToken'?: (string);
  'agentId'?: (string);
}

export interface ListDeploymentsRequest__Output {
  'app'?: (string);
  'environment'?: (string);
  'state'?: (_deploy_v1_DeploymentState__Output);
  'pageSize'?: (number);
  'pageToken'?: (string);
  'agentId'?: (string);
}
