// Original file: proto/deploy/v1/deploy.proto

import type { EnvironmentFreeze as _deploy_v1_EnvironmentFreeze, EnvironmentFreeze__Output as _deploy_v1_EnvironmentFreeze__Output } from '../../deploy/v1/EnvironmentFreeze.js';

export interface FreezeOverride {
  'reason'?: (string);
  'freeze'?: (_deploy_v1_EnvironmentFreeze | null);
}

export interface FreezeOverride__Output {
  'reason'?: (string);
  'freeze'?: (_deploy_v1_EnvironmentFreeze__Output);
}
