// Original file: proto/deploy/v1/deploy.proto


export interface ListArtifactsRequest {
  'name'?: (string);
  'app'?: (string);
}

export interface ListArtifactsRequest__Output {
  'name'?: (string);
  'app'?: (string);
}
