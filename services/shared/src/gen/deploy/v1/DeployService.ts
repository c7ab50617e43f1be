// Original file: proto/deploy/v1/deploy.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { CancelDeploymentRequest as _deploy_v1_CancelDeploymentRequest, CancelDeploymentRequest__Output as _deploy_v1_CancelDeploymentRequest__Output } from '../../deploy/v1/CancelDeploymentRequest.js';
import type { CreateDeploymentRequest as _deploy_v1_CreateDeploymentRequest, CreateDeploymentRequest__Output as _deploy_v1_CreateDeploymentRequest__Output } from '../../deploy/v1/CreateDeploymentRequest.js';
import type { Deployment as _deploy_v1_Deployment, Deployment__Output as _deploy_v1_Deployment__Output } from '../../deploy/v1/Deployment.js';
import type { DeploymentEvent as _deploy_v1_DeploymentEvent, DeploymentEvent__Output as _deploy_v1_DeploymentEvent__Output } from '../../deploy/v1/DeploymentEvent.js';
import type { GetDeploymentRequest as _deploy_v1_GetDeploymentRequest, GetDeploymentRequest__Output as _deploy_v1_GetDeploymentRequest__Output } from '../../deploy/v1/GetDeploymentRequest.js';
import type { ListAgentsRequest as _deploy_v1_ListAgentsRequest, ListAgentsRequest__Output as _deploy_v1_ListAgentsRequest__Output } from '../../deploy/v1/ListAgentsRequest.js';
import type { ListAgentsResponse as _deploy_v1_ListAgentsResponse, ListAgentsResponse__Output as _deploy_v1_ListAgentsResponse__Output } from '../../deploy/v1/ListAgentsResponse.js';
import type { ListDeploymentsRequest as _deploy_v1_ListDeploymentsRequest, ListDeploymentsRequest__Output as _deploy_v1_ListDeploymentsRequest__Output } from '../../deploy/v1/ListDeploymentsRequest.js';
import type { ListDeploymentsResponse as _deploy_v1_ListDeploymentsResponse, ListDeploymentsResponse__Output as _deploy_v1_ListDeploymentsResponse__Output } from '../../deploy/v1/ListDeploymentsResponse.js';
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
  
  CreateDeployment(argument: _deploy_v1_CreateDeploymentRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  CreateDeployment(argument: _deploy_v1_CreateDeploymentRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  CreateDeployment(argument: _deploy_v1_CreateDeploymentRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  CreateDeployment(argument: _deploy_v1_CreateDeploymentRequest, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  createDeployment(argument: _deploy_v1_CreateDeploymentRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  createDeployment(argument: _deploy_v1_CreateDeploymentRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  createDeployment(argument: _deploy_v1_CreateDeploymentRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  createDeployment(argument: _deploy_v1_CreateDeploymentRequest, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  
  GetDeployment(argument: _deploy_v1_GetDeploymentRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  GetDeployment(argument: _deploy_v1_GetDeploymentRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  GetDeployment(argument: _deploy_v1_GetDeploymentRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  GetDeployment(argument: _deploy_v1_GetDeploymentRequest, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  getDeployment(argument: _deploy_v1_GetDeploymentRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  getDeployment(argument: _deploy_v1_GetDeploymentRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  getDeployment(argument: _deploy_v1_GetDeploymentRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  getDeployment(argument: _deploy_v1_GetDeploymentRequest, callback: grpc.requestCallback<_deploy_v1_Deployment__Output>): grpc.ClientUnaryCall;
  
  ListAgents(argument: _deploy_v1_ListAgentsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_ListAgentsResponse__Output>): grpc.ClientUnaryCall;
  ListAgents(argument: _deploy_v1_ListAgentsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_deploy_v1_ListAgentsResponse__Output>): grpc.ClientUnaryCall;
  ListAgents(argument: _deploy_v1_ListAgentsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_ListAgentsResponse__Output>): grpc.ClientUnaryCall;
  ListAgents(argument: _deploy_v1_ListAgentsRequest, callback: grpc.requestCallback<_deploy_v1_ListAgentsResponse__Output>): grpc.ClientUnaryCall;
  listAgents(argument: _deploy_v1_ListAgentsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_ListAgentsResponse__Output>): grpc.ClientUnaryCall;
  listAgents(argument: _deploy_v1_ListAgentsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_deploy_v1_ListAgentsResponse__Output>): grpc.ClientUnaryCall;
  listAgents(argument: _deploy_v1_ListAgentsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_ListAgentsResponse__Output>): grpc.ClientUnaryCall;
  listAgents(argument: _deploy_v1_ListAgentsRequest, callback: grpc.requestCallback<_deploy_v1_ListAgentsResponse__Output>): grpc.ClientUnaryCall;
  
  ListDeployments(argument: _deploy_v1_ListDeploymentsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_ListDeploymentsResponse__Output>): grpc.ClientUnaryCall;
  ListDeployments(argument: _deploy_v1_ListDeploymentsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_deploy_v1_ListDeploymentsResponse__Output>): grpc.ClientUnaryCall;
  ListDeployments(argument: _deploy_v1_ListDeploymentsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_ListDeploymentsResponse__Output>): grpc.ClientUnaryCall;
  ListDeployments(argument: _deploy_v1_ListDeploymentsRequest, callback: grpc.requestCallback<_deploy_v1_ListDeploymentsResponse__Output>): grpc.ClientUnaryCall;
  listDeployments(argument: _deploy_v1_ListDeploymentsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_ListDeploymentsResponse__Output>): grpc.ClientUnaryCall;
  listDeployments(argument: _deploy_v1_ListDeploymentsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_deploy_v1_ListDeploymentsResponse__Output>): grpc.ClientUnaryCall;
  listDeployments(argument: _deploy_v1_ListDeploymentsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_deploy_v1_ListDeploymentsResponse__Output>): grpc.ClientUnaryCall;
  listDeployments(argument: _deploy_v1_ListDeploymentsRequest, callback: grpc.requestCallback<_deploy_v1_ListDeploymentsResponse__Output>): grpc.ClientUnaryCall;
  
  WatchDeployment(argument: _deploy_v1_WatchDeploymentRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_deploy_v1_DeploymentEvent__Output>;
  WatchDeployment(argument: _deploy_v1_WatchDeploymentRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_deploy_v1_DeploymentEvent__Output>;
  watchDeployment(argument: _deploy_v1_WatchDeploymentRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_deploy_v1_DeploymentEvent__Output>;
  watchDeployment(argument: _deploy_v1_WatchDeploymentRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_deploy_v1_DeploymentEvent__Output>;
  
}

export interface DeployServiceHandlers extends grpc.UntypedServiceImplementation {
  CancelDeployment: grpc.handleUnaryCall<_deploy_v1_CancelDeploymentRequest__Output, _deploy_v1_Deployment>;
  
  CreateDeployment: grpc.handleUnaryCall<_deploy_v1_CreateDeploymentRequest__Output, _deploy_v1_Deployment>;
  
  GetDeployment: grpc.handleUnaryCall<_deploy_v1_GetDeploymentRequest__Output, _deploy_v1_Deployment>;
  
  ListAgents: grpc.handleUnaryCall<_deploy_v1_ListAgentsRequest__Output, _deploy_v1_ListAgentsResponse>;
  
  ListDeployments: grpc.handleUnaryCall<_deploy_v1_ListDeploymentsRequest__Output, _deploy_v1_ListDeploymentsResponse>;
  
  WatchDeployment: grpc.handleServerStreamingCall<_deploy_v1_WatchDeploymentRequest__Output, _deploy_v1_DeploymentEvent>;
  
}

export interface DeployServiceDefinition extends grpc.ServiceDefinition {
  CancelDeployment: MethodDefinition<_deploy_v1_CancelDeploymentRequest, _deploy_v1_Deployment, _deploy_v1_CancelDeploymentRequest__Output, _deploy_v1_Deployment__Output>
  CreateDeployment: MethodDefinition<_deploy_v1_CreateDeploymentRequest, _deploy_v1_Deployment, _deploy_v1_CreateDeploymentRequest__Output, _deploy_v1_Deployment__Output>
  GetDeployment: MethodDefinition<_deploy_v1_GetDeploymentRequest, _deploy_v1_Deployment, _deploy_v1_GetDeploymentRequest__Output, _deploy_v1_Deployment__Output>
  ListAgents: MethodDefinition<_deploy_v1_ListAgentsRequest, _deploy_v1_ListAgentsResponse, _deploy_v1_ListAgentsRequest__Output, _deploy_v1_ListAgentsResponse__Output>
  ListDeployments: MethodDefinition<_deploy_v1_ListDeploymentsRequest, _deploy_v1_ListDeploymentsResponse, _deploy_v1_ListDeploymentsRequest__Output, _deploy_v1_ListDeploymentsResponse__Output>
  WatchDeployment: MethodDefinition<_deploy_v1_WatchDeploymentRequest, _deploy_v1_DeploymentEvent, _deploy_v1_WatchDeploymentRequest__Output, _deploy_v1_DeploymentEvent__Output>
}
