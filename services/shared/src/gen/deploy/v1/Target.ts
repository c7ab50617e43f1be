// Original file: proto/deploy/v1/deploy.proto

import type { TargetState as _deploy_v1_TargetState, TargetState__Output as _deploy_v1_TargetState__Output } from '../../deploy/v1/TargetState.js';
import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from '../../google/protobuf/Timestamp.js';

export interface Target {
  'agentId'?: (string);
  'state'?: (_deploy_v1_TargetState);
  'message'?: (string);
  'dispatchedAt'?: (_google_protobuf_Timestamp | null);
  'startedAt'?: (_google_protobuf_Timestamp | null);
  'finishedAt'?: (_google_protobuf_Timestamp | null);
  'lastOutput'?: (string);
  'lateResult'?: (string);
  'rolledBack'?: (boolean);
}

export interface Target__Output {
  'agentId'?: (string);
  'state'?: (_deploy_v1_TargetState__Output);
  'message'?: (string);
  'dispatchedAt'?: (_google_protobuf_Timestamp__Output);
  'startedAt'?: (_google_protobuf_Timestamp__Output);
  'finishedAt'?: (_google_protobuf_Timestamp__Output);
  'lastOutput'?: (string);
  'lateResult'?: (string);
  'rolledBack'?: (boolean);
}
