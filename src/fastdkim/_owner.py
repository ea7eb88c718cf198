"""Who left a file behind: names and lock contents that carry a host and a
process id, and the test of whether that process is still running.

fastdkim's temporary files are named ``.fastdkim-HOST.PID.SPACE-START.RANDOM.tmp``
and its dot-locks hold ``PID\\nHOST\\nSPACE-START\\n``, so that a later run can
tell the leftovers of a process that was killed (SIGKILL, power loss) from
the files of one that is still at work, and clean them up.

``SPACE-START`` is the process's identity where the system tells it
(Linux): ``SPACE`` names the pid space (the boot, the pid namespace and the
time namespace) and ``START`` is when the process started, in clock ticks
since boot.  Within one space, a pid with its start time names one process
for good: neither a clock step nor a pid reused by a later process (every
run of a container may be pid 1) can make a live owner look gone or a gone
one look live.  A file of another space (another container with the same
host name, a machine before a reboot) cannot be checked from here.  Files without the
identity (older names, other systems) are judged by pid and file time.
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
import time
from typing import List, Optional, Tuple

__all__ = ["host", "temp_prefix", "mkstemp", "sweep_temporaries", "process_gone", "lock_owner", "lock_content",
           "identity", "owner_gone", "left_behind", "TEMP_PATTERN", "UNCHECKED_AGE"]

#: leftovers of fastdkim: ``.fastdkim-HOST.PID.[SPACE-START.]RANDOM.tmp``
TEMP_PATTERN = re.compile(r"\A\.fastdkim-([A-Za-z0-9-]{0,64})\.([0-9]{1,10})\.(?:([0-9a-f]{12})-([0-9]{1,20})\.)?"
                          r"[A-Za-z0-9_]+\.tmp\Z")
#: a file whose owner cannot be checked from here (another pid space) is left
#: behind once it has not been touched for this long: fastdkim touches its
#: dot-locks every 60 s, and Postfix breaks dot-locks after 500 s
UNCHECKED_AGE = 600.0


def host() -> str:
    """This machine's name, reduced to letters, digits and ``-`` (as file names carry it)."""
    try:  # (what gethostname() answers, without loading the socket module)
        node = os.uname().nodename
    except AttributeError:  # no uname (Windows)
        import socket

        node = socket.gethostname()
    name = re.sub(r"[^A-Za-z0-9-]", "-", node.split(".")[0])[:64]
    return name or "localhost"


#: the largest pid Linux gives (PID_MAX_LIMIT); a larger one in a file's name
#: or a lock is nobody's this system could check
PID_MAX = 1 << 22


def _space() -> Optional[str]:
    """12 hex digits naming this process's pid space: the boot, the pid
    namespace and the time namespace (process start times read from
    ``/proc`` are shifted by the reader's), where the system tells (Linux)."""
    try:
        with open("/proc/sys/kernel/random/boot_id", "rb") as fh:
            boot = fh.read(64).strip()
        spaces = [os.stat("/proc/self/ns/pid")]
    except OSError:
        return None
    try:
        spaces.append(os.stat("/proc/self/ns/time"))
    except OSError:  # (before Linux 5.6: no time namespaces)
        pass
    if not boot:
        return None
    text = b" ".join([boot] + [b"%d:%d" % (ns.st_dev, ns.st_ino) for ns in spaces])
    return hashlib.sha256(text).hexdigest()[:12]


#: (pid, identity) of this process, found once per process
_IDENTITY: List[Tuple[int, Optional[Tuple[str, int]]]] = []


def identity() -> Optional[Tuple[str, int]]:
    """This process's ``(space, start)`` (see the module's docstring), or
    ``None`` where the system does not tell, or where ``/proc`` is another
    pid namespace's (a process whose pids it does not show)."""
    pid = os.getpid()
    if _IDENTITY and _IDENTITY[0][0] == pid:
        return _IDENTITY[0][1]
    found = None
    try:
        with open("/proc/self/stat", "rb") as fh:
            stat = fh.read()
        ours = int(stat[:stat.index(b" (")]) == pid
        start = int(stat[stat.rindex(b")") + 2:].split()[19])
    except (OSError, ValueError, IndexError):
        ours = False
    if ours:
        space = _space()
        found = (space, start) if space is not None else None
    _IDENTITY[:] = [(pid, found)]
    return found


def temp_prefix() -> str:
    me = identity()
    if me is None:
        return ".fastdkim-%s.%d." % (host(), os.getpid())
    return ".fastdkim-%s.%d.%s-%d." % (host(), os.getpid(), me[0], me[1])


def mkstemp(directory: Optional[str]) -> Tuple[int, str]:
    """A new temporary file in ``directory`` (the system's when ``None``),
    named so that :func:`sweep_temporaries` recognises it once its process is gone."""
    return tempfile.mkstemp(prefix=temp_prefix(), suffix=".tmp", dir=directory)


def _boot_time() -> Optional[float]:
    try:
        with open("/proc/stat", "rb") as fh:
            for line in fh:
                if line.startswith(b"btime "):
                    return float(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def _proc_stat(pid: int) -> Optional[List[bytes]]:
    """The fields of ``/proc/PID/stat`` after the command name (state first),
    where the system has them."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as fh:
            stat = fh.read()
        return stat[stat.rindex(b")") + 2:].split()
    except (OSError, ValueError):
        return None


def _start_time(fields: List[bytes]) -> Optional[float]:
    """When the process of those ``/proc/PID/stat`` fields started (seconds
    since the epoch), where the system tells."""
    boot = _boot_time()
    if boot is None:
        return None
    try:
        return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (ValueError, IndexError, OSError):
        return None


def process_gone(pid: int, since: Optional[float] = None) -> bool:
    """Has process ``pid`` of this machine ended?  With ``since`` (the time the
    process left its mark, e.g. a file's modification time), a process of that
    number started later is a different one: the pid was reused."""
    if pid <= 0 or pid > PID_MAX:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        pass
    except (OSError, OverflowError):
        return False
    fields = _proc_stat(pid)
    if fields is None:
        return False
    if _ended(fields):
        return True
    if since is not None:
        started = _start_time(fields)
        if started is not None and started > since + 1.0:
            return True
    return False


def owner_gone(pid: Optional[int], owner_host: Optional[str], ident: Optional[Tuple[str, int]],
               mtime: float) -> Optional[bool]:
    """Has the process that left a file (a dot-lock, a temporary file) ended?
    ``pid``, ``owner_host`` and ``ident`` are what the file says of it (see
    the module's docstring), ``mtime`` the file's modification time.
    ``None`` when that cannot be told from here: no pid (or one no process
    can have), another machine's name, another pid space's identity."""
    if pid is None or pid <= 0 or pid > PID_MAX or owner_host != host():
        return None
    if ident is None:
        return process_gone(pid, mtime)
    me = identity()
    if me is None or ident[0] != me[0]:
        return None
    fields = _proc_stat(pid)
    if fields is None:  # not to be seen here (hidepid): gone only if the system says so
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except OSError:
            pass
        return False
    try:
        started = int(fields[19])
    except (ValueError, IndexError):
        return False
    return _ended(fields) or started != ident[1]  # (or another process of that pid)


def left_behind(pid: Optional[int], owner_host: Optional[str], ident: Optional[Tuple[str, int]],
                mtime: float) -> bool:
    """:func:`owner_gone`, what cannot be told from here judged by age: gone
    once the file has not been touched for :data:`UNCHECKED_AGE` seconds."""
    gone = owner_gone(pid, owner_host, ident, mtime)
    return time.time() - mtime >= UNCHECKED_AGE if gone is None else gone


def _ended(fields: List[bytes]) -> bool:
    """A zombie (ended, not yet reaped by its parent), from ``/proc/PID/stat``
    fields; not a main thread that ended while its other threads run."""
    try:
        return fields[0] == b"Z" and int(fields[17]) <= 1
    except (ValueError, IndexError):
        return False


def sweep_temporaries(directory: str) -> int:
    """Remove the temporary files that fastdkim processes of this machine left
    in ``directory`` when they were killed; returns how many.  Files of
    processes still running (this one's among them), of other machines, and
    other names are left alone; so are those of another pid space (another
    container with this host name) until they have not been touched for
    :data:`UNCHECKED_AGE` seconds."""
    me = host()
    n = 0
    try:
        names = os.listdir(directory)
    except OSError:
        return 0
    for name in names:
        m = TEMP_PATTERN.match(name)
        if not m or m.group(1) != me:
            continue
        pid = int(m.group(2))
        ident = (m.group(3), int(m.group(4))) if m.group(3) else None
        if pid == os.getpid() and ident == identity():
            continue  # this process's own (without an identity where the system tells none)
        path = os.path.join(directory, name)
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if not left_behind(pid, me, ident, st.st_mtime):
            continue
        try:
            os.unlink(path)
            n += 1
        except OSError:
            pass
    return n


_IDENT = re.compile(rb"\A([0-9a-f]{12})-([0-9]{1,20})\Z")


def lock_owner(content: bytes) -> Tuple[Optional[int], Optional[str], Optional[Tuple[str, int]]]:
    """``(pid, host, identity)`` from a dot-lock's content (``PID``,
    ``PID\\nHOST`` or ``PID\\nHOST\\nSPACE-START``); ``None`` for what it does
    not hold (an empty lock, as some agents leave, holds none of them)."""
    parts = content.split(None, 3)
    if not parts or not parts[0].isdigit() or len(parts[0]) > 10:
        return None, None, None
    try:
        h: Optional[str] = parts[1].decode("ascii") if len(parts) > 1 else None
    except UnicodeDecodeError:
        h = "?"
    m = _IDENT.match(parts[2]) if len(parts) == 3 else None
    ident = (m.group(1).decode("ascii"), int(m.group(2))) if m else None
    return int(parts[0]), h, ident


def lock_content() -> bytes:
    me = identity()
    if me is None:
        return ("%d\n%s\n" % (os.getpid(), host())).encode("ascii")
    return ("%d\n%s\n%s-%d\n" % (os.getpid(), host(), me[0], me[1])).encode("ascii")


def exit_with(pid: int) -> None:
    """End this process as soon as process ``pid`` (the one that started the
    work) is gone, however it ended: the kernel is asked to kill this process
    when its parent dies (Linux), and a watcher thread checks every half
    second where it cannot, or when ``pid`` is not the direct parent."""
    import signal
    import threading

    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent or process_gone(pid):
                os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="fastdkim-parent-watch", daemon=True).start()
