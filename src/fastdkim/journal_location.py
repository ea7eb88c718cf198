"""Where journals (see :mod:`fastdkim.journal`) are kept: beside the mbox as
``.NAME.fastdkim-journal``, or, when the mbox's directory is not writable, in
fastdkim's state directory under a name derived from the mbox's real path;
and finding them again."""
from __future__ import annotations

import hashlib
import os
import stat
from typing import List, Optional, Tuple

from ._files import fsync_directory
from .errors import JournalError
from .journal_format import _read_header

__all__ = ["drop_note", "find_journal", "find_journals", "journal_locations", "journal_paths_in_state_dir",
           "note_journal", "state_dir", "trusted_owners"]


#: root's state directory (and that of users without a home directory)
SYSTEM_STATE_DIR = "/var/lib/fastdkim/journals"


def _home_of(uid: int) -> Optional[str]:
    try:
        import pwd

        return pwd.getpwuid(uid).pw_dir or None
    except (ImportError, KeyError):
        return None


def state_dir() -> str:
    """Where journals go when the mbox's own directory is not writable:
    ``$FASTDKIM_STATE_DIR/journals`` when set, else ``/var/lib/fastdkim/journals``
    for root and ``~/.local/state/fastdkim/journals`` for others (the home
    directory from the password database, not ``$HOME``, so that cron jobs,
    ``sudo`` and services find the same place)."""
    d = os.environ.get("FASTDKIM_STATE_DIR")
    if d:
        return os.path.join(d, "journals")
    return _default_state_dir()


def _default_state_dir() -> str:
    """:func:`state_dir` without ``$FASTDKIM_STATE_DIR``."""
    uid = os.geteuid()
    home = _home_of(uid) if uid != 0 else None
    if home is None:
        return SYSTEM_STATE_DIR
    return os.path.join(home, ".local", "state", "fastdkim", "journals")


def _state_dirs(owner: Optional[int] = None) -> List[str]:
    """Every state directory a journal may be in (see :func:`state_dir`)."""
    dirs = []
    env = os.environ.get("FASTDKIM_STATE_DIR")
    if env:
        dirs.append(os.path.join(env, "journals"))
    dirs.append(_default_state_dir())
    dirs.append(SYSTEM_STATE_DIR)
    for uid in (os.geteuid(), owner):
        home = _home_of(uid) if uid is not None else None
        if home:
            dirs.append(os.path.join(home, ".local", "state", "fastdkim", "journals"))
    return list(dict.fromkeys(dirs))


def _key(real: str) -> str:
    return hashlib.sha256(os.fsencode(real)).hexdigest()[:32] + ".journal"


def journal_locations(path: str) -> Tuple[str, str]:
    """Where a journal for the file ``path`` is written: beside the real
    file, or in :func:`state_dir` under a name derived from its real path."""
    real = os.path.realpath(path)
    d, name = os.path.split(real)
    return os.path.join(d, "." + name + ".fastdkim-journal"), os.path.join(state_dir(), _key(real))


#: A note, in the state directory a run without ``$FASTDKIM_STATE_DIR``
#: uses, of a journal that went to the one that variable named:
#: ``KEY.where`` beside where ``KEY.journal`` would be, holding the directory.
_NOTE = ".where"


def _note_of(jpath: str) -> str:
    return os.path.join(_default_state_dir(), os.path.basename(jpath)[:-len(".journal")] + _NOTE)


def note_journal(jpath: str) -> None:
    """Before the journal ``jpath`` takes its name in a state directory that
    ``$FASTDKIM_STATE_DIR`` named, note where it is in the one a run without
    the variable uses (:func:`find_journals` follows such notes), so that
    such a run finds the rewrite it must complete.  Best effort: where that
    directory cannot be written, runs must share the variable."""
    d = os.path.dirname(jpath)
    if not jpath.endswith(".journal") or d == _default_state_dir():
        return
    note = _note_of(jpath)
    try:
        os.makedirs(os.path.dirname(note), mode=0o700, exist_ok=True)
        tmp = "%s.%d.tmp" % (note, os.getpid())
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600)
        try:
            os.write(fd, os.fsencode(os.path.abspath(d)))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, note)
        fsync_directory(os.path.dirname(note))
    except OSError:
        pass


def drop_note(jpath: str) -> None:
    """Remove the note :func:`note_journal` left for ``jpath``, if it names
    ``jpath``'s directory (a stale note, whose journal is gone, is harmless)."""
    if not jpath.endswith(".journal"):
        return
    note = _note_of(jpath)
    if _read_note(note, (os.geteuid(),)) == os.path.abspath(os.path.dirname(jpath)):
        try:
            os.unlink(note)
        except OSError:
            pass


def _read_note(note: str, owners: Optional[Tuple[int, ...]]) -> Optional[str]:
    """The directory the note ``note`` names, or ``None`` where there is no
    such note: only a regular file with one link (never followed through a
    link, never a FIFO or device that could block; never the mbox itself,
    whose descriptor, closed, would let go of the caller's ``fcntl`` lock),
    owned by one of ``owners`` (``None``: anyone) and writable by nobody
    else, holding an absolute path."""
    try:
        fd = os.open(note, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except (OSError, ValueError):
        return None
    try:
        st = os.fstat(fd)
        if (not stat.S_ISREG(st.st_mode) or st.st_nlink != 1 or st.st_mode & 0o022
                or (owners is not None and st.st_uid not in owners)):
            return None
        text = os.fsdecode(os.read(fd, 4096))
    except OSError:
        return None
    finally:
        os.close(fd)
    if "\0" in text or not os.path.isabs(text):
        return None
    return text


def _noted(state_dirs: List[str], key: str, owners: Optional[Tuple[int, ...]] = None) -> List[str]:
    """The journals named ``key`` in the directories that notes in
    ``state_dirs`` (of ``owners``, see :func:`_read_note`) point to."""
    out = []
    for sd in state_dirs:
        where = _read_note(os.path.join(sd, key[:-len(".journal")] + _NOTE), owners)
        if where is not None:
            out.append(os.path.join(where, key))
    return out


def trusted_owners(mbox_owner: Optional[int]) -> Tuple[int, ...]:
    """Who may own a journal (or a note of one) that fastdkim acts on for an
    mbox owned by ``mbox_owner`` (``None``: unknown): root, the user running
    fastdkim, the mbox's owner."""
    return (0, os.geteuid()) + ((mbox_owner,) if mbox_owner is not None else ())


def find_journals(path: str) -> List[str]:
    """The journals of interrupted rewrites of ``path`` (usually none, at most a few)."""
    real = os.path.realpath(path)
    try:
        owner: Optional[int] = os.stat(real).st_uid
    except OSError:
        owner = None
    beside, _ = journal_locations(real)
    dirs = _state_dirs(owner)
    places = [beside] + [os.path.join(sd, _key(real)) for sd in dirs] + _noted(dirs, _key(real), trusted_owners(owner))
    return [j for j in dict.fromkeys(places) if os.path.lexists(j)]


def find_journal(path: str) -> Optional[str]:
    """The journal of an interrupted rewrite of ``path``, or ``None``."""
    found = find_journals(path)
    return found[0] if found else None


def journal_paths_in_state_dir() -> List[str]:
    """The mboxes that journals in the state directories (and in the
    directories their notes point to) belong to, read from their headers;
    unreadable journals are skipped."""
    out: List[str] = []
    for d in _state_dirs():
        try:
            names = sorted(os.listdir(d))
        except OSError:
            continue
        paths = [os.path.join(d, n) for n in names if n.endswith(".journal")]
        for n in names:  # (and those that notes point to)
            if n.endswith(_NOTE):
                paths += _noted([d], n[:-len(_NOTE)] + ".journal")
        for jp in paths:
            try:
                with open(jp, "rb") as j:
                    meta, _ = _read_header(j.fileno())
            except (OSError, JournalError):
                continue
            out.append(meta["path"])
    return list(dict.fromkeys(out))
