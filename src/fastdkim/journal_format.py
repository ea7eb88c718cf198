"""The on-disk form of a journal (see :mod:`fastdkim.journal`) and the digests
that compare an mbox with it.

A journal is a :data:`HEADER`-octet header, then the complete new content of
the mbox, then two tables of :data:`DIGEST`-octet block digests (SHA-256,
truncated) of every :data:`BLOCK` octets: of the old content extended with
NUL octets to the new size, then of the new content.  The header starts with
:data:`MAGIC`; the octet at :data:`PHASE_AT` is :data:`WRITTEN` or
:data:`EXTENDED`; from octet 64 a JSON object (padded with NULs) records the
mbox's path, identity (device, inode), old and new sizes and SHA-256, the
block and digest sizes, the SHA-256 of the tables, and who wrote it.
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import Any, BinaryIO, Dict, List, Tuple

from .errors import JournalError

__all__ = ["BLOCK", "COPY", "DIGEST", "EXTENDED", "HEADER", "MAGIC", "MAGIC_ANY", "PHASE_AT", "WRITTEN"]

MAGIC = b"fastdkim-journal 1\n"
MAGIC_ANY = b"fastdkim-journal "
PHASE_AT = 32
HEADER = 4096
WRITTEN, EXTENDED = b"W", b"E"
COPY = 1 << 20
BLOCK = 4096  # the unit of the journal's digests (a page: what a kill or a power cut leaves whole)
DIGEST = 16  # octets of SHA-256 kept per block


class _Hashing:
    """A write-only file wrapper that counts what goes through it, hashes it
    whole and keeps a digest of every :data:`BLOCK` octets."""

    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh
        self.sha = hashlib.sha256()
        self.size = 0
        self.blocks: List[bytes] = []
        self._block = hashlib.sha256()
        self._fill = 0

    def write(self, data: Any) -> int:
        mv = memoryview(data).cast("B")
        n = self._fh.write(mv)
        self.sha.update(mv)
        self.size += len(mv)
        while mv:
            take = min(len(mv), BLOCK - self._fill)
            self._block.update(mv[:take])
            self._fill += take
            mv = mv[take:]
            if self._fill == BLOCK:
                self.blocks.append(self._block.digest()[:DIGEST])
                self._block, self._fill = hashlib.sha256(), 0
        return n

    def finish(self) -> bytes:
        if self._fill:
            self.blocks.append(self._block.digest()[:DIGEST])
            self._block, self._fill = hashlib.sha256(), 0
        return b"".join(self.blocks)

    def flush(self) -> None:
        self._fh.flush()


def _sha256_of(fd: int, start: int, length: int) -> str:
    h = hashlib.sha256()
    done = 0
    while done < length:
        chunk = os.pread(fd, min(COPY, length - done), start + done)
        if not chunk:
            break
        h.update(chunk)
        done += len(chunk)
    return h.hexdigest() if done == length else ""


def _old_digests(fd: int, old: int, new: int) -> Tuple[str, bytes]:
    """SHA-256 of the file's first ``old`` octets, and the block digests of
    what the file holds once extended to ``new`` (those octets, then NULs)."""
    whole = hashlib.sha256()
    out: List[bytes] = []
    pos = 0
    while pos < new:
        n = min(COPY, new - pos)
        have = os.pread(fd, min(n, old - pos), pos) if pos < old else b""
        whole.update(have)
        chunk = memoryview(have + b"\0" * (n - len(have)))
        out.extend(hashlib.sha256(chunk[i:i + BLOCK]).digest()[:DIGEST] for i in range(0, n, BLOCK))
        pos += n
    return whole.hexdigest(), b"".join(out)


def _all_zero(fd: int, start: int, length: int) -> bool:
    done = 0
    while done < length:
        chunk = os.pread(fd, min(COPY, length - done), start + done)
        if not chunk or chunk.count(0) != len(chunk):
            return False
        done += len(chunk)
    return True


def _read_header(jfd: int) -> Tuple[Dict[str, Any], bytes]:
    head = os.pread(jfd, HEADER, 0)
    if len(head) < HEADER or not head.startswith(MAGIC_ANY):
        raise JournalError("not a fastdkim journal (or one cut short before it was complete)")
    if not head.startswith(MAGIC):
        raise JournalError("a journal of another fastdkim version (%r): complete it with that version"
                           % head[:head.find(b"\n")].decode("ascii", "replace"))
    phase = head[PHASE_AT:PHASE_AT + 1]
    try:
        meta = json.loads(head[64:].rstrip(b"\0").decode("ascii"))
        for k in ("dev", "ino", "old_size", "new_size", "block", "digest"):
            if not isinstance(meta[k], int) or meta[k] < 0:
                raise ValueError(k)
        for k in ("old_sha256", "new_sha256", "tables_sha256", "path"):
            if not isinstance(meta[k], str):
                raise ValueError(k)
        if meta["block"] != BLOCK or meta["digest"] != DIGEST:
            raise ValueError("block")
    except (ValueError, KeyError, UnicodeDecodeError, TypeError) as exc:
        raise JournalError("unreadable journal header (%s)" % exc) from None
    if phase not in (WRITTEN, EXTENDED):
        raise JournalError("unreadable journal header (phase %r)" % phase)
    return meta, phase


def _foreign_block(fd: int, new: int, old_blocks: bytes, new_blocks: bytes) -> int:
    """The second block of the file's first ``new`` octets that holds neither
    the new content nor the (extended) old one, or -1 (one such block is the
    one a kill cut in the middle of its copy)."""
    pos = 0
    odd = 0
    while pos < new:
        n = min(COPY, new - pos)
        chunk = memoryview(os.pread(fd, n, pos))
        for i in range(0, len(chunk), BLOCK):
            k = (pos + i) // BLOCK * DIGEST
            d = hashlib.sha256(chunk[i:i + BLOCK]).digest()[:DIGEST]
            if d != new_blocks[k:k + DIGEST] and d != old_blocks[k:k + DIGEST]:
                odd += 1
                if odd > 1:
                    return (pos + i) // BLOCK
        pos += n
    return -1

