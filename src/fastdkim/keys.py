"""Keys: loading private keys, generating key pairs, and DKIM key records.

Private keys load once into ``cryptography`` objects; the signature math is
OpenSSL's.  Public key records (RFC 6376 section 3.6.1, RFC 8463 section 4)
parse into :class:`KeyRecord`; every defect is a :class:`KeyRecordError`,
which verification reports as ``permerror``.
"""
from __future__ import annotations

import base64
import binascii
import os
import re
import warnings
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Callable, FrozenSet, List, Optional, Sequence, Tuple, Union

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa, x448, x25519

from . import _core
from ._files import atomic_write
from ._txt import txt_bytes
from .errors import KeyFormatError, KeyRecordError, KeyTooWeakError, OptionError
from .tags import TagSyntaxError, parse_tag_list, strip_fws

__all__ = [
    "PrivateKey",
    "PublicKey",
    "KeyRecord",
    "KeyRecordError",
    "load_private_key",
    "key_algorithm",
    "parse_key_record",
    "public_key_record",
    "private_key_dkimpy",
    "generate_private_key",
    "private_key_pem",
    "write_private_key",
    "record_name",
    "txt_strings",
    "zone_file_line",
    "MIN_RSA_BITS",
    "RECOMMENDED_RSA_BITS",
]

PrivateKey = Union[rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey]
PublicKey = Union[rsa.RSAPublicKey, ed25519.Ed25519PublicKey]
KeyInput = Union[bytes, bytearray, str, "os.PathLike[str]", rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey]

#: RFC 8301: signers MUST use at least 1024 bits; verifiers MUST NOT accept less.
MIN_RSA_BITS = 1024
#: RFC 8301: signers SHOULD use at least 2048 bits.
RECOMMENDED_RSA_BITS = 2048
#: The largest RSA modulus OpenSSL computes with (OPENSSL_RSA_MAX_MODULUS_BITS):
#: a key record holding a larger one cannot verify anything.
MAX_RSA_BITS = 16384


#: private key objects of algorithms DKIM does not sign with
_OTHER_KEYS = (ec.EllipticCurvePrivateKey, dsa.DSAPrivateKey, ed448.Ed448PrivateKey, x25519.X25519PrivateKey,
               x448.X448PrivateKey)


def load_private_key(key: KeyInput, password: Optional[bytes] = None) -> PrivateKey:
    """Load an RSA or Ed25519 private key.

    ``key`` may be a ``cryptography`` key object, PEM or DER bytes (PKCS#1,
    PKCS#8, OpenSSH), the base64 text of a raw 32-byte Ed25519 seed, or a
    path (``str`` / ``os.PathLike``) to a file holding any of those.

    :raises KeyFormatError: unreadable file, unparseable data, wrong or missing
        password, or a key type other than RSA and Ed25519.
    :raises TypeError: ``key`` is none of those.
    """
    if isinstance(key, (rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey)):
        return key
    if isinstance(key, str) and "-----BEGIN" in key:  # PEM text rather than a file name
        return _load_key_bytes(key.encode("ascii", "replace"), password)
    if isinstance(key, (str, os.PathLike)):
        path = os.fspath(key)
        shown = repr(path) if len(path) <= 200 and "\n" not in path else "given as a %d-character string" % len(path)
        try:
            with open(path, "rb") as fh:
                data = fh.read(1 << 20)
        except (OSError, ValueError) as exc:  # ValueError: a NUL in the name
            reason = getattr(exc, "strerror", None) or exc
            raise KeyFormatError("cannot read private key file %s: %s" % (shown, reason)) from None
        try:
            return _load_key_bytes(data, password)
        except KeyFormatError as exc:
            raise type(exc)("%s: %s" % (path if shown.startswith("'") else "private key file", exc)) from None
    if isinstance(key, (bytes, bytearray, memoryview)):
        return _load_key_bytes(bytes(key), password)
    if isinstance(key, _OTHER_KEYS):  # another algorithm's key object
        raise KeyFormatError("unsupported private key type: %s" % type(key).__name__)
    raise TypeError("the private key must be a key object, PEM or DER bytes, or a path, not %s"
                    % type(key).__name__)


def _load_key_bytes(data: bytes, password: Optional[bytes]) -> PrivateKey:
    stripped = data.strip()
    if not stripped:
        raise KeyFormatError("private key data is empty")
    loaders: List[Callable[..., Any]] = []
    if b"-----BEGIN OPENSSH PRIVATE KEY-----" in stripped:
        loaders.append(serialization.load_ssh_private_key)
    elif b"-----BEGIN" in stripped:
        loaders.append(serialization.load_pem_private_key)
    else:
        seed = _raw_ed25519_seed(data) if len(data) == 32 else _raw_ed25519_seed(stripped)
        if seed is not None:
            return ed25519.Ed25519PrivateKey.from_private_bytes(seed)
        # Binary DER is taken as given: its last octets may have the values of whitespace.
        stripped = data if data[:1] == b"\x30" else stripped
        loaders.append(serialization.load_der_private_key)
    last: Exception = KeyFormatError("unrecognised private key format")
    for loader in loaders:
        try:
            key = loader(stripped, password)
        except TypeError as exc:  # password missing, or given for an unencrypted key
            if password is not None:
                raise _UnexpectedPassword(_password_message(exc, password)) from None
            raise KeyFormatError(_password_message(exc, password)) from None
        except (ValueError, UnsupportedAlgorithm) as exc:
            msg = str(exc).lower()
            if "bcrypt" in msg:
                raise KeyFormatError("encrypted OpenSSH keys need the bcrypt package (pip install bcrypt); or "
                                     "convert the key with: ssh-keygen -p -m PEM -f KEYFILE") from None
            if password is not None and _is_encrypted(stripped):
                # (decided from the key's own structure: cryptography's words vary, and a
                # wrong password sometimes decrypts to garbage that fails later)
                raise KeyFormatError("wrong password for the private key (or a damaged key file)") from None
            last = exc
            continue
        if not isinstance(key, (rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey)):
            raise KeyFormatError("unsupported key type %s: DKIM uses RSA or Ed25519" % type(key).__name__)
        return key
    raise KeyFormatError("cannot parse private key: %s" % (last,))


def _is_encrypted(data: bytes) -> bool:
    """Whether the private key ``data`` (PEM, OpenSSH or DER) is stored encrypted."""
    if b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in data or b"Proc-Type: 4,ENCRYPTED" in data:
        return True
    if b"-----BEGIN OPENSSH PRIVATE KEY-----" in data:
        body = data.split(b"-----BEGIN OPENSSH PRIVATE KEY-----", 1)[1].split(b"-----END", 1)[0]
        try:
            raw = base64.b64decode(b"".join(body.split()))
        except (binascii.Error, ValueError):
            return False
        magic = b"openssh-key-v1\0"
        if not raw.startswith(magic) or len(raw) < len(magic) + 4:
            return False
        n = int.from_bytes(raw[len(magic):len(magic) + 4], "big")
        return raw[len(magic) + 4:len(magic) + 4 + n] != b"none"
    if data.startswith(b"\x30") and len(data) > 4:  # DER: EncryptedPrivateKeyInfo starts SEQUENCE { SEQUENCE
        i = 2 + (data[1] & 0x7F if data[1] & 0x80 else 0)
        return i < len(data) and data[i] == 0x30
    return False


class _UnexpectedPassword(KeyFormatError):
    """A password was given for a key that is not encrypted."""


def load_private_key_with(key: KeyInput, password: Optional[bytes]) -> PrivateKey:
    """Like :func:`load_private_key`, with ``password`` used only if the key
    is encrypted (one password given for several keys, some not encrypted)."""
    try:
        return load_private_key(key, password)
    except _UnexpectedPassword:
        return load_private_key(key)


def _password_message(exc: Exception, password: Optional[bytes]) -> str:
    if password is None:
        return "the private key is encrypted: a password is required"
    return "a password was given but the private key is not encrypted"


def _raw_ed25519_seed(data: bytes) -> Optional[bytes]:
    """The 32-byte seed if ``data`` is the base64 of exactly 32 bytes (or 32 raw bytes)."""
    if len(data) == 32 and not data.isascii():
        return data
    try:
        raw = base64.b64decode(strip_fws(data), validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == 32 else None


def key_algorithm(key: Union[PrivateKey, PublicKey]) -> str:
    """The DKIM ``a=`` value that goes with a key: ``rsa-sha256`` or ``ed25519-sha256``."""
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return "rsa-sha256"
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)):
        return "ed25519-sha256"
    raise KeyFormatError("unsupported key type %s" % type(key).__name__)


def check_signing_key(key: PrivateKey, min_bits: int = MIN_RSA_BITS) -> None:
    """Refuse RSA keys below ``min_bits`` (never below 1024) and warn below 2048.

    :raises KeyTooWeakError: the key is too short to sign with.
    """
    if isinstance(key, rsa.RSAPrivateKey):
        bits = key.key_size
        if bits < max(min_bits, MIN_RSA_BITS):
            raise KeyTooWeakError(
                "RSA key of %d bits is too short to sign with (minimum %d, RFC 8301)" % (bits, max(min_bits, MIN_RSA_BITS))
            )
        if bits < RECOMMENDED_RSA_BITS:
            warnings.warn(
                "RSA key of %d bits: RFC 8301 recommends at least %d" % (bits, RECOMMENDED_RSA_BITS),
                UserWarning,
                stacklevel=3,
            )


def generate_private_key(algorithm: str = "rsa", bits: int = RECOMMENDED_RSA_BITS) -> PrivateKey:
    """Generate a signing key: ``rsa`` (``bits`` of 2048, 3072 or 4096) or ``ed25519``.

    :raises KeyFormatError: unknown algorithm or unsupported size.
    """
    alg = algorithm.lower()
    if alg in ("rsa", "rsa-sha256"):
        if bits < RECOMMENDED_RSA_BITS or bits > 8192:
            raise KeyFormatError("RSA key size must be between %d and 8192 bits, got %d" % (RECOMMENDED_RSA_BITS, bits))
        return rsa.generate_private_key(public_exponent=65537, key_size=bits)
    if alg in ("ed25519", "ed25519-sha256"):
        return ed25519.Ed25519PrivateKey.generate()
    raise KeyFormatError("unknown key algorithm %r: use 'rsa' or 'ed25519'" % algorithm)


def _public_p(key: Union[PrivateKey, PublicKey]) -> Tuple[str, bytes]:
    pub = key.public_key() if isinstance(key, (rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey)) else key
    if isinstance(pub, rsa.RSAPublicKey):
        return "rsa", pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if isinstance(pub, ed25519.Ed25519PublicKey):
        return "ed25519", pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    raise KeyFormatError("unsupported key type %s" % type(pub).__name__)


def public_key_record(key: Union[PrivateKey, PublicKey], *, testing: bool = False, strict: bool = False,
                      hashes: Sequence[str] = (), service_types: Sequence[str] = ()) -> str:
    """The TXT record value to publish at ``<selector>._domainkey.<domain>``.

    RSA keys are published as SubjectPublicKeyInfo, Ed25519 keys as the raw
    32-byte key (RFC 8463 section 4.2).  ``testing`` adds ``t=y``; ``strict``
    adds ``t=s`` (i= must be in d= itself, not a subdomain); ``hashes`` adds
    ``h=`` (e.g. ``["sha256"]``); ``service_types`` adds ``s=`` (e.g.
    ``["email"]``).

    :raises KeyFormatError: an unsupported key type, or a hash or service
        type that is not a tag-value token.
    """
    ktype, p = _public_p(key)
    parts = ["v=DKIM1"]
    for tag, values in (("h", hashes), ("s", service_types)):
        if values:
            if not all(isinstance(v, str) and re.fullmatch(r"[A-Za-z0-9*]+", v) for v in values):
                raise KeyFormatError("%s= values must be tokens such as sha256 or email, not %r" % (tag, values))
            parts.append("%s=%s" % (tag, ":".join(values)))
    parts.insert(len(parts) - (1 if service_types else 0), "k=%s" % ktype)
    flags = [f for f, on in (("y", testing), ("s", strict)) if on]
    if flags:
        parts.append("t=%s" % ":".join(flags))
    parts.append("p=%s" % base64.b64encode(p).decode("ascii"))
    return "; ".join(parts)


def private_key_pem(key: PrivateKey) -> bytes:
    """The private key as unencrypted PKCS#8 PEM."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def private_key_dkimpy(key: PrivateKey) -> bytes:
    """The private key as dkimpy's ``dkimsign`` reads it: an Ed25519 key as
    the base64 of its raw 32-byte seed (and a line break), an RSA key as
    PKCS#1 PEM.

    :raises KeyFormatError: an unsupported key type.
    """
    if isinstance(key, ed25519.Ed25519PrivateKey):
        raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                serialization.NoEncryption())
        return base64.b64encode(raw) + b"\n"
    if isinstance(key, rsa.RSAPrivateKey):
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                 serialization.NoEncryption())
    raise KeyFormatError("unsupported key type %s" % type(key).__name__)


def write_private_key(path: Union[str, "os.PathLike[str]"], key: PrivateKey, *, force: bool = False,
                      form: str = "pem") -> None:
    """Write ``key`` readable by its owner only (mode 0600): as PKCS#8 PEM
    (``form="pem"``), or as dkimpy reads it (``form="dkimpy"``, see
    :func:`private_key_dkimpy`).

    An existing file is never replaced unless ``force`` is true, and then
    atomically (a temporary file renamed over it).

    :raises FileExistsError: ``path`` exists and ``force`` is false.
    :raises OSError: the file cannot be written.
    :raises KeyFormatError: an unknown ``form``.
    """
    if form not in ("pem", "dkimpy"):
        raise KeyFormatError("unknown private key form %r: use 'pem' or 'dkimpy'" % (form,))
    data = private_key_pem(key) if form == "pem" else private_key_dkimpy(key)
    def write(out: BinaryIO) -> None:
        out.write(data)

    atomic_write(os.fspath(path), write, overwrite=force, mode=0o600)


def record_name(selector: str, domain: str) -> str:
    """``<selector>._domainkey.<domain>``: where the key record is published."""
    return "%s._domainkey.%s" % (selector.strip(".").lower(), domain.strip(".").lower())


def txt_strings(value: str, limit: int = 255) -> List[str]:
    """Split a record value into TXT character-strings of at most ``limit`` bytes.

    DNS character-strings hold at most 255 octets; verifiers join them with
    nothing in between (RFC 6376 section 3.6.2.2).

    :raises TypeError: ``value`` is not a str.
    :raises OptionError: ``value`` is not ASCII (a key record is), or
        ``limit`` is outside 1..255.
    """
    if not isinstance(value, str):
        raise TypeError("txt_strings: value must be a str, not %s" % type(value).__name__)
    try:
        data = value.encode("ascii")
    except UnicodeEncodeError as exc:
        raise OptionError("a key record is ASCII; this value has %r at offset %d"
                          % (value[exc.start], exc.start)) from None
    if limit < 1 or limit > 255:
        raise OptionError("limit must be 1..255")
    return [data[i:i + limit].decode("ascii") for i in range(0, len(data), limit)] or [""]


def _zone_quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def zone_file_line(selector: str, domain: str, value: str, ttl: int = 3600) -> str:
    """The record as a zone-file line, e.g. for BIND, NSD or Knot.

    ``<selector>._domainkey.<domain>. <ttl> IN TXT ( "..." "..." )`` with the
    value split into character-strings of at most 255 bytes and quotes and
    backslashes escaped.
    """
    parts = txt_strings(value)
    body = " ".join(_zone_quote(p) for p in parts)
    if len(parts) > 1:
        body = "( " + " ".join(_zone_quote(p) for p in parts) + " )"
    return "%s. %d IN TXT %s" % (record_name(selector, domain), ttl, body)


@dataclass(frozen=True)
class KeyRecord:
    """A parsed DKIM public key record."""

    key_type: str  # "rsa" or "ed25519"
    public_key: PublicKey
    hashes: Optional[FrozenSet[str]] = None  # h=: acceptable hash algorithms; None = all
    services: Optional[FrozenSet[str]] = None  # s=: service types; None = "*"
    flags: FrozenSet[str] = field(default_factory=frozenset)  # t=
    notes: str = ""
    key_bits: int = 0  # RSA modulus size; 256 for Ed25519

    @property
    def testing(self) -> bool:
        """``t=y``: the domain is testing DKIM."""
        return "y" in self.flags

    @property
    def strict(self) -> bool:
        """``t=s``: the i= domain must equal d= exactly."""
        return "s" in self.flags

    def matches(self, private_key: PrivateKey) -> bool:
        """True if ``private_key`` is the private half of this record's key."""
        try:
            return _public_p(private_key) == _public_p(self.public_key)
        except KeyFormatError:
            return False


def _colon_list(value: bytes) -> FrozenSet[str]:
    # Whitespace may surround the items, not split them: "sha 256" stays
    # itself (and matches nothing).  The values the RFC names ("sha256",
    # "email", "y", "s") are ABNF literals, which match in any case (RFC 5234
    # section 2.3): the items are kept in lower case.
    items = [v.strip(b" \t\r\n").decode("ascii", "replace").lower() for v in value.split(b":")]
    return frozenset(i for i in items if i)


#: A TXT record that says it is a DKIM key record: ``v=DKIM1`` first (with
#: whitespace allowed around the tag, section 3.2), then ``;`` or its end.
_DKIM1 = re.compile(rb"[ \t\r\n]*v[ \t\r\n]*=[ \t\r\n]*DKIM1[ \t\r\n]*(?:;|$)")


def counts_as_key_record(txt: bytes, parsed: "Union[KeyRecord, KeyRecordError]") -> bool:
    """Whether the TXT record ``txt`` (``parsed`` by :func:`parse_key_record`
    into a record or its error) is a DKIM key record among the TXT records
    at a name: one that parses, or a broken one that says ``v=DKIM1``, but
    not one RFC 6376 section 3.6.1 has verifiers ignore or discard."""
    if isinstance(parsed, KeyRecord):
        return True
    return _DKIM1.match(txt) is not None and not parsed.ignored


def _ignored(reason: str) -> KeyRecordError:
    """The error for a record that RFC 6376 section 3.6.1 has verifiers
    ignore (``ignored`` set): beside another TXT record, it does not count."""
    err = KeyRecordError(reason)
    err.ignored = True
    return err


def parse_key_record(record: Union[bytes, str], *, min_rsa_bits: int = MIN_RSA_BITS) -> KeyRecord:
    """Parse a key record (RFC 6376 section 3.6.1, RFC 8463).

    :raises KeyRecordError: syntax error, ``v=`` not ``DKIM1`` or not first,
        unknown ``k=``, missing or revoked (empty) ``p=``, undecodable key,
        service types without ``email``, an RSA key under ``min_rsa_bits``, or
        text that cannot be encoded (see :func:`~fastdkim._txt.txt_bytes`);
        its ``ignored`` is true for a record verifiers ignore (another
        ``v=``, service types without ``email``).
    :raises TypeError: *record* is neither ``str`` nor bytes-like.
    """
    try:
        data = txt_bytes(record)
    except UnicodeError:
        raise KeyRecordError("key record is not valid text") from None
    try:
        tags = parse_tag_list(data)
    except TagSyntaxError as exc:
        raise KeyRecordError("key record syntax error: %s" % exc) from None
    if "v" in tags:
        if next(iter(tags)) != "v":
            raise KeyRecordError("key record v= tag is not first")
        if tags["v"] != b"DKIM1":  # "MUST be discarded"
            raise _ignored("key record version %r is not DKIM1" % tags["v"].decode("ascii", "replace"))
    services = _colon_list(tags["s"]) if "s" in tags else None
    if services is not None and not ({"*", "email"} & services):  # "MUST ignore this record"
        raise _ignored("key record s=%s does not allow email" % ":".join(sorted(services)))
    ktype = tags["k"].decode("ascii", "replace").lower() if "k" in tags else "rsa"
    if ktype not in ("rsa", "ed25519"):
        raise KeyRecordError("unknown key type k=%s" % ktype)
    if "p" not in tags:
        raise KeyRecordError("key record has no p= tag")
    p64 = strip_fws(tags["p"])
    if not p64:
        raise KeyRecordError("key revoked (empty p=)")
    try:
        p = _core.core.b64decode(p64)
    except ValueError:
        raise KeyRecordError("key record p= is not valid base64") from None
    pub: PublicKey
    if ktype == "rsa":
        try:
            loaded = serialization.load_der_public_key(p)
        except (ValueError, UnsupportedAlgorithm):
            if "k" not in tags and len(p) == 32:  # (the size of an Ed25519 key)
                raise KeyRecordError("key record p= is not an RSA public key (a record without k= is "
                                     "k=rsa; an Ed25519 key needs k=ed25519)") from None
            raise KeyRecordError("key record p= is not an RSA public key") from None
        if not isinstance(loaded, rsa.RSAPublicKey):
            raise KeyRecordError("key record k=rsa but p= holds a %s key" % type(loaded).__name__)
        if loaded.key_size < min_rsa_bits:
            raise KeyRecordError("RSA key of %d bits is too short (minimum %d, RFC 8301)" % (loaded.key_size, min_rsa_bits))
        if loaded.key_size > MAX_RSA_BITS:
            raise KeyRecordError("RSA key of %d bits is larger than verifiers can use (at most %d; RFC 8301 asks "
                                 "for 1024 to 4096)" % (loaded.key_size, MAX_RSA_BITS))
        numbers = loaded.public_numbers()
        e = numbers.e
        if e < 3 or e >= numbers.n or not e & 1:
            raise KeyRecordError("RSA key with an unusable public exponent (%s)" % (
                "1" if e == 1 else "even" if not e & 1 else "not below the modulus"))
        if loaded.key_size > 3072 and e.bit_length() > 64:
            raise KeyRecordError("RSA key of %d bits with a public exponent of %d bits: verifiers cannot use it "
                                 "(at most 64 bits above 3072-bit keys)" % (loaded.key_size, e.bit_length()))
        pub = loaded
    else:
        if len(p) != 32:
            raise KeyRecordError("ed25519 key must be 32 raw bytes (RFC 8463), got %d bytes" % len(p))
        pub = ed25519.Ed25519PublicKey.from_public_bytes(p)
    hashes = _colon_list(tags["h"]) if "h" in tags else None
    if hashes is not None and not hashes:  # (the grammar asks for one at least)
        raise KeyRecordError("key record h= names no hash algorithm")
    flags = _colon_list(tags["t"]) if "t" in tags else frozenset()
    notes = tags["n"].decode("ascii", "replace") if "n" in tags else ""
    bits = pub.key_size if isinstance(pub, rsa.RSAPublicKey) else 256
    return KeyRecord(ktype, pub, hashes, services, flags, notes, bits)
