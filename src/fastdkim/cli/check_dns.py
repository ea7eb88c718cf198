"""``fastdkim check-dns``: look a key record up and report what to fix."""
from __future__ import annotations

import argparse
from typing import List, Optional, Tuple

from ..record_check import ERROR, check_record
from ._common import EXIT_FAIL, EXIT_OK, FORMATTER, UsageError, domain_and_selector, read_password, seconds


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    c = sub.add_parser("check-dns", help="check a published key record", formatter_class=FORMATTER,
                       description="Look up SELECTOR._domainkey.DOMAIN, parse it and report problems: syntax, "
                                   "revoked key, testing flag, short key, several records, strings pasted with "
                                   "quotes, an answer too large for UDP; with --key, whether the private key matches "
                                   "and whether its file is private (as opendkim-testkey checks it).",
                       epilog="examples:\n  fastdkim check-dns --domain example.com --selector s2026\n"
                              "  fastdkim check-dns --domain example.com --selector s2026 --key s2026.pem --dns 127.0.0.1:5353")
    c.add_argument("--domain", required=True)
    c.add_argument("--selector", required=True)
    c.add_argument("--key", help="private key file to compare with the record")
    c.add_argument("--password-file", metavar="FILE", help="file holding the password of an encrypted --key")
    c.add_argument("--refuse-insecure-keys", action="store_true",
                   help="refuse a --key file readable or writable by group or others, or owned by another user "
                        "(default: reported as a problem)")
    c.add_argument("--dns", metavar="IP[:PORT]", help="resolver to ask")
    c.add_argument("--keys", metavar="FILE", help="check the record in a zone file instead of DNS (offline)")
    c.add_argument("--timeout", type=seconds("must be a positive number of seconds", zero=False), default=5.0,
                   help="DNS timeout in seconds (default 5)")
    c.set_defaults(func=run)


def _from_zone_file(name: str, path: str) -> Optional[List[bytes]]:
    """The TXT records at ``name`` in the zone file ``path``, each shown; ``None`` if there are none."""
    from ..errors import KeyLookupError
    from ..keysources import zone_file_key_source

    print("checking %s TXT in %s" % (name, path))
    try:
        joined = zone_file_key_source(path).lookup(name)
    except KeyLookupError as exc:
        raise UsageError("--keys: %s" % exc)
    if not joined:
        print("ERROR: %s has no TXT record in %s" % (name, path))
        return None
    for j in joined:
        print("record: %s" % j.decode("ascii", "replace"))
    return joined


def _from_dns(name: str, args: argparse.Namespace) -> Optional[Tuple[List[bytes], List[int], int]]:
    """The TXT records at ``name``, each shown, with how many character-strings
    each was served as and the size of the answer; ``None`` (the problem shown)
    if the lookup failed."""
    import dns.exception
    import dns.name
    import dns.resolver

    from ..keysources import DNSKeySource

    try:
        src = DNSKeySource(nameservers=[args.dns] if args.dns else None, timeout=args.timeout, cache_size=0)
    except ValueError as exc:
        raise UsageError("--dns: %s" % exc)
    resolver = src.resolver
    print("checking %s TXT" % name)
    if resolver is None:
        raise UsageError("no DNS resolver configured: use --dns SERVER")
    try:
        answer = resolver.resolve(dns.name.from_text(name), "TXT", raise_on_no_answer=False, search=False)
    except dns.resolver.NXDOMAIN:
        print("ERROR: %s does not exist (NXDOMAIN): the record is not published" % name)
        return None
    except (dns.exception.Timeout, dns.resolver.NoNameservers) as exc:
        print("ERROR: DNS lookup failed (temporary): %s" % exc)
        return None
    except dns.exception.DNSException as exc:
        print("ERROR: DNS lookup failed: %s" % exc)
        return None
    if answer.rrset is None:
        print("ERROR: %s exists but has no TXT record" % name)
        return None
    rdatas = list(answer.rrset)
    joined = [b"".join(r.strings) for r in rdatas]
    strings = [len(r.strings) for r in rdatas]
    for j, n in zip(joined, strings):
        print("record (%d character-string%s, TTL %d): %s" % (
            n, "" if n == 1 else "s", answer.rrset.ttl, j.decode("ascii", "replace")))
    return joined, strings, len(answer.response.to_wire())


def run(args: argparse.Namespace) -> int:
    from ..errors import KeyFormatError
    from ..key_hygiene import key_file_problems
    from ..keys import load_private_key_with, record_name

    domain, selector = domain_and_selector(args)
    priv = None
    insecure: List[str] = []
    if args.key:
        password = read_password(args.password_file) if args.password_file else None
        insecure = key_file_problems(args.key)
        if insecure and getattr(args, "refuse_insecure_keys", False):
            raise UsageError("private key not secure: %s" % "; ".join(insecure))
        try:
            priv = load_private_key_with(args.key, password)
        except KeyFormatError as exc:
            raise UsageError(str(exc))
    name = record_name(selector, domain)
    if args.keys:
        if args.dns:
            raise UsageError("use either --keys FILE or --dns SERVER")
        joined = _from_zone_file(name, args.keys)
        if joined is None:
            return EXIT_FAIL
        found = check_record(name, joined, private_key=priv, key_name=args.key or "")
    else:
        answer = _from_dns(name, args)
        if answer is None:
            return EXIT_FAIL
        joined, strings, size = answer
        found = check_record(name, joined, strings=strings, answer_size=size, private_key=priv,
                             key_name=args.key or "")
    for level, msg in found:
        print("%s: %s" % (level, msg))
    for problem in insecure:
        print("%s: private key not secure: %s" % (ERROR, problem))
    errors = sum(1 for f in found if f.level == ERROR) + len(insecure)
    print("%s" % ("no problems found" if not errors else "%d problem%s found" % (errors, "" if errors == 1 else "s")))
    return EXIT_OK if not errors else EXIT_FAIL
