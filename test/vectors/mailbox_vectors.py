#!/usr/bin/env python3
"""Known-answer vectors for the onionpost mailbox protocol (PROTOCOL.md §14), from the text alone.

This is an independent implementation of PROTOCOL.md §14 (frame layouts of every request and
answer, capability hashes, the six signed statements, the subscriber tag and its key) and of the
provider directory's binding signature and subscriber tag as described in the doc comment at the
top of src/crypto/provider.ts, and of a user's public queue at a provider (its id and read
capability) as described in the doc comment of publicQueueId in the same file, and of a contact queue's
read capability (PROTOCOL.md §14.2 "Contact queue"), written from that
text without reading the TypeScript code that implements it (src/provider/*.ts, the function bodies
of src/crypto/provider.ts).
test/unit/mailbox-vectors.test.ts checks the project's code against its output. CI needs no
Python: the JSON is checked in; only regenerating it needs this script.

The one convention taken from the code rather than §14 is the signing of a statement,
`signDomain(key, domain, message)` in src/crypto/keys.ts (read for this alone; PROTOCOL.md §0 says
the same): an Ed25519 signature (RFC 8032, deterministic) over

    "onionpost/" ‖ domain ‖ 0x00 ‖ message

so signatures are known answers too.

Regenerate (from the repository root):

    python3 test/vectors/mailbox_vectors.py > test/vectors/mailbox.json

Dependencies: Python >= 3.10 and the `cryptography` package (Ed25519, HKDF; SHA-256 and HMAC
come from the standard library):

    python3 -m pip install cryptography

The output is deterministic: every "random" input (seeds, queues, capabilities, envelopes) is
derived from a label, so running the script twice gives the same bytes. Every valid frame is
decoded again by this script's own decoder and must give back its fields; every invalid frame must
be refused by it with the code the vector expects.

Where the text leaves something open, the most literal reading is taken or the case is left out;
see AMBIGUITIES.
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from primitives import ed_pub, hexify, hkdf, hmac256, label_bytes, sha256, sign, u8, u16, u32, u64, verify  # noqa: E402,F401

AMBIGUITIES = [
    "§14.1 bounds envelopes by maxEnvelope, whose default is in §12 (262192 = the top bucket + 48). The vectors use "
    "limits.maxEnvelope below; a decoder configured with another bound must refuse prefixes above its own bound.",
    "§14.1 'BAD_SIZE (not an envelope size)' could also mean a length that is not a padding bucket; the codec rule "
    "is only 'over maxEnvelope', so every valid envelope here is a bucket size (1024) or exactly maxEnvelope, and no "
    "vector asks a decoder about a non-bucket length (a zero-length envelope included).",
    "§14.1 'A HELD answer carries one envelope always and more only while the answer stays within maxEnvelope "
    "bytes' is a rule for the provider composing the answer; no vector asks a decoder to refuse a HELD over it "
    "(the valid HELD vectors all stay within it, or carry one envelope).",
    "ERROR: a retryable byte other than 0 or 1 is MALFORMED (the table says '(0/1)'); a reason longer than 200 "
    "bytes is a count out of range (MALFORMED). Whether an unknown ERROR code is MALFORMED is not said (codes are "
    "'never renumbered', so new ones may come), so no vector asks.",
    "When a frame has a length prefix over maxEnvelope and is also cut short after the prefix, BAD_SIZE wins "
    "(§14.1: 'read from its prefix before the envelope').",
    "Found when src/provider was checked against the first version of these vectors, and written into "
    "PROTOCOL.md: §12 said maxEnvelope 262144, but §1 needs a version-1 envelope of the top bucket (262144 + 48) "
    "to arrive so it can be answered UNSUPPORTED_VERSION, and src/limits.ts has 262192 (the vectors used 262144); "
    "§14.1 said u64 without a bound, src/provider refuses values over 2^53 - 1 (the first vectors made them valid "
    "frames); §14.1 did not say which direction's types are unknown (the first vectors read an answer type at a "
    "provider, and a request type at a client, as unknown, as src/provider's service did but its client did not) "
    "nor that an ERROR reason that is not UTF-8 is MALFORMED (the first vectors asked nothing about it).",
    "ACCOUNT (0x07) and ACCOUNT_STATUS (0x86) came after the first vectors, and their vectors are appended after "
    "the earlier ones (frames, statements, invalid frames) so that those stay byte for byte. Two earlier invalid "
    "frames, 'request type 0x07' (a FETCH body under type 0x07) and 'answer type 0x86' (OK's empty body under type "
    "0x86), were written when those types were unknown; they are still MALFORMED, now because the body is too "
    "short for an ACCOUNT (104 bytes) or an ACCOUNT_STATUS (108 bytes).",
    "§14.4 says a priced provider never answers ACCOUNT_STATUS with paid-until 0 (0 means a free provider): with no "
    "payment found it answers 1. That is a rule for the provider; a decoder takes any value.",
    "WATCH (0x08) and NOTIFY (0x87) came after ACCOUNT, and their vectors are appended after ACCOUNT's (frames, invalid "
    "frames) so that every earlier entry stays byte for byte. No earlier invalid frame used type 0x08 or 0x87. A NOTIFY "
    "is sent unasked with the WATCH's request id; a decoder takes any id, and which NOTIFYs a client ignores (one it "
    "did not ask for), the 250 ms between two NOTIFYs of one watch and the 16 watches per connection are rules for "
    "the provider and the client, not for the codec, so no vector asks about them.",
]

# ---------------------------------------------------------------------------------------------
# §0 primitives

VERSION = 1
ZERO16 = bytes(16)
ZERO32 = bytes(32)
MAX_ENVELOPE = 262144 + 48  # §12
FETCH_LIMIT = (1, 64)
ACK_COUNT = (1, 1024)
HELD_COUNT = (0, 64)
MAX_REASON = 200
NOW = 1_767_225_600_000  # 2026-01-01T00:00:00Z
DAY = 24 * 3600 * 1000
MAX_SAFE = 2**53 - 1


class MailboxError(Exception):
    def __init__(self, code: str, why: str = ""):
        super().__init__(f"{code}: {why}")
        self.code = code



def rnd(label: str, n: int) -> bytes:
    """Deterministic stand-in for randomness: every value drawn is recorded in the vectors."""
    return label_bytes("onionpost mailbox vectors", label, n)


B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def base58check(payload: bytes) -> str:
    """A TRON address's usual text form (0x41-prefixed 21 bytes, base58 with a double-SHA-256 checksum)."""
    b = payload + sha256(sha256(payload))[:4]
    n = int.from_bytes(b, "big")
    s = ""
    while n:
        n, r = divmod(n, 58)
        s = B58[r] + s
    return "1" * (len(b) - len(b.lstrip(b"\x00"))) + s


# ---------------------------------------------------------------------------------------------
# §14.2 capabilities

def capability_hash(cap: bytes) -> bytes:
    assert len(cap) == 32
    return sha256(b"onionpost/mailbox-capability/v1" + cap)


# ---------------------------------------------------------------------------------------------
# §14.3 the six signed statements (body = what signDomain's `message` is)

D_SUBSCRIBE = "mailbox-subscribe/v1"
D_QUEUE = "mailbox-queue/v1"
D_TERMS = "mailbox-terms/v1"
D_DEPOSIT = "mailbox-deposit/v1"
D_ACCOUNT = "mailbox-account/v1"
D_ACCOUNT_STATUS = "mailbox-account-status/v1"
OP_CREATE, OP_REMOVE = 1, 2


def subscribe_body(provider: bytes, subscriber: bytes, time: int, tag: bytes | None) -> bytes:
    return provider + subscriber + u64(time) + (tag if tag is not None else ZERO32)


def queue_body(op: int, provider: bytes, owner: bytes, time: int, queue: bytes,
               write_hash: bytes | None, read_hash: bytes | None) -> bytes:
    if op == OP_REMOVE:
        assert write_hash is None and read_hash is None
    wh = write_hash if write_hash is not None else ZERO32
    rh = read_hash if read_hash is not None else ZERO32
    return u8(op) + provider + owner + u64(time) + queue + wh + rh


def terms_body(provider: bytes, subscriber: bytes, retention: int, quota: int, time: int) -> bytes:
    return provider + subscriber + u64(retention) + u64(quota) + u64(time)


def deposit_body(provider: bytes, queue: bytes, digest: bytes, deposited_at: int, expires_at: int) -> bytes:
    return provider + queue + digest + u64(deposited_at) + u64(expires_at)


def account_body(provider: bytes, subscriber: bytes, time: int) -> bytes:
    return provider + subscriber + u64(time)


def account_status_body(provider: bytes, subscriber: bytes, paid_until: int, grace: int, held_count: int,
                        held_bytes: int, quota: int, time: int) -> bytes:
    return (provider + subscriber + u64(paid_until) + u64(grace) + u32(held_count) + u64(held_bytes) + u64(quota)
            + u64(time))


# ---------------------------------------------------------------------------------------------
# §14.4 subscriber tag; src/crypto/provider.ts's comment: the provider binding

def subscriber_tag_key(identity_seed: bytes) -> bytes:
    return hkdf(ZERO32, identity_seed, b"onionpost/subscriber-tag-key/v1", 32)


def subscriber_tag(tag_key: bytes, provider_ik: bytes) -> bytes:
    return hmac256(tag_key, b"onionpost/subscriber-tag/v1" + provider_ik)


# src/crypto/provider.ts's comment (and PROTOCOL.md §14.2): a user's public queue at a provider, which
# anyone who knows both identity keys can name, and whose read capability only the owner can derive

def public_queue_id(owner_ik: bytes, provider_ik: bytes) -> bytes:
    assert len(owner_ik) == 32 and len(provider_ik) == 32
    return sha256(b"onionpost/public-queue/v1" + owner_ik + provider_ik)[:16]


def queue_read_key(identity_seed: bytes) -> bytes:
    return hkdf(ZERO32, identity_seed, b"onionpost/queue-read-key/v1", 32)


def public_queue_read_cap(read_key: bytes, provider_ik: bytes) -> bytes:
    assert len(read_key) == 32 and len(provider_ik) == 32
    return hmac256(read_key, b"onionpost/public-queue-read/v1" + provider_ik)


# PROTOCOL.md §14.2 "Contact queue": a queue the user drew for one contact at a provider; its read capability
# is derived from the same read key, so the user stores nothing secret for it but the write capability

def contact_queue_read_cap(read_key: bytes, provider_ik: bytes, queue: bytes) -> bytes:
    assert len(read_key) == 32 and len(provider_ik) == 32 and len(queue) == 16
    return hmac256(read_key, b"onionpost/contact-queue-read/v1" + provider_ik + queue)


D_BINDING = "provider-binding/v1"


def binding_body(owner: bytes, identity_key: bytes, chain_id: int, contract: bytes) -> bytes:
    assert len(owner) == 21 and owner[0] == 0x41 and len(contract) == 21 and contract[0] == 0x41
    return owner + identity_key + chain_id.to_bytes(32, "big") + contract


# ---------------------------------------------------------------------------------------------
# §14.1 frames

REQUESTS = {0x01: "SUBSCRIBE", 0x02: "CREATE_QUEUE", 0x03: "REMOVE_QUEUE", 0x04: "DEPOSIT", 0x05: "FETCH", 0x06: "ACK",
            0x07: "ACCOUNT", 0x08: "WATCH"}
ANSWERS = {0x81: "TERMS", 0x82: "OK", 0x83: "DEPOSITED", 0x84: "HELD", 0x85: "ACKED", 0x86: "ACCOUNT_STATUS",
           0x87: "NOTIFY", 0xFF: "ERROR"}
TYPE_OF = {name: t for t, name in {**REQUESTS, **ANSWERS}.items()}
ERROR_CODES = {1: "MALFORMED", 2: "NO_CAPABILITY", 3: "OVER_QUOTA", 4: "BAD_SIZE", 5: "TOO_MANY_USERS",
               6: "TOO_MANY_QUEUES", 7: "NOT_SUBSCRIBED", 8: "QUEUE_EXISTS", 9: "BAD_SIGNATURE", 10: "STALE",
               11: "RATE_LIMITED", 12: "BUSY", 13: "INTERNAL", 14: "NOT_PAID"}
RETRYABLE = {3, 11, 12, 13}


def none_if_zero(b: bytes) -> bytes | None:
    return None if b == bytes(len(b)) else b


def encode(f: dict) -> bytes:
    """A frame from its fields (the JSON's `fields`, bytes as bytes). Zero-meaning fields take None."""
    t = TYPE_OF[f["type"]]
    head = u8(VERSION) + u8(t) + u32(f["requestId"])
    z = lambda b: b if b is not None else ZERO32  # noqa: E731
    match f["type"]:
        case "SUBSCRIBE":
            body = f["identity"] + u64(f["time"]) + z(f["tag"]) + f["signature"]
        case "CREATE_QUEUE":
            body = f["identity"] + u64(f["time"]) + f["queue"] + z(f["writeHash"]) + f["readHash"] + f["signature"]
        case "REMOVE_QUEUE":
            body = f["identity"] + u64(f["time"]) + f["queue"] + f["signature"]
        case "DEPOSIT":
            body = f["queue"] + z(f["writeCapability"]) + u32(len(f["envelope"])) + f["envelope"]
        case "FETCH":
            body = f["queue"] + f["readCapability"] + u64(f["afterSeq"]) + u16(f["limit"])
        case "ACK":
            body = f["queue"] + f["readCapability"] + u16(len(f["seqs"])) + b"".join(u64(s) for s in f["seqs"])
        case "ACCOUNT":
            body = f["identity"] + u64(f["time"]) + f["signature"]
        case "WATCH":
            body = f["queue"] + f["readCapability"]
        case "TERMS":
            body = u64(f["retentionMs"]) + u64(f["quotaBytes"]) + u64(f["time"]) + f["signature"]
        case "OK":
            body = b""
        case "DEPOSITED":
            body = u64(f["seq"]) + f["digest"] + u64(f["depositedAt"]) + u64(f["expiresAt"]) + f["signature"]
        case "HELD":
            body = u16(len(f["envelopes"])) + b"".join(
                u64(e["seq"]) + u64(e["depositedAt"]) + u32(len(e["envelope"])) + e["envelope"] for e in f["envelopes"])
        case "ACKED":
            body = u32(f["count"])
        case "ACCOUNT_STATUS":
            body = (u64(f["paidUntil"]) + u64(f["graceMs"]) + u32(f["heldCount"]) + u64(f["heldBytes"])
                    + u64(f["quotaBytes"]) + u64(f["time"]) + f["signature"])
        case "NOTIFY":
            body = f["queue"]
        case "ERROR":
            reason = f["reason"].encode("utf-8")
            body = u8(f["code"]) + u8(1 if f["retryable"] else 0) + u8(len(reason)) + reason
        case _:
            raise AssertionError(f["type"])
    return head + body


class Reader:
    def __init__(self, b: bytes):
        self.b = b
        self.at = 0

    def take(self, n: int) -> bytes:
        if self.at + n > len(self.b):
            raise MailboxError("MALFORMED", f"cut: {n} bytes wanted at {self.at} of {len(self.b)}")
        out = self.b[self.at:self.at + n]
        self.at += n
        return out

    def int(self, n: int) -> int:
        v = int.from_bytes(self.take(n), "big")
        if v > MAX_SAFE:
            raise MailboxError("MALFORMED", f"u64 {v} over 2^53 - 1")
        return v

    def envelope(self, max_envelope: int) -> bytes:
        n = self.int(4)
        if n > max_envelope:
            raise MailboxError("BAD_SIZE", f"envelope of {n} bytes")
        return self.take(n)

    def end(self) -> None:
        if self.at != len(self.b):
            raise MailboxError("MALFORMED", f"{len(self.b) - self.at} trailing bytes")


def count(n: int, lo_hi: tuple[int, int], what: str) -> int:
    if not lo_hi[0] <= n <= lo_hi[1]:
        raise MailboxError("MALFORMED", f"{what} {n} out of {lo_hi}")
    return n


def decode(b: bytes, direction: str, max_envelope: int = MAX_ENVELOPE) -> dict:
    r = Reader(b)
    version, t, rid = r.int(1), r.int(1), r.int(4)
    if version != VERSION:
        raise MailboxError("MALFORMED", f"version {version}")
    names = REQUESTS if direction == "request" else ANSWERS
    if t not in names:
        raise MailboxError("MALFORMED", f"type {t:#x} is not a {direction}")
    f: dict = {"type": names[t], "requestId": rid}
    match f["type"]:
        case "SUBSCRIBE":
            f |= {"identity": r.take(32), "time": r.int(8), "tag": none_if_zero(r.take(32)), "signature": r.take(64)}
        case "CREATE_QUEUE":
            f |= {"identity": r.take(32), "time": r.int(8), "queue": r.take(16), "writeHash": none_if_zero(r.take(32)),
                  "readHash": r.take(32), "signature": r.take(64)}
        case "REMOVE_QUEUE":
            f |= {"identity": r.take(32), "time": r.int(8), "queue": r.take(16), "signature": r.take(64)}
        case "DEPOSIT":
            f |= {"queue": r.take(16), "writeCapability": none_if_zero(r.take(32)), "envelope": r.envelope(max_envelope)}
        case "FETCH":
            f |= {"queue": r.take(16), "readCapability": r.take(32), "afterSeq": r.int(8),
                  "limit": count(r.int(2), FETCH_LIMIT, "limit")}
        case "ACK":
            f |= {"queue": r.take(16), "readCapability": r.take(32)}
            n = count(r.int(2), ACK_COUNT, "ack count")
            f["seqs"] = [r.int(8) for _ in range(n)]
        case "ACCOUNT":
            f |= {"identity": r.take(32), "time": r.int(8), "signature": r.take(64)}
        case "WATCH":
            f |= {"queue": r.take(16), "readCapability": r.take(32)}
        case "TERMS":
            f |= {"retentionMs": r.int(8), "quotaBytes": r.int(8), "time": r.int(8), "signature": r.take(64)}
        case "OK":
            pass
        case "DEPOSITED":
            f |= {"seq": r.int(8), "digest": r.take(32), "depositedAt": r.int(8), "expiresAt": r.int(8),
                  "signature": r.take(64)}
        case "HELD":
            n = count(r.int(2), HELD_COUNT, "held count")
            f["envelopes"] = [{"seq": r.int(8), "depositedAt": r.int(8), "envelope": r.envelope(max_envelope)}
                              for _ in range(n)]
        case "ACKED":
            f["count"] = r.int(4)
        case "ACCOUNT_STATUS":
            f |= {"paidUntil": r.int(8), "graceMs": r.int(8), "heldCount": r.int(4), "heldBytes": r.int(8),
                  "quotaBytes": r.int(8), "time": r.int(8), "signature": r.take(64)}
        case "NOTIFY":
            f["queue"] = r.take(16)
        case "ERROR":
            code, retryable = r.int(1), r.int(1)
            if retryable not in (0, 1):
                raise MailboxError("MALFORMED", f"retryable {retryable}")
            n = count(r.int(1), (0, MAX_REASON), "reason length")
            try:
                reason = r.take(n).decode("utf-8")
            except UnicodeDecodeError:
                raise MailboxError("MALFORMED", "reason is not UTF-8") from None
            f |= {"code": code, "retryable": retryable == 1, "reason": reason}
    r.end()
    return f


# ---------------------------------------------------------------------------------------------
# the vectors

class Fill(bytes):
    """An envelope of one repeated byte, listed in the JSON as {fill, length} instead of its hex."""

    def __new__(cls, byte: int, length: int):
        assert byte not in (0x00, 0xFF)  # never the last byte of a length prefix, so parts() finds it
        self = super().__new__(cls, bytes([byte]) * length)
        self.byte = byte
        return self

    def json_form(self) -> dict:
        return {"fill": self.byte, "length": len(self)}


class Party:
    def __init__(self, name: str):
        self.name = name
        self.seed = rnd(f"{name}/identity-seed", 32)
        self.ik = ed_pub(self.seed)
        self.tag_key = subscriber_tag_key(self.seed)

    def json(self) -> dict:
        return hexify({"identitySeed": self.seed, "identityKey": self.ik, "tagKey": self.tag_key})


def main() -> None:
    provider, other_provider = Party("provider"), Party("otherProvider")
    alice, bob = Party("alice"), Party("bob")
    parties = {"provider": provider, "otherProvider": other_provider, "alice": alice, "bob": bob}
    P = provider.ik
    out: dict = {
        "about": (
            "onionpost mailbox protocol (PROTOCOL.md §14) and provider directory binding/tag known-answer vectors, "
            "computed by test/vectors/mailbox_vectors.py: an independent Python implementation written from "
            "PROTOCOL.md §14 and the doc comment of src/crypto/provider.ts, not from src/provider. Bytes are hex; "
            "signatures are deterministic Ed25519 over 'onionpost/' || domain || 0x00 || body (signDomain)."
        ),
        "ambiguities": AMBIGUITIES,
        "conventions": (
            "frames[].fields are the decoded fields: bytes as hex, u64/u32/u16 as JSON numbers, a field whose zero "
            "value means 'none' (SUBSCRIBE tag, CREATE_QUEUE writeHash, DEPOSIT writeCapability) as null when zero, "
            "ERROR retryable as a boolean. A frame with large envelopes gives 'frameParts' instead of 'frame': hex "
            "strings and {fill: byte, length: n} runs (n copies of the byte), concatenated, plus 'frameSha256'; its "
            "envelopes in 'fields' are {fill, length} too. invalidFrames give the decoder's 'direction' and either "
            "'bytes' or a 'mutation' {of: a frames[].name, then in this order any of truncate: n (keep the first n "
            "bytes), set: [offset, byte], append: hex}."
        ),
        "now": NOW,
        "limits": {"maxEnvelope": MAX_ENVELOPE, "fetchLimit": list(FETCH_LIMIT), "ackCount": list(ACK_COUNT),
                   "heldCount": list(HELD_COUNT), "maxReason": MAX_REASON},
        "parties": {k: p.json() for k, p in parties.items()},
    }

    # §14.2 capability hashes
    caps = [("zero", ZERO32), ("ff", b"\xff" * 32)] + [(f"random {i}", rnd(f"capability/{i}", 32)) for i in range(3)]
    out["capabilities"] = [hexify({"name": n, "capability": c, "hash": capability_hash(c)}) for n, c in caps]

    # queues of alice's: a private one (one contact's write capability) and a public one
    q_priv, q_pub = rnd("queue/private", 16), rnd("queue/public", 16)
    wcap, rcap = rnd("queue/private/write", 32), rnd("queue/private/read", 32)
    rcap_pub = rnd("queue/public/read", 32)
    out["queues"] = hexify({
        "private": {"queue": q_priv, "writeCapability": wcap, "writeHash": capability_hash(wcap),
                    "readCapability": rcap, "readHash": capability_hash(rcap)},
        "public": {"queue": q_pub, "writeCapability": None, "writeHash": None,
                   "readCapability": rcap_pub, "readHash": capability_hash(rcap_pub)},
    })

    # §14.4 tag keys and tags, and the provider binding
    tags = []
    for sub in (alice, bob):
        for prov in (provider, other_provider):
            tags.append(hexify({"subscriber": sub.name, "identitySeed": sub.seed, "tagKey": sub.tag_key,
                                "provider": prov.name, "providerIdentityKey": prov.ik,
                                "tag": subscriber_tag(sub.tag_key, prov.ik)}))
    out["subscriberTags"] = tags

    # each user's public queue at each provider: id from the two keys, read capability from the seed
    public_queues = []
    for owner_p in (alice, bob):
        for prov in (provider, other_provider):
            read_key = queue_read_key(owner_p.seed)
            assert read_key != owner_p.tag_key
            read_cap = public_queue_read_cap(read_key, prov.ik)
            public_queues.append(hexify({
                "owner": owner_p.name, "identitySeed": owner_p.seed, "ownerIdentityKey": owner_p.ik,
                "provider": prov.name, "providerIdentityKey": prov.ik, "queue": public_queue_id(owner_p.ik, prov.ik),
                "readKey": read_key, "readCapability": read_cap, "readHash": capability_hash(read_cap)}))
    assert len({q["queue"] for q in public_queues}) == len({q["readCapability"] for q in public_queues}) == 4
    out["publicQueues"] = public_queues
    # each user's contact queues (§14.2): a drawn queue id at a provider, read capability from the seed; the last
    # one reuses the public queue's id at that provider, and still gets another read capability (another label)
    contact_queues = []
    for owner_p in (alice, bob):
        read_key = queue_read_key(owner_p.seed)
        picks = [(provider, rnd(f"contact-queue/{owner_p.name}/provider/0", 16)),
                 (provider, rnd(f"contact-queue/{owner_p.name}/provider/1", 16)),
                 (other_provider, rnd(f"contact-queue/{owner_p.name}/otherProvider/0", 16)),
                 (other_provider, public_queue_id(owner_p.ik, other_provider.ik))]
        for prov, queue in picks:
            read_cap = contact_queue_read_cap(read_key, prov.ik, queue)
            assert read_cap != public_queue_read_cap(read_key, prov.ik)
            contact_queues.append(hexify({
                "owner": owner_p.name, "identitySeed": owner_p.seed, "ownerIdentityKey": owner_p.ik,
                "provider": prov.name, "providerIdentityKey": prov.ik, "queue": queue,
                "isPublicQueueId": queue == public_queue_id(owner_p.ik, prov.ik),
                "readKey": read_key, "readCapability": read_cap, "readHash": capability_hash(read_cap)}))
    assert len({q["readCapability"] for q in contact_queues}) == 8
    out["contactQueues"] = contact_queues
    alice_tag = subscriber_tag(alice.tag_key, P)
    bob_tag = subscriber_tag(bob.tag_key, P)

    owner = b"\x41" + rnd("tron/owner", 20)
    contract = b"\x41" + rnd("tron/contract", 20)
    other_contract = b"\x41" + rnd("tron/contract-2", 20)
    bindings = []
    for name, signer, ow, chain, ct in [
        ("provider on chain 1", provider, owner, 1, contract),
        ("provider on a 32-bit chain id (nile)", provider, owner, 0xCD8690DC, contract),
        ("provider on a chain id over 2^64", provider, owner, 2**64 + 5, contract),
        ("other provider, same owner, other contract", other_provider, owner, 728126428, other_contract),
    ]:
        body = binding_body(ow, signer.ik, chain, ct)
        sig = sign(signer.seed, D_BINDING, body)
        assert verify(signer.ik, D_BINDING, body, sig)
        bindings.append(hexify({"name": name, "signer": signer.name, "identityKey": signer.ik, "owner": ow,
                                "ownerBase58": base58check(ow), "chainId": str(chain), "contract": ct,
                                "contractBase58": base58check(ct), "domain": D_BINDING, "body": body,
                                "signature": sig}))
    out["bindings"] = bindings
    b0 = bindings[0]
    wrong = []
    for name, changes in [("another owner", {"owner": b"\x41" + rnd("tron/owner-2", 20)}),
                          ("another identity key", {"identityKey": bob.ik}),
                          ("another chain id", {"chainId": 2}),
                          ("another contract", {"contract": other_contract})]:
        fields = {"owner": owner, "identityKey": P, "chainId": 1, "contract": contract, **changes}
        body = binding_body(fields["owner"], fields["identityKey"], fields["chainId"], fields["contract"])
        assert not verify(fields["identityKey"], D_BINDING, body, bytes.fromhex(b0["signature"]))
        wrong.append(hexify({"name": f"binding 0's signature does not verify for {name}", "owner": fields["owner"],
                             "ownerBase58": base58check(fields["owner"]), "identityKey": fields["identityKey"],
                             "chainId": str(fields["chainId"]), "contract": fields["contract"],
                             "contractBase58": base58check(fields["contract"]), "signature": b0["signature"]}))
    out["invalidBindings"] = wrong

    # §14.3 statements
    statements = []

    def statement(name: str, kind: str, signer: Party, domain: str, body: bytes, fields: dict) -> bytes:
        sig = sign(signer.seed, domain, body)
        assert verify(signer.ik, domain, body, sig)
        statements.append(hexify({"name": name, "kind": kind, "signer": signer.name, "domain": domain,
                                  "fields": fields, "body": body, "signature": sig}))
        return sig

    t_sub = NOW - 1234
    sig_sub = statement("alice subscribes with her tag", "subscribe", alice, D_SUBSCRIBE,
                        subscribe_body(P, alice.ik, t_sub, alice_tag),
                        {"provider": P, "subscriber": alice.ik, "time": t_sub, "tag": alice_tag})
    sig_sub_free = statement("bob subscribes without a tag (free provider)", "subscribe", bob, D_SUBSCRIBE,
                             subscribe_body(P, bob.ik, NOW, None),
                             {"provider": P, "subscriber": bob.ik, "time": NOW, "tag": None})
    t_q = NOW + 17
    sig_create = statement("alice creates her private queue", "queue", alice, D_QUEUE,
                           queue_body(OP_CREATE, P, alice.ik, t_q, q_priv, capability_hash(wcap), capability_hash(rcap)),
                           {"op": "create", "provider": P, "owner": alice.ik, "time": t_q, "queue": q_priv,
                            "writeHash": capability_hash(wcap), "readHash": capability_hash(rcap)})
    sig_create_pub = statement("alice creates her public queue (zero write hash)", "queue", alice, D_QUEUE,
                               queue_body(OP_CREATE, P, alice.ik, t_q + 1, q_pub, None, capability_hash(rcap_pub)),
                               {"op": "create", "provider": P, "owner": alice.ik, "time": t_q + 1, "queue": q_pub,
                                "writeHash": None, "readHash": capability_hash(rcap_pub)})
    sig_remove = statement("alice removes her private queue", "queue", alice, D_QUEUE,
                           queue_body(OP_REMOVE, P, alice.ik, t_q + 2 * DAY, q_priv, None, None),
                           {"op": "remove", "provider": P, "owner": alice.ik, "time": t_q + 2 * DAY, "queue": q_priv,
                            "writeHash": None, "readHash": None})
    retention, quota, t_terms = 14 * DAY, 256 * 1024 * 1024, NOW + 3
    sig_terms = statement("the provider's terms for alice", "terms", provider, D_TERMS,
                          terms_body(P, alice.ik, retention, quota, t_terms),
                          {"provider": P, "subscriber": alice.ik, "retentionMs": retention, "quotaBytes": quota,
                           "time": t_terms})
    sig_terms_bob = statement("the provider's terms for bob (no retention promised, zero quota)", "terms", provider,
                              D_TERMS, terms_body(P, bob.ik, 0, 0, NOW),
                              {"provider": P, "subscriber": bob.ik, "retentionMs": 0, "quotaBytes": 0, "time": NOW})
    env1 = rnd("envelope/1", 1024)
    env2 = rnd("envelope/2", 1024)
    dep_at, exp_at = NOW + 500, NOW + 500 + retention
    sig_dep = statement("the provider's receipt for a deposit in alice's private queue", "deposit", provider, D_DEPOSIT,
                        deposit_body(P, q_priv, sha256(env1), dep_at, exp_at),
                        {"provider": P, "queue": q_priv, "digest": sha256(env1), "depositedAt": dep_at,
                         "expiresAt": exp_at})
    sig_dep_pub = statement("the provider's receipt for a deposit in alice's public queue", "deposit", provider,
                            D_DEPOSIT, deposit_body(P, q_pub, sha256(env2), dep_at + 1, exp_at + 1),
                            {"provider": P, "queue": q_pub, "digest": sha256(env2), "depositedAt": dep_at + 1,
                             "expiresAt": exp_at + 1})
    out["statements"] = statements

    # signatures that must not verify: a statement replayed at another provider, or for another subscriber/field
    bad_statements = []

    def must_fail(name: str, kind: str, signer_ik: bytes, domain: str, body: bytes, fields: dict, sig: bytes) -> None:
        assert not verify(signer_ik, domain, body, sig), name
        bad_statements.append(hexify({"name": name, "kind": kind, "signerKey": signer_ik, "domain": domain,
                                      "fields": fields, "body": body, "signature": sig}))

    op = other_provider.ik
    must_fail("alice's subscription replayed at another provider", "subscribe", alice.ik, D_SUBSCRIBE,
              subscribe_body(op, alice.ik, t_sub, alice_tag),
              {"provider": op, "subscriber": alice.ik, "time": t_sub, "tag": alice_tag}, sig_sub)
    must_fail("alice's subscription with its time moved by 1 ms", "subscribe", alice.ik, D_SUBSCRIBE,
              subscribe_body(P, alice.ik, t_sub + 1, alice_tag),
              {"provider": P, "subscriber": alice.ik, "time": t_sub + 1, "tag": alice_tag}, sig_sub)
    must_fail("bob's tagless subscription claimed by alice", "subscribe", alice.ik, D_SUBSCRIBE,
              subscribe_body(P, alice.ik, NOW, None),
              {"provider": P, "subscriber": alice.ik, "time": NOW, "tag": None}, sig_sub_free)
    must_fail("alice's create signature used to remove the queue", "queue", alice.ik, D_QUEUE,
              queue_body(OP_REMOVE, P, alice.ik, t_q, q_priv, None, None),
              {"op": "remove", "provider": P, "owner": alice.ik, "time": t_q, "queue": q_priv, "writeHash": None,
               "readHash": None}, sig_create)
    must_fail("alice's private queue made public with its create signature", "queue", alice.ik, D_QUEUE,
              queue_body(OP_CREATE, P, alice.ik, t_q, q_priv, None, capability_hash(rcap)),
              {"op": "create", "provider": P, "owner": alice.ik, "time": t_q, "queue": q_priv, "writeHash": None,
               "readHash": capability_hash(rcap)}, sig_create)
    must_fail("alice's terms shown as bob's", "terms", P, D_TERMS, terms_body(P, bob.ik, retention, quota, t_terms),
              {"provider": P, "subscriber": bob.ik, "retentionMs": retention, "quotaBytes": quota, "time": t_terms},
              sig_terms)
    must_fail("a receipt with a longer expiry than signed", "deposit", P, D_DEPOSIT,
              deposit_body(P, q_priv, sha256(env1), dep_at, exp_at + DAY),
              {"provider": P, "queue": q_priv, "digest": sha256(env1), "depositedAt": dep_at, "expiresAt": exp_at + DAY},
              sig_dep)
    must_fail("a receipt for another envelope", "deposit", P, D_DEPOSIT,
              deposit_body(P, q_priv, sha256(env2), dep_at, exp_at),
              {"provider": P, "queue": q_priv, "digest": sha256(env2), "depositedAt": dep_at, "expiresAt": exp_at},
              sig_dep)
    out["invalidStatements"] = bad_statements

    # §14.1 frames, valid
    frames: list[dict] = []
    by_name: dict[str, bytes] = {}

    def frame(name: str, direction: str, fields: dict, note: str | None = None) -> None:
        b = encode(fields)
        got = decode(b, direction)
        assert got == fields, (name, got, fields)
        by_name[name] = b
        fills = [x for x in [fields.get("envelope")] + [e["envelope"] for e in fields.get("envelopes", [])]
                 if isinstance(x, Fill)]
        listed: dict = {"frame": b}
        if fills:
            parts, at = [], 0
            for env in fills:
                i = b.index(env, at)
                parts += [b[at:i].hex(), {"fill": env.byte, "length": len(env)}]
                at = i + len(env)
            parts.append(b[at:].hex())
            listed = {"frameParts": parts, "frameSha256": sha256(b)}
        frames.append(hexify({"name": name, "direction": direction, "fields": fields, **listed,
                              **({"note": note} if note else {})}))

    frame("SUBSCRIBE with a tag", "request",
          {"type": "SUBSCRIBE", "requestId": 1, "identity": alice.ik, "time": t_sub, "tag": alice_tag,
           "signature": sig_sub})
    frame("SUBSCRIBE without a tag (zero tag is null)", "request",
          {"type": "SUBSCRIBE", "requestId": 0xFFFFFFFF, "identity": bob.ik, "time": NOW, "tag": None,
           "signature": sig_sub_free})
    frame("CREATE_QUEUE private", "request",
          {"type": "CREATE_QUEUE", "requestId": 2, "identity": alice.ik, "time": t_q, "queue": q_priv,
           "writeHash": capability_hash(wcap), "readHash": capability_hash(rcap), "signature": sig_create})
    frame("CREATE_QUEUE public (zero write hash is null)", "request",
          {"type": "CREATE_QUEUE", "requestId": 3, "identity": alice.ik, "time": t_q + 1, "queue": q_pub,
           "writeHash": None, "readHash": capability_hash(rcap_pub), "signature": sig_create_pub})
    frame("REMOVE_QUEUE", "request",
          {"type": "REMOVE_QUEUE", "requestId": 4, "identity": alice.ik, "time": t_q + 2 * DAY, "queue": q_priv,
           "signature": sig_remove})
    frame("DEPOSIT private", "request",
          {"type": "DEPOSIT", "requestId": 0, "queue": q_priv, "writeCapability": wcap, "envelope": env1})
    frame("DEPOSIT public (zero write capability is null)", "request",
          {"type": "DEPOSIT", "requestId": 5, "queue": q_pub, "writeCapability": None, "envelope": env2})
    frame("FETCH limit 1", "request",
          {"type": "FETCH", "requestId": 6, "queue": q_priv, "readCapability": rcap, "afterSeq": 0, "limit": 1})
    frame("FETCH limit 64 (max), after seq 2^53 - 1 (max)", "request",
          {"type": "FETCH", "requestId": 7, "queue": q_pub, "readCapability": rcap_pub, "afterSeq": MAX_SAFE, "limit": 64})
    frame("ACK one", "request",
          {"type": "ACK", "requestId": 8, "queue": q_priv, "readCapability": rcap, "seqs": [1]})
    frame("ACK 1024 (max)", "request",
          {"type": "ACK", "requestId": 9, "queue": q_pub, "readCapability": rcap_pub,
           "seqs": [MAX_SAFE - 2 * i if i % 2 else i * 3 + 1 for i in range(1024)]})
    frame("TERMS", "answer",
          {"type": "TERMS", "requestId": 1, "retentionMs": retention, "quotaBytes": quota, "time": t_terms,
           "signature": sig_terms})
    frame("TERMS zero retention and quota", "answer",
          {"type": "TERMS", "requestId": 0xFFFFFFFF, "retentionMs": 0, "quotaBytes": 0, "time": NOW,
           "signature": sig_terms_bob})
    frame("OK", "answer", {"type": "OK", "requestId": 2})
    frame("DEPOSITED private", "answer",
          {"type": "DEPOSITED", "requestId": 0, "seq": 1, "digest": sha256(env1), "depositedAt": dep_at,
           "expiresAt": exp_at, "signature": sig_dep})
    frame("DEPOSITED public", "answer",
          {"type": "DEPOSITED", "requestId": 5, "seq": MAX_SAFE, "digest": sha256(env2), "depositedAt": dep_at + 1,
           "expiresAt": exp_at + 1, "signature": sig_dep_pub})
    frame("HELD none", "answer", {"type": "HELD", "requestId": 6, "envelopes": []})
    frame("HELD two", "answer",
          {"type": "HELD", "requestId": 7, "envelopes": [{"seq": 1, "depositedAt": dep_at, "envelope": env1},
                                                         {"seq": 2, "depositedAt": dep_at + 1, "envelope": env2}]})
    held64 = [{"seq": 100 + i, "depositedAt": dep_at + i, "envelope": Fill(0x10 + i, 1024)} for i in range(64)]
    frame("HELD 64 (max)", "answer", {"type": "HELD", "requestId": 8, "envelopes": held64},
          note="64 envelopes of 1024 bytes: the answer stays within maxEnvelope")
    frame("ACKED zero", "answer", {"type": "ACKED", "requestId": 8, "count": 0})
    frame("ACKED max u32", "answer", {"type": "ACKED", "requestId": 9, "count": 0xFFFFFFFF})
    for i, (code, reason) in enumerate([(1, "malformed frame"), (2, ""), (11, "slow down"), (14, "not paid"),
                                        (9, "signature d\u00e9j\u00e0 vu \u2014 \U0001F512"),
                                        (13, "x" * MAX_REASON)]):
        frame(f"ERROR {ERROR_CODES[code]}" + (" (reason of 200 bytes, max)" if len(reason) == MAX_REASON else ""),
              "answer", {"type": "ERROR", "requestId": 100 + i, "code": code, "retryable": code in RETRYABLE,
                         "reason": reason})
    # the maxEnvelope edges
    frame("DEPOSIT of exactly maxEnvelope bytes", "request",
          {"type": "DEPOSIT", "requestId": 10, "queue": q_priv, "writeCapability": wcap,
           "envelope": Fill(0x5A, MAX_ENVELOPE)})
    frame("HELD of one envelope of exactly maxEnvelope bytes", "answer",
          {"type": "HELD", "requestId": 11, "envelopes": [{"seq": 3, "depositedAt": dep_at,
                                                           "envelope": Fill(0x5B, MAX_ENVELOPE)}]},
          note="one envelope always, even when the answer is larger than maxEnvelope")
    out["frames"] = frames

    # §14.1 frames, invalid
    invalid: list[dict] = []

    def bad(name: str, direction: str, b: bytes, code: str, mutation: dict | None = None) -> None:
        try:
            decode(b, direction)
        except MailboxError as e:
            assert e.code == code, (name, e)
        else:
            raise AssertionError(f"{name}: decoded")
        invalid.append({"name": name, "direction": direction,
                        **({"mutation": mutation} if mutation else {"bytes": b.hex()}), "expect": code})

    def mutate(name: str, of: str, code: str, truncate: int | None = None, append: bytes | None = None,
               set_: tuple[int, int] | None = None) -> None:
        b = by_name[of]
        direction = next(f["direction"] for f in frames if f["name"] == of)
        m: dict = {"of": of}
        if truncate is not None:
            b, m["truncate"] = b[:truncate], truncate
        if set_ is not None:
            off, val = set_
            b, m["set"] = b[:off] + bytes([val]) + b[off + 1:], [off, val]
        if append is not None:
            b, m["append"] = b + append, append.hex()
        bad(name, direction, b, code, m)

    # the header
    for d in ("request", "answer"):
        bad(f"{d}: empty", d, b"", "MALFORMED")
        bad(f"{d}: version only", d, b"\x01", "MALFORMED")
        bad(f"{d}: request id cut", d, bytes([1, 0x01 if d == "request" else 0x82, 0, 0, 0]), "MALFORMED")
    mutate("version 0", "FETCH limit 1", "MALFORMED", set_=(0, 0))
    mutate("version 2", "FETCH limit 1", "MALFORMED", set_=(0, 2))
    mutate("version 2 (answer)", "OK", "MALFORMED", set_=(0, 2))
    mutate("version 0xff (answer)", "ACKED zero", "MALFORMED", set_=(0, 0xFF))
    for t in (0x00, 0x07, 0x80, 0x81, 0x84, 0xFF):
        mutate(f"request type {t:#04x}", "FETCH limit 1", "MALFORMED", set_=(1, t))
    for t in (0x00, 0x01, 0x04, 0x80, 0x86, 0xFE):
        mutate(f"answer type {t:#04x}", "OK", "MALFORMED", set_=(1, t))
    # a cut in every field of every type, and a trailing byte after every type
    cuts = {
        "SUBSCRIBE with a tag": [6, 6 + 31, 6 + 32 + 7, 6 + 40 + 31, 6 + 72 + 63],
        "CREATE_QUEUE private": [6, 6 + 31, 6 + 39, 6 + 55, 6 + 87, 6 + 119, 6 + 183],
        "REMOVE_QUEUE": [6, 6 + 31, 6 + 39, 6 + 55, 6 + 119],
        "DEPOSIT private": [6, 6 + 15, 6 + 47, 6 + 48 + 3, 6 + 52, 6 + 52 + 1023],
        "FETCH limit 1": [6, 6 + 15, 6 + 47, 6 + 55, 6 + 57 - 1],
        "ACK one": [6, 6 + 15, 6 + 47, 6 + 49, 6 + 49 + 7],
        "ACK 1024 (max)": [6 + 50 + 8 * 1023, 6 + 50 + 8 * 1024 - 1],
        "TERMS": [6, 6 + 7, 6 + 15, 6 + 23, 6 + 24 + 63],
        "DEPOSITED private": [6, 6 + 7, 6 + 39, 6 + 47, 6 + 55, 6 + 56 + 63],
        "HELD none": [6, 7],
        "HELD two": [8, 8 + 7, 8 + 15, 8 + 19, 8 + 20, 8 + 20 + 1023, 8 + 1044, 8 + 1044 + 20 + 1023],
        "ACKED zero": [6, 6 + 3],
        "ERROR MALFORMED": [6, 7, 8, 9, 9 + 14],
    }
    for of, points in cuts.items():
        assert len(by_name[of]) not in points
        for n in points:
            mutate(f"{of}: cut to {n} bytes", of, "MALFORMED", truncate=n)
    for f in frames:
        mutate(f"{f['name']}: trailing byte", f["name"], "MALFORMED", append=b"\x00")
    # counts out of range
    fetch = by_name["FETCH limit 1"]
    mutate("FETCH limit 0", "FETCH limit 1", "MALFORMED", set_=(len(fetch) - 1, 0))
    mutate("FETCH limit 65", "FETCH limit 1", "MALFORMED", set_=(len(fetch) - 1, 65))
    bad("FETCH limit 0xffff", "request", fetch[:-2] + b"\xff\xff", "MALFORMED")
    ack = by_name["ACK one"]
    bad("ACK count 0 (and no seqs)", "request", ack[:6 + 48] + u16(0), "MALFORMED")
    bad("ACK count 0 (with one seq after it)", "request", ack[:6 + 48] + u16(0) + ack[6 + 50:], "MALFORMED")
    ack_max = by_name["ACK 1024 (max)"]
    assert ack_max[6 + 48:6 + 50] == u16(1024)
    mutate("ACK count 1025 (1025 seqs)", "ACK 1024 (max)", "MALFORMED", set_=(6 + 49, 1), append=u64(7))
    mutate("ACK count 0xff00", "ACK 1024 (max)", "MALFORMED", set_=(6 + 48, 0xFF))
    held64_b = by_name["HELD 64 (max)"]
    mutate("HELD count 65 (65 entries)", "HELD 64 (max)", "MALFORMED", set_=(7, 65),
           append=u64(164) + u64(dep_at) + u32(1024) + rnd("envelope/held/64", 1024))
    bad("HELD count 0xffff (no entries)", "answer", held64_b[:6] + u16(0xFFFF), "MALFORMED")
    held2 = by_name["HELD two"]
    mutate("HELD count 3 with two entries", "HELD two", "MALFORMED", set_=(7, 3))
    mutate("HELD count 1 with two entries", "HELD two", "MALFORMED", set_=(7, 1))
    err = by_name["ERROR MALFORMED"]
    mutate("ERROR retryable 2", "ERROR MALFORMED", "MALFORMED", set_=(7, 2))
    mutate("ERROR retryable 0xff", "ERROR MALFORMED", "MALFORMED", set_=(7, 0xFF))
    bad("ERROR reason length 201", "answer", err[:8] + u8(201) + b"y" * 201, "MALFORMED")
    bad("ERROR reason length 255", "answer", err[:8] + u8(255) + b"y" * 255, "MALFORMED")
    mutate("ERROR reason length one more than given", "ERROR MALFORMED", "MALFORMED", set_=(8, 16))
    # oversized envelope length prefixes: BAD_SIZE from the prefix, before any envelope byte
    dep = by_name["DEPOSIT private"]
    for n in (MAX_ENVELOPE + 1, 0x7FFFFFFF, 0xFFFFFFFF):
        bad(f"DEPOSIT length prefix {n} (no envelope after it)", "request", dep[:6 + 48] + u32(n), "BAD_SIZE")
    bad(f"DEPOSIT length prefix {MAX_ENVELOPE + 1} with a 1024-byte envelope after it", "request",
        dep[:6 + 48] + u32(MAX_ENVELOPE + 1) + dep[6 + 52:], "BAD_SIZE")
    mutate("DEPOSIT length prefix 1025 with a 1024-byte envelope (cut)", "DEPOSIT private", "MALFORMED",
           set_=(6 + 51, 1))
    bad("DEPOSIT length prefix 1023 with a 1024-byte envelope (trailing byte)", "request",
        dep[:6 + 48] + u32(1023) + dep[6 + 52:], "MALFORMED")
    for n in (MAX_ENVELOPE + 1, 0xFFFFFFFF):
        bad(f"HELD first entry's length prefix {n}", "answer", held2[:8 + 16] + u32(n), "BAD_SIZE")
        bad(f"HELD second entry's length prefix {n}", "answer", held2[:8 + 1044 + 16] + u32(n), "BAD_SIZE")
    # u64 over 2^53 - 1 (§14.1): the byte below the top one set to 0x20 adds 2^53 to a value under 2^48
    fetch_max = by_name["FETCH limit 64 (max), after seq 2^53 - 1 (max)"]
    bad("FETCH after seq 2^53", "request", fetch_max[:6 + 48] + u64(2**53) + fetch_max[6 + 56:], "MALFORMED")
    bad("FETCH after seq 2^64 - 1", "request", fetch_max[:6 + 48] + u64(2**64 - 1) + fetch_max[6 + 56:], "MALFORMED")
    for of, offsets in [("SUBSCRIBE with a tag", [38]), ("CREATE_QUEUE private", [38]), ("REMOVE_QUEUE", [38]),
                        ("ACK one", [56]), ("TERMS", [6, 14, 22]), ("DEPOSITED private", [6, 46, 54]),
                        ("HELD two", [8, 16, 8 + 1044, 8 + 1044 + 8])]:
        for off in offsets:
            assert by_name[of][off:off + 2] == b"\x00\x00"
            mutate(f"{of}: u64 at {off} over 2^53 - 1", of, "MALFORMED", set_=(off + 1, 0x20))
    # an ERROR reason that is not UTF-8 (§14.1)
    for what, raw in [("0xff", b"\xff"), ("a cut 2-byte sequence", b"ok \xc3"), ("an overlong NUL", b"\xc0\x80"),
                      ("a UTF-16 surrogate", b"\xed\xa0\x80")]:
        bad(f"ERROR reason {what} (not UTF-8)", "answer", err[:8] + u8(len(raw)) + raw, "MALFORMED")
    out["invalidFrames"] = invalid

    # ACCOUNT and ACCOUNT_STATUS (§14.1, §14.3, §14.4), appended after everything above so that the
    # earlier vectors stay byte for byte
    t_acc = NOW + 42
    sig_acc = statement("alice asks for her account", "account", alice, D_ACCOUNT,
                        account_body(P, alice.ik, t_acc), {"provider": P, "subscriber": alice.ik, "time": t_acc})
    statuses = {
        "paid": (NOW + 5 * DAY, 3 * DAY, 2, 2048, quota, t_acc + 1, alice),
        "lapsed": (NOW - DAY, 3 * DAY, 1, 1024, quota, t_acc + 2, alice),
        "free": (0, 0, 0, 0, quota, NOW, bob),
        "max": (MAX_SAFE, MAX_SAFE, 0xFFFFFFFF, MAX_SAFE, MAX_SAFE, MAX_SAFE, bob),
    }
    status_names = {
        "paid": "the provider tells alice she is paid for 5 more days and holds two envelopes",
        "lapsed": "the provider tells alice her payment lapsed a day ago (inside the grace)",
        "free": "the provider tells bob it is free (paid until 0, no grace) and holds nothing",
        "max": "an account status with every field at its largest",
    }
    status_sigs = {}
    for k, (paid, grace, n, nbytes, q, t, sub) in statuses.items():
        fields = {"provider": P, "subscriber": sub.ik, "paidUntil": paid, "graceMs": grace, "heldCount": n,
                  "heldBytes": nbytes, "quotaBytes": q, "time": t}
        status_sigs[k] = statement(status_names[k], "accountStatus", provider, D_ACCOUNT_STATUS,
                                   account_status_body(P, sub.ik, paid, grace, n, nbytes, q, t), fields)
    paid_f = statuses["paid"]

    def status_fields(sub: Party, paid_until: int) -> dict:
        return {"provider": P, "subscriber": sub.ik, "paidUntil": paid_until, "graceMs": paid_f[1],
                "heldCount": paid_f[2], "heldBytes": paid_f[3], "quotaBytes": paid_f[4], "time": paid_f[5]}

    must_fail("alice's account request replayed at another provider", "account", alice.ik, D_ACCOUNT,
              account_body(op, alice.ik, t_acc), {"provider": op, "subscriber": alice.ik, "time": t_acc}, sig_acc)
    must_fail("alice's account request claimed by bob", "account", bob.ik, D_ACCOUNT,
              account_body(P, bob.ik, t_acc), {"provider": P, "subscriber": bob.ik, "time": t_acc}, sig_acc)
    must_fail("alice's account status shown as bob's", "accountStatus", P, D_ACCOUNT_STATUS,
              account_status_body(P, bob.ik, *paid_f[:6]), status_fields(bob, paid_f[0]), status_sigs["paid"])
    must_fail("an account status with a later paid-until than signed", "accountStatus", P, D_ACCOUNT_STATUS,
              account_status_body(P, alice.ik, paid_f[0] + 30 * DAY, *paid_f[1:6]),
              status_fields(alice, paid_f[0] + 30 * DAY), status_sigs["paid"])
    must_fail("alice's account status signed by alice, not the provider", "accountStatus", P, D_ACCOUNT_STATUS,
              account_status_body(P, alice.ik, *paid_f[:6]), status_fields(alice, paid_f[0]),
              sign(alice.seed, D_ACCOUNT_STATUS, account_status_body(P, alice.ik, *paid_f[:6])))

    frame("ACCOUNT", "request",
          {"type": "ACCOUNT", "requestId": 12, "identity": alice.ik, "time": t_acc, "signature": sig_acc})
    for rid, k in [(12, "paid"), (13, "lapsed"), (14, "free"), (0xFFFFFFFF, "max")]:
        paid, grace, n, nbytes, q, t, _ = statuses[k]
        frame(f"ACCOUNT_STATUS {k}", "answer",
              {"type": "ACCOUNT_STATUS", "requestId": rid, "paidUntil": paid, "graceMs": grace, "heldCount": n,
               "heldBytes": nbytes, "quotaBytes": q, "time": t, "signature": status_sigs[k]})
    for of, points in {"ACCOUNT": [6, 6 + 31, 6 + 39, 6 + 40 + 63],
                       "ACCOUNT_STATUS paid": [6, 6 + 7, 6 + 15, 6 + 19, 6 + 27, 6 + 35, 6 + 43, 6 + 44 + 63]}.items():
        assert len(by_name[of]) not in points
        for n in points:
            mutate(f"{of}: cut to {n} bytes", of, "MALFORMED", truncate=n)
    for name in ["ACCOUNT"] + [f"ACCOUNT_STATUS {k}" for k in statuses]:
        mutate(f"{name}: trailing byte", name, "MALFORMED", append=b"\x00")
    for of, offsets in [("ACCOUNT", [38]), ("ACCOUNT_STATUS paid", [6, 14, 26, 34, 42])]:
        for off in offsets:
            assert by_name[of][off:off + 2] == b"\x00\x00"
            mutate(f"{of}: u64 at {off} over 2^53 - 1", of, "MALFORMED", set_=(off + 1, 0x20))

    # WATCH and NOTIFY (§14.1), appended after everything above so that the earlier vectors stay byte
    # for byte. A WATCH carries the queue's read capability; each NOTIFY echoes the WATCH's request id.
    watches = [("WATCH alice's private queue", 20, q_priv, rcap),
               ("WATCH alice's public queue (request id 2^32 - 1)", 0xFFFFFFFF, q_pub, rcap_pub)]
    for name, rid, queue, read_cap in watches:
        frame(name, "request", {"type": "WATCH", "requestId": rid, "queue": queue, "readCapability": read_cap})
    frame("OK answering a WATCH", "answer", {"type": "OK", "requestId": 20})
    frame("NOTIFY alice's private queue (the WATCH's request id)", "answer",
          {"type": "NOTIFY", "requestId": 20, "queue": q_priv})
    frame("NOTIFY alice's public queue (request id 2^32 - 1)", "answer",
          {"type": "NOTIFY", "requestId": 0xFFFFFFFF, "queue": q_pub})
    watch_new = [n for n, *_ in watches]
    notify_new = ["NOTIFY alice's private queue (the WATCH's request id)",
                  "NOTIFY alice's public queue (request id 2^32 - 1)"]
    for of, points in {watch_new[0]: [6, 6 + 15, 6 + 16, 6 + 16 + 31], notify_new[0]: [6, 6 + 15]}.items():
        assert len(by_name[of]) not in points
        for n in points:
            mutate(f"{of}: cut to {n} bytes", of, "MALFORMED", truncate=n)
    for name in watch_new + ["OK answering a WATCH"] + notify_new:
        mutate(f"{name}: trailing byte", name, "MALFORMED", append=b"\x00")
    # the other direction's type is unknown there (§14.1): a NOTIFY sent to a provider, a WATCH sent
    # to a client
    for name in notify_new:
        bad(f"{name} sent to a provider (an answer type: unknown there)", "request", by_name[name], "MALFORMED")
    for name in watch_new:
        bad(f"{name} sent to a client (a request type: unknown there)", "answer", by_name[name], "MALFORMED")
    # the types next to the new ones are still unknown, and a WATCH's body is not a NOTIFY's
    mutate("request type 0x09", watch_new[0], "MALFORMED", set_=(1, 0x09))
    mutate("answer type 0x88", notify_new[0], "MALFORMED", set_=(1, 0x88))
    mutate("a WATCH body under type 0x87 (NOTIFY) sent to a provider", watch_new[0], "MALFORMED", set_=(1, 0x87))
    bad("a WATCH body under type 0x87 (NOTIFY) sent to a client (32 trailing bytes)", "answer",
        by_name[watch_new[0]][:1] + b"\x87" + by_name[watch_new[0]][2:], "MALFORMED")
    mutate("a NOTIFY body under type 0x08 (WATCH) sent to a client", notify_new[0], "MALFORMED", set_=(1, 0x08))
    bad("a NOTIFY body under type 0x08 (WATCH) sent to a provider (cut read capability)", "request",
        by_name[notify_new[0]][:1] + b"\x08" + by_name[notify_new[0]][2:], "MALFORMED")

    json.dump(out, sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
