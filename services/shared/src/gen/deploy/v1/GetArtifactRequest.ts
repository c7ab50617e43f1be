// Original file: proto/deploy/v1/deploy.proto


export interface GetArtifactRequest {
  'name'?: (string);
  'digest'?: (string);
  'app'?: (string);
}

export interface GetArtifactRequest__Output {
  'name'?: (string);
  'digest'?: (string);
  'app'?: (string);
}
