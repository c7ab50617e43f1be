// Original file: proto/deploy/v1/deploy.proto

import type { Artifact as _deploy_v1_Artifact, Artifact__Output as _deploy_v1_Artifact__Output } from '../../deploy/v1/Artifact.js';

export interface ListArtifactsResponse {
  'artifacts'?: (_deploy_v1_Artifact)[];
}

export interface ListArtifactsResponse__Output {
  'artifacts'?: (_deploy_v1_Artifact__Output)[];
}
