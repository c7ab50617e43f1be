// Original file: proto/deploy/v1/deploy.proto

import type { TargetState as _deploy_v1_TargetState, TargetState__Output as _deploy_v1_TargetState__Output } from '../../deploy/v1/TargetState.js';

export interface GetDeploymentRequest {
  'deploymentId'?: (string);
  'pageSize'?: (number);
  'pageToken'?: (string);
  'targetState'?: (_deploy_v1_TargetState);
}

export interface GetDeploymentRequest__Output {
  'deploymentId'?: (string);
  'pageSize'?: (number);
  'pageToken'?: (string);
  'targetState'?: (_deploy_v1_TargetState__Output);
}
