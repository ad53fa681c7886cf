"""Which result objects to build: a typed selection, one flag per kind of object.

The global default lives in ``Settings.results`` (:class:`node.config.ResultSettings` extends
:class:`ResultSelection`); a routing rule or pipeline passes its own selection to
:func:`node.pipeline.outputs.build_results`, either as a :class:`ResultSelection` or as a list of
kind names (:data:`RESULT_KINDS`, via :meth:`ResultSelection.from_kinds`).

This module imports nothing from the node: the settings module (the bottom layer) uses it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["FIELD_OF_KIND", "KIND_OF_FIELD", "RESULT_KINDS", "ResultKind", "ResultSelection"]

ResultKind = Literal["sc", "overlay", "gsps", "seg", "sr"]

# Kind name (as stored in Instance.result_kind and listed in pipelines) -> selection field.
FIELD_OF_KIND: dict[str, str] = {
    "sc": "corrected_sc",
    "overlay": "overlay_sc",
    "gsps": "gsps",
    "seg": "seg",
    "sr": "report_sr",
}
KIND_OF_FIELD: dict[str, str] = {v: k for k, v in FIELD_OF_KIND.items()}
# In build order: the corrected image first (the others reference it), the report last.
RESULT_KINDS: tuple[str, ...] = tuple(FIELD_OF_KIND)


class ResultSelection(BaseModel):
    """Which result objects to produce for one radiograph (all on by default).

    * ``corrected_sc``: the motion-corrected Secondary Capture (grayscale, the source's bit depth).
    * ``overlay_sc``: a colour Secondary Capture, the heatmap blended over the corrected image with
      a legend banner (burned-in annotation).
    * ``gsps``: a Grayscale Softcopy Presentation State outlining the hot regions.
    * ``seg``: a FRACTIONAL Segmentation holding the heatmap (for a PACS that stores SEG).
    * ``report_sr``: the TID 1500 Comprehensive 3D SR with findings, probabilities and regions.

    The GSPS, SEG and SR reference the corrected image when it is selected, else the source image
    itself (same geometry), so that nothing points at an object the destination never gets.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    corrected_sc: bool = True
    overlay_sc: bool = True
    gsps: bool = True
    seg: bool = True
    report_sr: bool = True

    @classmethod
    def from_kinds(cls, kinds: Iterable[str]) -> ResultSelection:
        """A selection holding exactly ``kinds`` (names from :data:`RESULT_KINDS`)."""
        wanted = list(kinds)
        unknown = [k for k in wanted if k not in FIELD_OF_KIND]
        if unknown:
            raise ValueError(f"unknown result kind(s) {unknown}; known: {list(RESULT_KINDS)}")
        return cls(**{field: kind in wanted for kind, field in FIELD_OF_KIND.items()})

    def kinds(self) -> list[str]:
        """The selected kind names, in build order."""
        return [kind for kind, field in FIELD_OF_KIND.items() if getattr(self, field)]

    def selection(self) -> ResultSelection:
        """Just the selection (drops the fields a subclass such as ResultSettings adds)."""
        return ResultSelection(**{f: getattr(self, f) for f in FIELD_OF_KIND.values()})

    def union(self, other: ResultSelection) -> ResultSelection:
        """Every object either selection asks for."""
        return ResultSelection(
            **{f: bool(getattr(self, f) or getattr(other, f)) for f in FIELD_OF_KIND.values()}
        )
