// Original file: proto/deploy/v1/deploy.proto

import type { Strategy as _deploy_v1_Strategy, Strategy__Output as _deploy_v1_Strategy__Output } from '../../deploy/v1/Strategy.js';

export interface RollbackReleaseRequest {
  'requestId'?: (string);
  'app'?: (string);
  'environment'?: (string);
  'strategy'?: (_deploy_v1_Strategy | null);
  'requestedBy'?: (string);
  'to'?: (string);
}

export interface RollbackReleaseRequest__Output {
  'requestId'?: (string);
  'app'?: (string);
  'environment'?: (string);
  'strategy'?: (_deploy_v1_Strategy__Output);
  'requestedBy'?: (string);
  'to'?: (string);
}
