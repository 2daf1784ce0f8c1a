/**
 * tor/: owning a tor process and talking to it.
 *
 *   launchTor(opts) → TorProcess        spawn, own (TAKEOWNERSHIP), bootstrap; kill on any start failure
 *   TorProcess.control: TorControl      typed control-port client (getInfo, addOnion, events, …)
 *   publishOnion(control, opts)         ADD_ONION with the identity key; `uploaded` on HS_DESC UPLOADED
 *   socksConnect(opts) / TorSocksAgent  SOCKS5 dialing that keeps Tor's extended error codes
 *   upTestNetwork / readTestNetwork / downTestNetwork   the private Tor network on 127.0.0.1
 *
 * Lifecycle for the node: keep TorProcess.control open while online (closing it stops tor and
 * removes the onion); watch `exited` / 'exit' to restart tor and publish again with the same key.
 */
export { TorError, TorOperationError, TorProtocolError, TorSocketError, type TorErrorCode, type TorSocketErrorCode } from './errors.js';
export { ReplyParser, isEvent, parseArgs, parseGetInfo, type Reply, type ReplyLine, type ReplySep } from './reply.js';
export {
  TorControl, connectControl, parseBootstrap, parseHsDesc, safeCookieHashes,
  type AddOnionOptions, type BootstrapStatus, type ControlConnectOptions, type ControlEvent, type HsDescEvent,
} from './control.js';
export {
  MIN_TOR_VERSION, POW_TOR_VERSION, TorProcess, checkTor, compareTorVersions, findTor, launchTor, parseTorVersion, renderNodeTorrc,
  torLogTail, type LaunchTorOptions, type TestNetworkInfo, type TorCheck, type TorExit, type TorFeatures, type TorVersion,
} from './process.js';
export { publishOnion, unpublishOnion, type PublishOnionOptions, type PublishedOnion } from './onion.js';
export { SocksError, TorSocksAgent, socksConnect, socksReplyError, type SocksConnectOptions, type SocksErrorCode, type SocksRetry, type TorSocksAgentOptions } from './socks.js';
export { downTestNetwork, readTestNetwork, upTestNetwork, type TestNetwork, type UpTestNetworkOptions } from './testnet.js';
export { renderTorrc, type TorrcVars } from './torrc.js';
