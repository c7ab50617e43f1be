// Original file: proto/deploy/v1/deploy.proto


export interface GetReleaseRequest {
  'app'?: (string);
  'environment'?: (string);
}

export interface GetReleaseRequest__Output {
  'app'?: (string);
  'environment'?: (string);
}
