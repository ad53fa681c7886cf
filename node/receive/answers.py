"""One table from ingest errors to what each receiver answers: the DIMSE C-STORE status, the
STOW-RS failure reason, the metric label (``sharpray_rejected_total{reason}``) and whether the
sender may try again later. Both receivers (``dimse.py``, ``dicomweb.py``) look errors up here
instead of keeping their own except-ladders; docs/security.md's "Bad input" table is this one."""

from __future__ import annotations

from dataclasses import dataclass

from node.ingest import (
    CannotUnderstand,
    DoesNotMatch,
    NotSupported,
    OutOfResources,
    SOPClassNotSupported,
    TransferSyntaxNotSupported,
    Truncated,
)


@dataclass(frozen=True)
class Answer:
    metric: str  # label of sharpray_rejected_total{reason}
    dimse_status: int  # C-STORE response status (PS3.4 B.2.3)
    stow_reason: int  # STOW-RS Failure Reason (PS3.18 table I.2-2)
    retryable: bool  # the same bytes may succeed later (STOW-RS 503 / Retry-After)


#: Most specific first: the first class the error is an instance of decides.
ANSWERS: tuple[tuple[type[Exception], Answer], ...] = (
    (OutOfResources, Answer("out_of_resources", 0xA700, 0xA700, True)),
    (DoesNotMatch, Answer("does_not_match", 0xA900, 0xA900, False)),
    # Over DIMSE an unsupported class or syntax is refused at association (presentation
    # context); one that arrives anyway (the data set contradicts its context) does not match.
    (SOPClassNotSupported, Answer("not_supported", 0xA900, 0x0122, False)),
    (TransferSyntaxNotSupported, Answer("not_supported", 0xA900, 0xC122, False)),
    (NotSupported, Answer("not_supported", 0xA900, 0x0122, False)),
    (Truncated, Answer("truncated", 0xC000, 0xC000, False)),
    (CannotUnderstand, Answer("cannot_understand", 0xC000, 0xC000, False)),
)
#: Anything else is a bug: processing failure, logged with its traceback.
INTERNAL_ERROR = Answer("internal_error", 0x0110, 0x0110, False)


def answer_for(error: Exception) -> Answer:
    """The answer to give for ``error`` (:data:`INTERNAL_ERROR` when it is no ingest error)."""
    for cls, answer in ANSWERS:
        if isinstance(error, cls):
            return answer
    return INTERNAL_ERROR
