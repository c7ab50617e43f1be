// Original file: proto/deploy/v1/deploy.proto


export interface PauseDeploymentRequest {
  'deploymentId'?: (string);
  'reason'?: (string);
}

export interface PauseDeploymentRequest__Output {
  'deploymentId'?: (string);
  'reason'?: (string);
}
