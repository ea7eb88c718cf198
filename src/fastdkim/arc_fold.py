"""Writing the ``ARC-Message-Signature`` and ``ARC-Seal`` fields: tags in the
order given, separated by ``"; "``, folded into lines of at most ``width``
columns (or each field on one line).
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

from . import _core
from ._fold import split_value

__all__ = ["fold_fields", "layout"]


def layout(name: str, tags: Sequence[Tuple[str, str]], width: Optional[int]) -> bytes:
    """The field ``name: k=v; k=v; ...`` with its CRLF, folded between tags
    (and inside long ``h=`` lists at their colons, long base64 values
    anywhere) so that no line passes ``width`` columns; ``width=None``
    writes one line.  Raises nothing."""
    out: List[str] = [name + ":"]
    col = len(out[0])
    last = len(tags) - 1
    for i, (k, v) in enumerate(tags):
        text = "%s=%s%s" % (k, v, "" if i == last else ";")
        if width is None or col + 1 + len(text) <= width:
            out.append(" " + text)
            col += 1 + len(text)
            continue
        if k in ("b", "bh") and len(text) + 1 > width:  # base64: cut anywhere, filling lines
            out.append("\r\n ")
            col = 1
            while col + len(text) > width:
                cut = width - col
                out.append(text[:cut] + "\r\n ")
                text = text[cut:]
                col = 1
            out.append(text)
            col += len(text)
            continue
        out.append("\r\n ")
        col = 1
        pieces = split_value(k, v)
        if i == last:
            pieces[-1] = pieces[-1][:-1]  # split_value ends the tag with ";"
        for j, piece in enumerate(pieces):
            if j and col + len(piece) > width:
                out.append("\r\n  ")
                col = 2
            out.append(piece)
            col += len(piece)
    out.append("\r\n")
    return "".join(out).encode("ascii")


def fold_fields(name: str, tags: Sequence[Tuple[str, str]], width: Optional[int], b_len: int) -> Tuple[bytes, int]:
    """The field with its ``b=`` value deleted (what the signature covers:
    RFC 6376 section 3.7) laid out as the signed field will be, its ``b=``
    value being ``b_len`` characters long; and the index of the ``b`` tag.

    ``tags`` holds ``("b", "")`` where the signature goes.  Raises nothing.
    """
    index = [k for k, _ in tags].index("b")
    dummy = list(tags)
    dummy[index] = ("b", "A" * b_len)
    return _core.core.parse_signature(layout(name, dummy, width))[1], index
