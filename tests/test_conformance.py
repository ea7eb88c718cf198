"""Public DKIM corpora (../shared/conformance): every signature gets its expected result."""
from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

import fastdkim
from fastdkim.errors import TemporaryLookupError

pytestmark = pytest.mark.usefixtures("core")


class CorpusKeys:
    """Keys from dns.json; names in dns_failures.json fail transiently."""

    def __init__(self, root):
        self.records = json.loads((root / "dns.json").read_text())
        self.failures = json.loads((root / "dns_failures.json").read_text())

    def lookup(self, name):
        n = name.lower().rstrip(".") + "."
        if n in self.failures:
            raise TemporaryLookupError("%s: %s" % (n, self.failures[n]))
        v = self.records.get(n)
        return [] if v is None else [v.encode()]


def _entries():
    from conftest import CONFORMANCE

    path = CONFORMANCE / "manifest.json"
    if not path.exists():
        return [pytest.param(None, marks=pytest.mark.skip(reason="conformance corpus absent: %s" % CONFORMANCE))]
    return [pytest.param(e, id=e["file"].split("/", 1)[1]) for e in json.loads(path.read_text())]


def _wire(raw: bytes) -> bytes:
    # The corpus stores some wire messages with LF line endings (see its README).
    return raw if b"\r\n" in raw else raw.replace(b"\n", b"\r\n")


@pytest.mark.parametrize("entry", _entries())
def test_manifest(entry, conformance_dir):
    raw = (conformance_dir / entry["file"]).read_bytes()
    results = fastdkim.verify(_wire(raw), keys=CorpusKeys(conformance_dir), now=entry.get("now"))
    expected = entry["signatures"]
    assert len(results) == len(expected)
    for r, x in zip(results, expected):
        allowed = {x["expected"], *x.get("acceptable", [])}
        if "rsa_sha1" in x["flags"] or "weak_key" in x["flags"]:
            # Policy (README): RFC 8301 refuses rsa-sha1 and RSA keys < 1024 bits.
            allowed = {"permerror"} if x["expected"] != "temperror" else allowed
        if "policy_unsigned_header_added" in x["flags"]:
            # Policy (README): a field RFC 5322 allows once (here From, Subject, Date, To), added
            # above the signed one, is what readers show: not a pass, whatever the hash says.
            allowed = {"fail"}
            assert "fields than the signature covers" in r.reason
        assert r.status in allowed, (r.status, r.reason, x["reason"])
        if x["a"]:
            assert (r.algorithm or "") == x["a"].lower()


@pytest.mark.parametrize("entry", _entries())
def test_manifest_as_file_with_bare_lf(entry, conformance_dir):
    """Read from the file as stored (bare LF treated as CRLF): same results as the wire form."""
    path = conformance_dir / entry["file"]
    keys = CorpusKeys(conformance_dir)
    wire = fastdkim.verify(_wire(path.read_bytes()), keys=keys, now=entry.get("now"))
    with open(path, "rb") as fh:
        stored = fastdkim.verify(fh, keys=keys, now=entry.get("now"))
    assert [(r.status, r.reason) for r in stored] == [(r.status, r.reason) for r in wire]


def _rfc8463(conformance_dir):
    return _wire((conformance_dir / "messages/dkimpy/rfc6376.signed.eml").read_bytes())


def test_rfc8463_appendix_a_both_signatures_pass(conformance_dir):
    results = fastdkim.verify(_rfc8463(conformance_dir), keys=CorpusKeys(conformance_dir))
    assert [(r.algorithm, r.status) for r in results] == [("ed25519-sha256", "pass"), ("rsa-sha256", "pass")]
    assert all(r.domain == "football.example.com" for r in results)
    assert [r.selector for r in results] == ["brisbane", "test"]


def test_rfc8463_ed25519_signs_the_sha256_digest(conformance_dir):
    """RFC 8463 section 3: Ed25519 signs SHA-256(canonical headers), not the data.

    Ed25519 is deterministic, so re-signing the RFC's own hash input with the
    RFC's private key (Appendix A.2) must reproduce its b= exactly.
    """
    import hashlib

    from fastdkim.message import read_message
    from fastdkim.tags import parse_tag_list, strip_fws

    from helpers import canonicalize_header, select_headers, tag_spans

    seed = base64.b64decode("nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=")
    key = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
    pub = base64.b64encode(key.public_key().public_bytes_raw()).decode()
    assert pub == "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
    pm = read_message(_rfc8463(conformance_dir))
    raw = next(r for n, r in pm.fields if n == b"dkim-signature")
    colon = raw.index(b":") + 1
    tags = parse_tag_list(raw[colon:])
    a, b = tag_spans(raw[colon:])["b"]
    own = raw[: colon + a] + raw[colon + b:]
    names = [n.strip().lower() for n in strip_fws(tags["h"]).split(b":")]
    relaxed = tags["c"].split(b"/")[0] == b"relaxed"
    data = b"".join(canonicalize_header(f, relaxed) for f in select_headers(pm.fields, names))
    data += canonicalize_header(own, relaxed)[:-2]
    expected = base64.b64decode(strip_fws(tags["b"]))
    assert key.sign(hashlib.sha256(data).digest()) == expected
    assert key.sign(data) != expected
