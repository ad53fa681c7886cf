"""Library log lines keep the names of what went wrong (attribute keywords, tags, UIDs, codes)
and lose every value a patient could be recognised by."""

from __future__ import annotations

import pytest

from node.logs import redact


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Invalid value for VR PN: 'DOE^JOHN'", "Invalid value for VR PN: <value>"),
        (
            "The element 'PatientName' has value 'Smith'",
            "The element 'PatientName' has value <value>",
        ),
        ("Tag '(0010, 0010)' VR 'PN' is bad", "Tag '(0010, 0010)' VR 'PN' is bad"),
        ("Unknown PDU type received '0x09'", "Unknown PDU type received '0x09'"),
        ("UID '1.2.840.10008.1.2' not accepted", "UID '1.2.840.10008.1.2' not accepted"),
        ("birth date '1970.01.01'", "birth date <value>"),
        ("initials 'AB' and name 'JOHN'", "initials <value> and name <value>"),
        ("first line\nsecond line 'x'", "first line"),
    ],
)
def test_redact_keeps_names_and_drops_values(line: str, expected: str) -> None:
    assert redact(line) == expected
