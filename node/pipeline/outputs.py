"""Which result objects to build for one analysis, with UIDs that are stable across retries.

:func:`build_results` builds the objects a :class:`ResultSelection` asks for (the global default is
``Settings.results``; a routing rule passes its own), in this order: corrected SC (``sc``), heatmap
overlay SC (``overlay``), presentation state (``gsps``), heatmap SEG (``seg``), report SR (``sr``).

UIDs are derived from the source instance, the kind of object, the models' Device UIDs and what the
object references, so a job re-run after a crash produces the same objects again (the PACS
overwrites instead of duplicating), while an object whose content depends on the selection (the SR
references the SC and the SEG only when they are sent; the GSPS and SEG lie on the SC only when it
is sent) gets another UID under another selection.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from pydicom.dataset import Dataset

from node import __version__
from node.config import ResultSettings
from node.pipeline.results.common import stable_uid
from node.pipeline.results.gsps import build_gsps
from node.pipeline.results.inputs import Analysis, Producer
from node.pipeline.results.overlay import build_overlay_sc
from node.pipeline.results.regions import hot_regions
from node.pipeline.results.sc import build_corrected_sc
from node.pipeline.results.seg import build_heatmap_seg
from node.pipeline.results.sr import build_report_sr
from node.result_selection import RESULT_KINDS, ResultSelection

__all__ = ["RESULT_KINDS", "ResultSelection", "build_results", "producer_for", "stable_uid"]

log = logging.getLogger(__name__)

_HEATMAP_KINDS = ("overlay", "gsps", "seg")


def producer_for(results: ResultSettings) -> Producer:
    """This installation as the maker of its result objects (the node and ``sharpray process``)."""
    return Producer(
        manufacturer=results.manufacturer,
        software_version=__version__,
        institution=results.institution,
        device_serial_number=results.device_serial_number,
    )


def _as_selection(
    selection: ResultSelection | Iterable[str] | None, settings: ResultSettings
) -> ResultSelection:
    if selection is None:
        return settings.selection()
    if isinstance(selection, ResultSelection):
        return selection.selection()
    return ResultSelection.from_kinds(selection)


def build_results(
    analysis: Analysis,
    settings: ResultSettings,
    producer: Producer,
    selection: ResultSelection | Iterable[str] | None = None,
) -> list[tuple[str, Dataset]]:
    """The result objects for ``analysis`` as (kind, dataset) pairs, in build order.

    ``selection`` (a :class:`ResultSelection` or kind names such as ``["sc", "sr"]``) says which
    objects to build; None takes the global default from ``settings``. Heatmap objects (overlay,
    GSPS, SEG) are skipped, with a log line, when the analysis has no heatmap.
    """
    chosen = _as_selection(selection, settings)
    kinds = set(chosen.kinds())
    if analysis.heatmap is None and kinds & set(_HEATMAP_KINDS):
        log.info("no finding present: %s left out", ", ".join(sorted(kinds & set(_HEATMAP_KINDS))))
        kinds -= set(_HEATMAP_KINDS)
    src = analysis.source
    series = str(src.SeriesInstanceUID)
    sop = str(src.SOPInstanceUID)
    deblur_uid = analysis.deblur_model.device_uid
    clf_uid = analysis.classifier_model.device_uid
    instance_number = int(src.get("InstanceNumber", 1) or 1)
    out: list[tuple[str, Dataset]] = []

    # The corrected SC is referenced by the others only when it is sent itself.
    sc = None
    if "sc" in kinds:
        sc = build_corrected_sc(
            analysis,
            producer,
            series_instance_uid=stable_uid(series, "sc", deblur_uid),
            series_number=settings.series_number_sc,
            instance_number=instance_number,
            sop_instance_uid=stable_uid(sop, "sc", deblur_uid),
        )
        out.append(("sc", sc))
    on = "on-sc" if sc is not None else "on-source"

    regions = (
        hot_regions(
            analysis.heatmap,
            settings.region_threshold,
            max_regions=settings.max_regions,
        )
        if analysis.heatmap is not None and kinds & {"overlay", "gsps", "sr"}
        else []
    )
    if "overlay" in kinds:
        out.append(
            (
                "overlay",
                build_overlay_sc(
                    analysis,
                    producer,
                    series_instance_uid=stable_uid(series, "overlay", deblur_uid, clf_uid),
                    series_number=settings.series_number_overlay,
                    instance_number=instance_number,
                    corrected_sc=sc,
                    regions=regions,
                    sop_instance_uid=stable_uid(sop, "overlay", deblur_uid, clf_uid, on),
                ),
            )
        )
    if "gsps" in kinds:
        out.append(
            (
                "gsps",
                build_gsps(
                    analysis,
                    producer,
                    regions,
                    series_instance_uid=stable_uid(series, "gsps", deblur_uid, clf_uid),
                    series_number=settings.series_number_gsps,
                    instance_number=instance_number,
                    corrected_sc=sc,
                    sop_instance_uid=stable_uid(sop, "gsps", deblur_uid, clf_uid, on),
                ),
            )
        )
    seg = None
    if "seg" in kinds:
        seg = build_heatmap_seg(
            analysis,
            producer,
            series_instance_uid=stable_uid(series, "seg", deblur_uid, clf_uid),
            series_number=settings.series_number_seg,
            instance_number=instance_number,
            corrected_sc=sc,
            sop_instance_uid=stable_uid(sop, "seg", deblur_uid, clf_uid, on, settings.seg_type),
            kind=settings.seg_type,
            threshold=settings.region_threshold,
            image_axes=settings.seg_image_axes,
        )
        out.append(("seg", seg))
    if "sr" in kinds:
        references = on + ("+seg" if seg is not None else "")
        out.append(
            (
                "sr",
                build_report_sr(
                    analysis,
                    producer,
                    sc,
                    series_instance_uid=stable_uid(series, "sr", clf_uid),
                    series_number=settings.series_number_sr,
                    instance_number=instance_number,
                    sop_instance_uid=stable_uid(sop, "sr", deblur_uid, clf_uid, references),
                    regions=regions,
                    seg=seg,
                ),
            )
        )
    return out
