// Original file: proto/deploy/v1/deploy.proto

import type { Duration as _google_protobuf_Duration, Duration__Output as _google_protobuf_Duration__Output } from '../../google/protobuf/Duration.js';
import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from '../../google/protobuf/Timestamp.js';

export interface EnvironmentPolicy {
  'environment'?: (string);
  'promoteFrom'?: (string);
  'minSoak'?: (_google_protobuf_Duration | null);
  'requireCanary'?: (boolean);
  'reason'?: (string);
  'by'?: (string);
  'at'?: (_google_protobuf_Timestamp | null);
  'app'?: (string);
}

export interface EnvironmentPolicy__Output {
  'environment'?: (string);
  'promoteFrom'?: (string);
  'minSoak'?: (_google_protobuf_Duration__Output);
  'requireCanary'?: (boolean);
  'reason'?: (string);
  'by'?: (string);
  'at'?: (_google_protobuf_Timestamp__Output);
  'app'?: (string);
}
