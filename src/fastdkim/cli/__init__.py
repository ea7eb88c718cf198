"""The ``fastdkim`` command line: keygen, sign, verify, recover, check-dns, demo, milter.

Each command is a module of this package with an ``add_parser`` and a
``run``; they parse, call the library and print.

Exit status: 0 on success, 1 when something was checked and found wanting
(a message without a passing signature, a message left unsigned, a DNS
record with problems), 2 for usage and I/O errors, 141 (as a shell shows
for SIGPIPE) when standard output was closed before the command finished.
"""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

import importlib
from types import ModuleType
from typing import Any, List

from .. import __version__
from ._common import EXIT_FAIL, EXIT_OK, EXIT_PIPE, EXIT_USAGE, UsageError, _os_error, _quiet_stdout

__all__ = ["main", "build_parser", "generate_corpus", "UsageError", "EXIT_OK", "EXIT_FAIL", "EXIT_USAGE"]

#: Each command by the module (of this package) that holds it, in the order
#: ``fastdkim --help`` lists them.  A command's module loads only when the
#: command is run, or when every command is listed: ``fastdkim sign`` loads
#: neither verification nor ARC nor the milter.
COMMANDS = {"keygen": "keygen", "sign": "sign", "verify": "verify", "recover": "recover",
            "check-dns": "check_dns", "demo": "demo", "milter": "milter", "arc-seal": "arc_seal"}


def _command(name: str) -> ModuleType:
    return importlib.import_module("." + COMMANDS[name], __name__)


def build_parser(commands: Optional[Sequence[str]] = None) -> argparse.ArgumentParser:
    """The parser of the ``commands`` named (by default, every command)."""
    p = argparse.ArgumentParser(prog="fastdkim", description="Fast DKIM signing and verification (RFC 6376, RFC 8463).",
                                epilog="Run 'fastdkim COMMAND --help' for a command's options and examples.")
    p.add_argument("--version", action="version", version="fastdkim %s" % __version__)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for name in (COMMANDS if commands is None else commands):
        _command(name).add_parser(sub)
    return p


def __getattr__(name: str) -> Any:
    # (reachable here as they were when the command line was one module)
    if name in ("_pool", "_sign_stream", "_SignSetup"):
        return getattr(_command("sign"), name)
    if name == "generate_corpus":
        from ..mailgen import generate_corpus

        return generate_corpus
    if name in COMMANDS.values():
        return importlib.import_module("." + name, __name__)
    raise AttributeError("module %r has no attribute %r" % (__name__, name))


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(__all__) | set(COMMANDS.values()))


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); the exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    # The command named first needs only its own parser (and its own modules).
    parser = build_parser([args_list[0]] if args_list and args_list[0] in COMMANDS else None)
    args = parser.parse_args(args_list)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        status = int(args.func(args))
        sys.stdout.flush()  # (what is still buffered: a closed output is reported here, not at exit)
        return status
    except UsageError as exc:
        print("fastdkim %s: error: %s" % (args.command, exc), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("fastdkim: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away before the command finished: say so, and fail
        _quiet_stdout()
        print("fastdkim %s: error: standard output was closed; stopped" % args.command, file=sys.stderr)
        return EXIT_PIPE
    except OSError as exc:
        if exc.filename is None:  # a write to standard output (a full disk, a closed pipe)
            _quiet_stdout()
        print("fastdkim %s: error: %s" % (args.command, _os_error(exc)), file=sys.stderr)
        return EXIT_USAGE
