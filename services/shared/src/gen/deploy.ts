import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { Agent as _deploy_v1_Agent, Agent__Output as _deploy_v1_Agent__Output } from './deploy/v1/Agent.js';
import type { AgentCordon as _deploy_v1_AgentCordon, AgentCordon__Output as _deploy_v1_AgentCordon__Output } from './deploy/v1/AgentCordon.js';
import type { AgentRelease as _deploy_v1_AgentRelease, AgentRelease__Output as _deploy_v1_AgentRelease__Output } from './deploy/v1/AgentRelease.js';
import type { Artifact as _deploy_v1_Artifact, Artifact__Output as _deploy_v1_Artifact__Output } from './deploy/v1/Artifact.js';
import type { ArtifactHeader as _deploy_v1_ArtifactHeader, ArtifactHeader__Output as _deploy_v1_ArtifactHeader__Output } from './deploy/v1/ArtifactHeader.js';
import type { ArtifactRef as _deploy_v1_ArtifactRef, ArtifactRef__Output as _deploy_v1_ArtifactRef__Output } from './deploy/v1/ArtifactRef.js';
import type { CancelDeploymentRequest as _deploy_v1_CancelDeploymentRequest, CancelDeploymentRequest__Output as _deploy_v1_CancelDeploymentRequest__Output } from './deploy/v1/CancelDeploymentRequest.js';
import type { Changeset as _deploy_v1_Changeset, Changeset__Output as _deploy_v1_Changeset__Output } from './deploy/v1/Changeset.js';
import type { CordonAgentRequest as _deploy_v1_CordonAgentRequest, CordonAgentRequest__Output as _deploy_v1_CordonAgentRequest__Output } from './deploy/v1/CordonAgentRequest.js';
import type { CreateDeploymentRequest as _deploy_v1_CreateDeploymentRequest, CreateDeploymentRequest__Output as _deploy_v1_CreateDeploymentRequest__Output } from './deploy/v1/CreateDeploymentRequest.js';
import type { DeployServiceClient as _deploy_v1_DeployServiceClient, DeployServiceDefinition as _deploy_v1_DeployServiceDefinition } from './deploy/v1/DeployService.js';
import type { Deployment as _deploy_v1_Deployment, Deployment__Output as _deploy_v1_Deployment__Output } from './deploy/v1/Deployment.js';
import type { DeploymentEvent as _deploy_v1_DeploymentEvent, DeploymentEvent__Output as _deploy_v1_DeploymentEvent__Output } from './deploy/v1/DeploymentEvent.js';
import type { DeregisterAgentRequest as _deploy_v1_DeregisterAgentRequest, DeregisterAgentRequest__Output as _deploy_v1_DeregisterAgentRequest__Output } from './deploy/v1/DeregisterAgentRequest.js';
import type { EnvironmentFreeze as _deploy_v1_EnvironmentFreeze, EnvironmentFreeze__Output as _deploy_v1_EnvironmentFreeze__Output } from './deploy/v1/EnvironmentFreeze.js';
import type { EnvironmentPolicy as _deploy_v1_EnvironmentPolicy, EnvironmentPolicy__Output as _deploy_v1_EnvironmentPolicy__Output } from './deploy/v1/EnvironmentPolicy.js';
import type { FreezeEnvironmentRequest as _deploy_v1_FreezeEnvironmentRequest, FreezeEnvironmentRequest__Output as _deploy_v1_FreezeEnvironmentRequest__Output } from './deploy/v1/FreezeEnvironmentRequest.js';
import type { FreezeOverride as _deploy_v1_FreezeOverride, FreezeOverride__Output as _deploy_v1_FreezeOverride__Output } from './deploy/v1/FreezeOverride.js';
import type { GetArtifactRequest as _deploy_v1_GetArtifactRequest, GetArtifactRequest__Output as _deploy_v1_GetArtifactRequest__Output } from './deploy/v1/GetArtifactRequest.js';
import type { GetDeploymentRequest as _deploy_v1_GetDeploymentRequest, GetDeploymentRequest__Output as _deploy_v1_GetDeploymentRequest__Output } from './deploy/v1/GetDeploymentRequest.js';
import type { GetReleaseRequest as _deploy_v1_GetReleaseRequest, GetReleaseRequest__Output as _deploy_v1_GetReleaseRequest__Output } from './deploy/v1/GetReleaseRequest.js';
import type { GetReleaseResponse as _deploy_v1_GetReleaseResponse, GetReleaseResponse__Output as _deploy_v1_GetReleaseResponse__Output } from './deploy/v1/GetReleaseResponse.js';
import type { ListAgentsRequest as _deploy_v1_ListAgentsRequest, ListAgentsRequest__Output as _deploy_v1_ListAgentsRequest__Output } from './deploy/v1/ListAgentsRequest.js';
import type { ListAgentsResponse as _deploy_v1_ListAgentsResponse, ListAgentsResponse__Output as _deploy_v1_ListAgentsResponse__Output } from './deploy/v1/ListAgentsResponse.js';
import type { ListArtifactsRequest as _deploy_v1_ListArtifactsRequest, ListArtifactsRequest__Output as _deploy_v1_ListArtifactsRequest__Output } from './deploy/v1/ListArtifactsRequest.js';
import type { ListArtifactsResponse as _deploy_v1_ListArtifactsResponse, ListArtifactsResponse__Output as _deploy_v1_ListArtifactsResponse__Output } from './deploy/v1/ListArtifactsResponse.js';
import type { ListDeploymentsRequest as _deploy_v1_ListDeploymentsRequest, ListDeploymentsRequest__Output as _deploy_v1_ListDeploymentsRequest__Output } from './deploy/v1/ListDeploymentsRequest.js';
import type { ListDeploymentsResponse as _deploy_v1_ListDeploymentsResponse, ListDeploymentsResponse__Output as _deploy_v1_ListDeploymentsResponse__Output } from './deploy/v1/ListDeploymentsResponse.js';
import type { ListEnvironmentPoliciesRequest as _deploy_v1_ListEnvironmentPoliciesRequest, ListEnvironmentPoliciesRequest__Output as _deploy_v1_ListEnvironmentPoliciesRequest__Output } from './deploy/v1/ListEnvironmentPoliciesRequest.js';
import type { ListEnvironmentPoliciesResponse as _deploy_v1_ListEnvironmentPoliciesResponse, ListEnvironmentPoliciesResponse__Output as _deploy_v1_ListEnvironmentPoliciesResponse__Output } from './deploy/v1/ListEnvironmentPoliciesResponse.js';
import type { ListFreezesRequest as _deploy_v1_ListFreezesRequest, ListFreezesRequest__Output as _deploy_v1_ListFreezesRequest__Output } from './deploy/v1/ListFreezesRequest.js';
import type { ListFreezesResponse as _deploy_v1_ListFreezesResponse, ListFreezesResponse__Output as _deploy_v1_ListFreezesResponse__Output } from './deploy/v1/ListFreezesResponse.js';
import type { PauseDeploymentRequest as _deploy_v1_PauseDeploymentRequest, PauseDeploymentRequest__Output as _deploy_v1_PauseDeploymentRequest__Output } from './deploy/v1/PauseDeploymentRequest.js';
import type { PromoteDeploymentRequest as _deploy_v1_PromoteDeploymentRequest, PromoteDeploymentRequest__Output as _deploy_v1_PromoteDeploymentRequest__Output } from './deploy/v1/PromoteDeploymentRequest.js';
import type { Release as _deploy_v1_Release, Release__Output as _deploy_v1_Release__Output } from './deploy/v1/Release.js';
import type { ResumeDeploymentRequest as _deploy_v1_ResumeDeploymentRequest, ResumeDeploymentRequest__Output as _deploy_v1_ResumeDeploymentRequest__Output } from './deploy/v1/ResumeDeploymentRequest.js';
import type { RevertDeploymentRequest as _deploy_v1_RevertDeploymentRequest, RevertDeploymentRequest__Output as _deploy_v1_RevertDeploymentRequest__Output } from './deploy/v1/RevertDeploymentRequest.js';
import type { RollbackReleaseRequest as _deploy_v1_RollbackReleaseRequest, RollbackReleaseRequest__Output as _deploy_v1_RollbackReleaseRequest__Output } from './deploy/v1/RollbackReleaseRequest.js';
import type { SetEnvironmentPolicyRequest as _deploy_v1_SetEnvironmentPolicyRequest, SetEnvironmentPolicyRequest__Output as _deploy_v1_SetEnvironmentPolicyRequest__Output } from './deploy/v1/SetEnvironmentPolicyRequest.js';
import type { Strategy as _deploy_v1_Strategy, Strategy__Output as _deploy_v1_Strategy__Output } from './deploy/v1/Strategy.js';
import type { Target as _deploy_v1_Target, Target__Output as _deploy_v1_Target__Output } from './deploy/v1/Target.js';
import type { TargetCount as _deploy_v1_TargetCount, TargetCount__Output as _deploy_v1_TargetCount__Output } from './deploy/v1/TargetCount.js';
import type { UncordonAgentRequest as _deploy_v1_UncordonAgentRequest, UncordonAgentRequest__Output as _deploy_v1_UncordonAgentRequest__Output } from './deploy/v1/UncordonAgentRequest.js';
import type { UnfreezeEnvironmentRequest as _deploy_v1_UnfreezeEnvironmentRequest, UnfreezeEnvironmentRequest__Output as _deploy_v1_UnfreezeEnvironmentRequest__Output } from './deploy/v1/UnfreezeEnvironmentRequest.js';
import type { UploadArtifactRequest as _deploy_v1_UploadArtifactRequest, UploadArtifactRequest__Output as _deploy_v1_UploadArtifactRequest__Output } from './deploy/v1/UploadArtifactRequest.js';
import type { WatchDeploymentRequest as _deploy_v1_WatchDeploymentRequest, WatchDeploymentRequest__Output as _deploy_v1_WatchDeploymentRequest__Output } from './deploy/v1/WatchDeploymentRequest.js';
import type { Duration as _google_protobuf_Duration, Duration__Output as _google_protobuf_Duration__Output } from './google/protobuf/Duration.js';
import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from './google/protobuf/Timestamp.js';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  deploy: {
    v1: {
      Agent: MessageTypeDefinition<_deploy_v1_Agent, _deploy_v1_Agent__Output>
      AgentCordon: MessageTypeDefinition<_deploy_v1_AgentCordon, _deploy_v1_AgentCordon__Output>
      AgentRelease: MessageTypeDefinition<_deploy_v1_AgentRelease, _deploy_v1_AgentRelease__Output>
      Artifact: MessageTypeDefinition<_deploy_v1_Artifact, _deploy_v1_Artifact__Output>
      ArtifactHeader: MessageTypeDefinition<_deploy_v1_ArtifactHeader, _deploy_v1_ArtifactHeader__Output>
      ArtifactRef: MessageTypeDefinition<_deploy_v1_ArtifactRef, _deploy_v1_ArtifactRef__Output>
      CancelDeploymentRequest: MessageTypeDefinition<_deploy_v1_CancelDeploymentRequest, _deploy_v1_CancelDeploymentRequest__Output>
      Changeset: MessageTypeDefinition<_deploy_v1_Changeset, _deploy_v1_Changeset__Output>
      CordonAgentRequest: MessageTypeDefinition<_deploy_v1_CordonAgentRequest, _deploy_v1_CordonAgentRequest__Output>
      CreateDeploymentRequest: MessageTypeDefinition<_deploy_v1_CreateDeploymentRequest, _deploy_v1_CreateDeploymentRequest__Output>
      DeployService: SubtypeConstructor<typeof grpc.Client, _deploy_v1_DeployServiceClient> & { service: _deploy_v1_DeployServiceDefinition }
      Deployment: MessageTypeDefinition<_deploy_v1_Deployment, _deploy_v1_Deployment__Output>
      DeploymentEvent: MessageTypeDefinition<_deploy_v1_DeploymentEvent, _deploy_v1_DeploymentEvent__Output>
      DeploymentState: EnumTypeDefinition
      DeregisterAgentRequest: MessageTypeDefinition<_deploy_v1_DeregisterAgentRequest, _deploy_v1_DeregisterAgentRequest__Output>
      EnvironmentFreeze: MessageTypeDefinition<_deploy_v1_EnvironmentFreeze, _deploy_v1_EnvironmentFreeze__Output>
      EnvironmentPolicy: MessageTypeDefinition<_deploy_v1_EnvironmentPolicy, _deploy_v1_EnvironmentPolicy__Output>
      FreezeEnvironmentRequest: MessageTypeDefinition<_deploy_v1_FreezeEnvironmentRequest, _deploy_v1_FreezeEnvironmentRequest__Output>
      FreezeOverride: MessageTypeDefinition<_deploy_v1_FreezeOverride, _deploy_v1_FreezeOverride__Output>
      GetArtifactRequest: MessageTypeDefinition<_deploy_v1_GetArtifactRequest, _deploy_v1_GetArtifactRequest__Output>
      GetDeploymentRequest: MessageTypeDefinition<_deploy_v1_GetDeploymentRequest, _deploy_v1_GetDeploymentRequest__Output>
      GetReleaseRequest: MessageTypeDefinition<_deploy_v1_GetReleaseRequest, _deploy_v1_GetReleaseRequest__Output>
      GetReleaseResponse: MessageTypeDefinition<_deploy_v1_GetReleaseResponse, _deploy_v1_GetReleaseResponse__Output>
      ListAgentsRequest: MessageTypeDefinition<_deploy_v1_ListAgentsRequest, _deploy_v1_ListAgentsRequest__Output>
      ListAgentsResponse: MessageTypeDefinition<_deploy_v1_ListAgentsResponse, _deploy_v1_ListAgentsResponse__Output>
      ListArtifactsRequest: MessageTypeDefinition<_deploy_v1_ListArtifactsRequest, _deploy_v1_ListArtifactsRequest__Output>
      ListArtifactsResponse: MessageTypeDefinition<_deploy_v1_ListArtifactsResponse, _deploy_v1_ListArtifactsResponse__Output>
      ListDeploymentsRequest: MessageTypeDefinition<_deploy_v1_ListDeploymentsRequest, _deploy_v1_ListDeploymentsRequest__Output>
      ListDeploymentsResponse: MessageTypeDefinition<_deploy_v1_ListDeploymentsResponse, _deploy_v1_ListDeploymentsResponse__Output>
      ListEnvironmentPoliciesRequest: MessageTypeDefinition<_deploy_v1_ListEnvironmentPoliciesRequest, _deploy_v1_ListEnvironmentPoliciesRequest__Output>
      ListEnvironmentPoliciesResponse: MessageTypeDefinition<_deploy_v1_ListEnvironmentPoliciesResponse, _deploy_v1_ListEnvironmentPoliciesResponse__Output>
      ListFreezesRequest: MessageTypeDefinition<_deploy_v1_ListFreezesRequest, _deploy_v1_ListFreezesRequest__Output>
      ListFreezesResponse: MessageTypeDefinition<_deploy_v1_ListFreezesResponse, _deploy_v1_ListFreezesResponse__Output>
      PauseDeploymentRequest: MessageTypeDefinition<_deploy_v1_PauseDeploymentRequest, _deploy_v1_PauseDeploymentRequest__Output>
      PromoteDeploymentRequest: MessageTypeDefinition<_deploy_v1_PromoteDeploymentRequest, _deploy_v1_PromoteDeploymentRequest__Output>
      Release: MessageTypeDefinition<_deploy_v1_Release, _deploy_v1_Release__Output>
      ReleaseStatus: EnumTypeDefinition
      ResumeDeploymentRequest: MessageTypeDefinition<_deploy_v1_ResumeDeploymentRequest, _deploy_v1_ResumeDeploymentRequest__Output>
      RevertDeploymentRequest: MessageTypeDefinition<_deploy_v1_RevertDeploymentRequest, _deploy_v1_RevertDeploymentRequest__Output>
      RollbackReleaseRequest: MessageTypeDefinition<_deploy_v1_RollbackReleaseRequest, _deploy_v1_RollbackReleaseRequest__Output>
      SetEnvironmentPolicyRequest: MessageTypeDefinition<_deploy_v1_SetEnvironmentPolicyRequest, _deploy_v1_SetEnvironmentPolicyRequest__Output>
      Strategy: MessageTypeDefinition<_deploy_v1_Strategy, _deploy_v1_Strategy__Output>
      Target: MessageTypeDefinition<_deploy_v1_Target, _deploy_v1_Target__Output>
      TargetCount: MessageTypeDefinition<_deploy_v1_TargetCount, _deploy_v1_TargetCount__Output>
      TargetState: EnumTypeDefinition
      UncordonAgentRequest: MessageTypeDefinition<_deploy_v1_UncordonAgentRequest, _deploy_v1_UncordonAgentRequest__Output>
      UnfreezeEnvironmentRequest: MessageTypeDefinition<_deploy_v1_UnfreezeEnvironmentRequest, _deploy_v1_UnfreezeEnvironmentRequest__Output>
      UploadArtifactRequest: MessageTypeDefinition<_deploy_v1_UploadArtifactRequest, _deploy_v1_UploadArtifactRequest__Output>
      WatchDeploymentRequest: MessageTypeDefinition<_deploy_v1_WatchDeploymentRequest, _deploy_v1_WatchDeploymentRequest__Output>
    }
  }
  google: {
    protobuf: {
      Duration: MessageTypeDefinition<_google_protobuf_Duration, _google_protobuf_Duration__Output>
      Timestamp: MessageTypeDefinition<_google_protobuf_Timestamp, _google_protobuf_Timestamp__Output>
    }
  }
}

