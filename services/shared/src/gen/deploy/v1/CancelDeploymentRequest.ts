// Original file: proto/deploy/v1/deploy.proto


export interface CancelDeploymentRequest {
  'deploymentId'?: (string);
  'reason'?: (string);
  'killRunning'?: (boolean);
  'revert'?: (boolean);
}

export interface CancelDeploymentRequest__Output {
  'deploymentId'?: (string);
  'reason'?: (string);
  'killRunning'?: (boolean);
  'revert'?: (boolean);
}
