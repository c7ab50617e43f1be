// Original file: proto/deploy/v1/deploy.proto


export interface Changeset {
  'version'?: (string);
}

export interface Changeset__Output {
  'version'?: (string);
}
