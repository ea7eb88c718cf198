"""Peak memory of verifying messages with huge header blocks.

Run from the project root after building the extension in place::

    python benchmarks/bench_header_memory.py                  # both cores
    python benchmarks/bench_header_memory.py --core compiled  # or pure
    python benchmarks/bench_header_memory.py --mb 8           # smaller inputs

Each case runs in a fresh subprocess: the input is made first (a file on disk,
written in pieces by ``fastdkim.mailgen.iter_header_flood``, and for bytes input
read back with one ``read()``), then ``resource.getrusage`` gives the
peak RSS so far as the baseline, ``Verifier.verify`` runs once, and the peak RSS
after it minus the baseline is the growth the verification caused.  It is
printed in MiB and as a multiple of the input size.  (The progress lines on
standard error also give the baseline and the RSS at that moment: a baseline
well above that RSS would hide part of the growth.)

Cases (``--mb`` MiB of header, 32 by default, just under ``MAX_HEADER_BYTES``):

* ``4M fields``: about four million 8-octet fields, then an empty line and a
  body; past ``MAX_HEADER_FIELDS``, so verification ends in ``permerror``;
* ``4M fields, no end``: the same fields and no empty line (all header);
* ``4M fields, LF``: the first case with bare LF line endings (LF mail);
* ``10k fields``: ``MAX_HEADER_FIELDS`` fields of about 3 KB each, then a body:
  within the limits, so the fields are split and kept.

Nothing here passes or fails: it is a report (the test suite checks the field
limit itself, without measuring memory).
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
from typing import Any, Dict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CASES = ("4M fields", "4M fields, no end", "4M fields, LF", "10k fields")
FORMS = ("bytes", "file")


def _flood(case: str, size: int) -> Dict[str, Any]:
    """The arguments of ``mailgen.iter_header_flood`` for ``case``."""
    if case == "10k fields":
        n = 10_000 - 1  # and From: the limit exactly
        return {"count": n, "field_size": size // n}
    args: Dict[str, Any] = {"count": size // 8, "field_size": 8}
    if case == "4M fields, LF":
        args["line_ending"] = b"\n"
    if case.endswith("no end"):
        args["end"] = False
    return args


def write_message(case: str, size: int, path: str) -> int:
    """Write the message of ``case`` to ``path`` (in small pieces); its size."""
    from fastdkim.mailgen import iter_header_flood

    with open(path, "wb") as out:
        for piece in iter_header_flood(**_flood(case, size)):
            out.write(piece)
    return os.path.getsize(path)


def _current_bytes() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # not Linux
        return 0


def _peak_bytes() -> int:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux: KiB


def child(case: str, form: str, size: int, path: str) -> dict:
    """Measure one case in this process (a fresh one): print a JSON line."""
    import fastdkim

    verifier = fastdkim.Verifier(keys={})
    verifier.verify(b"From: a@example.com\r\n\r\nwarm-up\r\n")  # lazy imports before the baseline
    if form == "bytes":
        with open(path, "rb") as fh:
            message = fh.read()  # one allocation of the file's size: no transient peak before the baseline
        nbytes = len(message)
    else:
        nbytes = os.path.getsize(path)
        message = open(path, "rb")
    gc.collect()
    base = _peak_bytes()
    current = _current_bytes()
    results = verifier.verify(message)
    growth = _peak_bytes() - base
    if form == "file":
        message.close()
    return {"case": case, "form": form, "core": "compiled" if fastdkim.ACCELERATED else "pure",
            "input": nbytes, "growth": growth, "baseline": base, "rss_at_baseline": current,
            "result": results[0].status + ": " + results[0].reason if results else "none"}


def run_case(case: str, form: str, core: str, size: int, src: str, tmpdir: str) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("FASTDKIM_NO_EXTENSIONS", None)
    if core == "pure":
        env["FASTDKIM_NO_EXTENSIONS"] = "1"
    else:
        env["FASTDKIM_REQUIRE_EXTENSIONS"] = "1"
    path = os.path.join(tmpdir, "message.eml")
    # Written by another process, from this checkout's generator: the peak RSS
    # of this one must stay below a child's baseline, as a child spawned from
    # it may start from its peak.
    writer = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    subprocess.run([sys.executable, os.path.abspath(__file__), "--write", case, str(size), path],
                   env=writer, check=True)
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", case, form, str(size), path],
                         env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit("case %r (%s, %s) failed:\n%s" % (case, form, core, out.stderr))
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--write":
        write_message(sys.argv[2], int(sys.argv[3]), sys.argv[4])
        return
    if len(sys.argv) == 6 and sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=float, default=31.9, help="header size in MiB (default 31.9)")
    ap.add_argument("--core", choices=("compiled", "pure", "both"), default="both")
    ap.add_argument("--src", default=os.path.join(ROOT, "src"),
                    help="the directory fastdkim is imported from (default: this checkout's src)")
    args = ap.parse_args()
    size = int(args.mb * (1 << 20))
    cores = ("compiled", "pure") if args.core == "both" else (args.core,)
    rows = []
    with tempfile.TemporaryDirectory(prefix="fastdkim-mem-") as tmpdir:
        for core in cores:
            for case in CASES:
                for form in FORMS:
                    rows.append(run_case(case, form, core, size, args.src, tmpdir))
                    r = rows[-1]
                    print("%-8s  %-18s  %-5s  input %6.1f MiB  baseline %6.1f MiB (RSS %6.1f MiB)  "
                          "peak RSS growth %7.1f MiB  %5.2fx   %s" % (
                              r["core"], r["case"], r["form"], r["input"] / 2**20, r["baseline"] / 2**20,
                              r["rss_at_baseline"] / 2**20, r["growth"] / 2**20, r["growth"] / r["input"],
                              r["result"][:60]), file=sys.stderr)
    print()
    print("| core | case | input | size (MiB) | peak RSS growth (MiB) | x input | result |")
    print("| --- | --- | --- | ---: | ---: | ---: | --- |")
    for r in rows:
        print("| %s | %s | %s | %.1f | %.1f | %.2f | %s |" % (
            r["core"], r["case"], r["form"], r["input"] / 2**20, r["growth"] / 2**20, r["growth"] / r["input"],
            r["result"].split(":")[0]))


if __name__ == "__main__":
    main()
