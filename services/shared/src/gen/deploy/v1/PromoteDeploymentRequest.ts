// Original file: proto/deploy/v1/deploy.proto


export interface PromoteDeploymentRequest {
  'deploymentId'?: (string);
}

export interface PromoteDeploymentRequest__Output {
  'deploymentId'?: (string);
}
