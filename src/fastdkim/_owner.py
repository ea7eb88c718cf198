"""Who left a file behind: names and lock contents that carry a host and a
process id, and the test of whether that process is still running.

fastdkim's temporary files are named ``.fastdkim-HOST.PID.RANDOM.tmp`` and
its dot-locks hold ``PID\\nHOST\\n``, so that a later run can tell the leftovers
of a process that was killed (SIGKILL, power loss) from the files of one that
is still at work, and clean them up.
"""
from __future__ import annotations

import os
import re
import tempfile
import time
from typing import List, Optional, Tuple

__all__ = ["host", "temp_prefix", "mkstemp", "sweep_temporaries", "process_gone", "lock_owner", "lock_content",
           "TEMP_PATTERN"]

#: leftovers of fastdkim: ``.fastdkim-HOST.PID.RANDOM.tmp``
TEMP_PATTERN = re.compile(r"\A\.fastdkim-([A-Za-z0-9-]{0,64})\.([0-9]{1,10})\.[A-Za-z0-9_]+\.tmp\Z")


def host() -> str:
    """This machine's name, reduced to letters, digits and ``-`` (as file names carry it)."""
    try:  # (what gethostname() answers, without loading the socket module)
        node = os.uname().nodename
    except AttributeError:  # no uname (Windows)
        import socket

        node = socket.gethostname()
    name = re.sub(r"[^A-Za-z0-9-]", "-", node.split(".")[0])[:64]
    return name or "localhost"


def temp_prefix() -> str:
    return ".fastdkim-%s.%d." % (host(), os.getpid())


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
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        pass
    except OSError:
        return False
    fields = _proc_stat(pid)
    if fields is None:
        return False
    if fields[:1] == [b"Z"]:  # ended, not yet reaped by its parent
        return True
    if since is not None:
        started = _start_time(fields)
        if started is not None and started > since + 1.0:
            return True
    return False


def sweep_temporaries(directory: str) -> int:
    """Remove the temporary files that fastdkim processes of this machine left
    in ``directory`` when they were killed; returns how many.  Files of
    processes still running, of other machines, and other names are left alone."""
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
        path = os.path.join(directory, name)
        try:
            st = os.lstat(path)
        except OSError:
            continue
        pid = int(m.group(2))
        if pid == os.getpid() or not process_gone(pid, st.st_mtime):
            continue
        try:
            os.unlink(path)
            n += 1
        except OSError:
            pass
    return n


def lock_owner(content: bytes) -> Tuple[Optional[int], Optional[str]]:
    """``(pid, host)`` from a dot-lock's content (``PID`` or ``PID\\nHOST``);
    ``(None, None)`` when it holds no process id (an empty lock, as some
    agents leave)."""
    parts = content.split(None, 2)
    if not parts or not parts[0].isdigit() or len(parts[0]) > 10:
        return None, None
    try:
        h: Optional[str] = parts[1].decode("ascii") if len(parts) > 1 else None
    except UnicodeDecodeError:
        h = "?"
    return int(parts[0]), h


def lock_content() -> bytes:
    return ("%d\n%s\n" % (os.getpid(), host())).encode("ascii")


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
