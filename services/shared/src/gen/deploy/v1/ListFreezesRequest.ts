// Original file: proto/deploy/v1/deploy.proto


export interface ListFreezesRequest {
}

export interface ListFreezesRequest__Output {
}
