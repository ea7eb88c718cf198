"""The ``DKIM`` class of :mod:`fastdkim.compat`: dkimpy 1.1's interface
(a message held, ``sign()`` and ``verify()`` on it, the attributes those
set) over fastdkim's :class:`~fastdkim.Signer` and verifier.  The module
functions ``sign()`` and ``verify()`` are built on it; the differences from
dkimpy are listed in :mod:`fastdkim.compat`'s docstring.
"""
from __future__ import annotations

import logging
import re
import time
from typing import Any, Iterable, List, Optional, Sequence, Tuple, Type, Union

from . import errors as _engine
from ._cache import BoundedCache
from .compat_errors import (
    DKIMException,
    InvalidCanonicalizationPolicyError,
    InvalidTagValueList,
    KeyFormatError,
    MessageFormatError,
    ParameterError,
    ValidationError,
)
from .compat_fields import (
    CLOCK_SLOP,
    HASH_ALGORITHMS,
    canonicalize_headers,
    get_default_logger,
    parse_tag_value,
    select_headers,
    split_message,
    validate_signature_fields,
)
from .compat_keys import DnsFunc, DnsfuncKeySource, get_txt, signing_key
from .results import PASS, TEMPERROR
from .signing import Signer
from .verification import verify as _engine_verify

__all__ = ["DKIM", "DomainSigner"]

#: What a failed verification becomes, by the start of the engine's reason:
#: ``None`` for a ``False`` result (a key problem, a signature that does not
#: verify), or the exception dkimpy raises for the same defect.  Any other
#: reason is a signature-field problem: :class:`ValidationError`.
_OUTCOMES: Tuple[Tuple[str, Optional[Type[DKIMException]]], ...] = (
    ("signature did not verify", None),
    ("signature verified over the first", None),  # l= leaving part of the body unsigned (neutral)
    ("the message has more", None),  # a field allowed once, more often than h= lists (dkimpy: From only)
    ("body hash mismatch", ValidationError),
    ("RSA key of", KeyFormatError),  # shorter than 1024 bits (RFC 8301)
    ("no key record", None),
    ("no DKIM key record", None),
    ("key ", None),  # key record defects, k=/h=/t=s mismatches
    ("unknown key type", None),
    ("ed25519 key", None),
    ("malformed signature", MessageFormatError),
    ("unknown canonicalization", MessageFormatError),
)
_MANY_RECORDS = re.compile(r"\d+ DKIM key records")
_FOLD = re.compile(rb"\r?\n[ \t]")
_WSP = re.compile(rb"[ \t\r\n]+")
_H_SPLIT = re.compile(rb"\s*:\s*")


def _outcome(reason: str) -> Optional[Type[DKIMException]]:
    """The exception class for the engine's ``reason``, ``None`` for a
    ``False`` result (see :data:`_OUTCOMES`).  Raises nothing."""
    for start, what in _OUTCOMES:
        if reason.startswith(start):
            return what
    if _MANY_RECORDS.match(reason):
        return None
    return ValidationError


def _as_bytes(value: Union[bytes, str], what: str) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise ParameterError("%s must be bytes, not %s" % (what, type(value).__name__))


def _as_text(value: Union[bytes, str], what: str) -> str:
    try:
        return _as_bytes(value, what).decode("utf-8")
    except UnicodeDecodeError:
        raise ParameterError("%s is not UTF-8: %r" % (what, value)) from None


#: Signers by their options: a sender signs many messages alike.
_SIGNERS: BoundedCache[Tuple[Any, ...], Signer] = BoundedCache(64)


def _signer(key: Any, domain: str, selector: str, algorithm: str, canonicalization: str, headers: Tuple[str, ...],
            oversign: Tuple[str, ...], identity: str, length: bool) -> Signer:
    """The :class:`~fastdkim.Signer` for these options, made once.

    :raises fastdkim.errors.SigningError: an invalid option.
    :raises fastdkim.errors.KeyFormatError: an unusable key.
    """
    options = (key, domain, selector, algorithm, canonicalization, headers, oversign, identity, length)
    signer = _SIGNERS.get(options)
    if signer is None:
        signer = Signer(domain, selector, key, algorithm=algorithm, canonicalization=canonicalization,
                        headers=headers, oversign=oversign, identity=identity, body_length=length, bare_lf=True)
        _SIGNERS.set(options, signer)
    return signer


class DKIM:
    """A message (``bytes``, CRLF or LF line endings) to sign or verify.

    :param message: the message; ``None`` for none yet (:meth:`set_message`).
    :param logger: where to write debug and error records (default
        :func:`~fastdkim.compat_fields.get_default_logger`).
    :param signature_algorithm: ``b'rsa-sha256'`` or ``b'ed25519-sha256'``
        for :meth:`sign` (``b'rsa-sha1'`` is accepted here and refused there).
    :param minkey: smallest RSA key :meth:`verify` accepts; below 1024 bits
        keys are refused whatever its value (RFC 8301).
    :param linesep: line separator of the header field :meth:`sign` returns.
    :param debug_content: accepted for compatibility; nothing is logged for it.
    :param timeout: seconds a key lookup may take (passed to ``dnsfunc``).
    :param tlsrpt: must be false: RFC 8460 TLS reports are not supported.
    :raises ParameterError: an unknown ``signature_algorithm``, or ``tlsrpt``.
    :raises MessageFormatError: the header block holds a line that is neither
        a field nor a continuation line.
    """

    #: Header fields signed once more than they occur by default.
    FROZEN: Tuple[bytes, ...] = (b"from",)
    #: The header fields RFC 6376 recommends signing (the default set).
    SHOULD: Tuple[bytes, ...] = (
        b"from", b"sender", b"reply-to", b"subject", b"date", b"message-id", b"to", b"cc",
        b"mime-version", b"content-type", b"content-transfer-encoding",
        b"content-id", b"content-description", b"resent-date", b"resent-from",
        b"resent-sender", b"resent-to", b"resent-cc", b"resent-message-id",
        b"in-reply-to", b"references", b"list-id", b"list-help", b"list-unsubscribe",
        b"list-subscribe", b"list-post", b"list-owner", b"list-archive",
    )
    #: The header fields RFC 6376 recommends not signing: signing them is refused.
    SHOULD_NOT: Tuple[bytes, ...] = (
        b"return-path", b"received", b"comments", b"keywords", b"bcc", b"resent-bcc", b"dkim-signature",
    )
    #: The fields RFC 5322 allows at most once.
    RFC5322_SINGLETON: Tuple[bytes, ...] = (
        b"date", b"from", b"sender", b"reply-to", b"to", b"cc", b"bcc", b"message-id", b"in-reply-to",
        b"references",
    )

    def __init__(self, message: Optional[bytes] = None, logger: Optional[logging.Logger] = None,
                 signature_algorithm: bytes = b"rsa-sha256", minkey: int = 1024, linesep: bytes = b"\r\n",
                 debug_content: bool = False, timeout: float = 5, tlsrpt: Union[bool, str] = False) -> None:
        self.set_message(message)
        self.logger = logger if logger is not None else get_default_logger()
        self.debug_content = bool(debug_content)
        if tlsrpt:
            raise ParameterError("RFC 8460 TLS reports (tlsrpt) are not supported")
        self.tlsrpt = tlsrpt
        self.signature_algorithm = self._algorithm(signature_algorithm)
        self.should_sign = set(self.SHOULD)
        self.should_not_sign = set(self.SHOULD_NOT)
        self.frozen_sign = set(self.FROZEN)
        self.minkey = minkey
        self.linesep = linesep
        self.timeout = timeout
        self.seqtlsrpt = False

    @staticmethod
    def _algorithm(value: Union[bytes, str]) -> bytes:
        alg = _as_bytes(value, "signature_algorithm").strip().lower()
        if alg not in HASH_ALGORITHMS:
            raise ParameterError("Unsupported signature algorithm: %s" % alg.decode("ascii", "replace"))
        return alg

    def set_message(self, message: Optional[bytes]) -> None:
        """Hold ``message`` (replacing any other) and reset the results of
        the last sign or verify.

        :raises MessageFormatError: see the class.
        """
        if message:
            self.headers, self.body, self._message = split_message(_as_bytes(message, "message"))
        else:
            self.headers, self.body, self._message = [], b"", b""
        #: d= of the last signature signed or verified
        self.domain: Optional[bytes] = None
        #: s= of the last signature signed or verified
        self.selector: Union[bytes, str] = "default"
        #: the tags of the last signature signed or verified
        self.signature_fields: dict[bytes, bytes] = {}
        #: the header fields (canonicalized) the last signature covered
        self.signed_headers: List[Tuple[bytes, bytes]] = []
        #: bits of the public key last looked up when verifying
        self.keysize = 0
        #: the h= names of the last signature, lower-case
        self.include_headers: Tuple[bytes, ...] = ()
        self.ktag: Optional[bytes] = None

    def add_frozen(self, s: Iterable[bytes]) -> None:
        """Sign the fields ``s`` once more than they occur (those not in
        :attr:`should_not_sign`)."""
        self.frozen_sign.update(x.lower() for x in s if x.lower() not in self.should_not_sign)

    def add_should_not(self, s: Iterable[bytes]) -> None:
        """Refuse to sign the fields ``s`` (those not in :attr:`frozen_sign`)."""
        self.should_not_sign.update(x.lower() for x in s if x.lower() not in self.frozen_sign)

    def default_sign_headers(self) -> List[bytes]:
        """The names of the message's fields in :attr:`should_sign` or
        :attr:`frozen_sign`, top to bottom as written, then those in
        :attr:`frozen_sign` once more."""
        wanted = self.should_sign | self.frozen_sign
        names = [x for x, _ in self.headers if x.lower() in wanted]
        return names + [x for x in names if x.lower() in self.frozen_sign]

    def all_sign_headers(self) -> List[bytes]:
        """The names of the message's fields not in :attr:`should_not_sign`."""
        return [x for x, _ in self.headers if x.lower() not in self.should_not_sign]

    def present(self) -> bool:
        """Whether the message has a DKIM-Signature field."""
        return any(x.lower() == b"dkim-signature" for x, _ in self.headers)

    # -- signing --------------------------------------------------------------------

    def sign(self, selector: Union[bytes, str], domain: Union[bytes, str], privkey: Any,
             signature_algorithm: Optional[bytes] = None, identity: Optional[Union[bytes, str]] = None,
             canonicalize: Sequence[Union[bytes, str]] = (b"relaxed", b"simple"),
             include_headers: Optional[Sequence[Union[bytes, str]]] = None, length: bool = False) -> bytes:
        """Sign the message: the ``DKIM-Signature`` field, ending in
        :attr:`linesep`, to put on top of it.

        ``include_headers`` (default :meth:`default_sign_headers`) names the
        fields to sign; a name listed more often than its field occurs makes
        the signature refuse another instance.  ``length`` adds ``l=``.

        :raises KeyFormatError: an unusable key (see
            :func:`~fastdkim.compat_keys.signing_key`).
        :raises ParameterError: ``rsa-sha1`` (RFC 8301) or another unknown
            algorithm, From not signed, a field of :attr:`should_not_sign`
            named, an identity outside ``domain``, an invalid domain, selector
            or field name.
        :raises InvalidCanonicalizationPolicyError: ``canonicalize`` names
            something other than ``simple`` and ``relaxed``.
        :raises MessageFormatError: fastdkim cannot sign the message as it is
            (a bare CR in its header block).
        """
        alg = self._algorithm(signature_algorithm) if signature_algorithm else self.signature_algorithm
        self.signature_algorithm = alg
        if alg not in (b"rsa-sha256", b"ed25519-sha256"):
            raise ParameterError("%s must not be used for signing (RFC 8301)" % alg.decode())
        key = signing_key(privkey, alg)
        dom = _as_text(domain, "domain")
        ident = _as_text(identity, "identity") if identity is not None else "@" + dom
        if not ident.lower().endswith(dom.lower()):
            raise ParameterError("identity must end with domain")
        canon = self._canonicalization(canonicalize)
        names = [_as_bytes(x, "header field name").lower()
                 for x in (self.default_sign_headers() if include_headers is None else include_headers)]
        if b"from" not in names:
            raise ParameterError("The From header field MUST be signed")
        for x in set(names) & self.should_not_sign:
            raise ParameterError("The %s header field SHOULD NOT be signed" % x.decode("ascii", "replace"))
        present = [x.lower() for x, _ in self.headers]
        order = list(dict.fromkeys(names))
        oversign = [n for n in order if names.count(n) > present.count(n)]
        try:
            field = _signer(key, dom, _as_text(selector, "selector"), alg.decode(), canon,
                            tuple(n.decode("ascii", "replace") for n in order),
                            tuple(n.decode("ascii", "replace") for n in oversign), ident,
                            bool(length)).sign(self._message)
        except _engine.KeyFormatError as exc:
            raise KeyFormatError(str(exc)) from None
        except _engine.MessageFormatError as exc:
            raise MessageFormatError(str(exc)) from None
        except (_engine.SigningError, _engine.OptionError) as exc:
            raise ParameterError(str(exc)) from None
        field = field.replace(b"\r\n", b"\n").replace(b"\n", self.linesep)
        fields = parse_tag_value(_FOLD.sub(b"", field.split(b":", 1)[1]))
        fields[b"h"] = _WSP.sub(b"", fields[b"h"])  # (folded before its colons)
        self.signature_fields = fields
        self.include_headers = tuple(fields[b"h"].split(b":"))
        self.signed_headers = self._covered(self.include_headers, canon.startswith("relaxed"))
        self.domain = _as_bytes(domain, "domain")
        self.selector = _as_bytes(selector, "selector")
        self.logger.debug("signed: %r" % fields)
        return field

    @staticmethod
    def _canonicalization(canonicalize: Sequence[Union[bytes, str]]) -> str:
        parts = [_as_bytes(x, "canonicalization").decode("ascii", "replace") for x in canonicalize]
        if not 1 <= len(parts) <= 2 or not all(p in ("simple", "relaxed") for p in parts):
            raise InvalidCanonicalizationPolicyError("/".join(parts).encode("ascii", "replace"))
        return "/".join(parts + ["simple"] * (2 - len(parts)))

    def _covered(self, names: Sequence[bytes], relaxed: bool) -> List[Tuple[bytes, bytes]]:
        headers = canonicalize_headers([(n, v) for n, v in self.headers], relaxed)
        return select_headers(headers, names)

    # -- verifying ------------------------------------------------------------------

    def verify(self, idx: int = 0, dnsfunc: DnsFunc = get_txt) -> bool:
        """Verify the ``idx``-th ``DKIM-Signature`` (0: the topmost).

        Its key record comes from ``dnsfunc(name, timeout=timeout)``, ``name``
        being ``s=`` and ``d=`` as written (``b"sel._domainkey.example.com."``).

        :returns: ``True`` if the signature verifies; ``False`` if it does not,
            if there is no such signature, or if its key cannot be had (no
            record, an unusable record, a :class:`DnsTimeoutError`).
        :raises MessageFormatError: the signature's tag list cannot be parsed.
        :raises ValidationError: a tag is missing or invalid (including ``h=``
            without From, ``rsa-sha1``, a ``t=`` more than 10 hours ahead, an
            ``x=`` more than 10 hours past), or the body hash does not match.
        :raises KeyFormatError: the RSA key is shorter than ``minkey`` or 1024 bits.
        :raises Exception: whatever ``dnsfunc`` raised, other than
            :class:`DnsTimeoutError` and :class:`KeyFormatError`.
        """
        sigs = [v for x, v in self.headers if x.lower() == b"dkim-signature"]
        if len(sigs) <= idx:
            return False
        try:
            sig = parse_tag_value(sigs[idx])
        except InvalidTagValueList as exc:
            raise MessageFormatError(exc) from None
        self.signature_fields = sig
        self.logger.debug("sig: %r" % sig)
        validate_signature_fields(sig)
        self.domain, self.selector = sig[b"d"], sig[b"s"]
        names = [x.lower() for x in _H_SPLIT.split(sig[b"h"])]
        self.include_headers = tuple(names)
        source = DnsfuncKeySource(dnsfunc, sig[b"s"] + b"._domainkey." + sig[b"d"] + b".", self.timeout)
        # dkimpy's 10 hours of leeway: t= may be that far ahead, x= that far behind.
        results = _engine_verify(self._message, keys=source, max_signatures=idx + 1, clock_skew=2 * CLOCK_SLOP,
                                 now=time.time() - CLOCK_SLOP, bare_lf=True)
        self.keysize, self.ktag = source.keysize, source.ktag
        if source.error is not None:
            raise source.error
        if idx >= len(results):  # the engine saw fewer signatures than the fields show
            raise MessageFormatError("signature %d cannot be read" % idx)
        result = results[idx]
        canon = sig.get(b"c", b"simple/simple").split(b"/")[0]
        self.signed_headers = self._covered(names + ([b"from"] if b"from" in names else []), canon == b"relaxed")
        if result.status == PASS:
            if self.keysize < self.minkey and self.ktag == b"rsa":
                raise KeyFormatError("public key too small: %d" % self.keysize)
            self.logger.debug("DKIM-Signature valid: True (%s)" % result.reason)
            return True
        what = None if result.status == TEMPERROR else _outcome(result.reason)
        if what is None:
            log = self.logger.debug if result.reason.startswith("signature did not") else self.logger.error
            log("DKIM-Signature d=%s s=%s: %s" % (self.domain.decode("utf-8", "replace"),
                                                   sig[b"s"].decode("utf-8", "replace"), result.reason))
            return False
        if what is KeyFormatError:
            raise KeyFormatError("public key too small: %d" % self.keysize)
        raise what(result.reason)


#: dkimpy's base class of DKIM and ARC, for ``isinstance`` checks.
DomainSigner = DKIM
