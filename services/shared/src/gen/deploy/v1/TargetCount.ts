// Original file: proto/deploy/v1/deploy.proto

import type { TargetState as _deploy_v1_TargetState, TargetState__Output as _deploy_v1_TargetState__Output } from '../../deploy/v1/TargetState.js';

export interface TargetCount {
  'state'?: (_deploy_v1_TargetState);
  'count'?: (number);
}

export interface TargetCount__Output {
  'state'?: (_deploy_v1_TargetState__Output);
  'count'?: (number);
}
