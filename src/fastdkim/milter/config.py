"""The milter's configuration: a TOML file, and the same options on the
command line (which override the file).

Every option, its TOML name and type, and the OpenDKIM option it replaces::

    socket            = "inet:8891@127.0.0.1"   # Socket (or "unix:/run/fastdkim/milter.sock")
    socket_mode       = "0660"                  # UMask (the unix socket's permissions)
    socket_owner      = "postfix:postfix"       # UserID (the socket's owner[:group])
    policy            = "/etc/fastdkim/dkim.toml"  # KeyTable + SigningTable + Domain + Selector + KeyFile
    internal_hosts    = ["127.0.0.0/8", "::1"]  # InternalHosts: mail from these is signed
    sign_authenticated = true                   # MTA's {auth_authen}: authenticated mail is signed
    ignore_hosts      = []                      # PeerList: mail from these passes untouched
    authserv_id       = "mx.example.net"        # AuthservID: mail not signed is verified
    remove_forged     = true                    # RemoveARAll/RemoveARFrom: drop fields claiming authserv_id
    keys              = "zone.txt"              # TestPublicKeys / (no equivalent): keys from a zone file
    dns               = "127.0.0.1:53"          # Nameservers
    dns_timeout       = 5.0                     # DNSTimeout
    on_error          = "accept"                # On-InternalError (accept | tempfail)
    log               = "stderr"                # Syslog (stderr | syslog)
    log_level         = "info"                  # LogResults/LogWhy, roughly (debug | info | warning | error)
    syslog_facility   = "mail"                  # SyslogFacility
    max_header_bytes  = 1048576                 # (no equivalent) largest header block kept per message
    stop_timeout      = 30.0                    # (no equivalent) seconds SIGTERM waits for transactions
    idle_timeout      = 7210.0                  # (libmilter's own read timeout) seconds a silent connection stays

A milter with a ``policy`` signs; with an ``authserv_id`` it verifies; it
needs one of the two.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import sys
from typing import Any, Dict, List, Mapping, Optional, Sequence, Set, Tuple, Union

from ..authres import is_authserv_id

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["ConfigError", "MilterConfig", "Network", "load_config", "check_config", "config_error", "parse_socket",
           "OPTIONS"]

Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message names the
    option, where it was given and what is expected."""


@dataclasses.dataclass
class MilterConfig:
    """The milter's options (see the module documentation)."""

    socket: str = "inet:8891@127.0.0.1"
    socket_mode: Optional[int] = None
    socket_owner: Optional[str] = None
    policy: Optional[str] = None
    internal_hosts: List[Network] = dataclasses.field(
        default_factory=lambda: [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")])
    sign_authenticated: bool = True
    ignore_hosts: List[Network] = dataclasses.field(default_factory=list)
    authserv_id: Optional[str] = None
    remove_forged: bool = True
    keys: Optional[str] = None
    dns: Optional[str] = None
    dns_timeout: float = 5.0
    on_error: str = "accept"
    log: str = "stderr"
    log_level: str = "info"
    syslog_facility: str = "mail"
    max_header_bytes: int = 1 << 20
    stop_timeout: float = 30.0
    idle_timeout: float = 7210.0
    #: the file the options came from (``None``: the command line only)
    path: Optional[str] = None

    def summary(self) -> str:
        """One line of what the milter does with these options."""
        parts = ["socket %s" % self.socket]
        if self.policy:
            parts.append("signs with %s for %s%s" % (
                self.policy, ", ".join(map(str, self.internal_hosts)) or "no hosts",
                " and authenticated senders" if self.sign_authenticated else ""))
        if self.authserv_id:
            parts.append("verifies as %s (keys from %s)" % (
                self.authserv_id, self.keys or ("DNS at %s" % self.dns if self.dns else "DNS")))
        return "; ".join(parts)


_LEVELS = ("debug", "info", "warning", "error")
_FACILITIES = ("mail", "daemon", "user", "local0", "local1", "local2", "local3", "local4", "local5", "local6",
               "local7")


def _where(source: str, name: str) -> str:
    """Where the option ``name`` was given: its command-line option, or ``FILE: option NAME``."""
    if source == "command line":
        return "--" + name.replace("_", "-")
    return "%s: option %s" % (source, name)


def _text(value: Any, name: str, source: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError("%s must be a non-empty string, not %r" % (_where(source, name), value))
    return value.strip()


def _bool(value: Any, name: str, source: str) -> bool:
    if isinstance(value, str) and source == "command line":
        low = value.lower()
        if low in ("yes", "true", "on", "1"):
            return True
        if low in ("no", "false", "off", "0"):
            return False
    if not isinstance(value, bool):
        raise ConfigError("%s must be true or false, not %r" % (_where(source, name), value))
    return value


def _number(value: Any, name: str, source: str, *, integer: bool = False) -> Any:
    if isinstance(value, str) and source == "command line":
        try:
            value = int(value) if integer else float(value)
        except ValueError:
            pass
    ok_types = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, ok_types) or not value > 0 or value != value \
            or value == float("inf"):
        raise ConfigError("%s must be a positive %s, not %r" % (
            _where(source, name), "whole number" if integer else "number of seconds", value))
    return value


def _choice(value: Any, name: str, source: str, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value.lower() not in choices:
        raise ConfigError("%s must be one of %s, not %r" % (_where(source, name), ", ".join(choices), value))
    return value.lower()


def _networks(value: Any, name: str, source: str) -> List[Network]:
    if isinstance(value, str):
        value = [v for v in re.split(r"[\s,]+", value) if v]
    if not isinstance(value, list):
        raise ConfigError("%s must be a list of networks such as [\"10.0.0.0/8\", \"::1\"], not %r"
                          % (_where(source, name), value))
    out: List[Network] = []
    for v in value:
        if not isinstance(v, str):
            raise ConfigError("%s: %r is not a network (a string such as \"10.0.0.0/8\")" % (_where(source, name), v))
        try:
            out.append(ipaddress.ip_network(v.strip(), strict=False))
        except ValueError:
            raise ConfigError("%s: %r is not an IP address or CIDR network" % (_where(source, name), v)) from None
    return out


def parse_socket(spec: str) -> Tuple[str, Any]:
    """``("inet", (host, port))``, ``("inet6", (host, port))`` or ``("unix", path)``
    from a Sendmail-style socket specification: ``inet:PORT@HOST``,
    ``inet6:PORT@HOST``, ``unix:/path`` or ``local:/path`` (``PORT`` alone
    listens on 127.0.0.1).

    :raises ConfigError: a specification of none of these forms.
    """
    kind, colon, rest = spec.partition(":")
    kind = kind.lower()
    if not colon or not rest:
        raise ConfigError("socket %r: use inet:PORT@HOST, inet6:PORT@HOST or unix:/path" % spec)
    if kind in ("unix", "local"):
        if not rest.startswith("/"):
            raise ConfigError("socket %r: a unix socket needs an absolute path" % spec)
        return ("unix", rest)
    if kind in ("inet", "inet6"):
        port_text, at, host = rest.partition("@")
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ConfigError("socket %r: the port must be a number from 1 to 65535" % spec)
        host = host.strip("[]") if at else ("127.0.0.1" if kind == "inet" else "::1")
        if not host:
            raise ConfigError("socket %r: no host after '@'" % spec)
        return (kind, (host, int(port_text)))
    raise ConfigError("socket %r: unknown kind %r (use inet, inet6 or unix)" % (spec, kind))


def _socket(value: Any, name: str, source: str) -> str:
    text = _text(value, name, source)
    try:
        parse_socket(text)
    except ConfigError as exc:
        raise ConfigError("%s: %s" % (_where(source, name), exc)) from None
    return text


def _mode(value: Any, name: str, source: str) -> int:
    if isinstance(value, str) and re.fullmatch(r"0?[0-7]{3}", value.strip()):
        return int(value.strip(), 8)
    raise ConfigError("%s must be an octal permission string such as \"0660\", not %r" % (_where(source, name), value))


def _path(value: Any, name: str, source: str, base: str) -> str:
    text = _text(value, name, source)
    return text if os.path.isabs(text) else os.path.join(base, text)


def _authserv_id(value: Any, name: str, source: str) -> str:
    text = _text(value, name, source)
    if not is_authserv_id(text):
        raise ConfigError("%s must be an authserv-id: a host name such as mx.example.net, not %r"
                          % (_where(source, name), value))
    return text


def _owner(value: Any, name: str, source: str) -> str:
    text = _text(value, name, source)
    if not re.fullmatch(r"[A-Za-z0-9_.-]+(:[A-Za-z0-9_.-]+)?", text):
        raise ConfigError("%s must be USER or USER:GROUP, not %r" % (_where(source, name), value))
    return text


def _dns(value: Any, name: str, source: str) -> str:
    from .._dnsbase import parse_nameserver

    text = _text(value, name, source)
    try:
        parse_nameserver(text, 53)
    except ValueError as exc:
        raise ConfigError("%s: %s" % (_where(source, name), exc)) from None
    return text


#: Each option: how its value is checked (and converted).
OPTIONS: Dict[str, Any] = {
    "socket": _socket,
    "socket_mode": _mode,
    "socket_owner": _owner,
    "policy": "path",
    "internal_hosts": _networks,
    "sign_authenticated": _bool,
    "ignore_hosts": _networks,
    "authserv_id": _authserv_id,
    "remove_forged": _bool,
    "keys": "path",
    "dns": _dns,
    "dns_timeout": _number,
    "on_error": lambda v, n, s: _choice(v, n, s, ("accept", "tempfail")),
    "log": lambda v, n, s: _choice(v, n, s, ("stderr", "syslog")),
    "log_level": lambda v, n, s: _choice(v, n, s, _LEVELS),
    "syslog_facility": lambda v, n, s: _choice(v, n, s, _FACILITIES),
    "max_header_bytes": lambda v, n, s: _number(v, n, s, integer=True),
    "stop_timeout": _number,
    "idle_timeout": _number,
}


def _apply(config: MilterConfig, values: Mapping[str, Any], source: str, base: str, bad: Set[str]) -> List[str]:
    """Set the options ``values`` on ``config``; the problems found (every
    unknown option and bad value, each described), the bad values left unset.
    ``bad`` holds the options whose value (the last one given) is bad: each
    bad one here is added, each set well here taken out."""
    problems = []
    unknown = sorted(set(values) - set(OPTIONS))
    if unknown:
        problems.append("%s: unknown option(s): %s (known: %s)" % (source, ", ".join(unknown),
                                                                  ", ".join(sorted(OPTIONS))))
    for name, value in values.items():
        check = OPTIONS.get(name)
        try:
            if check is None:
                continue
            if check == "path":
                setattr(config, name, _path(value, name, source, base))
            else:
                setattr(config, name, check(value, name, source))
            bad.discard(name)
        except ConfigError as exc:
            problems.append(str(exc))
            bad.add(name)
    return problems


def config_error(problems: Sequence[str]) -> ConfigError:
    """One error naming every problem of ``problems`` (a password in a
    database URL shown as ``***``)."""
    from ..opendkim_tables import redact_credentials

    text = problems[0] if len(problems) == 1 else "%d problems: %s" % (len(problems), "; ".join(problems))
    return ConfigError(redact_credentials(text))


def check_config(path: Optional[str] = None,
                 overrides: Optional[Mapping[str, Any]] = None) -> Tuple[Optional[MilterConfig], List[str]]:
    """The options of the TOML file ``path`` (if given), then ``overrides``,
    checked as :func:`load_config` checks them, and every problem found,
    without raising: the options (``None`` when the file cannot be read or
    is not TOML, the one problem then) and the problems (none: usable).

    The options that go together are checked among those that are good: a
    bad ``socket`` is not also reported as the wrong kind for
    ``socket_mode``, nor a bad ``policy`` as nothing to do.
    """
    config = MilterConfig(path=os.path.abspath(path) if path else None)
    problems: List[str] = []
    bad: Set[str] = set()
    given: Set[str] = set()
    if path is not None:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except OSError as exc:
            return None, ["cannot read configuration %s: %s" % (path, exc.strerror or exc)]
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            return None, ["configuration %s is not valid TOML: %s" % (path, exc)]
        problems += _apply(config, data, path, os.path.dirname(os.path.abspath(path)), bad)
        given.update(data)
    if overrides:
        values = {k: v for k, v in overrides.items() if v is not None}
        problems += _apply(config, values, "command line", os.getcwd(), bad)
        given.update(values)
    if config.keys and config.dns:
        problems.append("give either keys (a zone file) or dns (a resolver), not both")
    if not config.policy and not config.authserv_id and not {"policy", "authserv_id"} & given:
        problems.append("nothing to do: give a policy (to sign) or an authserv_id (to verify), or both")
    if "socket" not in bad:
        kind = parse_socket(config.socket)[0]
        for name in ("socket_mode", "socket_owner"):
            if getattr(config, name) is not None and kind != "unix":
                problems.append("%s applies to a unix socket only, not %s" % (name, config.socket))
    return config, problems


def load_config(path: Optional[str] = None, overrides: Optional[Mapping[str, Any]] = None) -> MilterConfig:
    """The options of the TOML file ``path`` (if given), then ``overrides``
    (from the command line: values given as there, ``None`` for an option
    not given), checked.

    Relative paths in the file are relative to the file; on the command
    line, to the working directory.

    :raises ConfigError: an unreadable or malformed file, an unknown option,
        a value of the wrong type or out of range, keys from both ``keys``
        and ``dns``, or neither ``policy`` nor ``authserv_id``; every
        problem is named, in one message (see :func:`check_config`).
    """
    config, problems = check_config(path, overrides)
    if config is None or problems:
        raise config_error(problems)
    return config
