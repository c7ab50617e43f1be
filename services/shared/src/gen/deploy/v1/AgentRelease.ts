// Original file: proto/deploy/v1/deploy.proto

import type { Release as _deploy_v1_Release, Release__Output as _deploy_v1_Release__Output } from '../../deploy/v1/Release.js';
import type { ReleaseStatus as _deploy_v1_ReleaseStatus, ReleaseStatus__Output as _deploy_v1_ReleaseStatus__Output } from '../../deploy/v1/ReleaseStatus.js';

export interface AgentRelease {
  'app'?: (string);
  'current'?: (string);
  'currentDeploymentId'?: (string);
  'currentVersion'?: (string);
  'desired'?: (_deploy_v1_Release | null);
  'status'?: (_deploy_v1_ReleaseStatus);
}

export interface AgentRelease__Output {
  'app'?: (string);
  'current'?: (string);
  'currentDeploymentId'?: (string);
  'currentVersion'?: (string);
  'desired'?: (_deploy_v1_Release__Output);
  'status'?: (_deploy_v1_ReleaseStatus__Output);
}
