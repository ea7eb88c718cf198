"""Tag-list parsing (RFC 6376 section 3.2) for DKIM-Signature fields and key records.

A tag-list is ``name=value`` pairs separated by ``;`` with folding whitespace
allowed around names, ``=`` and values.  Tag names are case-sensitive; a
duplicated name makes the whole list invalid; a trailing ``;`` is allowed.
Values are kept as bytes with surrounding whitespace removed; callers
interpret them (and strip internal whitespace where the tag allows it, such as
base64 values).
"""
from __future__ import annotations

import re
from typing import Dict, NamedTuple, Tuple

__all__ = ["Tag", "TagSyntaxError", "parse_tag_list", "strip_fws", "FWS"]

FWS = b" \t\r\n"
_TAG_NAME = re.compile(rb"[A-Za-z][A-Za-z0-9_]*\Z")
_ANY_FWS = re.compile(rb"[ \t\r\n]+")


class TagSyntaxError(ValueError):
    """The tag-list does not follow RFC 6376 section 3.2."""


class Tag(NamedTuple):
    """One tag: its value (surrounding whitespace removed) and where it sits.

    ``span`` is the slice of the parsed input from just after ``=`` up to the
    ``;`` (or the end): the value with all its surrounding whitespace, which is
    what section 3.7 deletes for ``b=``.
    """

    value: bytes
    span: Tuple[int, int]


def strip_fws(value: bytes) -> bytes:
    """Remove every whitespace octet (for base64 values, which may be folded)."""
    return _ANY_FWS.sub(b"", value)


def parse_tag_list(data: bytes, *, max_tags: int = 64) -> Dict[str, Tag]:
    """Parse a tag-list into ``{name: Tag}``.

    :raises TagSyntaxError: a spec without ``=``, an invalid tag name, a
        duplicate tag, an empty list, or more than ``max_tags`` tags.
    """
    tags: Dict[str, Tag] = {}
    pos = 0
    n = len(data)
    while pos <= n:
        end = data.find(b";", pos)
        if end < 0:
            end = n
        spec = data[pos:end]
        if spec.strip(FWS):
            eq = spec.find(b"=")
            if eq < 0:
                raise TagSyntaxError("tag without '=': %r" % _short(spec.strip(FWS)))
            raw_name = spec[:eq].strip(FWS)
            if not _TAG_NAME.match(raw_name):
                raise TagSyntaxError("invalid tag name %r" % _short(raw_name))
            name = raw_name.decode("ascii")
            if name in tags:
                raise TagSyntaxError("duplicate tag %s=" % name)
            if len(tags) >= max_tags:
                raise TagSyntaxError("more than %d tags" % max_tags)
            tags[name] = Tag(spec[eq + 1:].strip(FWS), (pos + eq + 1, end))
        elif end < n:
            # An empty spec between two ';' is outside the grammar but harmless;
            # only a trailing ';' is allowed outright.  Accept both.
            pass
        pos = end + 1
    if not tags:
        raise TagSyntaxError("empty tag-list")
    return tags


def _short(b: bytes, limit: int = 40) -> str:
    s = b.decode("ascii", "backslashreplace")
    return s if len(s) <= limit else s[:limit] + "..."
