"""Reading ``Authentication-Results`` fields (RFC 8601 section 2.2).

::

    ar = parse_authentication_results(
        "Authentication-Results: mx.example.net 1; dkim=pass header.d=example.com")
    ar.authserv_id, ar.version           # ('mx.example.net', 1)
    ar.results[0].method, ar.results[0].result, ar.results[0].get("header.d")
                                         # ('dkim', 'pass', 'example.com')

What is read: the authserv-id (a token or a quoted string) with its optional
version, then either ``none`` or one or more results (``method[/version]=
result``, an optional ``reason=``, ``ptype.property=value`` properties),
comments and folding whitespace wherever the grammar allows them (CFWS).
Method, result, ptype and property names are keywords, compared without
regard to case and given in lower case; values are given as written (a
quoted string without its quotes and escapes).

Where the grammar is stricter than the fields found in mail, the parser
follows the mail: a property value may hold any printable character but
``(``, ``)``, ``;``, ``"`` and ``\\`` (``header.b=ab/cd+ef``, which writers
send unquoted although ``/`` is not a token character), and UTF-8 is accepted
in values, quoted strings and comments (RFC 8601 section 2.2 with RFC 6532).
Anything else out of place (a missing ``;``, ``=`` or ``.``, a ``reason``
after the properties, an unterminated comment or quoted string, a line break
not followed by whitespace, a trailing ``;``, text after ``none``) raises
:class:`~fastdkim.errors.AuthResError`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple, Union

from ._text import printable
from .errors import AuthResError

__all__ = ["AuthResError", "AuthenticationResults", "MethodResult", "Property", "parse_authentication_results"]


@dataclass(frozen=True)
class Property:
    """One ``ptype.property=value`` of a result (``header.d=example.com``)."""

    ptype: str
    name: str
    value: str

    @property
    def key(self) -> str:
        """``ptype.property``, as :meth:`MethodResult.get` takes it."""
        return "%s.%s" % (self.ptype, self.name)


@dataclass(frozen=True)
class MethodResult:
    """One result (``resinfo``): the method, its result and what qualifies it."""

    method: str
    result: str
    version: Optional[int] = None
    reason: Optional[str] = None
    properties: Tuple[Property, ...] = ()
    #: the comments within this result, without their parentheses
    comments: Tuple[str, ...] = ()

    def get(self, key: str) -> Optional[str]:
        """The value of the first property ``key`` (``"header.d"``; any case), or ``None``."""
        k = key.lower()
        for p in self.properties:
            if p.key == k:
                return p.value
        return None

    def as_dict(self) -> Dict[str, Any]:
        """Plain JSON-ready values: ``method``, ``version``, ``result``,
        ``reason``, ``properties`` (a list of ``[ptype.property, value]``)."""
        return {"method": self.method, "version": self.version, "result": self.result, "reason": self.reason,
                "properties": [[p.key, p.value] for p in self.properties]}


@dataclass(frozen=True)
class AuthenticationResults:
    """A parsed ``Authentication-Results`` field.

    ``results`` is empty for the ``none`` form (RFC 8601 section 2.2: the
    server ran no authentication method).
    """

    authserv_id: str
    version: Optional[int] = None
    results: Tuple[MethodResult, ...] = ()
    #: the comments before the first result (or around ``none``)
    comments: Tuple[str, ...] = ()

    def claims(self, authserv_id: str) -> bool:
        """Whether the field was written by ``authserv_id`` (compared without
        regard to case or a final dot)."""
        return self.authserv_id.lower().rstrip(".") == authserv_id.lower().rstrip(".")

    def as_dict(self) -> Dict[str, Any]:
        """Plain JSON-ready values: ``authserv_id``, ``version``, ``results``
        (each :meth:`MethodResult.as_dict`)."""
        return {"authserv_id": self.authserv_id, "version": self.version,
                "results": [r.as_dict() for r in self.results]}


# -- the grammar's pieces -------------------------------------------------------------------

_FIELD_NAME = re.compile(r"[ \t]*authentication-results[ \t]*:", re.IGNORECASE)
_UNFOLD = re.compile(r"\r?\n(?=[ \t])")
_KEYWORD = re.compile(r"[A-Za-z0-9-]*[A-Za-z0-9]")  # RFC 5321 Ldh-str
_TOKEN = re.compile(r"[A-Za-z0-9!#$%&'*+\-.^_`{|}~]+")  # RFC 2045 token
_DIGITS = re.compile(r"[0-9]+")
# A value as mail writes it: no WSP, controls or ( ) ; " \ ; anything else (UTF-8 too).
_VALUE = re.compile(r"[^\x00-\x20\x7f()\";\\]+")
_MAX_VERSION_DIGITS = 9


def _is_ctl(c: str) -> bool:
    return (c < " " and c != "\t") or c == "\x7f"


class _Parser:
    """A cursor over the unfolded field value; each method reads one piece
    of the grammar at the cursor, or raises :class:`AuthResError`."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.comments: List[str] = []

    def fail(self, what: str) -> AuthResError:
        near = self.text[self.pos:self.pos + 24]
        where = "at the end" if self.pos >= len(self.text) else "at character %d (%s)" % (
            self.pos, printable(near + ("..." if len(self.text) > self.pos + 24 else "")))
        return AuthResError("malformed Authentication-Results field: %s %s" % (what, where))

    def peek(self) -> str:
        return self.text[self.pos:self.pos + 1]

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def expect(self, char: str, what: str) -> None:
        if self.peek() != char:
            raise self.fail("expected %s" % what)
        self.pos += 1

    def match(self, pattern: "re.Pattern[str]") -> Optional[str]:
        m = pattern.match(self.text, self.pos)
        if m is None:
            return None
        self.pos = m.end()
        return m.group()

    def cfws(self) -> bool:
        """Skip whitespace and comments; whether there were any."""
        start = self.pos
        text = self.text
        while self.pos < len(text):
            c = text[self.pos]
            if c in " \t":
                self.pos += 1
            elif c == "(":
                self.comment()
            else:
                break
        return self.pos > start

    def comment(self) -> None:
        """A comment, nested comments and quoted pairs included (no recursion)."""
        text = self.text
        start = self.pos
        self.pos += 1
        depth = 1
        while depth:
            if self.pos >= len(text):
                self.pos = start
                raise self.fail("a comment that is never closed")
            c = text[self.pos]
            if c == "\\":
                if self.pos + 1 >= len(text) or _is_ctl(text[self.pos + 1]):
                    raise self.fail("a character after '\\' in a comment")
                self.pos += 2
                continue
            if _is_ctl(c):
                raise self.fail("a printable character in a comment, not a control character")
            depth += (c == "(") - (c == ")")
            self.pos += 1
        self.comments.append(text[start + 1:self.pos - 1])

    def quoted_string(self) -> str:
        """A quoted string at the cursor: its content, escapes resolved."""
        text = self.text
        start = self.pos
        self.pos += 1
        out: List[str] = []
        while True:
            if self.pos >= len(text):
                self.pos = start
                raise self.fail("a quoted string that is never closed")
            c = text[self.pos]
            if c == '"':
                self.pos += 1
                return "".join(out)
            if c == "\\":
                if self.pos + 1 >= len(text) or _is_ctl(text[self.pos + 1]):
                    raise self.fail("a character after '\\' in a quoted string")
                out.append(text[self.pos + 1])
                self.pos += 2
                continue
            if _is_ctl(c):
                raise self.fail("a printable character in a quoted string, not a control character")
            out.append(c)
            self.pos += 1

    def keyword(self, what: str) -> str:
        word = self.match(_KEYWORD)
        if word is None:
            raise self.fail("expected %s" % what)
        return word.lower()

    def number(self, what: str) -> int:
        digits = self.match(_DIGITS)
        if digits is None or len(digits) > _MAX_VERSION_DIGITS:
            raise self.fail("expected %s (a number)" % what)
        return int(digits)

    def value(self, what: str) -> str:
        """A reason or property value: a quoted string (optionally followed
        by ``@domain``, kept as written), or a run of value characters."""
        start = self.pos
        if self.peek() == '"':
            content = self.quoted_string()
            if self.peek() != "@":
                return content
            self.pos += 1
            if self.match(_VALUE) is None:
                raise self.fail("expected a domain after '@'")
            return self.text[start:self.pos]
        word = self.match(_VALUE)
        if word is None:
            raise self.fail("expected %s" % what)
        return word

    # -- the field ----------------------------------------------------------------------

    def parse(self) -> AuthenticationResults:
        self.cfws()
        if self.peek() == '"':
            servid = self.quoted_string()
            if not servid:
                raise self.fail("a non-empty authserv-id")
        else:
            token = self.match(_TOKEN)
            if token is None:
                raise self.fail("expected the authserv-id (such as mx.example.net)")
            servid = token
        spaced = self.cfws()
        version = None
        if self.peek().isdigit() and spaced:
            version = self.number("the version")
            self.cfws()
        if self.at_end():
            raise self.fail("expected ';' and the results (or ';' and 'none') after the authserv-id")
        self.expect(";", "';' after the authserv-id%s" % (" and version" if version is not None else ""))
        head_comments = list(self.comments)
        self.comments = []
        self.cfws()
        save, mark = self.pos, len(self.comments)
        word = self.match(_KEYWORD)
        if word is not None and word.lower() == "none":
            self.cfws()
            if self.at_end():
                return AuthenticationResults(servid, version, (), tuple(head_comments + self.comments))
            if self.peek() not in ("=", "/"):
                raise self.fail("nothing after 'none' (it stands alone)")
        self.pos = save
        del self.comments[mark:]
        results = []
        while True:
            results.append(self.resinfo())
            if self.at_end():
                break
            self.expect(";", "';' between results")
            self.comments = []
            self.cfws()
            if self.at_end():
                raise self.fail("a result after ';' (no trailing ';')")
        return AuthenticationResults(servid, version, tuple(results), tuple(head_comments))

    def resinfo(self) -> MethodResult:
        """``method[/version]=result [reason=value] [ptype.property=value ...]``,
        the cursor after any CFWS that precedes it (whose comments it keeps)."""
        method = self.keyword("a method (such as dkim) after ';'")
        self.cfws()
        version = None
        if self.peek() == "/":
            self.pos += 1
            self.cfws()
            version = self.number("the method version after '/'")
            self.cfws()
        self.expect("=", "'=' and a result after the method %r" % method)
        self.cfws()
        result = self.keyword("a result (such as pass) after '%s='" % method)
        reason = None
        props: List[Property] = []
        while True:
            spaced = self.cfws()
            if self.at_end() or self.peek() == ";":
                break
            if not spaced:
                raise self.fail("whitespace before the next property")
            start = self.pos
            word = self.keyword("a property (ptype.property=value) or ';'")
            self.cfws()
            if word == "reason" and self.peek() == "=":
                if props or reason is not None:
                    self.pos = start
                    raise self.fail("reason= right after the result, once, before the properties")
                self.pos += 1
                self.cfws()
                reason = self.value("the reason")
                continue
            self.expect(".", "'.' after the ptype %r (properties are ptype.property=value)" % word)
            self.cfws()
            name = self.keyword("a property name after '%s.'" % word)
            self.cfws()
            self.expect("=", "'=' after the property %s.%s" % (word, name))
            self.cfws()
            props.append(Property(word, name, self.value("a value for %s.%s" % (word, name))))
        return MethodResult(method, result, version, reason, tuple(props), tuple(self.comments))


def _prepare(field: Union[str, bytes]) -> str:
    """The field value, unfolded, without the field name.

    :raises AuthResError: not UTF-8, or a line break the field would end at.
    """
    if isinstance(field, (bytes, bytearray, memoryview)):
        try:
            text = bytes(field).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise AuthResError("malformed Authentication-Results field: not UTF-8 (%s)" % exc.reason) from None
    elif isinstance(field, str):
        text = field
    else:
        raise TypeError("an Authentication-Results field is str or bytes, not %s" % type(field).__name__)
    m = _FIELD_NAME.match(text)
    if m:
        text = text[m.end():]
    text = _UNFOLD.sub("", text)
    if text.endswith("\r\n"):
        text = text[:-2]
    elif text.endswith("\n"):
        text = text[:-1]
    for i, c in enumerate(text):
        if c in "\r\n":
            raise AuthResError("malformed Authentication-Results field: a line break not followed by whitespace "
                               "(the field would end there) at character %d" % i)
    return text.rstrip(" \t")


def parse_authentication_results(field: Union[str, bytes]) -> AuthenticationResults:
    """Parse an ``Authentication-Results`` field: the whole field
    (``Authentication-Results: ...``, folded or not, with or without its
    final line break) or its value alone.

    :raises AuthResError: the field is malformed (the message says what was
        expected, and where), or ``bytes`` that are not UTF-8.
    :raises TypeError: ``field`` is neither ``str`` nor ``bytes``.
    """
    return _Parser(_prepare(field)).parse()
