"""Running the command line from a test: in this process (fast), or as a process of its own."""
from __future__ import annotations

import io
import subprocess
import sys
from typing import Optional

from fastdkim import cli


def _stream(data: bytes = b"") -> io.TextIOWrapper:
    """A text stream over bytes, without a file descriptor (so that nothing
    the command line does to its standard output reaches this process's)."""
    return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", write_through=True)


def run(*args: object, input: Optional[bytes] = None) -> subprocess.CompletedProcess:
    """``fastdkim ARGS`` run in this process by ``cli.main`` (with the active
    core): its exit status and what it wrote, as bytes, as ``subprocess.run``
    would give them."""
    argv = [str(a) for a in args]
    stdin, out, err = _stream(input or b""), _stream(), _stream()
    saved = sys.stdin, sys.stdout, sys.stderr
    sys.stdin, sys.stdout, sys.stderr = stdin, out, err
    try:
        try:
            code = cli.main(argv)
        except SystemExit as exc:  # --help, --version, errors found by the parser
            code = 0 if exc.code is None else exc.code
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved
    out.flush()
    err.flush()
    return subprocess.CompletedProcess(argv, code, out.buffer.getvalue(), err.buffer.getvalue())


def run_process(*args: object, input: Optional[bytes] = None) -> subprocess.CompletedProcess:
    """``python -m fastdkim ARGS`` in a process of its own (for what needs one:
    its own standard output file, a lock held by another process, the exit
    status of the program)."""
    return subprocess.run([sys.executable, "-m", "fastdkim", *map(str, args)], input=input, capture_output=True,
                          timeout=300)
