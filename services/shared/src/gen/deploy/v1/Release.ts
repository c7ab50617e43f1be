// Original file: proto/deploy/v1/deploy.proto

import type { ArtifactRef as _deploy_v1_ArtifactRef, ArtifactRef__Output as _deploy_v1_ArtifactRef__Output } from '../../deploy/v1/ArtifactRef.js';
import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from '../../google/protobuf/Timestamp.js';
import type { Release as _deploy_v1_Release, Release__Output as _deploy_v1_Release__Output } from '../../deploy/v1/Release.js';
import type { Long } from '@grpc/proto-loader';

export interface Release {
  'app'?: (string);
  'environment'?: (string);
  'deploymentId'?: (string);
  'version'?: (string);
  'artifact'?: (_deploy_v1_ArtifactRef | null);
  'release'?: (string);
  'succeededAt'?: (_google_protobuf_Timestamp | null);
  'finishedSequence'?: (number | string | Long);
  'selection'?: (string);
  'selector'?: (string);
  'previous'?: (_deploy_v1_Release | null);
}

export interface Release__Output {
  'app'?: (string);
  'environment'?: (string);
  'deploymentId'?: (string);
  'version'?: (string);
  'artifact'?: (_deploy_v1_ArtifactRef__Output);
  'release'?: (string);
  'succeededAt'?: (_google_protobuf_Timestamp__Output);
  'finishedSequence'?: (string);
  'selection'?: (string);
  'selector'?: (string);
  'previous'?: (_deploy_v1_Release__Output);
}
