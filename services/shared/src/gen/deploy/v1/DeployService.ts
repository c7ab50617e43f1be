// Original file: proto/deploy/v1/deploy.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { Agent as _deploy_v1_Agent, Agent__Output as _deploy_v1_Agent__Output } from '../../deploy/v1/Agent.js';
import type { Artifact as _deploy_v1_Artifact, Artifact__Output as _deploy_v1_Artifact__Output } from '../../deploy/v1/Artifact.js';
import type { CancelDeploymentRequest as _deploy_v1_CancelDeploymentRequest, CancelDeploymentRequest__Output as _deploy_v1_CancelDeploymentRequest__Output } from '../../deploy/v1/CancelDeploymentRequest.js';
import type { CordonAgentRequest as _deploy_v1_CordonAgentRequest, CordonAgentRequest__Output as _deploy_v1_CordonAgentRequest__Output } from '../../deploy/v1/CordonAgentRequest.js';
import type { CreateDeploymentRequest as _deploy_v1_CreateDeploymentRequest, CreateDeploymentRequest__Output as _deploy_v1_CreateDeploymentRequest__Output } from '../../deploy/v1/CreateDeploymentRequest.js';
import type { Deployment as _deploy_v1_Deployment, Deployment__Output as _deploy_v1_Deployment__Output } from '../../deploy/v1/Deployment.js';
import type { DeploymentEvent as _deploy_v1_DeploymentEvent, DeploymentEvent__Output as _deploy_v1_DeploymentEvent__Output } from '../../deploy/v1/DeploymentEvent.js';
import type { DeregisterAgentRequest as _deploy_v1_DeregisterAgentRequest, DeregisterAgentRequest__Output as _deploy_v1_DeregisterAgentRequest__Output } from '../../deploy/v1/DeregisterAgentRequest.js';
import type { EnvironmentFreeze as _deploy_v1_EnvironmentFreeze, EnvironmentFreeze__Output as _deploy_v1_EnvironmentFreeze__Output } from '../../deploy/v1/EnvironmentFreeze.js';
import type { EnvironmentPolicy as _deploy_v1_EnvironmentPolicy, EnvironmentPolicy__Output as _deploy_v1_EnvironmentPolicy__Output } from '../../deploy/v1/EnvironmentPolicy.js';
import type { FreezeEnvironmentRequest as _deploy_v1_FreezeEnvironmentRequest, FreezeEnvironmentRequest__Output as _deploy_v1_FreezeEnvironmentRequest__Output } from '../../deploy/v1/FreezeEnvironmentRequest.js';
import type { GetArtifactRequest as _deploy_v1_GetArtifactRequest, GetArtifactRequest__Output as _deploy_v1_GetArtifactRequest__Output } from '../../deploy/v1/GetArtifactRequest.js';
import type { GetDeploymentRequest as _deploy_v1_GetDeploymentRequest, GetDeploymentRequest__Output as _deploy_v1_GetDeploymentRequest__Output } from '../../deploy/v1/GetDeploymentRequest.js';
import type { GetReleaseRequest as _deploy_v1_GetReleaseRequest, GetReleaseRequest__Output as _deploy_v1_GetReleaseRequest__Output } from '../../deploy/v1/GetReleaseRequest.js';
import type { GetReleaseResponse as _deploy_v1_GetReleaseResponse, GetReleaseResponse__Output as _deploy_v1_GetReleaseResponse__Output } from '../../deploy/v1/GetReleaseResponse.js';
import type { ListAgentsRequest as _deploy_v1_ListAgentsRequest, ListAgentsRequest__Output as _deploy_v1_ListAgentsRequest__Output } from '../../deploy/v1/ListAgentsRequest.js';
import type { ListAgentsResponse as _deploy_v1_ListAgentsResponse, ListAgentsResponse__Output as _deploy_v1_ListAgentsResponse__Output } from '../../deploy/v1/ListAgentsResponse.js';
import type { ListArtifactsRequest as _deploy_v1_ListArtifactsRequest, ListArtifactsRequest__Output as _deploy_v1_ListArtifactsRequest__Output } from '../../deploy/v1/ListArtifactsRequest.js';
import type { ListArtifactsResponse as _deploy_v1_ListArtifactsResponse, ListArtifactsResponse__Output as _deploy_v1_ListArtifactsResponse__Output } from '../../deploy/v1/ListArtifactsResponse.js';
import type { ListDeploymentsRequest as _deploy_v1_ListDeploymentsRequest, ListDeploymentsRequest__Output as _deploy_v1_ListDeploymentsRequest__Output } from '../../deploy/v1/ListDeploymentsRequest.js';
import type { ListDeploymentsResponse as _deploy_v1_ListDeploymentsResponse, ListDeploymentsResponse__Output as _deploy_v1_ListDeploymentsResponse__Output } from '../../deploy/v1/ListDeploymentsResponse.js';
import type { ListEnvironmentPoliciesRequest as _deploy_v1_ListEnvironmentPoliciesRequest, ListEnvironmentPoliciesRequest__Output as _deploy_v1_ListEnvironmentPoliciesRequest__Output } from '../../deploy/v1/ListEnvironmentPoliciesRequest.js';
import type { ListEnvironmentPoliciesResponse as _deploy_v1_ListEnvironmentPoliciesResponse, ListEnvironmentPoliciesResponse__Output as _deploy_v1_ListEnvironmentPoliciesResponse__Output } from '../../deploy/v1/ListEnvironmentPoliciesResponse.js';
import type { ListFreezesRequest as _deploy_v1_ListFreezesRequest, ListFreezesRequest__Output as _deploy_v1_ListFreezesRequest__Output } from '../../deploy/v1/ListFreezesRequest.js';
import type { ListFreezesResponse as _deploy_v1_ListFreezesResponse, ListFreezesResponse__Output as _deploy_v1_ListFreezesResponse__Output } from '../../deploy/v1/ListFreezesResponse.js';
import type { PauseDeploymentRequest as _deploy_v1_PauseDeploymentRequest, PauseDeploymentRequest__Output as _deploy_v1_PauseDeploymentRequest__Output } from '../../deploy/v1/PauseDeploymentRequest.js';
import type { PromoteDeploymentRequest as _deploy_v1_PromoteDeploymentRequest, PromoteDeploymentRequest__Output as _deploy_v1_PromoteDeploymentRequest__Output } from '../../deploy/v1/PromoteDeploymentRequest.js';
import type { ResumeDeploymentRequest as _deploy_v1_ResumeDeploymentRequest, ResumeDeploymentRequest__Output as _deploy_v1_ResumeDeploymentRequest__Output } from '../../deploy/v1/ResumeDeploymentRequest.js';
import type { RevertDeploymentRequest as _deploy_v1_RevertDeploymentRequest, RevertDeploymentRequest__Output as _deploy_v1_RevertDeploymentRequest__Output } from '../../deploy/v1/RevertDeploymentRequest.js';
import type { RollbackReleaseRequest as _deploy_v1_RollbackReleaseRequest, RollbackReleaseRequest__Output as _deploy_v1_RollbackReleaseRequest__Output } from '../../deploy/v1/RollbackReleaseRequest.js';
import type { SetEnvironmentPolicyRequest as _deploy_v1_SetEnvironmentPolicyRequest, SetEnvironmentPolicyRequest__Output as _deploy_v1_SetEnvironmentPolicyRequest__Output } from '../../deploy/v1/SetEnvironmentPolicyRequest.js';
import type { UncordonAgentRequest as _deploy_v1_UncordonAgentRequest, UncordonAgentRequest__Output as _deploy_v1_UncordonAgentRequest__Output } from '../../deploy/v1/UncordonAgentRequest.js';
import type { UnfreezeEnvironmentRequest as _deploy_v1_UnfreezeEnvironmentRequest, UnfreezeEnvironmentRequest__Output as _deploy_v1_UnfreezeEnvironmentRequest__Output } from '../../deploy/v1/UnfreezeEnvironmentRequest.js';
import type { UploadArtifactRequest as _deploy_v1_UploadArtifactRequest, UploadArtifactRequest__Output as _deploy_v1_UploadArtifactRequest__Output } from '../../deploy/v1/UploadArtifactRequest.js';
import type { WatchDeploymentRequest as _deploy_v1_WatchDeploymentRequest, WatchDeploymentRequest__Output as _deploy_v1_WatchDeploymentRequest__Output } from '../../deploy/v1/WatchDeploymentRequest.js';

export interface DeployServiceClient extends grpc.Client {
  CancelDeployment(argument: _deploy_v1_CancelDeploymentRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  CancelDeployment(argument: _deploy_v1_CancelDeploymentRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  CancelDeployment(argument: _deploy_v1_CancelDeploymentRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  CancelDeployment(argument: _deploy_v1_CancelDeploymentRequest, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  cancelDeployment(argument: _deploy_v1_CancelDeploymentRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  cancelDeployment(argument: _deploy_v1_CancelDeploymentRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  cancelDeployment(argument: _deploy_v1_CancelDeploymentRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  cancelDeployment(argument: _deploy_v1_CancelDeploymentRequest, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  
  CordonAgent(argument: _deploy_v1_CordonAgentRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_Agent__Output>): grpc.ClientUnaryCall;
  CordonAgent(argument: _deploy_v1_CordonAgentRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_deploy_v1_Agent__Output>): grpc.ClientUnaryCall;
  CordonAgent(argument: _deploy_v1_CordonAgentRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_Agent__Output>): grpc.ClientUnaryCall;
  CordonAgent(argument: _deploy_v1_CordonAgentRequest, callback: grpc.requestCallback<_deploy_v1_Agent__Output>): grpc.ClientUnaryCall;
  cordonAgent(argument: _deploy_v1_CordonAgentRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_Agent__Output>): grpc.ClientUnaryCall;
  cordonAgent(argument: _deploy_v1_CordonAgentRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_deploy_v1_Agent__Output>): grpc.ClientUnaryCall;
  cordonAgent(argument: _deploy_v1_CordonAgentRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_Agent__Output>): grpc.ClientUnaryCall;
  cordonAgent(argument: _deploy_v1_CordonAgentRequest, callback: grpc.requestCallback<_deploy_v1_Agent__Output>): grpc.ClientUnaryCall;
  
  CreateDeployment(argument: _deploy_v1_CreateDeploymentRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  CreateDeployment(argument: _deploy_v1_CreateDeploymentRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  CreateDeployment(argument: _deploy_v1_CreateDeploymentRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  CreateDeployment(argument: _deploy_v1_CreateDeploymentRequest, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  createDeployment(argument: _deploy_v1_CreateDeploymentRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  createDeployment(argument: _deploy_v1_CreateDeploymentRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  createDeployment(argument: _deploy_v1_CreateDeploymentRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  createDeployment(argument: _deploy_v1_CreateDeploymentRequest, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  
  DeregisterAgent(argument: _deploy_v1_DeregisterAgentRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_Agent__Output>): grpc.ClientUnaryCall;
  DeregisterAgent(argument: _deploy_v1_DeregisterAgentRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_deploy_v1_Agent__Output>): grpc.ClientUnaryCall;
  DeregisterAgent(argument: _deploy_v1_DeregisterAgentRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_Agent__Output>): grpc.ClientUnaryCall;
  DeregisterAgent(argument: _deploy_v1_DeregisterAgentRequest, callback: grpc.requestCallback<_deploy_v1_Agent__Output>): grpc.ClientUnaryCall;
  deregisterAgent(argument: _deploy_v1_DeregisterAgentRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_Agent__Output>): grpc.ClientUnaryCall;
  deregisterAgent(argument: _deploy_v1_DeregisterAgentRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_deploy_v1_Agent__Output>): grpc.ClientUnaryCall;
  deregisterAgent(argument: _deploy_v1_DeregisterAgentRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_Agent__Output>): grpc.ClientUnaryCall;
  deregisterAgent(argument: _deploy_v1_DeregisterAgentRequest, callback: grpc.requestCallback<_deploy_v1_Agent__Output>): grpc.ClientUnaryCall;
  
  FreezeEnvironment(argument: _deploy_v1_FreezeEnvironmentRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_EnvironmentFreeze__Output>): grpc.ClientUnaryCall;
  FreezeEnvironment(argument: _deploy_v1_FreezeEnvironmentRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_deploy_v1_EnvironmentFreeze__Output>): grpc.ClientUnaryCall;
  FreezeEnvironment(argument: _deploy_v1_FreezeEnvironmentRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_EnvironmentFreeze__Output>): grpc.ClientUnaryCall;
  FreezeEnvironment(argument: _deploy_v1_FreezeEnvironmentRequest, callback: grpc.requestCallback<_deploy_v1_EnvironmentFreeze__Output>): grpc.ClientUnaryCall;
  freezeEnvironment(argument: _deploy_v1_FreezeEnvironmentRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_EnvironmentFreeze__Output>): grpc.ClientUnaryCall;
  freezeEnvironment(argument: _deploy_v1_FreezeEnvironmentRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_deploy_v1_EnvironmentFreeze__Output>): grpc.ClientUnaryCall;
  freezeEnvironment(argument: _deploy_v1_FreezeEnvironmentRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_EnvironmentFreeze__Output>): grpc.ClientUnaryCall;
  freezeEnvironment(argument: _deploy_v1_FreezeEnvironmentRequest, callback: grpc.requestCallback<_deploy_v1_EnvironmentFreeze__Output>): grpc.ClientUnaryCall;
  
  GetArtifact(argument: _deploy_v1_GetArtifactRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_Artifact__Output>): grpc.ClientUnaryCall;
  GetArtifact(argument: _deploy_v1_GetArtifactRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_deploy_v1_Artifact__Output>): grpc.ClientUnaryCall;
  GetArtifact(argument: _deploy_v1_GetArtifactRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_Artifact__Output>): grpc.ClientUnaryCall;
  GetArtifact(argument: _deploy_v1_GetArtifactRequest, callback: grpc.requestCallback<_deploy_v1_Artifact__Output>): grpc.ClientUnaryCall;
  getArtifact(argument: _deploy_v1_GetArtifactRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_Artifact__Output>): grpc.ClientUnaryCall;
  getArtifact(argument: _deploy_v1_GetArtifactRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_deploy_v1_Artifact__Output>): grpc.ClientUnaryCall;
  getArtifact(argument: _deploy_v1_GetArtifactRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_Artifact__Output>): grpc.ClientUnaryCall;
  getArtifact(argument: _deploy_v1_GetArtifactRequest, callback: grpc.requestCallback<_deploy_v1_Artifact__Output>): grpc.ClientUnaryCall;
  
  GetDeployment(argument: _deploy_v1_GetDeploymentRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  GetDeployment(argument: _deploy_v1_GetDeploymentRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  GetDeployment(argument: _deploy_v1_GetDeploymentRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  GetDeployment(argument: _deploy_v1_GetDeploymentRequest, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  getDeployment(argument: _deploy_v1_GetDeploymentRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  getDeployment(argument: _deploy_v1_GetDeploymentRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  getDeployment(argument: _deploy_v1_GetDeploymentRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  getDeployment(argument: _deploy_v1_GetDeploymentRequest, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  
  GetRelease(argument: _deploy_v1_GetReleaseRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_GetReleaseResponse__Output>): grpc.ClientUnaryCall;
  GetRelease(argument: _deploy_v1_GetReleaseRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_deploy_v1_GetReleaseResponse__Output>): grpc.ClientUnaryCall;
  GetRelease(argument: _deploy_v1_GetReleaseRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_GetReleaseResponse__Output>): grpc.ClientUnaryCall;
  GetRelease(argument: _deploy_v1_GetReleaseRequest, callback: grpc.requestCallback<_deploy_v1_GetReleaseResponse__Output>): grpc.ClientUnaryCall;
  getRelease(argument: _deploy_v1_GetReleaseRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_GetReleaseResponse__Output>): grpc.ClientUnaryCall;
  getRelease(argument: _deploy_v1_GetReleaseRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_deploy_v1_GetReleaseResponse__Output>): grpc.ClientUnaryCall;
  getRelease(argument: _deploy_v1_GetReleaseRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_GetReleaseResponse__Output>): grpc.ClientUnaryCall;
  getRelease(argument: _deploy_v1_GetReleaseRequest, callback: grpc.requestCallback<_deploy_v1_GetReleaseResponse__Output>): grpc.ClientUnaryCall;
  
  ListAgents(argument: _deploy_v1_ListAgentsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_ListAgentsResponse__Output>): grpc.ClientUnaryCall;
  ListAgents(argument: _deploy_v1_ListAgentsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_deploy_v1_ListAgentsResponse__Output>): grpc.ClientUnaryCall;
  ListAgents(argument: _deploy_v1_ListAgentsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_ListAgentsResponse__Output>): grpc.ClientUnaryCall;
  ListAgents(argument: _deploy_v1_ListAgentsRequest, callback: grpc.requestCallback<_deploy_v1_ListAgentsResponse__Output>): grpc.ClientUnaryCall;
  listAgents(argument: _deploy_v1_ListAgentsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_ListAgentsResponse__Output>): grpc.ClientUnaryCall;
  listAgents(argument: _deploy_v1_ListAgentsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_deploy_v1_ListAgentsResponse__Output>): grpc.ClientUnaryCall;
  listAgents(argument: _deploy_v1_ListAgentsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_ListAgentsResponse__Output>): grpc.ClientUnaryCall;
  listAgents(argument: _deploy_v1_ListAgentsRequest, callback: grpc.requestCallback<_deploy_v1_ListAgentsResponse__Output>): grpc.ClientUnaryCall;
  
  ListArtifacts(argument: _deploy_v1_ListArtifactsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_ListArtifactsResponse__Output>): grpc.ClientUnaryCall;
  ListArtifacts(argument: _deploy_v1_ListArtifactsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_deploy_v1_ListArtifactsResponse__Output>): grpc.ClientUnaryCall;
  ListArtifacts(argument: _deploy_v1_ListArtifactsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_ListArtifactsResponse__Output>): grpc.ClientUnaryCall;
  ListArtifacts(argument: _deploy_v1_ListArtifactsRequest, callback: grpc.requestCallback<_deploy_v1_ListArtifactsResponse__Output>): grpc.ClientUnaryCall;
  listArtifacts(argument: _deploy_v1_ListArtifactsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_ListArtifactsResponse__Output>): grpc.ClientUnaryCall;
  listArtifacts(argument: _deploy_v1_ListArtifactsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_deploy_v1_ListArtifactsResponse__Output>): grpc.ClientUnaryCall;
  listArtifacts(argument: _deploy_v1_ListArtifactsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_ListArtifactsResponse__Output>): grpc.ClientUnaryCall;
  listArtifacts(argument: _deploy_v1_ListArtifactsRequest, callback: grpc.requestCallback<_deploy_v1_ListArtifactsResponse__Output>): grpc.ClientUnaryCall;
  
  ListDeployments(argument: _deploy_v1_ListDeploymentsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_ListDeploymentsResponse__Output>): grpc.ClientUnaryCall;
  ListDeployments(argument: _deploy_v1_ListDeploymentsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_deploy_v1_ListDeploymentsResponse__Output>): grpc.ClientUnaryCall;
  ListDeployments(argument: _deploy_v1_ListDeploymentsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_ListDeploymentsResponse__Output>): grpc.ClientUnaryCall;
  ListDeployments(argument: _deploy_v1_ListDeploymentsRequest, callback: grpc.requestCallback<_deploy_v1_ListDeploymentsResponse__Output>): grpc.ClientUnaryCall;
  listDeployments(argument: _deploy_v1_ListDeploymentsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_ListDeploymentsResponse__Output>): grpc.ClientUnaryCall;
  listDeployments(argument: _deploy_v1_ListDeploymentsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_deploy_v1_ListDeploymentsResponse__Output>): grpc.ClientUnaryCall;
  listDeployments(argument: _deploy_v1_ListDeploymentsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_ListDeploymentsResponse__Output>): grpc.ClientUnaryCall;
  listDeployments(argument: _deploy_v1_ListDeploymentsRequest, callback: grpc.requestCallback<_deploy_v1_ListDeploymentsResponse__Output>): grpc.ClientUnaryCall;
  
  ListEnvironmentPolicies(argument: _deploy_v1_ListEnvironmentPoliciesRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_ListEnvironmentPoliciesResponse__Output>): grpc.ClientUnaryCall;
  ListEnvironmentPolicies(argument: _deploy_v1_ListEnvironmentPoliciesRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_deploy_v1_ListEnvironmentPoliciesResponse__Output>): grpc.ClientUnaryCall;
  ListEnvironmentPolicies(argument: _deploy_v1_ListEnvironmentPoliciesRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_ListEnvironmentPoliciesResponse__Output>): grpc.ClientUnaryCall;
  ListEnvironmentPolicies(argument: _deploy_v1_ListEnvironmentPoliciesRequest, callback: grpc.requestCallback<_deploy_v1_ListEnvironmentPoliciesResponse__Output>): grpc.ClientUnaryCall;
  listEnvironmentPolicies(argument: _deploy_v1_ListEnvironmentPoliciesRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_ListEnvironmentPoliciesResponse__Output>): grpc.ClientUnaryCall;
  listEnvironmentPolicies(argument: _deploy_v1_ListEnvironmentPoliciesRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_deploy_v1_ListEnvironmentPoliciesResponse__Output>): grpc.ClientUnaryCall;
  listEnvironmentPolicies(argument: _deploy_v1_ListEnvironmentPoliciesRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_ListEnvironmentPoliciesResponse__Output>): grpc.ClientUnaryCall;
  listEnvironmentPolicies(argument: _deploy_v1_ListEnvironmentPoliciesRequest, callback: grpc.requestCallback<_deploy_v1_ListEnvironmentPoliciesResponse__Output>): grpc.ClientUnaryCall;
  
  ListFreezes(argument: _deploy_v1_ListFreezesRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_ListFreezesResponse__Output>): grpc.ClientUnaryCall;
  ListFreezes(argument: _deploy_v1_ListFreezesRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_deploy_v1_ListFreezesResponse__Output>): grpc.ClientUnaryCall;
  ListFreezes(argument: _deploy_v1_ListFreezesRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_ListFreezesResponse__Output>): grpc.ClientUnaryCall;
  ListFreezes(argument: _deploy_v1_ListFreezesRequest, callback: grpc.requestCallback<_deploy_v1_ListFreezesResponse__Output>): grpc.ClientUnaryCall;
  listFreezes(argument: _deploy_v1_ListFreezesRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_ListFreezesResponse__Output>): grpc.ClientUnaryCall;
  listFreezes(argument: _deploy_v1_ListFreezesRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_deploy_v1_ListFreezesResponse__Output>): grpc.ClientUnaryCall;
  listFreezes(argument: _deploy_v1_ListFreezesRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_ListFreezesResponse__Output>): grpc.ClientUnaryCall;
  listFreezes(argument: _deploy_v1_ListFreezesRequest, callback: grpc.requestCallback<_deploy_v1_ListFreezesResponse__Output>): grpc.ClientUnaryCall;
  
  PauseDeployment(argument: _deploy_v1_PauseDeploymentRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  PauseDeployment(argument: _deploy_v1_PauseDeploymentRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  PauseDeployment(argument: _deploy_v1_PauseDeploymentRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  PauseDeployment(argument: _deploy_v1_PauseDeploymentRequest, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  pauseDeployment(argument: _deploy_v1_PauseDeploymentRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  pauseDeployment(argument: _deploy_v1_PauseDeploymentRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  pauseDeployment(argument: _deploy_v1_PauseDeploymentRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  pauseDeployment(argument: _deploy_v1_PauseDeploymentRequest, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  
  PromoteDeployment(argument: _deploy_v1_PromoteDeploymentRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  PromoteDeployment(argument: _deploy_v1_PromoteDeploymentRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  PromoteDeployment(argument: _deploy_v1_PromoteDeploymentRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  PromoteDeployment(argument: _deploy_v1_PromoteDeploymentRequest, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  promoteDeployment(argument: _deploy_v1_PromoteDeploymentRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  promoteDeployment(argument: _deploy_v1_PromoteDeploymentRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  promoteDeployment(argument: _deploy_v1_PromoteDeploymentRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  promoteDeployment(argument: _deploy_v1_PromoteDeploymentRequest, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  
  ResumeDeployment(argument: _deploy_v1_ResumeDeploymentRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  ResumeDeployment(argument: _deploy_v1_ResumeDeploymentRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  ResumeDeployment(argument: _deploy_v1_ResumeDeploymentRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  ResumeDeployment(argument: _deploy_v1_ResumeDeploymentRequest, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  resumeDeployment(argument: _deploy_v1_ResumeDeploymentRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  resumeDeployment(argument: _deploy_v1_ResumeDeploymentRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  resumeDeployment(argument: _deploy_v1_ResumeDeploymentRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  resumeDeployment(argument: _deploy_v1_ResumeDeploymentRequest, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  
  RevertDeployment(argument: _deploy_v1_RevertDeploymentRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  RevertDeployment(argument: _deploy_v1_RevertDeploymentRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  RevertDeployment(argument: _deploy_v1_RevertDeploymentRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  RevertDeployment(argument: _deploy_v1_RevertDeploymentRequest, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  revertDeployment(argument: _deploy_v1_RevertDeploymentRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  revertDeployment(argument: _deploy_v1_RevertDeploymentRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  revertDeployment(argument: _deploy_v1_RevertDeploymentRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  revertDeployment(argument: _deploy_v1_RevertDeploymentRequest, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  
  RollbackRelease(argument: _deploy_v1_RollbackReleaseRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  RollbackRelease(argument: _deploy_v1_RollbackReleaseRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  RollbackRelease(argument: _deploy_v1_RollbackReleaseRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  RollbackRelease(argument: _deploy_v1_RollbackReleaseRequest, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  rollbackRelease(argument: _deploy_v1_RollbackReleaseRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  rollbackRelease(argument: _deploy_v1_RollbackReleaseRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  rollbackRelease(argument: _deploy_v1_RollbackReleaseRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  rollbackRelease(argument: _deploy_v1_RollbackReleaseRequest, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  
  SetEnvironmentPolicy(argument: _deploy_v1_SetEnvironmentPolicyRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_EnvironmentPolicy__Output>): grpc.ClientUnaryCall;
  SetEnvironmentPolicy(argument: _deploy_v1_SetEnvironmentPolicyRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_deploy_v1_EnvironmentPolicy__Output>): grpc.ClientUnaryCall;
  SetEnvironmentPolicy(argument: _deploy_v1_SetEnvironmentPolicyRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_EnvironmentPolicy__Output>): grpc.ClientUnaryCall;
  SetEnvironmentPolicy(argument: _deploy_v1_SetEnvironmentPolicyRequest, callback: grpc.requestCallback<_deploy_v1_EnvironmentPolicy__Output>): grpc.ClientUnaryCall;
  setEnvironmentPolicy(argument: _deploy_v1_SetEnvironmentPolicyRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_EnvironmentPolicy__Output>): grpc.ClientUnaryCall;
  setEnvironmentPolicy(argument: _deploy_v1_SetEnvironmentPolicyRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_deploy_v1_EnvironmentPolicy__Output>): grpc.ClientUnaryCall;
  setEnvironmentPolicy(argument: _deploy_v1_SetEnvironmentPolicyRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_EnvironmentPolicy__Output>): grpc.ClientUnaryCall;
  setEnvironmentPolicy(argument: _deploy_v1_SetEnvironmentPolicyRequest, callback: grpc.requestCallback<_deploy_v1_EnvironmentPolicy__Output>): grpc.ClientUnaryCall;
  
  UncordonAgent(argument: _deploy_v1_UncordonAgentRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_Agent__Output>): grpc.ClientUnaryCall;
  UncordonAgent(argument: _deploy_v1_UncordonAgentRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_deploy_v1_Agent__Output>): grpc.ClientUnaryCall;
  UncordonAgent(argument: _deploy_v1_UncordonAgentRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_Agent__Output>): grpc.ClientUnaryCall;
  UncordonAgent(argument: _deploy_v1_UncordonAgentRequest, callback: grpc.requestCallback<_deploy_v1_Agent__Output>): grpc.ClientUnaryCall;
  uncordonAgent(argument: _deploy_v1_UncordonAgentRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_Agent__Output>): grpc.ClientUnaryCall;
  uncordonAgent(argument: _deploy_v1_UncordonAgentRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_deploy_v1_Agent__Output>): grpc.ClientUnaryCall;
  uncordonAgent(argument: _deploy_v1_UncordonAgentRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_Agent__Output>): grpc.ClientUnaryCall;
  uncordonAgent(argument: _deploy_v1_UncordonAgentRequest, callback: grpc.requestCallback<_deploy_v1_Agent__Output>): grpc.ClientUnaryCall;
  
  UnfreezeEnvironment(argument: _deploy_v1_UnfreezeEnvironmentRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_EnvironmentFreeze__Output>): grpc.ClientUnaryCall;
  UnfreezeEnvironment(argument: _deploy_v1_UnfreezeEnvironmentRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_deploy_v1_EnvironmentFreeze__Output>): grpc.ClientUnaryCall;
  UnfreezeEnvironment(argument: _deploy_v1_UnfreezeEnvironmentRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_EnvironmentFreeze__Output>): grpc.ClientUnaryCall;
  UnfreezeEnvironment(argument: _deploy_v1_UnfreezeEnvironmentRequest, callback: grpc.requestCallback<_deploy_v1_EnvironmentFreeze__Output>): grpc.ClientUnaryCall;
  unfreezeEnvironment(argument: _deploy_v1_UnfreezeEnvironmentRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_EnvironmentFreeze__Output>): grpc.ClientUnaryCall;
  unfreezeEnvironment(argument: _deploy_v1_UnfreezeEnvironmentRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_deploy_v1_EnvironmentFreeze__Output>): grpc.ClientUnaryCall;
  unfreezeEnvironment(argument: _deploy_v1_UnfreezeEnvironmentRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_EnvironmentFreeze__Output>): grpc.ClientUnaryCall;
  unfreezeEnvironment(argument: _deploy_v1_UnfreezeEnvironmentRequest, callback: grpc.requestCallback<_deploy_v1_EnvironmentFreeze__Output>): grpc.ClientUnaryCall;
  
  UploadArtifact(metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_Artifact__Output>): grpc.ClientWritableStream<_deploy_v1_UploadArtifactRequest>;
  UploadArtifact(metadata: grpc.Metadata, callback: grpc.requestCallback<_deploy_v1_Artifact__Output>): grpc.ClientWritableStream<_deploy_v1_UploadArtifactRequest>;
  UploadArtifact(options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_Artifact__Output>): grpc.ClientWritableStream<_deploy_v1_UploadArtifactRequest>;
  UploadArtifact(callback: grpc.requestCallback<_deploy_v1_Artifact__Output>): grpc.ClientWritableStream<_deploy_v1_UploadArtifactRequest>;
  uploadArtifact(metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_Artifact__Output>): grpc.ClientWritableStream<_deploy_v1_UploadArtifactRequest>;
  uploadArtifact(metadata: grpc.Metadata, callback: grpc.requestCallback<_deploy_v1_Artifact__Output>): grpc.ClientWritableStream<_deploy_v1_UploadArtifactRequest>;
  uploadArtifact(options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_Artifact__Output>): grpc.ClientWritableStream<_deploy_v1_UploadArtifactRequest>;
  uploadArtifact(callback: grpc.requestCallback<_deploy_v1_Artifact__Output>): grpc.ClientWritableStream<_deploy_v1_UploadArtifactRequest>;
  
  WatchDeployment(argument: _deploy_v1_WatchDeploymentRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_deploy_v1_DeploymentEvent__Output>;
  WatchDeployment(argument: _deploy_v1_WatchDeploymentRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_deploy_v1_DeploymentEvent__Output>;
  watchDeployment(argument: _deploy_v1_WatchDeploymentRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_deploy_v1_DeploymentEvent__Output>;
  watchDeployment(argument: _deploy_v1_WatchDeploymentRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_deploy_v1_DeploymentEvent__Output>;
  
}

export interface DeployServiceHandlers extends grpc.UntypedServiceImplementation {
  CancelDeployment: grpc.handleUnaryCall<_deploy_v1_CancelDeploymentRequest__Output, _deploy_v1_Deployment>;
  
  CordonAgent: grpc.handleUnaryCall<_deploy_v1_CordonAgentRequest__Output, _deploy_v1_Agent>;
  
  CreateDeployment: grpc.handleUnaryCall<_deploy_v1_CreateDeploymentRequest__Output, _deploy_v1_Deployment>;
  
  DeregisterAgent: grpc.handleUnaryCall<_deploy_v1_DeregisterAgentRequest__Output, _deploy_v1_Agent>;
  
  FreezeEnvironment: grpc.handleUnaryCall<_deploy_v1_FreezeEnvironmentRequest__Output, _deploy_v1_EnvironmentFreeze>;
  
  GetArtifact: grpc.handleUnaryCall<_deploy_v1_GetArtifactRequest__Output, _deploy_v1_Artifact>;
  
  GetDeployment: grpc.handleUnaryCall<_deploy_v1_GetDeploymentRequest__Output, _deploy_v1_Deployment>;
  
  GetRelease: grpc.handleUnaryCall<_deploy_v1_GetReleaseRequest__Output, _deploy_v1_GetReleaseResponse>;
  
  ListAgents: grpc.handleUnaryCall<_deploy_v1_ListAgentsRequest__Output, _deploy_v1_ListAgentsResponse>;
  
  ListArtifacts: grpc.handleUnaryCall<_deploy_v1_ListArtifactsRequest__Output, _deploy_v1_ListArtifactsResponse>;
  
  ListDeployments: grpc.handleUnaryCall<_deploy_v1_ListDeploymentsRequest__Output, _deploy_v1_ListDeploymentsResponse>;
  
  ListEnvironmentPolicies: grpc.handleUnaryCall<_deploy_v1_ListEnvironmentPoliciesRequest__Output, _deploy_v1_ListEnvironmentPoliciesResponse>;
  
  ListFreezes: grpc.handleUnaryCall<_deploy_v1_ListFreezesRequest__Output, _deploy_v1_ListFreezesResponse>;
  
  PauseDeployment: grpc.handleUnaryCall<_deploy_v1_PauseDeploymentRequest__Output, _deploy_v1_Deployment>;
  
  PromoteDeployment: grpc.handleUnaryCall<_deploy_v1_PromoteDeploymentRequest__Output, _deploy_v1_Deployment>;
  
  ResumeDeployment: grpc.handleUnaryCall<_deploy_v1_ResumeDeploymentRequest__Output, _deploy_v1_Deployment>;
  
  RevertDeployment: grpc.handleUnaryCall<_deploy_v1_RevertDeploymentRequest__Output, _deploy_v1_Deployment>;
  
  RollbackRelease: grpc.handleUnaryCall<_deploy_v1_RollbackReleaseRequest__Output, _deploy_v1_Deployment>;
  
  SetEnvironmentPolicy: grpc.handleUnaryCall<_deploy_v1_SetEnvironmentPolicyRequest__Output, _deploy_v1_EnvironmentPolicy>;
  
  UncordonAgent: grpc.handleUnaryCall<_deploy_v1_UncordonAgentRequest__Output, _deploy_v1_Agent>;
  
  UnfreezeEnvironment: grpc.handleUnaryCall<_deploy_v1_UnfreezeEnvironmentRequest__Output, _deploy_v1_EnvironmentFreeze>;
  
  UploadArtifact: grpc.handleClientStreamingCall<_deploy_v1_UploadArtifactRequest__Output, _deploy_v1_Artifact>;
  
  WatchDeployment: grpc.handleServerStreamingCall<_deploy_v1_WatchDeploymentRequest__Output, _deploy_v1_DeploymentEvent>;
  
}

export interface DeployServiceDefinition extends grpc.ServiceDefinition {
  CancelDeployment: MethodDefinition<_deploy_v1_CancelDeploymentRequest, _deploy_v1_Deployment, _deploy_v1_CancelDeploymentRequest__Output, _deploy_v1_Deployment__Output>
  CordonAgent: MethodDefinition<_deploy_v1_CordonAgentRequest, _deploy_v1_Agent, _deploy_v1_CordonAgentRequest__Output, _deploy_v1_Agent__Output>
  CreateDeployment: MethodDefinition<_deploy_v1_CreateDeploymentRequest, _deploy_v1_Deployment, _deploy_v1_CreateDeploymentRequest__Output, _deploy_v1_Deployment__Output>
  DeregisterAgent: MethodDefinition<_deploy_v1_DeregisterAgentRequest, _deploy_v1_Agent, _deploy_v1_DeregisterAgentRequest__Output, _deploy_v1_Agent__Output>
  FreezeEnvironment: MethodDefinition<_deploy_v1_FreezeEnvironmentRequest, _deploy_v1_EnvironmentFreeze, _deploy_v1_FreezeEnvironmentRequest__Output, _deploy_v1_EnvironmentFreeze__Output>
  GetArtifact: MethodDefinition<_deploy_v1_GetArtifactRequest, _deploy_v1_Artifact, _deploy_v1_GetArtifactRequest__Output, _deploy_v1_Artifact__Output>
  GetDeployment: MethodDefinition<_deploy_v1_GetDeploymentRequest, _deploy_v1_Deployment, _deploy_v1_GetDeploymentRequest__Output, _deploy_v1_Deployment__Output>
  GetRelease: MethodDefinition<_deploy_v1_GetReleaseRequest, _deploy_v1_GetReleaseResponse, _deploy_v1_GetReleaseRequest__Output, _deploy_v1_GetReleaseResponse__Output>
  ListAgents: MethodDefinition<_deploy_v1_ListAgentsRequest, _deploy_v1_ListAgentsResponse, _deploy_v1_ListAgentsRequest__Output, _deploy_v1_ListAgentsResponse__Output>
  ListArtifacts: MethodDefinition<_deploy_v1_ListArtifactsRequest, _deploy_v1_ListArtifactsResponse, _deploy_v1_ListArtifactsRequest__Output, _deploy_v1_ListArtifactsResponse__Output>
  ListDeployments: MethodDefinition<_deploy_v1_ListDeploymentsRequest, _deploy_v1_ListDeploymentsResponse, _deploy_v1_ListDeploymentsRequest__Output, _deploy_v1_ListDeploymentsResponse__Output>
  ListEnvironmentPolicies: MethodDefinition<_deploy_v1_ListEnvironmentPoliciesRequest, _deploy_v1_ListEnvironmentPoliciesResponse, _deploy_v1_ListEnvironmentPoliciesRequest__Output, _deploy_v1_ListEnvironmentPoliciesResponse__Output>
  ListFreezes: MethodDefinition<_deploy_v1_ListFreezesRequest, _deploy_v1_ListFreezesResponse, _deploy_v1_ListFreezesRequest__Output, _deploy_v1_ListFreezesResponse__Output>
  PauseDeployment: MethodDefinition<_deploy_v1_PauseDeploymentRequest, _deploy_v1_Deployment, _deploy_v1_PauseDeploymentRequest__Output, _deploy_v1_Deployment__Output>
  PromoteDeployment: MethodDefinition<_deploy_v1_PromoteDeploymentRequest, _deploy_v1_Deployment, _deploy_v1_PromoteDeploymentRequest__Output, _deploy_v1_Deployment__Output>
  ResumeDeployment: MethodDefinition<_deploy_v1_ResumeDeploymentRequest, _deploy_v1_Deployment, _deploy_v1_ResumeDeploymentRequest__Output, _deploy_v1_Deployment__Output>
  RevertDeployment: MethodDefinition<_deploy_v1_RevertDeploymentRequest, _deploy_v1_Deployment, _deploy_v1_RevertDeploymentRequest__Output, _deploy_v1_Deployment__Output>
  RollbackRelease: MethodDefinition<_deploy_v1_RollbackReleaseRequest, _deploy_v1_Deployment, _deploy_v1_RollbackReleaseRequest__Output, _deploy_v1_Deployment__Output>
  SetEnvironmentPolicy: MethodDefinition<_deploy_v1_SetEnvironmentPolicyRequest, _deploy_v1_EnvironmentPolicy, _deploy_v1_SetEnvironmentPolicyRequest__Output, _deploy_v1_EnvironmentPolicy__Output>
  UncordonAgent: MethodDefinition<_deploy_v1_UncordonAgentRequest, _deploy_v1_Agent, _deploy_v1_UncordonAgentRequest__Output, _deploy_v1_Agent__Output>
  UnfreezeEnvironment: MethodDefinition<_deploy_v1_UnfreezeEnvironmentRequest, _deploy_v1_EnvironmentFreeze, _deploy_v1_UnfreezeEnvironmentRequest__Output, _deploy_v1_EnvironmentFreeze__Output>
  UploadArtifact: MethodDefinition<_deploy_v1_UploadArtifactRequest, _deploy_v1_Artifact, _deploy_v1_UploadArtifactRequest__Output, _deploy_v1_Artifact__Output>
  WatchDeployment: MethodDefinition<_deploy_v1_WatchDeploymentRequest, _deploy_v1_DeploymentEvent, _deploy_v1_WatchDeploymentRequest__Output, _deploy_v1_DeploymentEvent__Output>
}
