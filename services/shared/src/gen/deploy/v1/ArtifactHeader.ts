// Original file: proto/deploy/v1/deploy.proto


export interface ArtifactHeader {
  'name'?: (string);
  'digest'?: (string);
  'app'?: (string);
}

export interface ArtifactHeader__Output {
  'name'?: (string);
  'digest'?: (string);
  'app'?: (string);
}
