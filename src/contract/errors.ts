import { OnionpostError } from '../errors.js';

/** Every way deploying or locating the registry contract fails. Stable codes. */
export type ContractErrorCode =
  | 'UNFUNDED' // the deployer cannot pay (java-tron: "balance is not sufficient", or no such account)
  | 'BROADCAST_REJECTED' // the node refused the transaction; `nodeCode` carries java-tron's code (SIGERROR, TAPOS_ERROR, ...)
  | 'DEPLOY_FAILED' // mined, but the creation reverted or ran out of energy
  | 'TIMEOUT' // no receipt before the deadline (real networks lag), or aborted by the caller
  | 'UNREACHABLE' // the fullHost did not answer (connection refused, DNS, socket timeout)
  | 'ARTIFACT' // the compiled artifact is missing or malformed
  | 'COMPILE' // solc reported errors
  | 'DEPLOYMENTS_FILE'; // the deployments file is unreadable or malformed

export class ContractError extends OnionpostError<ContractErrorCode> {
  /** java-tron's broadcast result code, for BROADCAST_REJECTED and UNFUNDED (e.g. "CONTRACT_VALIDATE_ERROR"). */
  readonly nodeCode: string | undefined;
  constructor(code: ContractErrorCode, message: string, options?: { cause?: unknown; nodeCode?: string }) {
    super(code, message, options);
    this.nodeCode = options?.nodeCode;
  }
}
