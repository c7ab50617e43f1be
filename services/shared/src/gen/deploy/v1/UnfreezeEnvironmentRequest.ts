// Original file: proto/deploy/v1/deploy.proto


export interface UnfreezeEnvironmentRequest {
  'environment'?: (string);
  'name'?: (string);
}

export interface UnfreezeEnvironmentRequest__Output {
  'environment'?: (string);
  'name'?: (string);
}
