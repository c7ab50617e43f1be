// Original file: proto/deploy/v1/deploy.proto

import type { ArtifactHeader as _deploy_v1_ArtifactHeader, ArtifactHeader__Output as _deploy_v1_ArtifactHeader__Output } from '../../deploy/v1/ArtifactHeader.js';

export interface UploadArtifactRequest {
  'header'?: (_deploy_v1_ArtifactHeader | null);
  'chunk'?: (Buffer | Uint8Array | string);
  'part'?: "header"|"chunk";
}

export interface UploadArtifactRequest__Output {
  'header'?: (_deploy_v1_ArtifactHeader__Output);
  'chunk'?: (Buffer);
  'part'?: "header"|"chunk";
}
