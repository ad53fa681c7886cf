"""What the pipeline hands to the result builders: plain, checked values, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pydicom

from models.manifest import CodedConcept, ModelManifest
from node.pipeline.scope import ScopeDecision


@dataclass(frozen=True)
class ModelInfo:
    """Identity of one model as the result objects must state it."""

    name: str
    version: str
    device_uid: str
    demonstration_only: bool
    description: str = ""

    @classmethod
    def from_manifest(cls, m: ModelManifest) -> ModelInfo:
        return cls(m.name, m.version, m.device_uid, m.demonstration_only, m.description)


@dataclass(frozen=True)
class Finding:
    """One class the classifier answers, with its probability."""

    label: str
    code: CodedConcept
    probability: float
    is_finding: bool
    threshold: float = 0.5  # the model's operating point: present from this probability on
    # A class that is no finding ("normal") is present exactly when no finding is: set by the
    # pipeline (None: decided by the threshold, as a finding is).
    decided: bool | None = None

    @property
    def present(self) -> bool:
        if self.decided is not None:
            return self.decided
        return self.probability >= self.threshold


@dataclass(frozen=True)
class MotionReport:
    """The blur gate's estimate of one image's motion, as the results state it."""

    motion_mm: float
    decision: str  # sharp | blurred | severe (node.pipeline.blur_gate.Decision)
    spacing_assumed: bool  # the header gave no usable pixel spacing
    pixel_spacing_mm: float | None = None  # the spacing the motion was measured with


@dataclass(frozen=True)
class Producer:
    """Who made the results: written into Contributing Equipment and the SR observer context."""

    manufacturer: str = "SharpRay"
    model_name: str = "SharpRay"
    software_version: str = "0.1.0"
    institution: str | None = None
    # Device Serial Number of the objects that must carry one (GSPS, SEG): this installation.
    device_serial_number: str = "SHARPRAY-1"


@dataclass(frozen=True)
class Analysis:
    """Everything computed for one source radiograph.

    ``corrected`` has the source's shape and lies in the source's stored-value domain (same dtype
    family, same photometric interpretation, same bits stored), so it windows like the original.
    ``heatmap`` is the class-activation map (Grad-CAM) of the explained finding
    (:attr:`explained_finding`), resized to the source's rows x columns, scaled to [0, 1].
    """

    source: pydicom.Dataset
    corrected: np.ndarray
    deblur_model: ModelInfo
    classifier_model: ModelInfo
    findings: list[Finding]
    heatmap: np.ndarray | None = None
    sharpness_before: float | None = None
    sharpness_after: float | None = None
    # Intended use: None = not checked; out of scope = no findings, no heatmap ("not analysed").
    scope: ScopeDecision | None = None
    # The finding the heatmap explains (None: the most probable finding, see explained_finding).
    explained_label: str | None = None
    # Which image the classifier saw, and how it was corrected (None: no correction tried).
    classified: Literal["original", "corrected"] = "original"
    correction: str | None = None
    # The blur gate's estimate (None: the gate did not run).
    motion: MotionReport | None = None

    @property
    def analysed(self) -> bool:
        return bool(self.findings)

    @property
    def top_finding(self) -> Finding:
        """The most probable class (raises on an analysis that was not analysed)."""
        return max(self.findings, key=lambda f: f.probability)

    @property
    def explained_finding(self) -> Finding:
        """The class the heatmap explains: ``explained_label`` when the pipeline names it,
        else the most probable class that is a finding (else the most probable class)."""
        name = self.explained_label
        for f in self.findings:
            if f.label == name:
                return f
        candidates = [f for f in self.findings if f.is_finding] or self.findings
        return max(candidates, key=lambda f: f.probability)
