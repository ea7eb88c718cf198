"""Key sources that answer without asking DNS: a mapping of name to record,
a function, the TXT records of a zone file."""
from __future__ import annotations

import collections.abc
import re
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from ._dnsname import normalize_key
from ._txt import join_strings, txt_bytes
from .errors import KeyLookupError, OptionError, TemporaryLookupError

__all__ = ["CallableKeySource", "MappingKeySource", "RecordValue", "zone_file_key_source"]

#: What a mapping value or a callback may return for one name.
RecordValue = Union[None, str, bytes, Sequence[Union[str, bytes]]]


def _records(value: Any) -> List[bytes]:
    """Convert a mapping value or callback result to a list of records, each
    by :func:`~fastdkim._txt.txt_bytes`.

    :raises TypeError: the value is of an unsupported type.
    :raises UnicodeEncodeError: a ``str`` cannot be encoded as UTF-8.
    """
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [txt_bytes(item) for item in value]
    return [txt_bytes(value)]


class MappingKeySource:
    """Key records from a mapping of name to value.

    Names are compared case-insensitively, with or without a trailing dot.  A
    value is a ``str`` or ``bytes`` (one TXT record), a list or tuple of them
    (several TXT records) or ``None`` (no record).  The mapping is copied when
    the source is created.

    :raises ValueError: a name in the mapping is not a valid DNS name, or two
        names differ only in case or a trailing dot.
    :raises TypeError: a name or value is of an unsupported type.
    """

    def __init__(self, mapping: "collections.abc.Mapping[Any, Any]") -> None:
        records: Dict[str, Sequence[bytes]] = {}
        for name, value in mapping.items():
            try:
                key = normalize_key(name)
            except KeyLookupError as exc:
                raise OptionError("key mapping: %s" % exc) from None
            if key in records:
                raise OptionError("key mapping: %r appears twice (names are compared case-insensitively)" % key)
            try:
                records[key] = tuple(_records(value))
            except UnicodeError as exc:
                raise OptionError("key mapping: the value for %r cannot be encoded: %s" % (name, exc)) from None
            except TypeError as exc:
                raise TypeError("key mapping: the value for %r: %s" % (name, exc)) from None
        self._records: Dict[str, Sequence[bytes]] = records

    def lookup(self, name: str) -> list[bytes]:
        """Return the records stored for *name* (``[]`` if none).

        :raises KeyLookupError: *name* is not a valid DNS name.
        """
        # a name already in normal form (as verifiers ask) is found as it is:
        # normalizing is idempotent
        found = self._records.get(name) if type(name) is str else None
        return list(found if found is not None else self._records.get(normalize_key(name), ()))

    def __repr__(self) -> str:
        return "MappingKeySource(<%d names>)" % len(self._records)


class CallableKeySource:
    """Key records from a function ``f(name) -> str | bytes | list | None``.

    *f* receives the name lower-cased, without a trailing dot, with any
    non-ASCII label converted to an A-label.  Its result follows the
    :class:`MappingKeySource` value conventions.
    """

    def __init__(self, func: Callable[[str], RecordValue]) -> None:
        if not callable(func):
            raise TypeError("CallableKeySource needs a callable, not %s" % type(func).__name__)
        self.func = func

    def lookup(self, name: str) -> list[bytes]:
        """Call the function and convert its result.

        :raises KeyLookupError: *name* is not a valid DNS name, or the function
            raised :class:`KeyLookupError`.
        :raises TemporaryLookupError: the function raised it, raised any other
            exception, or returned a value of an unsupported type.
        """
        key = normalize_key(name)
        try:
            value = self.func(key)
        except KeyLookupError:
            raise
        except Exception as exc:
            raise callback_failed(key, exc) from exc
        return callback_records(key, value)

    def __repr__(self) -> str:
        return "CallableKeySource(%r)" % (self.func,)


def callback_failed(key: str, exc: Exception) -> TemporaryLookupError:
    """What a key lookup callback raising *exc* (other than a
    :class:`KeyLookupError`, which passes as it is) for *key* raises."""
    return TemporaryLookupError("key lookup callback failed for %s: %s: %s" % (key, type(exc).__name__, exc))


def callback_records(key: str, value: Any) -> List[bytes]:
    """The records of what a key lookup callback returned for *key*, by the
    :class:`MappingKeySource` value conventions.

    :raises TemporaryLookupError: a value of an unsupported type, or text
        that cannot be encoded.
    """
    try:
        return _records(value)
    except (TypeError, UnicodeError) as exc:
        raise TemporaryLookupError("key lookup callback returned an unusable value for %s: %s" % (key, exc)) from exc


#: The comment ``opendkim-genkey`` ends its ``.txt`` record with:
#: ``; ----- DKIM key s1 for example.com``.
_GENKEY_COMMENT = re.compile(r";[ \t]*-----[ \t]*DKIM key[ \t]+(\S+)[ \t]+for[ \t]+(\S+)[^\n]*(?:\n|$)")
_ORIGIN_DIRECTIVE = re.compile(r"^\$ORIGIN\b", re.IGNORECASE | re.MULTILINE)


def zone_file_key_source(path: str, origin: Optional[str] = None) -> MappingKeySource:
    """A key source serving the TXT records of a zone file (for offline checks).

    The file is read as a name server reads a master file (RFC 1035 section
    5): ``$ORIGIN``, ``$TTL`` and ``$INCLUDE`` (a relative path is taken from
    the current directory), ``@``, relative owner names, records without TTL
    or class, parentheses and comments; records of other types (an SOA
    anywhere, NS, A...) are read and ignored.  Relative names are taken
    relative to ``$ORIGIN`` where the file sets one, else to ``origin``,
    else to the domain that ``opendkim-genkey`` names in the comment ending
    each of its ``.txt`` records (``; ----- DKIM key s1 for example.com``;
    several such files may be concatenated), else to the root.  Every TXT
    record is served, its character-strings joined.

    :raises KeyLookupError: the file cannot be read or parsed, or ``origin``
        is not a domain name.
    """
    import dns.exception
    import dns.name

    try:
        with open(path, "r", encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyLookupError("cannot read zone file %s: %s" % (path, getattr(exc, "strerror", None) or exc)) from None
    chunks: List[Tuple[str, Optional[str]]] = []
    if origin is None and not _ORIGIN_DIRECTIVE.search(text):
        at = 0
        for m in _GENKEY_COMMENT.finditer(text):
            chunks.append((text[at:m.end()], m.group(2)))
            at = m.end()
        chunks.append((text[at:], None))
    else:
        chunks.append((text, origin))
    records: Dict[str, List[bytes]] = {}
    line = 1
    for chunk, chunk_origin in chunks:
        try:
            base = dns.name.from_text(chunk_origin) if chunk_origin else dns.name.root
        except dns.exception.DNSException as exc:
            raise KeyLookupError("zone file %s: not a domain name for the origin: %r (%s)"
                                 % (path, chunk_origin, exc)) from None
        for name, txt in _txt_records(chunk, path, base, line):
            records.setdefault(name, []).append(txt)
        line += chunk.count("\n")
    return MappingKeySource(records)


class _Records:
    """What :class:`dns.zonefile.Reader` writes into, in place of a zone:
    it keeps the TXT records and checks nothing else (a zone file's SOA,
    NS and glue are read and dropped)."""

    def __init__(self, origin: Any) -> None:
        self.origin = origin
        self.manager = self
        self.txt: List[Tuple[str, bytes]] = []

    def origin_information(self) -> Tuple[Any, bool, Any]:
        return self.origin, False, self.origin

    def check_put_rdataset(self, check: Any) -> None:
        """The zone's consistency checks: none here."""

    def _set_origin(self, origin: Any) -> None:
        """``$INCLUDE`` with an origin: names come absolute already."""

    def add(self, name: Any, ttl: int, rdata: Any) -> None:
        import dns.rdatatype

        if rdata.rdtype == dns.rdatatype.TXT:
            self.txt.append((name.to_text(omit_final_dot=True).lower(), join_strings(rdata.strings)))


def _txt_records(text: str, path: str, origin: Any, first_line: int) -> List[Tuple[str, bytes]]:
    """The TXT records of zone file text (``(absolute name, joined
    strings)``), relative names taken relative to ``origin``.

    :raises KeyLookupError: the text cannot be parsed (the message names
        ``path`` and the line, counted from ``first_line``).
    """
    import dns.exception
    import dns.rdataclass
    import dns.tokenizer
    import dns.zonefile

    out = _Records(origin)
    try:
        tok = dns.tokenizer.Tokenizer(text, path)
        tok.line_number = first_line
        # A default TTL: TTLs do not matter here, and records without one
        # before any $TTL are what opendkim-genkey writes.
        reader = dns.zonefile.Reader(tok, dns.rdataclass.IN, out,  # type: ignore[arg-type]
                                     allow_directives={"$ORIGIN", "$TTL", "$INCLUDE"}, default_ttl=0)
        reader.read()
    except (dns.exception.DNSException, OSError, UnicodeError, ValueError) as exc:
        raise KeyLookupError("cannot parse zone file %s: %s" % (path, exc)) from None
    return out.txt
