// Original file: proto/deploy/v1/deploy.proto

import type { Changeset as _deploy_v1_Changeset, Changeset__Output as _deploy_v1_Changeset__Output } from '../../deploy/v1/Changeset.js';
import type { Strategy as _deploy_v1_Strategy, Strategy__Output as _deploy_v1_Strategy__Output } from '../../deploy/v1/Strategy.js';
import type { Duration as _google_protobuf_Duration, Duration__Output as _google_protobuf_Duration__Output } from '../../google/protobuf/Duration.js';

export interface CreateDeploymentRequest {
  'requestId'?: (string);
  'app'?: (string);
  'environment'?: (string);
  'changeset'?: (_deploy_v1_Changeset | null);
  'strategy'?: (_deploy_v1_Strategy | null);
  'targets'?: (string)[];
  'requestedBy'?: (string);
  'selector'?: (string);
  'validateOnly'?: (boolean);
  'freezeOverrideReason'?: (string);
  'promoteFrom'?: (string);
  'promoteMinSoak'?: (_google_protobuf_Duration | null);
}

export interface CreateDeploymentRequest__Output {
  'requestId'?: (string);
  'app'?: (string);
  'environment'?: (string);
  'changeset'?: (_deploy_v1_Changeset__Output);
  'strategy'?: (_deploy_v1_Strategy__Output);
  'targets'?: (string)[];
  'requestedBy'?: (string);
  'selector'?: (string);
  'validateOnly'?: (boolean);
  'freezeOverrideReason'?: (string);
  'promoteFrom'?: (string);
  'promoteMinSoak'?: (_google_protobuf_Duration__Output);
}
