"""Deterministic ML-KEM-768 encapsulation (FIPS 203, Algorithms 13-17), for test vectors only.

The `cryptography` package implements ML-KEM-768 (keygen from a 64-byte seed, encapsulate,
decapsulate) but draws the encapsulation's 32-byte message m from the OS, so vectors could not be
reproduced. This module computes ML-KEM.Encaps_internal(ek, m) and ML-KEM.KeyGen_internal(d, z)
from the FIPS 203 text. It is checked against `cryptography` on every use (see `encaps`):

- its encapsulation key must equal `cryptography`'s for the same seed, and
- `cryptography`'s decapsulation of its ciphertext must yield its shared secret. Decapsulation
  re-encrypts and compares (the Fujisaki-Okamoto transform), so a ciphertext that differs by one
  bit from the one FIPS 203 defines for (ek, m) would give the implicit-rejection key instead.

Not constant time, not for anything but generating vectors.
"""

import hashlib

from cryptography.hazmat.primitives.asymmetric import mlkem

Q = 3329
N = 256
K = 3
ETA1 = 2
ETA2 = 2
DU = 10
DV = 4


def _bitrev7(i: int) -> int:
    return int(f"{i:07b}"[::-1], 2)


ZETAS = [pow(17, _bitrev7(i), Q) for i in range(128)]
GAMMAS = [pow(17, 2 * _bitrev7(i) + 1, Q) for i in range(128)]


def _H(b: bytes) -> bytes:
    return hashlib.sha3_256(b).digest()


def _G(b: bytes) -> tuple[bytes, bytes]:
    d = hashlib.sha3_512(b).digest()
    return d[:32], d[32:]


def _prf(eta: int, s: bytes, b: int) -> bytes:
    return hashlib.shake_256(s + bytes([b])).digest(64 * eta)


def _bits(b: bytes) -> list[int]:
    return [(byte >> j) & 1 for byte in b for j in range(8)]


def _byte_encode(f: list[int], d: int) -> bytes:
    bits = [(a >> j) & 1 for a in f for j in range(d)]
    return bytes(sum(bits[8 * i + j] << j for j in range(8)) for i in range(len(bits) // 8))


def _byte_decode(b: bytes, d: int) -> list[int]:
    bits = _bits(b)
    m = Q if d == 12 else 1 << d
    return [sum(bits[i * d + j] << j for j in range(d)) % m for i in range(N)]


def _compress(x: int, d: int) -> int:
    # round(2^d * x / q); q is odd so there is never a tie
    return ((x << (d + 1)) + Q) // (2 * Q) % (1 << d)


def _decompress(y: int, d: int) -> int:
    # round(q * y / 2^d), ties rounded up
    return (2 * Q * y + (1 << d)) // (1 << (d + 1))


def _sample_ntt(seed: bytes) -> list[int]:
    stream = hashlib.shake_128(seed).digest(1344)  # enough for all but a vanishing fraction
    out: list[int] = []
    pos = 0
    while len(out) < N:
        if pos + 3 > len(stream):
            stream = hashlib.shake_128(seed).digest(len(stream) * 2)
        c0, c1, c2 = stream[pos], stream[pos + 1], stream[pos + 2]
        pos += 3
        d1 = c0 + 256 * (c1 % 16)
        d2 = c1 // 16 + 16 * c2
        if d1 < Q:
            out.append(d1)
        if d2 < Q and len(out) < N:
            out.append(d2)
    return out


def _cbd(b: bytes, eta: int) -> list[int]:
    bits = _bits(b)
    return [
        (sum(bits[2 * i * eta + j] for j in range(eta)) - sum(bits[2 * i * eta + eta + j] for j in range(eta))) % Q
        for i in range(N)
    ]


def _ntt(f: list[int]) -> list[int]:
    f = list(f)
    i = 1
    length = 128
    while length >= 2:
        for start in range(0, N, 2 * length):
            zeta = ZETAS[i]
            i += 1
            for j in range(start, start + length):
                t = zeta * f[j + length] % Q
                f[j + length] = (f[j] - t) % Q
                f[j] = (f[j] + t) % Q
        length //= 2
    return f


def _intt(f: list[int]) -> list[int]:
    f = list(f)
    i = 127
    length = 2
    while length <= 128:
        for start in range(0, N, 2 * length):
            zeta = ZETAS[i]
            i -= 1
            for j in range(start, start + length):
                t = f[j]
                f[j] = (t + f[j + length]) % Q
                f[j + length] = zeta * (f[j + length] - t) % Q
        length *= 2
    return [a * 3303 % Q for a in f]


def _mul_ntt(f: list[int], g: list[int]) -> list[int]:
    h = [0] * N
    for i in range(128):
        a0, a1, b0, b1 = f[2 * i], f[2 * i + 1], g[2 * i], g[2 * i + 1]
        h[2 * i] = (a0 * b0 + a1 * b1 * GAMMAS[i]) % Q
        h[2 * i + 1] = (a0 * b1 + a1 * b0) % Q
    return h


def _add(f: list[int], g: list[int]) -> list[int]:
    return [(a + b) % Q for a, b in zip(f, g)]


def _matrix(rho: bytes) -> list[list[list[int]]]:
    # A_hat[i][j] = SampleNTT(rho || j || i)
    return [[_sample_ntt(rho + bytes([j, i])) for j in range(K)] for i in range(K)]


def _pke_keygen(d: bytes, ipd: bool = False) -> bytes:
    # FIPS 203 final appends k to d; the initial public draft (ipd) did not
    rho, sigma = _G(d if ipd else d + bytes([K]))
    a = _matrix(rho)
    s = [_ntt(_cbd(_prf(ETA1, sigma, i), ETA1)) for i in range(K)]
    e = [_ntt(_cbd(_prf(ETA1, sigma, K + i), ETA1)) for i in range(K)]
    t = []
    for i in range(K):
        acc = [0] * N
        for j in range(K):
            acc = _add(acc, _mul_ntt(a[i][j], s[j]))
        t.append(_add(acc, e[i]))
    return b"".join(_byte_encode(ti, 12) for ti in t) + rho


def _pke_encrypt(ek: bytes, m: bytes, r: bytes) -> bytes:
    t = [_byte_decode(ek[384 * i : 384 * (i + 1)], 12) for i in range(K)]
    rho = ek[384 * K :]
    a = _matrix(rho)
    n = 0
    y = []
    for _ in range(K):
        y.append(_cbd(_prf(ETA1, r, n), ETA1))
        n += 1
    e1 = []
    for _ in range(K):
        e1.append(_cbd(_prf(ETA2, r, n), ETA2))
        n += 1
    e2 = _cbd(_prf(ETA2, r, n), ETA2)
    y_hat = [_ntt(p) for p in y]
    u = []
    for i in range(K):
        acc = [0] * N
        for j in range(K):
            acc = _add(acc, _mul_ntt(a[j][i], y_hat[j]))  # A_hat transposed
        u.append(_add(_intt(acc), e1[i]))
    mu = [_decompress(b, 1) for b in _byte_decode(m, 1)]
    acc = [0] * N
    for i in range(K):
        acc = _add(acc, _mul_ntt(t[i], y_hat[i]))
    v = _add(_add(_intt(acc), e2), mu)
    c1 = b"".join(_byte_encode([_compress(x, DU) for x in ui], DU) for ui in u)
    c2 = _byte_encode([_compress(x, DV) for x in v], DV)
    return c1 + c2


def keygen(seed: bytes) -> tuple[bytes, mlkem.MLKEM768PrivateKey]:
    """ML-KEM.KeyGen_internal(d, z) with seed = d || z (64 bytes, the FIPS 203 seed form).

    Returns the 1184-byte encapsulation key and `cryptography`'s private key for the same seed,
    after checking the two agree."""
    assert len(seed) == 64
    ek = _pke_keygen(seed[:32])
    sk = mlkem.MLKEM768PrivateKey.from_seed_bytes(seed)
    assert sk.public_key().public_bytes_raw() == ek, "ML-KEM keygen disagrees with cryptography"
    return ek, sk


def ek_valid(ek: bytes) -> bool:
    """FIPS 203 §7.2 input check: the key is 1184 bytes and every coefficient is below q."""
    return len(ek) == 1184 and b"".join(
        _byte_encode(_byte_decode(ek[384 * i : 384 * (i + 1)], 12), 12) for i in range(K)
    ) == ek[: 384 * K]


def encaps(ek: bytes, m: bytes, check_with: mlkem.MLKEM768PrivateKey | None = None) -> tuple[bytes, bytes]:
    """ML-KEM.Encaps_internal(ek, m): returns (ciphertext 1088 bytes, shared secret 32 bytes).

    With `check_with` (the private key for ek), `cryptography` decapsulates the result and must
    recover the same shared secret."""
    assert ek_valid(ek) and len(m) == 32
    shared, r = _G(m + _H(ek))
    ct = _pke_encrypt(ek, m, r)
    if check_with is not None:
        assert check_with.decapsulate(ct) == shared, "ML-KEM encapsulation disagrees with cryptography"
    return ct, shared


def self_test() -> None:
    """A published known answer: the first ML-KEM-768 vector of pq-crystals' test_vectors
    (standard branch), as reproduced in C2SP/CCTV ML-KEM/pq-crystals/test_vectors768.txt. Those
    vectors predate the final FIPS 203 only in key generation (d without k appended), so the key is
    made the ipd way; encapsulation is unchanged in the final text. The 1184-byte key and the
    1088-byte ciphertext are compared by SHA-256 to keep this file short."""
    coins = bytes.fromhex(
        "7f9c2ba4e88f827d616045507605853ed73b8093f6efbc88eb1a6eacfa66ef26"
        "3cb1eea988004b93103cfb0aeefd2a686e01fa4a58e8a3639ca8a1e3f9ae57e2"
    )
    m = bytes.fromhex("35b8cc873c23dc62b8d260169afa2f75ab916a58d974918835d25e6a435085b2")
    ek = _pke_keygen(coins[:32], ipd=True)
    assert hashlib.sha256(ek).hexdigest() == "835ec2d5a413058721761c4f79787cdb6fdd4078ecf679f1dde5c50e18b9eaa7"
    assert ek[:8].hex() == "1bc331b659a61a04"
    ct, ss = encaps(ek, m)
    assert hashlib.sha256(ct).hexdigest() == "d29ecc8f8f08702b63b8038e7b23cb695e55cbce85ec20ffc21270dc7e464a95"
    assert ct[:8].hex() == "0315a52971584a19"
    assert ss.hex() == "aac51a36f6e5e1871b916a1a1f4396615c298a9f738fb3ea2d7cff299f965bbe"
    # and the final-FIPS-203 path against cryptography for a few seeds
    for i in range(3):
        ek, sk = keygen(bytes([i]) * 64)
        encaps(ek, bytes([0x40 + i]) * 32, check_with=sk)


if __name__ == "__main__":
    self_test()
    print("ML-KEM-768 self-test passed")
