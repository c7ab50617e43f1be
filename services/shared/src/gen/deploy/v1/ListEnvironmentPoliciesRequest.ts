// Original file: proto/deploy/v1/deploy.proto


export interface ListEnvironmentPoliciesRequest {
}

export interface ListEnvironmentPoliciesRequest__Output {
}
