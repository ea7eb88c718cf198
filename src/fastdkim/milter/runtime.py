"""What the milter loads from its configuration, once for every connection:
the signing policy (its keys read and checked), the verification checks and
the key source.  A reload (``SIGHUP``) builds a new :class:`Loaded` and
swaps it in; messages under way finish with the one they started with.
"""
from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Tuple, Union

from ..aio import _async_source
from ..async_dns_source import AsyncDNSKeySource
from ..errors import DKIMError, KeyLookupError
from ..local_sources import zone_file_key_source
from ..policy import SigningPolicy
from ..verification import Verifier
from .config import ConfigError, MilterConfig, Network, check_config, config_error

__all__ = ["Loaded", "load", "check_and_load", "Address"]

class UnreadableAddress(str):
    """A client address the MTA sent that is neither an IP address nor a
    path (its text): a client in no network the configuration names, never
    mail submitted on this host."""


Address = Union[ipaddress.IPv4Address, ipaddress.IPv6Address, Path, UnreadableAddress, None]


def _in(address: Address, networks: Sequence[Network]) -> bool:
    if not isinstance(address, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address.version == n.version and address in n for n in networks)


class Loaded:
    """The configuration in use, with everything it names loaded.

    :ivar config: the options.
    :ivar policy: the signing policy, or ``None`` (no signing).
    :ivar checks: the verification checks (shared by every message).
    :ivar source: where verification keys come from (see :mod:`fastdkim.aio`).
    :ivar bounded: whether ``source`` bounds the time of its own lookups.
    """

    def __init__(self, config: MilterConfig, policy: Optional[SigningPolicy], source: Any, bounded: bool) -> None:
        self.config = config
        self.policy = policy
        self.checks = Verifier()
        self.source = source
        self.bounded = bounded

    def is_internal(self, address: Address) -> bool:
        """Whether mail from ``address`` is signed: an address in
        ``internal_hosts``, or none at all (mail submitted on this host,
        which MTAs report without a network address)."""
        if address is None or isinstance(address, Path):
            return True
        return _in(address, self.config.internal_hosts)

    def is_ignored(self, address: Address) -> bool:
        """Whether mail from ``address`` passes untouched (``ignore_hosts``)."""
        return _in(address, self.config.ignore_hosts)

    def describe(self) -> str:
        """What was loaded, in one line."""
        parts = [self.config.summary()]
        if self.policy is not None:
            parts.append("policy domains: %s%s" % (", ".join(self.policy.domains) or "none",
                                                   " + fallback" if self.policy.fallback else ""))
        return "; ".join(parts)


def _load_policy(config: MilterConfig) -> Optional[SigningPolicy]:
    """The signing policy of ``config`` (every key file read), or ``None``.

    :raises ConfigError: it cannot be loaded.
    """
    if not config.policy:
        return None
    try:
        return SigningPolicy.from_file(config.policy)
    except (DKIMError, UnicodeDecodeError) as exc:
        raise config_error(["policy %s: %s" % (config.policy, exc)]) from None


def _load_source(config: MilterConfig) -> Tuple[Any, bool]:
    """Where verification keys come from, and whether it bounds its lookups.

    :raises ConfigError: the zone file of ``keys`` cannot be read, or
        ``dns`` is unusable.
    """
    try:
        if config.keys:
            source, bounded = _async_source(zone_file_key_source(config.keys))
            return source, bounded
        return AsyncDNSKeySource(nameservers=[config.dns] if config.dns else None,
                                 timeout=config.dns_timeout), True
    except KeyLookupError as exc:
        raise config_error(["keys %s: %s" % (config.keys, exc)]) from None
    except (ValueError, OSError) as exc:
        raise config_error(["dns %s: %s" % (config.dns or "(system resolver)", exc)]) from None


def load(config: MilterConfig) -> Loaded:
    """Load the policy (every key file) and the key source of ``config``.

    :raises ConfigError: the policy or a key file cannot be loaded, the zone
        file of ``keys`` cannot be read, or ``dns`` is unusable; the message
        says which and why.
    """
    policy = _load_policy(config)
    source, bounded = _load_source(config)
    return Loaded(config, policy, source, bounded)


def check_and_load(path: Optional[str] = None, overrides: Optional[Mapping[str, Any]] = None) -> Loaded:
    """:func:`~fastdkim.milter.config.load_config` and :func:`load` at once,
    for ``--check``: the options are checked, and the policy and the key
    source loaded even when some options are bad, so that one error names
    every problem (each bad or unknown option, a policy or zone file that
    cannot be read, a resolver that cannot be used).

    :raises ConfigError: any problem; every one found, in one message.
    """
    config, problems = check_config(path, overrides)
    if config is None:
        raise config_error(problems)
    policy = source = None
    bounded = True
    try:
        policy = _load_policy(config)
    except ConfigError as exc:
        problems.append(str(exc))
    if not (config.keys and config.dns):  # (else reported above: the source is unknown)
        try:
            source, bounded = _load_source(config)
        except ConfigError as exc:
            problems.append(str(exc))
    if problems:
        raise config_error(problems)
    return Loaded(config, policy, source, bounded)


def check_report(loaded: Loaded) -> Tuple[str, ...]:
    """Lines describing a loaded configuration, for ``--check``."""
    lines = [loaded.describe()]
    if loaded.policy is not None:
        for domain in loaded.policy.domains:
            signers = loaded.policy.signers_for_domain("check-only." + domain[2:] if domain.startswith("*.") else domain)
            lines.append("  %s: %s" % (domain, ", ".join("%s s=%s d=%s" % (s.algorithm, s.selector, s.domain)
                                                        for s in signers)))
        if loaded.policy.fallback:
            lines.append("  fallback: %s" % ", ".join("%s s=%s d=%s" % (s.algorithm, s.selector, s.domain)
                                                     for s in loaded.policy.fallback))
    return tuple(lines)
