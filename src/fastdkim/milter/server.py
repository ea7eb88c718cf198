"""The milter server: one asyncio event loop for every MTA connection.

Each connection is a :class:`~fastdkim.milter.session.MilterSession`: it
buffers the milter packets as they arrive, lets :mod:`kilter.protocol`
split them into events and writes the replies that
:class:`~fastdkim.milter.connection.Connection` decides.  Signing and
verification are short CPU bursts (a signature, the hashing of one body
chunk) done on the loop; key lookups are awaited, so one slow DNS answer
holds up only its own message.

Signals: ``SIGHUP`` reloads the configuration file and every key (the
command-line options still override the file) and swaps them in without
closing a connection: messages under way finish with what they started
with, and a configuration that fails to load is reported and the old one
kept.  ``SIGTERM`` and ``SIGINT`` stop listening, close idle connections,
let each message under way finish (up to ``stop_timeout`` seconds), then
end.
"""
from __future__ import annotations

import asyncio
import errno
import grp
import logging
import logging.handlers
import os
import pwd
import signal
import socket
import stat
import sys
import warnings
from typing import Any, Dict, Mapping, Optional, Set

from . import _hup
from .config import ConfigError, MilterConfig, load_config, parse_socket
from .runtime import Loaded, load
from .session import MilterSession

__all__ = ["MilterServer", "setup_logging", "serve"]

log = logging.getLogger("fastdkim.milter")

def setup_logging(config: MilterConfig) -> None:
    """Send the milter's log to stderr or syslog, at the configured level.

    :raises ConfigError: syslog was asked for and cannot be reached.
    """
    logger = logging.getLogger("fastdkim.milter")
    for h in list(logger.handlers):
        logger.removeHandler(h)
        h.close()
    handler: logging.Handler
    if config.log == "syslog":
        facility = logging.handlers.SysLogHandler.facility_names[config.syslog_facility]
        address = "/dev/log"
        if not os.path.exists(address):  # (UDP to port 514 would lose every line without a word)
            raise ConfigError("log = syslog: there is no syslog socket at %s (no syslog daemon or journald "
                              "here); use log = \"stderr\", which systemd keeps in its journal" % address)
        try:
            handler = logging.handlers.SysLogHandler(address=address, facility=facility)
        except OSError as exc:
            raise ConfigError("log = syslog: cannot reach syslog at %s: %s" % (address, exc)) from None
        handler.setFormatter(logging.Formatter("fastdkim-milter[%(process)d]: %(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s fastdkim-milter[%(process)d]: %(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(config.log_level.upper())
    logger.propagate = False


class MilterServer:
    """The server: its configuration, its listening socket, its connections.

    :param loaded: the configuration in use (see :func:`~fastdkim.milter.runtime.load`).
    :param config_path: the file ``SIGHUP`` reloads (``None``: the command line only).
    :param overrides: the command-line options, applied again on each reload.
    """

    def __init__(self, loaded: Loaded, config_path: Optional[str] = None,
                 overrides: Optional[Mapping[str, Any]] = None) -> None:
        self.loaded = loaded
        self.config_path = config_path
        self.overrides: Dict[str, Any] = dict(overrides or {})
        self.sessions: Set[MilterSession] = set()
        self.stopping = False
        self._server: Optional[asyncio.AbstractServer] = None
        self._stopped: Optional[asyncio.Event] = None
        self._unix_path: Optional[str] = None
        self.bound: Any = None

    def current(self) -> Loaded:
        return self.loaded

    # -- reload and stop ------------------------------------------------------------------

    def reload(self) -> bool:
        """Load the configuration and keys again and use them for the
        messages that start from now on; on failure log why and keep the
        configuration in use.  Returns whether the new one is in use."""
        try:
            config = load_config(self.config_path, self.overrides)
            loaded = load(config)
        except ConfigError as exc:
            log.error("reload failed, configuration unchanged: %s", exc)
            return False
        except Exception as exc:  # (a problem no check foresaw: the milter goes on all the same)
            log.error("reload failed, configuration unchanged: %s: %s", type(exc).__name__, exc)
            return False
        if config.socket != self.loaded.config.socket:
            log.warning("reload: the socket changed to %s; it takes a restart to move (still on %s)",
                        config.socket, self.loaded.config.socket)
        try:
            setup_logging(config)
        except ConfigError as exc:
            log.error("reload: %s (logging unchanged)", exc)
        if config.socket != self.loaded.config.socket:  # (the socket stays; say so in the summary too)
            loaded.config.socket = self.loaded.config.socket
        self.loaded = loaded
        log.info("reloaded: %s", loaded.describe())
        return True

    def stop(self) -> None:
        """Stop listening; idle connections close now, the others after
        their message (or after ``stop_timeout``)."""
        if self.stopping:
            return
        self.stopping = True
        log.info("stopping: %d connection(s) open", len(self.sessions))
        if self._server is not None:
            self._server.close()
        for session in list(self.sessions):
            session.close_if_idle()
        if self._stopped is not None:
            self._stopped.set()

    # -- serving --------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on the configured socket.

        :raises ConfigError: the socket cannot be bound (in use, no
            permission) or its owner cannot be set.
        """
        config = self.loaded.config
        kind, where = parse_socket(config.socket)
        try:
            loop = asyncio.get_running_loop()
            if kind == "unix":
                self._prepare_unix(where)
                self._server = await loop.create_unix_server(lambda: MilterSession(self), path=where)
                self._unix_path = where
                try:
                    self._secure_unix(where, config)
                except BaseException:  # not left listening, nor its socket file behind
                    self._server.close()
                    self._server = None
                    self._unix_path = None
                    try:
                        os.unlink(where)
                    except OSError:
                        pass
                    raise
                self.bound = where
            else:
                family = socket.AF_INET6 if kind == "inet6" else socket.AF_INET
                self._server = await loop.create_server(lambda: MilterSession(self), host=where[0], port=where[1],
                                                        family=family, reuse_address=True)
                self.bound = self._server.sockets[0].getsockname()[:2]
        except OSError as exc:
            raise ConfigError("cannot listen on %s: %s" % (config.socket, exc.strerror or exc)) from None

    @staticmethod
    def _prepare_unix(path: str) -> None:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(st.st_mode):
            raise ConfigError("socket path %s exists and is not a socket" % path)
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
        except OSError:  # a stale socket left by a process that is gone
            os.unlink(path)
        else:
            raise ConfigError("socket %s is in use by another process" % path)
        finally:
            probe.close()

    @staticmethod
    def _secure_unix(path: str, config: MilterConfig) -> None:
        """Give the socket ``socket_mode`` and ``socket_owner``.

        :raises ConfigError: the user or group does not exist, or this
            process may not give the socket that owner.
        """
        if config.socket_mode is not None:
            os.chmod(path, config.socket_mode)
        if config.socket_owner:
            user, _, group = config.socket_owner.partition(":")
            try:
                uid = pwd.getpwnam(user).pw_uid
                gid = grp.getgrnam(group).gr_gid if group else -1
            except KeyError as exc:
                raise ConfigError("socket_owner %s: no such user or group (%s)" % (config.socket_owner, exc)) \
                    from None
            try:
                os.chown(path, uid, gid)
            except OSError as exc:
                hint = ""
                if exc.errno == errno.EPERM and os.geteuid() != 0:
                    hint = (" (a milter not running as root may only give its socket a group its user is in, "
                            "and no other user)")
                raise ConfigError("socket_owner %s: cannot give %s that owner: %s%s"
                                  % (config.socket_owner, path, exc.strerror or exc, hint)) from None

    async def serve(self) -> None:
        """Serve until :meth:`stop`, then wait for the messages under way
        (up to ``stop_timeout``), close every connection and the socket."""
        if self._server is None:
            await self.start()
        loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        signals = []
        if hasattr(signal, "SIGHUP"):
            try:
                loop.add_signal_handler(signal.SIGHUP, self.reload)
                loop.add_signal_handler(signal.SIGTERM, self.stop)
                loop.add_signal_handler(signal.SIGINT, self.stop)
                signals = [signal.SIGHUP, signal.SIGTERM, signal.SIGINT]
            except (RuntimeError, ValueError):  # not the main thread: the caller stops us
                signals = []
        log.info("listening on %s: %s", self.loaded.config.socket, self.loaded.describe())
        _notify_systemd(b"READY=1")
        if signals and _hup.received:  # a SIGHUP that came while starting (see serve())
            del _hup.received[:]
            self.reload()
        try:
            await self._stopped.wait()
            open_ = [s.closed for s in self.sessions]
            if open_:
                _, pending = await asyncio.wait(open_, timeout=self.loaded.config.stop_timeout)
                if pending:
                    log.warning("stop: %d connection(s) still busy after %g s, closed",
                                len(pending), self.loaded.config.stop_timeout)
                    for session in list(self.sessions):
                        session.abort()
                    await asyncio.wait(pending, timeout=5)
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)
            if self._server is not None:
                self._server.close()
                await self._server.wait_closed()
            if self._unix_path is not None:
                try:
                    os.unlink(self._unix_path)
                except OSError:
                    pass
            log.info("stopped")


def _notify_systemd(state: bytes) -> None:
    """Tell systemd ``state`` where it asked to be told (``Type=notify``:
    ``$NOTIFY_SOCKET``, a datagram socket, ``@`` naming an abstract one);
    nothing otherwise.  Raises nothing: a milter that cannot tell still serves."""
    where = os.environ.get("NOTIFY_SOCKET")
    if not where or where[0] not in "/@":
        return
    address = "\0" + where[1:] if where[0] == "@" else where
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(state, address)
    except OSError as exc:
        log.warning("could not notify systemd (%s): %s", where, exc)


def serve(config: MilterConfig, config_path: Optional[str] = None,
          overrides: Optional[Mapping[str, Any]] = None) -> None:
    """Load ``config`` and serve until ``SIGTERM`` or ``SIGINT``.

    :raises ConfigError: the configuration, a key or the socket is unusable.
    """
    _hup.defer()  # (the command line defers them from its start)
    shown = warnings.showwarning

    def log_warning(message: Any, category: Any, filename: str, lineno: int, file: Any = None,
                    line: Optional[str] = None) -> None:
        # (a key file others may read, a short key: said in the milter's log,
        # as one line, wherever the log goes)
        log.warning("%s", message)
    warnings.showwarning = log_warning
    try:
        setup_logging(config)
        loaded = load(config)
        server = MilterServer(loaded, config_path, overrides)

        async def main() -> None:
            await server.start()
            await server.serve()

        asyncio.run(main())
    finally:
        _hup.restore()
        warnings.showwarning = shown

