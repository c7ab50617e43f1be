// Original file: proto/deploy/v1/deploy.proto


export interface GetDeploymentRequest {
  'deploymentId'?: (string);
}

export interface GetDeploymentRequest__Output {
  'deploymentId'?: (string);
}
