"""Choosing keys per message: signing for many domains at once.

A :class:`SigningPolicy` maps the domain of a message's From address to the
signers for it (what OpenDKIM calls its KeyTable and SigningTable):

* exact domains (``example.com``): signed with ``d=`` that domain, aligned
  with From;
* subdomain rules (``*.example.com``): any subdomain of ``example.com`` (not
  ``example.com`` itself), signed with ``d=example.com`` (relaxed alignment);
* an optional server-wide fallback that signs everything else under the
  server's own domain (unaligned, as servers do while domains are onboarded);
* several keys per domain: dual signing, e.g. RSA and Ed25519 (RFC 8463).

The file format is TOML::

    # keys may be absolute or relative to this file
    [defaults]                       # optional: Signer options for all keys
    canonicalization = "relaxed/relaxed"

    [domains."example.com"]
    keys = [
      { selector = "rsa2026", key = "keys/example.com.rsa.pem" },
      { selector = "ed2026",  key = "keys/example.com.ed25519.pem" },
    ]

    [domains."*.example.org"]        # signs as d=example.org
    keys = [{ selector = "s1", key = "keys/example.org.pem" }]

    [fallback]                       # optional
    domain = "mail.example.net"
    keys = [{ selector = "relay", key = "keys/relay.pem" }]

Each key entry may also set ``algorithm``, ``canonicalization``, ``headers``,
``oversign``, ``expiration`` and ``identity`` (overriding ``[defaults]``).
Every key file is loaded once, when the policy is loaded.
"""
from __future__ import annotations

import os
import sys
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from .errors import (  # (the policy's exceptions are defined there, and importable from here)
    FromAddressError,
    NoSigningKey,
    PolicyError,
    UnsignableMessageError,
)
from .message import MessageInput, read_message
from .signing import Signer, sign_parsed
from ._text import to_a_label_domain

__all__ = ["SigningPolicy", "PolicyError", "NoSigningKey", "FromAddressError", "from_domain"]

# Signer options a policy may set, with the TOML types each accepts.
_OPTION_TYPES: Dict[str, Tuple[type, str]] = {
    "algorithm": (str, "a string"),
    "canonicalization": (str, "a string such as \"relaxed/relaxed\""),
    "headers": (list, "a list of header field names"),
    "oversign": (list, "a list of header field names"),
    "expiration": (int, "a whole number of seconds"),
    "identity": (str, "a string such as \"user@example.com\""),
    "body_length": (bool, "true or false"),
    "copy_headers": (bool, "true or false"),
    "timestamp": (bool, "true or false"),
}
_SIGNER_OPTIONS = set(_OPTION_TYPES)


def _check_options(opts: Mapping[str, Any], where: str) -> None:
    for name, value in opts.items():
        want, text = _OPTION_TYPES[name]
        ok = isinstance(value, want) and not (want is int and isinstance(value, bool))
        if ok and want is list:
            ok = all(isinstance(v, str) for v in value)
        if not ok:
            raise PolicyError("%s: %s must be %s, not %r" % (where, name, text, value))


def from_domain(fields: Sequence[Tuple[bytes, bytes]]) -> str:
    """The domain of the single author address in the From field, as an A-label.

    :raises FromAddressError: no From field, several From fields, no address,
        several addresses, or an address without a valid domain.
    """
    froms = [raw for name, raw in fields if name == b"from"]
    if not froms:
        raise FromAddressError("message has no From field")
    if len(froms) > 1:
        raise FromAddressError("message has %d From fields" % len(froms))
    value = froms[0].split(b":", 1)[1].replace(b"\r\n", b"").decode("utf-8", "surrogateescape").strip()
    import email.utils  # (loaded only by policies that read From)

    addrs = [a for _, a in email.utils.getaddresses([value]) if a]
    if not addrs:
        raise FromAddressError("From field holds no address: %r" % value[:80])
    if len(addrs) > 1:
        raise FromAddressError("From field holds %d addresses; one author is needed to pick a key" % len(addrs))
    local, at, domain = addrs[0].rpartition("@")
    if not at or not local:
        raise FromAddressError("From address %r has no domain" % addrs[0][:80])
    try:
        return to_a_label_domain(domain.rstrip(">").strip())
    except ValueError as exc:
        raise FromAddressError("From address domain is invalid: %s" % exc) from None


class SigningPolicy:
    """Signers per From domain; see the module documentation for the file format.

    :param domains: mapping of domain or ``*.domain`` pattern to a sequence of
        :class:`~fastdkim.Signer`.
    :param fallback: signers for mail no rule covers, or ``None``.
    :raises PolicyError: a pattern is not a domain, has no signers, or names
        a domain another pattern names (in other letter case, with a final
        dot, as a U-label).
    """

    def __init__(self, domains: Mapping[str, Sequence[Signer]], fallback: Optional[Sequence[Signer]] = None) -> None:
        self._exact: Dict[str, Tuple[Signer, ...]] = {}
        self._wild: Dict[str, Tuple[Signer, ...]] = {}
        spelled: Dict[str, str] = {}  # each domain (or *.domain) as the caller wrote it first
        for pattern, signers in domains.items():
            if not signers:
                raise PolicyError("no keys for %s" % pattern)
            wildcard = pattern.startswith("*.")
            try:
                base = to_a_label_domain(pattern[2:] if wildcard else pattern)
            except ValueError as exc:
                raise PolicyError(str(exc)) from None
            table = self._wild if wildcard else self._exact
            key = ("*." if wildcard else "") + base
            if key in spelled:  # ("example.com" and "Example.COM.", or a U-label and its A-label)
                raise PolicyError("%r and %r name the same domain (%s): give it once" % (spelled[key], pattern, key))
            spelled[key] = pattern
            table[base] = tuple(signers)
        self.fallback: Optional[Tuple[Signer, ...]] = tuple(fallback) if fallback else None
        every = [s for group in list(self._exact.values()) + list(self._wild.values()) + [self.fallback or ()]
                 for s in group]
        modes = {s.bare_lf for s in every}
        # How line endings are read is settled before the signers are known:
        # the signers' own setting when they agree, else the message's own.
        self._bare_lf: Optional[bool] = modes.pop() if len(modes) == 1 else None

    @property
    def domains(self) -> List[str]:
        return sorted(self._exact) + ["*." + d for d in sorted(self._wild)]

    def signers_for_domain(self, domain: str) -> Tuple[Signer, ...]:
        """The signers for mail from ``domain``.

        :raises NoSigningKey: nothing covers the domain and there is no fallback.
        """
        d = to_a_label_domain(domain)
        if d in self._exact:
            return self._exact[d]
        labels = d.split(".")
        for i in range(1, len(labels)):  # the most specific *.parent rule wins
            parent = ".".join(labels[i:])
            if parent in self._wild:
                return self._wild[parent]
        if self.fallback:
            return self.fallback
        raise NoSigningKey("no signing key for %s" % d)

    def signers_for_fields(self, fields: Sequence[Tuple[bytes, bytes]]) -> Tuple[Signer, ...]:
        """The signers for a message with these header fields (lower-case
        name, raw field, as :func:`~fastdkim.message.read_message` gives
        them), chosen by its From domain (what a streaming session asks at
        the end of the header block).

        :raises FromAddressError: see :func:`from_domain`.
        :raises NoSigningKey: no rule covers the From domain.
        """
        return self.signers_for_domain(from_domain(fields))

    def signers_for(self, message: MessageInput) -> Tuple[Signer, ...]:
        """The signers for ``message``, chosen by its From domain.

        :raises FromAddressError: see :func:`from_domain`.
        :raises NoSigningKey: no rule covers the From domain.
        :raises MessageFormatError: the header block is malformed (see
            :func:`~fastdkim.message.read_message`): its From field cannot be
            trusted, and the message cannot be signed anyway.
        """
        pm = read_message(message)
        if pm.malformed is not None:
            raise UnsignableMessageError(pm.malformed)
        return self.signers_for_domain(from_domain(pm.fields))

    def sign(self, message: MessageInput) -> bytes:
        """Sign ``message`` with the signers for its From domain, reading its
        header block once (bytes, or a binary file read to its end: it need
        not be seekable).

        :returns: the ``DKIM-Signature`` field(s) to prepend, in the message's
            own line endings (as :meth:`Signer.sign` returns them).
        :raises FromAddressError: see :func:`from_domain`.
        :raises NoSigningKey: no rule covers the From domain.
        :raises MessageFormatError: the header block is malformed.
        """
        pm = read_message(message, bare_lf=self._bare_lf)
        if pm.malformed is not None:
            raise UnsignableMessageError(pm.malformed)
        fields = sign_parsed(pm, self.signers_for_domain(from_domain(pm.fields)))
        text = b"".join(fields)
        return text.replace(b"\r\n", b"\n") if pm.lf_endings else text

    def __repr__(self) -> str:
        return "SigningPolicy(domains=%r, fallback=%s)" % (
            self.domains, "yes" if self.fallback else "no")

    @classmethod
    def from_file(cls, path: str, *, password: Optional[bytes] = None,
                  refuse_insecure_keys: bool = False) -> "SigningPolicy":
        """Load a TOML policy file; every key is loaded now.  A key file
        that group or others can read or write, or that another user owns,
        gives an :class:`~fastdkim.key_hygiene.InsecureKeyWarning`.

        :param password: the password of encrypted key files that do not set
            their own ``password`` (unencrypted ones are loaded as they are).
        :param refuse_insecure_keys: refuse such key files instead
            (:class:`~fastdkim.key_hygiene.InsecureKeyError`, a KeyFormatError).
        :raises PolicyError: unreadable or malformed file, unknown options or
            options of the wrong type.
        :raises KeyFormatError: a key file cannot be loaded.
        """
        if sys.version_info >= (3, 11):  # (loaded here: signing with keys given otherwise needs no TOML)
            import tomllib
        else:  # pragma: no cover
            import tomli as tomllib
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except OSError as exc:
            raise PolicyError("cannot read policy file %s: %s" % (path, exc.strerror or exc)) from None
        except tomllib.TOMLDecodeError as exc:
            raise PolicyError("policy file %s is not valid TOML: %s" % (path, exc)) from None
        return cls.from_dict(data, base_dir=os.path.dirname(os.path.abspath(path)), source=path, password=password,
                             refuse_insecure_keys=refuse_insecure_keys)

    @classmethod
    def from_opendkim(cls, keytable: str, signingtable: str, *, internal_hosts: Any = None,
                      multiple_signatures: bool = False, base_dir: Optional[str] = None,
                      options: Optional[Mapping[str, Any]] = None,
                      refuse_insecure_keys: bool = False) -> "SigningPolicy":
        """A policy signing as OpenDKIM does with its ``KeyTable`` and
        ``SigningTable`` (data sets as OpenDKIM names them: ``file:PATH``,
        ``refile:PATH``, a path, ``csl:...``); see
        :mod:`fastdkim.opendkim_tables`.  Keys not named by the From domain
        (``%``) are loaded now.

        :param internal_hosts: OpenDKIM's InternalHosts, a data set or a
            list of entries (default ``127.0.0.1``), kept as the policy's
            ``internal_hosts`` (with ``is_internal(ip)``) for servers.
        :param multiple_signatures: OpenDKIM's MultipleSignatures: every
            SigningTable match signs, not only the first.
        :param base_dir: where relative file names are taken from.
        :param options: :class:`~fastdkim.Signer` options for every key.
        :param refuse_insecure_keys: as for :meth:`from_file` (key files are
            checked as :meth:`from_file` checks them).
        :raises PolicyError: an SQL, LDAP or other data set fastdkim cannot
            read (named), an unreadable or malformed table, a key name the
            KeyTable lacks.
        :raises KeyFormatError: a key cannot be loaded.
        """
        return _from_opendkim(cls, keytable, signingtable, internal_hosts=internal_hosts,
                              multiple_signatures=multiple_signatures, base_dir=base_dir, options=options,
                              refuse_insecure_keys=refuse_insecure_keys)

    @classmethod
    def from_opendkim_conf(cls, path: str, *, refuse_insecure_keys: bool = False) -> "SigningPolicy":
        """:meth:`from_opendkim` with the settings of an opendkim.conf
        (KeyTable, SigningTable, MultipleSignatures, InternalHosts,
        Canonicalization, SignHeaders, OmitHeaders, OversignHeaders,
        SenderHeaders, SignatureTTL, SignatureAlgorithm, BaseDirectory,
        Include; or Domain, Selector, KeyFile and SubDomains; see
        :mod:`fastdkim.opendkim_tables`).

        :raises PolicyError: as :meth:`from_opendkim`; the file cannot be
            read, sets neither a KeyTable and SigningTable nor a Domain,
            Selector and KeyFile, holds a setting
            opendkim.conf(5) does not name, or one that changes signing in a
            way fastdkim does not (named).
        :raises KeyFormatError: a key cannot be loaded.
        """
        from .opendkim_tables import conf_arguments

        return _from_opendkim(cls, refuse_insecure_keys=refuse_insecure_keys, **conf_arguments(path))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base_dir: str = ".", source: str = "policy",
                  password: Optional[bytes] = None, refuse_insecure_keys: bool = False) -> "SigningPolicy":
        """Build a policy from the parsed TOML structure (see the module docs).

        :param password: as for :meth:`from_file`.
        :param refuse_insecure_keys: as for :meth:`from_file`.
        """
        unknown = set(data) - {"defaults", "domains", "fallback"}
        if unknown:
            raise PolicyError("%s: unknown section(s): %s" % (source, ", ".join(sorted(unknown))))
        defaults = data.get("defaults", {})
        if not isinstance(defaults, dict):
            raise PolicyError("%s: [defaults] must be a table" % source)
        bad = set(defaults) - _SIGNER_OPTIONS
        if bad:
            raise PolicyError("%s: unknown option(s) in [defaults]: %s" % (source, ", ".join(sorted(bad))))
        _check_options(defaults, "%s: [defaults]" % source)
        cache: Dict[str, Any] = {}
        domains = data.get("domains", {})
        if not isinstance(domains, dict):
            raise PolicyError("%s: [domains] must be a table of domains" % source)
        built: Dict[str, List[Signer]] = {}
        for pattern, entry in domains.items():
            base = pattern[2:] if pattern.startswith("*.") else pattern
            built[pattern] = _signers(entry, base, defaults, base_dir, cache, "%s: domains.%s" % (source, pattern),
                                      password=password, refuse=refuse_insecure_keys)
        fallback = None
        if "fallback" in data:
            fb = data["fallback"]
            if not isinstance(fb, dict) or not isinstance(fb.get("domain"), str):
                raise PolicyError("%s: [fallback] needs a domain (a string)" % source)
            fallback = _signers(fb, fb["domain"], defaults, base_dir, cache, "%s: fallback" % source,
                                extra=frozenset({"domain"}), password=password, refuse=refuse_insecure_keys)
        if not built and not fallback:
            raise PolicyError("%s: no domains and no fallback: nothing would be signed" % source)
        return cls(built, fallback)


def _signers(entry: Any, domain: str, defaults: Mapping[str, Any], base_dir: str, cache: Dict[str, Any],
             where: str, extra: "frozenset[str]" = frozenset(), password: Optional[bytes] = None,
             refuse: bool = False) -> List[Signer]:
    from .key_hygiene import check_key_file
    from .keys import load_private_key, load_private_key_with

    if not isinstance(entry, dict) or not isinstance(entry.get("keys"), list) or not entry["keys"]:
        raise PolicyError("%s: needs keys = [{ selector = ..., key = ... }, ...]" % where)
    bad = set(entry) - {"keys"} - set(extra)
    if bad:
        raise PolicyError("%s: unknown option(s): %s" % (where, ", ".join(sorted(bad))))
    out = []
    for k in entry["keys"]:
        if not isinstance(k, dict) or "selector" not in k or "key" not in k:
            raise PolicyError("%s: every key needs selector and key" % where)
        for field in ("selector", "key", "password"):
            if field in k and not isinstance(k[field], str):
                raise PolicyError("%s: %s must be a string, not %r" % (where, field, k[field]))
        own = {o: v for o, v in k.items() if o not in ("selector", "key", "password")}
        bad = set(own) - _SIGNER_OPTIONS
        if bad:
            raise PolicyError("%s: unknown key option(s): %s" % (where, ", ".join(sorted(bad))))
        _check_options(own, where)
        opts = dict(defaults)
        opts.update(own)
        path = k["key"] if os.path.isabs(k["key"]) else os.path.join(base_dir, k["key"])
        if path not in cache:
            check_key_file(path, refuse=refuse)
            if "password" in k:
                cache[path] = load_private_key(path, k["password"].encode("utf-8"))
            else:
                cache[path] = load_private_key_with(path, password)  # used only if the key is encrypted
        try:
            out.append(Signer(domain, k["selector"], cache[path], **opts))
        except TypeError as exc:
            raise PolicyError("%s: %s" % (where, exc)) from None
    return out



def _from_opendkim(cls: type, keytable: str, signingtable: str, *, internal_hosts: Any = None,
                   multiple_signatures: bool = False, base_dir: Optional[str] = None,
                   options: Optional[Mapping[str, Any]] = None, refuse_insecure_keys: bool = False,
                   sender_headers: Sequence[str] = ("from",)) -> SigningPolicy:
    from .opendkim_tables import OpenDKIMSigningPolicy, OpenDKIMTables

    return OpenDKIMSigningPolicy(OpenDKIMTables(keytable, signingtable, base_dir), internal_hosts=internal_hosts,
                                 multiple_signatures=multiple_signatures, base_dir=base_dir, options=options,
                                 refuse_insecure_keys=refuse_insecure_keys, sender_headers=sender_headers)
