"""Mail stores (fastdkim.mailstore): what a path is, the files of a Maildir or a
directory, the messages of an mbox, and the mbox lock.

The lock's dot-lock rules and the journal of an interrupted rewrite are
tested in test_journal.py and test_kill_harness.py.
"""
from __future__ import annotations

import errno
import io
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import child_env as _child_env
from fastdkim import _owner
from fastdkim.errors import MboxLockedError, MessageFormatError
from fastdkim.mailstore import (
    MboxLock,
    SignOutcome,
    Source,
    Summary,
    detect,
    iter_mbox,
    list_files,
    recover_mbox,
    rewrite_in_place,
)

MSG = b"From: a@example.com\nSubject: s\n\nbody\n"


# -- what a path is, and its files ---------------------------------------------------------


def test_detect_every_kind(tmp_path):
    (tmp_path / "md" / "cur").mkdir(parents=True)
    (tmp_path / "md" / "new").mkdir()
    (tmp_path / "half" / "cur").mkdir(parents=True)  # no new/: a plain directory
    (tmp_path / "box").write_bytes(b"From a@example.com Mon Jan  1 00:00:00 2029\n" + MSG)
    (tmp_path / "m.eml").write_bytes(MSG)
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "From").write_bytes(b"From")  # too short to be an mbox
    kinds = {name: detect(str(tmp_path / name)).kind for name in ("md", "half", "box", "m.eml", "empty", "From")}
    assert kinds == {"md": "maildir", "half": "directory", "box": "mbox", "m.eml": "file", "empty": "file",
                     "From": "file"}
    assert detect("-") == Source("-", "stdin")
    with pytest.raises(FileNotFoundError, match="no such file or directory"):
        detect(str(tmp_path / "missing"))


def test_list_files_of_a_maildir_skips_tmp_hidden_and_directories(tmp_path):
    for sub in ("cur", "new", "tmp"):
        (tmp_path / sub).mkdir()
    for name in ("cur/2:2,S", "cur/1:2,", "new/3", "new/.hidden", "tmp/4"):
        (tmp_path / name).write_bytes(MSG)
    (tmp_path / "cur" / "subdir").mkdir()
    assert list_files(Source(str(tmp_path), "maildir")) == ["cur/1:2,", "cur/2:2,S", "new/3"]


def test_list_files_of_a_directory_walks_it_in_order(tmp_path):
    for name in ("b.eml", "a.eml", ".x", "sub/c.eml", "sub/.hid/d.eml", ".git/e", "sub/deeper/f"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(MSG)
    assert list_files(Source(str(tmp_path), "directory")) == ["a.eml", "b.eml", "sub/c.eml", "sub/deeper/f"]
    assert list_files(Source(str(tmp_path / "sub" / "deeper"), "directory")) == ["f"]


# -- the messages of an mbox -----------------------------------------------------------------


def test_iter_mbox_byte_for_byte():
    data = (b"From a Mon\nX: 1\n\nbody\nFrom inside a line, not a separator\n>From quoted\n\n"
            b"From b Tue\r\nY: 2\r\n\r\nbody\r\n\r\n"
            b"From c\n")
    assert list(iter_mbox(io.BytesIO(data))) == [
        (b"From a Mon\n", b"X: 1\n\nbody\nFrom inside a line, not a separator\n>From quoted\n\n"),
        (b"From b Tue\r\n", b"Y: 2\r\n\r\nbody\r\n\r\n"),  # a CRLF empty line counts as empty
        (b"From c\n", b""),
    ]
    assert list(iter_mbox(io.BytesIO(b""))) == []


def test_iter_mbox_refuses_what_is_not_an_mbox():
    with pytest.raises(MessageFormatError, match="not an mbox"):
        list(iter_mbox(io.BytesIO(b"X: 1\nFrom a\n")))
    with pytest.raises(MessageFormatError):
        list(iter_mbox(io.BytesIO(b"\nFrom a\n")))


_lines = st.lists(st.sampled_from([b"X: 1\n", b"\n", b"\r\n", b"body\n", b"From not first\n", b">From q\n",
                                   b"no newline"]), max_size=8).map(b"".join)


@given(messages=st.lists(st.tuples(st.sampled_from([b"From a Mon\n", b"From b\r\n", b"From \n"]), _lines),
                         min_size=1, max_size=5))
def test_iter_mbox_gives_back_the_file_exactly(messages):
    data = b"".join(sep + body for sep, body in messages)
    parsed = list(iter_mbox(io.BytesIO(data)))
    assert b"".join(sep + body for sep, body in parsed) == data
    assert all(sep.startswith(b"From ") for sep, _ in parsed)
    assert len(parsed) >= 1


# -- counts for the report ---------------------------------------------------------------------


def test_summary_counts():
    s = Summary()
    assert (s.total, s.signed, s.skipped, s.bytes) == (0, 0, [], 0)
    s.add(SignOutcome("a", 10, True))
    s.add(SignOutcome("b", 5, False, "no From"))
    s.add(SignOutcome("c", 1, True))
    assert (s.total, s.signed, s.bytes) == (3, 2, 16)
    assert [(o.name, o.reason) for o in s.skipped] == [("b", "no From")]


# -- the mbox lock ------------------------------------------------------------------------------


def _box(tmp_path):
    box = tmp_path / "b.mbox"
    box.write_bytes(b"From a\n" + MSG)
    return box


def test_lock_takes_a_dot_lock_of_this_process_and_removes_it(tmp_path):
    box = _box(tmp_path)
    with MboxLock(str(box), timeout=1) as lock:
        assert (tmp_path / "b.mbox.lock").read_bytes() == _owner.lock_content()
        assert lock.fh.read() == box.read_bytes()  # the file, open for reading and writing
        assert (lock.recovered, lock.stale_lock_removed, lock.temporaries_removed) == (None, False, 0)
    assert not (tmp_path / "b.mbox.lock").exists() and lock.fh is None


def test_a_second_lock_waits_then_gives_up_with_a_clear_error(tmp_path):
    box = _box(tmp_path)
    script = ("import sys, time\nfrom fastdkim.mailstore import MboxLock\n"
              "with MboxLock(sys.argv[1], timeout=5):\n    print('held', flush=True)\n    sys.stdin.read()\n")
    holder = subprocess.Popen([sys.executable, "-c", script, str(box)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, env=_child_env())
    try:
        assert holder.stdout.readline() == b"held\n"
        with pytest.raises(MboxLockedError, match=r"b\.mbox\.lock exists: another program holds the mbox"):
            with MboxLock(str(box), timeout=0.2):
                pass  # pragma: no cover - never reached
        assert (tmp_path / "b.mbox.lock").exists()  # the holder's lock is untouched
    finally:
        holder.communicate(b"")
    assert not (tmp_path / "b.mbox.lock").exists()


def _fcntl_held(path):
    """Whether some process holds an fcntl lock on ``path`` (asked of a child:
    a process never conflicts with its own fcntl locks)."""
    probe = ("import fcntl, sys\nfh = open(sys.argv[1], 'r+b')\n"
             "try:\n    fcntl.lockf(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)\nexcept OSError:\n    sys.exit(3)\n")
    return subprocess.run([sys.executable, "-c", probe, str(path)]).returncode == 3


def test_a_second_lock_of_this_process_waits_and_leaves_the_first_whole(tmp_path):
    """A process's fcntl locks on a file go with any of its descriptors of
    that file: a second MboxLock of the same process that opened the mbox
    and then gave up would have let go of the first one's lock."""
    box = _box(tmp_path)
    with MboxLock(str(box), timeout=1) as first:
        assert _fcntl_held(box)
        with pytest.raises(MboxLockedError, match=r"b\.mbox is locked by this process"):
            with MboxLock(str(box), timeout=0.2):
                pass  # pragma: no cover - never reached
        assert _fcntl_held(box)  # still held
        assert (tmp_path / "b.mbox.lock").read_bytes() == _owner.lock_content()
        assert first.fh is not None
    assert not _fcntl_held(box)
    with MboxLock(str(box), timeout=1):  # and free again once the first is let go
        pass


def _open_fds():
    return len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None


def test_a_lock_given_up_keeps_its_descriptor_until_the_holder_lets_go(tmp_path):
    """The second lock's descriptor of the file is closed only once the first
    lets go (closing it before would drop the first's fcntl lock), and then
    none is left open."""
    box = _box(tmp_path)
    before = _open_fds()
    with MboxLock(str(box), timeout=1):
        for _ in range(3):
            with pytest.raises(MboxLockedError):
                with MboxLock(str(box), timeout=0.1):
                    pass  # pragma: no cover - never reached
        assert _fcntl_held(box)
    assert _open_fds() == before
    assert not _fcntl_held(box)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_child_forked_while_the_mbox_is_held_may_lock_it_once_let_go(tmp_path):
    box = _box(tmp_path)
    r, w = os.pipe()
    with MboxLock(str(box), timeout=1) as held:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            code = 1
            try:
                os.close(w)
                held.fh.close()  # (its copy shares the parent's flock until closed)
                os.read(r, 1)  # the parent has let go
                with MboxLock(str(box), timeout=2):
                    code = 0
            finally:
                os._exit(code)
        os.close(r)
    os.write(w, b"x")
    os.close(w)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def test_threads_of_one_process_take_the_mbox_in_turn(tmp_path):
    box = _box(tmp_path)
    inside, overlaps = [], []

    def work():
        with MboxLock(str(box), timeout=10):
            inside.append(1)
            if len(inside) > 1:
                overlaps.append(1)
            time.sleep(0.02)
            inside.pop()
    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not overlaps and not (tmp_path / "b.mbox.lock").exists()


def test_lock_through_a_link_locks_the_real_file(tmp_path):
    box = _box(tmp_path)
    link = tmp_path / "link.mbox"
    link.symlink_to(box)
    with MboxLock(str(link), timeout=1):
        assert (tmp_path / "b.mbox.lock").exists() and not (tmp_path / "link.mbox.lock").exists()


def test_lock_of_a_missing_mbox_is_an_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        with MboxLock(str(tmp_path / "missing"), timeout=0.2):
            pass  # pragma: no cover - never reached
    assert os.listdir(tmp_path) == []


def test_lock_outside_the_main_thread_leaves_the_signal_handlers_alone(tmp_path):
    box = _box(tmp_path)
    before = signal.getsignal(signal.SIGTERM)
    seen = {}

    def worker():
        with MboxLock(str(box), timeout=1):
            seen["handler"] = signal.getsignal(signal.SIGTERM)

    t = threading.Thread(target=worker)
    t.start()
    t.join(60)
    assert seen == {"handler": before}


def test_mbox_lock_turns_sigterm_into_a_clean_exit(tmp_path):
    box = tmp_path / "b.mbox"
    box.write_bytes(b"From a\n\n")
    with pytest.raises(SystemExit) as info:
        with MboxLock(str(box), timeout=1):
            assert (tmp_path / "b.mbox.lock").exists()
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(100):  # the handler runs at the next bytecode
                pass
    assert info.value.code == 128 + signal.SIGTERM
    assert not (tmp_path / "b.mbox.lock").exists()
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_mbox_rewrite_stops_before_overwriting_when_the_disk_is_full(tmp_path, monkeypatch):
    box = tmp_path / "b.mbox"
    box.write_bytes(b"From a\nSubject: x\n\nbody\n")
    before = box.read_bytes()

    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full)
    with MboxLock(str(box), timeout=1) as lock:
        with pytest.raises(OSError, match="No space"):
            rewrite_in_place(lock.fh, lambda out: out.write(before * 10))
    assert box.read_bytes() == before
    assert not list(tmp_path.glob(".fastdkim-*")) and not (tmp_path / "b.mbox.lock").exists()


def test_recover_mbox_without_a_journal_does_nothing(tmp_path):
    box = _box(tmp_path)
    before = box.read_bytes()
    assert recover_mbox(str(box)) is None
    assert box.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["b.mbox"]  # not even a lock taken
