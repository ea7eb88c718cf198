"""Benchmark inputs and keys: the workloads of ``run.py`` and ``test_bench.py``.

Every message and body comes from :mod:`fastdkim.mailgen` (the project's one
synthetic-mail generator), with fixed seeds: the same bytes on every machine
and every run.  Bodies are in wire form (CRLF line endings) and end in CRLF;
the body kinds (``plain``, ``html``, ``base64``, ``mixed``, ``whitespace``)
are described there, except ``sloppy``, made here from ``plain``: text as
careless editors leave it, with a double space or a tab after about one word
in eight and a trailing space or tab on about one line in ten (relaxed
canonicalization changes it every few dozen octets).  Keys are generated per
run.
"""
from __future__ import annotations

import base64
import functools
import random
import re
from dataclasses import dataclass
import time
from typing import Any, Callable, Dict, List, Tuple

from fastdkim import mailgen
from fastdkim._mailbodies import _fill, _split_blocks

KB = 1000
MB = 1000 * 1000

DOMAIN = "example.com"
SELECTORS = {"rsa-sha256": "rsa2026", "ed25519-sha256": "ed2026"}
ALGORITHMS = ("rsa-sha256", "ed25519-sha256")
CANONICALIZATIONS = ("relaxed/relaxed", "simple/simple", "relaxed/simple", "simple/relaxed")
BODY_KINDS = mailgen.BODY_KINDS + ("sloppy",)
SLOPPY_POOL = 400 * KB


def size_label(size: int) -> str:
    if size >= MB and size % MB == 0:
        return "%d MB" % (size // MB)
    if size >= KB and size % KB == 0:
        return "%d KB" % (size // KB)
    return "%d B" % size


def body(kind: str, size: int) -> bytes:
    """A body of ``kind`` of about ``size`` bytes (within a line of it)."""
    if kind == "sloppy":
        return _sloppy_body(size)
    return mailgen.body(kind, size)


def _sloppy_text(text: bytes, seed: int) -> bytes:
    """``text`` (CRLF lines of words) with a double space or a tab after about one
    word in eight and a trailing space or tab on about one line in ten."""
    rnd = random.Random(seed)
    lines: List[bytes] = []
    for line in text.split(b"\r\n"):
        if line:
            line = re.sub(b" ", lambda m: rnd.choice((b"  ", b"\t")) if rnd.random() < 0.125 else b" ", line)
            if rnd.random() < 0.05:  # with the plain text's own: about one line in ten
                line += rnd.choice((b" ", b"\t"))
        lines.append(line)
    return b"\r\n".join(lines)


@functools.lru_cache(maxsize=None)
def _sloppy_pool() -> Tuple[bytes, ...]:
    """Blocks of whole lines (paragraphs, each ending in an empty line) of sloppy text."""
    return tuple(_split_blocks(_sloppy_text(mailgen.body("plain", SLOPPY_POOL), seed=4871)))


def _sloppy_body(size: int) -> bytes:
    """About ``size`` bytes of sloppy text: pool blocks in a seeded order, cut at a line end."""
    return _fill(_sloppy_pool(), size, size)


def small_message(total: int = 3 * KB, headers: int = 10) -> bytes:
    """A plain-text message of ``total`` bytes (header block + body)."""
    return mailgen.message(total, headers=headers, seed=7, total=True)


def header_message(headers: int, body_size: int = 1 * KB) -> bytes:
    """A message with ``headers`` header fields and a short plain body."""
    return mailgen.message(body_size, headers=headers, seed=8, header_seed=5322 + headers)


def big_message(kind: str, size: int) -> Tuple[bytes, bytes]:
    """(message, its body): a 10-field header block over ``body(kind, size)``."""
    b = body(kind, size)
    return mailgen.assemble(mailgen.header_fields(10, kind), b), b


def raw_verify_of(verifier: Any, signed: bytes, public_key: Any) -> Callable[[], Any]:
    """The raw Ed25519 verify of exactly what ``verifier`` verifies in
    ``signed`` (a message with one Ed25519 DKIM-Signature it takes in its
    lane): the field's signature over the SHA-256 of its header hash input.
    Ed25519 verification time depends on the signature and the digest (by up
    to 4% between random pairs on the benchmark machine), so a raw baseline
    over other inputs would move each run's ratio by that much.

    :raises SystemExit: the message is not one the lane takes, or the
        signature does not verify.
    """
    from fastdkim import _core

    lane, _ = verifier._quick_start(signed, None, time.time)
    if lane is None:
        raise SystemExit("the benchmark's message does not take the verification lane")
    index, body, [(pos, tags, unsigned, b, bh, timestamp, static)] = lane
    relaxed_h, relaxed_b, names, signs_dkim = static[4], static[5], static[8], static[12]
    digest = _core.core.lane_end(index, body, relaxed_b, static[2], bh, names, unsigned, relaxed_h,
                                 pos if signs_dkim else -1)
    if digest is None:
        raise SystemExit("the benchmark's message has a body hash mismatch")
    public_key.verify(b, digest)  # (raises InvalidSignature if these are not the signed inputs)
    return lambda: public_key.verify(b, digest)


# -- keys ------------------------------------------------------------------------------


@dataclass
class KeySet:
    """One signing key per algorithm, with what every implementation needs of it."""

    private: Dict[str, object]  # algorithm -> cryptography private key
    pem: Dict[str, bytes]  # algorithm -> PEM (RSA: PKCS#1, Ed25519: PKCS#8)
    record: Dict[str, str]  # algorithm -> TXT value
    seed_b64: bytes  # Ed25519 seed, base64 (the form dkimpy takes)

    def name(self, alg: str) -> str:
        return "%s._domainkey.%s" % (SELECTORS[alg], DOMAIN)

    def mapping(self) -> Dict[str, str]:
        return {self.name(a): self.record[a] for a in ALGORITHMS}


def make_keys() -> KeySet:
    """Fresh RSA-2048 and Ed25519 keys (key generation is not timed)."""
    from cryptography.hazmat.primitives import serialization

    import fastdkim

    rsa_key = fastdkim.generate_private_key("rsa", 2048)
    ed_key = fastdkim.generate_private_key("ed25519")
    pem = {
        "rsa-sha256": rsa_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                            serialization.NoEncryption()),
        "ed25519-sha256": ed_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()),
    }
    seed = ed_key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    return KeySet(
        private={"rsa-sha256": rsa_key, "ed25519-sha256": ed_key},
        pem=pem,
        record={"rsa-sha256": fastdkim.public_key_record(rsa_key), "ed25519-sha256": fastdkim.public_key_record(ed_key)},
        seed_b64=base64.b64encode(seed),
    )
