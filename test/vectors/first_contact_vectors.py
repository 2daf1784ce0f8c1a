#!/usr/bin/env python3
"""Known-answer vectors for bundles kept at mailbox providers (PROTOCOL.md §14.8), from the text alone.

An independent implementation of the frames PUT_BUNDLE (0x09), GET_BUNDLE (0x0a), BUNDLE_KEPT (0x88)
and BUNDLE (0x89) in the common frame header of §14.1, and of the statement
`mailbox-put-bundle/v1` of §14.3, written from PROTOCOL.md without reading the TypeScript that
implements them (src/provider/wire.ts, statements.ts). test/unit/first-contact-vectors.test.ts checks
the project's code against its output. CI needs no Python: the JSON is checked in.

Signing a statement (PROTOCOL.md §0, as for every mailbox statement): Ed25519 (RFC 8032,
deterministic) over "onionpost/" ‖ domain ‖ 0x00 ‖ body, so signatures are known answers too.

The bundles here are opaque bytes of a valid bundle length (§3: 1370 + 63·k): the frames carry
them without reading them; whether one verifies is the provider's check, covered by the session
vectors and the unit tests.

Regenerate (from the repository root):

    python3 test/vectors/first_contact_vectors.py > test/vectors/first_contact.json

Dependencies: Python >= 3.10 and the `cryptography` package (Ed25519).
"""
import hashlib
import json
import struct

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

VERSION = 1
PUT_BUNDLE, GET_BUNDLE, BUNDLE_KEPT, BUNDLE = 0x09, 0x0A, 0x88, 0x89
REPLACE = 0x01
MAX_PREKEYS = 100
DOMAIN = "mailbox-put-bundle/v1"
NOW = 1_767_225_600_000  # 2026-01-01T00:00:00Z


class Malformed(Exception):
    pass


def rnd(label: str, n: int) -> bytes:
    out = b""
    i = 0
    while len(out) < n:
        out += hashlib.sha256(f"onionpost first-contact vectors/{label}/{i}".encode()).digest()
        i += 1
    return out[:n]


def ed_pub(seed: bytes) -> bytes:
    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def sign(seed: bytes, domain: str, body: bytes) -> bytes:
    return Ed25519PrivateKey.from_private_bytes(seed).sign(b"onionpost/" + domain.encode() + b"\x00" + body)


def bundle_length_ok(n: int) -> bool:
    return 1370 <= n <= 1370 + 63 * 8 and (n - 1370) % 63 == 0


def put_bundle_body(provider: bytes, subscriber: bytes, time: int, flags: int, bundle: bytes, prekeys: list) -> bytes:
    b = provider + subscriber + struct.pack(">QB", time, flags) + hashlib.sha256(bundle).digest() + bytes([len(prekeys)])
    for pid, key in prekeys:
        b += struct.pack(">I", pid) + key
    return b


def header(t: int, rid: int) -> bytes:
    return struct.pack(">BBI", VERSION, t, rid)


def encode(f: dict) -> bytes:
    t = f["type"]
    if t == "PUT_BUNDLE":
        assert bundle_length_ok(len(f["bundle"])) and len(f["prekeys"]) <= MAX_PREKEYS
        b = header(PUT_BUNDLE, f["id"]) + f["identity"] + struct.pack(">QBH", f["time"], f["flags"], len(f["bundle"])) + f["bundle"]
        b += bytes([len(f["prekeys"])])
        for pid, key in f["prekeys"]:
            b += struct.pack(">I", pid) + key
        return b + f["sig"]
    if t == "GET_BUNDLE":
        return header(GET_BUNDLE, f["id"]) + f["identity"]
    if t == "BUNDLE_KEPT":
        return header(BUNDLE_KEPT, f["id"]) + struct.pack(">H", f["prekeys"])
    if t == "BUNDLE":
        b = header(BUNDLE, f["id"]) + struct.pack(">H", len(f["bundle"])) + f["bundle"]
        if f["prekey"] is None:
            return b + b"\x00"
        return b + b"\x01" + struct.pack(">I", f["prekey"][0]) + f["prekey"][1]
    raise ValueError(t)


class Reader:
    def __init__(self, b: bytes):
        self.b, self.i = b, 0

    def take(self, n: int) -> bytes:
        if self.i + n > len(self.b):
            raise Malformed("cut")
        v = self.b[self.i:self.i + n]
        self.i += n
        return v

    def int(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big")


def decode(b: bytes) -> dict:
    r = Reader(b)
    if r.int(1) != VERSION:
        raise Malformed("version")
    t = r.int(1)
    rid = r.int(4)

    def bundle() -> bytes:
        n = r.int(2)
        if not bundle_length_ok(n):
            raise Malformed("bundle length")
        return r.take(n)

    if t == PUT_BUNDLE:
        identity = r.take(32)
        time = r.int(8)
        if time > 2**53 - 1:
            raise Malformed("u64")
        flags = r.int(1)
        if flags & ~REPLACE:
            raise Malformed("flags")
        bb = bundle()
        n = r.int(1)
        if n > MAX_PREKEYS:
            raise Malformed("prekeys")
        prekeys = [(r.int(4), r.take(32)) for _ in range(n)]
        f = {"type": "PUT_BUNDLE", "id": rid, "identity": identity, "time": time, "flags": flags, "bundle": bb, "prekeys": prekeys, "sig": r.take(64)}
    elif t == GET_BUNDLE:
        f = {"type": "GET_BUNDLE", "id": rid, "identity": r.take(32)}
    elif t == BUNDLE_KEPT:
        f = {"type": "BUNDLE_KEPT", "id": rid, "prekeys": r.int(2)}
    elif t == BUNDLE:
        bb = bundle()
        c = r.int(1)
        if c > 1:
            raise Malformed("count")
        f = {"type": "BUNDLE", "id": rid, "bundle": bb, "prekey": (r.int(4), r.take(32)) if c == 1 else None}
    else:
        raise Malformed("type")
    if r.i != len(b):
        raise Malformed("trailing")
    return f


def hexify(v):
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, tuple):
        return {"id": v[0], "public": v[1].hex()}
    if isinstance(v, list):
        return [hexify(x) for x in v]
    if isinstance(v, dict):
        return {k: hexify(x) for k, x in v.items()}
    return v


def main() -> None:
    provider_seed = rnd("provider/identity-seed", 32)
    bob_seed = rnd("bob/identity-seed", 32)
    provider, bob = ed_pub(provider_seed), ed_pub(bob_seed)
    bundle0 = rnd("bundle with no mailbox", 1370)
    bundle2 = rnd("bundle with two mailboxes", 1370 + 2 * 63)
    prekeys = [(1000 + i, rnd(f"prekey {i}", 32)) for i in range(3)]
    many = [(i, rnd(f"many {i}", 32)) for i in range(MAX_PREKEYS)]

    statements = []
    frames = []

    def put(name: str, rid: int, time: int, flags: int, bb: bytes, pks: list) -> bytes:
        body = put_bundle_body(provider, bob, time, flags, bb, pks)
        sig = sign(bob_seed, DOMAIN, body)
        statements.append(hexify({"name": name, "domain": DOMAIN, "provider": provider, "subscriber": bob, "time": time, "replace": flags == REPLACE,
                                  "bundleSha256": hashlib.sha256(bb).digest(), "prekeys": pks, "body": body, "signature": sig}))
        f = {"type": "PUT_BUNDLE", "id": rid, "identity": bob, "time": time, "flags": flags, "bundle": bb, "prekeys": pks, "sig": sig}
        add(name, "request", f)
        return sig

    def add(name: str, direction: str, f: dict) -> None:
        b = encode(f)
        assert decode(b) == f
        fields = {k: v for k, v in f.items() if k not in ("type", "flags")}
        if f["type"] == "PUT_BUNDLE":
            fields["replace"] = f["flags"] == REPLACE
        frames.append(hexify({"name": name, "direction": direction, "type": f["type"], "fields": fields, "frame": b}))

    put("bob puts his bundle with three prekeys, replacing those held", 7, NOW, REPLACE, bundle2, prekeys)
    put("bob puts his bundle alone (asking how many prekeys are held)", 8, NOW + 300_000, 0, bundle0, [])
    put("bob puts the most prekeys one PUT carries", 9, NOW + 600_000, 0, bundle2, many)
    add("a stranger asks for bob's bundle", "request", {"type": "GET_BUNDLE", "id": 0xFFFFFFFF, "identity": bob})
    add("the provider holds 20 prekeys", "answer", {"type": "BUNDLE_KEPT", "id": 7, "prekeys": 20})
    add("the provider holds none", "answer", {"type": "BUNDLE_KEPT", "id": 8, "prekeys": 0})
    add("bob's bundle with a one-time prekey", "answer", {"type": "BUNDLE", "id": 1, "bundle": bundle2, "prekey": prekeys[0]})
    add("bob's bundle, no prekey left", "answer", {"type": "BUNDLE", "id": 2, "bundle": bundle0, "prekey": None})

    invalid = []

    def bad(name: str, b: bytes) -> None:
        try:
            decode(b)
        except Malformed:
            invalid.append({"name": name, "bytes": b.hex(), "expect": "MALFORMED"})
            return
        raise AssertionError(f"{name} decoded")

    put0 = bytes.fromhex(frames[0]["frame"])
    flags_at = 6 + 32 + 8
    bad("PUT_BUNDLE with an unknown flag bit", put0[:flags_at] + b"\x02" + put0[flags_at + 1:])
    bad("PUT_BUNDLE whose bundle length is no bundle's (1371)", header(PUT_BUNDLE, 1) + bob + struct.pack(">QBH", NOW, 0, 1371) + rnd("x", 1371) + b"\x00" + bytes(64))
    bad("PUT_BUNDLE with a bundle longer than 8 mailboxes", header(PUT_BUNDLE, 1) + bob + struct.pack(">QBH", NOW, 0, 1370 + 63 * 9) + rnd("x", 1370 + 63 * 9) + b"\x00" + bytes(64))
    bad("PUT_BUNDLE with 101 prekeys", header(PUT_BUNDLE, 1) + bob + struct.pack(">QBH", NOW, 0, 1370) + bundle0 + bytes([101]) + bytes(36 * 101) + bytes(64))
    bad("PUT_BUNDLE cut in its signature", put0[:-1])
    bad("PUT_BUNDLE with a trailing byte", put0 + b"\x00")
    bad("GET_BUNDLE with 31 bytes of identity", header(GET_BUNDLE, 1) + bob[:31])
    bad("BUNDLE_KEPT with a trailing byte", header(BUNDLE_KEPT, 1) + b"\x00\x01\x00")
    b1 = bytes.fromhex(frames[6]["frame"])
    count_at = 6 + 2 + len(bundle2)
    bad("BUNDLE with two prekeys", b1[:count_at] + b"\x02" + b1[count_at + 1:] + struct.pack(">I", 1) + bytes(32))
    bad("BUNDLE whose prekey is cut", b1[:-1])
    bad("BUNDLE with a zero bundle length", header(BUNDLE, 1) + b"\x00\x00\x00")

    print(json.dumps({
        "about": "PROTOCOL.md §14.8 known answers (bundles kept at mailbox providers). Bytes are hex; frames[].fields are the decoded "
                 "fields (u64/u32/u16 as numbers, a prekey as {id, public}, replace for flags bit 0); statements[] are the "
                 "mailbox-put-bundle/v1 bodies and bob's Ed25519 signatures; invalidFrames[] must be refused with their code.",
        "now": NOW,
        "parties": hexify({"provider": {"identitySeed": provider_seed, "identityKey": provider}, "bob": {"identitySeed": bob_seed, "identityKey": bob}}),
        "statements": statements,
        "frames": frames,
        "invalidFrames": invalid,
    }, indent=1))


if __name__ == "__main__":
    main()
