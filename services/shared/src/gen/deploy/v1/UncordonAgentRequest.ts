// Original file: proto/deploy/v1/deploy.proto


export interface UncordonAgentRequest {
  'agentId'?: (string);
}

export interface UncordonAgentRequest__Output {
  'agentId'?: (string);
}
