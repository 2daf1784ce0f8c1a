// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/**
 * onionpost identity registry.
 *
 * Maps a normalized name (1-64 chars of [a-z0-9-], not starting or ending with '-') and an owner
 * address to one record: the owner's Ed25519 identity key, X25519 encryption key, mailbox providers
 * (an opaque string, at most 1024 bytes), a version and a 64-byte signature. One record per name,
 * one record per owner.
 *
 * Plain Solidity on purpose: no TRON built-ins (TRC-10, freeze, ISCONTRACT), flat external
 * signatures (no structs or tuples in the ABI, so `getcontract` ABIs and tronweb's `contract().at()`
 * work), compiled for evmVersion cancun. Reverts carry short stable reason strings (NAME_TAKEN, ...).
 *
 * What the contract can and cannot check
 * --------------------------------------
 * The EVM/TVM cannot verify Ed25519, so `signature` is stored verbatim. Clients verify it off-chain:
 * a signature by `identityKey` over (name, owner, identityKey, encryptionKey, mailboxes, version,
 * chain id, this contract's address), and reject a record whose signature does not verify.
 *
 * Why commit-reveal plus an owner-naming signature closes front-running
 * --------------------------------------------------------------------
 * 1. Name sniping. A `register("alice", ...)` transaction is public before it is mined; without
 *    protection anyone who sees it could send their own register("alice") with more fee and take
 *    the name first. With commit-reveal the first transaction carries only
 *    `keccak256(name ++ owner ++ secret)`, which reveals nothing, and `register` requires a
 *    commitment by msg.sender that is at least `minCommitmentAge` old. When the name finally shows
 *    up in the reveal, a watcher who copies it has no aged commitment of their own and must wait
 *    `minCommitmentAge`, by which time the honest reveal is mined. Copying the commitment itself is
 *    useless: it is bound to the committer's address (and stored per sender, so it cannot be reset
 *    by someone else re-committing the same hash).
 * 2. Key hijacking. The signature names the owner address (and chain and contract), so an attacker
 *    who copies someone's published keys and signature into a record of their own gets a record
 *    whose signature does not match its owner: clients reject it. Without this, an attacker could
 *    bind your keys to their name (or their name to your keys) and redirect or confuse lookups.
 * Together: nobody can take the name you are claiming, and nobody can make a valid record that
 * points at your keys but is owned by someone else.
 *
 * Owner-only functions (update, transfer, release) act on msg.sender's own record, so there is no
 * way to name someone else's: a sender without a record gets NO_RECORD.
 *
 * After `transfer` the record keeps its keys and signature, but the signature names the old owner,
 * so clients reject the record until the new owner calls `update` with their own signed record.
 */
contract IdentityRegistry {
    uint256 public constant MAX_NAME_LENGTH = 64;
    uint256 public constant MAX_MAILBOXES_LENGTH = 1024;
    uint256 public constant SIGNATURE_LENGTH = 64;

    /// Seconds a commitment must age before `register` accepts it, and after which it expires.
    uint256 public immutable minCommitmentAge;
    uint256 public immutable maxCommitmentAge;

    struct Record {
        address owner;
        uint64 version;
        bytes32 identityKey;
        bytes32 encryptionKey;
        string name;
        string mailboxes;
        bytes signature;
    }

    /// keccak256(bytes(name)) => record; owner == address(0) means free.
    mapping(bytes32 => Record) private records;
    /// owner => keccak256(bytes(name)) of their record; zero means none.
    mapping(address => bytes32) private nameOf;
    /// committer => commitment => block.timestamp of the commit.
    mapping(address => mapping(bytes32 => uint256)) private commitments;

    event Committed(address indexed owner, bytes32 commitment);
    event Registered(bytes32 indexed nameHash, address indexed owner, string name, uint64 version);
    event Updated(bytes32 indexed nameHash, address indexed owner, uint64 version);
    event Transferred(bytes32 indexed nameHash, address indexed owner, address indexed newOwner, uint64 version);
    event Released(bytes32 indexed nameHash, address indexed owner);

    constructor(uint256 minAge, uint256 maxAge) {
        require(maxAge >= minAge, "BAD_AGES");
        minCommitmentAge = minAge;
        maxCommitmentAge = maxAge;
    }

    /// commitment = keccak256(abi.encodePacked(name, owner, secret)).
    function commit(bytes32 commitment) external {
        commitments[msg.sender][commitment] = block.timestamp;
        emit Committed(msg.sender, commitment);
    }

    function register(
        string calldata name,
        bytes32 identityKey,
        bytes32 encryptionKey,
        string calldata mailboxes,
        bytes calldata signature,
        bytes32 secret
    ) external {
        require(validName(name), "NAME_INVALID");
        bytes32 commitment = keccak256(abi.encodePacked(name, msg.sender, secret));
        uint256 committedAt = commitments[msg.sender][commitment];
        require(committedAt != 0, "NO_COMMITMENT");
        require(block.timestamp >= committedAt + minCommitmentAge, "COMMITMENT_TOO_NEW");
        require(block.timestamp <= committedAt + maxCommitmentAge, "COMMITMENT_TOO_OLD");
        bytes32 nameHash = keccak256(bytes(name));
        require(records[nameHash].owner == address(0), "NAME_TAKEN");
        require(nameOf[msg.sender] == bytes32(0), "ALREADY_REGISTERED");
        checkFields(identityKey, encryptionKey, mailboxes, signature);
        delete commitments[msg.sender][commitment];

        Record storage r = records[nameHash];
        r.owner = msg.sender;
        r.version = 1;
        r.identityKey = identityKey;
        r.encryptionKey = encryptionKey;
        r.name = name;
        r.mailboxes = mailboxes;
        r.signature = signature;
        nameOf[msg.sender] = nameHash;
        emit Registered(nameHash, msg.sender, name, 1);
    }

    /// Replaces the sender's keys, mailboxes and signature; `version` must be the current one + 1.
    function update(
        bytes32 identityKey,
        bytes32 encryptionKey,
        string calldata mailboxes,
        uint64 version,
        bytes calldata signature
    ) external {
        bytes32 nameHash = nameOf[msg.sender];
        require(nameHash != bytes32(0), "NO_RECORD");
        Record storage r = records[nameHash];
        require(version == r.version + 1, "BAD_VERSION");
        checkFields(identityKey, encryptionKey, mailboxes, signature);
        r.version = version;
        r.identityKey = identityKey;
        r.encryptionKey = encryptionKey;
        r.mailboxes = mailboxes;
        r.signature = signature;
        emit Updated(nameHash, msg.sender, version);
    }

    /// Hands the sender's record to `newOwner`, who must have none. Keys stay; the version bumps.
    function transfer(address newOwner) external {
        bytes32 nameHash = nameOf[msg.sender];
        require(nameHash != bytes32(0), "NO_RECORD");
        require(newOwner != address(0), "BAD_OWNER");
        require(nameOf[newOwner] == bytes32(0), "ALREADY_REGISTERED");
        Record storage r = records[nameHash];
        r.owner = newOwner;
        r.version += 1;
        delete nameOf[msg.sender];
        nameOf[newOwner] = nameHash;
        emit Transferred(nameHash, msg.sender, newOwner, r.version);
    }

    /// Deletes the sender's record, freeing both the name and the owner slot.
    function release() external {
        bytes32 nameHash = nameOf[msg.sender];
        require(nameHash != bytes32(0), "NO_RECORD");
        delete records[nameHash];
        delete nameOf[msg.sender];
        emit Released(nameHash, msg.sender);
    }

    /// The record under `name`; all zero values (owner == address(0)) when there is none.
    function lookup(string calldata name)
        external
        view
        returns (
            address owner,
            bytes32 identityKey,
            bytes32 encryptionKey,
            string memory mailboxes,
            uint64 version,
            bytes memory signature
        )
    {
        Record storage r = records[keccak256(bytes(name))];
        return (r.owner, r.identityKey, r.encryptionKey, r.mailboxes, r.version, r.signature);
    }

    /// The record owned by `owner`; all zero values (name == "") when there is none.
    function lookupByOwner(address owner)
        external
        view
        returns (
            string memory name,
            bytes32 identityKey,
            bytes32 encryptionKey,
            string memory mailboxes,
            uint64 version,
            bytes memory signature
        )
    {
        bytes32 nameHash = nameOf[owner];
        if (nameHash == bytes32(0)) return ("", bytes32(0), bytes32(0), "", 0, "");
        Record storage r = records[nameHash];
        return (r.name, r.identityKey, r.encryptionKey, r.mailboxes, r.version, r.signature);
    }

    /// block.chainid, which clients include in the signed record.
    function chainId() external view returns (uint256) {
        return block.chainid;
    }

    /// True for 1-64 chars of [a-z0-9-] that neither start nor end with '-'.
    function isValidName(string calldata name) external pure returns (bool) {
        return validName(name);
    }

    function validName(string calldata name) private pure returns (bool) {
        bytes calldata b = bytes(name);
        uint256 n = b.length;
        if (n == 0 || n > MAX_NAME_LENGTH) return false;
        if (b[0] == "-" || b[n - 1] == "-") return false;
        for (uint256 i = 0; i < n; i++) {
            bytes1 c = b[i];
            bool ok = (c >= "a" && c <= "z") || (c >= "0" && c <= "9") || c == "-";
            if (!ok) return false;
        }
        return true;
    }

    function checkFields(
        bytes32 identityKey,
        bytes32 encryptionKey,
        string calldata mailboxes,
        bytes calldata signature
    ) private pure {
        require(identityKey != bytes32(0) && encryptionKey != bytes32(0), "BAD_KEY");
        require(bytes(mailboxes).length <= MAX_MAILBOXES_LENGTH, "MAILBOXES_TOO_LONG");
        require(signature.length == SIGNATURE_LENGTH, "SIG_LENGTH");
    }
}
