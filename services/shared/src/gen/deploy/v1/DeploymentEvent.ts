// Original file: proto/deploy/v1/deploy.proto

import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from '../../google/protobuf/Timestamp.js';
import type { TargetState as _deploy_v1_TargetState, TargetState__Output as _deploy_v1_TargetState__Output } from '../../deploy/v1/TargetState.js';
import type { DeploymentState as _deploy_v1_DeploymentState, DeploymentState__Output as _deploy_v1_DeploymentState__Output } from '../../deploy/v1/DeploymentState.js';
import type { Long } from '@grpc/proto-loader';

export interface DeploymentEvent {
  'sequence'?: (number | string | Long);
  'time'?: (_google_protobuf_Timestamp | null);
  'type'?: (string);
  'deploymentId'?: (string);
  'agentId'?: (string);
  'targetState'?: (_deploy_v1_TargetState);
  'message'?: (string);
  'deploymentState'?: (_deploy_v1_DeploymentState);
  'lines'?: (string)[];
  'agentIds'?: (string)[];
  'actor'?: (string);
}

export interface DeploymentEvent__Output {
  'sequence'?: (string);
  'time'?: (_google_protobuf_Timestamp__Output);
  'type'?: (string);
  'deploymentId'?: (string);
  'agentId'?: (string);
  'targetState'?: (_deploy_v1_TargetState__Output);
  'message'?: (string);
  'deploymentState'?: (_deploy_v1_DeploymentState__Output);
  'lines'?: (string)[];
  'agentIds'?: (string)[];
  'actor'?: (string);
}
