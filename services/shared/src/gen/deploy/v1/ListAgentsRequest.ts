// Original file: proto/deploy/v1/deploy.proto


export interface ListAgentsRequest {
  'app'?: (string);
  'environment'?: (string);
}

export interface ListAgentsRequest__Output {
  'app'?: (string);
  'environment'?: (string);
}
