// Original file: proto/deploy/v1/deploy.proto

import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from '../../google/protobuf/Timestamp.js';
import type { AgentRelease as _deploy_v1_AgentRelease, AgentRelease__Output as _deploy_v1_AgentRelease__Output } from '../../deploy/v1/AgentRelease.js';
import type { AgentCordon as _deploy_v1_AgentCordon, AgentCordon__Output as _deploy_v1_AgentCordon__Output } from '../../deploy/v1/AgentCordon.js';

export interface Agent {
  'id'?: (string);
  'environment'?: (string);
  'apps'?: (string)[];
  'host'?: (string);
  'version'?: (string);
  'lastHeartbeat'?: (_google_protobuf_Timestamp | null);
  'live'?: (boolean);
  'labels'?: ({[key: string]: string});
  'currentReleases'?: ({[key: string]: string});
  'releases'?: (_deploy_v1_AgentRelease)[];
  'cordon'?: (_deploy_v1_AgentCordon | null);
}

export interface Agent__Output {
  'id'?: (string);
  'environment'?: (string);
  'apps'?: (string)[];
  'host'?: (string);
  'version'?: (string);
  'lastHeartbeat'?: (_google_protobuf_Timestamp__Output);
  'live'?: (boolean);
  'labels'?: ({[key: string]: string});
  'currentReleases'?: ({[key: string]: string});
  'releases'?: (_deploy_v1_AgentRelease__Output)[];
  'cordon'?: (_deploy_v1_AgentCordon__Output);
}
