"""``fastdkim keygen``: a key pair and the DNS record to publish."""
from __future__ import annotations

import argparse
import json
import os
from typing import BinaryIO

from .._files import atomic_write
from ..errors import KeyFormatError
from ..keys import (
    RECOMMENDED_RSA_BITS,
    generate_private_key,
    public_key_record,
    record_name,
    txt_strings,
    write_private_key,
    zone_file_line,
)
from ._common import EXIT_OK, FORMATTER, UsageError, domain_and_selector, int_range

#: RSA key sizes offered: larger keys make records that do not fit DNS well.
RSA_SIZES = (RECOMMENDED_RSA_BITS, 3072, 4096)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    k = sub.add_parser("keygen", help="create a key pair and the DNS record to publish", formatter_class=FORMATTER,
                       description="Create a private key (written with mode 0600, never over an existing file unless "
                                   "--force) and print the TXT record to publish at SELECTOR._domainkey.DOMAIN as a "
                                   "plain value, a zone-file line and JSON.",
                       epilog="examples:\n  fastdkim keygen --domain example.com --selector s2026\n"
                              "  fastdkim keygen --domain example.com --selector ed2026 --algorithm ed25519 --out /etc/dkim\n"
                              "  fastdkim keygen --domain example.com --selector big --bits 4096 --format zone\n"
                              "  fastdkim keygen --domain example.com --selector ed --algorithm ed25519 --key-format dkimpy\n"
                              "  fastdkim keygen --domain example.com --selector s1 --testing --service-type email "
                              "--hash sha256 --subdomains no")
    k.add_argument("--domain", required=True, help="signing domain (d=)")
    k.add_argument("--selector", required=True, help="selector (s=)")
    k.add_argument("--algorithm", choices=["rsa", "ed25519"], default="rsa", help="key type (default rsa)")
    k.add_argument("--bits", type=int, help="RSA key size: 2048 (default), 3072 or 4096")
    k.add_argument("--out", default=".", help="directory for the key files (default: current directory)")
    k.add_argument("--ttl", type=int_range(0, 2147483647, "must be from 0 to 2147483647 seconds (RFC 2181)"),
                   default=3600, help="TTL in the zone-file line (default 3600)")
    k.add_argument("--format", choices=["all", "value", "zone", "json"], default="all", help="what to print")
    k.add_argument("--force", action="store_true", help="replace existing key files")
    k.add_argument("--key-format", choices=["pem", "dkimpy"], default="pem",
                   help="private key file: pem (PKCS#8, read by fastdkim, OpenDKIM, OpenSSL) or dkimpy (an Ed25519 "
                        "key as the base64 of its raw seed, which dkimpy's dkimsign needs; RSA as PKCS#1 PEM)")
    k.add_argument("--testing", action="store_true", help="publish t=y: verifiers treat failures as if unsigned")
    k.add_argument("--service-type", choices=["email", "*"], help="publish s=: the services the key is for")
    k.add_argument("--hash", choices=["sha256"], help="publish h=: the hash algorithms the key may sign with")
    k.add_argument("--subdomains", choices=["yes", "no"], default="yes",
                   help="no: publish t=s, refusing i= identities in subdomains of --domain (default yes)")
    k.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    domain, selector = domain_and_selector(args)
    alg = args.algorithm
    bits = args.bits if args.bits is not None else RECOMMENDED_RSA_BITS
    if alg == "ed25519" and args.bits is not None:
        raise UsageError("--bits applies to RSA keys only")
    if alg == "rsa" and bits < RECOMMENDED_RSA_BITS:
        raise UsageError("--bits %d: keygen makes RSA keys of %d bits or more (RFC 8301 recommends them; "
                         "verifiers accept 1024, and Signer still signs with an existing 1024-bit key)" % (
                             bits, RECOMMENDED_RSA_BITS))
    if alg == "rsa" and bits not in RSA_SIZES:
        raise UsageError("--bits %d: use %s or %d (larger records do not fit DNS well)" % (
            bits, ", ".join(map(str, RSA_SIZES[:-1])), RSA_SIZES[-1]))
    try:
        key = generate_private_key(alg, bits)
    except KeyFormatError as exc:
        raise UsageError(str(exc))
    value = public_key_record(key, testing=args.testing, strict=args.subdomains == "no",
                              hashes=[args.hash] if args.hash else (),
                              service_types=[args.service_type] if args.service_type else ())
    name = record_name(selector, domain)
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise UsageError("--out %s is not a directory" % args.out)
    os.makedirs(args.out, exist_ok=True)
    key_path = os.path.join(args.out, name + (".pem" if args.key_format == "pem" else ".key"))
    txt_path = os.path.join(args.out, name + ".txt")
    if not args.force:
        for p in (key_path, txt_path):
            if os.path.exists(p):
                raise UsageError("%s exists: not overwriting it (use --force to replace it)" % p)
    zone = zone_file_line(selector, domain, value, args.ttl)

    def write_zone_line(out: BinaryIO) -> None:
        out.write((zone + "\n").encode("ascii"))

    try:
        write_private_key(key_path, key, force=args.force, form=args.key_format)
        atomic_write(txt_path, write_zone_line, overwrite=args.force)
    except FileExistsError as exc:
        raise UsageError("%s: not overwriting it (use --force to replace it)" % exc)
    record = {"name": name + ".", "type": "TXT", "ttl": args.ttl, "value": value, "strings": txt_strings(value)}
    if args.format == "json":
        print(json.dumps(dict(record, private_key=os.path.abspath(key_path)), indent=2))
    elif args.format == "value":
        print(value)
    elif args.format == "zone":
        print(zone)
    else:
        kind = "Ed25519" if alg == "ed25519" else "RSA-%d" % bits
        print("private key (%s%s, mode 0600): %s" % (kind, ", dkimpy's form" if args.key_format == "dkimpy" else "",
                                                     key_path))
        print("zone-file line:                %s" % txt_path)
        print()
        print("Publish this TXT record at %s:" % name)
        print()
        print("  value (for web DNS consoles):")
        print("    " + value)
        print()
        print("  zone file:")
        print("    " + zone)
        print()
        print("  JSON:")
        print("    " + json.dumps(record))
    return EXIT_OK
