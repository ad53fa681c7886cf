"""Both receivers answer an ingest error from one table (node/receive/answers.py)."""

from __future__ import annotations

import pytest

from node.ingest import (
    CannotUnderstand,
    DoesNotMatch,
    OutOfResources,
    SOPClassNotSupported,
    TransferSyntaxNotSupported,
    Truncated,
)
from node.receive.answers import INTERNAL_ERROR, answer_for


@pytest.mark.parametrize(
    ("error", "metric", "dimse", "stow", "retry"),
    [
        (OutOfResources("disk"), "out_of_resources", 0xA700, 0xA700, True),
        (DoesNotMatch("uid"), "does_not_match", 0xA900, 0xA900, False),
        (SOPClassNotSupported("mr"), "not_supported", 0xA900, 0x0122, False),
        (TransferSyntaxNotSupported("ts"), "not_supported", 0xA900, 0xC122, False),
        (Truncated("cut"), "truncated", 0xC000, 0xC000, False),
        (CannotUnderstand("junk"), "cannot_understand", 0xC000, 0xC000, False),
        (RuntimeError("bug"), "internal_error", 0x0110, 0x0110, False),
    ],
)
def test_one_table(error: Exception, metric: str, dimse: int, stow: int, retry: bool) -> None:
    a = answer_for(error)
    assert (a.metric, a.dimse_status, a.stow_reason, a.retryable) == (metric, dimse, stow, retry)


def test_a_bug_is_the_internal_error() -> None:
    assert answer_for(KeyError("x")) is INTERNAL_ERROR


def test_the_conformance_statement_lists_every_dimse_status_we_answer() -> None:
    from node.conformance import ANSWER_STATUSES, DIMSE_STATUSES

    assert ANSWER_STATUSES <= {status for status, *_ in DIMSE_STATUSES}
