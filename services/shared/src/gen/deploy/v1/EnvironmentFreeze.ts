// Original file: proto/deploy/v1/deploy.proto

import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from '../../google/protobuf/Timestamp.js';

export interface EnvironmentFreeze {
  'environment'?: (string);
  'frozen'?: (boolean);
  'reason'?: (string);
  'by'?: (string);
  'at'?: (_google_protobuf_Timestamp | null);
  'until'?: (_google_protobuf_Timestamp | null);
  'name'?: (string);
  'windows'?: (string)[];
  'timeZone'?: (string);
  'inForce'?: (boolean);
}

export interface EnvironmentFreeze__Output {
  'environment'?: (string);
  'frozen'?: (boolean);
  'reason'?: (string);
  'by'?: (string);
  'at'?: (_google_protobuf_Timestamp__Output);
  'until'?: (_google_protobuf_Timestamp__Output);
  'name'?: (string);
  'windows'?: (string)[];
  'timeZone'?: (string);
  'inForce'?: (boolean);
}
