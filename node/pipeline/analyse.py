"""The processing chain on one radiograph, as plain functions: decode -> motion estimate -> correct
-> classify -> explain."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, replace

import numpy as np
from pydicom.dataset import Dataset

from models.intensity import classifier_input
from models.scope import ScopeModel
from models.sharpness import sharpness
from node.config import BlurGateSettings
from node.pipeline.blur_gate import BlurAssessment, assess_radiograph
from node.pipeline.correct import Corrector
from node.pipeline.infer import Classifier
from node.pipeline.preprocess import (
    decode,
    from_unit_stored_range,
    to_model_input,
    to_unit_stored_range,
    to_unit_voi,
)
from node.pipeline.results.inputs import Analysis, Finding, ModelInfo
from node.pipeline.scope import ScopeFlags, check_scope


@dataclass
class Models:
    deblur: Corrector
    classify: Classifier
    gate: BlurGateSettings = dataclasses.field(default_factory=BlurGateSettings)
    scope_model: ScopeModel | None = None
    scope_flags: ScopeFlags | None = None  # None: intended use not checked

    def infos(self) -> tuple[ModelInfo, ModelInfo]:
        return (
            self.deblur.info,
            ModelInfo.from_manifest(self.classify.model.manifest),
        )


def analyse(
    ds: Dataset, models: Models, *, correct: bool = True, blur: BlurAssessment | None = None
) -> Analysis:
    """Correct, classify and explain one radiograph; raises UnsupportedImage for what it can't.

    ``blur`` is the blur gate's assessment of ``ds`` (estimated here when None and ``correct``).
    ``correct=False`` (the pipeline never corrects, or the gate found it sharp): nothing is
    corrected; the image is classified as received (``Analysis.classified`` says which). A
    correction the motion estimate does not support also leaves the image unchanged.
    """
    r = decode(ds)
    method: str | None = None
    attempted = correct
    if correct:
        if blur is None:
            blur = assess_radiograph(r, models.gate)
        correction = models.deblur(to_unit_stored_range(r), blur.motion)
        correct = correction.applied
        method = correction.method
        corrected = from_unit_stored_range(r, correction.image) if correct else r.stored
    else:
        corrected = r.stored

    # The classifier sees the corrected image as a viewer would show it.
    shown = to_unit_voi(dataclasses.replace(r, stored=corrected))
    manifest = models.classify.model.manifest
    scope = (
        check_scope(ds, shown, manifest.intended_use, models.scope_model, models.scope_flags)
        if models.scope_flags is not None
        else None
    )
    findings: list[Finding] = []
    heatmap = None
    explained_name = None
    if scope is None or scope.in_scope:
        spec = manifest.input
        x = (
            classifier_input(shown, spec.size or 224, spec.mean, spec.std)
            if spec.intensity == "classifier_unit"
            else to_model_input(shown, spec.mean, spec.std, spec.size)
        )
        result = models.classify(x)
        labels = manifest.labels
        findings = [
            Finding(
                label=lab.name,
                code=lab.code,
                probability=float(result.probabilities[lab.index]),
                is_finding=lab.is_finding,
                threshold=manifest.operating_threshold,
            )
            for lab in labels
        ]
        any_finding = any(f.present for f in findings if f.is_finding)
        findings = [f if f.is_finding else replace(f, decided=not any_finding) for f in findings]
        # The explanation follows the finding: a heatmap only of a finding reported present.
        present = [f for f in findings if f.is_finding and f.present]
        if present:
            explained = max(present, key=lambda f: f.probability)
            explained_name = explained.label
            index = next(lab.index for lab in labels if lab.name == explained.label)
            heatmap = result.heatmap(index, r.stored.shape)
    deblur_info, classify_info = models.infos()
    return Analysis(
        source=ds,
        corrected=corrected,
        deblur_model=deblur_info,
        classifier_model=classify_info,
        findings=findings,
        heatmap=heatmap,
        scope=scope,
        sharpness_before=float(sharpness(np.asarray(to_unit_voi(r)))),
        sharpness_after=float(sharpness(shown)) if attempted else None,
        explained_label=explained_name,
        classified="corrected" if correct else "original",
        correction=method,
        motion=blur.report() if blur is not None else None,
    )
