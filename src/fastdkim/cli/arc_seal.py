"""``fastdkim arc-seal``: add the next ARC set (RFC 8617) to a message."""
from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from typing import BinaryIO, List, Optional

from .._files import atomic_write
from ..errors import KeyFormatError, OptionError, SigningError, TemporaryLookupError, UnsignableMessageError
from ..keys import load_private_key_with
from ._common import (
    EXIT_FAIL,
    EXIT_OK,
    EXIT_TEMPFAIL,
    FORMATTER,
    UsageError,
    authserv_id,
    check_canonicalization,
    check_header_names,
    domain_and_selector,
    read_password,
    seconds,
)
from .verify import key_source


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    a = sub.add_parser("arc-seal", help="add the next ARC set to a message (RFC 8617)", formatter_class=FORMATTER,
                       description="Validate the message's ARC chain and DKIM signatures, then prepend the next ARC "
                                   "set (ARC-Seal, ARC-Message-Signature, ARC-Authentication-Results) with the cv= "
                                   "the chain gave.  A chain whose last seal says cv=fail, or that has 50 sets, "
                                   "gets nothing more: the message is written unchanged and the exit status is 1.",
                       epilog="examples:\n"
                              "  fastdkim arc-seal --domain lists.example.org --selector arc --key arc.pem "
                              "--authserv-id lists.example.org msg.eml > sealed.eml\n"
                              "  fastdkim arc-seal --domain lists.example.org --selector arc --key arc.pem "
                              "--authserv-id lists.example.org --remote-ip 192.0.2.1 < msg.eml\n"
                              "  fastdkim arc-seal --domain lists.example.org --selector arc --key arc.pem "
                              "--authserv-id lists.example.org --results 'spf=pass smtp.mailfrom=example.com' "
                              "--results 'dkim=pass header.d=example.com' --out forwarded.eml msg.eml")
    a.add_argument("input", nargs="?", default="-", metavar="INPUT", help="message file; '-' or none: standard input")
    a.add_argument("--domain", required=True, help="sealing domain (d=)")
    a.add_argument("--selector", required=True, help="selector (s=) of the sealing key")
    a.add_argument("--key", required=True, help="private key file (PEM or DER)")
    a.add_argument("--password-file", metavar="FILE", help="file holding the password of an encrypted --key")
    a.add_argument("--authserv-id", required=True, type=authserv_id, metavar="SERVID",
                   help="authserv-id written in ARC-Authentication-Results")
    a.add_argument("--results", action="append", metavar="RESINFO",
                   help="a result to record (e.g. 'spf=pass smtp.mailfrom=example.com'); repeatable; default: "
                        "the DKIM and ARC results of the message now")
    a.add_argument("--remote-ip", metavar="IP",
                   help="the address the message came from, written as smtp.remote-ip of the arc= result that "
                        "fastdkim records when --results is not given (with --results, write it into them)")
    a.add_argument("--headers", metavar="NAMES", help="header fields the ARC-Message-Signature signs, colon-separated")
    a.add_argument("--canonicalization", default="relaxed/relaxed", help="of the ARC-Message-Signature")
    a.add_argument("--out", metavar="PATH", help="write the sealed message here (default: standard output)")
    a.add_argument("--force", action="store_true", help="with --out: replace an existing file")
    a.add_argument("--dns", metavar="IP[:PORT]", help="resolver to ask for keys")
    a.add_argument("--keys", metavar="FILE", help="serve keys from a zone file instead of DNS")
    a.add_argument("--timeout", type=seconds("must be a positive number of seconds", zero=False),
                   default=5.0, help="seconds per DNS lookup (default 5)")
    a.set_defaults(func=run)


def _read(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    with open(path, "rb") as fh:
        return fh.read()


def run(args: argparse.Namespace) -> int:
    from ..arc import ARCSealer  # (loaded for this command only)

    domain, selector = domain_and_selector(args)
    check_canonicalization(args.canonicalization)
    if args.headers is not None:
        check_header_names(args.headers)
    if args.remote_ip is not None:
        if args.results:
            raise UsageError("--remote-ip goes without --results: with --results, write "
                             "smtp.remote-ip=%s into them yourself" % args.remote_ip)
        try:
            ipaddress.ip_address(args.remote_ip)
        except ValueError:
            raise UsageError("--remote-ip: %r is not an IP address" % args.remote_ip)
    password: Optional[bytes] = read_password(args.password_file) if args.password_file else None
    try:
        key = load_private_key_with(args.key, password)
    except KeyFormatError as exc:
        raise UsageError("--key %s: %s" % (args.key, exc))
    try:
        sealer = ARCSealer(domain, selector, key, authserv_id=args.authserv_id, keys=key_source(args),
                           headers=args.headers, canonicalization=args.canonicalization)
    except KeyFormatError as exc:
        raise UsageError("--key %s: %s" % (args.key, exc))
    except OptionError as exc:
        raise UsageError(str(exc))
    except SigningError as exc:  # (the options were checked above: fields an ARC-Message-Signature cannot sign)
        raise UsageError("--headers: %s" % exc)
    message = _read(args.input)
    results: Optional[List[str]] = args.results
    try:
        fields = sealer.seal(message, results=results, remote_ip=args.remote_ip)
    except UnsignableMessageError as exc:
        print("fastdkim arc-seal: %s: not sealed: %s" % (args.input, exc), file=sys.stderr)
        fields = []
        status = EXIT_FAIL
    except TemporaryLookupError as exc:  # (try again later: the message is written out unsealed)
        print("fastdkim arc-seal: %s: not sealed: %s" % (args.input, exc), file=sys.stderr)
        fields = []
        status = EXIT_TEMPFAIL
    except OptionError as exc:  # (--remote-ip was checked above)
        raise UsageError("--results: %s" % exc)
    else:
        status = EXIT_OK if fields else EXIT_FAIL
        if not fields:
            chain = sealer.last_result
            print("fastdkim arc-seal: %s: not sealed: %s" % (
                args.input, chain.reason if chain is not None else "nothing to seal"), file=sys.stderr)
    sealed = b"".join(fields) + message
    if args.out:
        if os.path.exists(args.out) and not args.force:
            raise UsageError("%s exists: not overwriting it (use --force to replace it)" % args.out)

        def write(out: BinaryIO) -> None:
            out.write(sealed)

        atomic_write(args.out, write, overwrite=args.force)
    else:
        sys.stdout.buffer.write(sealed)
        sys.stdout.buffer.flush()
    return status
