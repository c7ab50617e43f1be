// Original file: proto/deploy/v1/deploy.proto

import type { Long } from '@grpc/proto-loader';

export interface WatchDeploymentRequest {
  'deploymentId'?: (string);
  'afterSequence'?: (number | string | Long);
}

export interface WatchDeploymentRequest__Output {
  'deploymentId'?: (string);
  'afterSequence'?: (string);
}
