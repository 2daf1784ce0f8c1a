#!/usr/bin/env python3
"""Known-answer vectors for the RECEIPTS envelope (kind 0x23, PROTOCOL.md §14.7), from the text alone.

This is an independent implementation of the envelope as the doc comment at the top of
src/session/receipts-envelope.ts specifies it (layout, body, S, K), with PROTOCOL.md §0's
conventions (big-endian integers, `x[a..b]` half-open, every DH checked for an all-zero output),
and of the two key conversions it relies on, written from their definitions in integer arithmetic:

  - the X25519 form of an Ed25519 identity key (RFC 7748 §4.1's birational map, libsodium's
    crypto_sign_ed25519_pk_to_curve25519): y = the 32 bytes little-endian with the top bit (the sign
    of x) cleared, u = (1 + y) / (1 - y) mod p, encoded as 32 bytes little-endian;
  - the matching X25519 secret (libsodium's crypto_sign_ed25519_sk_to_curve25519): the first 32
    bytes of SHA-512(seed), clamped (RFC 7748 §5: & 248 on the first byte, & 127 | 64 on the last).

Both are checked here against each other (X25519(secret, 9) must be the converted public key, with
`cryptography`'s X25519) and against libsodium's own known answer (test/default/ed25519_convert).
test/unit/receipts-envelope-vectors.test.ts checks src/crypto's conversions and src/session's
sealReceipts/openReceipts against this output. CI needs no Python: the JSON is checked in; only
regenerating it needs this script.

Regenerate (from the repository root):

    python3 test/vectors/receipts_envelope_vectors.py > test/vectors/receipts_envelope.json

Dependencies: Python >= 3.10 and the `cryptography` package (Ed25519 public keys, X25519, HKDF,
ChaCha20-Poly1305; SHA-512 and the field arithmetic come from the standard library):

    python3 -m pip install cryptography

The output is deterministic: every "random" input (seeds, ephemeral secrets, message ids, MACs)
is derived from a label and recorded in the JSON, so running the script twice gives the same bytes.
Every valid envelope is opened again by this script's own opener and must give back its receipts;
every invalid one must be refused by it with the code the vector expects.

Where the text leaves something open, the most literal reading is taken; see AMBIGUITIES.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from cryptography.exceptions import InvalidTag  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey  # noqa: E402
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305  # noqa: E402
from primitives import ed_pub, hexify, hkdf, label_bytes, u16  # noqa: E402

AMBIGUITIES = [
    "The text gives no code for an all-zero X25519(secret, E) (E of small order); PROTOCOL.md §0 says every DH "
    "fails on it, and openReceipts's doc comment lists DECRYPT_FAILED for an envelope 'not for us, or altered': "
    "the vectors expect DECRYPT_FAILED. One such vector is re-encrypted under HKDF(E ‖ S, ZERO32, ...), so an "
    "opener that skips the zero check accepts it.",
    "A first byte with another version nibble (e.g. 0x13) is not separated from another kind: every first byte "
    "other than 0x23 is BAD_ENVELOPE here (SESSION and INIT answer UNSUPPORTED_VERSION for a version other than 2, "
    "§5/§7.2; the RECEIPTS text says nothing of versions, so no vector asks about 0x13).",
    "An identity key with no X25519 form: the map is undefined for y = 1 (the neutral point) and the bytes are no "
    "Ed25519 key when (y^2 - 1) / (d y^2 + 1) has no square root; the vectors expect src/crypto's CryptoError "
    "BAD_LENGTH for both. libsodium refuses more (other small-order points, points outside the prime-order "
    "subgroup); no vector asks about those.",
    "'u16 n (1..30)': 30 = floor((975 - 2) / 32), the most that fit; a count outside 1..30 is BAD_MESSAGE, as is "
    "a non-zero byte anywhere after the n pairs. Sealing more than 30 receipts gives several envelopes, 30 each "
    "in order and the rest in the last, each with its own e drawn in order (sealReceipts's doc comment).",
]

# ---------------------------------------------------------------------------------------------
# the envelope's constants (the doc comment of src/session/receipts-envelope.ts)

KIND = 0x23
ENVELOPE_BYTES = 1024
HEAD = 1 + 32
BODY_BYTES = 975
TAG_BYTES = 16
MAX_RECEIPTS = 30
INFO = b"onionpost/v2/receipts-envelope"
ZERO12 = bytes(12)
ZERO32 = bytes(32)
assert HEAD + BODY_BYTES + TAG_BYTES == ENVELOPE_BYTES
assert 2 + 32 * MAX_RECEIPTS <= BODY_BYTES < 2 + 32 * (MAX_RECEIPTS + 1)


class OpenError(Exception):
    """A refusal with the code the TypeScript side must throw (SessionError, or CryptoError)."""

    def __init__(self, code: str, why: str = ""):
        super().__init__(f"{code}: {why}")
        self.code = code


def rnd(label: str, n: int) -> bytes:
    """Deterministic stand-in for randomness: every value drawn is recorded in the vectors."""
    return label_bytes("onionpost receipts-envelope vectors", label, n)


# ---------------------------------------------------------------------------------------------
# Ed25519 -> X25519, in integer arithmetic mod p = 2^255 - 19

P = 2**255 - 19
D = (-121665 * pow(121666, P - 2, P)) % P  # the edwards25519 curve constant d (RFC 7748 §4.1)


def _is_square(a: int) -> bool:
    a %= P
    return a == 0 or pow(a, (P - 1) // 2, P) == 1


def identity_key_to_x25519(ik: bytes) -> bytes:
    """u = (1 + y) / (1 - y) mod p for the Ed25519 public key's y; refuses bytes that are no point
    and the neutral point y = 1, for which the map is undefined."""
    if len(ik) != 32:
        raise OpenError("BAD_LENGTH", "an identity key is 32 bytes")
    y = int.from_bytes(ik, "little") & ((1 << 255) - 1)
    if y >= P:
        raise OpenError("BAD_LENGTH", "y is not reduced mod p")
    if not _is_square((y * y - 1) * pow(D * y * y + 1, P - 2, P)):
        raise OpenError("BAD_LENGTH", "no x for this y: not a curve point")
    if y == 1:
        raise OpenError("BAD_LENGTH", "the neutral point has no X25519 form (1 - y = 0)")
    return ((1 + y) * pow(1 - y, P - 2, P) % P).to_bytes(32, "little")


def identity_secret_to_x25519(seed: bytes) -> bytes:
    h = bytearray(hashlib.sha512(seed).digest()[:32])
    h[0] &= 248
    h[31] &= 127
    h[31] |= 64
    return bytes(h)


# ---------------------------------------------------------------------------------------------
# X25519 and the AEAD (§0)


def x25519(sk: bytes, pk: bytes) -> bytes:
    # cryptography refuses an all-zero result itself (ValueError); return it, so that the §0 check
    # below is the one that decides
    try:
        return X25519PrivateKey.from_private_bytes(sk).exchange(X25519PublicKey.from_public_bytes(pk))
    except ValueError:
        return ZERO32


def pub(sk: bytes) -> bytes:
    return x25519(sk, (9).to_bytes(32, "little"))


def dh(sk: bytes, pk: bytes) -> bytes:
    out = x25519(sk, pk)
    if out == ZERO32:
        raise OpenError("DECRYPT_FAILED", "all-zero X25519 output (small-order point)")
    return out


def envelope_key(e_pub: bytes, s: bytes, shared: bytes) -> bytes:
    return hkdf(e_pub + s, shared, INFO, 32)


# ---------------------------------------------------------------------------------------------
# sealing and opening


def body_of(pairs: list[tuple[bytes, bytes]]) -> bytes:
    assert 1 <= len(pairs) <= MAX_RECEIPTS and all(len(i) == 16 and len(m) == 16 for i, m in pairs)
    b = u16(len(pairs)) + b"".join(i + m for i, m in pairs)
    return b + bytes(BODY_BYTES - len(b))


def seal_body(ik: bytes, body: bytes, e: bytes, shared: bytes | None = None, e_pub: bytes | None = None) -> dict:
    """One envelope around `body` (975 bytes, well-formed or not). `shared`/`e_pub` override the
    DH output and E, to make envelopes an honest sealer could not."""
    assert len(body) == BODY_BYTES
    s = identity_key_to_x25519(ik)
    e_pub = pub(e) if e_pub is None else e_pub
    shared = dh(e, s) if shared is None else shared
    k = envelope_key(e_pub, s, shared)
    head = bytes([KIND]) + e_pub
    ad = head + s
    env = head + ChaCha20Poly1305(k).encrypt(ZERO12, body, ad)
    assert len(env) == ENVELOPE_BYTES
    return {"e": e, "E": e_pub, "S": s, "dh": shared, "key": k, "body": body, "ad": ad, "envelope": env}


def seal(ik: bytes, pairs: list[tuple[bytes, bytes]], random) -> list[dict]:
    return [seal_body(ik, body_of(pairs[i : i + MAX_RECEIPTS]), random(32)) for i in range(0, len(pairs), MAX_RECEIPTS)]


def open_envelope(seed: bytes, env: bytes) -> list[tuple[bytes, bytes]]:
    if len(env) != ENVELOPE_BYTES or env[0] != KIND:
        raise OpenError("BAD_ENVELOPE")
    s = identity_key_to_x25519(ed_pub(seed))
    e_pub = env[1:HEAD]
    k = envelope_key(e_pub, s, dh(identity_secret_to_x25519(seed), e_pub))
    try:
        body = ChaCha20Poly1305(k).decrypt(ZERO12, env[HEAD:], env[0:HEAD] + s)
    except InvalidTag:
        raise OpenError("DECRYPT_FAILED") from None
    n = int.from_bytes(body[0:2], "big")
    if not 1 <= n <= MAX_RECEIPTS:
        raise OpenError("BAD_MESSAGE", f"count {n}")
    if any(body[2 + 32 * n :]):
        raise OpenError("BAD_MESSAGE", "non-zero filler")
    return [(body[2 + 32 * j : 18 + 32 * j], body[18 + 32 * j : 34 + 32 * j]) for j in range(n)]


# ---------------------------------------------------------------------------------------------
# the vectors

# libsodium's known answer for its conversions (test/default/ed25519_convert.c and .exp, with the
# seed used as the Ed25519 seed directly): an anchor outside this script for both maps
LIBSODIUM_SEED = bytes.fromhex("421151a459faeade3d247115f94aedae42318124095afabe4d1451a559faedee")
LIBSODIUM_X25519_PUBLIC = bytes.fromhex("f1814f0e8ff1043d8a44d25babff3cedcae6c22c3edaa48f857ae70de2baae50")
LIBSODIUM_X25519_SECRET = bytes.fromhex("8052030376d47112be7f73ed7a019293dd12ad910b654455798b4667d73de166")


def identity(name: str, seed: bytes) -> dict:
    ik = ed_pub(seed)
    xp, xs = identity_key_to_x25519(ik), identity_secret_to_x25519(seed)
    assert pub(xs) == xp, name
    return {"name": name, "seed": seed, "identityKey": ik, "x25519Public": xp, "x25519Secret": xs}


def pairs_of(label: str, n: int) -> list[tuple[bytes, bytes]]:
    return [(rnd(f"{label}/id/{j}", 16), rnd(f"{label}/mac/{j}", 16)) for j in range(n)]


def main() -> None:
    ids = [
        identity("addressee", rnd("identity/addressee", 32)),
        identity("other", rnd("identity/other", 32)),
        identity("libsodium test/default/ed25519_convert", LIBSODIUM_SEED),
    ]
    assert ids[2]["x25519Public"] == LIBSODIUM_X25519_PUBLIC and ids[2]["x25519Secret"] == LIBSODIUM_X25519_SECRET
    out: dict = {
        "note": "RECEIPTS envelope (kind 0x23) vectors from test/vectors/receipts_envelope_vectors.py",
        "ambiguities": AMBIGUITIES,
        "constants": {"kind": KIND, "envelopeBytes": ENVELOPE_BYTES, "bodyBytes": BODY_BYTES,
                      "maxReceipts": MAX_RECEIPTS, "info": INFO.decode()},
        "identities": hexify(ids),
    }

    # identity keys with no X25519 form
    neutral = (1).to_bytes(32, "little")
    y = 2
    while _is_square((y * y - 1) * pow(D * y * y + 1, P - 2, P)):
        y += 1
    not_a_point = y.to_bytes(32, "little")
    no_form = []
    for name, ik in (("the neutral point, y = 1 (1 - y = 0)", neutral),
                     (f"y = {y}, the smallest y > 1 with no x on the curve", not_a_point)):
        try:
            identity_key_to_x25519(ik)
        except OpenError as ex:
            assert ex.code == "BAD_LENGTH"
        else:
            raise AssertionError(name)
        no_form.append(hexify({"name": name, "identityKey": ik, "expect": "BAD_LENGTH"}))
    out["identityKeysWithoutX25519Form"] = no_form

    addressee = ids[0]
    ik, seed = addressee["identityKey"], addressee["seed"]
    valid = []
    for label, n in (("one receipt", 1), ("thirty receipts (a full envelope)", 30),
                     ("thirty-one receipts (two envelopes: 30, then 1)", 31)):
        pairs = pairs_of(f"pairs/{n}", n)
        draws: list[bytes] = []

        def random(k: int, _label=label, _draws=draws) -> bytes:
            b = rnd(f"e/{_label}/{len(_draws)}", k)
            _draws.append(b)
            return b

        sealed = seal(ik, pairs, random)
        assert len(sealed) == (n + MAX_RECEIPTS - 1) // MAX_RECEIPTS
        got = [p for s in sealed for p in open_envelope(seed, s["envelope"])]
        assert got == pairs
        valid.append(hexify({"name": label, "addressee": 0, "pairs": [{"messageId": i, "mac": m} for i, m in pairs],
                             "random": draws, "envelopes": sealed}))
    out["envelopes"] = valid

    base = valid[0]
    env = bytes.fromhex(base["envelopes"][0]["envelope"])
    e = bytes.fromhex(base["envelopes"][0]["e"])
    good_body = bytes.fromhex(base["envelopes"][0]["body"])
    small_order = bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800")
    full = pairs_of("pairs/30", 30)

    def flip(b: bytes, i: int, mask: int = 0x01) -> bytes:
        return b[:i] + bytes([b[i] ^ mask]) + b[i + 1 :]

    def resealed(body: bytes, label: str) -> bytes:
        return seal_body(ik, body, rnd(f"e/invalid/{label}", 32))["envelope"]

    top_bit = flip(env, 32, 0x80)
    assert x25519(addressee["x25519Secret"], top_bit[1:33]) == x25519(addressee["x25519Secret"], env[1:33])
    zero_dh = seal_body(ik, good_body, e, shared=ZERO32, e_pub=small_order)["envelope"]
    count31 = u16(31) + b"".join(i + m for i, m in full)
    count31 += bytes(BODY_BYTES - len(count31))
    cases = [
        ("truncated to 1023 bytes", env[:-1], 0, "BAD_ENVELOPE"),
        ("a zero byte appended (1025 bytes)", env + b"\x00", 0, "BAD_ENVELOPE"),
        ("padded to 4096 bytes (the next bucket)", env + bytes(4096 - len(env)), 0, "BAD_ENVELOPE"),
        ("empty", b"", 0, "BAD_ENVELOPE"),
        ("kind byte 0x23 -> 0x22 (a SESSION envelope's)", flip(env, 0), 0, "BAD_ENVELOPE"),
        ("kind byte 0x23 -> 0x21 (an INIT envelope's)", flip(env, 0, 0x02), 0, "BAD_ENVELOPE"),
        ("kind byte 0x23 -> 0x24", flip(env, 0, 0x07), 0, "BAD_ENVELOPE"),
        ("E: first byte flipped", flip(env, 1), 0, "DECRYPT_FAILED"),
        ("E: top bit of its last byte flipped (same X25519 output; E is in the salt and the AD)", top_bit, 0,
         "DECRYPT_FAILED"),
        ("E replaced by a point of order 8 (all-zero DH)", env[:1] + small_order + env[33:], 0, "DECRYPT_FAILED"),
        ("E of order 8, body sealed under HKDF(E ‖ S, ZERO32, ...) (only the all-zero DH check refuses it)",
         zero_dh, 0, "DECRYPT_FAILED"),
        ("ciphertext: first byte flipped (the count)", flip(env, 33), 0, "DECRYPT_FAILED"),
        ("ciphertext: last filler byte flipped", flip(env, 33 + BODY_BYTES - 1), 0, "DECRYPT_FAILED"),
        ("tag: last byte flipped", flip(env, ENVELOPE_BYTES - 1), 0, "DECRYPT_FAILED"),
        ("opened by another identity than the one it is sealed to", env, 1, "DECRYPT_FAILED"),
        ("count 0 (an all-zero body), sealed with the right key", resealed(bytes(BODY_BYTES), "count0"), 0,
         "BAD_MESSAGE"),
        ("count 31 over 30 pairs and zeros, sealed with the right key", resealed(count31, "count31"), 0,
         "BAD_MESSAGE"),
        ("count 65535, sealed with the right key", resealed(b"\xff\xff" + good_body[2:], "count65535"), 0,
         "BAD_MESSAGE"),
        ("count 1, the first filler byte (body[34]) 0x01, sealed with the right key",
         resealed(flip(good_body, 34), "filler-first"), 0, "BAD_MESSAGE"),
        ("count 1, the last body byte 0x80, sealed with the right key",
         resealed(flip(good_body, BODY_BYTES - 1, 0x80), "filler-last"), 0, "BAD_MESSAGE"),
        ("count 30, the last body byte 0x01, sealed with the right key",
         resealed(flip(body_of(full), BODY_BYTES - 1), "filler-full"), 0, "BAD_MESSAGE"),
    ]
    invalid = []
    for name, b, opener, code in cases:
        try:
            open_envelope(ids[opener]["seed"], b)
        except OpenError as ex:
            assert ex.code == code, (name, ex.code, code)
        else:
            raise AssertionError(name + " was accepted")
        invalid.append(hexify({"name": name, "opener": opener, "envelope": b, "expect": code}))
    out["invalid"] = invalid

    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
