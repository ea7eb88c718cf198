"""Checking a published DKIM key record: what a domain owner should fix.

:func:`check_record` takes the TXT records found at
``selector._domainkey.domain`` (however they were fetched) and returns
findings, each ``OK``, ``WARNING`` or ``ERROR``::

    for level, message in check_record(name, [b"v=DKIM1; k=ed25519; p=..."]):
        print("%s: %s" % (level, message))

It reports several DKIM records at one name, records pasted with their
zone-file quotes, syntax errors, revoked keys, RSA keys below the RFC 8301
minimum or recommendation, the testing flag ``t=y``, DNS answers too large
for UDP and, given the private key, whether it matches.
"""
from __future__ import annotations

from typing import List, NamedTuple, Optional, Sequence, Tuple, Union

from .errors import KeyRecordError
from .keys import MIN_RSA_BITS, RECOMMENDED_RSA_BITS, KeyRecord, PrivateKey, counts_as_key_record, parse_key_record

__all__ = ["Finding", "check_record", "OK", "WARNING", "ERROR", "SAFE_UDP_ANSWER", "PLAIN_UDP_ANSWER"]

OK, WARNING, ERROR = "OK", "WARNING", "ERROR"

#: The largest DNS answer that is safe over UDP (DNS Flag Day 2020); larger
#: answers are truncated and resolvers retry over TCP.
SAFE_UDP_ANSWER = 1232
#: The largest DNS answer over UDP without EDNS0 (RFC 1035).
PLAIN_UDP_ANSWER = 512


class Finding(NamedTuple):
    """One finding: ``level`` (``OK``, ``WARNING`` or ``ERROR``) and ``message``."""

    level: str
    message: str


def _is_dkim(record: bytes) -> bool:
    return record.lstrip().startswith(b"v=DKIM1") or b"p=" in record


def check_record(
    name: str,
    records: Sequence[Union[bytes, str]],
    *,
    strings: Optional[Sequence[int]] = None,
    answer_size: int = 0,
    private_key: Optional[PrivateKey] = None,
    key_name: str = "",
) -> List[Finding]:
    """Check the TXT records published at ``name`` as a DKIM key record.

    :param name: the record's name (``selector._domainkey.domain``), for the
        findings' wording.
    :param records: every TXT record at ``name``, each with its
        character-strings joined.
    :param strings: how many character-strings each record was served as
        (``None``: unknown, as for a zone file).
    :param answer_size: the size of the DNS answer in bytes (0: unknown).
    :param private_key: a private key that should match the record.
    :param key_name: how to name ``private_key`` in the findings (its file).
    :returns: the findings, in the order they were made; a record is usable
        as published when none is an ``ERROR``.
    """
    found: List[Finding] = []
    joined = [r.encode("utf-8", "surrogateescape") if isinstance(r, str) else bytes(r) for r in records]
    parsed: List[Tuple[bytes, Union[KeyRecord, KeyRecordError]]] = []
    for j in joined:
        if not _is_dkim(j):
            continue
        try:
            parsed.append((j, parse_key_record(j, min_rsa_bits=1)))
        except KeyRecordError as exc:
            parsed.append((j, exc))
    # what verifiers count as key records (not one they ignore: another v=,
    # s= without email, a broken record that does not say v=DKIM1)
    dkim = [(j, r) for j, r in parsed if counts_as_key_record(j, r)]
    for j, r in parsed:
        if isinstance(r, KeyRecordError) and not counts_as_key_record(j, r):
            found.append(Finding(WARNING if dkim else ERROR, "%s: verifiers ignore this record" % r))
    if len(dkim) > 1:
        found.append(Finding(ERROR, "%d DKIM records at %s: verifiers reject the key (publish exactly one)"
                             % (len(dkim), name)))
    if not dkim:
        found.append(Finding(ERROR, "no DKIM record among the TXT records"))
    for n in strings or ():
        if n > 1:
            found.append(Finding(OK, "served as %d character-strings, which verifiers join" % n))
    key = "the private key %s" % key_name if key_name else "the private key"
    for j, rec in dkim:
        if b'"' in j or b"\\" in j:
            found.append(Finding(ERROR, "record contains quote or backslash characters: the strings were pasted "
                                        "with their zone-file quotes and are not joined"))
        if isinstance(rec, KeyRecordError):
            found.append(Finding(ERROR, str(rec)))
            continue
        if rec.hashes is not None and "sha256" not in rec.hashes:
            found.append(Finding(ERROR, "h=%s does not allow sha256: verifiers fail every signature with this key "
                                        "(RFC 8301: sha256 only)" % ":".join(sorted(rec.hashes))))
        bits = rec.key_bits
        if rec.key_type == "rsa":
            if bits < MIN_RSA_BITS:
                found.append(Finding(ERROR, "RSA key of %d bits: verifiers must reject it (RFC 8301)" % bits))
            elif bits < RECOMMENDED_RSA_BITS:
                found.append(Finding(WARNING, "RSA key of %d bits: RFC 8301 recommends %d or more"
                                     % (bits, RECOMMENDED_RSA_BITS)))
            else:
                found.append(Finding(OK, "RSA key of %d bits" % bits))
        else:
            found.append(Finding(OK, "Ed25519 key (RFC 8463)"))
        if rec.testing:
            found.append(Finding(WARNING, "t=y: the domain is testing DKIM; remove it once signing works"))
        if private_key is not None:
            if rec.matches(private_key):
                found.append(Finding(OK, "%s matches the published record" % key))
            else:
                found.append(Finding(ERROR, "%s does NOT match the published record" % key))
    if answer_size > SAFE_UDP_ANSWER:
        found.append(Finding(WARNING, "the DNS answer is %d bytes: larger than a safe UDP answer (%d); "
                                      "resolvers must retry over TCP" % (answer_size, SAFE_UDP_ANSWER)))
    elif answer_size > PLAIN_UDP_ANSWER:
        found.append(Finding(WARNING, "the DNS answer is %d bytes: over %d, it needs EDNS0 (or TCP)"
                                      % (answer_size, PLAIN_UDP_ANSWER)))
    return found
