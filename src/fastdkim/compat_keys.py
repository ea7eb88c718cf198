"""Keys for :mod:`fastdkim.compat`: private keys in the forms dkimpy takes,
``dnsfunc(name, timeout=5)`` callables as key sources, and dkimpy's key
helpers (:func:`get_txt`, :func:`evaluate_pk`, :func:`load_pk_from_dns`).
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Dict, List, Optional, Tuple

from ._cache import BoundedCache
from .compat_errors import DnsTimeoutError, KeyFormatError, ParameterError
from .dns_source import DNSKeySource
from .errors import KeyFormatError as _EngineKeyFormatError
from .errors import KeyLookupError, KeyRecordError, TemporaryLookupError
from ._text import to_a_label_domain
from .keys import PrivateKey, PublicKey, key_algorithm, load_private_key, parse_key_record

__all__ = ["DnsFunc", "DnsfuncKeySource", "evaluate_pk", "get_txt", "load_pk_from_dns", "signing_key"]

#: Private keys loaded, by the bytes they were given as.
_KEYS: BoundedCache[bytes, PrivateKey] = BoundedCache(16)

#: ``dnsfunc(name, timeout=5)``: the TXT record at ``name`` (bytes, with a
#: final dot) as bytes or str, or ``None`` for no record.
DnsFunc = Callable[..., Any]


def signing_key(privkey: Any, algorithm: bytes) -> PrivateKey:
    """Load ``privkey`` for signing with ``algorithm`` (``rsa-sha256`` or
    ``ed25519-sha256``): PEM or DER bytes (PKCS#1, PKCS#8, OpenSSH), the
    base64 text of a raw 32-byte Ed25519 seed (dkimpy's Ed25519 form), either
    as ``str`` too (never taken for a file name), or a ``cryptography`` key.

    :raises KeyFormatError: the key cannot be parsed, is of another type than
        ``algorithm`` needs, or is an RSA key shorter than 1024 bits (RFC 8301).
    """
    if isinstance(privkey, str):
        privkey = privkey.encode("utf-8")
    if isinstance(privkey, (bytearray, memoryview)):
        privkey = bytes(privkey)
    # Callers pass the key's bytes at every call: each is loaded (and checked,
    # which costs milliseconds for RSA) once.
    key = _KEYS.get(privkey) if isinstance(privkey, bytes) else None
    if key is None:
        try:
            key = load_private_key(privkey)
        except _EngineKeyFormatError as exc:
            raise KeyFormatError(str(exc)) from None
        if isinstance(privkey, bytes):
            _KEYS.set(privkey, key)
    natural = key_algorithm(key).encode("ascii")
    if natural != algorithm:
        raise KeyFormatError("the private key is a %s key, not one for %s"
                             % (natural.split(b"-")[0].decode(), algorithm.decode("ascii", "replace")))
    return key


# -- public keys -------------------------------------------------------------------------

def evaluate_pk(name: Any, s: Any) -> Tuple[PublicKey, int, bytes, bool]:
    """Parse the key record ``s`` found at ``name``: ``(public_key, keysize,
    ktag, seqtlsrpt)``, the key a ``cryptography`` public key, ``keysize`` in
    bits (256 for Ed25519), ``ktag`` ``b'rsa'`` or ``b'ed25519'``,
    ``seqtlsrpt`` always ``False``.  Keys of any size parse (the size is
    checked when verifying).

    :raises KeyFormatError: no record, or a record fastdkim refuses (see
        :func:`fastdkim.keys.parse_key_record`).
    """
    if not s:
        raise KeyFormatError("missing public key: %s" % (name,))
    try:
        record = parse_key_record(s, min_rsa_bits=0)
    except (KeyRecordError, TypeError) as exc:
        raise KeyFormatError("%s: %s" % (name, exc)) from None
    return record.public_key, record.key_bits, record.key_type.encode("ascii"), False


def load_pk_from_dns(name: bytes, dnsfunc: Optional[DnsFunc] = None,
                     timeout: float = 5) -> Tuple[PublicKey, int, bytes, bool]:
    """:func:`evaluate_pk` of what ``dnsfunc`` (default :func:`get_txt`)
    returns for ``name``.

    :raises KeyFormatError: see :func:`evaluate_pk`.
    :raises DnsTimeoutError: the lookup failed for a transient reason.
    """
    return evaluate_pk(name, (dnsfunc or get_txt)(name, timeout=timeout))


_SOURCES: Dict[float, DNSKeySource] = {}
_SOURCES_LOCK = threading.Lock()


def dns_source(timeout: float) -> DNSKeySource:
    """The process-wide DNS key source for lookups of at most ``timeout``
    seconds (one per timeout value, each with its cache).

    :raises ParameterError: ``timeout`` is not a positive number.
    """
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ParameterError("timeout must be a positive number of seconds, not %r" % (timeout,))
    with _SOURCES_LOCK:
        source = _SOURCES.get(timeout)
        if source is None:
            source = _SOURCES[timeout] = DNSKeySource(timeout=float(timeout))
        return source


def _text_name(name: Any) -> Optional[str]:
    if isinstance(name, (bytes, bytearray)):
        try:
            return bytes(name).decode("utf-8")
        except UnicodeDecodeError:
            return None
    return str(name)


def get_txt(name: Any, timeout: float = 5) -> Optional[bytes]:
    """The TXT record at ``name`` (bytes or str, a final dot optional) through
    fastdkim's DNS key source, its character-strings joined; the first one if
    there are several; ``None`` if there is none or ``name`` is not a valid
    DNS name.

    :raises DnsTimeoutError: the lookup failed for a transient reason
        (timeout, SERVFAIL, no nameserver).
    :raises ParameterError: ``timeout`` is not a positive number.
    """
    text = _text_name(name)
    if text is None:
        return None
    try:
        records = dns_source(timeout).lookup(text)
    except TemporaryLookupError as exc:
        raise DnsTimeoutError(str(exc)) from None
    except KeyLookupError:
        return None
    return records[0] if records else None


class DnsfuncKeySource:
    """A fastdkim key source that answers for one key record, asking
    ``dnsfunc`` as dkimpy does: ``dnsfunc(b"sel._domainkey.example.com.",
    timeout=timeout)``, the name built from ``s=`` and ``d=`` as written.
    Other names have no record.

    With :func:`get_txt` as ``dnsfunc``, every TXT record at the name is
    handed to the engine (which then applies its rule for several records).

    After a lookup, :attr:`keysize` and :attr:`ktag` describe the record's
    key (0 and ``None`` if it had none or did not parse), and :attr:`error`
    holds an exception ``dnsfunc`` raised that is to propagate to the caller
    (anything but :class:`DnsTimeoutError` and :class:`KeyFormatError`).
    """

    def __init__(self, dnsfunc: DnsFunc, name: bytes, timeout: float) -> None:
        self.dnsfunc = dnsfunc
        self.name = name
        self.timeout = timeout
        self._wanted = _normal(name)
        self.keysize = 0
        self.ktag: Optional[bytes] = None
        self.error: Optional[BaseException] = None

    def lookup(self, name: str) -> List[bytes]:
        """The records for ``name`` (``[]`` unless it is the wanted one).

        :raises TemporaryLookupError: ``dnsfunc`` raised.
        """
        if _normal(name.encode("utf-8")) != self._wanted:
            return []
        try:
            if self.dnsfunc is get_txt:
                text = _text_name(self.name)
                records = dns_source(self.timeout).lookup(text) if text is not None else []
            else:
                value = self.dnsfunc(self.name, timeout=self.timeout)
                records = [] if not value else [value.encode("utf-8") if isinstance(value, str) else bytes(value)]
        except TemporaryLookupError:
            raise
        except KeyLookupError:
            records = []
        except (DnsTimeoutError, KeyFormatError) as exc:
            raise TemporaryLookupError("%s: %s" % (type(exc).__name__, exc)) from None
        except Exception as exc:
            self.error = exc
            raise TemporaryLookupError("dnsfunc raised %s: %s" % (type(exc).__name__, exc)) from None
        for txt in records[:1]:
            described = _DESCRIBED.get(txt)
            if described is None:
                try:
                    record = parse_key_record(txt, min_rsa_bits=0)
                except (KeyRecordError, TypeError):
                    described = (0, None)
                else:
                    described = (record.key_bits, record.key_type.encode("ascii"))
                _DESCRIBED.set(txt, described)
            self.keysize, self.ktag = described
        return records


#: Key records by their bytes: (bits, key type), or (0, None) if unusable.
_DESCRIBED: BoundedCache[bytes, Tuple[int, Optional[bytes]]] = BoundedCache(256)


def _normal(name: bytes) -> str:
    """A key record name as the engine asks for it (A-labels, lower case)."""
    text = name.decode("utf-8", "replace").rstrip(".")
    try:
        return to_a_label_domain(text)
    except ValueError:
        return text.lower()
