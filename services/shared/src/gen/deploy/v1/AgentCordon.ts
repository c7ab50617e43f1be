// Original file: proto/deploy/v1/deploy.proto

import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from '../../google/protobuf/Timestamp.js';

export interface AgentCordon {
  'reason'?: (string);
  'cordonedBy'?: (string);
  'cordonedAt'?: (_google_protobuf_Timestamp | null);
}

export interface AgentCordon__Output {
  'reason'?: (string);
  'cordonedBy'?: (string);
  'cordonedAt'?: (_google_protobuf_Timestamp__Output);
}
