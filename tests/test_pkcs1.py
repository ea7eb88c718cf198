"""RSASSA-PKCS1-v1_5 verification of a SHA-256 digest (fastdkim._pkcs1):
the same answer as cryptography's ``verify`` for every signature, forged
and mangled ones first."""
from __future__ import annotations

import base64
import hashlib
import random
import warnings

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

import fastdkim
from fastdkim._pkcs1 import SHA256_DIGEST_INFO, verify_sha256
from fastdkim.keys import public_key_record

from helpers_keys import rsa_key_of_bits

PKCS1 = padding.PKCS1v15()
PREHASHED = Prehashed(hashes.SHA256())


def reference(pub: rsa.RSAPublicKey, sig: bytes, digest: bytes) -> bool:
    try:
        pub.verify(sig, digest, PKCS1, PREHASHED)
    except InvalidSignature:
        return False
    return True


def raw_signature(key: rsa.RSAPrivateKey, encoded: bytes) -> bytes:
    """The RSA private operation on ``encoded`` (an encoded message as long
    as the modulus): a signature over whatever it holds."""
    nums = key.private_numbers()
    n = nums.public_numbers.n
    size = (n.bit_length() + 7) // 8
    return pow(int.from_bytes(encoded, "big"), nums.d, n).to_bytes(size, "big")


def encoded(size: int, payload: bytes, ffs: int = -1) -> bytes:
    ffs = size - 3 - len(payload) if ffs < 0 else ffs
    return b"\x00\x01" + b"\xff" * ffs + b"\x00" + payload


@pytest.mark.parametrize("bits", [1024, 2044, 2048, 3072])
def test_genuine_signatures_verify(bits):
    key = rsa_key_of_bits(bits)
    pub = key.public_key()
    for i in range(8):
        digest = hashlib.sha256(b"%d" % i).digest()
        sig = key.sign(digest, PKCS1, PREHASHED)
        assert verify_sha256(pub, sig, digest)
        assert not verify_sha256(pub, sig, hashlib.sha256(b"other").digest())


def test_a_signature_without_its_leading_zero_octet_fails():
    """RFC 8017 section 8.2.2 step 1: a signature is exactly as long as the
    modulus.  OpenSSL's public operation alone takes one cut short of its
    leading zero octet (a shorter number), which is why the length is
    checked here."""
    key = rsa_key_of_bits(2048)
    pub = key.public_key()
    for i in range(5000):
        digest = hashlib.sha256(b"lead %d" % i).digest()
        sig = key.sign(digest, PKCS1, PREHASHED)
        if sig[0] == 0:
            break
    else:  # pragma: no cover (one in 256 signatures has one)
        pytest.fail("no signature with a leading zero octet among 5000")
    assert pub.recover_data_from_signature(sig[1:], PKCS1, None) == SHA256_DIGEST_INFO + digest
    assert verify_sha256(pub, sig, digest)
    assert not verify_sha256(pub, sig[1:], digest)
    assert not reference(pub, sig[1:], digest)
    assert not verify_sha256(pub, b"\x00" + sig, digest)


def test_the_encoded_message_is_compared_whole():
    """Encoded messages that a lax parser of the padding or the DigestInfo
    takes, signed by the real key: none verifies."""
    key = rsa_key_of_bits(2048)
    pub = key.public_key()
    digest = hashlib.sha256(b"message").digest()
    size = 256
    good = encoded(size, SHA256_DIGEST_INFO + digest)
    assert verify_sha256(pub, raw_signature(key, good), digest)
    no_null = bytes.fromhex("302f300b0609608648016503040201") + b"\x04\x20" + digest
    sha1_info = bytes.fromhex("3021300906052b0e03021a05000414") + digest[:20]
    bad = [
        encoded(size, SHA256_DIGEST_INFO + digest + b"\x00" * 8, ffs=size - 3 - 51 - 8),  # trailing octets
        encoded(size, SHA256_DIGEST_INFO + digest + b"junk"),
        encoded(size, b"\x00" * 4 + SHA256_DIGEST_INFO + digest),  # zeros before the DigestInfo
        encoded(size, no_null),  # DigestInfo without the NULL parameters
        encoded(size, sha1_info),  # another hash's DigestInfo
        encoded(size, SHA256_DIGEST_INFO + digest[:31]),  # digest cut short
        encoded(size, digest),  # the digest alone
        b"\x00\x02" + good[2:],  # block type 2
        b"\x00\x01" + b"\xfe" + good[3:],  # padding not all FF
        b"\x00\x01" + b"\xff" * 7 + b"\x00" + b"\x00" * (size - 10 - 51) + SHA256_DIGEST_INFO + digest,  # short padding
    ]
    for em in bad:
        assert len(em) == size
        sig = raw_signature(key, em)
        assert not verify_sha256(pub, sig, digest), em.hex()
        assert not reference(pub, sig, digest)


def test_a_low_exponent_forgery_fails():
    """Bleichenbacher's forgery for exponent 3: a cube root whose cube
    begins with a valid padding and DigestInfo, and ends with garbage that
    a parser skipping what follows the digest would not see.  OpenSSL's
    padding check alone lets it through (it returns the DigestInfo, the
    digest and the garbage)."""
    n = rsa_key_of_bits(2048).private_numbers().public_numbers.n
    pub = rsa.RSAPublicNumbers(3, n).public_key()
    digest = hashlib.sha256(b"forged").digest()
    prefix = b"\x00\x01" + b"\xff" * 8 + b"\x00" + SHA256_DIGEST_INFO + digest
    garbage = 256 - len(prefix)
    low = int.from_bytes(prefix, "big") << (8 * garbage)
    s = _icbrt(low) + 1
    assert (s ** 3) >> (8 * garbage) == int.from_bytes(prefix, "big")
    sig = s.to_bytes(256, "big")
    recovered = pub.recover_data_from_signature(sig, PKCS1, None)
    assert recovered.startswith(SHA256_DIGEST_INFO + digest)  # the padding check alone passes it
    assert not verify_sha256(pub, sig, digest)
    assert not reference(pub, sig, digest)


def _icbrt(x: int) -> int:
    lo, hi = 0, 1 << (x.bit_length() // 3 + 2)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if mid ** 3 <= x:
            lo = mid
        else:
            hi = mid - 1
    return lo


def test_mangled_signatures_answer_as_cryptography_does():
    key = rsa_key_of_bits(2048)
    pub = key.public_key()
    n = pub.public_numbers().n
    rng = random.Random(8017)
    digest = hashlib.sha256(b"mangled").digest()
    sig = key.sign(digest, PKCS1, PREHASHED)
    cases = [b"", b"\x00" * 256, b"\xff" * 256, n.to_bytes(256, "big"), (n - 1).to_bytes(256, "big"),
             (1).to_bytes(256, "big"), sig[:-1], sig + b"\x00", sig * 2]
    for _ in range(200):
        mangled = bytearray(sig)
        for _ in range(rng.randint(1, 3)):
            mangled[rng.randrange(256)] ^= 1 << rng.randrange(8)
        cases.append(bytes(mangled))
    for case in cases:
        assert verify_sha256(pub, case, digest) == reference(pub, case, digest)
    assert not verify_sha256(pub, sig, digest[:31])
    assert not verify_sha256(pub, sig, digest + b"\x00")


def test_a_message_whose_signature_lost_its_leading_zero_fails():
    """End to end: a DKIM-Signature whose b= is the signature without its
    leading zero octet does not pass, in the lane and in the phases."""
    key = rsa_key_of_bits(2048)
    record = public_key_record(key.public_key())
    base = b"From: a@example.com\r\nTo: b@example.net\r\nSubject: %d\r\n\r\nbody\r\n"
    for i in range(3000):
        msg = base % i
        field = fastdkim.Signer("example.com", "sel", key, timestamp=False).sign(msg)
        b64 = field.split(b"b=")[-1].replace(b"\r\n", b"").replace(b"\t", b"").replace(b" ", b"").strip()
        raw = base64.b64decode(b64)
        if raw[0] == 0:
            break
    else:  # pragma: no cover
        pytest.fail("no signature with a leading zero octet among 3000")
    shortened = base64.b64encode(raw[1:])
    forged = field.replace(field[field.rindex(b"b=") + 2:].rstrip(b"\r\n"), shortened)
    keys = {"sel._domainkey.example.com": record}
    [ok] = fastdkim.verify(field + msg, keys=keys)
    assert ok.status == "pass"
    for message in (forged + msg, (forged + msg).replace(b"\r\n", b"\n")):
        [got] = fastdkim.verify(message, keys=keys)
        assert got.status == "fail", got


def test_bytes_like_signatures_and_no_warnings():
    """Any bytes-like signature and digest are taken, as ``verify`` takes
    them, and a verification warns of nothing (a deprecation warning per
    call would reach every caller running with warnings as errors)."""
    key = rsa_key_of_bits(2048)
    pub = key.public_key()
    digest = hashlib.sha256(b"bytes-like").digest()
    sig = key.sign(digest, PKCS1, PREHASHED)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for s in (sig, bytearray(sig), memoryview(sig)):
            for d in (digest, bytearray(digest), memoryview(digest)):
                assert verify_sha256(pub, s, d)
        assert not verify_sha256(pub, bytearray(sig[1:]), digest)
