"""Tag-list parsing (RFC 6376 section 3.2) for DKIM-Signature fields and key records.

A tag-list is ``name=value`` pairs separated by ``;`` with folding whitespace
allowed around names, ``=`` and values.  Tag names are case-sensitive; a
duplicated name makes the whole list invalid; a trailing ``;`` is allowed.
Values are bytes with surrounding whitespace removed; callers
interpret them (and strip internal whitespace where the tag allows it, such as
base64 values).
"""
from __future__ import annotations

import re
from typing import Dict, Tuple

__all__ = ["TagSyntaxError", "parse_tag_list", "tag_spans", "strip_fws", "FWS"]

FWS = b" \t\r\n"
_TAG_NAME = re.compile(rb"[A-Za-z][A-Za-z0-9_]*\Z")


class TagSyntaxError(ValueError):
    """The tag-list does not follow RFC 6376 section 3.2."""


def strip_fws(value: bytes) -> bytes:
    """Remove every whitespace octet (for base64 values, which may be folded)."""
    return value.translate(None, FWS)


# Tag names seen before, already checked: signatures repeat the same dozen.
_KNOWN_NAMES: Dict[bytes, str] = {}


def _tag_name(raw: bytes) -> str:
    name = _KNOWN_NAMES.get(raw)
    if name is None:
        if not _TAG_NAME.match(raw):
            raise TagSyntaxError("invalid tag name %r" % _short(raw))
        name = raw.decode("ascii")
        if len(_KNOWN_NAMES) < 512:
            _KNOWN_NAMES[raw] = name
    return name


def parse_tag_list(data: bytes, *, max_tags: int = 64) -> Dict[str, bytes]:
    """Parse a tag-list into ``{name: value}``, values without surrounding whitespace.

    An empty spec (two ``;`` in a row, or a trailing ``;``) is skipped.

    :raises TagSyntaxError: a spec without ``=``, an invalid tag name, a
        duplicate tag, an empty list, or more than ``max_tags`` tags.
    """
    tags: Dict[str, bytes] = {}
    for spec in data.split(b";"):
        eq = spec.find(b"=")
        if eq < 0:
            if spec.strip(FWS):
                raise TagSyntaxError("tag without '=': %r" % _short(spec.strip(FWS)))
        else:
            name = _tag_name(spec[:eq].strip(FWS))
            if name in tags:
                raise TagSyntaxError("duplicate tag %s=" % name)
            if len(tags) >= max_tags:
                raise TagSyntaxError("more than %d tags" % max_tags)
            tags[name] = spec[eq + 1:].strip(FWS)
    if not tags:
        raise TagSyntaxError("empty tag-list")
    return tags


def tag_spans(data: bytes) -> Dict[str, Tuple[int, int]]:
    """Where each tag's value sits in ``data`` (a tag-list that parses).

    The span runs from just after ``=`` up to the ``;`` (or the end): the
    value with all its surrounding whitespace, which is what section 3.7
    deletes for ``b=``.
    """
    spans: Dict[str, Tuple[int, int]] = {}
    pos = 0
    for spec in data.split(b";"):
        end = pos + len(spec)
        eq = spec.find(b"=")
        if eq >= 0:
            spans.setdefault(spec[:eq].strip(FWS).decode("ascii", "replace"), (pos + eq + 1, end))
        pos = end + 1
    return spans


def _short(b: bytes, limit: int = 40) -> str:
    s = b.decode("ascii", "backslashreplace")
    return s if len(s) <= limit else s[:limit] + "..."
