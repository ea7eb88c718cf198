"""``fastdkim verify``: one line per signature, JSON, or Authentication-Results."""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, BinaryIO, Iterator, Tuple, cast

from ..authres import authentication_results
from ..mailstore import DIRECTORY, FILE, MAILDIR, MBOX, STDIN
from ._common import (
    EXIT_FAIL,
    EXIT_OK,
    EXIT_USAGE,
    FORMATTER,
    UsageError,
    _os_error,
    _printable,
    _quiet_stdout,
    _said,
    at_least,
    authserv_id,
    seconds,
    unix_time,
)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    v = sub.add_parser("verify", help="verify the DKIM signatures of messages", formatter_class=FORMATTER,
                       description="Verify every DKIM-Signature of each message and print one line per signature. "
                                   "Exit status: 0 when every message has a passing signature, 1 otherwise, 2 for "
                                   "usage or I/O errors.",
                       epilog="examples:\n  fastdkim verify message.eml\n  fastdkim verify --json Maildir/\n"
                              "  fastdkim verify --ar mx.example.net < message.eml\n"
                              "  fastdkim verify --dns 127.0.0.1:5353 message.eml\n"
                              "  fastdkim verify --keys zone.txt message.eml")
    v.add_argument("inputs", nargs="*", metavar="INPUT", help="message file, directory, Maildir or mbox; '-' or none: standard input")
    v.add_argument("--json", action="store_true", help="one JSON object per message")
    v.add_argument("--ar", metavar="SERVID", type=authserv_id, help="print an Authentication-Results header (RFC 8601)")
    v.add_argument("--dns", metavar="IP[:PORT]", help="resolver to ask for keys")
    v.add_argument("--keys", metavar="FILE", help="serve keys from a zone file instead of DNS")
    v.add_argument("--timeout", type=seconds("--timeout must be a positive number of seconds", zero=False), default=5.0,
                   help="DNS timeout in seconds (default 5)")
    v.add_argument("--now", type=unix_time, help="verify as of this Unix time")
    v.add_argument("--allow-sha1", action="store_true", help="accept rsa-sha1 (refused by default, RFC 8301)")
    v.add_argument("--max-signatures", type=at_least(0, "--max-signatures must be 0 or more"), default=10,
                   help="signatures evaluated per message (default 10)")
    v.set_defaults(func=run)


def key_source(args: argparse.Namespace) -> Any:
    """Where keys come from: ``--keys`` (a zone file), ``--dns`` or the system's resolver."""
    from ..errors import KeyLookupError
    from ..keysources import DNSKeySource, zone_file_key_source

    if args.keys and args.dns:
        raise UsageError("use either --keys FILE or --dns SERVER")
    if args.keys:
        try:
            return zone_file_key_source(args.keys)
        except KeyLookupError as exc:
            raise UsageError(str(exc))
    try:
        if args.dns:
            return DNSKeySource(nameservers=[args.dns], timeout=args.timeout)
        return DNSKeySource(timeout=args.timeout)
    except ValueError as exc:
        raise UsageError("--dns: %s" % exc)


def run(args: argparse.Namespace) -> int:
    import shutil
    import tempfile

    from ..mailstore import JournalError, MboxLockedError, detect, iter_mbox, list_files, recover_mbox
    from ..verification import Verifier

    try:
        verifier = Verifier(keys=key_source(args), now=args.now, allow_sha1=args.allow_sha1,
                            max_signatures=args.max_signatures)
    except ValueError as exc:
        raise UsageError(str(exc))
    inputs = args.inputs or ["-"]
    try:
        sources = [detect(p) for p in inputs]
    except FileNotFoundError as exc:
        raise UsageError(str(exc))
    all_pass = True
    count = 0

    io_errors = 0

    def messages() -> Iterator[Tuple[str, Any]]:
        nonlocal io_errors
        for src in sources:
            if src.kind == STDIN:
                # spooled, to see whether it is an mbox (bounded memory: large input goes to disk)
                with tempfile.SpooledTemporaryFile(max_size=16 << 20) as spool:
                    shutil.copyfileobj(sys.stdin.buffer, spool, 1 << 20)
                    spool.seek(0)
                    is_mbox = spool.read(5) == b"From "
                    spool.seek(0)
                    if is_mbox:
                        for i, (_, msg) in enumerate(iter_mbox(cast(BinaryIO, spool)), 1):
                            yield "-#%d" % i, msg
                    else:
                        yield "-", spool
                continue
            if src.kind == MBOX:
                paths = [src.path]
                try:
                    _said(recover_mbox(src.path))  # a rewrite left half done by a killed run
                except (MboxLockedError, JournalError) as exc:
                    io_errors += 1
                    print("fastdkim verify: error: %s: %s" % (_printable(src.path), exc), file=sys.stderr)
                    continue
            elif src.kind in (MAILDIR, DIRECTORY):
                paths = [os.path.join(src.path, n) for n in list_files(src)]
            else:
                paths = [src.path]
            for path in paths:
                # one unreadable file is reported and the others still checked
                try:
                    fh = open(path, "rb")
                except OSError as exc:
                    io_errors += 1
                    print("fastdkim verify: error: %s" % _os_error(exc), file=sys.stderr)
                    continue
                with fh:
                    if src.kind == MBOX:
                        try:
                            for i, (_, msg) in enumerate(iter_mbox(fh), 1):
                                yield "%s#%d" % (path, i), msg
                        except ValueError as exc:
                            io_errors += 1
                            print("fastdkim verify: error: %s: %s" % (path, exc), file=sys.stderr)
                    else:
                        yield path, fh

    several = len(sources) > 1 or any(s.kind not in (STDIN, FILE) for s in sources)
    try:
        for name, msg in messages():
            count += 1
            results = verifier.verify(msg)
            ok = any(r.status == "pass" for r in results)
            all_pass = all_pass and ok
            if args.json:
                print(json.dumps({"source": name, "pass": ok, "signatures": [r.as_dict() for r in results]}))
            elif args.ar is not None:
                if several:  # which message each header belongs to
                    print("# %s" % _printable(name))
                print(authentication_results(args.ar, results))
            else:
                shown = _printable(name)
                if not results:
                    print("%s: none (no DKIM-Signature)" % shown)
                for r in results:
                    print("%s: %s d=%s s=%s a=%s (%s)" % (
                        shown, r.status, _printable(r.domain or "-"), _printable(r.selector or "-"),
                        _printable(r.algorithm or "-"), _printable(r.reason)))
            sys.stdout.flush()
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_OK if all_pass else EXIT_FAIL
    # (any other OSError is reported by main(), as for every command)
    if io_errors:
        return EXIT_USAGE
    if count == 0:
        print("fastdkim verify: no messages found", file=sys.stderr)
        return EXIT_FAIL
    return EXIT_OK if all_pass else EXIT_FAIL
