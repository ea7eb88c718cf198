"""Where journals (see :mod:`fastdkim.journal`) are kept: beside the mbox as
``.NAME.fastdkim-journal``, or, when the mbox's directory is not writable, in
fastdkim's state directory under a name derived from the mbox's real path;
and finding them again."""
from __future__ import annotations

import hashlib
import os
from typing import List, Optional, Tuple

from .errors import JournalError
from .journal_format import _read_header

__all__ = ["find_journal", "find_journals", "journal_locations", "journal_paths_in_state_dir", "state_dir"]


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
    uid = os.geteuid()
    home = _home_of(uid) if uid != 0 else None
    if home is None:
        return "/var/lib/fastdkim/journals"
    return os.path.join(home, ".local", "state", "fastdkim", "journals")


def _state_dirs(owner: Optional[int] = None) -> List[str]:
    """Every state directory a journal may be in (see :func:`state_dir`)."""
    dirs = []
    env = os.environ.get("FASTDKIM_STATE_DIR")
    if env:
        dirs.append(os.path.join(env, "journals"))
    dirs.append("/var/lib/fastdkim/journals")
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


def find_journals(path: str) -> List[str]:
    """The journals of interrupted rewrites of ``path`` (usually none, at most a few)."""
    real = os.path.realpath(path)
    try:
        owner: Optional[int] = os.stat(real).st_uid
    except OSError:
        owner = None
    beside, _ = journal_locations(real)
    places = [beside] + [os.path.join(sd, _key(real)) for sd in _state_dirs(owner)]
    return [j for j in places if os.path.lexists(j)]


def find_journal(path: str) -> Optional[str]:
    """The journal of an interrupted rewrite of ``path``, or ``None``."""
    found = find_journals(path)
    return found[0] if found else None


def journal_paths_in_state_dir() -> List[str]:
    """The mboxes that journals in the state directories belong to (read
    from their headers; unreadable journals are skipped)."""
    out: List[str] = []
    for d in _state_dirs():
        try:
            names = sorted(os.listdir(d))
        except OSError:
            continue
        for n in names:
            if not n.endswith(".journal"):
                continue
            try:
                with open(os.path.join(d, n), "rb") as j:
                    meta, _ = _read_header(j.fileno())
            except (OSError, JournalError):
                continue
            out.append(meta["path"])
    return list(dict.fromkeys(out))
