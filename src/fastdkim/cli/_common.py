"""What the commands share: exit statuses, usage errors, printing helpers, the
progress display and the ``type=`` checks of numeric options."""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import time
from typing import Any, Callable, Iterator, Optional, TextIO, Tuple

from .._text import printable

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
#: sysexits EX_TEMPFAIL: try again later (an MTA piping a message defers it)
EXIT_TEMPFAIL = 75

#: How every command's help is laid out (the demo keeps argparse's default).
FORMATTER = argparse.RawDescriptionHelpFormatter

#: Text from a message or a file name, on one line (see :func:`fastdkim._text.printable`).
_printable = printable


class UsageError(Exception):
    """A user error: reported in one line, exit status 2."""


class OutOfRange(argparse.ArgumentTypeError):
    """An option's value is out of range: reported by the parser of the
    command, as every parser error is (its usage line, ``fastdkim COMMAND:
    error: argument --OPTION: PROBLEM``, exit status 2).  Not a
    ``ValueError``, which argparse would report as a value of the wrong
    type."""


# -- argparse type= checks ---------------------------------------------------------------


def _checked(convert: Callable[[str], Any], ok: Callable[[Any], bool], problem: str) -> Callable[[str], Any]:
    """An argparse ``type=``: ``convert`` the text (text that is no number is
    reported by argparse as ever: "invalid int value"), then refuse a value
    ``ok`` rejects, saying ``problem`` (which argparse puts after the
    option's name: ``argument --jobs: must be 1 or more``)."""
    def parse(text: str) -> Any:
        value = convert(text)
        if not ok(value):
            raise OutOfRange(problem)
        return value

    parse.__name__ = convert.__name__
    return parse


def at_least(n: int, problem: str) -> Callable[[str], int]:
    """A whole number of ``n`` or more."""
    return _checked(int, lambda v: v >= n, problem)


def int_range(lo: int, hi: int, problem: str) -> Callable[[str], int]:
    """A whole number from ``lo`` to ``hi``."""
    return _checked(int, lambda v: lo <= v <= hi, problem)


def seconds(problem: str, *, zero: bool) -> Callable[[str], float]:
    """A finite number of seconds: more than 0, or with ``zero`` 0 or more."""
    return _checked(float, lambda v: math.isfinite(v) and (v >= 0 if zero else v > 0), problem)


#: A Unix time (``--now``).
unix_time = _checked(float, lambda v: math.isfinite(v) and 0 <= v < 2 ** 62,
                     "must be a Unix time (seconds since 1970)")


def authserv_id(text: str) -> str:
    """An authserv-id (``--ar``, RFC 8601 section 2.2)."""
    from ..authres import is_authserv_id  # (loaded by the commands that write Authentication-Results)

    if not is_authserv_id(text):
        raise OutOfRange("not an authserv-id: give a host name such as mx.example.net")
    return text


# -- options several commands take ---------------------------------------------------------


def domain_and_selector(args: argparse.Namespace) -> Tuple[str, str]:
    """--domain and --selector as A-label names, or a usage error (see
    :func:`check_selector`)."""
    return check_domain(args.domain), check_selector(args.selector)


def check_domain(value: str, option: str = "--domain") -> str:
    """A signing domain as an A-label name.

    :raises UsageError: not a valid domain name (reported as a problem of
        ``option``).
    """
    from .._text import to_a_label_domain

    try:
        return to_a_label_domain(value)
    except ValueError as exc:
        raise UsageError("%s %r is not a valid domain: %s" % (option, value, exc))


def check_selector(value: str, option: str = "--selector") -> str:
    """A selector as an A-label name.

    :raises UsageError: not a valid name, or one holding a ``_domainkey``
        label (the record would be at ``s1._domainkey._domainkey.DOMAIN``).
    """
    from .._text import to_a_label_domain

    try:
        name = to_a_label_domain(value)
    except ValueError as exc:
        raise UsageError("%s: %s" % (option, exc))
    labels = name.split(".")
    if "_domainkey" in labels:
        bare = labels[0] if labels[0] != "_domainkey" else "s1"
        raise UsageError("%s %s holds _domainkey: give the selector alone (%s %s); fastdkim adds ._domainkey "
                         "itself, and the record would otherwise be at %s._domainkey.DOMAIN" % (
                             option, value, option, bare, name))
    return name


def check_canonicalization(value: str, option: str = "--canonicalization") -> str:
    """A canonicalization (``relaxed/simple``, or one algorithm for the header).

    :raises UsageError: an unknown one (reported as a problem of ``option``).
    """
    from ..canonicalization import parse_canonicalization
    from ..errors import DKIMError

    try:
        parse_canonicalization(value)
    except (DKIMError, ValueError) as exc:
        raise UsageError("%s: %s" % (option, exc))
    return value


def check_header_names(value: str, option: str = "--headers") -> str:
    """``value``, colon-separated field names, once every one is a name a
    signature's ``h=`` list can hold (:func:`fastdkim.signing.signed_names`).

    :raises UsageError: no name at all, a name that is not a field name,
        or DKIM-Signature (reported as a problem of ``option``).
    """
    from ..errors import SigningError
    from ..signing import signed_names

    if not value.replace(":", "").strip(" \t"):
        raise UsageError("%s: no field names given (leave the option out for the default set)" % option)
    try:
        signed_names(value)
    except SigningError as exc:
        raise UsageError("%s: %s" % (option, exc))
    return value


def read_password(path: str) -> bytes:
    """The password held in the file at ``path`` (its first line)."""
    try:
        with open(path, "rb") as fh:
            return fh.read().rstrip(b"\r\n")
    except OSError as exc:
        raise UsageError("cannot read password file %s: %s" % (path, exc.strerror or exc))


# -- printing ----------------------------------------------------------------------------


def _os_error(exc: OSError) -> str:
    """An OSError in one line: what went wrong, and with which file."""
    text = exc.strerror or str(exc) or type(exc).__name__
    if exc.filename is not None:
        text = "%s: %s" % (exc.filename, text)
    return text


def _quiet_stdout() -> None:
    """Standard output failed: point it at /dev/null so that the flush at exit
    does not fail again with a traceback."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def _said(what: Optional[str]) -> None:
    """Report what recovering an interrupted run did (nothing when ``None``)."""
    if what:
        print("fastdkim: %s" % _printable(what), file=sys.stderr)


class _Progress:
    """A one-line progress display on a terminal; silent otherwise.  It counts
    messages out of ``total``, or with ``by_bytes`` octets out of ``total``
    (an mbox: its size, so that nothing is read twice to count messages)."""

    def __init__(self, label: str, total: int, out: TextIO, enabled: bool, by_bytes: bool = False) -> None:
        self.label, self.total, self.out, self.enabled, self.by_bytes = label, total, out, enabled, by_bytes
        self.start = time.perf_counter()
        self.last = 0.0

    def update(self, done: int, nbytes: int, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if not force and now - self.last < 0.1:
            return
        self.last = now
        el = max(now - self.start, 1e-9)
        width = 30
        fill = min(width, int(width * (nbytes if self.by_bytes else done) / max(self.total, 1)))
        if self.by_bytes:
            where = "%d msgs, %.1f/%.1f MB" % (done, nbytes / 1e6, self.total / 1e6)
        else:
            where = "%d/%d" % (done, self.total)
        self.out.write("\r%-8s [%s%s] %s  %.0f msg/s  %.1f MB/s" % (
            self.label, "#" * fill, "." * (width - fill), where, done / el, nbytes / el / 1e6))
        self.out.flush()

    def close(self) -> None:
        if self.enabled:
            self.out.write("\n")
            self.out.flush()


#: The exit status of a command whose standard output was closed under it,
#: as a shell shows for a program killed by SIGPIPE.
EXIT_PIPE = 128 + 13


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP inside the block end the command through an
    exception (``SystemExit``, status 128 + the signal's number), as Ctrl-C
    does through ``KeyboardInterrupt``: the ``finally`` blocks on the way
    run, so worker processes are shut down, temporary files removed and
    locks let go.  (Nothing is changed outside the main thread, where
    signals do not arrive.)"""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    old = [(sig, signal.signal(sig, stop)) for sig in (signal.SIGTERM, signal.SIGHUP)]
    try:
        yield
    finally:
        for sig, handler in old:
            signal.signal(sig, handler)
