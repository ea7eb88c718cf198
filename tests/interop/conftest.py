"""Fixtures for the interop tests: keys, a Knot DNS server, the peers, the
signed corpora, and the matrix printed at the end of the run.

A peer or server that is not installed makes its tests skip, with a reason
naming the Debian or PyPI package to install.  Under CI (``CI=true``), where
``.ci/install-peers.sh`` installs them, a missing one is a failure instead,
so that the interop tests cannot silently stop running there
(``FASTDKIM_INTEROP_OPTIONAL=1`` turns that off for CI systems that do not
run the install script).

The matrix (rows: signer, columns: verifier, cells: passed/total) is printed
in the terminal summary, whatever the capture settings, by :mod:`report`
(a plugin of ``tests/conftest.py``, so that it is there in the controlling
process of a parallel run too).
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable, Dict, List, Union

import pytest

from .dnsserver import PACKAGE as DNS_PACKAGE
from .dnsserver import find_knot
from .matrix import Matrix, Signed, sign_corpus, start_dns, write_messages
from .peers import KeySpec, Peer, load_peers, make_keys, unavailable
from .report import session_matrix


@pytest.fixture(scope="session")
def matrix(request) -> Matrix:
    return session_matrix(request.config)


@pytest.fixture(scope="session")
def interop_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("interop")
    yield path
    shutil.rmtree(path, ignore_errors=True)  # some 100 MB of signed 20 MB messages


@pytest.fixture(scope="session")
def keys(interop_dir) -> Dict[str, KeySpec]:
    return make_keys(interop_dir / "keys")


@pytest.fixture(scope="session")
def dns_server(interop_dir, keys):
    """Knot on 127.0.0.1:<free port> serving interop.example (every key and
    the fault records of :func:`matrix.build_zone`) and a broken
    servfail.example; stopped (and waited for) at the end of the session."""
    if find_knot() is None:
        unavailable("Knot DNS (knotd, knotc) not found: install Debian package %s" % DNS_PACKAGE)
    server = start_dns(interop_dir / "dns", keys)
    try:
        yield server
    finally:
        server.stop()
        assert server.proc is None


@pytest.fixture(scope="session")
def peer_table(dns_server, interop_dir, matrix) -> Dict[str, Union[Peer, str]]:
    table = load_peers(dns_server.address, interop_dir / "build")
    for name, p in table.items():
        if isinstance(p, str):
            matrix.missing[name] = p
        else:
            matrix.algorithms[name] = sorted(p.algorithms)
    return table


@pytest.fixture(scope="session")
def peer(peer_table) -> Callable[[str], Peer]:
    """``peer(name)``: the peer, or skip naming the package to install."""

    def get(name: str) -> Peer:
        p = peer_table[name]
        if isinstance(p, str):
            unavailable(p)
        assert isinstance(p, Peer)
        return p

    return get


@pytest.fixture(scope="session")
def message_paths(interop_dir) -> Dict[str, Path]:
    return write_messages(interop_dir / "messages")


@pytest.fixture(scope="session")
def corpus(peer, keys, message_paths, interop_dir) -> Callable[[str], List[Signed]]:
    """``corpus(signer)``: everything that signer signed for the matrix
    (signed once per session, on first use)."""
    cache: Dict[str, List[Signed]] = {}

    def get(name: str) -> List[Signed]:
        p = peer(name)
        if name not in cache:
            cache[name] = sign_corpus(p, keys, message_paths, interop_dir / "signed" / name)
        return cache[name]

    return get
