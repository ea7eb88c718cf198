"""The ``fastdkim`` command line: keygen, sign, verify, recover, check-dns, demo, milter.

Each command is a module of this package with an ``add_parser`` and a
``run``; they parse, call the library and print.

Exit status: 0 on success, 1 when something was checked and found wanting
(a message without a passing signature, a message left unsigned, a DNS
record with problems), 2 for usage and I/O errors.
"""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from .. import __version__
from ..mailgen import generate_corpus
from . import arc_seal, check_dns, demo, keygen, milter, recover, sign, verify
from ._common import EXIT_FAIL, EXIT_OK, EXIT_USAGE, OutOfRange, UsageError, _os_error, _quiet_stdout

# (reachable here as they were when the command line was one module)
from .sign import _pool, _sign_stream, _SignSetup  # noqa: F401

__all__ = ["main", "build_parser", "generate_corpus", "UsageError", "EXIT_OK", "EXIT_FAIL", "EXIT_USAGE"]


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command."""
    p = argparse.ArgumentParser(prog="fastdkim", description="Fast DKIM signing and verification (RFC 6376, RFC 8463).",
                                epilog="Run 'fastdkim COMMAND --help' for a command's options and examples.")
    p.add_argument("--version", action="version", version="fastdkim %s" % __version__)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for command in (keygen, sign, verify, recover, check_dns, demo, milter, arc_seal):
        command.add_parser(sub)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except OutOfRange as exc:  # from a type= check: reported as every parser error is
        parser.error(str(exc))
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.func(args))
    except UsageError as exc:
        print("fastdkim %s: error: %s" % (args.command, exc), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("fastdkim: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_OK
    except OSError as exc:
        if exc.filename is None:  # a write to standard output (a full disk, a closed pipe)
            _quiet_stdout()
        print("fastdkim %s: error: %s" % (args.command, _os_error(exc)), file=sys.stderr)
        return EXIT_USAGE
