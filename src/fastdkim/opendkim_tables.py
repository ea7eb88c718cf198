"""OpenDKIM's KeyTable and SigningTable (and the opendkim.conf that names
them), read into a :class:`~fastdkim.SigningPolicy` that signs as OpenDKIM
would with the same files::

    policy = SigningPolicy.from_opendkim("/etc/opendkim/KeyTable",
                                         "refile:/etc/opendkim/SigningTable")
    policy = SigningPolicy.from_opendkim_conf("/etc/opendkim.conf")
    fields = policy.sign(message)

What is read, as opendkim.conf(5) and opendkim(8) describe it:

* data sets given as ``file:PATH``, a plain absolute path (or a relative
  one naming an existing file), ``refile:PATH``
  (SigningTable patterns, ``*`` the only wildcard, compared without regard
  to case, first match in file order) or ``csl:a,b`` / a comma-separated
  list; ``dsn:`` (SQL through OpenDBX), ``ldap:``/``ldaps:``/``ldapi:``,
  ``db:`` and ``*.db`` (Berkeley DB), ``lua:``, ``memcache:``, ``erlang:``
  and ``mdb:`` are refused with an error naming them;
* KeyTable lines ``keyname domain:selector:key`` (key names are
  case-sensitive, as in OpenDKIM): ``domain`` ``%`` is the
  From domain; ``key`` starting with ``/``, ``./`` or ``../`` is a key file,
  anything else the key itself (PEM, or base64 DER); a ``%`` in ``key`` is
  the From domain;
* SigningTable lines ``pattern keyname[:signer]``: a ``keyname`` of ``%``
  is the From domain, a ``%`` in ``signer`` (the ``i=`` value, left out when
  it is not within ``d=``) is the From domain.  Without ``refile:``, the
  From address ``user@host`` is looked up as ``user@host``, then ``host``,
  then for each parent domain in turn (nearest first) ``user@.parent`` and
  ``.parent``, then ``user@*`` and ``*``;
* only the first match signs, unless ``multiple_signatures`` (OpenDKIM's
  ``MultipleSignatures``) is set: then every match signs, a key and signer
  that several entries name once;
* from opendkim.conf (and the files its ``Include`` names, nested up to
  five levels): ``KeyTable``, ``SigningTable``, ``MultipleSignatures``,
  ``InternalHosts``, ``Canonicalization`` (OpenDKIM's default,
  ``simple/simple``, is kept), ``SignHeaders``, ``OmitHeaders`` (OpenDKIM's
  default list: Return-Path, Received, Comments, Keywords, Bcc, Resent-Bcc,
  DKIM-Signature) and ``OversignHeaders`` (each replaces the default list,
  or changes it when one entry is ``*``: ``*,+X-Custom``, ``*,-Cc``; the
  defaults of ``SignHeaders`` and ``OversignHeaders`` are fastdkim's, which
  sign and oversign more than OpenDKIM's), ``SenderHeaders`` (the fields
  whose address picks the keys), ``SignatureTTL`` (``x=``),
  ``SignatureAlgorithm`` (``rsa-sha256`` or ``ed25519-sha256``: each key's
  type gives its algorithm; ``rsa-sha1`` is refused, RFC 8301) and
  ``BaseDirectory`` (relative key paths are taken from there).  Without a
  ``KeyTable``, the single-key settings: ``KeyFile`` and ``Selector`` sign
  mail from each ``Domain`` (with ``SubDomains``, from its subdomains too,
  ``d=`` the listed domain).  A setting
  opendkim.conf(5) does not name is an error, as in OpenDKIM; one that
  changes signing in a way fastdkim does not (:data:`UNSUPPORTED_SETTINGS`:
  ``DontSignMailTo``, ``ExemptDomains``, ``ResignAll``, Lua scripts, ...)
  is refused, named; the rest concern the milter, not what is signed, and
  are ignored.
"""
from __future__ import annotations

import base64
import binascii
import email.utils
import ipaddress
import os
import re
from typing import Any, Dict, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

from .errors import FromAddressError, NoSigningKey, PolicyError, UnsignableMessageError
from .message import MessageInput, read_message
from .policy import SigningPolicy
from .signing import Signer, sign_parsed
from ._text import to_a_label_domain

__all__ = ["KeyEntry", "OpenDKIMTables", "OpenDKIMSigningPolicy", "read_dataset", "read_opendkim_conf",
           "from_address", "redact_credentials", "UNSUPPORTED_DATASETS"]

#: Data set kinds fastdkim cannot read, by the prefix that selects them.
UNSUPPORTED_DATASETS: Tuple[Tuple[str, str], ...] = (
    ("dsn:", "an SQL database (dsn:, through OpenDBX)"),
    ("ldap:", "an LDAP directory (ldap:)"),
    ("ldaps:", "an LDAP directory (ldaps:)"),
    ("ldapi:", "an LDAP directory (ldapi:)"),
    ("db:", "a Berkeley DB file (db:)"),
    ("lua:", "a Lua script (lua:)"),
    ("memcache:", "a memcached cache (memcache:)"),
    ("erlang:", "an Erlang node (erlang:)"),
    ("mdb:", "an LMDB database (mdb:)"),
    ("redis:", "a Redis database (redis:)"),
)
#: OpenDKIM's default InternalHosts.
DEFAULT_INTERNAL_HOSTS = ("127.0.0.1",)
_TRUE = ("yes", "true", "on", "1", "y", "t")
_FALSE = ("no", "false", "off", "0", "n", "f")


#: The password of a URL (``scheme://user:password@host``): up to the last
#: ``@`` before white space, so that a password holding ``@`` or ``/`` is
#: hidden whole.
_URL_PASSWORD = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^:@/\s]*):\S*@")


def redact_credentials(text: str) -> str:
    """``text`` with the password of every URL in it replaced by ``***``
    (``dsn:mysql://user:pw@localhost/db`` becomes
    ``dsn:mysql://user:***@localhost/db``): what a message may show of a data
    set or a setting that names a database."""
    return _URL_PASSWORD.sub(r"\1:***@", text)


class _Dataset(NamedTuple):
    entries: List[Tuple[str, str]]  # (key, value) in file order; value "" for a bare key
    regex: bool  # refile:
    where: str


def read_dataset(spec: str, what: str, base_dir: Optional[str] = None) -> _Dataset:
    """Read an OpenDKIM data set (see the module): its ``(key, value)``
    entries in order.

    :param what: the setting's name, for messages (``"SigningTable"``).
    :param base_dir: where relative file names are taken from (default: the
        current directory).
    :raises PolicyError: an unsupported kind of data set (named), or a file
        that cannot be read.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise PolicyError("%s: an empty data set" % what)
    spec = spec.strip()
    lower = spec.lower()
    shown = redact_credentials(spec)  # (a database's data set may hold its password)
    for prefix, kind in UNSUPPORTED_DATASETS:
        if lower.startswith(prefix):
            raise PolicyError("%s %s is %s, which fastdkim cannot read: export it to a flat file "
                              "(file: or refile:)" % (what, shown, kind))
    regex = lower.startswith("refile:")
    if regex or lower.startswith("file:"):
        path = spec.split(":", 1)[1]
    elif spec.startswith("/") or spec.startswith("./") or spec.startswith("../"):
        if lower.endswith(".db"):
            raise PolicyError("%s %s is a Berkeley DB file (*.db), which fastdkim cannot read: export it to "
                              "a flat file (file: or refile:)" % (what, shown))
        path = spec
    elif not lower.startswith("csl:") and "," not in spec and os.path.isfile(
            spec if base_dir is None else os.path.join(base_dir, spec)):
        path = spec  # a relative file name (OpenDKIM would take it for a one-item list)
    else:
        if lower.startswith("csl:"):
            spec = spec[4:]
        entries = []
        for item in spec.split(","):
            item = item.strip()
            if item:
                k, eq, v = item.partition("=")
                entries.append((k.strip(), v.strip()) if eq else (item, ""))
        return _Dataset(entries, False, "%s (list)" % what)  # (where: never the list itself)
    if base_dir is not None and not os.path.isabs(path):
        path = os.path.join(base_dir, path)
    try:
        with open(path, "r", encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(redact_credentials("cannot read %s %s: %s" % (
            what, path, getattr(exc, "strerror", None) or exc))) from None
    entries = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            parts = line.split(None, 1)
            entries.append((parts[0], parts[1].strip() if len(parts) > 1 else ""))
    return _Dataset(entries, regex, path)


#: The settings opendkim.conf(5) names (OpenDKIM 2.11), lower case: a name
#: outside them is a mistake OpenDKIM refuses to start with, and so does
#: :func:`read_opendkim_conf`.
KNOWN_SETTINGS = frozenset(n.lower() for n in (
    "AllowSHA1Only AlwaysAddARHeader AuthservID AuthservIDWithJobID AutoRestart AutoRestartCount "
    "AutoRestartRate Background BaseDirectory BodyLengthDB BogusKey CaptureUnknownErrors Canonicalization "
    "ChangeRootDirectory ClockDrift Diagnostics DiagnosticDirectory DisableCryptoInit DNSConnect DNSTimeout "
    "Domain DomainKeysCompat DontSignMailTo EnableCoredumps ExemptDomains ExternalIgnoreList "
    "FinalPolicyScript FixCRLF IdentityHeader IdentityHeaderRemove IgnoreMalformedMail Include InternalHosts "
    "KeepAuthResults KeepTemporaryFiles KeyFile KeyTable LDAPAuthMechanism LDAPAuthName LDAPAuthRealm "
    "LDAPAuthUser LDAPBindPassword LDAPBindUser LDAPDisableCache LDAPKeepaliveIdle LDAPKeepaliveInterval "
    "LDAPKeepaliveProbes LDAPTimeout LDAPUseTLS LogResults LogWhy MacroList MaximumHeaders "
    "MaximumSignaturesToVerify MaximumSignedBytes MilterDebug Minimum MinimumKeyBits Mode MTA MTACommand "
    "MultipleSignatures MustBeSigned Nameservers NoHeaderB OmitHeaders On-BadSignature On-Default "
    "On-DNSError On-InternalError On-KeyNotFound On-NoSignature On-Security On-SignatureError "
    "OversignHeaders PeerList PidFile POPDBFile Quarantine QueryCache RedirectFailuresTo RemoveARAll "
    "RemoveARFrom RemoveOldSignatures ReplaceHeaders ReplaceRules ReportAddress ReportBccAddress "
    "RequestReports RequiredHeaders RequireSafeKeys ResignAll ResignMailTo ResolverConfiguration "
    "ResolverTracing ScreenPolicyScript SelectCanonicalizationHeader Selector SenderHeaders SenderMacro "
    "SendReports SetupPolicyScript SignatureAlgorithm SignatureTTL SignHeaders SigningTable SMTPURI Socket "
    "SoftStart SoftwareHeader Statistics StatisticsName StatisticsPolicyScript StatisticsPrefix "
    "StrictHeaders StrictTestMode SubDomains Syslog SyslogFacility SyslogName SyslogSuccess "
    "TemporaryDirectory TestDNSData TestPublicKeys TrustAnchorFile TrustSignaturesFrom UMask "
    "UnprotectedKey UserID VBR-Certifiers VBR-PurgeFields VBR-TrustedCertifiers VBR-TrustedCertifiersOnly "
    "VBR-Type WeakSyntaxChecks").split())
#: Settings that change what is signed, or how, which fastdkim does not do:
#: a configuration setting one is refused (named) rather than signed
#: otherwise than OpenDKIM would sign it.
UNSUPPORTED_SETTINGS: Dict[str, str] = {
    "bodylengthdb": "partial body signing (l=) for some recipients",
    "dontsignmailto": "recipients whose mail is not signed",
    "exemptdomains": "domains whose mail is not signed",
    "identityheader": "a header field naming the signing identity",
    "resignall": "signing relayed mail again",
    "resignmailto": "signing relayed mail again",
    "selectcanonicalizationheader": "a header field choosing the canonicalization",
    "sendermacro": "the sender taken from a milter macro",
    "setuppolicyscript": "Lua policy scripts",
    "screenpolicyscript": "Lua policy scripts",
    "finalpolicyscript": "Lua policy scripts",
    "replaceheaders": "header field rewriting before signing",
    "replacerules": "header field rewriting before signing",
    "maximumsignedbytes": "partial body signing (l=)",
}
_INCLUDE_DEPTH = 5


def read_opendkim_conf(path: str) -> Dict[str, str]:
    """The settings of an opendkim.conf, by lower-case name (the last one
    wins, as in OpenDKIM), with the files it names by ``Include`` read in
    its place (nested up to five levels, as OpenDKIM allows; a relative
    name is taken from the including file's directory).

    :raises PolicyError: a file cannot be read, a setting is not one
        opendkim.conf(5) names (:data:`KNOWN_SETTINGS`: OpenDKIM refuses
        to start on it), or Includes nest deeper than five levels.
    """
    out: Dict[str, str] = {}
    _read_conf(path, out, 0)
    return out


def _read_conf(path: str, out: Dict[str, str], depth: int) -> None:
    try:
        with open(path, "r", encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError("cannot read %s: %s" % (path, getattr(exc, "strerror", None) or exc)) from None
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split(None, 1)
        name, value = parts[0].lower(), parts[1].strip() if len(parts) > 1 else ""
        if name not in KNOWN_SETTINGS:
            raise PolicyError("%s, line %d: %s is not an opendkim.conf setting (opendkim.conf(5))"
                              % (path, number, parts[0][:60]))
        if name == "include":
            if depth >= _INCLUDE_DEPTH:
                raise PolicyError("%s, line %d: Include nested more than %d levels" % (path, number, _INCLUDE_DEPTH))
            _read_conf(os.path.join(os.path.dirname(os.path.abspath(path)), value), out, depth + 1)
            continue
        out[name] = value


def _boolean(value: str, name: str, where: str) -> bool:
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise PolicyError("%s: %s must be yes or no, not %r" % (where, name, value))


class KeyEntry(NamedTuple):
    """One KeyTable line: ``domain`` (``%``: the From domain), ``selector``
    and ``key`` (a file name, or the key itself)."""

    domain: str
    selector: str
    key: str

    @property
    def is_file(self) -> bool:
        return self.key.startswith(("/", "./", "../"))


def from_address(fields: Sequence[Tuple[bytes, bytes]], names: Sequence[str] = ("from",)) -> Tuple[str, str]:
    """The local part (as written) and domain (an A-label, lower case) of the
    single author address in the From field; with *names* (OpenDKIM's
    SenderHeaders, lower case), in the first of those fields the message
    has.

    :raises FromAddressError: no such field, several of it, no address,
        several addresses, or an address without a valid domain.
    """
    for wanted in names or ("from",):
        found = [raw for name, raw in fields if name == wanted.encode("ascii", "replace")]
        if found:
            break
    else:
        raise FromAddressError("message has no %s field" % " or ".join(n.title() for n in names or ("from",)))
    label = wanted.title()
    if len(found) > 1:
        raise FromAddressError("message has %d %s fields" % (len(found), label))
    value = found[0].split(b":", 1)[1].replace(b"\r\n", b"").decode("utf-8", "surrogateescape").strip()
    addrs = [a for _, a in email.utils.getaddresses([value]) if a]
    if len(addrs) != 1:
        raise FromAddressError("%s field holds %s; one author is needed to pick a key"
                               % (label, "no address" if not addrs else "%d addresses" % len(addrs)))
    local, at, domain = addrs[0].rpartition("@")
    if not at or not local:
        raise FromAddressError("%s address %r has no domain" % (label, addrs[0][:80]))
    try:
        return local, to_a_label_domain(domain.rstrip(">").strip())
    except ValueError as exc:
        raise FromAddressError("%s address domain is invalid: %s" % (label, exc)) from None


class OpenDKIMTables:
    """A KeyTable and a SigningTable, read.

    :raises PolicyError: see :func:`read_dataset`; a KeyTable line that is
        not ``domain:selector:key``; a SigningTable line without a key name.
    """

    def __init__(self, keytable: "Union[str, _Dataset]", signingtable: "Union[str, _Dataset]",
                 base_dir: Optional[str] = None) -> None:
        kt = keytable if isinstance(keytable, _Dataset) else read_dataset(keytable, "KeyTable", base_dir)
        st = signingtable if isinstance(signingtable, _Dataset) else read_dataset(signingtable, "SigningTable",
                                                                                  base_dir)
        self.keys: Dict[str, KeyEntry] = {}
        for name, value in kt.entries:
            parts = value.split(":", 2)
            if len(parts) != 3 or not all(p.strip() for p in parts):
                raise PolicyError(redact_credentials("%s: key %s: the value must be domain:selector:key, not %r"
                                                     % (kt.where, name, value[:80])))
            self.keys.setdefault(name, KeyEntry(*(p.strip() for p in parts)))  # (names are case-sensitive)
        self.regex = st.regex
        #: (pattern or key, key name, signer or None), in file order
        self.signing: List[Tuple[str, str, Optional[str]]] = []
        for key, value in st.entries:
            keyname, _, who = value.partition(":")
            if not keyname.strip():
                raise PolicyError(redact_credentials("%s: %s has no key name" % (st.where, key)))
            if who.strip() and "@" not in who:
                raise PolicyError(redact_credentials(
                    "%s: %s: the signer %s is not an address (user@domain; %%@%% for the From domain): OpenDKIM "
                    "signs no message with it" % (st.where, key, who.strip())))
            self.signing.append((key.lower(), keyname.strip(), who.strip() or None))
        self._exact: Dict[str, List[Tuple[str, Optional[str]]]] = {}
        for key, keyname, signer in self.signing:
            self._exact.setdefault(key, []).append((keyname, signer))
        self._patterns = [(_wildcard(k), keyname, signer) for k, keyname, signer in self.signing] if self.regex else []
        for _, keyname, _ in self.signing:
            if keyname != "%" and keyname not in self.keys:
                raise PolicyError(redact_credentials("%s: key name %s is not in the KeyTable %s"
                                                     % (st.where, keyname, kt.where)))
        self.where = st.where

    def requests(self, local: str, domain: str, multiple: bool = False) -> List[Tuple[str, Optional[str]]]:
        """The ``(key name, signer)`` pairs for mail from ``local@domain``,
        in OpenDKIM's order (the first alone unless ``multiple``), ``%``
        substituted.  Raises nothing."""
        address = "%s@%s" % (local, domain)
        found: List[Tuple[str, Optional[str]]] = []
        if self.regex:
            for pattern, keyname, signer in self._patterns:
                if pattern.fullmatch(address):
                    found.append((keyname, signer))
        else:
            tries = [address.lower(), domain]
            for i in range(len(domain)):  # each parent in turn: user@.parent, then .parent (as OpenDKIM does)
                if domain[i] == ".":
                    tries += ["%s@%s" % (local.lower(), domain[i:]), domain[i:]]
            tries += ["%s@*" % local.lower(), "*"]
            for t in tries:
                found.extend(self._exact.get(t, ()))
        if not multiple:
            found = found[:1]
        # a key and signer that several entries name sign once (as in OpenDKIM)
        return list(dict.fromkeys((domain if keyname == "%" else keyname,
                                   signer.replace("%", domain) if signer is not None else None)
                                  for keyname, signer in found))


def _wildcard(pattern: str) -> "re.Pattern[str]":
    """A refile pattern: ``*`` matches anything, the rest is literal."""
    return re.compile(".*".join(re.escape(p) for p in pattern.split("*")), re.IGNORECASE | re.DOTALL)


def _host_entries(value: Union[None, str, Iterable[str]], base_dir: Optional[str]) -> Tuple[str, ...]:
    if value is None:
        return DEFAULT_INTERNAL_HOSTS
    if isinstance(value, str):
        return tuple(k for k, _ in read_dataset(value, "InternalHosts", base_dir).entries)
    return tuple(str(v).strip() for v in value if str(v).strip())


class OpenDKIMSigningPolicy(SigningPolicy):
    """A :class:`~fastdkim.SigningPolicy` built from OpenDKIM's tables: it
    chooses signers by the whole From address as OpenDKIM does, and builds
    each ``(key name, From domain)`` signer once.  Made by
    :meth:`fastdkim.SigningPolicy.from_opendkim`.

    :raises PolicyError: see :class:`OpenDKIMTables`.
    :raises KeyFormatError: a key that does not depend on the From domain
        cannot be loaded (all such keys are loaded now), or is not secure
        and ``refuse_insecure_keys`` is set (see :mod:`fastdkim.key_hygiene`).
    """

    def __init__(self, tables: OpenDKIMTables, *, multiple_signatures: bool = False,
                 internal_hosts: Union[None, str, Iterable[str]] = None, base_dir: Optional[str] = None,
                 options: Optional[Mapping[str, Any]] = None, refuse_insecure_keys: bool = False,
                 sender_headers: Sequence[str] = ("from",)) -> None:
        super().__init__({}, None)
        #: the fields whose address picks the keys, the first present
        #: (OpenDKIM's SenderHeaders; From by default)
        self.sender_headers = tuple(n.lower() for n in sender_headers) or ("from",)
        self.refuse_insecure_keys = bool(refuse_insecure_keys)
        self.tables = tables
        self.multiple_signatures = bool(multiple_signatures)
        self.base_dir = base_dir
        self.options: Dict[str, Any] = dict(options or {})
        #: OpenDKIM's InternalHosts entries (host names, ``.domain``, IP
        #: addresses, CIDR ranges, ``!`` exclusions); see :meth:`is_internal`
        self.internal_hosts = _host_entries(internal_hosts, base_dir)
        self._private: Dict[str, Any] = {}
        self._signers: Dict[Tuple[str, str, Optional[str]], Signer] = {}
        for entry in tables.keys.values():  # every key that does not depend on the From domain, now
            if "%" not in entry.key:
                self._load(entry.key)

    def __getstate__(self) -> Dict[str, Any]:
        """The state for pickling (to worker processes): the loaded keys as
        PKCS#8 DER, as :class:`~fastdkim.Signer` pickles its own."""
        from cryptography.hazmat.primitives import serialization

        state = dict(self.__dict__)
        state["_private"] = {k: v.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()) for k, v in self._private.items()}
        return state

    def __setstate__(self, state: Dict[str, Any]) -> None:
        from cryptography.hazmat.primitives import serialization

        state = dict(state)
        # Checked when first loaded; see Signer.__setstate__.
        state["_private"] = {k: serialization.load_der_private_key(v, password=None,
                                                                   unsafe_skip_rsa_key_validation=True)
                             for k, v in state["_private"].items()}
        self.__dict__.update(state)

    @property
    def domains(self) -> List[str]:
        """The SigningTable's keys (patterns with ``refile:``), in file order."""
        return list(dict.fromkeys(k for k, _, _ in self.tables.signing))

    def signers_for_domain(self, domain: str) -> Tuple[Signer, ...]:
        """The signers for mail from an address at ``domain`` with an empty
        local part (the SigningTable is keyed by whole addresses).

        :raises NoSigningKey: no SigningTable match.
        """
        return self.signers_for_address("", domain)

    def signers_for_fields(self, fields: Sequence[Tuple[bytes, bytes]]) -> Tuple[Signer, ...]:
        """The signers for a message with these header fields (lower-case
        name, raw field), chosen by its sender's whole address, in the first
        of :attr:`sender_headers` it has, as OpenDKIM chooses them.

        :raises FromAddressError: see :func:`from_address`.
        :raises NoSigningKey: no SigningTable match.
        """
        return self.signers_for_address(*from_address(fields, self.sender_headers))

    def signers_for(self, message: MessageInput) -> Tuple[Signer, ...]:
        """The signers for ``message``, chosen by its From address.

        :raises FromAddressError: see :func:`from_address`.
        :raises NoSigningKey: no SigningTable match.
        :raises MessageFormatError: the header block is malformed.
        """
        pm = read_message(message)
        if pm.malformed is not None:
            raise UnsignableMessageError(pm.malformed)
        return self.signers_for_fields(pm.fields)

    def sign(self, message: MessageInput) -> bytes:
        """Sign ``message`` with the signers for its From address (see
        :meth:`fastdkim.SigningPolicy.sign`).

        :raises FromAddressError: see :func:`from_address`.
        :raises NoSigningKey: no SigningTable match.
        :raises MessageFormatError: the header block is malformed.
        """
        pm = read_message(message, bare_lf=self._bare_lf)
        if pm.malformed is not None:
            raise UnsignableMessageError(pm.malformed)
        fields = sign_parsed(pm, self.signers_for_fields(pm.fields))
        text = b"".join(fields)
        return text.replace(b"\r\n", b"\n") if pm.lf_endings else text

    def __repr__(self) -> str:
        return "OpenDKIMSigningPolicy(%s, %d keys, %d entries%s)" % (
            self.tables.where, len(self.tables.keys), len(self.tables.signing),
            ", multiple signatures" if self.multiple_signatures else "")

    def _load(self, key: str) -> Any:
        """The private key of a KeyTable ``key`` (a file, or the key itself).

        :raises KeyFormatError: it cannot be loaded.
        """
        from .errors import KeyFormatError
        from .key_hygiene import check_key_file
        from .keys import load_private_key

        if key not in self._private:
            if key.startswith(("/", "./", "../")):
                path = key if self.base_dir is None or os.path.isabs(key) else os.path.join(self.base_dir, key)
                check_key_file(path, refuse=self.refuse_insecure_keys)
                self._private[key] = load_private_key(path)
            else:
                data = key.encode("utf-8")
                if b"-----BEGIN" not in data:
                    try:
                        data = base64.b64decode(data, validate=True)
                    except (binascii.Error, ValueError):
                        raise KeyFormatError("KeyTable: a key given in the table is neither PEM nor "
                                             "base64 DER") from None
                self._private[key] = load_private_key(data)
        return self._private[key]

    def signers_for_address(self, local: str, domain: str) -> Tuple[Signer, ...]:
        """The signers for mail from ``local@domain``.

        :raises NoSigningKey: the SigningTable has no match.
        :raises PolicyError: a match names a key name absent from the KeyTable.
        :raises KeyFormatError: a key whose file name depends on the From
            domain cannot be loaded.
        """
        domain = to_a_label_domain(domain)
        out = []
        for keyname, signer in self.tables.requests(local, domain, self.multiple_signatures):
            cached = self._signers.get((keyname, domain, signer))
            if cached is None:
                entry = self.tables.keys.get(keyname)
                if entry is None:
                    raise PolicyError("%s: key name %s (for %s@%s) is not in the KeyTable"
                                      % (self.tables.where, keyname, local, domain))
                d = domain if entry.domain == "%" else entry.domain
                opts = dict(self.options)
                if signer is not None:
                    sd = signer.rpartition("@")[2].lower().rstrip(".")
                    if sd == d.lower() or sd.endswith("." + d.lower()):  # else it conflicts with d=: left out
                        opts["identity"] = signer
                try:
                    cached = Signer(d, entry.selector, self._load(entry.key.replace("%", domain)), **opts)
                except (TypeError, ValueError) as exc:
                    raise PolicyError("KeyTable key %s: %s" % (keyname, exc)) from None
                self._signers[(keyname, domain, signer)] = cached
            out.append(cached)
        if not out:
            raise NoSigningKey("no SigningTable entry matches %s@%s" % (local, domain))
        return tuple(out)

    def is_internal(self, ip: str, hostname: Optional[str] = None) -> bool:
        """Whether a client is among :attr:`internal_hosts` (OpenDKIM's
        rule: the most precise matching entry decides; ``!`` excludes).
        Raises nothing (an unreadable ``ip`` is not internal)."""
        best: Optional[Tuple[int, bool]] = None
        try:
            addr: Optional[Any] = ipaddress.ip_address(ip)
        except ValueError:
            addr = None
        host = (hostname or "").lower().rstrip(".")
        for raw in self.internal_hosts:
            negate = raw.startswith("!")
            entry = raw[1:] if negate else raw
            precision = -1
            try:
                net = ipaddress.ip_network(entry, strict=False)
            except ValueError:
                e = entry.lower().rstrip(".")
                if host and (host == e or (e.startswith(".") and host.endswith(e))):
                    precision = 1000 + len(e)
            else:
                if addr is not None and addr.version == net.version and addr in net:
                    precision = net.prefixlen
            if precision >= 0 and (best is None or precision > best[0]):
                best = (precision, not negate)
        return bool(best and best[1])


#: OpenDKIM's default OmitHeaders (RFC 6376 section 5.4's "SHOULD NOT" sign).
DEFAULT_OMIT_HEADERS = ("return-path", "received", "comments", "keywords", "bcc", "resent-bcc", "dkim-signature")


def _names(spec: str, what: str, base: str, default: Sequence[str]) -> List[str]:
    """A list of header field names as OpenDKIM reads one (OmitHeaders in
    opendkim.conf(5)): it replaces *default*, unless one entry is ``*``:
    then it is a change to *default*, ``+name`` (or ``name``) added,
    ``-name`` taken out.  Lower-cased."""
    entries = [k.strip().lower() for k, _ in read_dataset(spec, what, base).entries if k.strip()]
    if "*" not in entries:
        return entries
    out = [n.lower() for n in default]
    for e in entries:
        if e == "*":
            continue
        if e.startswith("-"):
            out = [n for n in out if n != e[1:]]
        else:
            name = e[1:] if e.startswith("+") else e
            if name not in out:
                out.append(name)
    return out


def _single_key_tables(conf: Mapping[str, str], path: str, base: str) -> Tuple[_Dataset, _Dataset]:
    """The KeyTable and SigningTable that OpenDKIM's single-key settings
    amount to: ``KeyFile`` and ``Selector`` sign mail from each ``Domain``
    (and, with ``SubDomains``, from its subdomains, with ``d=`` the listed
    domain, whose record the key's is).

    :raises PolicyError: one of the three is missing, or SubDomains is not a
        boolean.
    """
    missing = [n for n in ("Domain", "Selector", "KeyFile") if n.lower() not in conf]
    if missing:
        raise PolicyError("%s sets no KeyTable and SigningTable, nor %s: nothing says which key signs which "
                          "mail" % (path, " and ".join(missing)))
    key = conf["keyfile"].strip()
    if not key.startswith(("/", "./", "../")):
        key = "./" + key  # (KeyFile names a file, never the key itself)
    selector = conf["selector"].strip()
    subdomains = _boolean(conf.get("subdomains", "no"), "SubDomains", path)
    keys: List[Tuple[str, str]] = []
    signing: List[Tuple[str, str]] = []
    for domain, _ in read_dataset(conf["domain"], "Domain", base).entries:
        domain = domain.strip().lower().rstrip(".")
        name = "Domain %s" % domain
        keys.append((name, "%s:%s:%s" % (domain, selector, key)))
        signing.append((domain, name))
        if subdomains:
            signing.append(("." + domain, name))
    if not keys:
        raise PolicyError("%s: Domain names no domain" % path)
    return (_Dataset(keys, False, "%s (KeyFile %s)" % (path, conf["keyfile"].strip())),
            _Dataset(signing, False, "%s (Domain)" % path))


def conf_arguments(path: str) -> Dict[str, Any]:
    """The arguments of :meth:`~fastdkim.SigningPolicy.from_opendkim` that an
    opendkim.conf gives (see the module).

    :raises PolicyError: the file cannot be read, names neither a KeyTable
        and SigningTable nor a Domain, Selector and KeyFile, holds a setting
        opendkim.conf(5) does not name or one
        that changes signing in a way fastdkim does not
        (:data:`UNSUPPORTED_SETTINGS`), or an invalid value for a setting
        read.
    """
    from .signing import DEFAULT_HEADERS, DEFAULT_OVERSIGN

    conf = read_opendkim_conf(path)
    base = conf.get("basedirectory") or os.path.dirname(os.path.abspath(path))
    keytable: Union[str, _Dataset]
    signingtable: Union[str, _Dataset]
    if "keytable" in conf:
        if "signingtable" not in conf:
            raise PolicyError("%s sets a KeyTable but no SigningTable: nothing says which mail it signs" % path)
        keytable, signingtable = conf["keytable"], conf["signingtable"]
    elif "signingtable" in conf:  # (as OpenDKIM refuses it)
        raise PolicyError("%s sets a SigningTable but no KeyTable: its key names name no key" % path)
    else:
        keytable, signingtable = _single_key_tables(conf, path, base)
    refused = [n for n in conf if n in UNSUPPORTED_SETTINGS]
    if "fixcrlf" in conf and _boolean(conf["fixcrlf"], "FixCRLF", path):
        refused.append("fixcrlf")
    if refused:
        why = dict(UNSUPPORTED_SETTINGS, fixcrlf="bare CR and LF made CRLF in canonicalization")
        raise PolicyError("%s sets %s, which fastdkim does not do (%s): remove %s to sign without it"
                          % (path, ", ".join(refused), "; ".join(why[n] for n in refused),
                             "them" if len(refused) > 1 else "it"))
    canon = conf.get("canonicalization", "simple/simple").strip().lower()
    if "/" not in canon:
        canon += "/simple"
    if not all(p in ("simple", "relaxed") for p in canon.split("/")) or canon.count("/") != 1:
        raise PolicyError("%s: Canonicalization %r is not simple or relaxed (header/body)"
                          % (path, conf["canonicalization"][:40]))
    options: Dict[str, Any] = {"canonicalization": canon}
    headers = (_names(conf["signheaders"], "SignHeaders", base, DEFAULT_HEADERS) if "signheaders" in conf
               else list(DEFAULT_HEADERS))
    omit = set(_names(conf["omitheaders"], "OmitHeaders", base, DEFAULT_OMIT_HEADERS) if "omitheaders" in conf
               else DEFAULT_OMIT_HEADERS) - {"from"}
    if "signheaders" in conf or "omitheaders" in conf:
        options["headers"] = [n for n in headers if n not in omit]
    if "oversignheaders" in conf:
        options["oversign"] = _names(conf["oversignheaders"], "OversignHeaders", base, DEFAULT_OVERSIGN)
    if "signaturettl" in conf:
        ttl = conf["signaturettl"].strip()
        if not ttl.isascii() or not ttl.isdigit() or not int(ttl) < 2 ** 31:
            raise PolicyError("%s: SignatureTTL must be a number of seconds, not %r" % (path, ttl[:40]))
        if int(ttl):  # (0, OpenDKIM's default: no x=)
            options["expiration"] = int(ttl)
    algorithm = conf.get("signaturealgorithm", "rsa-sha256").strip().lower()
    if algorithm not in ("rsa-sha256", "ed25519-sha256"):
        raise PolicyError("%s: SignatureAlgorithm %s is not one fastdkim signs with (rsa-sha256, or "
                          "ed25519-sha256; RFC 8301 retires rsa-sha1)" % (path, algorithm[:40]))
    senders = (tuple(_names(conf["senderheaders"], "SenderHeaders", base, ("from",)))
               if "senderheaders" in conf else ("from",))
    return {"keytable": keytable, "signingtable": signingtable,
            "internal_hosts": conf.get("internalhosts"), "base_dir": base, "options": options,
            "multiple_signatures": _boolean(conf.get("multiplesignatures", "no"), "MultipleSignatures", path),
            "sender_headers": senders}
