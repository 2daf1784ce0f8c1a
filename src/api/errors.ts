import { OnionpostError } from '../errors.js';

export type ApiErrorCode =
  | 'PARSE_ERROR' // body is not JSON
  | 'INVALID_REQUEST' // not a JSON-RPC 2.0 request
  | 'METHOD_NOT_FOUND'
  | 'INVALID_PARAMS'
  | 'UNAUTHORIZED' // no credential, or a wrong token
  | 'SESSION_ENDED' // a browser session cookie that opens no live session (expired, signed out, revoked, node restarted)
  | 'LOGIN_CODE_UNKNOWN' // a login code this node never issued (or issued before it restarted)
  | 'LOGIN_CODE_EXPIRED'
  | 'LOGIN_CODE_USED' // login codes are single-use
  | 'TOKEN_ONLY' // a method only the API token may call (not a browser session)
  | 'BODY_TOO_LARGE' // request body over ApiLimits.maxBodyBytes
  | 'BATCH_TOO_LARGE' // more calls in one batch than ApiLimits.maxBatch
  | 'ANSWER_TOO_LARGE' // the answer would exceed ApiLimits.maxAnswerBytes
  | 'SHUTTING_DOWN' // the node is stopping; the request was not started
  | 'FORBIDDEN_HOST' // Host or Origin not the node's own (DNS rebinding, CSRF)
  | 'NODE_NOT_RUNNING' // the CLI found no running node
  | 'INTERNAL';

/** JSON-RPC 2.0 error numbers for our codes; application errors from other layers use -32000. */
export const JSONRPC_CODES: Record<ApiErrorCode, number> = {
  PARSE_ERROR: -32700,
  INVALID_REQUEST: -32600,
  METHOD_NOT_FOUND: -32601,
  INVALID_PARAMS: -32602,
  INTERNAL: -32603,
  UNAUTHORIZED: -32001,
  FORBIDDEN_HOST: -32002,
  NODE_NOT_RUNNING: -32003,
  SESSION_ENDED: -32004,
  LOGIN_CODE_UNKNOWN: -32005,
  LOGIN_CODE_EXPIRED: -32006,
  LOGIN_CODE_USED: -32007,
  TOKEN_ONLY: -32008,
  BODY_TOO_LARGE: -32009,
  BATCH_TOO_LARGE: -32010,
  ANSWER_TOO_LARGE: -32011,
  SHUTTING_DOWN: -32012,
};

export class ApiError extends OnionpostError<ApiErrorCode> {}

/**
 * An error returned by a remote node over JSON-RPC, rebuilt on the client side. `code` is the
 * stable code the node's layer used (e.g. WRONG_PASSPHRASE, BAD_ONION_ADDRESS), so callers branch
 * on it exactly as they would in-process.
 */
export class RemoteError extends OnionpostError {
  readonly rpcCode: number;
  constructor(code: string, message: string, rpcCode: number) {
    super(code, message);
    this.rpcCode = rpcCode;
  }
}
