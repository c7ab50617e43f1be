// Original file: proto/deploy/v1/deploy.proto

import type { Duration as _google_protobuf_Duration, Duration__Output as _google_protobuf_Duration__Output } from '../../google/protobuf/Duration.js';

export interface Strategy {
  'maxConcurrency'?: (number);
  'maxFailures'?: (number);
  'deliveryTimeout'?: (_google_protobuf_Duration | null);
  'applyTimeout'?: (_google_protobuf_Duration | null);
  'maxConcurrencyPercent'?: (string);
  'maxFailuresPercent'?: (string);
  'canary'?: (number);
  'canaryPercent'?: (string);
  'canarySoak'?: (_google_protobuf_Duration | null);
  'autoRevert'?: (boolean);
  'maxPause'?: (_google_protobuf_Duration | null);
  'onlyOutdated'?: (boolean);
  'ignoreStopFailures'?: (boolean);
  'soak'?: (_google_protobuf_Duration | null);
  '_maxConcurrency'?: "maxConcurrency";
  '_maxFailures'?: "maxFailures";
  '_canary'?: "canary";
}

export interface Strategy__Output {
  'maxConcurrency'?: (number);
  'maxFailures'?: (number);
  'deliveryTimeout'?: (_google_protobuf_Duration__Output);
  'applyTimeout'?: (_google_protobuf_Duration__Output);
  'maxConcurrencyPercent'?: (string);
  'maxFailuresPercent'?: (string);
  'canary'?: (number);
  'canaryPercent'?: (string);
  'canarySoak'?: (_google_protobuf_Duration__Output);
  'autoRevert'?: (boolean);
  'maxPause'?: (_google_protobuf_Duration__Output);
  'onlyOutdated'?: (boolean);
  'ignoreStopFailures'?: (boolean);
  'soak'?: (_google_protobuf_Duration__Output);
  '_maxConcurrency'?: "maxConcurrency";
  '_maxFailures'?: "maxFailures";
  '_canary'?: "canary";
}
