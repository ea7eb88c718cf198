"""Where the peers deviate from RFC 6376, as observed with the installed versions.

Each deviation is asserted as the peer's documented behaviour; fastdkim is
always held to the RFC result.  None of them is a fastdkim bug: in each case
the RFC text and at least two other implementations agree with fastdkim.

D1 OpenDKIM (libopendkim 2.11.0~beta2, Debian 12), relaxed body
   canonicalization of a body that does not end in CRLF.
   RFC 6376 section 3.4.4 canonicalizes such a body like any other (the last
   line is a line; fastdkim, dkimpy and Mail::DKIM agree on the hash).
   libopendkim refuses both ways: signing fails with DKIM_STAT_SYNTAX "CRLF
   at end of body missing", and verifying reports a syntax error, which the
   harness maps to ``permerror``.  With simple body canonicalization it
   follows the RFC.

D2 OpenDKIM (same version), ed25519-sha256 with simple *header*
   canonicalization (c=simple/simple and c=simple/relaxed), some messages.
   When the line holding h= leaves room for it, libopendkim computes the
   signature over the field with `` b=`` at the end of that line, but emits
   the field with ``b=`` folded onto a line of its own.  Simple header
   canonicalization keeps folding, so the header hash input differs from the
   one the signature was made over (RFC 6376 sections 3.4.1 and 3.7) and the
   signature verifies nowhere, not in OpenDKIM itself either.  Whether it
   happens depends on the length of the line holding h= (with the header
   fields the harness signs, every message here is affected; with longer h=
   lists, as when the library is left to sign every field, some are
   spared).  With `` b=``
   moved back onto the h= line the same signature verifies everywhere
   (``test_opendkim_ed25519_simple_header_folding`` checks both).  Its
   rsa-sha256 signatures, its ed25519 signatures with relaxed header
   canonicalization, and its verification of everybody's ed25519
   simple-header signatures are all fine.

D3 Mail::DKIM (1.20230212, Debian 12), simple body canonicalization of a
   body that does not end in CRLF.
   RFC 6376 section 3.4.3: "If there is no body or no trailing CRLF on the
   message body, a CRLF is added."  Mail::DKIM hashes the body without
   adding it, so its bh= differs from everybody else's (fastdkim, dkimpy and
   OpenDKIM agree with the RFC), both when it signs (others report ``fail``)
   and when it verifies (it reports ``fail``: "body has been altered").  Its
   own signatures verify with itself.  With relaxed body canonicalization it
   adds the CRLF like everybody else.

D4 Mail::DKIM (same version) has no ed25519-sha256 (added in later
   releases): it cannot sign with it, and reports an ed25519 signature as
   ``invalid (unsupported algorithm ed25519-sha256)`` (``permerror``).  The
   matrix counts only algorithms both sides support; ``peers.find_mail_dkim``
   probes for ed25519 support at run time, so a newer Mail::DKIM is tested
   with it.

D5 dkimpy (1.1.8) has no temperror/permerror distinction: ``verify()``
   returns ``False`` for a failed signature, a missing, revoked or
   malformed key and a DNS failure alike (the tests report all of them as
   ``fail``).  Its DNS plug takes the first TXT record at the name, so two
   DKIM records are not an error to it (RFC 6376 section 3.6.2.2 leaves the
   result undefined; fastdkim reports ``permerror``), and it treats SERVFAIL
   as "no key".  When h= names From it also hashes one more From instance
   than listed (its bug#644046 workaround), so a message with an extra From
   above a signature that does not oversign From fails with dkimpy although
   the RFC's bottom-up selection makes it pass.

D6 Mail::DKIM (1.20230212) reports DNS failures, SERVFAIL and timeouts alike,
   as ``invalid`` ("public key: DNS error: ..."), i.e. ``permerror``, where
   RFC 6376 section 6.1.2 wants TEMPFAIL (``temperror``) for a key that could
   not be fetched for a temporary reason.  Of two key records at a name it
   uses the first (like dkimpy; see D5).
"""
from __future__ import annotations

from typing import FrozenSet, Optional, Tuple

from .peers import ED25519

NO_FINAL_CRLF = "no-final-crlf"

Expectation = Tuple[FrozenSet[str], str]
PASS: Expectation = (frozenset({"pass"}), "")


def signing_error(signer: str, message: str, algorithm: str, canon: str) -> Optional[str]:
    """The error text a signer is documented to fail with, or ``None``."""
    hc, bc = canon.split("/")
    if signer == "opendkim" and message == NO_FINAL_CRLF and bc == "relaxed":
        return "CRLF at end of body missing"  # D1
    return None


def expected(signer: str, verifier: str, message: str, algorithm: str, canon: str) -> Expectation:
    """Acceptable outcomes of ``verifier`` on a signature ``signer`` made,
    and the deviation that explains anything but ``pass``."""
    hc, bc = canon.split("/")
    if signing_error(signer, message, algorithm, canon):
        return frozenset({"error"}), "D1: OpenDKIM cannot sign it"
    if signer == "opendkim" and algorithm == ED25519 and hc == "simple":
        # pinned down by test_opendkim_ed25519_simple_header_folding
        return frozenset({"pass", "fail"}), "D2: OpenDKIM folds b= after signing"
    if verifier == "opendkim" and message == NO_FINAL_CRLF and bc == "relaxed":
        return frozenset({"permerror"}), "D1: OpenDKIM refuses a relaxed body without final CRLF"
    if message == NO_FINAL_CRLF and bc == "simple" and (signer == "mail-dkim") != (verifier == "mail-dkim"):
        return frozenset({"fail"}), "D3: Mail::DKIM adds no CRLF to a simple body that lacks one"
    return PASS


# -- ARC (RFC 8617): tests/interop/test_arc_interop.py ---------------------------------------------
#
# fastdkim is held to RFC 8617; a peer's chain validation result must equal
# fastdkim's, except where a deviation below says otherwise.  Observed with
# dkimpy 1.1.8, Mail::DKIM 1.20230212 (Debian 12) and mailauth 4.13.
#
# A1 dkimpy's arc_verify() returns no result at all (cv ``None``, "ARC-Seal[2]
#    reported failure, the chain is terminated") for a chain whose most recent
#    ARC-Seal says cv=fail; RFC 8617 section 5.2 step 2 makes it ``fail``
#    (fastdkim, Mail::DKIM and mailauth say ``fail``).  The open ARC test
#    suite expects the same empty result (tests/test_arc_suite.py,
#    RFC_DECIDES).  The harness reports dkimpy's ``None`` as ``no-result``.
#
# A2 Mail::DKIM verifies a cv=fail ARC-Seal over every set below it, where
#    RFC 8617 section 5.1.2 has such a seal cover its own set alone, so it
#    reports the seal itself as failing ("as.2...=fail (message has been
#    altered)").  Its verdict on the chain is ``fail`` all the same, as the
#    RFC's, so no result differs.
#
# A3 ed25519-sha256 ARC sets (RFC 8617 takes DKIM's algorithms; RFC 8463 adds
#    Ed25519 signing the SHA-256 of the data): fastdkim seals and validates
#    them; no peer does.  dkimpy's arc_verify() says "unknown signature
#    algorithm" and its arc_sign() loads RSA keys only; Mail::DKIM 1.20230212
#    has no ed25519 (D4); mailauth's ARC signer signs the SHA-256 of the data
#    as RFC 8463 has it, but its ARC-Seal check verifies Ed25519 over the data
#    itself, so it fails every Ed25519 seal (its own ones too), and its sealer
#    stops with an error when given an Ed25519 key.  All three report
#    ``fail`` for an Ed25519 chain.

NO_RESULT = "no-result"


def arc_expected(sealer: str, verifier: str, case: str, ours: str) -> Expectation:
    """Acceptable ARC results of ``verifier`` on the chain ``case`` that
    ``sealer`` built, fastdkim's result being ``ours``, and the deviation
    that explains anything else."""
    if case.startswith("ed25519") and verifier != "fastdkim":
        return frozenset({"fail"}), "A3: %s does not validate Ed25519 ARC sets" % verifier
    if verifier == "dkimpy" and case == "2-hops-cv-fail":
        return frozenset({NO_RESULT}), "A1: dkimpy gives no result for a chain ending in cv=fail"
    return frozenset({ours}), ""
