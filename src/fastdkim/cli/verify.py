"""``fastdkim verify``: one line per signature, JSON, or Authentication-Results
(printed, or with ``--add`` written into each message); ``--dmarc`` adds the
DMARC result (RFC 7489) given the caller's SPF result."""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from typing import Any, BinaryIO, Dict, Iterable, Iterator, Optional, Tuple, cast

from ..authres import authentication_results, write_file_with_authentication_results, \
    write_with_authentication_results
from ..authres_insert import is_envelope_line
from ..dmarc import SPF_RESULTS
from ..mailstore import DIRECTORY, FILE, MAILDIR, MBOX, STDIN, STREAM
from ._common import (
    EXIT_FAIL,
    EXIT_OK,
    EXIT_USAGE,
    FORMATTER,
    UsageError,
    _os_error,
    _printable,
    _said,
    at_least,
    authserv_id,
    seconds,
    unix_time,
)

#: The longest mbox envelope line looked for at the top of standard input.
_MAX_ENVELOPE = 64 * 1024


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    v = sub.add_parser("verify", help="verify the DKIM signatures of messages", formatter_class=FORMATTER,
                       description="Verify every DKIM-Signature of each message and print one line per signature. "
                                   "With --dmarc, also the DMARC result (RFC 7489) from the DKIM results and the SPF "
                                   "result given with --spf-result/--spf-domain (fastdkim does not evaluate SPF). "
                                   "With --ar, print an Authentication-Results field (RFC 8601) instead, or with "
                                   "--add write it into each message file (in place, or to --out), removing the "
                                   "fields that already claim that authserv-id. "
                                   "Exit status: 0 when every message has a passing signature, 1 otherwise, 2 for "
                                   "usage or I/O errors, 141 when standard output was closed before every message "
                                   "was checked ('| head').",
                       epilog="examples:\n  fastdkim verify message.eml\n  fastdkim verify --json Maildir/\n"
                              "  fastdkim verify --ar mx.example.net < message.eml\n"
                              "  fastdkim verify --dmarc --spf-result pass --spf-domain example.com message.eml\n"
                              "  fastdkim verify --ar mx.example.net --dmarc --add Maildir/new/\n"
                              "  fastdkim verify --ar mx.example.net --add --out stamped/ a.eml b.eml\n"
                              "  fastdkim verify --dns 127.0.0.1:5353 message.eml\n"
                              "  fastdkim verify --keys zone.txt message.eml")
    v.add_argument("inputs", nargs="*", metavar="INPUT", help="message file, directory, Maildir or mbox; '-' or none: standard input")
    v.add_argument("--json", action="store_true", help="one JSON object per message")
    v.add_argument("--ar", metavar="SERVID", type=authserv_id, help="print an Authentication-Results header (RFC 8601)")
    v.add_argument("--add", action="store_true",
                   help="with --ar: write each message with the field prepended (in place, or to --out; standard "
                        "input to standard output), fields already claiming SERVID removed")
    v.add_argument("--out", metavar="PATH", help="with --add: output file (one message) or directory")
    v.add_argument("--force", action="store_true", help="with --add --out: replace existing files")
    v.add_argument("--dmarc", action="store_true", help="evaluate DMARC (RFC 7489) for each message")
    v.add_argument("--arc", action="store_true",
                   help="validate each message's ARC chain (RFC 8617) too; it does not change the exit status")
    v.add_argument("--spf-result", choices=SPF_RESULTS, type=str.lower,
                   help="with --dmarc: the SPF result your MTA found (fastdkim does not evaluate SPF)")
    v.add_argument("--spf-domain", metavar="DOMAIN", help="with --dmarc: the domain SPF authenticated (MAIL FROM or HELO)")
    v.add_argument("--dns", metavar="IP[:PORT]", help="resolver to ask for keys")
    v.add_argument("--keys", metavar="FILE", help="serve keys from a zone file instead of DNS")
    v.add_argument("--timeout", type=seconds("must be a positive number of seconds", zero=False), default=5.0,
                   help="DNS timeout in seconds (default 5)")
    v.add_argument("--now", type=unix_time, help="verify as of this Unix time")
    v.add_argument("--allow-sha1", action="store_true", help="accept rsa-sha1 (refused by default, RFC 8301)")
    v.add_argument("--max-signatures", type=at_least(1, "must be 1 or more"), default=10,
                   help="signatures evaluated per message, 1 or more (default 10; later ones are reported "
                        "neutral, not evaluated)")
    v.add_argument("--lock-timeout", type=seconds("must be 0 or more seconds", zero=True), default=30.0,
                   metavar="SECONDS", help="how long to wait to read an mbox that is being written (a delivery, "
                                           "or fastdkim signing it in place; default 30)")
    v.set_defaults(func=run)


def _check_options(args: argparse.Namespace) -> None:
    """Options that only make sense together."""
    from .._text import to_a_label_domain

    if args.add and args.ar is None:
        raise UsageError("--add writes the Authentication-Results field of --ar SERVID: give --ar")
    if (args.out or args.force) and not args.add:
        raise UsageError("--out and --force go with --add")
    if (args.spf_result or args.spf_domain) and not args.dmarc:
        raise UsageError("--spf-result and --spf-domain go with --dmarc")
    if args.spf_domain and not args.spf_result:
        raise UsageError("--spf-domain needs --spf-result")
    if args.spf_result == "pass" and not args.spf_domain:
        raise UsageError("--spf-result pass needs --spf-domain (the domain SPF authenticated)")
    if args.spf_domain:
        try:
            args.spf_domain = to_a_label_domain(args.spf_domain)
        except ValueError as exc:
            raise UsageError("--spf-domain: %s" % exc)


def _destination(args: argparse.Namespace, several: bool, src_path: str, rel: str) -> Optional[str]:
    """Where ``--add`` writes the message read from ``src_path`` (named
    ``rel`` within its input): ``None`` for in place, else under ``--out``."""
    if not args.out:
        return None
    if several or os.path.isdir(args.out):
        dest = os.path.join(args.out, rel)
    else:
        dest = args.out
    if os.path.exists(dest) and os.path.samefile(dest, src_path):
        raise UsageError("--out is the input file %s: leave out --out to add the field in place" % src_path)
    return dest


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
            raise UsageError("--keys: %s" % exc)
    try:
        if args.dns:
            return DNSKeySource(nameservers=[args.dns], timeout=args.timeout)
        return DNSKeySource(timeout=args.timeout)
    except ValueError as exc:
        raise UsageError("--dns: %s" % exc)


def run(args: argparse.Namespace) -> int:
    import shutil
    import tempfile

    from ..errors import DKIMError
    from ..mailstore import JournalError, MboxLockedError, detect, iter_mbox, list_files, read_mbox, recover_mbox
    from ..verification import Verifier

    _check_options(args)
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
    several = len(sources) > 1 or any(s.kind not in (STDIN, FILE, STREAM) for s in sources)
    if args.add:
        for src in sources:
            if src.kind == MBOX:
                raise UsageError("--add rewrites message files, one message each; %s is an mbox" % src.path)
            if src.kind == STDIN and len(sources) > 1:
                raise UsageError("--add writes standard input to standard output: give it alone")
            if src.kind == STDIN and args.out:
                raise UsageError("--add writes standard input to standard output, not to --out")
            if src.kind == STREAM:
                raise UsageError("--add rewrites message files; %s is not a regular file (a pipe or a device): "
                                 "give it as standard input" % src.path)
    to_stdout = args.add and sources[0].kind == STDIN  # the message itself goes to standard output
    all_pass = True
    count = 0
    outputs: Dict[str, str] = {}  # --add --out: each output file written this run, and its input

    io_errors = 0
    read_as: Dict[str, os.stat_result] = {}  # --add in place: each file's status when it was opened

    def error(text: str) -> None:
        nonlocal io_errors
        io_errors += 1
        print("fastdkim verify: error: %s" % text, file=sys.stderr)

    def messages() -> Iterator[Tuple[str, Any, Optional[str]]]:
        """(name, message, where --add writes it: a path, or None for in place)."""
        for src in sources:
            if src.kind == STREAM:  # a named pipe or device: read once, as standard input is
                with tempfile.SpooledTemporaryFile(max_size=16 << 20) as spool:
                    try:
                        with open(src.path, "rb") as stream:
                            shutil.copyfileobj(stream, spool, 1 << 20)
                    except OSError as exc:
                        error(_os_error(exc))
                        continue
                    spool.seek(0)
                    if spool.read(5) == b"From ":
                        spool.seek(0)
                        for i, (_, msg) in enumerate(iter_mbox(cast(BinaryIO, spool)), 1):
                            yield "%s#%d" % (src.path, i), msg, None
                    else:
                        spool.seek(0)
                        yield src.path, spool, None
                continue
            if src.kind == STDIN:
                # spooled, to see whether it is an mbox (bounded memory: large input goes to disk)
                with tempfile.SpooledTemporaryFile(max_size=16 << 20) as spool:
                    shutil.copyfileobj(sys.stdin.buffer, spool, 1 << 20)
                    spool.seek(0)
                    is_mbox = spool.read(5) == b"From " and not args.add
                    spool.seek(0)
                    if is_mbox:
                        for i, (_, msg) in enumerate(iter_mbox(cast(BinaryIO, spool)), 1):
                            yield "-#%d" % i, msg, None
                    else:
                        if args.add:
                            # one message after an envelope line (as a delivery
                            # agent pipes it): verified after that line, written
                            # with it
                            first = spool.readline(_MAX_ENVELOPE)
                            if not (first.endswith(b"\n") and is_envelope_line(first)):
                                spool.seek(0)
                        yield "-", spool, None
                continue
            if src.kind == MBOX:
                paths = [(src.path, os.path.basename(src.path))]
                try:
                    _said(recover_mbox(src.path, args.lock_timeout))  # a rewrite left half done by a killed run
                except (MboxLockedError, JournalError) as exc:
                    error("%s: %s" % (_printable(src.path), exc))
                    continue
            elif src.kind in (MAILDIR, DIRECTORY):
                paths = [(os.path.join(src.path, n), n) for n in list_files(src)]
            else:
                paths = [(src.path, os.path.basename(src.path))]
            targets: Dict[str, Optional[str]] = {}
            if args.add:
                if src.kind == MAILDIR and args.out and several:
                    for sub in ("cur", "new", "tmp"):
                        os.makedirs(os.path.join(args.out, sub), exist_ok=True)
                for path, rel in paths:
                    try:
                        dest = _destination(args, several, path, rel)
                    except UsageError as exc:
                        targets[path] = ""
                        error(str(exc))
                        continue
                    if dest is not None:
                        # two inputs of one name (a/m.eml, b/m.eml) would write one
                        # output, the second over the first (with --force): the
                        # second is refused
                        key = os.path.realpath(dest)
                        if key in outputs:
                            targets[path] = ""
                            error("%s: not written: %s is already the output of %s" % (
                                _printable(path), _printable(dest), _printable(outputs[key])))
                            continue
                        outputs[key] = path
                    targets[path] = dest
                _sweep(os.path.dirname(os.path.abspath(d or p)) for p, d in targets.items() if d != "")
            for path, rel in paths:
                dest = targets.get(path)
                if dest == "":  # (reported above)
                    continue
                # one unreadable file is reported and the others still checked
                stack = contextlib.ExitStack()
                try:
                    # an mbox is read while no fastdkim run rewrites it (its
                    # shared locks; MboxLockedError and JournalError are OSErrors)
                    fh = stack.enter_context(read_mbox(path, args.lock_timeout) if src.kind == MBOX else open(path, "rb"))
                except (MboxLockedError, JournalError) as exc:  # (their messages name the mbox)
                    error(_printable(str(exc)))
                    continue
                except OSError as exc:
                    error(_os_error(exc))
                    continue
                if args.add:  # (what --add may replace in place: this file as it was before it was read)
                    read_as[path] = os.fstat(fh.fileno())
                with stack:
                    if src.kind == MBOX:
                        try:
                            for i, (_, msg) in enumerate(iter_mbox(fh), 1):
                                yield "%s#%d" % (path, i), msg, None
                        except ValueError as exc:
                            error("%s: %s" % (path, exc))
                    else:
                        yield path, fh, dest

    def add_field(name: str, msg: Any, dest: Optional[str], field: str) -> None:
        """Write the message with ``field`` prepended: to standard output, in place, or to ``dest``."""
        try:
            if to_stdout:
                msg.seek(0)
                write_with_authentication_results(sys.stdout.buffer, msg, field, args.ar)
            elif dest is None:
                write_file_with_authentication_results(msg, field, args.ar, name, in_place=True,
                                                       read_as=read_as.pop(name, None))
            else:
                write_file_with_authentication_results(msg, field, args.ar, dest, overwrite=args.force)
        except FileExistsError:
            error("%s exists (use --force to replace it)" % _printable(dest or name))
        except BrokenPipeError:  # standard output (see main())
            raise
        except OSError as exc:
            error("%s: not written: %s" % (_printable(name), _os_error(exc)))
        except DKIMError as exc:
            error("%s: not written: %s" % (_printable(name), exc))

    for name, msg, dest in messages():
        count += 1
        start = msg.tell() if hasattr(msg, "tell") else 0
        results = verifier.verify(msg)
        ok = any(r.status == "pass" for r in results)
        all_pass = all_pass and ok
        dmarc = None
        if args.dmarc:
            from ..dmarc import evaluate

            if hasattr(msg, "seek"):
                msg.seek(start)
            dmarc = evaluate(msg, results, spf_result=args.spf_result, spf_domain=args.spf_domain,
                             keys=verifier.keys)
        chain = None
        if args.arc:
            from ..arc_chain import verify_chain

            if hasattr(msg, "seek"):
                msg.seek(start)
            chain = verify_chain(msg, keys=verifier.keys, min_key_bits=verifier.min_key_bits)
        field = None if args.ar is None else authentication_results(args.ar, results, dmarc=dmarc, arc=chain,
                                                                     width=78)
        if args.add and field is not None:
            add_field(name, msg, dest, field)
            if to_stdout:
                continue
        if args.json:
            doc = {"source": name, "pass": ok, "signatures": [r.as_dict() for r in results]}
            if dmarc is not None:
                doc["dmarc"] = dmarc.as_dict()
            if chain is not None:
                doc["arc"] = chain.as_dict()
            if field is not None:
                doc["authentication_results"] = field
            print(json.dumps(doc))
        elif field is not None and not args.add:
            if several:  # which message each header belongs to
                print("# %s" % _printable(name))
            print(field)
        else:
            shown = _printable(name)
            if not results:
                print("%s: none (no DKIM-Signature)" % shown)
            for r in results:
                print("%s: %s d=%s s=%s a=%s (%s)" % (
                    shown, r.status, _printable(r.domain or "-"), _printable(r.selector or "-"),
                    _printable(r.algorithm or "-"), _printable(r.reason)))
            if dmarc is not None:
                print("%s: dmarc=%s header.from=%s policy=%s (%s)" % (
                    shown, dmarc.status, _printable(dmarc.from_domain or "-"), dmarc.policy or "-",
                    _printable(dmarc.reason)))
            if chain is not None:
                print("%s: arc=%s i=%d (%s)" % (shown, chain.status, chain.instances, _printable(chain.reason)))
        sys.stdout.flush()
    # (an OSError of standard output, a closed one included, is reported by
    # main(), as for every command: the messages not yet checked may fail)
    if io_errors:
        return EXIT_USAGE
    if count == 0:
        print("fastdkim verify: no messages found", file=sys.stderr)
        return EXIT_FAIL
    return EXIT_OK if all_pass else EXIT_FAIL


def _sweep(directories: Iterable[str]) -> None:
    """Remove the temporary files that killed fastdkim runs left where ``--add`` writes in place."""
    from .._owner import sweep_temporaries

    n = sum(sweep_temporaries(d) for d in set(directories))
    if n:
        _said("removed %d temporary file%s left by an interrupted run" % (n, "s" if n > 1 else ""))
