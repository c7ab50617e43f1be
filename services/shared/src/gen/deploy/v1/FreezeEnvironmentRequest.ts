// Original file: proto/deploy/v1/deploy.proto

import type { Duration as _google_protobuf_Duration, Duration__Output as _google_protobuf_Duration__Output } from '../../google/protobuf/Duration.js';
import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from '../../google/protobuf/Timestamp.js';

export interface FreezeEnvironmentRequest {
  'environment'?: (string);
  'reason'?: (string);
  'duration'?: (_google_protobuf_Duration | null);
  'until'?: (_google_protobuf_Timestamp | null);
  'name'?: (string);
  'windows'?: (string)[];
  'timeZone'?: (string);
}

export interface FreezeEnvironmentRequest__Output {
  'environment'?: (string);
  'reason'?: (string);
  'duration'?: (_google_protobuf_Duration__Output);
  'until'?: (_google_protobuf_Timestamp__Output);
  'name'?: (string);
  'windows'?: (string)[];
  'timeZone'?: (string);
}
