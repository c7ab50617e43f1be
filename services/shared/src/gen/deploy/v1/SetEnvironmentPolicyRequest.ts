// Original file: proto/deploy/v1/deploy.proto

import type { Duration as _google_protobuf_Duration, Duration__Output as _google_protobuf_Duration__Output } from '../../google/protobuf/Duration.js';

export interface SetEnvironmentPolicyRequest {
  'environment'?: (string);
  'promoteFrom'?: (string);
  'minSoak'?: (_google_protobuf_Duration | null);
  'requireCanary'?: (boolean);
  'reason'?: (string);
  'app'?: (string);
}

export interface SetEnvironmentPolicyRequest__Output {
  'environment'?: (string);
  'promoteFrom'?: (string);
  'minSoak'?: (_google_protobuf_Duration__Output);
  'requireCanary'?: (boolean);
  'reason'?: (string);
  'app'?: (string);
}
