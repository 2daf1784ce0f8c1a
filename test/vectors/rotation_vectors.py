#!/usr/bin/env python3
"""Known-answer vectors for the rotation statement (PROTOCOL.md §15), from the text alone.

An independent implementation of the statement as src/crypto/bundle.ts's doc comment and
PROTOCOL.md §15 specify it (layout, the two signed domains) and of the registry metadata part that
carries it (`r=<base64url>`, src/registry/metadata.ts), with PROTOCOL.md §0's conventions
(big-endian integers, signDomain = Ed25519 over "onionpost/" ‖ domain ‖ 0x00 ‖ message).
test/unit/rotation-vectors.test.ts checks src/crypto's signRotation/encodeRotation/decodeRotation/
verifyRotation and src/registry's metadata codec against this output. CI needs no Python: the JSON
is checked in; only regenerating it needs this script.

Regenerate (from the repository root):

    python3 test/vectors/rotation_vectors.py > test/vectors/rotation.json

Dependencies: Python >= 3.10 and the `cryptography` package (Ed25519, X25519).

The output is deterministic: the seeds are RFC 8032 §7.1's tests 1-3 (Ed25519 signatures are
deterministic) and the encryption secret is derived from a label. Every valid statement is verified
again by this script against the pinned (old) key; every invalid one must fail here as the vector
says.
"""

from __future__ import annotations

import base64
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey  # noqa: E402
from primitives import ed_pub, hexify, label_bytes, sign, u64, u8, verify  # noqa: E402

RFC8032 = [
    bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"),
    bytes.fromhex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"),
    bytes.fromhex("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7"),
]
CREATED_AT = 1_796_000_000_000  # ms since the epoch


def x25519_pub(secret: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(secret).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


def body(old_ik: bytes, new_ik: bytes, new_ek: bytes, created_at: int, version: int = 1) -> bytes:
    return u8(version) + old_ik + new_ik + new_ek + u64(created_at)


def statement(old_seed: bytes, new_seed: bytes, new_ek: bytes, created_at: int) -> bytes:
    b = body(ed_pub(old_seed), ed_pub(new_seed), new_ek, created_at)
    return b + sign(old_seed, "rotation/v1", b) + sign(new_seed, "rotation-accept/v1", b)


def check(st: bytes, pinned: bytes) -> str | None:
    """None when `st` moves `pinned` to a new key with both signatures valid, else why not."""
    if len(st) != 105 + 128:
        return "length"
    if st[0] != 1:
        return "version"
    b, old_sig, new_sig = st[:105], st[105:169], st[169:233]
    old_ik, new_ik = b[1:33], b[33:65]
    if old_ik != pinned:
        return "another identity"
    if not verify(old_ik, "rotation/v1", b, old_sig):
        return "old signature"
    if not verify(new_ik, "rotation-accept/v1", b, new_sig):
        return "new signature"
    return None


def metadata(st: bytes) -> str:
    return "r=" + base64.urlsafe_b64encode(st).rstrip(b"=").decode()


def main() -> None:
    old_seed, new_seed, other_seed = RFC8032
    enc_secret = label_bytes("rotation", "new encryption secret", 32)
    new_ek = x25519_pub(enc_secret)
    st = statement(old_seed, new_seed, new_ek, CREATED_AT)
    assert check(st, ed_pub(old_seed)) is None
    b = st[:105]

    invalid = []

    def bad(name: str, data: bytes, pinned: bytes, why: str) -> None:
        assert check(data, pinned) == why, (name, check(data, pinned))
        invalid.append({"name": name, "statement": data, "pinned": pinned, "failsOn": why, "expect": "BAD_ROTATION"})

    bad("version 2", bytes([2]) + st[1:], ed_pub(old_seed), "version")
    bad("truncated by one byte", st[:-1], ed_pub(old_seed), "length")
    bad("one trailing byte", st + b"\x00", ed_pub(old_seed), "length")
    bad("checked against a key that is not the pinned one", st, ed_pub(other_seed), "another identity")
    bad("old key's signature made by another key", b + sign(other_seed, "rotation/v1", b) + st[169:], ed_pub(old_seed), "old signature")
    bad("new key's signature under the old key's domain", st[:169] + sign(new_seed, "rotation/v1", b), ed_pub(old_seed), "new signature")
    flipped = bytearray(st)
    flipped[70] ^= 0x01  # a bit of the new encryption key, after both signatures were made
    bad("new encryption key altered after signing", bytes(flipped), ed_pub(old_seed), "old signature")

    out = {
        "about": "Rotation statement vectors (PROTOCOL.md §15), computed by test/vectors/rotation_vectors.py "
        "with Python's `cryptography`, not with onionpost's code. Seeds are RFC 8032 §7.1 tests 1-3.",
        "valid": [{
            "oldSeed": old_seed, "oldIdentityKey": ed_pub(old_seed),
            "newSeed": new_seed, "newIdentityKey": ed_pub(new_seed),
            "newEncryptionSecret": enc_secret, "newEncryptionKey": new_ek,
            "createdAt": CREATED_AT, "body": b, "statement": st, "metadata": metadata(st),
        }],
        "invalid": invalid,
    }
    json.dump(hexify(out), sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
