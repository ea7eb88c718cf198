"""Rewriting an mbox in place so that no kill, crash or power loss loses mail.

An mbox is rewritten in its own file (same inode), not replaced by a rename:
delivery agents that open the mailbox before they lock it (Postfix's
``local``, mail clients) would otherwise append to the old, unlinked file once
the lock is let go, and that mail would be lost.  Writing over a live file is
made safe by a journal, kept beside the mbox as ``.NAME.fastdkim-journal``
(in fastdkim's state directory when the mbox's directory is not writable):

1. The complete new content is written to a temporary file, after a header
   that records the mbox's identity (device, inode), its old size and SHA-256
   and the new size and SHA-256.  It is flushed to disk and renamed to the
   journal's name, and the directory is flushed: from this moment the journal
   is the authority, and the mbox has not been touched.
2. The mbox is extended to its new size by one ``ftruncate`` (its size is the
   old or the new one, never in between), the disk room for it is reserved,
   and both are flushed.  The journal is then marked *extended* (one byte).
3. The new content is copied over the mbox from its first octet and flushed.
4. The journal is removed and the directory flushed.

The new content is never shorter than the old (signing only adds header
fields), so mail a delivery agent appends after a crash always lands after
the extent the journal describes.  Recovery (:func:`recover`), run under the
mbox lock by the next ``fastdkim`` command that touches the mbox or by
``fastdkim recover``, rolls forward whatever step was interrupted:

* journal marked extended: the new content is copied over the mbox again
  (mail appended after the crash, past the new size, stays as it is);
* not marked: the old content is verified against its SHA-256; if the
  extension had happened (the new extent is all NUL octets) the copy is
  redone as above; otherwise the rewrite is started again with the mail
  appended since (everything past the old size) kept after the new content;
* a journal whose mbox was changed by another program before fastdkim
  touched it is dropped, as the mbox never held fastdkim's writes.

Every step is idempotent, so a recovery killed halfway is recovered in turn.

Before the new content is copied again, every 4 KiB block of the mbox is
checked against digests the journal keeps of the new content and of the
extended old one: more than one block that is neither (one may be torn, where
the copy was cut) means another program changed the mbox after the kill, and
nothing is written (the journal is kept aside and the error says where).  A journal is used only when it is a regular file with
one link, not writable by group or others, owned by root, by the user running
fastdkim or by the mbox's owner: nobody else can make fastdkim write an mbox.
A journal fastdkim cannot read (another format version) stops every command
on that mbox until it is dealt with, rather than letting one sign a
half-written mbox.

This module holds the rewrite and the recovery; the journal's on-disk form and
digests are in :mod:`fastdkim.journal_format`, where journals are kept in
:mod:`fastdkim.journal_location` (both importable from here).
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
import threading
import time
from typing import Any, BinaryIO, Callable, List, Optional, Tuple

from . import _owner
from ._files import fsync_directory
from .errors import JournalError, OptionError
from .journal_format import (  # noqa: F401 (importable from here)
    BLOCK, COPY, DIGEST, EXTENDED, HEADER, MAGIC, MAGIC_ANY, PHASE_AT, WRITTEN,
    _all_zero, _foreign_block, _Hashing, _old_digests, _read_header, _sha256_of,
)
from .journal_location import drop_note, find_journal, find_journals, journal_locations, note_journal, state_dir, \
    trusted_owners
from .journal_location import journal_paths_in_state_dir as journal_paths_in_state_dir

__all__ = ["JournalError", "rewrite_in_place", "recover", "find_journal", "journal_locations", "state_dir"]


class HoldSignals:
    """Ctrl-C, SIGTERM and SIGHUP inside the block are held back and acted on
    when the block is done (in the main thread; elsewhere signals do not
    arrive anyway): Ctrl-C as KeyboardInterrupt, the others as SystemExit."""

    def __enter__(self) -> "HoldSignals":
        import signal

        self.held: List[int] = []
        self.old: List[Tuple[int, Any]] = []
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                self.old.append((sig, signal.signal(sig, lambda signum, frame: self.held.append(signum))))
        return self

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        import signal

        for sig, old in self.old:
            signal.signal(sig, old)
        if exc_type is None and self.held:
            if signal.SIGINT in self.held:
                raise KeyboardInterrupt
            raise SystemExit(128 + self.held[0])


def _fsync_dir(d: str) -> None:
    """:func:`fsync_directory`, its failure ignored (where nothing depends on it)."""
    try:
        fsync_directory(d)
    except OSError:
        pass



def _copy_range(src: int, src_off: int, dst: int, dst_off: int, length: int) -> None:
    done = 0
    while done < length:
        chunk = os.pread(src, min(COPY, length - done), src_off + done)
        if not chunk:
            raise OSError("journal shorter than it says (%d of %d octets)" % (done, length))
        mv = memoryview(chunk)
        while mv:
            n = os.pwrite(dst, mv, dst_off + done)
            mv = mv[n:]
            done += n


def _reserve_range(fd: int, start: int, length: int) -> None:
    """Reserve the disk room of ``length`` octets from ``start`` of the file
    (nothing where the file system cannot reserve).

    :raises OSError: no room (``ENOSPC``), or another error.
    """
    if length > 0 and hasattr(os, "posix_fallocate"):
        try:
            os.posix_fallocate(fd, start, length)
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):  # (these: the file system cannot reserve)
                raise


def _reserve(fd: int, size: int) -> None:
    """Extend the file to ``size`` in one step and reserve the disk room for
    it; on failure the file is left at its old size."""
    old = os.fstat(fd).st_size
    if size <= old:
        return
    os.ftruncate(fd, size)  # the size changes at once: old or new, never between
    try:
        _reserve_range(fd, old, size - old)
    except OSError:
        os.ftruncate(fd, old)
        raise


def _open_journal_temp(path: str) -> Tuple[int, str, str]:
    """A temporary file for the journal of ``path`` and the journal name it
    will get: beside the mbox where its directory is writable, else in the
    state directory."""
    beside, elsewhere = journal_locations(path)
    try:
        fd, tmp = _owner.mkstemp(os.path.dirname(beside))
        return fd, tmp, beside
    except PermissionError:
        pass
    except OSError as exc:
        if exc.errno not in (errno.EACCES, errno.EROFS):
            raise
    d = os.path.dirname(elsewhere)
    os.makedirs(d, mode=0o700, exist_ok=True)
    fd, tmp = _owner.mkstemp(d)
    return fd, tmp, elsewhere


def rewrite_in_place(fh: BinaryIO, write: Callable[[Any], None], path: Optional[str] = None) -> bool:
    """Replace the content of the open, locked file ``fh`` (named ``path``,
    by default ``fh.name``) with what ``write(out)`` writes, through a journal
    (see the module's description): a process killed at any moment, or a
    machine that loses power, leaves a state that :func:`recover` completes.

    ``write`` must not produce less than the file holds now (an mbox being
    signed only grows).  Signals that would stop the program (SIGINT, SIGTERM,
    SIGHUP) are held back while the mbox is being changed.

    :returns: whether the file was changed (content identical to the old one
        is not written).
    :raises ValueError: the new content is shorter than the old.
    :raises OSError: writing failed; if before the mbox was touched, it is
        unchanged and no journal is left; if during the copy (tried three
        times), the journal stays and the error says that ``fastdkim
        recover`` completes the rewrite.
    """
    if path is None:
        path = getattr(fh, "name", None)
        if not isinstance(path, str):
            raise TypeError("rewrite_in_place needs the file's path")
    fh.flush()
    fd = fh.fileno()
    st = os.fstat(fd)
    old_size = st.st_size
    jfd, tmp, jpath = _open_journal_temp(path)
    committed = False
    try:
        with os.fdopen(jfd, "w+b") as j:
            j.write(b"\0" * HEADER)
            out = _Hashing(j)
            write(out)
            new_blocks = out.finish()
            new_size = out.size
            if new_size < old_size:
                raise OptionError("the new content (%d octets) is shorter than the file (%d)" % (new_size, old_size))
            old_sha, old_blocks = _old_digests(fd, old_size, new_size)
            new_sha = out.sha.hexdigest()
            if new_size == old_size and new_sha == old_sha:
                os.unlink(tmp)
                tmp = ""
                return False
            tables = old_blocks + new_blocks
            j.write(tables)
            j.flush()
            meta = {
                "path": os.path.realpath(path), "dev": st.st_dev, "ino": st.st_ino,
                "old_size": old_size, "old_sha256": old_sha, "new_size": new_size, "new_sha256": new_sha,
                "block": BLOCK, "digest": DIGEST, "tables_sha256": hashlib.sha256(tables).hexdigest(),
                "host": _owner.host(), "pid": os.getpid(), "time": time.time(),
            }
            blob = json.dumps(meta).encode("ascii")
            if len(blob) > HEADER - 64:
                raise OSError(errno.ENAMETOOLONG, "the path is too long for the journal", path)
            os.pwrite(j.fileno(), MAGIC, 0)
            os.pwrite(j.fileno(), WRITTEN, PHASE_AT)
            os.pwrite(j.fileno(), blob, 64)
            os.fsync(j.fileno())
            note_journal(jpath)  # (in a state directory named by $FASTDKIM_STATE_DIR: noted where others look)
            with HoldSignals():
                os.replace(tmp, jpath)
                committed = True
                # the journal's name must be on disk before the mbox is touched:
                # a failed flush stops here (the journal is dropped, the mbox untouched)
                fsync_directory(os.path.dirname(jpath))
                _apply(fd, j.fileno(), new_size, path, jpath)
                os.unlink(jpath)
                _fsync_dir(os.path.dirname(jpath))
                drop_note(jpath)
        return True
    except BaseException:
        if not committed:
            try:
                if tmp:
                    os.unlink(tmp)
            except OSError:
                pass
        else:
            try:
                _undo_if_untouched(fd, jpath)
            except OSError:
                pass
        raise


def _apply(fd: int, jfd: int, new_size: int, path: str, jpath: str) -> None:
    """Steps 2 and 3: extend the file, mark the journal, copy the new content over the file."""
    _reserve(fd, new_size)
    os.fsync(fd)
    os.pwrite(jfd, EXTENDED, PHASE_AT)
    os.fsync(jfd)
    _copy_with_retries(jfd, fd, new_size, path, jpath)


def _copy_with_retries(jfd: int, fd: int, new_size: int, path: str, jpath: str) -> None:
    """Step 3 (idempotent, so tried again on an I/O error while the lock is still held)."""
    for attempt in range(3):
        try:
            _copy_range(jfd, HEADER, fd, 0, new_size)
            os.fsync(fd)
            return
        except OSError as exc:
            if attempt == 2:
                raise OSError(exc.errno, "%s while rewriting %s in place: the mbox is half rewritten and the "
                              "complete signed copy is in %s; 'fastdkim recover %s' (or any fastdkim command on "
                              "the mbox) completes it" % (exc.strerror or exc, path, jpath, path)) from exc
            time.sleep(0.1)


def _undo_if_untouched(fd: int, jpath: str) -> None:
    """After a failure before the extension (a full disk when reserving room),
    the mbox is as it was: the journal is dropped so that nothing is replayed."""
    with open(jpath, "rb") as j:
        meta, phase = _read_header(j.fileno())
    if phase == WRITTEN and os.fstat(fd).st_size == meta["old_size"]:
        _drop(jpath)



def pending_journal(path: str) -> Optional[str]:
    """The journal of an interrupted rewrite of ``path`` that :func:`recover`
    acts on (one root, this user or the mbox's owner owns), or ``None``:
    another user's file at a journal's name is none (see :func:`_open_trusted`)."""
    try:
        owner: Optional[int] = os.stat(path).st_uid
    except OSError:
        owner = None
    trusted = trusted_owners(owner)
    for jpath in find_journals(path):
        try:
            if os.lstat(jpath).st_uid in trusted:
                return jpath
        except OSError:
            continue
    return None


def _open_trusted(jpath: str, mbox_uid: int) -> Optional[BinaryIO]:
    """The journal, opened without following links, if it may be trusted: a
    regular file with one link, owned by root, by this user or by the mbox's
    owner, not writable by group or others.  ``None`` if there is none, or
    if another user owns what is there (planted by someone who may create
    files beside the mbox: never fastdkim's, ignored).

    :raises JournalError: a file of a trusted owner is there but cannot be
        opened, or is not such a journal (a link, several links, writable by
        others): the mbox may be half rewritten, so nothing may go on with
        it until someone has looked (the journal is left where it is).
    """
    trusted = trusted_owners(mbox_uid)
    try:
        lst = os.lstat(jpath)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise JournalError("%s: the journal of an interrupted rewrite of the mbox cannot be examined (%s): the "
                           "mbox may be half rewritten; run fastdkim recover as its owner" % (jpath, exc)) from None
    if lst.st_uid not in trusted:
        return None
    try:
        fd = os.open(jpath, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise JournalError("%s: the journal of an interrupted rewrite of the mbox cannot be opened (%s): the mbox "
                           "may be half rewritten; run fastdkim recover as its owner" % (jpath, exc)) from None
    st = os.fstat(fd)
    if (not stat.S_ISREG(st.st_mode) or st.st_nlink != 1 or st.st_mode & 0o022
            or st.st_uid not in trusted):
        os.close(fd)
        raise JournalError("%s: the journal of an interrupted rewrite is not one fastdkim may apply (%s): the mbox "
                           "may be half rewritten; look at it, then remove the journal" % (
                               jpath, "several links" if st.st_nlink != 1 else "writable by others"
                               if st.st_mode & 0o022 else "not a regular file"))
    return os.fdopen(fd, "r+b")


def recover(fh: BinaryIO, path: Optional[str] = None) -> Optional[str]:
    """Complete an interrupted rewrite of the open file ``fh`` (named ``path``),
    which the caller holds locked.  Does nothing when there is no journal.

    :returns: what was done, in a sentence, or ``None`` when there was nothing to do.
    :raises JournalError: the journal cannot be applied safely: the mbox was
        changed or replaced by another program after fastdkim had begun to
        write it, or the journal is damaged (then it is kept under a name that
        says so, and the error names it); or the journal cannot be read (of
        another fastdkim version: then it stays where it is, and every
        command on this mbox stops here until it is dealt with).
    """
    if path is None:
        path = getattr(fh, "name", None)
        if not isinstance(path, str):
            raise TypeError("recover needs the file's path")
    said: List[str] = []
    seen = set()
    for _ in range(8):  # at most one journal in each place, and the ones a recovery writes
        todo = [j for j in find_journals(path) if j not in seen]
        if not todo:
            break
        jpath = todo[0]
        what = _recover_one(fh, path, jpath)
        if os.path.lexists(jpath):
            seen.add(jpath)  # an untrusted file, left alone
        if what:
            said.append(what)
    return "; ".join(said) or None


def _recover_one(fh: BinaryIO, path: str, jpath: str) -> Optional[str]:
    fh.flush()
    fd = fh.fileno()
    st = os.fstat(fd)
    j = _open_trusted(jpath, st.st_uid)
    if j is None:
        if not os.path.lexists(jpath):
            return None
        return "ignored %s: another user's file, not a journal fastdkim may trust" % jpath
    with j:
        jfd = j.fileno()
        meta, phase = _read_header(jfd)  # (a JournalError here stops the caller, the journal kept)
        old, new = meta["old_size"], meta["new_size"]
        nblocks = (new + BLOCK - 1) // BLOCK
        tables = os.pread(jfd, 2 * nblocks * DIGEST, HEADER + new)
        content_ok = (old > 0 and new >= old and os.fstat(jfd).st_size == HEADER + new + 2 * nblocks * DIGEST
                      and hashlib.sha256(tables).hexdigest() == meta["tables_sha256"]
                      and _sha256_of(jfd, HEADER, new) == meta["new_sha256"])
        same_file = (st.st_dev, st.st_ino) == (meta["dev"], meta["ino"])
        size = st.st_size
        if phase == WRITTEN:
            untouched = same_file and size >= old and _sha256_of(fd, 0, old) == meta["old_sha256"]
            if not untouched or not content_ok:
                # fastdkim never wrote into the mbox (at most it extended it
                # with NUL octets, taken back here when nothing followed them)
                if untouched and size == new and new > old and _all_zero(fd, old, new - old):
                    os.ftruncate(fd, old)
                    os.fsync(fd)
                _drop(jpath)
                why = "the mbox was changed by another program" if not untouched else "the journal was damaged"
                return "an interrupted rewrite of %s was dropped (%s); the mbox is as it was" % (path, why)
            extended = new == old or (size >= new and _all_zero(fd, old, new - old))
            if not extended:
                # the mbox is exactly as it was, plus mail delivered since:
                # rewrite again, keeping that mail after the new content
                def write(out: Any) -> None:
                    _stream(jfd, HEADER, new, out)
                    _stream(fd, old, size - old, out)

                rewrite_in_place(fh, write, path)
                if os.path.lexists(jpath):  # the new journal went elsewhere
                    _drop(jpath)
                return "an interrupted rewrite of %s was completed (%d octets of mail delivered since kept)" % (
                    path, size - old)
        if not same_file or size < new or not content_ok:
            why = ("the mbox was replaced by another file" if not same_file else
                   "the mbox was cut short by another program" if size < new else "the journal was damaged")
            return _set_aside(jpath, why, fatal=True)
        bad = _foreign_block(fd, new, tables[:nblocks * DIGEST], tables[nblocks * DIGEST:])
        if bad >= 0:
            return _set_aside(jpath, "the mbox was changed by another program after the interrupted rewrite "
                                     "(at octet %d)" % (bad * BLOCK), fatal=True)
        with HoldSignals():
            if phase == WRITTEN:
                # Killed between growing the mbox and marking the journal: the
                # disk room may not be reserved yet (the run may have died
                # reserving it), and copying without it could stop half way.
                try:
                    _reserve_range(fd, old, new - old)
                except OSError as exc:
                    if size == new:  # nothing delivered behind: back to as it was
                        os.ftruncate(fd, old)
                        os.fsync(fd)
                        _drop(jpath)
                        return ("an interrupted rewrite of %s was dropped: no room for it (%s); the mbox is as it "
                                "was" % (path, exc.strerror or exc))
                    raise JournalError("an interrupted rewrite of %s cannot be completed yet: no room for it (%s); "
                                       "the mbox and the journal are left as they are until there is"
                                       % (path, exc.strerror or exc)) from None
                os.fsync(fd)
                os.pwrite(jfd, EXTENDED, PHASE_AT)
                os.fsync(jfd)
            _copy_with_retries(jfd, fd, new, path, jpath)
            _drop(jpath)
        return "an interrupted rewrite of %s was completed" % path



def _stream(fd: int, start: int, length: int, out: Any) -> None:
    done = 0
    while done < length:
        chunk = os.pread(fd, min(COPY, length - done), start + done)
        if not chunk:
            raise OSError("file shorter than expected")
        out.write(chunk)
        done += len(chunk)


def _drop(jpath: str) -> None:
    try:
        os.unlink(jpath)
    except FileNotFoundError:
        pass
    _fsync_dir(os.path.dirname(jpath))
    drop_note(jpath)


def _set_aside(jpath: str, why: str, fatal: bool = False) -> str:
    kept = "%s.unusable-%d" % (jpath, int(time.time()))
    os.replace(jpath, kept)
    _fsync_dir(os.path.dirname(jpath))
    msg = "an interrupted rewrite cannot be completed: %s; the journal (the complete signed copy after a %d-octet " \
          "header) is kept in %s" % (why, HEADER, kept)
    if fatal:
        raise JournalError(msg)
    return msg


