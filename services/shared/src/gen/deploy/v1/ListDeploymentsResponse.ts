// Original file: proto/deploy/v1/deploy.proto

import type { Deployment as _deploy_v1_Deployment, Deployment__Output as _deploy_v1_Deployment__Output } from '../../deploy/v1/Deployment.js';

export interface ListDeploymentsResponse {
  'deployments'?: (_deploy_v1_Deployment)[];
  'nextPageToken'?: (string);
}

export interface ListDeploymentsResponse__Output {
  'deployments'?: (_deploy_v1_Deployment__Output)[];
  'nextPageToken'?: (string);
}
