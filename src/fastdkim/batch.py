"""Many messages at once: reading files, directories, Maildirs and mboxes, and
writing signed copies safely.

Nothing is ever lost: a message that cannot be signed is reported and written
out unchanged, so the output holds as many messages as the input.  Outputs are
written through temporary files and renamed into place, so an interrupted run
leaves every file either as it was or completely signed.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import BinaryIO, Iterator, List, Optional, Tuple

from ._files import atomic_write

__all__ = [
    "Source",
    "detect",
    "iter_mbox",
    "list_files",
    "atomic_write",
    "SignOutcome",
    "Summary",
]

MBOX, MAILDIR, DIRECTORY, FILE, STDIN = "mbox", "maildir", "directory", "file", "stdin"


@dataclass
class Source:
    """An input location and its kind."""

    path: str
    kind: str


def _is_mbox(path: str) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(5) == b"From "
    except OSError:
        return False


def detect(path: str) -> Source:
    """What ``path`` is: ``-`` (stdin), a Maildir, a directory, an mbox or one message file.

    :raises FileNotFoundError: ``path`` does not exist.
    """
    if path == "-":
        return Source(path, STDIN)
    if os.path.isdir(path):
        if os.path.isdir(os.path.join(path, "cur")) and os.path.isdir(os.path.join(path, "new")):
            return Source(path, MAILDIR)
        return Source(path, DIRECTORY)
    if not os.path.exists(path):
        raise FileNotFoundError("no such file or directory: %s" % path)
    return Source(path, MBOX if _is_mbox(path) else FILE)


def list_files(src: Source) -> List[str]:
    """Relative paths of the message files of a Maildir (``cur`` and ``new``) or directory.

    Hidden files and a Maildir's ``tmp`` (deliveries in progress) are skipped.
    """
    out: List[str] = []
    if src.kind == MAILDIR:
        for sub in ("cur", "new"):
            d = os.path.join(src.path, sub)
            out += [os.path.join(sub, n) for n in sorted(os.listdir(d))
                    if not n.startswith(".") and os.path.isfile(os.path.join(d, n))]
        return out
    for root, dirs, files in os.walk(src.path):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for n in sorted(files):
            if not n.startswith("."):
                out.append(os.path.relpath(os.path.join(root, n), src.path))
    return out


def iter_mbox(fh: BinaryIO) -> Iterator[Tuple[bytes, bytes]]:
    """Yield ``(separator_line, message)`` pairs of an mbox, byte for byte.

    A message starts at a line beginning ``From `` that opens the file or
    follows an empty line.  The message bytes are kept as stored (``>From``
    quoting included); the blank line that precedes the next separator is part
    of the message, as mbox writers add it.
    """
    sep: Optional[bytes] = None
    buf: List[bytes] = []
    prev_blank = True
    for line in fh:
        if line.startswith(b"From ") and prev_blank:
            if sep is not None:
                yield sep, b"".join(buf)
            sep, buf = line, []
            prev_blank = False
            continue
        if sep is None:
            raise ValueError("not an mbox: data before the first 'From ' line")
        buf.append(line)
        prev_blank = line in (b"\n", b"\r\n")
    if sep is not None:
        yield sep, b"".join(buf)


@dataclass
class SignOutcome:
    """What became of one message."""

    name: str
    size: int
    signed: bool
    reason: str = ""


@dataclass
class Summary:
    """Counts for the closing report."""

    signed: int = 0
    skipped: List[SignOutcome] = field(default_factory=list)
    bytes: int = 0

    def add(self, o: SignOutcome) -> None:
        self.bytes += o.size
        if o.signed:
            self.signed += 1
        else:
            self.skipped.append(o)

    @property
    def total(self) -> int:
        return self.signed + len(self.skipped)
