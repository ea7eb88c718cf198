"""The open ARC test suite (../shared/conformance/arc, YAML): every signing
scenario reproduced exactly, every validation scenario given its expected
result, on both cores.

The suite was written against draft-ietf-dmarc-arc-protocol-18; where a
scenario's expectation and RFC 8617 (with RFC 6376 and RFC 8301, which it
builds on) disagree, the RFC decides: :data:`RFC_DECIDES` lists each such
scenario, the result fastdkim gives, and why.
"""
from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

from fastdkim.arc import ARCSealer, verify_chain
from fastdkim.message import read_message

yaml = pytest.importorskip("yaml", reason="PyYAML is needed to read the ARC test suite")

pytestmark = pytest.mark.usefixtures("core")

ARC_SUITE = Path(__file__).resolve().parent.parent.parent / "shared" / "conformance" / "arc"
SIGN_FILE = ARC_SUITE / "arc-draft-sign-tests.yml"
VALIDATION_FILE = ARC_SUITE / "arc-draft-validation-tests.yml"

#: Validation scenarios whose expected result departs from the RFCs:
#: scenario -> (fastdkim's result, why).
RFC_DECIDES: Dict[str, Tuple[str, str]] = {
    "cv_fail_i1_as_cv_fail": ("fail", "the suite expects an empty result; RFC 8617 section 5.2 step 2: a most "
                                      "recent ARC-Seal with cv=fail makes the chain fail"),
    "cv_fail_i2_as2_fail": ("fail", "as cv_fail_i1_as_cv_fail"),
    "cv_fail_i2_as1_fail": ("fail", "the suite expects an empty result; RFC 8617 section 5.2 step 3: cv=fail "
                                    "anywhere in the chain makes it fail"),
    "ams_fields_c_na": ("fail", "the AMS was made with relaxed/relaxed and has no c=; RFC 8617 section 4.1.2 "
                                "gives the AMS DKIM's semantics, and RFC 6376 section 3.5 makes a missing c= "
                                "simple/simple, under which it does not verify"),
    "ams_fields_h_empty": ("fail", "RFC 6376 section 3.5: h= holds at least one field name, and the From "
                                   "field must be signed (section 5.4)"),
    "ams_fields_h_mis_hdr": ("fail", "RFC 6376 section 3.5: an empty name in h= (from:to::date) is not in "
                                     "the grammar"),
}


def _scenarios(path: Path) -> List[Any]:
    if not path.exists():
        return [pytest.param(None, None, None, marks=pytest.mark.skip(
            reason="open ARC test suite absent: %s (it lives beside the project in ../shared)" % path))]
    params = []
    with path.open() as fh:
        for doc in yaml.safe_load_all(fh):
            if not doc:
                continue
            for name, test in doc["tests"].items():
                params.append(pytest.param(doc, name, test, id=name))
    return params


def _wire(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode("utf-8")


def _keys(doc: Dict[str, Any]) -> Dict[str, str]:
    return {name: value.replace("\n", "") for name, value in doc["txt-records"].items()}


def _unfolded(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip())


def _consolidated(message: bytes, authserv_id: str) -> List[str]:
    """The results of the message's Authentication-Results fields that
    claim ``authserv_id``, in order: the suite's consolidation rule (its
    README, "AR Consolidation")."""
    out = []
    for name, raw in read_message(message).fields:
        if name == b"authentication-results":
            sid, _, rest = raw.split(b":", 1)[1].decode("utf-8").partition(";")
            if sid.strip() == authserv_id:
                out.append(rest)
    return out


@pytest.mark.parametrize("doc,name,test", _scenarios(SIGN_FILE))
def test_sign_scenario_reproduced_exactly(doc, name, test):
    message = _wire(test["message"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the suite's key has 1024 bits
        sealer = ARCSealer(doc["domain"], doc["sel"], doc["privatekey"].encode(), authserv_id=test["srv-id"],
                           keys=_keys(doc), headers=test["sig-headers"], width=None, clock=lambda: test["t"])
    fields = sealer.seal(message, results=_consolidated(message, test["srv-id"]))
    expected = [_unfolded(test[k]) for k in ("AS", "AMS", "AAR")]
    if not any(expected):  # the chain already ends in cv=fail: nothing more is sealed
        assert fields == []
        assert sealer.last_result is not None and sealer.last_result.status == "fail"
        return
    names = [f.split(b":", 1)[0] for f in fields]
    assert names == [b"ARC-Seal", b"ARC-Message-Signature", b"ARC-Authentication-Results"]
    # The seals on one line each (width=None), tags as the suite's standard
    # layout has them; the AAR keeps the folding of the results it was given.
    got = [f.split(b":", 1)[1].decode("ascii").strip() for f in fields]
    assert all(b"\r\n" not in f[:-2] for f in fields[:2])
    assert [re.sub(r"\s", "", g) for g in got] == [re.sub(r"\s", "", e) for e in expected]
    assert got[:2] == [re.sub(r"b=([^;]*)", lambda m: "b=" + m.group(1).replace(" ", ""), e)
                       for e in expected[:2]]
    sealed = b"".join(fields) + message
    result = verify_chain(sealed, keys=_keys(doc))
    if "cv=fail" in got[0]:
        assert result.status == "fail" and "cv=fail" in result.reason
    else:
        assert result.status == "pass", result.reason
        assert result.instances == int(re.search(r"\bi=(\d+)", got[0]).group(1))


@pytest.mark.parametrize("doc,name,test", _scenarios(VALIDATION_FILE))
def test_validation_scenario(doc, name, test):
    expected = (test["cv"] or "").strip().lower()
    if name in RFC_DECIDES:
        ours, why = RFC_DECIDES[name]
        assert expected != ours, "%s no longer departs from the RFC: drop it from RFC_DECIDES" % name
        expected = ours
    result = verify_chain(_wire(test["message"]), keys=_keys(doc))
    assert result.status == expected, "%s: %s (%s)" % (name, result.reason, test.get("description"))
    assert result.reason
    if expected == "pass":
        assert result.oldest_pass is not None and 1 <= result.oldest_pass <= result.instances


def test_rfc_decides_names_exist():
    """Every scenario named in RFC_DECIDES is in the suite (a renamed one is noticed)."""
    if not VALIDATION_FILE.exists():
        pytest.skip("open ARC test suite absent: %s" % VALIDATION_FILE)
    names = {p.id for p in _scenarios(VALIDATION_FILE)}
    assert set(RFC_DECIDES) <= names
