// Original file: proto/deploy/v1/deploy.proto

import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from '../../google/protobuf/Timestamp.js';
import type { Long } from '@grpc/proto-loader';

export interface Artifact {
  'name'?: (string);
  'digest'?: (string);
  'size'?: (number | string | Long);
  'createdAt'?: (_google_protobuf_Timestamp | null);
  'hooks'?: (string)[];
  'app'?: (string);
}

export interface Artifact__Output {
  'name'?: (string);
  'digest'?: (string);
  'size'?: (string);
  'createdAt'?: (_google_protobuf_Timestamp__Output);
  'hooks'?: (string)[];
  'app'?: (string);
}
