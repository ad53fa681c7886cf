"""Which result objects to build for one analysis, with UIDs that are stable across retries.

UIDs are derived from the source instance, the kind of object and the model's Device UID, so a job
re-run after a crash produces the same objects again (the PACS overwrites instead of duplicating).
"""

from __future__ import annotations

import hashlib

from pydicom.dataset import Dataset

from node.config import ResultSettings
from node.pipeline.results.inputs import Analysis, Producer
from node.pipeline.results.sc import build_corrected_sc
from node.pipeline.results.sr import build_report_sr


def stable_uid(*parts: str) -> str:
    """A 2.25 UID derived from ``parts`` (the same parts always give the same UID)."""
    digest = hashlib.sha256("\x00".join(parts).encode()).digest()
    return f"2.25.{int.from_bytes(digest[:16], 'big')}"


def build_results(
    analysis: Analysis, settings: ResultSettings, producer: Producer
) -> list[tuple[str, Dataset]]:
    src = analysis.source
    source_series = str(src.SeriesInstanceUID)
    source_sop = str(src.SOPInstanceUID)
    out: list[tuple[str, Dataset]] = []
    sc = build_corrected_sc(
        analysis,
        producer,
        series_instance_uid=stable_uid(source_series, "sc", analysis.deblur_model.device_uid),
        series_number=settings.series_number_sc,
        instance_number=int(src.get("InstanceNumber", 1) or 1),
        sop_instance_uid=stable_uid(source_sop, "sc", analysis.deblur_model.device_uid),
    )
    if settings.corrected_sc:
        out.append(("sc", sc))
    if settings.report_sr:
        sr = build_report_sr(
            analysis,
            producer,
            corrected_sc=sc,
            series_instance_uid=stable_uid(
                source_series, "sr", analysis.classifier_model.device_uid
            ),
            series_number=settings.series_number_sr,
            instance_number=int(src.get("InstanceNumber", 1) or 1),
            sop_instance_uid=stable_uid(
                source_sop,
                "sr",
                analysis.deblur_model.device_uid,
                analysis.classifier_model.device_uid,
            ),
        )
        out.append(("sr", sr))
    return out
