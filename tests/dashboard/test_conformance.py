"""docs/conformance.md says exactly what the code accepts and writes.

The statement is generated (``python -m node.conformance``); these tests fail when the committed
file is stale, and, reading the committed file itself, when the SCP's real presentation contexts,
the HTTP app's DICOMweb routes or the result builders' SOP classes differ from what it lists.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydicom.uid import UID

from node.config import NodeSettings
from node.conformance import http_routes, statement
from node.metrics import Metrics
from node.receive.dimse import DimseReceiver
from node.sop import RESULT_SOP_CLASSES

DOC = Path(__file__).resolve().parents[2] / "docs" / "conformance.md"


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    nxt = re.search(r"^#{2,4} ", text[start + len(heading) :], re.M)
    return text[start : start + len(heading) + (nxt.start() if nxt else len(text))]


def _uids(section: str) -> set[str]:
    return set(re.findall(r"^\| [^|]+ \| ([0-9.]+) \|", section, re.M))


def test_committed_statement_is_the_generated_one() -> None:
    assert DOC.read_text() == statement(), (
        "docs/conformance.md is stale: python -m node.conformance > docs/conformance.md"
    )


def test_scp_accepts_exactly_what_the_statement_lists(tmp_path: Path) -> None:
    doc = DOC.read_text()
    scp = _section(doc, "#### 4.2.1 Storage SCP")
    tables = scp.split("Transfer syntaxes accepted")
    listed_classes, listed_ts = _uids(tables[0]), _uids(tables[1])
    receiver = DimseReceiver(NodeSettings(), None, Metrics())  # type: ignore[arg-type]
    ae = receiver.build_ae()
    storage = {
        str(cx.abstract_syntax): {str(ts) for ts in cx.transfer_syntax}
        for cx in ae.supported_contexts
        if cx.abstract_syntax != "1.2.840.10008.1.1"
    }
    assert set(storage) == listed_classes
    for sop, syntaxes in storage.items():
        assert syntaxes == listed_ts, UID(sop).name
    overview = _section(doc, "## 1 Conformance Statement Overview")
    provided = set(re.findall(r"^\| [^|]+ \| ([0-9.]+) \| (?:Yes|No) \| Yes \|", overview, re.M))
    assert provided == listed_classes | {"1.2.840.10008.1.1"}
    assert any(cx.abstract_syntax == "1.2.840.10008.1.1" for cx in ae.supported_contexts)


def test_dicomweb_routes_are_exactly_those_listed() -> None:
    doc = _section(DOC.read_text(), "### 8.2 DICOMweb Services")
    listed = set(re.findall(r"^\| (GET|POST|PUT|DELETE) \| `([^`]+)` \|", doc, re.M))
    served = {(m, p) for m, p, _ in http_routes() if p.startswith("/dicom-web")}
    assert served and listed == served


def test_created_objects_are_exactly_those_listed() -> None:
    doc = _section(DOC.read_text(), "### 8.1 IOD Contents")
    rows = set(re.findall(r"^\| (\w+) \| [^|]+ \| ([0-9.]+) \|", doc, re.M))
    assert rows == {(k, str(v)) for k, v in RESULT_SOP_CLASSES.items()}
