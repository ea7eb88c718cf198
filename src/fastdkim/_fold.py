"""Folding the tags of a generated ``DKIM-Signature`` field into lines of at
most 78 characters (RFC 5322 section 2.1.1, a SHOULD), long ``h=`` and ``z=``
values at their separators.

The pieces are text without line endings other than the CRLF of each fold;
the signer joins them and encodes them as ASCII.
"""
from __future__ import annotations

from typing import List

__all__ = ["LINE", "fold_tag", "split_value"]

#: Longest line of the generated header field.
LINE = 78


def fold_tag(out: List[str], col: int, name: str, value: str, newline: bool = False) -> int:
    """Append ``name=value;`` to ``out``, the current line being at column
    ``col``; return the new column.

    The tag goes on the current line, after a space, when it fits there and
    ``newline`` is false; otherwise it starts a new line, and a value too long
    for one line (``h=``, ``z=``) continues on further lines, cut at its
    separators.  Raises nothing.
    """
    text = "%s=%s;" % (name, value)
    if not newline and col + 1 + len(text) <= LINE:
        out.append(" " + text)
        return col + 1 + len(text)
    out.append("\r\n ")
    col = 1
    first = True
    for piece in split_value(name, value):
        if not first and col + len(piece) > LINE:
            out.append("\r\n  ")
            col = 2
        out.append(piece)
        col += len(piece)
        first = False
    return col


def split_value(name: str, value: str) -> List[str]:
    """``name=value;`` cut into pieces that may be separated by folding.

    ``h=`` is cut before each ``:``, ``z=`` before each ``|`` (and a copied
    field longer than a line between quoted-printable units); any other tag
    stays whole.  Raises nothing.
    """
    sep = ":" if name == "h" else "|" if name == "z" else None
    text = "%s=" % name
    if sep is None:
        return [text + value + ";"]
    parts = value.split(sep)
    pieces = [text + parts[0]]
    pieces += [sep + p for p in parts[1:]]
    pieces[-1] += ";"
    out: List[str] = []
    for p in pieces:  # a z= copy longer than a line is cut between qp units
        while len(p) > LINE - 2:
            cut = LINE - 2
            eq = p.rfind("=", cut - 2, cut)
            if eq > 0:
                cut = eq
            out.append(p[:cut])
            p = p[cut:]
        out.append(p)
    return out
