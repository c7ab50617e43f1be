// Original file: proto/deploy/v1/deploy.proto

import type { EnvironmentPolicy as _deploy_v1_EnvironmentPolicy, EnvironmentPolicy__Output as _deploy_v1_EnvironmentPolicy__Output } from '../../deploy/v1/EnvironmentPolicy.js';

export interface ListEnvironmentPoliciesResponse {
  'policies'?: (_deploy_v1_EnvironmentPolicy)[];
}

export interface ListEnvironmentPoliciesResponse__Output {
  'policies'?: (_deploy_v1_EnvironmentPolicy__Output)[];
}
