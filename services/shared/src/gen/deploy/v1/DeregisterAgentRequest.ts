// Original file: proto/deploy/v1/deploy.proto


export interface DeregisterAgentRequest {
  'agentId'?: (string);
}

export interface DeregisterAgentRequest__Output {
  'agentId'?: (string);
}
