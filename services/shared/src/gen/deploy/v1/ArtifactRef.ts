// Original file: proto/deploy/v1/deploy.proto


export interface ArtifactRef {
  'name'?: (string);
  'digest'?: (string);
}

export interface ArtifactRef__Output {
  'name'?: (string);
  'digest'?: (string);
}
