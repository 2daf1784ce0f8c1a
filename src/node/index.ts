/** node/: the wiring module (the only one that knows every layer), its lifecycle, and the networks it can run on. */
export { OnionpostNode, type NodeOptions, type NodeStatus } from './node.js';
export { MailboxesError, NodeError, ProvidersError, type MailboxesErrorCode, type NodeErrorCode, type ProvidersErrorCode } from './errors.js';
export { UserMailboxes, mailboxView, type MailboxView } from './mailboxes.js';
export { Courier, type CourierOptions } from './courier.js';
export { EventBus } from './events.js';
export { Reachability, selfCheckDelay, type ReachabilityOptions } from './reachability.js';
export { MemorySwitchboard, NetworkError, loopbackNetwork, memoryNetwork, type NetworkStatus, type PeerNetwork, type PublishTarget } from './network.js';
export { TorDownError, torNetwork, type TorNetwork, type TorNetworkOptions } from './tor-network.js';
export type { SendParams, SendResult } from '../pipeline/index.js';
export { DEFAULT_MAILBOX_POLICY, type MailboxPolicy } from './mailbox-policy.js';
