// Original file: proto/deploy/v1/deploy.proto

import type { ArtifactRef as _deploy_v1_ArtifactRef, ArtifactRef__Output as _deploy_v1_ArtifactRef__Output } from '../../deploy/v1/ArtifactRef.js';

export interface Changeset {
  'version'?: (string);
  'artifact'?: (_deploy_v1_ArtifactRef | null);
}

export interface Changeset__Output {
  'version'?: (string);
  'artifact'?: (_deploy_v1_ArtifactRef__Output);
}
