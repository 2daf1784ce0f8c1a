/** node/: the wiring module (the only one that knows every layer) and the networks it can run on. */
export { OnionpostNode, recordView, type NodeOptions, type NodeStatus, type SendParams, type SendResult } from './node.js';
export { NodeError, type NodeErrorCode } from './errors.js';
export { EventBus } from './events.js';
export { GroupCommitter } from './group-commit.js';
export { MemorySwitchboard, NetworkError, loopbackNetwork, memoryNetwork, type NetworkStatus, type PeerNetwork, type PublishTarget } from './network.js';
export { TorDownError, torNetwork, type TorNetwork, type TorNetworkOptions } from './tor-network.js';
