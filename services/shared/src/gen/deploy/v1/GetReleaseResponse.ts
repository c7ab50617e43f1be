// Original file: proto/deploy/v1/deploy.proto

import type { Release as _deploy_v1_Release, Release__Output as _deploy_v1_Release__Output } from '../../deploy/v1/Release.js';

export interface GetReleaseResponse {
  'desired'?: (_deploy_v1_Release | null);
  'history'?: (_deploy_v1_Release)[];
  'convergence'?: (boolean);
}

export interface GetReleaseResponse__Output {
  'desired'?: (_deploy_v1_Release__Output);
  'history'?: (_deploy_v1_Release__Output)[];
  'convergence'?: (boolean);
}
