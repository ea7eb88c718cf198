"""Private key file hygiene, as ``opendkim-testkey`` checks it: a key file
readable or writable by its group or by others, or owned by another user
than the one running fastdkim, is "not secure"; fastdkim warns about it
(:class:`InsecureKeyWarning`) or, when asked, refuses it
(:class:`InsecureKeyError`).

::

    problems = key_file_problems("/etc/dkim/s1.pem")   # [] when it is private
    check_key_file("/etc/dkim/s1.pem", refuse=True)     # raises InsecureKeyError
"""
from __future__ import annotations

import os
import stat
import warnings
from typing import List, Union

from .errors import KeyFormatError

__all__ = ["InsecureKeyError", "InsecureKeyWarning", "check_key_file", "key_file_problems"]


class InsecureKeyWarning(UserWarning):
    """A private key file others can read or change, or that another user owns."""


class InsecureKeyError(KeyFormatError):
    """A private key file refused for what :class:`InsecureKeyWarning` warns about."""


def key_file_problems(path: Union[str, "os.PathLike[str]"]) -> List[str]:
    """What makes the private key file at ``path`` not secure, in words
    (``[]``: only its owner, the user running fastdkim, can use it).
    Checks the file its path leads to (after symbolic links).  Raises
    nothing: a file that cannot be examined gives ``[]`` (loading it reports
    the error).
    """
    try:
        st = os.stat(path)
    except OSError:
        return []
    if not stat.S_ISREG(st.st_mode):
        return []
    out = []
    mode = stat.S_IMODE(st.st_mode)
    who = [w for w, bits in (("group", 0o070), ("others", 0o007)) if mode & bits]
    if who:
        rights = []
        if mode & 0o044:
            rights.append("readable")
        if mode & 0o022:
            rights.append("writable")
        if mode & 0o011 and not rights:
            rights.append("executable")
        out.append("%s is %s by %s (mode %04o): chmod 600 it" % (
            os.fspath(path), " and ".join(rights), " and ".join(who), mode))
    euid = os.geteuid() if hasattr(os, "geteuid") else None
    if euid is not None and st.st_uid != euid:
        out.append("%s is owned by uid %d, not by the user running fastdkim (uid %d)" % (
            os.fspath(path), st.st_uid, euid))
    return out


def check_key_file(path: Union[str, "os.PathLike[str]"], *, refuse: bool = False) -> List[str]:
    """Warn (:class:`InsecureKeyWarning`) about each of
    :func:`key_file_problems`, or refuse the file.

    :returns: the problems found.
    :raises InsecureKeyError: ``refuse`` and the file is not secure.
    """
    problems = key_file_problems(path)
    if problems and refuse:
        raise InsecureKeyError("private key not secure: %s" % "; ".join(problems))
    for p in problems:
        warnings.warn("private key not secure: %s" % p, InsecureKeyWarning, stacklevel=2)
    return problems
