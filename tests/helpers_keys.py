"""Short RSA keys for negative tests (cryptography refuses to generate them)."""
from __future__ import annotations

import random

from cryptography.hazmat.primitives.asymmetric import rsa


def _is_probable_prime(n: int, rng: random.Random) -> bool:
    if n < 2:
        return False
    for p in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29):
        if n % p == 0:
            return n == p
    d, s = n - 1, 0
    while d % 2 == 0:
        d //= 2
        s += 1
    for _ in range(24):
        x = pow(rng.randrange(2, n - 1), d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _prime(bits: int, rng: random.Random) -> int:
    while True:
        c = rng.getrandbits(bits) | (1 << (bits - 1)) | (1 << (bits - 2)) | 1
        if _is_probable_prime(c, rng) and (c - 1) % 65537:
            return c


_cache = {}


def rsa_key_of_bits(bits: int) -> rsa.RSAPrivateKey:
    if bits not in _cache:
        rng = random.Random(bits)
        e = 65537
        while True:
            p, q = _prime(bits // 2, rng), _prime(bits // 2, rng)
            n = p * q
            if p != q and n.bit_length() == bits:
                break
        phi = (p - 1) * (q - 1)
        d = pow(e, -1, phi)
        nums = rsa.RSAPrivateNumbers(
            p=p, q=q, d=d, dmp1=d % (p - 1), dmq1=d % (q - 1), iqmp=pow(q, -1, p),
            public_numbers=rsa.RSAPublicNumbers(e, n),
        )
        _cache[bits] = nums.private_key(unsafe_skip_rsa_key_validation=True)
    return _cache[bits]


def rsa_public_key_of_bits(bits: int) -> rsa.RSAPublicKey:
    """An RSA public key of exactly ``bits`` bits, made at once, for tests that
    only publish or parse a key record.  Its modulus is an odd number, not a
    product of two primes: nothing can be signed for it."""
    n = random.Random(bits).getrandbits(bits) | (1 << (bits - 1)) | 1
    return rsa.RSAPublicNumbers(65537, n).public_key()
