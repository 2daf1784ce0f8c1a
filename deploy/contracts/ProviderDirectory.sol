// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/**
 * onionpost mailbox-provider directory.
 *
 * A provider is a TRON account (its owner) that lists one onionpost node willing to hold mail for
 * others: the node's Ed25519 identity key (its onion address is derived from the key, so it is not
 * stored twice), a 64-byte binding signature, its terms, and a stake in TRX.
 *
 *   terms: retentionDays (1..365), quotaMB per user (>= 1), price per 30 days (0 = free) in TRX
 *          (token = address(0), price in sun) or in one named TRC-20 token (price in its units).
 *   stake: at least `minStake` sun, locked while listed; after `deregister` it can be withdrawn
 *          once `withdrawalDelay` seconds have passed, so a provider cannot take users' money and
 *          vanish with its stake in the same breath.
 *
 * Payments: `pay` (TRX) and `payToken` (TRC-20, after the payer's approve) forward the price of
 * `periods` x 30 days straight to the provider's owner (the contract holds no one's money but
 * stakes) and extend paidUntil[provider][subscriberTag]. The tag is a hash of the subscriber's
 * identity key salted per provider (computed off-chain), so the chain shows that some account paid
 * this provider, not which onion the payment is for. Only whole periods at the exact price are
 * accepted: an underpayment, an overpayment or the wrong currency reverts.
 *
 * What the contract cannot check: the EVM/TVM cannot verify Ed25519, so `bindingSig` is stored
 * verbatim. Clients verify it off-chain: a signature by `identityKey` over (owner, identityKey,
 * chain id, this contract's address), which proves the node's key holder chose this TRON account,
 * so nobody can list someone else's onion as their own provider.
 *
 * Plain Solidity, flat external signatures (no structs in the ABI), evmVersion cancun, short stable
 * revert strings, like IdentityRegistry.
 */
interface ITRC20 {
    function transferFrom(address from, address to, uint256 value) external returns (bool);
}

contract ProviderDirectory {
    uint256 public constant PERIOD = 30 days;
    uint256 public constant SIGNATURE_LENGTH = 64;
    uint256 public constant MAX_PERIODS = 24;
    uint256 public constant MAX_RETENTION_DAYS = 365;

    /// Least stake a listing needs, sun.
    uint256 public immutable minStake;
    /// Seconds between deregister and the earliest withdraw.
    uint256 public immutable withdrawalDelay;

    uint8 constant NONE = 0;
    uint8 constant ACTIVE = 1;
    uint8 constant LEAVING = 2;

    struct Provider {
        uint8 status;
        uint32 retentionDays;
        uint32 quotaMB;
        uint64 version;
        uint64 withdrawableAt;
        address token;
        bytes32 identityKey;
        uint256 price;
        uint256 stake;
        bytes bindingSig;
    }

    mapping(address => Provider) private providers;
    /// identity key => owner, so one node is listed by one account at a time.
    mapping(bytes32 => address) public ownerOfKey;
    /// Every owner that ever registered, in order (for paging); status tells who is listed now.
    address[] private owners;
    mapping(address => bool) private known;
    /// provider owner => subscriber tag => unix seconds the subscription is paid until.
    mapping(address => mapping(bytes32 => uint64)) private paid;

    event ProviderRegistered(address indexed owner, bytes32 indexed identityKey, uint64 version, uint256 stake);
    event ProviderUpdated(address indexed owner, uint64 version);
    event StakeAdded(address indexed owner, uint256 amount, uint256 stake);
    event ProviderDeregistered(address indexed owner, uint64 withdrawableAt);
    event StakeWithdrawn(address indexed owner, uint256 amount);
    event Paid(address indexed provider, bytes32 indexed subscriberTag, address indexed payer, address token, uint256 amount, uint64 paidUntil);

    constructor(uint256 minStakeSun, uint256 withdrawalDelaySeconds) {
        minStake = minStakeSun;
        withdrawalDelay = withdrawalDelaySeconds;
    }

    function _checkTerms(uint32 retentionDays, uint32 quotaMB) private pure {
        require(retentionDays >= 1 && retentionDays <= MAX_RETENTION_DAYS, "BAD_RETENTION");
        require(quotaMB >= 1, "BAD_QUOTA");
    }

    /// Lists msg.sender's node. msg.value is the stake.
    function register(
        bytes32 identityKey, bytes calldata bindingSig, uint32 retentionDays, uint32 quotaMB, address token, uint256 price
    ) external payable {
        Provider storage p = providers[msg.sender];
        require(p.status == NONE, "ALREADY_LISTED");
        require(identityKey != bytes32(0), "BAD_KEY");
        require(bindingSig.length == SIGNATURE_LENGTH, "BAD_SIGNATURE");
        require(ownerOfKey[identityKey] == address(0), "KEY_TAKEN");
        require(msg.value >= minStake, "STAKE_TOO_LOW");
        _checkTerms(retentionDays, quotaMB);
        p.status = ACTIVE;
        p.identityKey = identityKey;
        p.bindingSig = bindingSig;
        p.retentionDays = retentionDays;
        p.quotaMB = quotaMB;
        p.token = token;
        p.price = price;
        p.stake = msg.value;
        p.version += 1;
        p.withdrawableAt = 0;
        ownerOfKey[identityKey] = msg.sender;
        if (!known[msg.sender]) {
            known[msg.sender] = true;
            owners.push(msg.sender);
        }
        emit ProviderRegistered(msg.sender, identityKey, p.version, msg.value);
    }

    /// New terms for msg.sender's listing. Existing paid-until dates are kept.
    function updateTerms(uint32 retentionDays, uint32 quotaMB, address token, uint256 price) external {
        Provider storage p = providers[msg.sender];
        require(p.status == ACTIVE, "NOT_LISTED");
        _checkTerms(retentionDays, quotaMB);
        p.retentionDays = retentionDays;
        p.quotaMB = quotaMB;
        p.token = token;
        p.price = price;
        p.version += 1;
        emit ProviderUpdated(msg.sender, p.version);
    }

    function addStake() external payable {
        Provider storage p = providers[msg.sender];
        require(p.status == ACTIVE, "NOT_LISTED");
        require(msg.value > 0, "NO_VALUE");
        p.stake += msg.value;
        emit StakeAdded(msg.sender, msg.value, p.stake);
    }

    /// Leaves the directory; the stake stays locked for `withdrawalDelay` seconds.
    function deregister() external {
        Provider storage p = providers[msg.sender];
        require(p.status == ACTIVE, "NOT_LISTED");
        p.status = LEAVING;
        p.withdrawableAt = uint64(block.timestamp + withdrawalDelay);
        p.version += 1;
        delete ownerOfKey[p.identityKey];
        emit ProviderDeregistered(msg.sender, p.withdrawableAt);
    }

    function withdraw() external {
        Provider storage p = providers[msg.sender];
        require(p.status == LEAVING, "NOT_LEAVING");
        require(block.timestamp >= p.withdrawableAt, "STAKE_LOCKED");
        uint256 amount = p.stake;
        p.stake = 0;
        p.status = NONE;
        (bool ok, ) = payable(msg.sender).call{value: amount}("");
        require(ok, "TRANSFER_FAILED");
        emit StakeWithdrawn(msg.sender, amount);
    }

    function _extend(address provider, bytes32 tag, uint256 periods) private returns (uint64) {
        uint64 current = paid[provider][tag];
        uint256 from = current > block.timestamp ? current : block.timestamp;
        uint64 until = uint64(from + periods * PERIOD);
        paid[provider][tag] = until;
        return until;
    }

    function _payable(address provider, uint256 periods) private view returns (Provider storage p) {
        p = providers[provider];
        require(p.status == ACTIVE, "NOT_LISTED");
        require(periods >= 1 && periods <= MAX_PERIODS, "BAD_PERIODS");
        require(p.price > 0, "FREE_PROVIDER");
    }

    /// Pays `periods` x 30 days of a TRX-priced provider; msg.value must be exactly price x periods.
    function pay(address provider, bytes32 subscriberTag, uint32 periods) external payable {
        Provider storage p = _payable(provider, periods);
        require(p.token == address(0), "WRONG_CURRENCY");
        uint256 amount = p.price * periods;
        require(msg.value == amount, "WRONG_AMOUNT");
        uint64 until = _extend(provider, subscriberTag, periods);
        (bool ok, ) = payable(provider).call{value: amount}("");
        require(ok, "TRANSFER_FAILED");
        emit Paid(provider, subscriberTag, msg.sender, address(0), amount, until);
    }

    /// Pays a TRC-20-priced provider: `token` must be the provider's token, and msg.sender must have
    /// approved this contract for price x periods.
    function payToken(address provider, bytes32 subscriberTag, uint32 periods, address token) external {
        Provider storage p = _payable(provider, periods);
        require(p.token != address(0) && p.token == token, "WRONG_CURRENCY");
        uint256 amount = p.price * periods;
        uint64 until = _extend(provider, subscriberTag, periods);
        // Some TRC-20 tokens return nothing instead of true: accept empty return data, refuse false.
        (bool ok, bytes memory ret) = token.call(abi.encodeWithSelector(ITRC20.transferFrom.selector, msg.sender, provider, amount));
        require(ok && (ret.length == 0 || abi.decode(ret, (bool))), "TOKEN_TRANSFER_FAILED");
        emit Paid(provider, subscriberTag, msg.sender, token, amount, until);
    }

    // ---- reads -------------------------------------------------------------------------------

    /// status: 0 none, 1 listed, 2 deregistered (stake withdrawable at withdrawableAt).
    function provider(address owner) external view returns (
        uint8 status, bytes32 identityKey, bytes memory bindingSig, uint32 retentionDays, uint32 quotaMB,
        address token, uint256 price, uint256 stake, uint64 withdrawableAt, uint64 version
    ) {
        Provider storage p = providers[owner];
        return (p.status, p.identityKey, p.bindingSig, p.retentionDays, p.quotaMB, p.token, p.price, p.stake, p.withdrawableAt, p.version);
    }

    function paidUntil(address provider_, bytes32 subscriberTag) external view returns (uint64) {
        return paid[provider_][subscriberTag];
    }

    /// The chain id bindings are signed for (TRON's block.chainid).
    function chainId() external view returns (uint256) {
        return block.chainid;
    }

    function ownerCount() external view returns (uint256) {
        return owners.length;
    }

    /// Owners [offset, offset+limit) in registration order (limit capped at 100); check each one's status.
    function ownersPage(uint256 offset, uint256 limit) external view returns (address[] memory page) {
        if (limit > 100) limit = 100;
        if (offset >= owners.length) return new address[](0);
        uint256 end = offset + limit > owners.length ? owners.length : offset + limit;
        page = new address[](end - offset);
        for (uint256 i = offset; i < end; i++) page[i - offset] = owners[i];
    }
}
