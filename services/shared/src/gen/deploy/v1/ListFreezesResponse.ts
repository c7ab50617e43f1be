// Original file: proto/deploy/v1/deploy.proto

import type { EnvironmentFreeze as _deploy_v1_EnvironmentFreeze, EnvironmentFreeze__Output as _deploy_v1_EnvironmentFreeze__Output } from '../../deploy/v1/EnvironmentFreeze.js';

export interface ListFreezesResponse {
  'freezes'?: (_deploy_v1_EnvironmentFreeze)[];
}

export interface ListFreezesResponse__Output {
  'freezes'?: (_deploy_v1_EnvironmentFreeze__Output)[];
}
