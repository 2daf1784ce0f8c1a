"""The byte and signature primitives the vector generators use (session_vectors.py,
mailbox_vectors.py, receipts_envelope_vectors.py), written from PROTOCOL.md §0 alone: hashes, HKDF, big-endian integers, and
Ed25519 under signDomain ("onionpost/" ‖ domain ‖ 0x00 ‖ message)."""
from __future__ import annotations

import hashlib
import hmac

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def sha256(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


def hmac256(k: bytes, m: bytes) -> bytes:
    return hmac.new(k, m, hashlib.sha256).digest()


def hkdf(salt: bytes, ikm: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def label_bytes(prefix: str, label: str, n: int) -> bytes:
    """n deterministic bytes for a label, the generators' stand-in for randomness:
    SHA256(prefix "/" label "/" i) for i = 0, 1, ... concatenated and cut to n."""
    out = b""
    i = 0
    while len(out) < n:
        out += sha256(f"{prefix}/{label}/{i}".encode())
        i += 1
    return out[:n]


def hexify(v):
    """Bytes as hex, through dicts, lists and tuples, for the JSON output; a value with a
    json_form() method (bytes written some other way) as what that gives."""
    if hasattr(v, "json_form"):
        return v.json_form()
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, dict):
        return {k: hexify(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [hexify(x) for x in v]
    return v


def u8(n: int) -> bytes:
    return n.to_bytes(1, "big")


def u16(n: int) -> bytes:
    return n.to_bytes(2, "big")


def u32(n: int) -> bytes:
    return n.to_bytes(4, "big")


def u64(n: int) -> bytes:
    return n.to_bytes(8, "big")


def ed_pub(seed: bytes) -> bytes:
    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


def sign(seed: bytes, domain: str, m: bytes) -> bytes:
    """signDomain (src/crypto/keys.ts; PROTOCOL.md §0)."""
    return Ed25519PrivateKey.from_private_bytes(seed).sign(b"onionpost/" + domain.encode() + b"\x00" + m)


def verify(ik: bytes, domain: str, m: bytes, sig: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(ik).verify(sig, b"onionpost/" + domain.encode() + b"\x00" + m)
        return True
    except Exception:
        return False
