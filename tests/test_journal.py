"""The in-place mbox rewrite and its recovery, killed (``os._exit`` in a forked
child, as abrupt as SIGKILL: no cleanup runs) at every step of the rewrite and
of the recovery, with and without mail delivered before the recovery."""
from __future__ import annotations

import errno
import fcntl
import os
import time

import pytest

from fastdkim import _owner, journal
from fastdkim.batch import MboxLock, MboxLockedError, recover_mbox
from fastdkim.errors import JournalError

OLD = b"".join(b"From a@x Mon Jan  1 00:00:00 2029\nSubject: m%d\n\nbody %d\n\n" % (i, i) for i in range(200))
NEW = OLD.replace(b"\nSubject:", b"\nDKIM-Signature: v=1; x\nSubject:")
DELIVERED = b"From late@x Mon Jan  1 00:00:00 2029\nSubject: late\n\nlate body\n\n"


def _in_child(fn):
    """Run ``fn`` in a forked child that dies however ``fn`` ends (``os._exit``, never cleanup)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            fn()
            os._exit(0)
        except BaseException:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _killed_at(monkeypatch, box, where, after=None):
    """Rewrite ``box`` from OLD to NEW in a child killed at ``where``."""

    def die(*a, **k):
        os._exit(137)

    def child():
        if where == "writing":
            def write(out):
                out.write(NEW[:1000])
                die()
        else:
            def write(out):
                out.write(NEW)
        if where == "before-extend":
            monkeypatch.setattr(journal, "_reserve", die)
        elif where == "extended-unreserved":  # grown, then killed reserving its room (a full disk)
            def reserve(fd, size):
                os.ftruncate(fd, size)
                os.fsync(fd)
                die()
            monkeypatch.setattr(journal, "_reserve", reserve)
        elif where == "extended-unmarked":
            real = journal._reserve

            def reserve(fd, size):
                real(fd, size)
                os.fsync(fd)
                die()
            monkeypatch.setattr(journal, "_reserve", reserve)
        elif where.startswith("copy"):
            part = int(where[4:])

            def copy(src, so, dst, do, length):
                n = length * part // 100
                os.pwrite(dst, os.pread(src, n, so), do)
                die()
            monkeypatch.setattr(journal, "_copy_range", copy)
        elif where == "copied":
            real_apply = journal._apply

            def apply(*a):
                real_apply(*a)
                die()
            monkeypatch.setattr(journal, "_apply", apply)
        with MboxLock(str(box), timeout=1, recover=False) as lock:
            journal.rewrite_in_place(lock.fh, write, str(box))

    assert _in_child(child) == 137


def _deny_temporaries(monkeypatch, directory):
    """Make ``directory`` refuse fastdkim's temporary files, as a directory it may not write would."""
    real = _owner.mkstemp

    def mkstemp(d):
        if d == str(directory):
            raise PermissionError(13, "Permission denied", d)
        return real(d)
    monkeypatch.setattr(_owner, "mkstemp", mkstemp)


WHERE = ["writing", "before-extend", "extended-unreserved", "extended-unmarked", "copy0", "copy1", "copy50", "copy99", "copy100", "copied"]


@pytest.mark.parametrize("delivered", [False, True], ids=["quiet", "mail-delivered-after-the-kill"])
@pytest.mark.parametrize("where", WHERE)
def test_killed_rewrite_is_completed_by_the_next_run(tmp_path, monkeypatch, where, delivered):
    box = tmp_path / "box"
    box.write_bytes(OLD)
    _killed_at(monkeypatch, box, where)
    lock = tmp_path / "box.lock"
    assert lock.exists()  # the dead process's dot-lock is left behind...
    if delivered:  # ...and a delivery agent that does not use dot-locks appends meanwhile
        with open(box, "ab") as fh:
            fcntl.lockf(fh, fcntl.LOCK_EX)
            fh.write(DELIVERED)
    monkeypatch.undo()
    what = recover_mbox(str(box), timeout=2)
    data = box.read_bytes()
    if where == "writing":  # killed before the journal was complete: the mbox was never touched
        assert what is None
        assert data == OLD + (DELIVERED if delivered else b"")
        with MboxLock(str(box), timeout=2):  # the stale lock is broken, the half journal swept
            pass
    else:
        assert what and "completed" in what
        assert data == NEW + (DELIVERED if delivered else b"")
    assert not lock.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["box"]  # no journal, no temporary file
    assert journal.find_journal(str(box)) is None


@pytest.mark.parametrize("delivered", [False, True], ids=["quiet", "mail-delivered-after-the-kill"])
def test_recovery_without_room_for_the_rewrite_leaves_the_mbox_readable(tmp_path, monkeypatch, delivered):
    """Killed after growing the mbox, before its room was reserved (the disk
    full): a recovery that finds no room either does not start copying (it
    could stop half way): the mbox goes back to as it was, or, with mail
    delivered behind the grown part, all is left for a recovery once there
    is room."""
    box = tmp_path / "box"
    box.write_bytes(OLD)
    _killed_at(monkeypatch, box, "extended-unreserved")
    monkeypatch.undo()
    assert len(box.read_bytes()) == len(NEW)
    if delivered:
        with open(box, "ab") as fh:
            fh.write(DELIVERED)

    def full(fd, start, length):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(journal, "_reserve_range", full)
    if not delivered:
        what = recover_mbox(str(box), timeout=2)
        assert "dropped: no room" in what and box.read_bytes() == OLD
        assert journal.find_journal(str(box)) is None
        return
    grown = box.read_bytes()
    with pytest.raises(journal.JournalError, match="no room"):
        recover_mbox(str(box), timeout=2)
    assert box.read_bytes() == grown and journal.find_journal(str(box)) is not None
    monkeypatch.undo()
    assert "completed" in recover_mbox(str(box), timeout=2)
    assert box.read_bytes() == NEW + DELIVERED


@pytest.mark.parametrize("where", ["copy50", "copied"])
def test_a_killed_recovery_is_recovered(tmp_path, monkeypatch, where):
    box = tmp_path / "box"
    box.write_bytes(OLD)
    _killed_at(monkeypatch, box, "copy30")
    monkeypatch.undo()

    def recover_and_die():
        if where == "copy50":
            def copy(src, so, dst, do, length):
                os.pwrite(dst, os.pread(src, length // 2, so), do)
                os._exit(137)
            monkeypatch.setattr(journal, "_copy_range", copy)
        else:
            monkeypatch.setattr(journal, "_drop", lambda j: os._exit(137))
        recover_mbox(str(box), timeout=2)

    assert _in_child(recover_and_die) == 137
    monkeypatch.undo()
    assert "completed" in recover_mbox(str(box), timeout=2)
    assert box.read_bytes() == NEW
    assert sorted(p.name for p in tmp_path.iterdir()) == ["box"]


def test_journal_of_an_mbox_changed_by_another_program_before_the_rewrite_is_dropped(tmp_path, monkeypatch):
    box = tmp_path / "box"
    box.write_bytes(OLD)
    _killed_at(monkeypatch, box, "before-extend")
    monkeypatch.undo()
    box.write_bytes(OLD[:500])  # a mail client expunged messages meanwhile (after breaking the stale lock)
    what = recover_mbox(str(box), timeout=2)
    assert "dropped" in what and box.read_bytes() == OLD[:500]
    assert journal.find_journal(str(box)) is None


def test_journal_of_a_replaced_mbox_is_kept_and_reported(tmp_path, monkeypatch):
    box = tmp_path / "box"
    box.write_bytes(OLD)
    _killed_at(monkeypatch, box, "copy50")
    monkeypatch.undo()
    os.unlink(box)
    box.write_bytes(OLD)  # another file under the name
    with pytest.raises(journal.JournalError, match="replaced") as info:
        recover_mbox(str(box), timeout=2)
    kept = [p for p in tmp_path.iterdir() if ".unusable-" in p.name]
    assert len(kept) == 1 and str(kept[0]) in str(info.value)
    assert kept[0].read_bytes()[journal.HEADER:journal.HEADER + len(NEW)] == NEW  # the complete signed copy
    assert recover_mbox(str(box), timeout=2) is None  # the next run goes ahead


def test_damaged_journal_before_the_rewrite_is_dropped(tmp_path, monkeypatch):
    box = tmp_path / "box"
    box.write_bytes(OLD)
    _killed_at(monkeypatch, box, "extended-unmarked")
    monkeypatch.undo()
    j = journal.find_journal(str(box))
    with open(j, "r+b") as fh:
        fh.seek(journal.HEADER + 10)
        fh.write(b"#")
    what = recover_mbox(str(box), timeout=2)
    assert "dropped" in what and box.read_bytes() == OLD  # the NUL extension taken back


def test_journal_goes_to_the_state_directory_when_the_mbox_directory_is_read_only(tmp_path, monkeypatch):
    if os.geteuid() == 0:
        # root writes into read-only directories: make the directory unusable for temporary files instead
        _deny_temporaries(monkeypatch, tmp_path / "spool")
    spool = tmp_path / "spool"
    spool.mkdir()
    box = spool / "box"
    box.write_bytes(OLD)
    monkeypatch.setenv("FASTDKIM_STATE_DIR", str(tmp_path / "state"))
    if os.geteuid() != 0:
        spool.chmod(0o555)
    try:
        with open(box, "r+b") as fh:
            seen = []
            real_apply = journal._apply

            def apply(*a):
                seen.append(journal.find_journal(str(box)))
                real_apply(*a)
            monkeypatch.setattr(journal, "_apply", apply)
            assert journal.rewrite_in_place(fh, lambda out: out.write(NEW), str(box))
        assert seen[0].startswith(str(tmp_path / "state"))
        assert box.read_bytes() == NEW and journal.find_journal(str(box)) is None
    finally:
        spool.chmod(0o755)


def _killed_with_its_journal_in_the_state_directory(tmp_path, monkeypatch):
    """An mbox in a directory fastdkim may not write, its rewrite killed half
    way, its journal in $FASTDKIM_STATE_DIR (set): the mbox's path."""
    spool = tmp_path / "spool"
    spool.mkdir()
    box = spool / "box"
    box.write_bytes(OLD)
    monkeypatch.setenv("FASTDKIM_STATE_DIR", str(tmp_path / "state"))
    _deny_temporaries(monkeypatch, spool)
    _killed_at(monkeypatch, box, "copy50")
    return box


def test_state_directory_journal_found_without_the_mbox_path(tmp_path, monkeypatch):
    from fastdkim.batch import recover_all

    box = _killed_with_its_journal_in_the_state_directory(tmp_path, monkeypatch)
    monkeypatch.undo()
    monkeypatch.setenv("FASTDKIM_STATE_DIR", str(tmp_path / "state"))
    assert [(p, "completed" in w) for p, w in recover_all(timeout=2)] == [(str(box), True)]
    assert box.read_bytes() == NEW


def test_a_journal_in_the_variables_state_directory_is_found_by_a_run_without_it(tmp_path, monkeypatch):
    """A rewrite whose journal went to $FASTDKIM_STATE_DIR (the mbox's
    directory not writable), killed: a run without the variable finds it
    through the note left where such a run looks, and completes it (instead
    of signing the half rewritten mbox again)."""
    from fastdkim.batch import recover_all
    from fastdkim import journal_location

    home = tmp_path / "default"
    monkeypatch.setattr(journal_location, "_default_state_dir", lambda: str(home))
    monkeypatch.setattr(journal_location, "_state_dirs", lambda owner=None: (
        [os.path.join(os.environ["FASTDKIM_STATE_DIR"], "journals")] if os.environ.get("FASTDKIM_STATE_DIR")
        else []) + [str(home)])
    box = _killed_with_its_journal_in_the_state_directory(tmp_path, monkeypatch)
    monkeypatch.delenv("FASTDKIM_STATE_DIR")
    found = journal.find_journal(str(box))
    assert found is not None and found.startswith(str(tmp_path / "state"))
    assert [p for p, _ in recover_all(timeout=2)] == [str(box)]
    assert box.read_bytes() == NEW and journal.find_journal(str(box)) is None
    assert os.listdir(home) == []  # the note went with the journal
    # a rewrite that completes leaves no note either
    monkeypatch.setenv("FASTDKIM_STATE_DIR", str(tmp_path / "state"))
    with open(box, "r+b") as fh:
        assert journal.rewrite_in_place(fh, lambda out: out.write(NEW + b"more\n"), str(box))
    assert os.listdir(home) == [] and box.read_bytes() == NEW + b"more\n"


def test_unchanged_content_is_not_written(tmp_path):
    box = tmp_path / "box"
    box.write_bytes(OLD)
    mtime = box.stat().st_mtime_ns
    with MboxLock(str(box), timeout=1) as lock:
        assert journal.rewrite_in_place(lock.fh, lambda out: out.write(OLD), str(box)) is False
    assert box.stat().st_mtime_ns == mtime
    assert sorted(p.name for p in tmp_path.iterdir()) == ["box"]


def test_shorter_content_is_refused_before_anything_changes(tmp_path):
    box = tmp_path / "box"
    box.write_bytes(OLD)
    with MboxLock(str(box), timeout=1) as lock:
        with pytest.raises(ValueError, match="shorter"):
            journal.rewrite_in_place(lock.fh, lambda out: out.write(OLD[:-1]), str(box))
    assert box.read_bytes() == OLD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["box"]


# -- dot-locks ------------------------------------------------------------------------------


def _dead_pid():
    pid = os.fork()
    if pid == 0:  # pragma: no cover
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


def test_dot_lock_holds_pid_and_host(tmp_path):
    """PID and HOST on two lines, as delivery agents write them; then, where
    the system tells it, the process's identity (pid space and start time)."""
    box = tmp_path / "box"
    box.write_bytes(OLD)
    with MboxLock(str(box), timeout=1):
        content = (tmp_path / "box.lock").read_bytes()
    first = b"%d\n%s\n" % (os.getpid(), _owner.host().encode())
    me = _owner.identity()
    if me is None:
        assert content == first
    else:
        assert content == first + b"%s-%d\n" % (me[0].encode(), me[1])
        assert _owner.lock_owner(content) == (os.getpid(), _owner.host(), me)


@pytest.mark.parametrize("content", ["{dead}\n{host}\n", "{dead} {host}"])
def test_stale_dot_lock_of_a_dead_process_is_removed(tmp_path, content):
    box = tmp_path / "box"
    box.write_bytes(OLD)
    (tmp_path / "box.lock").write_text(content.format(dead=_dead_pid(), host=_owner.host()))
    with MboxLock(str(box), timeout=0.5):
        assert (tmp_path / "box.lock").read_bytes().startswith(b"%d\n" % os.getpid())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["box"]


@pytest.mark.parametrize("content", ["{live}\n{host}\n", "{live}\n", "", "{dead}\nanother-host\n", "junk",
                                     "{dead}\n", "{dead}"])
def test_dot_lock_of_a_live_process_other_host_or_unknown_owner_is_waited_for(tmp_path, content):
    box = tmp_path / "box"
    box.write_bytes(OLD)
    # pid 1 is always running; a dead pid on another machine says nothing about that machine, and
    # a bare pid may be another machine's or another pid namespace's
    (tmp_path / "box.lock").write_text(content.format(live=1, dead=_dead_pid(), host=_owner.host()))
    with pytest.raises(MboxLockedError):
        with MboxLock(str(box), timeout=0.3):
            pass
    assert (tmp_path / "box.lock").exists()


def test_dot_lock_of_a_reused_pid_is_stale(tmp_path):
    box = tmp_path / "box"
    box.write_bytes(OLD)
    lock = tmp_path / "box.lock"
    lock.write_text("1\n%s\n" % _owner.host())
    os.utime(lock, (0, 0))  # made in 1970: pid 1 started after it, so it is another process of that number
    with MboxLock(str(box), timeout=0.5):
        pass
    assert not lock.exists()


def test_temporary_files_of_dead_processes_are_swept(tmp_path):
    dead, host = _dead_pid(), _owner.host()
    stale = tmp_path / (".fastdkim-%s.%d.abc123.tmp" % (host, dead))
    live = tmp_path / (".fastdkim-%s.%d.abc123.tmp" % (host, os.getppid()))
    other = tmp_path / (".fastdkim-elsewhere.%d.abc123.tmp" % dead)
    mine = tmp_path / ".fastdkim-unrelated"
    for p in (stale, live, other, mine):
        p.write_bytes(b"x")
    assert _owner.sweep_temporaries(str(tmp_path)) == 1
    assert not stale.exists() and live.exists() and other.exists() and mine.exists()


needs_identity = pytest.mark.skipif(_owner.identity() is None, reason="the system does not tell a process's identity")


@pytest.fixture
def sleeper():
    """A live child process and its identity as a lock names it."""
    import subprocess
    import sys

    p = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        for _ in range(100):
            fields = _owner._proc_stat(p.pid)
            start = int(fields[19]) if fields else None
            if start is not None:
                break
            time.sleep(0.01)
        yield p.pid, (_owner.identity()[0], start)
    finally:
        p.communicate(b"")


def _lock_of(pid, ident, host=None):
    return "%d\n%s\n%s-%d\n" % (pid, host or _owner.host(), ident[0], ident[1])


@needs_identity
def test_a_lock_of_a_live_process_is_waited_for_whatever_its_file_time(tmp_path, sleeper):
    """With the owner's start time in the lock, a clock step (a lock whose
    file time is before its process started) no longer looks like a pid
    reused by a later process."""
    pid, ident = sleeper
    box = tmp_path / "box"
    box.write_bytes(OLD)
    lock = tmp_path / "box.lock"
    lock.write_text(_lock_of(pid, ident))
    os.utime(lock, (0, 0))
    with pytest.raises(MboxLockedError):
        with MboxLock(str(box), timeout=0.3):
            pass  # pragma: no cover - never reached
    assert lock.read_text() == _lock_of(pid, ident)


@needs_identity
def test_a_lock_of_a_reused_pid_is_stale_whatever_its_file_time(tmp_path, sleeper):
    """A running process of the lock's pid that started at another time is
    another process of that number: the lock is stale, however new its file."""
    pid, (space, start) = sleeper
    box = tmp_path / "box"
    box.write_bytes(OLD)
    lock = tmp_path / "box.lock"
    lock.write_text(_lock_of(pid, (space, start + 1)))
    with MboxLock(str(box), timeout=0.5) as held:
        assert held.stale_lock_removed
    assert not lock.exists()


@needs_identity
@pytest.mark.parametrize("whose", ["dead", "mine"])
def test_a_lock_of_another_pid_space_is_waited_for_until_untouched_for_long(tmp_path, whose):
    """Another container with this host name: its pids say nothing here (not
    even this process's own pid), so its lock is judged by age alone."""
    from fastdkim.mailstore import UNCHECKED_LOCK_AGE

    box = tmp_path / "box"
    box.write_bytes(OLD)
    lock = tmp_path / "box.lock"
    pid = _dead_pid() if whose == "dead" else os.getpid()
    other_space = "0" * 12 if _owner.identity()[0] != "0" * 12 else "1" * 12
    lock.write_text(_lock_of(pid, (other_space, 12345)))
    with pytest.raises(MboxLockedError):
        with MboxLock(str(box), timeout=0.3):
            pass  # pragma: no cover - never reached
    assert lock.exists()
    old = time.time() - UNCHECKED_LOCK_AGE - 5
    os.utime(lock, (old, old))
    with MboxLock(str(box), timeout=0.5) as held:
        assert held.stale_lock_removed
    assert not lock.exists()


def test_a_stale_lock_is_not_broken_while_the_mbox_is_flocked(tmp_path):
    """Breakers take the mbox's flock: while another breaker (or an agent at
    work) holds it, a stale lock is left alone, so that two breakers never
    judge the same stale lock and the second moves aside the first's new one."""
    box = tmp_path / "box"
    box.write_bytes(OLD)
    lock = tmp_path / "box.lock"
    content = "%d\n%s\n" % (_dead_pid(), _owner.host())
    lock.write_text(content)
    with open(box, "rb") as other:  # (another open file: flock locks conflict between them)
        fcntl.flock(other.fileno(), fcntl.LOCK_EX)
        with pytest.raises(MboxLockedError, match="another program holds the mbox"):
            with MboxLock(str(box), timeout=0.3):
                pass  # pragma: no cover - never reached
        assert lock.read_text() == content
    with MboxLock(str(box), timeout=0.5) as held:
        assert held.stale_lock_removed


def _temp(tmp_path, pid, ident=None, host=None, tag="abc123"):
    name = ".fastdkim-%s.%d.%s%s.tmp" % (host or _owner.host(), pid, "" if ident is None else "%s-%d." % ident, tag)
    path = tmp_path / name
    path.write_bytes(b"x")
    assert _owner.TEMP_PATTERN.match(name)
    return path


@needs_identity
def test_sweep_tells_this_process_from_an_earlier_one_of_its_pid(tmp_path):
    """In a container every run may have the same pid: a temporary file of
    this pid is this process's own only if it names this process's start."""
    space, start = _owner.identity()
    mine = _temp(tmp_path, os.getpid(), (space, start))
    earlier = _temp(tmp_path, os.getpid(), (space, start - 7))
    fd, made = _owner.mkstemp(str(tmp_path))
    os.close(fd)
    assert os.path.basename(made).startswith(_owner.temp_prefix())
    assert _owner.sweep_temporaries(str(tmp_path)) == 1
    assert mine.exists() and not earlier.exists() and os.path.exists(made)


def test_sweep_takes_an_older_name_of_this_pid_for_an_earlier_process(tmp_path):
    """Names without the identity (an older fastdkim): one of this pid made
    before this process started is an earlier process's."""
    before = _temp(tmp_path, os.getpid())
    os.utime(before, (0, 0))
    now = _temp(tmp_path, os.getpid(), tag="def456")
    removed = _owner.sweep_temporaries(str(tmp_path))
    if _owner._proc_stat(os.getpid()) is None:  # (no process start times here)
        assert removed == 0
    else:
        assert removed == 1 and not before.exists()
    assert now.exists()


@needs_identity
def test_sweep_judges_by_identity_then_by_age(tmp_path, sleeper):
    from fastdkim.mailstore import UNCHECKED_LOCK_AGE

    pid, ident = sleeper
    live = _temp(tmp_path, pid, ident)
    os.utime(live, (0, 0))  # (a clock step: the start time decides)
    reused = _temp(tmp_path, pid, (ident[0], ident[1] + 1))
    other_space = "0" * 12 if ident[0] != "0" * 12 else "1" * 12
    fresh = _temp(tmp_path, _dead_pid(), (other_space, 5))
    old = _temp(tmp_path, _dead_pid(), (other_space, 6))
    then = time.time() - UNCHECKED_LOCK_AGE - 5
    os.utime(old, (then, then))
    elsewhere = _temp(tmp_path, _dead_pid(), ident, host="elsewhere")
    os.utime(elsewhere, (0, 0))
    assert _owner.sweep_temporaries(str(tmp_path)) == 2
    assert live.exists() and not reused.exists() and fresh.exists() and not old.exists() and elsewhere.exists()


def _in_another_time_namespace(code, *args):
    """Run python ``code`` in a new time namespace (boot time shifted), or skip."""
    import shutil
    import subprocess
    import sys

    if shutil.which("unshare") is None:
        pytest.skip("no unshare command")
    cmd = ["unshare", "-T", "--fork", "--boottime", "1000", sys.executable, "-c", code, *map(str, args)]
    got = subprocess.run(cmd, capture_output=True)
    if got.returncode != 0 and b"unshare" in got.stderr:
        pytest.skip("no time namespaces here: %s" % got.stderr.decode(errors="replace").strip())
    assert got.returncode == 0, got.stderr
    return got.stdout.decode()


@needs_identity
def test_a_process_in_another_time_namespace_sweeps_no_live_temporary_file(tmp_path):
    """Process start times in /proc are shifted by the reader's time
    namespace: from another one, a live process's identity would not match,
    so a time namespace is part of the pid space."""
    fd, live = _owner.mkstemp(str(tmp_path))
    os.close(fd)
    lock = tmp_path / "box.lock"
    lock.write_bytes(_owner.lock_content())
    out = _in_another_time_namespace(
        "import os, sys\nfrom fastdkim import _owner\n"
        "st = os.lstat(sys.argv[2])\n"
        "print(_owner.sweep_temporaries(sys.argv[1]),"
        " _owner.owner_gone(*_owner.lock_owner(open(sys.argv[2], 'rb').read()), st.st_mtime),"
        " _owner.identity()[0] != sys.argv[3])\n", tmp_path, lock, _owner.identity()[0])
    assert out.split() == ["0", "None", "True"]
    assert os.path.exists(live)


@pytest.mark.parametrize("pid", ["9999999999", "0", "4194305"])
def test_pids_no_process_can_have_are_judged_by_age(tmp_path, pid):
    """A planted name or lock with a pid beyond what the system gives (os.kill
    would overflow) or 0 is nobody's that can be checked: judged by age, never
    a crash of every command on the mbox."""
    from fastdkim.mailstore import UNCHECKED_LOCK_AGE

    space = (_owner.identity() or ("0" * 12, 0))[0]
    temps = [_temp(tmp_path, int(pid)), _temp(tmp_path, int(pid), (space, 5), tag="def456")]
    assert _owner.sweep_temporaries(str(tmp_path)) == 0
    box = tmp_path / "box"
    box.write_bytes(OLD)
    lock = tmp_path / "box.lock"
    lock.write_text("%s\n%s\n" % (pid, _owner.host()))
    with pytest.raises(MboxLockedError):
        with MboxLock(str(box), timeout=0.3):
            pass  # pragma: no cover - never reached
    old = time.time() - UNCHECKED_LOCK_AGE - 5
    for p in temps + [lock]:
        os.utime(p, (old, old))
    with MboxLock(str(box), timeout=0.5) as held:
        assert held.stale_lock_removed and held.temporaries_removed == 2


def test_without_an_identity_this_process_never_sweeps_its_own(tmp_path, monkeypatch):
    """Where the system tells no identity, a file of this pid is this
    process's own, however old its time (a clock step, a server's clock)."""
    monkeypatch.setattr(_owner, "identity", lambda: None)
    fd, mine = _owner.mkstemp(str(tmp_path))
    os.close(fd)
    os.utime(mine, (0, 0))
    assert _owner.sweep_temporaries(str(tmp_path)) == 0 and os.path.exists(mine)


def test_a_zombie_main_thread_with_live_threads_is_not_gone():
    fields = [b"Z"] + [b"0"] * 16
    assert _owner._ended(fields + [b"1", b"0", b"5"])
    assert not _owner._ended(fields + [b"2", b"0", b"5"])  # the main thread ended, another runs
    assert not _owner._ended([b"S"] + [b"0"] * 16 + [b"1"])


@pytest.mark.parametrize("content, expected", [
    (b"12\nhost\n0123456789ab-345\n", (12, "host", ("0123456789ab", 345))),
    (b"12\nhost\n", (12, "host", None)),
    (b"12\nhost\nnot-an-identity\n", (12, "host", None)),
    (b"12\nhost\n0123456789ab-345\nmore\n", (12, "host", None)),
    (b"12\nhost\n0123456789AB-345\n", (12, "host", None)),
    (b"12", (12, None, None)),
    (b"", (None, None, None)),
])
def test_lock_owner_reads_pid_host_and_identity(content, expected):
    assert _owner.lock_owner(content) == expected


# -- journals that must not be applied --------------------------------------------------------


@pytest.mark.parametrize("how", ["group-writable", "symlink", "hard-link", "cannot-open"])
def test_a_journal_fastdkim_may_not_apply_stops_every_run(tmp_path, monkeypatch, how):
    """A journal of a trusted owner (here this user) that is not one fastdkim
    may apply (writable by others, a link, two links as a backup's hard
    link makes, or one this user cannot open) is not applied, and since the
    mbox may be half rewritten, nothing goes on with it: recover and sign
    stop with the journal named, and leave both as they are."""
    box = tmp_path / "box"
    box.write_bytes(OLD)
    _killed_at(monkeypatch, box, "copy50")
    monkeypatch.undo()
    j = tmp_path / ".box.fastdkim-journal"
    half = box.read_bytes()
    if how == "group-writable":
        j.chmod(0o666)
    elif how == "symlink":
        real = tmp_path / "elsewhere"
        j.rename(real)
        j.symlink_to(real)
    elif how == "hard-link":
        os.link(j, tmp_path / "second-name")
    else:
        real_open = os.open

        def no_open(path, flags, *a):
            if str(path) == str(j):
                raise PermissionError(errno.EACCES, "Permission denied", str(path))
            return real_open(path, flags, *a)
        monkeypatch.setattr(os, "open", no_open)
    with pytest.raises(JournalError, match="fastdkim-journal"):
        recover_mbox(str(box), timeout=2)
    with pytest.raises(JournalError):
        with MboxLock(str(box), timeout=2):
            pass
    assert box.read_bytes() == half  # not written
    assert j.exists() or j.is_symlink()


def test_another_users_file_at_the_journal_name_is_ignored(tmp_path, monkeypatch):
    """Someone who can create files beside the mbox cannot make fastdkim write
    it, nor stop it: a file of another (not root) user there is not fastdkim's."""
    box = tmp_path / "box"
    box.write_bytes(OLD)
    j = tmp_path / ".box.fastdkim-journal"
    j.write_bytes(b"planted")
    os.chown(j, 65534, 65534)
    if os.stat(j).st_uid == os.geteuid():
        pytest.skip("cannot give the file to another user here")
    what = recover_mbox(str(box), timeout=2)
    assert "ignored" in what and "another user" in what
    with MboxLock(str(box), timeout=2):
        pass
    assert box.read_bytes() == OLD and j.read_bytes() == b"planted"


def test_mbox_changed_after_the_kill_is_not_written_over(tmp_path, monkeypatch):
    box = tmp_path / "box"
    box.write_bytes(OLD)
    _killed_at(monkeypatch, box, "copied")  # killed after the copy, before the journal was removed
    monkeypatch.undo()
    data = box.read_bytes()
    assert data == NEW
    changed = data.replace(b"\nSubject:", b"\nStatus: RO\nSubject:")  # a mail client marked every message read
    box.write_bytes(changed)
    with pytest.raises(journal.JournalError, match="changed by another program"):
        recover_mbox(str(box), timeout=2)
    assert box.read_bytes() == changed


def test_torn_block_where_the_copy_was_cut_is_expected(tmp_path, monkeypatch):
    box = tmp_path / "box"
    box.write_bytes(OLD)
    _killed_at(monkeypatch, box, "copy37")  # (not on a block boundary)
    monkeypatch.undo()
    assert "completed" in recover_mbox(str(box), timeout=2)
    assert box.read_bytes() == NEW


def test_journal_of_another_version_stops_every_run(tmp_path, monkeypatch):
    box = tmp_path / "box"
    box.write_bytes(OLD)
    _killed_at(monkeypatch, box, "copy50")
    monkeypatch.undo()
    j = tmp_path / ".box.fastdkim-journal"
    with open(j, "r+b") as fh:
        fh.write(b"fastdkim-journal 2\n")
    half = box.read_bytes()
    for _ in range(2):
        with pytest.raises(journal.JournalError, match="another fastdkim version"):
            recover_mbox(str(box), timeout=2)
        with pytest.raises(journal.JournalError):
            with MboxLock(str(box), timeout=2):
                pass
    assert box.read_bytes() == half and j.exists() and not (tmp_path / "box.lock").exists()


def test_copy_error_is_retried_then_reported_with_the_way_out(tmp_path, monkeypatch):
    import errno

    box = tmp_path / "box"
    box.write_bytes(OLD)
    calls = []
    real = journal._copy_range

    def flaky(*a):
        calls.append(1)
        if len(calls) < 3:
            raise OSError(errno.EIO, "Input/output error")
        real(*a)
    monkeypatch.setattr(journal, "_copy_range", flaky)
    monkeypatch.setattr(journal.time, "sleep", lambda s: None)
    with MboxLock(str(box), timeout=1) as lock:
        assert journal.rewrite_in_place(lock.fh, lambda out: out.write(NEW), str(box))
    assert box.read_bytes() == NEW and len(calls) == 3

    box.write_bytes(OLD)
    calls.clear()

    def broken(*a):
        raise OSError(errno.EIO, "Input/output error")
    monkeypatch.setattr(journal, "_copy_range", broken)
    with MboxLock(str(box), timeout=1) as lock:
        with pytest.raises(OSError, match="fastdkim recover"):
            journal.rewrite_in_place(lock.fh, lambda out: out.write(NEW), str(box))
    monkeypatch.undo()
    assert "completed" in recover_mbox(str(box), timeout=2)
    assert box.read_bytes() == NEW


def test_recover_all_goes_on_past_an_mbox_it_cannot_recover(tmp_path, monkeypatch):
    from fastdkim.batch import recover_all

    monkeypatch.setenv("FASTDKIM_STATE_DIR", str(tmp_path / "state"))
    spool = tmp_path / "spool"
    spool.mkdir()
    boxes = []
    for name in ("a", "b", "c"):
        box = spool / name
        box.write_bytes(OLD)
        _deny_temporaries(monkeypatch, spool)
        _killed_at(monkeypatch, box, "copy50")
        monkeypatch.undo()
        monkeypatch.setenv("FASTDKIM_STATE_DIR", str(tmp_path / "state"))
        boxes.append(box)
    boxes[0].unlink()  # one mbox deleted since
    results = dict(recover_all(timeout=2))
    assert "gone" in results[str(boxes[0])]
    assert all("completed" in results[str(b)] for b in boxes[1:])
    assert boxes[1].read_bytes() == boxes[2].read_bytes() == NEW


def test_stale_lock_in_a_directory_fastdkim_may_not_write(tmp_path, monkeypatch):
    box = tmp_path / "box"
    box.write_bytes(OLD)
    lock = tmp_path / "box.lock"
    lock.write_text("%d\n%s\n" % (_dead_pid(), _owner.host()))
    _deny_temporaries(monkeypatch, tmp_path)
    real_open = os.open

    def no_create(path, flags, *a):
        if str(path) == str(lock) and flags & os.O_CREAT:
            if os.path.exists(path):
                raise FileExistsError(17, "File exists", path)
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, flags, *a)
    monkeypatch.setattr(os, "open", no_create)
    with MboxLock(str(box), timeout=0.5):  # the stale lock cannot go: work on as without a dot-lock
        pass
    assert lock.exists()


def test_a_lock_that_is_no_longer_ours_is_not_removed(tmp_path):
    box = tmp_path / "box"
    box.write_bytes(OLD)
    lock = tmp_path / "box.lock"
    with MboxLock(str(box), timeout=1):
        lock.unlink()  # an agent broke it by age and took its own
        lock.write_text("12345\nagent-host\n")
    assert lock.read_text() == "12345\nagent-host\n"


# -- Maildir: a message filed by a mail client while it is being signed ---------------------


def test_replace_only_the_file_that_was_read(tmp_path):
    from fastdkim._files import ReplacedMeanwhile, atomic_write, file_identity

    p = tmp_path / "m"
    p.write_bytes(b"old")
    st = p.stat()
    atomic_write(str(p), lambda o: o.write(b"new"), overwrite=True, expect=file_identity(st))
    assert p.read_bytes() == b"new" and sorted(os.listdir(tmp_path)) == ["m"]
    st = p.stat()
    p.rename(tmp_path / "m:2,S")  # filed away meanwhile
    with pytest.raises(ReplacedMeanwhile):
        atomic_write(str(p), lambda o: o.write(b"newer"), overwrite=True, expect=file_identity(st))
    assert sorted(os.listdir(tmp_path)) == ["m:2,S"] and (tmp_path / "m:2,S").read_bytes() == b"new"
    other = tmp_path / "m"
    other.write_bytes(b"someone else's")  # and another file put under the name
    with pytest.raises(ReplacedMeanwhile):
        atomic_write(str(other), lambda o: o.write(b"newer"), overwrite=True, expect=file_identity(st))
    assert other.read_bytes() == b"someone else's" and sorted(os.listdir(tmp_path)) == ["m", "m:2,S"]


def _sign_in_place_while(tmp_path, monkeypatch, where, meanwhile):
    """``fastdkim sign --in-place`` of ``where`` with one job (files in name
    order), ``meanwhile()`` run once the first file has been read and
    signed, before anything is put in place; the exit status."""
    from fastdkim import cli
    from fastdkim.cli import sign as cli_sign

    from fastdkim.keys import generate_private_key
    from cryptography.hazmat.primitives import serialization

    key = tmp_path / "k.pem"
    key.write_bytes(generate_private_key("ed25519").private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    real = cli_sign._sign_stream
    calls = []

    def hooked(setup, message):
        out = real(setup, message)
        if not calls:
            meanwhile()
        calls.append(message)
        return out
    monkeypatch.setattr(cli_sign, "_sign_stream", hooked)
    return cli.main(["sign", "--domain", "example.com", "--selector", "ed", "--key", str(key), "--in-place",
                     "--jobs", "1", "--quiet", str(where)])


def test_maildir_message_moved_while_signed_is_not_duplicated(tmp_path, monkeypatch):
    md = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (md / sub).mkdir(parents=True)
    msg = b"From: a@example.com\nSubject: s\n\nbody\n"
    (md / "new" / "1.M1.host").write_bytes(msg)
    (md / "new" / "2.M2.host").write_bytes(msg)

    def client_files_it():  # the client reads 1.M1.host meanwhile
        os.rename(str(md / "new" / "1.M1.host"), str(md / "cur" / "1.M1.host:2,S"))
    assert _sign_in_place_while(tmp_path, monkeypatch, md, client_files_it) == 1  # one message not signed
    files = sorted(os.path.join(s, f) for s in ("cur", "new", "tmp") for f in os.listdir(md / s))
    assert files == ["cur/1.M1.host:2,S", "new/2.M2.host"]
    assert (md / "cur" / "1.M1.host:2,S").read_bytes() == msg
    assert (md / "new" / "2.M2.host").read_bytes().startswith(b"DKIM-Signature:")


@pytest.mark.parametrize("swap", [True, False], ids=["atomic-swap", "check-then-replace"])
def test_a_file_written_to_while_signed_in_place_keeps_what_was_written(tmp_path, monkeypatch, swap):
    """A message file appended to (same file, same name) after it was read:
    the signed copy, made from what was read, does not replace it."""
    from fastdkim import _files

    if not swap:
        monkeypatch.setattr(_files, "_exchange", lambda a, b: False)
    box = tmp_path / "dir"
    box.mkdir()
    msg = b"From: a@example.com\nSubject: s\n\nbody\n"
    for name in ("1.eml", "2.eml"):
        (box / name).write_bytes(msg)

    def writer_appends():  # (1.eml is being signed)
        with open(str(box / "1.eml"), "ab") as fh:
            fh.write(b"more body\n")
    assert _sign_in_place_while(tmp_path, monkeypatch, box, writer_appends) == 1  # one message not signed
    assert sorted(os.listdir(box)) == ["1.eml", "2.eml"]
    assert (box / "1.eml").read_bytes() == msg + b"more body\n"
    assert (box / "2.eml").read_bytes().startswith(b"DKIM-Signature:")


_STEPS = ("open", "write", "fchmod", "fstat", "close", "link", "unlink", "rename", "replace")


@pytest.mark.parametrize("after", [False, True], ids=["before-the-call", "after-the-call"])
def test_killed_at_any_step_of_taking_the_lock_leaves_no_lock_to_wait_for(tmp_path, monkeypatch, after):
    """A dot-lock is never there without its owner's pid, even for a moment:
    a process killed at any system call while taking (or letting go) the
    lock leaves nothing that the next run waits for, nor any file beside
    the mbox once the next run is done."""
    box = tmp_path / "box"
    box.write_bytes(OLD)
    n = 0
    while True:
        def child(n=n):
            count = [0]
            for name in _STEPS:
                real = getattr(os, name)

                def step(*a, _real=real, **k):
                    if count[0] == n and not after:
                        os._exit(137)
                    got = _real(*a, **k)
                    if count[0] == n:
                        os._exit(137)
                    count[0] += 1
                    return got
                monkeypatch.setattr(os, name, step)
            with MboxLock(str(box), timeout=1):
                pass

        code = _in_child(child)
        monkeypatch.undo()
        assert code in (0, 137)
        with MboxLock(str(box), timeout=1) as lock:  # never kept waiting by the dead process
            assert lock.recovered is None
        assert sorted(p.name for p in tmp_path.iterdir()) == ["box"], n
        assert box.read_bytes() == OLD
        if code == 0:
            break
        n += 1
    assert n > 5  # (every step was reached)


def test_a_link_reported_failed_but_made_takes_the_lock(tmp_path, monkeypatch):
    """Over NFS, a link that was made can come back as an error (the reply
    to a retried request): the temporary file's link count says the lock is
    taken, and it is held and let go as any other."""
    box = tmp_path / "box"
    box.write_bytes(OLD)
    real = os.link

    def link(src, dst, *a, **k):
        real(src, dst, *a, **k)
        raise FileExistsError(errno.EEXIST, "File exists", dst)
    monkeypatch.setattr(os, "link", link)
    with MboxLock(str(box), timeout=0.5) as lock:
        assert (tmp_path / "box.lock").read_bytes() == _owner.lock_content()
        assert not lock.stale_lock_removed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["box"]


@pytest.mark.parametrize("code", [errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK])
def test_a_file_system_without_hard_links_still_gets_a_dot_lock(tmp_path, monkeypatch, code):
    box = tmp_path / "box"
    box.write_bytes(OLD)

    def link(src, dst, *a, **k):
        raise OSError(code, os.strerror(code), dst)
    monkeypatch.setattr(os, "link", link)
    with MboxLock(str(box), timeout=0.5):
        assert (tmp_path / "box.lock").read_bytes() == _owner.lock_content()
        with pytest.raises(MboxLockedError):  # and it is a lock: a second one waits, then gives up
            with MboxLock(str(box), timeout=0.2):
                pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["box"]


def test_a_link_refused_for_another_reason_is_an_error_not_a_missing_lock(tmp_path, monkeypatch):
    box = tmp_path / "box"
    box.write_bytes(OLD)

    def link(src, dst, *a, **k):
        raise OSError(errno.EIO, "Input/output error", dst)
    monkeypatch.setattr(os, "link", link)
    with pytest.raises(OSError, match="Input/output error"):
        with MboxLock(str(box), timeout=0.2):
            pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["box"]


def test_a_lock_naming_this_pid_that_this_process_does_not_hold_is_stale(tmp_path):
    """In a container every run may be pid 1: a lock a killed run left with
    this process's pid and host is an earlier process's, not this one's."""
    box = tmp_path / "box"
    box.write_bytes(OLD)
    lock = tmp_path / "box.lock"
    lock.write_bytes(_owner.lock_content())
    with MboxLock(str(box), timeout=0.5) as held:
        assert held.stale_lock_removed
        # while it is held, a second lock of this same process waits for it
        with pytest.raises(MboxLockedError):
            with MboxLock(str(box), timeout=0.2):
                pass
        assert lock.read_bytes() == _owner.lock_content()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["box"]


@pytest.mark.parametrize("content", ["", "junk", "{dead}\nanother-host\n", "{dead}\n"])
def test_a_lock_whose_owner_cannot_be_checked_is_broken_once_untouched_for_long(tmp_path, content):
    from fastdkim.mailstore import UNCHECKED_LOCK_AGE

    box = tmp_path / "box"
    box.write_bytes(OLD)
    lock = tmp_path / "box.lock"
    lock.write_text(content.format(dead=_dead_pid()))
    old = time.time() - UNCHECKED_LOCK_AGE - 5
    os.utime(lock, (old, old))
    with MboxLock(str(box), timeout=0.5) as held:
        assert held.stale_lock_removed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["box"]


@pytest.mark.parametrize("rename", ["renameat2", "none"])
def test_without_hard_links_a_killed_run_leaves_nothing_to_wait_for_long(tmp_path, monkeypatch, rename):
    """Without hard links the lock is renamed into place (RENAME_NOREPLACE),
    never empty; where even that is missing it is made and then written, and
    an empty lock a kill left between the two is broken once it is old."""
    from fastdkim import mailstore

    box = tmp_path / "box"
    box.write_bytes(OLD)

    def no_link(src, dst, *a, **k):
        raise OSError(errno.EPERM, "Operation not permitted", dst)
    monkeypatch.setattr(os, "link", no_link)
    if rename == "none":
        monkeypatch.setattr(mailstore, "_rename_noreplace", lambda a, b: False)
    real_write = mailstore.write_all

    def child():
        def write_all(fd, *parts):
            if os.fstat(fd).st_ino == os.stat(str(box) + ".lock").st_ino if os.path.exists(str(box) + ".lock") else False:
                os._exit(137)  # killed between making the lock and writing it
            real_write(fd, *parts)
            if rename == "renameat2":
                os._exit(137)  # killed with the content written, before the rename
        monkeypatch.setattr(mailstore, "write_all", write_all)
        with MboxLock(str(box), timeout=1):
            pass

    assert _in_child(child) == 137
    monkeypatch.undo()
    lock = tmp_path / "box.lock"
    if rename == "renameat2":
        assert not lock.exists()  # never a lock without its owner
        with MboxLock(str(box), timeout=0.5):
            pass
    else:
        assert lock.read_bytes() == b""
        with pytest.raises(MboxLockedError):  # fresh: waited for (its owner may be writing it)
            with MboxLock(str(box), timeout=0.2):
                pass
        old = time.time() - mailstore.UNCHECKED_LOCK_AGE - 5
        os.utime(lock, (old, old))
        with MboxLock(str(box), timeout=0.5) as held:
            assert held.stale_lock_removed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["box"]


def test_a_journal_whose_name_cannot_be_flushed_is_not_relied_on(tmp_path, monkeypatch):
    """The journal's name must be on disk before the mbox is overwritten (a
    power cut mid-copy would otherwise leave a half-written mbox and no
    journal): a directory flush that fails stops the rewrite first."""
    box = tmp_path / "box"
    box.write_bytes(OLD)
    real_fsync = os.fsync

    def fsync(fd):
        if os.path.isdir("/proc/self/fd/%d" % fd):
            raise OSError(errno.EIO, "Input/output error")
        return real_fsync(fd)
    monkeypatch.setattr(os, "fsync", fsync)
    with MboxLock(str(box), timeout=1, recover=False) as lock:
        with pytest.raises(OSError, match="Input/output error"):
            journal.rewrite_in_place(lock.fh, lambda out: out.write(NEW), str(box))
    monkeypatch.undo()
    assert box.read_bytes() == OLD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["box"]


def test_notes_that_are_no_plain_file_of_a_trusted_user_are_not_read(tmp_path, monkeypatch):
    """A note is read only as a regular file of one link owned by root, this
    user or the mbox's owner: a FIFO (which would block), a link (to the
    mbox: its descriptor, closed, would drop the caller's fcntl lock),
    another user's file or one holding a NUL is no note."""
    from fastdkim import journal_location

    home = tmp_path / "default"
    home.mkdir()
    monkeypatch.setattr(journal_location, "_default_state_dir", lambda: str(home))
    monkeypatch.setattr(journal_location, "_state_dirs", lambda owner=None: [str(home)])
    spool = tmp_path / "spool"
    spool.mkdir()
    box = spool / "box"
    box.write_bytes(OLD)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    key = journal_location._key(str(box.resolve()))
    (elsewhere / key).write_bytes(b"x")
    note = home / (key[:-len(".journal")] + ".where")

    def found():
        return journal.find_journals(str(box))
    note.write_bytes(os.fsencode(str(elsewhere)))
    note.chmod(0o600)
    assert found() == [str(elsewhere / key)]  # (the journal itself is checked when it is opened)
    note.chmod(0o666)
    assert found() == []  # writable by others
    note.unlink()
    os.mkfifo(note)
    assert found() == []  # (no wait for a writer)
    note.unlink()
    note.symlink_to(box)
    assert found() == []
    note.unlink()
    os.link(box, note)
    assert found() == []
    note.unlink()
    note.write_bytes(os.fsencode(str(elsewhere)) + b"\0x")
    note.chmod(0o600)
    assert found() == []
    if os.geteuid() == 0:
        note.write_bytes(os.fsencode(str(elsewhere)))
        os.chown(note, 65534, 65534)
        assert found() == []  # another user's


def test_another_users_file_at_a_journals_name_does_not_stop_readers(tmp_path):
    """A file another user put at the name of a journal (a shared spool
    directory) is no journal: readers of the mbox are not held up by it."""
    from fastdkim import mailstore

    if os.geteuid() != 0:
        pytest.skip("making a file of another user needs root")
    box = tmp_path / "box"
    box.write_bytes(b"From x@example.com Mon Jan  1 00:00:00 2029\nFrom: a@example.com\n\nbody\n")
    planted = tmp_path / ".box.fastdkim-journal"
    planted.write_bytes(b"not a journal")
    os.chown(planted, 65534, 65534)
    with mailstore.read_mbox(str(box), 0.5) as fh:
        assert fh.read() == box.read_bytes()
    assert planted.exists()
