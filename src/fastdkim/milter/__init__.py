"""``fastdkim milter``: a DKIM milter for Postfix and Sendmail.

Mail from trusted senders (``internal_hosts``, or authenticated SMTP
sessions) is signed by a :class:`~fastdkim.SigningPolicy`; other mail is
verified and gets an ``Authentication-Results`` field.  Bodies are hashed
chunk by chunk as the MTA sends them (:mod:`fastdkim.streaming`); one asyncio
event loop serves every connection.  The milter protocol is
:mod:`kilter.protocol`'s (the ``milter`` extra: ``pip install
fastdkim[milter]``).

Modules: :mod:`~fastdkim.milter.config` (options, TOML file, checks),
:mod:`~fastdkim.milter.runtime` (what the options load),
:mod:`~fastdkim.milter.connection` (what each event comes to),
:mod:`~fastdkim.milter.server` (sockets, signals, logging).
"""
from __future__ import annotations

from .config import ConfigError, MilterConfig, load_config, parse_socket

__all__ = ["ConfigError", "MilterConfig", "load_config", "parse_socket"]
