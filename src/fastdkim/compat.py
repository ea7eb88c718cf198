"""dkimpy's API on fastdkim's engine: code written for dkimpy 1.1 runs with
one changed line::

    import fastdkim.compat as dkim

    sig = dkim.sign(message, b"sel", b"example.com", open("key.pem", "rb").read())
    ok = dkim.verify(sig + message)                       # DNS, through fastdkim
    ok = dkim.verify(sig + message, dnsfunc=my_get_txt)   # dnsfunc(name, timeout=5)

    d = dkim.DKIM(message)
    sig = d.sign(b"sel", b"example.com", key, include_headers=[b"from", b"to", b"subject"])
    d = dkim.DKIM(sig + message)
    if d.present() and d.verify(dnsfunc=my_get_txt):
        print(d.domain, d.selector, d.keysize, d.signature_fields[b"a"])

What works as in dkimpy: :func:`sign` and :func:`verify` (and their aliases
``dkim_sign``/``dkim_verify``) with the same parameters, defaults
(``relaxed/simple`` canonicalization, ``rsa-sha256``, ``minkey=1024``,
``timeout=5``) and results; the :class:`DKIM` class (``sign``, ``verify``,
``present``, ``add_frozen``, ``add_should_not``, ``default_sign_headers``,
``all_sign_headers``, ``set_message``, the ``SHOULD``/``SHOULD_NOT``/
``FROZEN`` sets, and the attributes ``domain``, ``selector``,
``signature_fields``, ``include_headers``, ``signed_headers``, ``keysize``,
``headers``, ``body``); the helpers ``validate_signature_fields``, ``fold``,
``select_headers``, ``rfc822_parse``, ``parse_tag_value``, ``get_txt``,
``evaluate_pk``, ``load_pk_from_dns`` and the constants ``Simple``,
``Relaxed``, ``CV_Pass``, ``CV_Fail``, ``CV_None``; the exception classes,
with dkimpy's bases (:mod:`fastdkim.compat_errors`); keys as dkimpy takes
them (PEM RSA, PKCS#1 or PKCS#8; the base64 text of a raw Ed25519 seed) and
more (DER, OpenSSH, Ed25519 PEM, ``cryptography`` key objects); a
``dnsfunc(name, timeout=5)`` returning the TXT record (bytes or str) or
``None``, and raising :class:`DnsTimeoutError` for a transient failure;
:func:`arc_sign`, :func:`arc_verify` and the :class:`ARC` class, with
dkimpy's parameters and return shapes (:mod:`fastdkim.compat_arc`).

Deliberate differences (fastdkim keeps its rule; each is asserted by
``tests/test_compat.py``, and from dkimpy's side by
``tests/test_compat_dkimpy.py``):

==========================================  ==========================================  ==========================================
case                                        dkimpy 1.1                                  fastdkim.compat
==========================================  ==========================================  ==========================================
sign with ``rsa-sha1``                      signs                                       ParameterError (RFC 8301)
verify an ``rsa-sha1`` signature            True if it verifies                         ValidationError; ``verify()`` False
                                                                                        (RFC 8301)
RSA key under 1024 bits, signing            signs                                       KeyFormatError (RFC 8301)
RSA key under 1024 bits, verifying with     True                                        KeyFormatError; ``verify()`` False
``minkey`` lowered                                                                      (RFC 8301: never below 1024)
RSA key of 1024 to 2047 bits, signing       signs                                       signs, with a UserWarning (RFC 8301
                                                                                        recommends 2048), once per key and
                                                                                        options
signing with an invalid selector or         signs (a signature no verifier accepts)     ParameterError
domain, an ``identity`` without ``@``, or
an ``include_headers`` name an ``h=`` list
cannot hold (empty, white space, colon)
``identity`` whose domain differs from      ParameterError                              accepted (domains compare
``domain`` only in letter case                                                          case-insensitively)
unknown ``signature_algorithm``             TypeError (a bug)                           ParameterError
Ed25519 signing with an unusable key        binascii.Error (mostly)                     KeyFormatError
``h=`` without From, verifying              may be True                                 ValidationError (RFC 6376 6.1.1)
``l=`` larger than the body                 body hash compared on the whole body        ValidationError (fastdkim: permerror)
key record ``h=`` excluding sha256,         ignored                                     False (RFC 6376 3.6.1)
``t=s`` with an ``i=`` subdomain,
``v=`` not first
key record whose ``s=`` excludes email      ``DKIM.verify`` raises UnknownKeyTypeError  False
                                            (ValidationError for ``s=tlsrpt``)
several DKIM TXT records at the name        first one used                              False (fastdkim: permerror)
                                            (with the default ``get_txt``)
extra From field above a signature that     False (it hashes one more From)             False too (a reader shows the
does not oversign From                                                                  added From, which is not signed:
                                                                                        RFC 6376 8.15)
relaxed body canonicalization of a last     the white space is kept                     dropped (RFC 6376 3.4.4: white space
line without CRLF that ends in white                                                    at the end of lines is ignored), so
space                                                                                   signatures of such bodies do not
                                                                                        cross-verify
tags that crash dkimpy: an ``i=`` as long   IndexError, ValueError, binascii.Error,     ValidationError; ``verify()`` False
as ``d=``, an empty ``l=``, a ``bh=`` that  even from ``verify()``
is not base64
``x=`` equal to ``t=``                      accepted                                    ValidationError (RFC 6376 3.5: x > t)
key lookup failed for a transient reason    False                                       False (also for SERVFAIL, which
                                                                                        dkimpy takes for "no key")
``include_headers`` naming a field the      listed in ``h=`` (blocks its addition)      not listed; fields present are
message lacks; a name listed fewer times                                                signed every instance, and once more
than its field occurs                                                                   when listed more often than they occur
``h=`` and other tag layout of the          ``h=from : to``, dkimpy's folding           fastdkim's (``h=from:to``, 78-column
field ``sign`` returns                                                                  folding); same tags (``i=``, ``t=``)
                                                                                        but no ``q=``
``DKIM.include_headers`` after ``sign``     the names as requested                      the ``h=`` list actually signed
bare CR in the header block                 signed/verified as found                    MessageFormatError signing;
                                                                                        ValidationError verifying
``tlsrpt=True`` (RFC 8460 reports)          supported                                   ParameterError; ``s=tlsrpt`` keys
                                                                                        unusable
default logger                              ``dkimpy``                                  ``fastdkim.compat``
``DKIM.pk``, ``evaluate_pk()``'s key        dict or nacl VerifyKey                      ``cryptography`` public key
                                                                                        (``DKIM.pk`` absent)
``InvalidCanonicalizationPolicyError``      derives from Exception                      also a ParameterError
==========================================  ==========================================  ==========================================

A ``dnsfunc`` is called as dkimpy calls it: ``dnsfunc(b"sel._domainkey.example.com.",
timeout=5)``, the name built from ``s=`` and ``d=`` as written; an exception
other than :class:`DnsTimeoutError` and :class:`KeyFormatError` propagates to
the caller, as in dkimpy.  The default, :func:`get_txt`, asks DNS through
fastdkim's :class:`~fastdkim.DNSKeySource` (cached, TTLs honoured).

Times keep dkimpy's 10 hours of leeway (``t=`` up to 10 hours ahead,
``x=`` up to 10 hours past), which RFC 6376 section 3.5 allows.  A valid
``l=`` signature with content after the signed part verifies, as in dkimpy.
"""
from __future__ import annotations

import logging
from typing import Any, Optional, Sequence, Union

from .compat_arc import ARC, arc_sign, arc_verify
from .compat_dkim import DKIM, DomainSigner
from .compat_errors import (
    AuthresNotFoundError,
    DKIMException,
    DnsTimeoutError,
    DuplicateTag,
    InternalError,
    InvalidCanonicalizationPolicyError,
    InvalidTagSpec,
    InvalidTagValueList,
    KeyFormatError,
    MessageFormatError,
    NaClNotFoundError,
    ParameterError,
    UnknownKeyTypeError,
    ValidationError,
)
from .compat_fields import (
    ARC_HASH_ALGORITHMS,
    CV_Fail,
    CV_None,
    CV_Pass,
    HASH_ALGORITHMS,
    Relaxed,
    Simple,
    bitsize,
    fold,
    get_default_logger,
    parse_tag_value,
    rfc822_parse,
    select_headers,
    text,
    validate_signature_fields,
)
from .compat_keys import DnsFunc, evaluate_pk, get_txt, load_pk_from_dns

__all__ = [
    "DKIMException",
    "InternalError",
    "KeyFormatError",
    "MessageFormatError",
    "ParameterError",
    "ValidationError",
    "AuthresNotFoundError",
    "NaClNotFoundError",
    "UnknownKeyTypeError",
    "DnsTimeoutError",
    "InvalidCanonicalizationPolicyError",
    "InvalidTagValueList",
    "DuplicateTag",
    "InvalidTagSpec",
    "USE_ASYNC",
    "CV_Pass",
    "CV_Fail",
    "CV_None",
    "Relaxed",
    "Simple",
    "HASH_ALGORITHMS",
    "ARC_HASH_ALGORITHMS",
    "DKIM",
    "DomainSigner",
    "ARC",
    "arc_sign",
    "arc_verify",
    "sign",
    "verify",
    "dkim_sign",
    "dkim_verify",
    "select_headers",
    "fold",
    "validate_signature_fields",
    "rfc822_parse",
    "parse_tag_value",
    "bitsize",
    "text",
    "get_default_logger",
    "get_txt",
    "evaluate_pk",
    "load_pk_from_dns",
]

#: Verification in an event loop is :func:`fastdkim.aio.verify`; this layer is synchronous.
USE_ASYNC = False


def sign(message: bytes, selector: Union[bytes, str], domain: Union[bytes, str], privkey: Any,
         identity: Optional[Union[bytes, str]] = None,
         canonicalize: Sequence[Union[bytes, str]] = (b"relaxed", b"simple"),
         signature_algorithm: bytes = b"rsa-sha256", include_headers: Optional[Sequence[Union[bytes, str]]] = None,
         length: bool = False, logger: Optional[logging.Logger] = None, linesep: bytes = b"\r\n",
         tlsrpt: bool = False) -> bytes:
    """Sign an RFC 822 message (CRLF or LF line endings): the
    ``DKIM-Signature`` field, ending in ``linesep``, to put on top of it.

    ``include_headers`` defaults to the fields RFC 6376 recommends that are
    present, From once more; see :meth:`DKIM.sign`.

    :raises KeyFormatError: an unusable key (including RSA under 1024 bits).
    :raises ParameterError: ``rsa-sha1`` or an unknown algorithm, no From
        field, a field that should not be signed, a bad identity or domain,
        ``tlsrpt``.
    :raises InvalidCanonicalizationPolicyError: an unknown canonicalization.
    :raises MessageFormatError: a header line that is not a field.
    """
    d = DKIM(message, logger=logger, signature_algorithm=signature_algorithm, linesep=linesep, tlsrpt=tlsrpt)
    return d.sign(selector, domain, privkey, identity=identity, canonicalize=canonicalize,
                  include_headers=include_headers, length=length)


def verify(message: bytes, logger: Optional[logging.Logger] = None, dnsfunc: DnsFunc = get_txt, minkey: int = 1024,
           timeout: float = 5, tlsrpt: bool = False) -> bool:
    """Verify the first (topmost) DKIM signature of an RFC 822 message.

    :returns: ``True`` if it verifies, ``False`` otherwise (no signature, a
        bad one, no usable key); the reason goes to ``logger`` (if given) at
        error level.
    :raises MessageFormatError: a header line is neither a field nor a
        continuation line (the message cannot be read at all, as in dkimpy).
    :raises ParameterError: ``tlsrpt``.
    :raises Exception: whatever ``dnsfunc`` raised, other than
        :class:`DnsTimeoutError` and :class:`KeyFormatError`.
    """
    d = DKIM(message, logger=logger, minkey=minkey, timeout=timeout, tlsrpt=tlsrpt)
    try:
        return d.verify(dnsfunc=dnsfunc)
    except DKIMException as exc:
        if logger is not None:
            logger.error("%s" % exc)
        return False


dkim_sign = sign
dkim_verify = verify
