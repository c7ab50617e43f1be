// Original file: proto/deploy/v1/deploy.proto

import type { ReleaseStatus as _deploy_v1_ReleaseStatus, ReleaseStatus__Output as _deploy_v1_ReleaseStatus__Output } from '../../deploy/v1/ReleaseStatus.js';

export interface ListAgentsRequest {
  'app'?: (string);
  'environment'?: (string);
  'selector'?: (string);
  'status'?: (_deploy_v1_ReleaseStatus);
  'pageSize'?: (number);
  'pageToken'?: (string);
}

export interface ListAgentsRequest__Output {
  'app'?: (string);
  'environment'?: (string);
  'selector'?: (string);
  'status'?: (_deploy_v1_ReleaseStatus__Output);
  'pageSize'?: (number);
  'pageToken'?: (string);
}
