// Original file: proto/deploy/v1/deploy.proto


export interface CordonAgentRequest {
  'agentId'?: (string);
  'reason'?: (string);
}

export interface CordonAgentRequest__Output {
  'agentId'?: (string);
  'reason'?: (string);
}
