// Original file: proto/deploy/v1/deploy.proto


export interface ResumeDeploymentRequest {
  'deploymentId'?: (string);
}

export interface ResumeDeploymentRequest__Output {
  'deploymentId'?: (string);
}
