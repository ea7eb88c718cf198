"""RSASSA-PKCS1-v1_5 verification of a SHA-256 digest (RFC 8017 section
8.2.2), the check of every ``rsa-sha256`` signature.

The RSA operation and the check of the padding (``00 01 FF .. FF 00``) are
OpenSSL's, through ``cryptography``'s ``recover_data_from_signature``; what
remains of the RFC's steps is done here: the signature's length (step 1)
and the comparison of what the padding held with the DER ``DigestInfo`` of
the digest, whole and byte for byte (steps 3 and 4: compared, never parsed,
so that no room is left for the octets a parser would skip, the forgery of
low-exponent signatures).  ``verify(signature, digest, PKCS1v15(),
Prehashed(SHA256()))`` checks exactly this, and costs about 1 us more a
call (it looks SHA-256 up by name each time), which is 5% of the
verification of a small message.
"""
from __future__ import annotations

from typing import Any, Optional

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

__all__ = ["SHA256_DIGEST_INFO", "verify_sha256"]

#: The DER encoding of a SHA-256 ``DigestInfo`` up to the digest itself
#: (RFC 8017 section 9.2, note 1).
SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")

_PKCS1 = padding.PKCS1v15()
#: "no DigestInfo to check: hand back what the padding holds" (``None`` in
#: cryptography releases before ``NoDigestInfo``, where ``None`` is deprecated)
_RAW: Optional[Any] = utils.NoDigestInfo() if hasattr(utils, "NoDigestInfo") else None


def verify_sha256(key: rsa.RSAPublicKey, signature: bytes, digest: bytes) -> bool:
    """Whether *signature* (bytes-like) is the RSASSA-PKCS1-v1_5 signature
    under *key* of the data whose SHA-256 is *digest*.

    :raises ValueError: what ``cryptography`` raises for a key it cannot
        use.
    """
    if type(signature) is not bytes:
        signature = bytes(signature)
    if type(digest) is not bytes:
        digest = bytes(digest)
    if len(signature) != (key.key_size + 7) >> 3 or len(digest) != 32:  # step 1: as long as the modulus
        return False
    try:
        encoded = key.recover_data_from_signature(signature, _PKCS1, _RAW)
    except InvalidSignature:
        return False
    return encoded == SHA256_DIGEST_INFO + digest
