"""The RFC 5322 From domain as DMARC reads it (RFC 7489 section 6.6.1).

DMARC rests on the domain the reader sees in the From field, so the field
is read by the RFC 5322 grammar (section 3.4, with the obsolete forms of
section 4.4 and the group syntax RFC 6854 allows in From), and anything
that grammar does not give one domain for is refused rather than guessed
at.  A lenient reader can be led to a domain the reader of the message does
not see: ``bob@bank.example evil.example`` read as
``bank.exampleevil.example`` (a name an attacker may register),
``alice@evil.example <bob@bank.example>`` read as either address.

What is read: a mailbox list (``name <addr>``, a bare ``addr``, groups
``name: addr, addr;``, empty list elements), with comments, quoted strings
and folding anywhere the grammar allows them, UTF-8 in atoms and quoted
strings (RFC 6532).  An obsolete source route (``<@relay:bob@example.com>``,
whose domain some readers show instead of the address's) is refused.  Encoded words (RFC 2047) are not decoded: in a display name
they are text, and an address never holds one.  Every address must have a
domain; several addresses are accepted when their domains are the same
name (RFC 7489 section 6.6.1 evaluates each domain, which then is one).
"""
from __future__ import annotations

import re
from typing import List, Sequence, Tuple

from ._text import printable, to_a_label_domain
from .errors import FromAddressError

__all__ = ["author_domain", "from_field_domains"]

# token kinds
_ATOM, _QUOTED, _LITERAL, _SPECIAL = "atom", "quoted string", "domain literal", "special"
_Token = Tuple[str, str]

_SPECIALS = "<>@,;:."
_UNFOLD = re.compile(r"\r\n(?=[ \t])")


def _is_ctl(c: str) -> bool:
    return (c < " " and c != "\t") or c == "\x7f"


def _tokens(value: str) -> List[_Token]:
    """The tokens of an unfolded field value, comments and whitespace left out.

    :raises FromAddressError: an unterminated comment, quoted string or
        domain literal, a ``\\`` outside them, an unmatched ``)`` or ``]``,
        a control character.
    """
    out: List[_Token] = []
    i, n = 0, len(value)
    while i < n:
        c = value[i]
        if c in " \t":
            i += 1
        elif c == "(":
            depth = 0
            while True:
                if i >= n:
                    raise FromAddressError("From field has a comment that is never closed")
                c = value[i]
                if c == "\\":
                    i += 2
                    continue
                if _is_ctl(c):
                    raise FromAddressError("From field has a control character in a comment")
                depth += (c == "(") - (c == ")")
                i += 1
                if depth == 0:
                    break
        elif c == '"':
            text: List[str] = []
            i += 1
            while True:
                if i >= n:
                    raise FromAddressError("From field has a quoted string that is never closed")
                c = value[i]
                if c == '"':
                    i += 1
                    break
                if c == "\\":
                    if i + 1 >= n:
                        raise FromAddressError("From field has a quoted string that is never closed")
                    c = value[i + 1]
                    i += 1
                if _is_ctl(c):
                    raise FromAddressError("From field has a control character in a quoted string")
                text.append(c)
                i += 1
            out.append((_QUOTED, "".join(text)))
        elif c == "[":
            end = value.find("]", i)
            if end < 0:
                raise FromAddressError("From field has a domain literal that is never closed")
            out.append((_LITERAL, value[i:end + 1]))
            i = end + 1
        elif c in _SPECIALS:
            out.append((_SPECIAL, c))
            i += 1
        elif c in ")]\\" or _is_ctl(c):
            raise FromAddressError("From field has %s out of place" % printable(repr(c)))
        else:
            start = i
            while i < n and not (value[i] in ' \t()"[]\\' or value[i] in _SPECIALS or _is_ctl(value[i])):
                i += 1
            out.append((_ATOM, value[start:i]))
    return out


class _Reader:
    """The mailbox-list grammar over the tokens; each method reads one piece
    at the cursor or raises :class:`FromAddressError`."""

    def __init__(self, tokens: List[_Token]) -> None:
        self.toks = tokens
        self.pos = 0

    def peek(self) -> _Token:
        return self.toks[self.pos] if self.pos < len(self.toks) else ("end", "")

    def at(self, special: str) -> bool:
        return self.peek() == (_SPECIAL, special)

    def unexpected(self, where: str) -> FromAddressError:
        kind, text = self.peek()
        if kind == "end":
            return FromAddressError("From field ends %s" % where)
        shown = text if kind == _SPECIAL else "%s %s" % (kind, text)
        return FromAddressError("From field has %s %s" % (printable(repr(shown)[:80]), where))

    def domains(self, in_group: bool = False) -> List[str]:
        """A mailbox list (empty elements allowed), up to its end or, in a
        group, up to its ``;``: the domain of each address, as written."""
        found: List[str] = []
        while self.pos < len(self.toks) and not (in_group and self.at(";")):
            if self.at(","):
                self.pos += 1
                continue
            found.extend(self.mailbox_or_group(in_group))
            if self.pos < len(self.toks) and not self.at(",") and not (in_group and self.at(";")):
                raise self.unexpected("after an address (addresses are separated by ',')")
        return found

    def mailbox_or_group(self, in_group: bool) -> List[str]:
        start = self.pos
        while self.peek()[0] in (_ATOM, _QUOTED) or self.at("."):
            self.pos += 1
        words = self.toks[start:self.pos]
        if self.at("<"):
            return [self.angle_addr()]
        if self.at(":") and words and not in_group:  # a group (RFC 6854)
            self.pos += 1
            inner = self.domains(in_group=True)
            if not self.at(";"):
                raise self.unexpected("in a group (expected ';' at its end)")
            self.pos += 1
            return inner
        if self.at("@"):
            self.local_part(words)
            self.pos += 1
            return [self.domain()]
        if words:
            raise FromAddressError("From address %s has no domain"
                                   % printable(repr(" ".join(t for _, t in words))[:80]))
        raise self.unexpected("where an address was expected")

    @staticmethod
    def local_part(words: Sequence[_Token]) -> None:
        if not words or words[0] == (_SPECIAL, ".") or words[-1] == (_SPECIAL, "."):
            raise FromAddressError("From address has no local part before '@'")
        for a, b in zip(words, words[1:]):
            if a[0] != _SPECIAL and b[0] != _SPECIAL:
                raise FromAddressError("From address has a display name without <...> around the address "
                                       "(%s before '@')" % printable(repr(" ".join(t for _, t in words))[:80]))

    def angle_addr(self) -> str:
        self.pos += 1  # "<"
        if self.at("@"):
            # An obsolete route (<@relay:bob@example.com>, RFC 5322 section
            # 4.4): the address is the last one, but readers have shown the
            # route's domain instead; nothing writes it any more.
            raise FromAddressError("From address has an obsolete source route (<@domain:...>)")
        if self.at(">"):
            raise FromAddressError("From field has an empty address <>")
        start = self.pos
        while self.peek()[0] in (_ATOM, _QUOTED) or self.at("."):
            self.pos += 1
        if not self.at("@"):
            raise self.unexpected("in <...> (expected local-part@domain)")
        self.local_part(self.toks[start:self.pos])
        self.pos += 1
        domain = self.domain()
        if not self.at(">"):
            raise self.unexpected("after the domain in <...> (expected '>')")
        self.pos += 1
        return domain

    def domain(self) -> str:
        kind, text = self.peek()
        if kind == _LITERAL:
            raise FromAddressError("From address has an address literal %s, not a domain name"
                                   % printable(repr(text)[:80]))
        if kind != _ATOM:
            raise self.unexpected("where the domain after '@' was expected")
        labels = [text]
        self.pos += 1
        while self.at(".") and self.pos + 1 < len(self.toks) and self.toks[self.pos + 1][0] == _ATOM:
            labels.append(self.toks[self.pos + 1][1])
            self.pos += 2
        if self.at("."):  # a final dot (an absolute name): the same domain
            self.pos += 1
        return ".".join(labels)


def from_field_domains(value: str) -> List[str]:
    """The domain of every address in a From field's value (unfolded or
    not; without the field name), as A-labels, in order.

    :raises FromAddressError: the value is not a mailbox list by the
        grammar, an address has no domain, or a domain is not a valid
        domain name.
    """
    text = _UNFOLD.sub("", value)
    if text.endswith("\r\n"):
        text = text[:-2]
    if "\r" in text or "\n" in text:
        raise FromAddressError("From field has a line break that does not continue it")
    reader = _Reader(_tokens(text))
    out = []
    for d in reader.domains():
        try:
            out.append(to_a_label_domain(d))
        except ValueError as exc:
            raise FromAddressError("From address domain is invalid: %s" % exc) from None
    return out


def author_domain(fields: Sequence[Tuple[bytes, bytes]]) -> str:
    """The Author Domain (RFC 7489 section 6.6.1) of a message whose header
    fields are ``fields`` (as :func:`fastdkim.message.read_message` gives
    them: lower-case name, the raw field), as an A-label.

    :raises FromAddressError: no From field, several From fields, a From
        field that does not parse (see :func:`from_field_domains`), without
        an address, or with addresses in different domains.
    """
    froms = [raw for name, raw in fields if name == b"from"]
    if not froms:
        raise FromAddressError("message has no From field")
    if len(froms) > 1:
        raise FromAddressError("message has %d From fields" % len(froms))
    value = froms[0].split(b":", 1)[1].decode("utf-8", "surrogateescape")
    domains = from_field_domains(value)
    if not domains:
        raise FromAddressError("From field holds no address: %s" % printable(repr(value.strip())[:80]))
    if len(set(domains)) > 1:
        raise FromAddressError("From field holds %d addresses in different domains (%s)"
                               % (len(domains), ", ".join(sorted(set(domains)))[:200]))
    return domains[0]


#: The most Author Domains one message is checked for (RFC 7489 section
#: 6.6.1's multi-valued From: each is a DMARC check, and its DNS lookups).
MAX_AUTHOR_DOMAINS = 10


def every_author_domain(fields: Sequence[Tuple[bytes, bytes]]) -> List[str]:
    """Every domain the From fields of a message name (as
    :func:`author_domain` reads them; each once, in order), for a From field
    with addresses in several domains or several From fields, which RFC 7489
    section 6.6.1 checks one domain at a time.  From fields that do not
    parse are passed over.

    :raises FromAddressError: no From field names a valid domain, or more
        than :data:`MAX_AUTHOR_DOMAINS` domains are named.
    """
    out: List[str] = []
    for name, raw in fields:
        if name != b"from":
            continue
        try:
            out.extend(from_field_domains(raw.split(b":", 1)[1].decode("utf-8", "surrogateescape")))
        except FromAddressError:
            continue
    domains = list(dict.fromkeys(out))
    if not domains:
        raise FromAddressError("no From field names a valid domain")
    if len(domains) > MAX_AUTHOR_DOMAINS:
        raise FromAddressError("From names %d domains (more than %d are not checked)"
                               % (len(domains), MAX_AUTHOR_DOMAINS))
    return domains
