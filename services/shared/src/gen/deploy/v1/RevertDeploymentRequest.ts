// Original file: proto/deploy/v1/deploy.proto


export interface RevertDeploymentRequest {
  'deploymentId'?: (string);
  'requestedBy'?: (string);
}

export interface RevertDeploymentRequest__Output {
  'deploymentId'?: (string);
  'requestedBy'?: (string);
}
