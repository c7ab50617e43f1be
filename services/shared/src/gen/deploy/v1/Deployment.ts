// Original file: proto/deploy/v1/deploy.proto

import type { Changeset as _deploy_v1_Changeset, Changeset__Output as _deploy_v1_Changeset__Output } from '../../deploy/v1/Changeset.js';
import type { Strategy as _deploy_v1_Strategy, Strategy__Output as _deploy_v1_Strategy__Output } from '../../deploy/v1/Strategy.js';
import type { DeploymentState as _deploy_v1_DeploymentState, DeploymentState__Output as _deploy_v1_DeploymentState__Output } from '../../deploy/v1/DeploymentState.js';
import type { Target as _deploy_v1_Target, Target__Output as _deploy_v1_Target__Output } from '../../deploy/v1/Target.js';
import type { TargetCount as _deploy_v1_TargetCount, TargetCount__Output as _deploy_v1_TargetCount__Output } from '../../deploy/v1/TargetCount.js';
import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from '../../google/protobuf/Timestamp.js';
import type { Release as _deploy_v1_Release, Release__Output as _deploy_v1_Release__Output } from '../../deploy/v1/Release.js';
import type { FreezeOverride as _deploy_v1_FreezeOverride, FreezeOverride__Output as _deploy_v1_FreezeOverride__Output } from '../../deploy/v1/FreezeOverride.js';
import type { Long } from '@grpc/proto-loader';

export interface Deployment {
  'id'?: (string);
  'requestId'?: (string);
  'app'?: (string);
  'environment'?: (string);
  'changeset'?: (_deploy_v1_Changeset | null);
  'strategy'?: (_deploy_v1_Strategy | null);
  'state'?: (_deploy_v1_DeploymentState);
  'message'?: (string);
  'targets'?: (_deploy_v1_Target)[];
  'counts'?: (_deploy_v1_TargetCount)[];
  'lastSequence'?: (number | string | Long);
  'createdAt'?: (_google_protobuf_Timestamp | null);
  'updatedAt'?: (_google_protobuf_Timestamp | null);
  'finishedAt'?: (_google_protobuf_Timestamp | null);
  'requestedBy'?: (string);
  'cancelRequested'?: (boolean);
  'selector'?: (string);
  'requestedByNote'?: (string);
  'cancelledBy'?: (string);
  'convergesTo'?: (string);
  'paused'?: (boolean);
  'pausedBy'?: (string);
  'awaitingPromotion'?: (boolean);
  'promoteAt'?: (_google_protobuf_Timestamp | null);
  'promotedBy'?: (string);
  'canaryTargets'?: (string)[];
  'reverts'?: (string);
  'restores'?: (_deploy_v1_Release | null);
  'revertedBy'?: (string);
  'targetCount'?: (number);
  'nextPageToken'?: (string);
  'cordonedLeftOut'?: (string)[];
  'cordonedLeftOutCount'?: (number);
  'killRequested'?: (boolean);
  'freezeOverride'?: (_deploy_v1_FreezeOverride | null);
  'cancelRevertsTo'?: (_deploy_v1_Release | null);
}

export interface Deployment__Output {
  'id'?: (string);
  'requestId'?: (string);
  'app'?: (string);
  'environment'?: (string);
  'changeset'?: (_deploy_v1_Changeset__Output);
  'strategy'?: (_deploy_v1_Strategy__Output);
  'state'?: (_deploy_v1_DeploymentState__Output);
  'message'?: (string);
  'targets'?: (_deploy_v1_Target__Output)[];
  'counts'?: (_deploy_v1_TargetCount__Output)[];
  'lastSequence'?: (string);
  'createdAt'?: (_google_protobuf_Timestamp__Output);
  'updatedAt'?: (_google_protobuf_Timestamp__Output);
  'finishedAt'?: (_google_protobuf_Timestamp__Output);
  'requestedBy'?: (string);
  'cancelRequested'?: (boolean);
  'selector'?: (string);
  'requestedByNote'?: (string);
  'cancelledBy'?: (string);
  'convergesTo'?: (string);
  'paused'?: (boolean);
  'pausedBy'?: (string);
  'awaitingPromotion'?: (boolean);
  'promoteAt'?: (_google_protobuf_Timestamp__Output);
  'promotedBy'?: (string);
  'canaryTargets'?: (string)[];
  'reverts'?: (string);
  'restores'?: (_deploy_v1_Release__Output);
  'revertedBy'?: (string);
  'targetCount'?: (number);
  'nextPageToken'?: (string);
  'cordonedLeftOut'?: (string)[];
  'cordonedLeftOutCount'?: (number);
  'killRequested'?: (boolean);
  'freezeOverride'?: (_deploy_v1_FreezeOverride__Output);
  'cancelRevertsTo'?: (_deploy_v1_Release__Output);
}
