/**
 * The registry contract: its checked-in artifact, deployment, the deployments file and ABI helpers.
 *
 * Contract ABI (IdentityRegistry.sol, flat signatures; reverts carry the reason strings listed in
 * REGISTRY_REVERT_REASONS):
 *   commit(bytes32 commitment)                       commitment = registryCommitment(name, owner, secret)
 *   register(string name, bytes32 identityKey, bytes32 encryptionKey, string mailboxes, bytes signature, bytes32 secret)
 *   update(bytes32 identityKey, bytes32 encryptionKey, string mailboxes, uint64 version, bytes signature)
 *   transfer(address newOwner)      release()
 *   lookup(string name) view → (address owner, bytes32 identityKey, bytes32 encryptionKey, string mailboxes, uint64 version, bytes signature)
 *   lookupByOwner(address owner) view → (string name, bytes32 identityKey, bytes32 encryptionKey, string mailboxes, uint64 version, bytes signature)
 *   chainId() view → uint256        isValidName(string) pure → bool
 *   minCommitmentAge(), maxCommitmentAge() view → uint256
 *   events Committed(owner indexed, commitment), Registered(nameHash indexed, owner indexed, name, version),
 *          Updated(nameHash indexed, owner indexed, version), Transferred(nameHash indexed, owner indexed, newOwner indexed, version),
 *          Released(nameHash indexed, owner indexed)
 * A missing record reads as zero values (owner = address(0) / name = ""), never a revert.
 */
export { ContractError, type ContractErrorCode } from './errors.js';
export {
  loadArtifact, loadRegistryArtifact, artifactPath, sourcePath, ARTIFACT_PATH, SOURCE_PATH, CONTRACT_NAME, CONTRACT_NAMES,
  type ContractArtifact, type ContractName, type RegistryArtifact,
} from './artifact.js';
// Deploying loads tronweb when called, not when this layer is imported: lazy.ts.
export { deployAll, deployContract, deployRegistry, DEFAULT_DEPLOY_FEE_LIMIT } from './lazy.js';
export type { DeployAllOptions, DeployedAll, DeployRegistryOptions, DeployTxOptions, DeployedRegistry } from './deploy.js';
export {
  KNOWN_NETWORKS, DEFAULT_DEPLOYMENTS_PATH, isNetworkName, readDeployments, getDeployment, writeDeployment,
  type NetworkName, type Deployment, type Deployments,
} from './deployments.js';
export {
  REGISTRY_REVERT_REASONS, REGISTRY_LIMITS, isValidRegistryName, registryCommitment, decodeRevertReason,
  type RegistryRevertReason,
} from './abi.js';
