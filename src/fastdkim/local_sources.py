"""Key sources that answer without asking DNS: a mapping of name to record,
a function, the TXT records of a zone file."""
from __future__ import annotations

import collections.abc
from typing import Any, Callable, Dict, List, Sequence, Union

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
        return list(self._records.get(normalize_key(name), ()))

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


def zone_file_key_source(path: str) -> MappingKeySource:
    """A key source serving the TXT records of a zone file (for offline checks).

    Names must be absolute or the file must set ``$ORIGIN``; every TXT record
    is served, its character-strings joined.

    :raises KeyLookupError: the file cannot be read or parsed.
    """
    import dns.name
    import dns.rdatatype
    import dns.zone

    try:
        with open(path, "r", encoding="utf-8") as fh:
            text = fh.read()
        zone = dns.zone.from_text(text, origin=dns.name.root, relativize=False, check_origin=False)
    except OSError as exc:
        raise KeyLookupError("cannot read zone file %s: %s" % (path, exc.strerror or exc)) from None
    except Exception as exc:  # dnspython's syntax errors have several types
        raise KeyLookupError("cannot parse zone file %s: %s" % (path, exc)) from None
    records: Dict[str, List[bytes]] = {}
    for name, _ttl, rdata in zone.iterate_rdatas(dns.rdatatype.TXT):
        key = name.to_text(omit_final_dot=True).lower()
        records.setdefault(key, []).append(join_strings(rdata.strings))  # type: ignore[attr-defined]
    return MappingKeySource(records)
