// Original file: proto/deploy/v1/deploy.proto

import type { Agent as _deploy_v1_Agent, Agent__Output as _deploy_v1_Agent__Output } from '../../deploy/v1/Agent.js';

export interface ListAgentsResponse {
  'agents'?: (_deploy_v1_Agent)[];
  'nextPageToken'?: (string);
  'total'?: (number);
  'live'?: (number);
}

export interface ListAgentsResponse__Output {
  'agents'?: (_deploy_v1_Agent__Output)[];
  'nextPageToken'?: (string);
  'total'?: (number);
  'live'?: (number);
}
